//! Bad-input corpus: every case asserts its exact error and that the daemon kept serving.
//!
//! A case is one thing an agent can get wrong in `handoff.json` (or a checkpoint). Small cases
//! are files under `tests/bad-inputs/`, named after the case; big ones (1 GiB, 100,000 deep)
//! are made by the test. Each case is written into a workspace of one running daemon, which
//! must answer it with `decision.json` (outcome `invalid`, by `system`) listing exactly the
//! expected errors, in the one-line form `baton validate` prints (`POINTER LINE:COL: MESSAGE`),
//! and `baton validate` must say the same of the file alone. After the last case the daemon
//! must still take a valid handoff.

mod checkpoints;
mod fields;
mod limits;
mod syntax;
mod workspace;

use crate::util::{self, baton, bytes, decision, wait_until, Daemon, TestEnv};
use baton::contract::schema::Kind;
use baton::contract::validate::{derived_key, oversize_digest, sha256_hex, valid_id};
use baton::contract::{json, nulls, Limits};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One bad input and what must be said about it.
pub struct Case {
    /// What is wrong, in a few words; for `Input::File` also the file under `tests/bad-inputs/`.
    pub name: &'static str,
    pub input: Input,
    pub errors: Errors,
    pub cli: Cli,
}

/// How a case's `handoff.json` comes to be.
pub enum Input {
    /// `tests/bad-inputs/<name>.json`, byte for byte.
    File,
    /// Bytes too big or too regular to keep as a file.
    Made(fn() -> Vec<u8>),
    /// A sparse file of this many bytes (its size is the problem, not its zeros).
    Sparse(u64),
    /// A symlink to this workspace-relative path.
    Symlink(&'static str),
    Directory,
    Fifo,
}

/// The expected `errors` of the decision, as `baton validate` lines.
pub enum Errors {
    Lines(&'static [&'static str]),
    /// Lines too long or too many to write out.
    Made(fn() -> Vec<String>),
}

/// What `baton validate FILE` says of the case's file.
pub enum Cli {
    /// Exit 1 with exactly the daemon's errors.
    Same,
    /// Exit 1 with one line ending so: the CLI names the file it could not read.
    Ends(&'static str),
    /// Exit 0: the file alone is valid; the problem lies in the workspace (its files, or a
    /// key already taken), which only the daemon sees.
    Passes,
}

/// A case read from `tests/bad-inputs/` that `baton validate` judges like the daemon.
pub const fn file(name: &'static str, errors: &'static [&'static str]) -> Case {
    Case {
        name,
        input: Input::File,
        errors: Errors::Lines(errors),
        cli: Cli::Same,
    }
}

/// A case from `tests/bad-inputs/` whose file is valid on its own.
pub const fn in_workspace(name: &'static str, errors: &'static [&'static str]) -> Case {
    Case {
        name,
        input: Input::File,
        errors: Errors::Lines(errors),
        cli: Cli::Passes,
    }
}

pub fn case_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad-inputs")
        .join(format!("{name}.json"))
}

/// A decision or checkpoint error in `baton validate`'s one-line form.
fn line(error: &Value) -> String {
    let pointer = match error["pointer"].as_str().unwrap() {
        "" => "(document)",
        p => p,
    };
    let at = match (error["line"].as_u64(), error["column"].as_u64()) {
        (Some(l), Some(c)) => format!("{l}:{c}"),
        _ => "-".to_string(),
    };
    format!("{pointer} {at}: {}", error["message"].as_str().unwrap())
}

fn lines(errors: &Value) -> Vec<String> {
    errors
        .as_array()
        .expect("a list of errors")
        .iter()
        .map(line)
        .collect()
}

impl Errors {
    fn expected(&self) -> Vec<String> {
        match self {
            Errors::Lines(l) => l.iter().map(|s| s.to_string()).collect(),
            Errors::Made(make) => make(),
        }
    }
}

/// Every handoff case, in the order they are fed to the daemon.
fn handoff_cases() -> impl Iterator<Item = &'static Case> {
    [
        syntax::CASES,
        limits::CASES,
        fields::CASES,
        workspace::CASES,
    ]
    .into_iter()
    .flatten()
}

/// One workspace of the running daemon, fed one case after another.
struct Feeder<'d> {
    daemon: &'d Daemon,
    dir: PathBuf,
    /// The digest the previous case was answered under.
    last: String,
}

