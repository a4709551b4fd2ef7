//! Test support: a temporary folder with workspaces and a config, the real `baton` binary
//! started on it (port 0), and agent-style file writers. Nothing here is mocked.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_baton");

/// A generous bound for things that normally take milliseconds; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A temp folder holding `baton.toml`, `data/` and a root `ws/` of workspaces.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub token: Option<String>,
    extra_config: String,
    /// The offset file of the daemons' clock, once the test drives it (`drive_clock`).
    clock: Option<PathBuf>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::with_config("")
    }

    /// `extra` is appended to the base config (users, agents, routes, limits...).
    pub fn with_config(extra: &str) -> TestEnv {
        // BATON_TEST_KEEP=1 keeps the folder (daemons' logs included) to read after a failure.
        let keep = std::env::var_os("BATON_TEST_KEEP").is_some();
        let dir = tempfile::Builder::new()
            .disable_cleanup(keep)
            .tempdir()
            .expect("temp dir");
        if keep {
            eprintln!("test folder kept: {}", dir.path().display());
        }
        std::fs::create_dir_all(dir.path().join("ws")).unwrap();
        let env = TestEnv {
            dir,
            token: None,
            extra_config: extra.to_string(),
            clock: None,
        };
        env.write_config();
        env.init("alpha");
        env
    }

    fn write_config(&self) {
        let top = "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n";
        // A short settle window keeps tests quick; a test about settling sets its own.
        let settle = if self.extra_config.contains("settle_ms") {
            ""
        } else {
            "settle_ms = 300\n"
        };
        let top = format!("{top}{settle}");
        std::fs::write(self.config_path(), format!("{top}{}\n", self.extra_config)).unwrap();
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    /// The daemon's records of workspace `name` in data_dir (out of the agents' reach).
    pub fn store(&self, name: &str) -> PathBuf {
        let ws = baton::workspace::Workspace::open(&self.ws(name)).unwrap();
        self.root()
            .join("data/workspaces")
            .join(baton::store::tag(&ws))
    }
    pub fn config_path(&self) -> PathBuf {
        self.root().join("baton.toml")
    }
    pub fn ws(&self, name: &str) -> PathBuf {
        self.root().join("ws").join(name)
    }

    /// Creates workspace `name` with `baton init`.
    pub fn init(&self, name: &str) -> PathBuf {
        let out = baton(&["init", self.ws(name).to_str().unwrap()]);
        assert!(out.status.success(), "baton init failed: {out:?}");
        self.ws(name)
    }

    /// Daemons started from now on read their clock through an offset file that
    /// `move_clock` moves forward (a debug build's `BATON_TEST_CLOCK`), so a test of a timer
    /// moves time instead of sleeping.
    pub fn drive_clock(&mut self) {
        let file = self.root().join("clock-offset");
        write_atomic(&file, b"0");
        self.clock = Some(file);
    }

    /// Moves the daemons' clock `secs` forward; the housekeeping sees it within a second.
    pub fn move_clock(&self, secs: f64) {
        let file = self.clock.as_ref().expect("drive_clock first");
        let now: f64 = std::fs::read_to_string(file).unwrap().parse().unwrap();
        write_atomic(file, (now + secs).to_string().as_bytes());
    }

    /// Now on the daemons' clock (the offset included, if the test drives it).
    pub fn clock_now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc() + time::Duration::seconds_f64(self.clock_offset())
    }

    /// How far the test has moved the daemons' clock, in seconds (0 if it does not drive it).
    pub fn clock_offset(&self) -> f64 {
        self.clock.as_ref().map_or(0.0, |file| {
            std::fs::read_to_string(file).unwrap().parse().unwrap()
        })
    }

    /// Starts the daemon and waits until its start-up scan is done.
    pub fn start(&mut self) -> Daemon {
        let daemon = self.spawn();
        daemon.wait_until("start-up scan done", || daemon.health()["ready"] == true);
        daemon
    }

    /// Starts the daemon and returns as soon as it listens (its start-up scan may still run).
    pub fn spawn(&mut self) -> Daemon {
        let log =
            std::fs::File::create(self.root().join(format!("daemon-{}.log", now_ms()))).unwrap();
        self.spawn_logging_to(log.into())
    }

    /// Starts a daemon on another configuration file (a second node over the same
    /// workspaces) and waits until its start-up scan is done.
    pub fn spawn_with_config(&mut self, config: &Path) -> Daemon {
        self.spawn_with_config_env(config, &[])
    }

    /// `spawn_with_config` with variables `env` set for that daemon alone.
    pub fn spawn_with_config_env(&mut self, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let log =
            std::fs::File::create(self.root().join(format!("daemon-{}.log", now_ms()))).unwrap();
        let mut serve = Command::new(BIN);
        serve.args(["serve", "--config", config.to_str().unwrap()]);
        serve.envs(env.iter().copied());
        let daemon = self.spawn_command(serve, log.into(), PATIENCE);
        daemon.wait_until("start-up scan done", || daemon.health()["ready"] == true);
        daemon
    }

    /// `spawn` with the daemon's log (standard error) going to `log`, e.g. a pipe.
    pub fn spawn_logging_to(&mut self, log: Stdio) -> Daemon {
        let mut serve = Command::new(BIN);
        serve.args(["serve", "--config", self.config_path().to_str().unwrap()]);
        self.spawn_command(serve, log, PATIENCE)
    }

    /// `spawn` under a shell that first runs `setup` (e.g. `ulimit -Sn 64`), then execs the
    /// daemon.
    pub fn spawn_after(&mut self, setup: &str) -> Daemon {
        self.spawn_after_within(setup, PATIENCE)
    }

    /// `spawn_after`, allowing `patience` until it listens (thousands of workspaces are
    /// opened first).
    pub fn spawn_after_within(&mut self, setup: &str, patience: Duration) -> Daemon {
        let log =
            std::fs::File::create(self.root().join(format!("daemon-{}.log", now_ms()))).unwrap();
        let script = format!("{setup} && exec \"$0\" serve --config \"$1\"");
        let mut shell = Command::new("sh");
        shell.args(["-c", &script, BIN, self.config_path().to_str().unwrap()]);
        self.spawn_command(shell, log.into(), patience)
    }

    /// Runs `command`, which starts `baton serve` on this env, and waits until it listens.
    fn spawn_command(&mut self, mut command: Command, log: Stdio, patience: Duration) -> Daemon {
        if let Some(file) = &self.clock {
            command.env(baton::clock::TEST_CLOCK_VAR, file);
        }
        let mut child = command
            .env("BATON_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn baton serve");
        let lines = read_lines(child.stdout.take().unwrap());
        let deadline = Instant::now() + patience;
        let mut url = None;
        let mut printed = Vec::new();
        while url.is_none() {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    let _ = child.kill();
                    panic!("daemon did not start; log in {}", self.root().display())
                });
            if let Some(t) = line.trim().strip_prefix("baton_") {
                self.token = Some(format!("baton_{t}"));
            }
            if let Some(u) = line.strip_prefix("baton: listening on ") {
                url = Some(u.trim().to_string());
            }
            printed.push(line);
        }
        Daemon {
            child,
            url: url.unwrap(),
            token: self
                .token
                .clone()
                .expect("admin token printed on first start"),
            printed,
            _lines: lines,
        }
    }
}

