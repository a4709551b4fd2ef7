//! Starting and stopping the daemon as operators do it: its log piped to a reader that goes
//! away or stops reading, a port already taken, a workspace made while it runs.

use crate::util::{bytes, decision, event_types, handoff, write_atomic, Daemon, TestEnv};
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

/// `http.shutdown_timeout_s` of these tests: SIGTERM must end the daemon within it.
const SHUTDOWN_S: u64 = 3;

fn env_with_shutdown_timeout() -> TestEnv {
    TestEnv::with_config(&format!("[http]\nshutdown_timeout_s = {SHUTDOWN_S}\n"))
}

/// The daemon, with every log line written after this going nowhere, still receives a
/// handoff and stops on SIGTERM within `shutdown_timeout_s`.
fn works_and_stops(env: &TestEnv, mut d: Daemon) {
    d.wait_until("ready", || d.health()["ready"] == true);
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("logged-nowhere")),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    // A second over the bound covers the process's own exit after the drain.
    let bound = Duration::from_secs(SHUTDOWN_S + 1);
    let status = d.stop_within(bound).expect("SIGTERM ends the daemon");
    assert!(status.success(), "daemon exited with {status}");
}

#[test]
fn a_log_pipe_closed_early_neither_hangs_nor_stops_the_daemon() {
    let mut env = env_with_shutdown_timeout();
    let (reader, writer) = std::io::pipe().unwrap();
    let d = env.spawn_logging_to(writer.into());
    // What `baton serve 2>&1 | head -1` does: one line read, then the pipe closed.
    let mut reader = std::io::BufReader::new(reader);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.contains("starting"), "{first}");
    drop(reader);
    works_and_stops(&env, d);
}

#[test]
fn a_full_log_pipe_neither_blocks_nor_stops_the_daemon() {
    let mut env = env_with_shutdown_timeout();
    let (reader, mut writer) = std::io::pipe().unwrap();
    fill(&mut writer);
    let d = env.spawn_logging_to(writer.into());
    // Kept open and never read, as by a log shipper that hangs.
    works_and_stops(&env, d);
    drop(reader);
}

/// Writes into the pipe until it holds no more.
fn fill(writer: &mut std::io::PipeWriter) {
    let fd = writer.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own, for the duration of the call; the flags are set
    // back before the descriptor is handed to the daemon (they are shared with it).
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    while writer.write(&[b'.'; 4096]).is_ok() {}
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
}

/// The value of a metric line `name` (no labels), if the daemon reports it.
pub fn metric(d: &Daemon, name: &str) -> Option<f64> {
    let text = d.metrics();
    let line = text.lines().find(|l| l.starts_with(&format!("{name} ")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_handoff_written_in_place_across_a_start_is_judged_only_once_complete() {
    // A settle window the second half surely lands in once the scan is seen done.
    let mut env = TestEnv::with_config("settle_ms = 3000\n");
    let ws = env.ws("alpha");
    let doc = bytes(&handoff("across-start"));
    let (head, tail) = doc.split_at(doc.len() / 2);
    let mut file = std::fs::File::create(ws.join("handoff.json")).unwrap();
    file.write_all(head).unwrap();
    // Half written, then a pause longer than the settle window: the time a restart takes.
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
    let d = env.spawn();
    d.wait_until("start-up scan done", || {
        metric(&d, "baton_scan_duration_seconds").is_some_and(|s| s > 0.0)
    });
    file.write_all(tail).unwrap();
    drop(file);

    d.wait_until("received once complete", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "across-start")
    });
    assert_eq!(
        event_types(&ws),
        ["handoff.received"],
        "never judged half written"
    );
    assert!(decision(&ws).is_none(), "no invalid answer was written");
}

#[test]
fn a_start_refused_for_a_port_in_use_leaves_no_data_dir_behind() {
    let env = TestEnv::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = env.root().join("taken.toml");
    let text = format!(
        "listen = \"{}\"\ndata_dir = \"fresh-data\"\nworkspaces = [\"ws\"]\n",
        taken.local_addr().unwrap()
    );
    std::fs::write(&config, text).unwrap();

    let out = crate::util::baton(&["serve", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("cannot listen on"), "{said}");
    assert!(
        !env.root().join("fresh-data").exists(),
        "no data_dir made by a start that failed"
    );
}

#[test]
fn a_workspace_made_while_the_daemon_runs_is_not_called_unserved_by_the_next_command() {
    let mut env = TestEnv::new();
    let d = env.start();
    let gamma = env.init("gamma");
    let draft = env.root().join("draft.json");
    std::fs::write(&draft, bytes(&handoff("right-after-init"))).unwrap();

    let out = crate::util::baton(&["submit", gamma.to_str().unwrap(), draft.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("no running daemon serves"), "{said}");
    d.wait_until("received", || {
        d.handoffs("pending")
            .iter()
            .any(|h| h["key"] == "right-after-init")
    });
}

/// One daemon per data_dir: a second start on it is refused at once, naming the first's pid,
/// and the first goes on alone (two used to run, and sent every webhook twice).
#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let mut env = TestEnv::new();
    let d = env.start();
    let (code, said) = crate::util::refused_start(&env.config_path());
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "another baton daemon (pid {}) already runs on data_dir",
            d.pid()
        )),
        "{said}"
    );
    d.assert_alive();
    d.stop();
    let again = env.start();
    again.stop();
}

