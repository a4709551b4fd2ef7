//! The Debian package as an operator meets it: packaging/build-deb builds it from the binary
//! under test, dpkg installs it on this machine, systemd-analyze verifies the unit, the
//! installed binary runs as the `baton` user on the installed configuration (telling a
//! systemd-style notify socket READY=1 once its start-up scan is done, STOPPING=1 on SIGTERM)
//! and answers /healthz, `baton doctor` finds nothing to fix, and a purge takes it all away.
//!
//! It changes the machine (a package, a system user), so it runs only as root with dpkg at
//! hand (as in CI) and prints why it is skipped otherwise.

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
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in the unit");
    }
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

    // The installed binary as the unit runs it, with a notify socket as systemd gives one.
    let sockets = tmp.path().join("notify");
    std::fs::create_dir(&sockets).unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket_path = sockets.join("sd");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let daemon = Command::new("setpriv")
        .args(["--reuid=baton", "--regid=baton", "--init-groups", "--"])
        .args([
            "/usr/bin/baton",
            "serve",
            "--config",
            "/etc/baton/baton.toml",
        ])
        .current_dir("/var/lib/baton")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Running(daemon);
    let ready = notified(&socket);
    assert!(ready.contains("READY=1"), "{ready}");
    let health = ureq::get("http://127.0.0.1:7878/healthz")
        .call()
        .expect("/healthz answers")
        .into_string()
        .unwrap();
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["ready"], true, "{health}");
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
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGTERM) };
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

    drop(daemon);
    drop(installed);
    for gone in ["/usr/bin/baton", "/etc/baton", "/var/lib/baton", unit] {
        assert!(!Path::new(gone).exists(), "{gone} left after purge");
    }
    // Kept, as Debian recommends for system users.
    ok("id", &["baton"]);
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
