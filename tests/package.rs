//! The Debian package as an operator meets it: packaging/build-deb builds it (and its debug
//! symbols) from the binary under test, lintian finds nothing to say at --pedantic, dpkg
//! installs it on this machine, systemd-analyze verifies the unit and rates its sandbox, the
//! installed binary runs as the `baton` user on the installed configuration (telling a
//! systemd-style notify socket READY=1 once its start-up scan is done, STOPPING=1 on SIGTERM),
//! takes in a handoff and writes a decision, and a trace of it shows it stays inside the
//! unit's system call filter; `baton doctor` finds nothing to fix, and a purge takes it all
//! away.
//!
//! It changes the machine (a package, a system user), so it runs only as root with dpkg at
//! hand (as in CI) and prints why it is skipped otherwise. lintian and strace are used where
//! installed (.ci/run installs them), and the test says what it did not check otherwise.

mod lintian;
mod sandbox;

use crate::util::{BIN, PATIENCE};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has(program: &str) -> bool {
    run("sh", &["-c", &format!("command -v {program}")])
        .status
        .success()
}

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (dpkg -i needs it)".into());
    }
    for tool in ["dpkg", "dpkg-deb", "systemd-analyze", "setpriv", "adduser"] {
        if !has(tool) {
            return Some(format!("{tool} not found (.ci/run installs it)"));
        }
    }
    let installed = run("dpkg-query", &["-W", "-f=${Status}", "baton"]);
    let installed = String::from_utf8_lossy(&installed.stdout).contains("installed");
    if installed && std::env::var_os("CI").is_none() {
        return Some("a baton package is installed here already, and is left alone".into());
    }
    None
}