/// SIGHUP (a closed terminal, a reload by habit) neither kills nor stops the daemon.
#[test]
fn sighup_is_logged_and_the_daemon_goes_on() {
    let mut env = TestEnv::new();
    let d = env.start();
    d.wait_until("ready", || d.health()["ready"] == true);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(d.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    d.assert_alive();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("after-hup")),
    );
    d.wait_until("received after SIGHUP", || d.handoffs("pending").len() == 1);
    d.stop();
    assert!(crate::util::daemon_logs(&env).contains("SIGHUP"));
}

/// A signing key lost after decisions were signed is not replaced silently: the start is
/// refused, naming the keys this data_dir published, until `baton keys --rotate` says so.
#[test]
fn a_lost_signing_key_is_not_replaced_silently() {
    let mut env = TestEnv::new();
    env.start().stop();
    let config = env.config_path();
    let key = env.root().join("data/keys/signing.key");
    std::fs::remove_file(&key).unwrap();
    let (code, said) = crate::util::refused_start(&config);
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("signing.key is missing") && said.contains("baton keys --rotate"),
        "{said}"
    );
    assert!(!key.exists(), "no key made behind the operator's back");
    let rotated = crate::util::baton(&["keys", "--rotate", "--config", config.to_str().unwrap()]);
    assert!(rotated.status.success(), "{rotated:?}");
    env.start().stop();
}

/// Signing keys lost whole (keys/ removed, as by a backup that left it out): the public keys
/// went with them, yet the records and audit anchors show a daemon signed here, so the start
/// is refused, naming that evidence, and no key is made behind the operator's back.
#[test]
fn a_keys_folder_removed_whole_is_not_replaced_silently() {
    let mut env = TestEnv::new();
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("before-the-loss")),
    );
    d.wait_until("received", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("before-the-loss", "approved", "").0, 200);
    d.stop();
    let config = env.config_path();
    let keys = env.root().join("data/keys");
    std::fs::remove_dir_all(&keys).unwrap();

    let (code, said) = crate::util::refused_start(&config);
    assert_ne!(code, Some(0), "{said}");
    assert!(
        said.contains("signing.key is missing")
            && said.contains("workspace records in")
            && said.contains("restore it")
            && said.contains("baton keys --rotate"),
        "{said}"
    );
    assert!(!keys.exists(), "no key made behind the operator's back");
    let rotated = crate::util::baton(&["keys", "--rotate", "--config", config.to_str().unwrap()]);
    assert!(rotated.status.success(), "{rotated:?}");
    env.start().stop();
}