impl Feeder<'_> {
    fn handoff(&self) -> PathBuf {
        self.dir.join("handoff.json")
    }

    /// Puts the case's handoff.json in place the way an agent would (whole, by rename), and
    /// returns the digest and key the daemon answers it under.
    fn place(&self, case: &Case) -> (String, String) {
        let path = self.handoff();
        // A rename cannot replace a folder: clear the previous case's one first.
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(&path).unwrap();
        }
        let tmp = self.dir.join(".handoff.json.tmp");
        // Not-regular files are refused unread, all under one digest (as `baton wait` knows).
        let not_regular = sha256_hex(b"not-regular");
        match &case.input {
            Input::File => return self.place_bytes(&std::fs::read(case_file(case.name)).unwrap()),
            Input::Made(make) => return self.place_bytes(&make()),
            Input::Sparse(size) => {
                std::fs::File::create(&tmp).unwrap().set_len(*size).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                return (oversize_digest(*size), oversize_digest(*size));
            }
            Input::Symlink(target) => {
                std::os::unix::fs::symlink(self.dir.join(target), &tmp).unwrap()
            }
            Input::Directory => {
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&tmp).unwrap();
            }
            Input::Fifo => mkfifo(&tmp),
        }
        std::fs::rename(&tmp, &path).unwrap();
        (not_regular.clone(), not_regular)
    }

    fn place_bytes(&self, content: &[u8]) -> (String, String) {
        util::write_atomic(&self.handoff(), content);
        let limits = Limits::default();
        if content.len() > limits.max_bytes {
            let digest = oversize_digest(content.len() as u64);
            return (digest.clone(), digest);
        }
        // The digest is of the canonical JSON (null optional fields dropped) when the file
        // parsed, else of its bytes; the key is the id when the file parsed and its id is
        // well-formed, else derived from the workspace and the JSON, else the digest.
        let mut parsed = json::parse(content, &limits).ok();
        if let Some(v) = parsed.as_mut() {
            nulls::drop_absent(Kind::Handoff, v);
        }
        let digest = parsed
            .as_ref()
            .map_or_else(|| sha256_hex(content), |v| sha256_hex(&json::canonical(v)));
        let id = parsed
            .as_ref()
            .and_then(|v| v["id"].as_str())
            .filter(|id| valid_id(id));
        let workspace = self.dir.file_name().unwrap().to_str().unwrap();
        let key = match (id, &parsed) {
            (Some(id), _) => id.to_string(),
            (None, Some(v)) => derived_key(workspace, v),
            (None, None) => digest.clone(),
        };
        (digest, key)
    }

    /// Feeds one case and checks the daemon's answer and the CLI's.
    fn feed(&mut self, case: &Case) {
        let name = case.name;
        let (digest, key) = self.place(case);
        assert_ne!(
            digest, self.last,
            "{name}: same content as the case before, which the daemon rightly skips"
        );
        self.last = digest.clone();
        wait_until(
            &format!("{name}: a decision.json answering it"),
            &mut || decision(&self.dir).is_some_and(|d| d["handoff_sha256"] == digest.as_str()),
        );
        let d = decision(&self.dir).unwrap();
        assert_eq!(
            (d["outcome"].as_str(), d["by"].as_str()),
            (Some("invalid"), Some("system")),
            "{name}: {d:#}"
        );
        assert_eq!(
            d["handoff_key"],
            key.as_str(),
            "{name}: the key it is answered under"
        );
        assert_eq!(
            lines(&d["errors"]),
            case.errors.expected(),
            "{name}: the errors in decision.json"
        );
        self.daemon.assert_alive();
        check_cli(case, &self.handoff());
    }
}

