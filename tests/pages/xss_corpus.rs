//! The XSS corpus (`tests/xss/payloads.txt`) and the workspaces it is written into. Payload
//! `(i + f) mod N` goes into field `f` of workspace `i`'s handoffs, so across the workspaces
//! every payload passes through every field once, and within one page every field holds a
//! different payload (a page can then prove that each field was shown, and escaped).

use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Every place an agent's or reviewer's text reaches the pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Title,
    Summary,
    Task,
    Reason,
    ExpectedOutput,
    RegulatoryRef,
    ToAgent,
    FromAgent,
    TaskId,
    Covers,
    Excludes,
    Completed,
    Remaining,
    Decisions,
    Pitfalls,
    Labels,
    Evidence,
    SignOff,
    ContextKey,
    ContextValue,
    UnknownKey,
    UnknownValue,
    Model,
    Provider,
    AdapterVersion,
    Inputs,
    Sources,
    Tools,
    ArtifactFile,
    ArtifactRole,
    ArtifactNote,
    CheckpointSummary,
    CheckpointFile,
    /// The reviewer's comment on the decided handoff.
    Comment,
    /// The workspace's folder name.
    Workspace,
    /// A refused path, as the problems of an invalid checkpoint (shown) and of an invalid
    /// handoff (answered to the agent) quote it.
    Invalid,
}

use Field::*;

pub const FIELDS: [Field; 36] = [
    Title,
    Summary,
    Task,
    Reason,
    ExpectedOutput,
    RegulatoryRef,
    ToAgent,
    FromAgent,
    TaskId,
    Covers,
    Excludes,
    Completed,
    Remaining,
    Decisions,
    Pitfalls,
    Labels,
    Evidence,
    SignOff,
    ContextKey,
    ContextValue,
    UnknownKey,
    UnknownValue,
    Model,
    Provider,
    AdapterVersion,
    Inputs,
    Sources,
    Tools,
    ArtifactFile,
    ArtifactRole,
    ArtifactNote,
    CheckpointSummary,
    CheckpointFile,
    Comment,
    Workspace,
    Invalid,
];

/// The corpus, one payload a line.
pub fn payloads() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xss/payloads.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("# "))
        .map(str::to_string)
        .collect()
}

/// Rita, a reviewer who holds every payload as a role, so handoffs may name them in
/// `sign_off` (a role nobody holds is refused).
pub fn config(corpus: &[String]) -> String {
    let hash = baton::login::hash_password("pw-rita").unwrap();
    // A JSON string is a TOML basic string.
    let roles: Vec<String> = std::iter::once("reviewer")
        .chain(corpus.iter().map(String::as_str))
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    format!(
        "[[users]]\nname = \"rita\"\npassword_hash = \"{hash}\"\nroles = [{}]\n",
        roles.join(", ")
    )
}

/// A payload as one file or folder name.
pub fn file_name(p: &str) -> String {
    p.replace('/', "_")
}

/// What the handoff page of workspace `i` shows for `f`: the text a reader sees.
pub fn shown(corpus: &[String], i: usize, f: Field) -> String {
    let p = at(corpus, i, f);
    match f {
        ArtifactFile => format!("inbox/{}", file_name(p)),
        CheckpointFile | Workspace => file_name(p),
        Invalid => format!("../{p}"),
        _ => p.to_string(),
    }
}

pub fn at(corpus: &[String], i: usize, f: Field) -> &str {
    let index = FIELDS.iter().position(|x| *x == f).unwrap();
    &corpus[(i + index) % corpus.len()]
}

/// Extensions under which the corpus is also an artifact, for the previews' renderers.
pub const EXTENSIONS: [&str; 4] = ["md", "html", "svg", "txt"];

/// The path of workspace `i`'s artifact with extension `ext`.
pub fn artifact(corpus: &[String], i: usize, ext: &str) -> String {
    format!("{}.{ext}", shown(corpus, i, ArtifactFile))
}

/// The three handoffs of workspace `i`: decided with a comment, invalid (written last, so it
/// is the one in place), and pending.
pub fn keys(i: usize) -> [String; 3] {
    ["decided", "invalid", "pending"].map(|k| format!("xss-{i}-{k}"))
}