/// A public key file that cannot be read as one is an error naming it, never skipped: skipped,
/// it hid that this data_dir had signed, and with the signing key lost a new one was made.
#[test]
fn an_unparsable_public_key_file_refuses_the_start_and_is_named() {
    let mut env = TestEnv::new();
    env.start().stop();
    let keys = env.root().join("data/keys");
    std::fs::remove_file(keys.join("signing.key")).unwrap();
    let public: Vec<_> = std::fs::read_dir(keys.join("public"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(public.len(), 1, "{public:?}");
    std::fs::write(&public[0], "damaged\n").unwrap();

    let (code, said) = crate::util::refused_start(&env.config_path());
    assert_ne!(code, Some(0), "{said}");
    let name = public[0].file_name().unwrap().to_string_lossy();
    assert!(
        said.contains(&*name) && said.contains("not a 64-hex-digit Ed25519 public key"),
        "{said}"
    );
    assert!(
        !keys.join("signing.key").exists(),
        "no key made behind the operator's back"
    );
}

/// SIGHUP while the workspaces load (seconds at scale), before the daemon's own signal
/// handlers exist: the start goes on, the signal is logged, and SIGTERM still stops it
/// gracefully. SIGHUP's default action used to end such a start, with nothing said.
#[test]
fn sighup_while_the_workspaces_load_neither_kills_nor_stops_the_start() {
    let env = TestEnv::new();
    // Enough workspaces that loading them outlasts the signal's way to the daemon.
    for i in 0..300 {
        std::fs::create_dir_all(env.ws(&format!("w{i:03}")).join(".baton")).unwrap();
    }
    let log = env.root().join("daemon-sighup.log");
    let mut child = std::process::Command::new(crate::util::BIN)
        .args(["serve", "--config", env.config_path().to_str().unwrap()])
        .env("BATON_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The daemon names itself in its lock just before it loads the workspaces.
    let lock = env.root().join("data/daemon.lock");
    let pid = child.id();
    let deadline = std::time::Instant::now() + crate::util::PATIENCE;
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.trim() == pid.to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never taken"
        );
        assert!(child.try_wait().unwrap().is_none(), "the daemon ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };

    // Kept open to the end: the daemon's standard output is not closed under it.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = stdout
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("baton: listening on "));
    let status = child.try_wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(listening, "the start ended ({status:?}): {said}");
    // SAFETY: as above.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "exited with {status}");
    drop(stdout);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("SIGHUP during start-up"), "{said}");
}

/// daemon.lock removed while a daemon runs (a clean-up script, a hand): a second start on the
/// same data_dir is still refused, as data_dir itself is locked, and the first daemon makes
/// daemon.lock again, naming itself. A second used to make a new daemon.lock, lock it, and
/// run beside the first.
#[test]
fn a_second_daemon_is_refused_though_daemon_lock_was_removed() {
    let mut env = TestEnv::new();
    let d = env.start();
    let lock = env.root().join("data/daemon.lock");
    std::fs::remove_file(&lock).unwrap();
    let (code, said) = crate::util::refused_start(&env.config_path());
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("another baton daemon") && said.contains("already runs on data_dir"),
        "{said}"
    );
    d.assert_alive();
    d.wait_until("daemon.lock made again", || {
        std::fs::read_to_string(&lock).is_ok_and(|pid| pid.trim() == d.pid().to_string())
    });
    d.stop();
    env.start().stop();
}

/// `baton repair` is refused while a daemon runs though daemon.lock was removed: it used to
/// take the missing file for "no daemon" and rewrite the store under the running daemon.
#[test]
fn repair_is_refused_while_a_daemon_runs_though_daemon_lock_was_removed() {
    let mut env = TestEnv::new();
    let d = env.start();
    std::fs::remove_file(env.root().join("data/daemon.lock")).unwrap();
    let config = env.config_path();
    let out = crate::util::baton(&["repair", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("runs on data_dir"), "{said}");
    d.assert_alive();
    d.stop();
}

/// No `[[users]]` or `[[agents]]` entry may be named "admin": the built-in admin's token and
/// login act under that name, so whoever holds them acted as that person, and met a
/// two-person quorum with one other approval (review H). The start is refused, naming the
/// entry.
#[test]
fn a_user_or_agent_named_as_the_builtin_admin_is_refused_at_start() {
    for entry in [
        crate::util::user("admin", "\"reviewer\""),
        crate::util::agent("admin", "*"),
    ] {
        let env = TestEnv::with_config(&entry);
        let (code, said) = crate::util::refused_start(&env.config_path());
        assert_ne!(code, Some(0), "{said}");
        assert!(
            said.contains("\"admin\" is the built-in admin's name"),
            "{said}"
        );
    }
}