/// The next message on the notify socket, waiting up to PATIENCE.
fn notified(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket
        .recv(&mut buf)
        .expect("a message on the notify socket");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_debian_package_installs_a_hardened_service_that_runs_as_baton_and_purges_clean() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: the Debian package test: {why}");
        return;
    }
    let _ = run("dpkg", &["--purge", "baton"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let root = env!("CARGO_MANIFEST_DIR");
    let script = format!("{root}/packaging/build-deb");
    let built = ok(
        "bash",
        &[&script, "--binary", BIN, "--out", out.to_str().unwrap()],
    );
    let deb = built.trim();
    assert!(
        deb.ends_with("_amd64.deb") || deb.ends_with(".deb"),
        "{deb}"
    );
    // The binary under test has debug information: it goes to a package of its own.
    let dbgsym = Path::new(deb).with_file_name(
        Path::new(deb)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replacen("baton_", "baton-dbgsym_", 1),
    );
    let symbols = ok("dpkg-deb", &["-c", dbgsym.to_str().unwrap()]);
    assert!(symbols.contains("./usr/lib/debug/.build-id/"), "{symbols}");
    if has("lintian") {
        let (tags, report) = lintian::complaints(&[Path::new(deb), &dbgsym]);
        assert!(tags.is_empty(), "lintian --pedantic: {tags:#?}\n{report}");
    } else {
        eprintln!("not checked: lintian (apt-get install lintian; .ci/run installs it)");
    }
    let listed = ok("dpkg-deb", &["-c", deb]);
    for shipped in [
        "./usr/bin/baton",
        "./etc/baton/baton.toml",
        "./lib/systemd/system/baton.service",
        "./usr/share/man/man1/baton.1.gz",
        "./usr/share/man/man1/baton-doctor.1.gz",
        "./usr/share/bash-completion/completions/baton",
        "./usr/share/zsh/vendor-completions/_baton",
    ] {
        assert!(
            listed.contains(shipped),
            "{shipped} not in the package:\n{listed}"
        );
    }

    ok("dpkg", &["-i", deb]);
    let installed = Installed;
    assert!(ok("/usr/bin/baton", &["--version"]).starts_with("baton "));
    ok("id", &["baton"]);
    let data = std::fs::metadata("/var/lib/baton").unwrap();
    assert_eq!(data.mode() & 0o7777, 0o700, "/var/lib/baton is owner-only");
    let uid: u32 = ok("id", &["-u", "baton"]).trim().parse().unwrap();
    assert_eq!(data.uid(), uid, "/var/lib/baton belongs to baton");
    let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "baton"]);
    assert!(conffiles.contains("/etc/baton/baton.toml"), "{conffiles}");
    let config = std::fs::read_to_string("/etc/baton/baton.toml").unwrap();
    assert!(config.contains("data_dir = \"/var/lib/baton\""), "{config}");
    assert!(
        config.lines().filter(|l| l.starts_with('#')).count() > 20,
        "commented"
    );

    // The unit: systemd's own checker (man pages included when man is here), and the
    // hardening it must keep.
    let unit = "/lib/systemd/system/baton.service";
    let man = if has("man") { "--man=yes" } else { "--man=no" };
    ok("systemd-analyze", &["verify", man, unit]);
    let text = std::fs::read_to_string(unit).unwrap();
    for line in [
        "Type=notify",
        "User=baton",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/baton /srv/baton",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "ExecStart=/usr/bin/baton serve --config /etc/baton/baton.toml",
        "SystemCallArchitectures=native",
        "SystemCallErrorNumber=EPERM",
        "ProtectProc=invisible",
        "MemoryDenyWriteExecute=yes",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in the unit");
    }
    let (exposure, failed) = sandbox::exposure(unit);
    assert!(
        exposure <= sandbox::MAX_EXPOSURE,
        "systemd-analyze security rates the unit {exposure} (at most {} wanted); its failed checks:\n{failed}",
        sandbox::MAX_EXPOSURE
    );
    let stop: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .expect("TimeoutStopSec in seconds");
    let shutdown = baton::config::Config::load(Some(Path::new("/etc/baton/baton.toml")))
        .unwrap()
        .http
        .shutdown_timeout_s;
    assert!(
        stop > shutdown,
        "TimeoutStopSec {stop} <= shutdown_timeout_s {shutdown}"
    );

    // A workspace with a handoff in it, for the daemon's start-up scan to take in.
    let example = Path::new("/srv/baton/example");
    let _example = Removed(example);
    let source = Path::new(root).join("workspace-example");
    for file in [
        ".baton/workspace.toml",
        "handoff.json",
        "checkpoints/001-reproduce.json",
        "checkpoints/002-patch.json",
        "checkpoints/003-tests.json",
        "inbox/notes.md",
        "inbox/test-report.txt",
        "inbox/fix-retry-backoff.diff",
    ] {
        std::fs::create_dir_all(example.join(file).parent().unwrap()).unwrap();
        std::fs::copy(source.join(file), example.join(file)).unwrap();
    }
    ok("chown", &["-R", "baton:baton", example.to_str().unwrap()]);

    // The installed binary as the unit runs it, with a notify socket as systemd gives one,
    // traced where strace is at hand (strace as root, following setpriv into the daemon).
    let sockets = tmp.path().join("notify");
    std::fs::create_dir(&sockets).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket_path = sockets.join("sd");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let trace = has("strace").then(|| tmp.path().join("trace"));
    let mut command = match &trace {
        Some(log) => {
            let mut strace = Command::new("strace");
            strace.args(["-f", "-qq", "-o", log.to_str().unwrap(), "--", "setpriv"]);
            strace
        }
        None => {
            eprintln!("not checked: the daemon's system calls (apt-get install strace; .ci/run installs it)");
            Command::new("setpriv")
        }
    };
    let printed = tmp.path().join("stdout");
    let daemon = command
        .args(["--reuid=baton", "--regid=baton", "--init-groups", "--"])
        .args([
            "/usr/bin/baton",
            "serve",
            "--config",
            "/etc/baton/baton.toml",
        ])
        .current_dir("/var/lib/baton")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::fs::File::create(&printed).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Running(daemon);
    let ready = notified(&socket);
    assert!(ready.contains("READY=1"), "{ready}");
    // The pid to signal: the daemon's, which under strace is strace's child.
    let pid = match trace {
        Some(_) => {
            let me = daemon.0.id();
            let children =
                std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap();
            children
                .split_whitespace()
                .next()
                .expect("strace's child")
                .parse::<i32>()
                .unwrap()
        }
        None => daemon.0.id() as i32,
    };
    let health = ureq::get("http://127.0.0.1:7878/healthz")
        .call()
        .expect("/healthz answers")
        .into_string()
        .unwrap();
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["ready"], true, "{health}");
    // The handoff taken in and indexed, and a decision written back into the workspace.
    let deadline = Instant::now() + PATIENCE;
    while !served_and_indexed() {
        assert!(
            Instant::now() < deadline,
            "the example's handoff was not taken in and indexed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let printed = std::fs::read_to_string(&printed).unwrap();
    let token = printed
        .split_whitespace()
        .find(|w| w.starts_with("baton_"))
        .unwrap_or_else(|| panic!("no admin token printed: {printed}"));
    ureq::post("http://127.0.0.1:7878/api/v1/handoffs/fix-retry-backoff-2291/decision")
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({"outcome": "changes_requested", "comment": "packaged"}))
        .expect("the decision is taken");
    let deadline = Instant::now() + PATIENCE;
    let decision = loop {
        match std::fs::read_to_string(example.join("decision.json")) {
            Ok(text) if text.contains("changes_requested") => break text,
            _ => assert!(Instant::now() < deadline, "no decision.json written"),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(decision.contains("packaged"), "{decision}");
    // What the daemon made in data_dir is baton's, owner-only.
    for entry in walkdir::WalkDir::new("/var/lib/baton") {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert_eq!(meta.uid(), uid, "{}", entry.path().display());
        assert_eq!(meta.mode() & 0o077, 0, "{}", entry.path().display());
    }
    let doctor = run(
        "setpriv",
        &[
            "--reuid=baton",
            "--regid=baton",
            "--init-groups",
            "--",
            "/usr/bin/baton",
            "doctor",
            "--config",
            "/etc/baton/baton.toml",
        ],
    );
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{said}");
    assert!(said.contains("a baton daemon answers /healthz"), "{said}");

    // SIGTERM: STOPPING=1, then a clean exit.
    // SAFETY: kill only sends a signal to the process we started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let stopping = notified(&socket);
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    if let Some(trace) = &trace {
        let log = std::fs::read_to_string(trace).unwrap();
        let traced = sandbox::Traced::read(&log, "/usr/bin/baton");
        let allowed = sandbox::allowed_syscalls(&text);
        let outside: Vec<_> = traced
            .syscalls
            .difference(&allowed)
            .map(|call| &traced.first[call])
            .collect();
        assert!(
            outside.is_empty(),
            "the daemon made system calls the unit's SystemCallFilter= refuses (EPERM under systemd): {outside:#?}"
        );
        assert!(
            traced.syscalls.contains("inotify_add_watch"),
            "{:?}",
            traced.syscalls
        );
        eprintln!(
            "the daemon's system calls, all allowed by the unit: {:?}",
            traced.syscalls
        );
        let families = sandbox::allowed_families(&text);
        let outside: Vec<_> = traced.families.difference(&families).collect();
        assert!(
            outside.is_empty(),
            "the daemon made sockets of families RestrictAddressFamilies= refuses: {outside:?}"
        );
        assert!(
            traced.write_exec.is_empty(),
            "writable and executable memory, which MemoryDenyWriteExecute=yes refuses: {:#?}",
            traced.write_exec
        );
    }

    drop(daemon);
    drop(_example);
    drop(installed);
    // /srv/baton too: the example workspace is gone, and the daemon's folder of life locks
    // there is empty once it stopped.
    for gone in [
        "/usr/bin/baton",
        "/etc/baton",
        "/var/lib/baton",
        "/srv/baton",
        unit,
    ] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    // Kept, as Debian recommends for system users.
    ok("id", &["baton"]);
}

/// Whether the daemon on the package's port has received the example's handoff and indexed
/// the workspace (the indexer lowers its threads' priority: a call the unit must allow).
fn served_and_indexed() -> bool {
    let get = |path: &str| {
        ureq::get(&format!("http://127.0.0.1:7878{path}"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default()
    };
    let received = get("/metrics")
        .lines()
        .any(|l| l == "baton_handoffs_received_total 1");
    let health: serde_json::Value = serde_json::from_str(&get("/healthz")).unwrap_or_default();
    let indexed = health["search"]["indexing"] == false
        && health["search"]["documents"].as_u64().unwrap_or(0) > 0;
    received && indexed
}

/// A folder of the test's, removed when dropped.
struct Removed<'a>(&'a Path);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}

/// The installed daemon, killed when dropped (a failed assertion must not leave it running).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Purges the package when dropped, so a failing assertion leaves no package behind.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = run("dpkg", &["--purge", "baton"]);
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "dpkg --purge: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