/// The handoff of workspace `i` with every string field holding its payload.
fn handoff(corpus: &[String], i: usize, id: &str) -> Value {
    let p = |f| at(corpus, i, f);
    let mut h = json!({
        "handoff_version": "1.0",
        "id": id,
        "title": p(Title), "summary": p(Summary), "task": p(Task), "reason": p(Reason),
        "expected_output": p(ExpectedOutput), "regulatory_ref": p(RegulatoryRef),
        "to_agent": p(ToAgent), "from_agent": p(FromAgent), "task_id": p(TaskId),
        "trigger": "low_confidence", "confidence": 0.5,
        "scope": { "covers": p(Covers), "excludes": [p(Excludes)] },
        "completed": [p(Completed)], "remaining": [p(Remaining)], "decisions": [p(Decisions)],
        "pitfalls_hit": [p(Pitfalls)], "labels": [p(Labels)], "evidence_refs": [p(Evidence)],
        "sign_off": [p(SignOff)],
        "context": { p(ContextKey): p(ContextValue) },
        "provenance": { "model": p(Model), "provider": p(Provider),
            "adapter_version": p(AdapterVersion), "inputs": [p(Inputs)],
            "sources": [p(Sources)], "tools": [p(Tools)] },
    });
    let mut artifacts = vec![json!({ "path": shown(corpus, i, ArtifactFile),
        "role": p(ArtifactRole), "note": p(ArtifactNote) })];
    artifacts.extend(
        EXTENSIONS
            .iter()
            .map(|ext| json!({ "path": artifact(corpus, i, ext) })),
    );
    h["artifacts"] = json!(artifacts);
    h[p(UnknownKey)] = json!(p(UnknownValue));
    h
}

/// Creates workspace `i` (named after its payload) with its artifact and checkpoint; the
/// artifact holds the whole corpus, under an extension a preview would render.
pub fn prepare(env: &TestEnv, corpus: &[String], i: usize) -> PathBuf {
    let ws = env.init(&shown(corpus, i, Workspace));
    let body = corpus.join("\n");
    std::fs::write(ws.join(shown(corpus, i, ArtifactFile)), &body).unwrap();
    for ext in EXTENSIONS {
        std::fs::write(ws.join(artifact(corpus, i, ext)), &body).unwrap();
    }
    let checkpoint = json!({
        "checkpoint_version": "1.0", "task_id": at(corpus, i, TaskId), "step": 1,
        "agent": at(corpus, i, FromAgent), "summary": at(corpus, i, CheckpointSummary),
    });
    let file = format!("{}.json", shown(corpus, i, CheckpointFile));
    util::write_atomic(
        &ws.join("checkpoints").join(file),
        &util::bytes(&checkpoint),
    );
    // A checkpoint refused for a path that leaves the workspace: its problem quotes the path.
    let bad = json!({
        "checkpoint_version": "1.0", "task_id": at(corpus, i, TaskId), "step": 2,
        "artifacts": [shown(corpus, i, Invalid)],
    });
    let file = format!("bad-{}.json", file_name(at(corpus, i, Invalid)));
    util::write_atomic(&ws.join("checkpoints").join(file), &util::bytes(&bad));
    ws
}

/// Writes the workspaces' handoffs in three rounds: one decided with the comment, one left
/// pending, and last an invalid one that quotes its bad values (shown while it is the
/// handoff.json in place). Returns the workspaces.
pub fn write_all(env: &TestEnv, daemon: &Daemon, corpus: &[String]) -> Vec<PathBuf> {
    let n = corpus.len();
    let dirs: Vec<_> = (0..n)
        .map(|i| env.ws(&shown(corpus, i, Workspace)))
        .collect();
    let state = |key: &str| {
        let (_, d) = daemon.get(&format!("/api/v1/handoffs/{key}"));
        d["state"].as_str().unwrap_or_default().to_string()
    };
    let round =
        |which: usize, make: &dyn Fn(usize, &str) -> Value, done: &dyn Fn(usize) -> bool| {
            for (i, ws) in dirs.iter().enumerate() {
                let h = make(i, &keys(i)[which]);
                util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
            }
            for i in 0..n {
                daemon.wait_until(&format!("{} is answered", keys(i)[which]), || done(i));
            }
        };
    round(0, &|i, id| handoff(corpus, i, id), &|i| {
        state(&keys(i)[0]) == "pending"
    });
    for i in 0..n {
        let (status, body) =
            daemon.decide(&keys(i)[0], "changes_requested", at(corpus, i, Comment));
        assert_eq!(status, 200, "{body}");
    }
    round(2, &|i, id| handoff(corpus, i, id), &|i| {
        state(&keys(i)[2]) == "pending"
    });
    let invalid = |i: usize, id: &str| {
        let bad = at(corpus, i, Invalid);
        json!({ "handoff_version": "1.0", "id": id, "task_id": at(corpus, i, TaskId),
            "from_agent": at(corpus, i, FromAgent), "trigger": bad,
            "artifacts": [{ "path": format!("../{bad}") }] })
    };
    round(1, &invalid, &|i| {
        util::decision(&dirs[i]).is_some_and(|d| d["handoff_key"] == keys(i)[1].as_str())
    });
    dirs
}