fn check_cli(case: &Case, path: &Path) {
    let out = baton(&["validate", path.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let printed: Vec<String> = stdout.lines().map(str::to_string).collect();
    let name = case.name;
    match &case.cli {
        Cli::Same => assert_eq!(printed, case.errors.expected(), "{name}: baton validate"),
        Cli::Ends(tail) => {
            assert!(
                printed.len() == 1 && printed[0].ends_with(tail),
                "{name}: baton validate said {stdout}"
            )
        }
        Cli::Passes => {
            assert!(
                out.status.success(),
                "{name}: the file alone is valid, yet baton validate said {stdout}"
            );
            return;
        }
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: baton validate exit code"
    );
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// The files the workspace cases point at: a report, symlinks out of the workspace, a FIFO and
/// a folder where files are expected, and a valid handoff for handoff.json to link to.
fn make_fixtures(env: &TestEnv, ws: &Path) {
    let outside = env.root().join("outside.txt");
    std::fs::write(&outside, "not for agents\n").unwrap();
    std::fs::write(ws.join("inbox/report.md"), "report\n").unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("inbox/escape")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/outside", ws.join("inbox/dangling")).unwrap();
    mkfifo(&ws.join("inbox/pipe"));
    std::fs::create_dir(ws.join("inbox/folder")).unwrap();
    std::fs::write(
        ws.join("inbox/valid.json"),
        bytes(&util::handoff("corpus-linked")),
    )
    .unwrap();
}

/// Writes a valid handoff and waits until it is pending.
fn submit_valid(d: &Daemon, ws: &Path, id: &str) {
    util::write_atomic(&ws.join("handoff.json"), &bytes(&util::handoff(id)));
    d.wait_until(&format!("{id} pending"), || {
        d.handoffs("pending").iter().any(|h| h["key"] == id)
    });
}

#[test]
fn every_bad_handoff_gets_its_exact_errors_and_the_daemon_carries_on() {
    let mut env = TestEnv::new();
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    make_fixtures(&env, &alpha);
    let d = env.start();
    // Keys the workspace cases collide with: one decided here, one pending elsewhere.
    submit_valid(&d, &alpha, "corpus-decided");
    assert_eq!(d.decide("corpus-decided", "approved", "fine").0, 200);
    submit_valid(&d, &beta, "corpus-elsewhere");

    let mut feeder = Feeder {
        daemon: &d,
        dir: alpha.clone(),
        last: String::new(),
    };
    let mut names = std::collections::BTreeSet::new();
    for case in handoff_cases() {
        assert!(names.insert(case.name), "two cases are named {}", case.name);
        feeder.feed(case);
    }
    assert!(names.len() >= 40, "the corpus has {} cases", names.len());

    // Still taking work: a valid handoff after all that is received, and its decision.json
    // (the last invalid answer) is cleared.
    submit_valid(&d, &alpha, "corpus-after");
    assert_eq!(
        decision(&alpha),
        None,
        "decision.json answers the valid handoff now in place"
    );
    d.assert_alive();
}

#[test]
fn every_case_file_belongs_to_a_case() {
    let mut used: Vec<&str> = handoff_cases()
        .filter(|c| matches!(c.input, Input::File))
        .map(|c| c.name)
        .collect();
    used.extend(checkpoints::CASES.iter().map(|c| c.name));
    for name in &used {
        assert!(
            case_file(name).is_file(),
            "case {name} has no file {}",
            case_file(name).display()
        );
    }
    let dir = std::fs::read_dir(case_file("x").parent().unwrap()).unwrap();
    for entry in dir {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let name = file.strip_suffix(".json").unwrap_or(&file);
        assert!(
            used.contains(&name),
            "tests/bad-inputs/{file} is not used by any case"
        );
    }
}
