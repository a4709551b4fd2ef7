//! Bad checkpoints. Nobody waits on an answer to a checkpoint, so the daemon writes none: it
//! logs the problems and lists them as `checkpoint_errors` in `GET /api/v1/handoffs/{key}` of
//! the workspace's handoffs, and carries on counting the good ones.

use super::{case_file, lines, submit_valid};
use crate::util::{baton, wait_until, write_atomic, TestEnv};

pub struct CheckpointCase {
    /// Also the file under `tests/bad-inputs/`, and its name in `checkpoints/`.
    pub name: &'static str,
    pub errors: &'static [&'static str],
}

pub const CASES: &[CheckpointCase] = &[
    CheckpointCase {
        name: "checkpoint-missing-step",
        errors: &["/step 1:1: required field \"step\" is missing"],
    },
    CheckpointCase {
        name: "checkpoint-negative-step",
        errors: &["/step 4:11: must be at least 0, found the number -1"],
    },
    CheckpointCase {
        name: "checkpoint-fractional-step",
        errors: &["/step 4:11: expected an integer, found the number 1.5"],
    },
    CheckpointCase {
        name: "checkpoint-version-2",
        errors: &["/checkpoint_version 2:25: checkpoint_version \"2\" is not supported: this daemon speaks checkpoint_version 1.x (\"1\", \"1.N\", \"1.N.M\"); upgrade baton or write version 1"],
    },
    CheckpointCase {
        name: "checkpoint-truncated",
        errors: &["(document) 4:5: EOF while parsing a string: the JSON is truncated (write the file whole, e.g. temp file + rename)"],
    },
    // A bare-path artifact is held to the same rule as a handoff's.
    CheckpointCase {
        name: "checkpoint-artifact-traversal",
        errors: &["/artifacts/1 5:32: path \"../../etc/shadow\" contains \"..\" and would leave the workspace"],
    },
];

#[test]
fn bad_checkpoints_are_listed_with_their_errors_and_good_ones_still_count() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    submit_valid(&d, &ws, "corpus-checkpoints");
    let detail = || d.get("/api/v1/handoffs/corpus-checkpoints").1;
    for case in CASES {
        let file = format!("{}.json", case.name);
        let path = ws.join("checkpoints").join(&file);
        write_atomic(&path, &std::fs::read(case_file(case.name)).unwrap());
        wait_until(&format!("{file} listed"), &mut || {
            detail()["checkpoint_errors"][&file].is_array()
        });
        let listed = lines(&detail()["checkpoint_errors"][&file]);
        assert_eq!(listed, case.errors, "{file}: checkpoint_errors");
        d.assert_alive();
        let out = baton(&["validate", path.to_str().unwrap()]);
        let printed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(
            (out.status.code(), printed),
            (Some(1), case.errors.to_vec()),
            "{file}: baton validate"
        );
    }

    // A good checkpoint after them all is still taken as where the task stands.
    let good = br#"{"checkpoint_version": "1.0", "task_id": "task-corpus-checkpoints", "step": 4}"#;
    write_atomic(&ws.join("checkpoints/good.json"), good);
    wait_until("the good checkpoint", &mut || {
        detail()["checkpoints"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["step"] == 4))
    });
    let errors = detail()["checkpoint_errors"]
        .as_object()
        .map_or(0, |e| e.len());
    assert_eq!(errors, CASES.len(), "every bad checkpoint is still listed");
}