/// `baton serve --config CONFIG`, expected to refuse to start: its exit code and standard
/// error. A daemon that starts after all is killed and the test fails, rather than hangs.
pub fn refused_start(config: &Path) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the daemon started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn read_lines(out: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running daemon process.
pub struct Daemon {
    pub child: Child,
    pub url: String,
    pub token: String,
    /// What the daemon printed on standard output up to "listening on".
    pub printed: Vec<String>,
    _lines: Receiver<String>,
}

impl Daemon {
    pub fn health(&self) -> Value {
        ureq::get(&format!("{}/healthz", self.url))
            .call()
            .map(|r| r.into_json().unwrap())
            .unwrap_or(Value::Null)
    }

    /// GET with the admin token; returns (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, Some(&self.token))
    }

    pub fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = ureq::get(&format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        into_pair(req.call())
    }

    pub fn post_as(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut req =
            ureq::post(&format!("{}{path}", self.url)).set("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        into_pair(req.send_string(body))
    }

    pub fn delete_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = ureq::delete(&format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        into_pair(req.call())
    }

    /// Decides `key` with the admin token, as the handoff page does: an approval names the
    /// revision read (`as_read`).
    pub fn decide(&self, key: &str, outcome: &str, comment: &str) -> (u16, Value) {
        let body = serde_json::json!({ "outcome": outcome, "comment": comment });
        let body = self.as_read(key, &self.token, body);
        self.post_as(
            &format!("/api/v1/handoffs/{key}/decision"),
            Some(&self.token),
            &body.to_string(),
        )
    }

    /// What the holder of `token` reads of `key` before deciding it: `{revision,
    /// handoff_sha256}` of the revision in place (`GET /api/v1/handoffs/{key}`, what the
    /// handoff page renders into its form), or `None` when the detail is not answered (an
    /// unknown key, one the caller may not see).
    pub fn read(&self, key: &str, token: &str) -> Option<Value> {
        let (status, detail) = self.get_as(&format!("/api/v1/handoffs/{key}"), Some(token));
        (status == 200).then(|| {
            serde_json::json!({
                "revision": detail["revision"], "handoff_sha256": detail["handoff_sha256"],
            })
        })
    }

    /// `body` as a reviewer holding `token` sends it after reading `key`: an approval names
    /// both `revision` and `handoff_sha256`, the one it lacks as read now (`read`), as the page
    /// does; any other body (another outcome, or an approval naming both) is sent as it is,
    /// and so is an approval of a handoff the detail does not answer.
    pub fn as_read(&self, key: &str, token: &str, mut body: Value) -> Value {
        let names = body.get("revision").is_some() && body.get("handoff_sha256").is_some();
        if body["outcome"] != "approved" || names {
            return body;
        }
        if let (Some(read), Some(sent)) = (self.read(key, token), body.as_object_mut()) {
            for (field, value) in read.as_object().cloned().unwrap_or_default() {
                sent.entry(field).or_insert(value);
            }
        }
        body
    }

    /// Decides `key` with `body` as the holder of `token`, which must be taken (200): the
    /// answer. An approval names what was read (`as_read`).
    pub fn decide_as(&self, key: &str, token: &str, body: &Value) -> Value {
        let body = self.as_read(key, token, body.clone());
        let (status, answer) = self.post_as(
            &format!("/api/v1/handoffs/{key}/decision"),
            Some(token),
            &body.to_string(),
        );
        assert_eq!(status, 200, "{answer}");
        answer
    }

    /// Writes `doc` as `ws`'s handoff.json, waits until it is pending, and has the holder of
    /// `token` answer it `outcome` (which must be taken: 200), an approval naming what was
    /// read (`as_read`).
    pub fn submit_and_decide(&self, ws: &Path, doc: &Value, token: &str, outcome: &str) {
        let id = doc["id"]
            .as_str()
            .expect("the handoff has an id")
            .to_string();
        write_atomic(&ws.join("handoff.json"), &bytes(doc));
        self.wait_until("pending", || {
            self.handoffs("pending")
                .iter()
                .any(|h| h["key"] == id.as_str())
        });
        let body = self.as_read(&id, token, serde_json::json!({ "outcome": outcome }));
        let url = format!("/api/v1/handoffs/{id}/decision");
        let (status, answer) = self.post_as(&url, Some(token), &body.to_string());
        assert_eq!(status, 200, "{answer}");
    }

    /// The handoffs in `state` (pending, decided, all).
    pub fn handoffs(&self, state: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/handoffs?state={state}"));
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }

    /// Polls `check` until it holds; panics with `what` after PATIENCE.
    pub fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        wait_until(what, &mut check)
    }

    pub fn metrics(&self) -> String {
        ureq::get(&format!("{}/metrics", self.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// The value of one series of `/metrics` (`name{labels}`), 0 when it is not there yet.
    pub fn metric(&self, series: &str) -> f64 {
        let line = format!("{series} ");
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(&line).map(|v| v.parse().unwrap()))
            .unwrap_or(0.0)
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        unsafe_kill(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "daemon exited with {status}");
    }

    /// SIGTERM, then waits at most `bound` for the exit: its status, or None if still running.
    pub fn stop_within(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `host:port` the daemon listens on.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Asserts the daemon still serves.
    pub fn assert_alive(&self) {
        assert_eq!(self.health()["status"], "ok", "daemon stopped serving");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
}

fn into_pair(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Waits until daemon `d` has taken in everything written to workspace `ws` so far, and
/// what the daemon itself asked for there (a watch on `approved/`): a workspace's work goes
/// down one ordered lane, so once a checkpoint written now is logged, all of that is done.
/// Files must have been written whole (`write_atomic`), as a rename is taken at once.
pub fn wait_for_the_lane(d: &Daemon, ws: &Path) {
    let written = || {
        let types = event_types(ws);
        types.iter().filter(|t| *t == "checkpoint.written").count()
    };
    let before = written();
    let cp =
        serde_json::json!({"checkpoint_version": "1.0", "task_id": "lane", "step": before + 1});
    let file = ws.join(format!("checkpoints/lane-{}.json", before + 1));
    write_atomic(&file, &bytes(&cp));
    d.wait_until("a checkpoint written after it all", || written() > before);
}

pub fn wait_until(what: &str, check: &mut dyn FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Runs the baton binary with `args`.
pub fn baton(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("BATON_LOG", "warn")
        .output()
        .expect("run baton")
}

/// Writes the way careful agents do: a temp file in the same folder, then rename.
/// Another writer of the share: once a file holding `marker` lands at `place` (polled every
/// 5 ms, for up to 20 s), waits 200 ms, then renames `theirs` over it. Whether it did.
pub fn swap_in_when_landed(place: &Path, theirs: &Path, marker: &str) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let landed =
            std::fs::read(place).is_ok_and(|b| String::from_utf8_lossy(&b).contains(marker));
        if landed {
            std::thread::sleep(Duration::from_millis(200));
            std::fs::rename(theirs, place).unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

pub fn write_atomic(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Writes the way naive agents do: truncate in place, then a few chunks with pauses.
pub fn write_in_place(path: &Path, bytes: &[u8], chunks: usize, pause: Duration) {
    let mut file = std::fs::File::create(path).unwrap();
    let size = bytes.len().div_ceil(chunks.max(1));
    for chunk in bytes.chunks(size.max(1)) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(pause);
    }
}

/// A `[[users]]` entry whose API token is `<name>-token`; `roles` is TOML, e.g. `"\"reviewer\""`.
pub fn user(name: &str, roles: &str) -> String {
    let hash = baton::auth::token_hash(&format!("{name}-token"));
    format!("[[users]]\nname = \"{name}\"\nroles = [{roles}]\ntoken_sha256 = \"{hash}\"\n")
}

/// An `[[agents]]` entry for workspace glob `workspaces`, token `<name>-token`.
pub fn agent(name: &str, workspaces: &str) -> String {
    let hash = baton::auth::token_hash(&format!("{name}-token"));
    format!("[[agents]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nworkspaces = [\"{workspaces}\"]\n")
}

/// `agent(name, workspaces)` acting for `[[users]]` entry `user`: the person who runs it.
pub fn agent_for(name: &str, user: &str, workspaces: &str) -> String {
    format!("{}user = \"{user}\"\n", agent(name, workspaces))
}

/// Every `null` in `value`, by JSON pointer: baton never writes one.
pub fn nulls(value: &Value, at: &str) -> Vec<String> {
    match value {
        Value::Null => vec![at.to_string()],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| nulls(v, &format!("{at}/{i}")))
            .collect(),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| nulls(v, &format!("{at}/{k}")))
            .collect(),
        _ => Vec::new(),
    }
}

/// A minimal valid handoff with `id`.
pub fn handoff(id: &str) -> Value {
    serde_json::json!({
        "handoff_version": "1.0",
        "id": id,
        "task_id": format!("task-{id}"),
        "from_agent": "test-agent",
        "title": format!("handoff {id}"),
        "trigger": "low_confidence",
        "confidence": 0.5,
    })
}

pub fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

/// Reads `decision.json` of a workspace, if any.
/// Takes `path` in workspace alpha through the API as agent builder (`agent("builder",
/// "alpha")`): the fencing token granted.
pub fn api_lock(d: &Daemon, path: &str) -> u64 {
    let body = serde_json::json!({"path": path, "owner": "builder"}).to_string();
    let (status, grant) = d.post_as(
        "/api/v1/workspaces/alpha/locks",
        Some("builder-token"),
        &body,
    );
    assert_eq!(status, 200, "lock {path}: {grant}");
    grant["token"].as_u64().unwrap()
}

pub fn decision(ws: &Path) -> Option<Value> {
    let bytes = std::fs::read(ws.join("decision.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Asserts `baton verify` passes on workspace alpha of `env` with its configuration: every
/// decision's receipt and the audit log check out.
pub fn assert_verifies(env: &TestEnv) {
    let ws = env.ws("alpha");
    let config = env.config_path();
    let verified = baton(&[
        "verify",
        ws.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

/// The event types in a workspace's audit log, in order.
pub fn event_types(ws: &Path) -> Vec<String> {
    events(ws)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The events in a workspace's audit log, in order.
pub fn events(ws: &Path) -> Vec<Value> {
    jsonl(&ws.join(".baton/events.jsonl"))
}

/// The complete lines of a JSON-lines file another process is appending to, parsed. A last
/// line without its newline is still being written, so it is left for the next read: a
/// reader polling while a writer appends would otherwise see half a record.
pub fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display())))
        .collect()
}
pub mod browser;
pub mod store;
pub mod tools;

/// An agent on the same machine: runs `script` with sh as user nobody in group `group` only,
/// with `$BATON` a copy of the binary in the (0755) test folder, which that user can reach
/// (the build's own folder may be behind a 0700 home). The test folder and `ws/` are opened
/// to other users first, as a shared folder is.
pub fn as_other_user(env: &TestEnv, group: &str, script: &str) -> Output {
    use std::os::unix::fs::PermissionsExt;
    for dir in [env.root().to_path_buf(), env.root().join("ws")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bin = env.root().join("baton");
    if !bin.exists() {
        std::fs::copy(BIN, &bin).unwrap();
    }
    let gid = baton::workspace::file_modes::group_id(group)
        .unwrap()
        .to_string();
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            &format!("--regid={gid}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .env("BATON", &bin)
        .env("BATON_LOG", "warn")
        .output()
        .unwrap()
}

/// What the daemons of `env` logged, all starts together.
pub fn daemon_logs(env: &TestEnv) -> String {
    std::fs::read_dir(env.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

/// `baton wait ARGS` as an agent runs it: checking decision.json with the public keys of the
/// daemon `d` (`BATON_URL`), and no other trust root from the test's environment.
pub fn agent_wait(d: &Daemon, args: &[&str]) -> Output {
    wait_with_url(&d.url, args)
}

/// `agent_wait` by the daemon's URL alone (a `Daemon` is not shared between threads).
pub fn wait_with_url(url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("wait")
        .args(args)
        .env("BATON_URL", url)
        .env_remove("BATON_KEY")
        .env_remove("BATON_UNCHECKED")
        .env("BATON_LOG", "warn")
        .output()
        .expect("run baton wait")
}
