//! A private PostgreSQL server for one test, from Debian's `postgresql` package: its own data
//! folder and port, started with `pg_ctl`, stopped when dropped. As root, the server runs as
//! the `postgres` user (PostgreSQL refuses to run as root).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = server_bin().expect(
            "PostgreSQL's server programs are not installed: apt-get install postgresql (.ci/run does)",
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        let log = dir.path().join("pg.log");
        let pg = Postgres {
            port: free_port(),
            _dir: dir,
            data,
            log,
            bin,
        };
        if is_root() {
            set_mode(pg._dir.path(), 0o755);
            std::fs::create_dir(&pg.data).unwrap();
            let chown = Command::new("chown")
                .args(["postgres:postgres", pg.data.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(chown.success());
            std::fs::write(&pg.log, b"").unwrap();
            Command::new("chown")
                .args(["postgres:postgres", pg.log.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let out = pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {out:?}");
        pg.ctl("start");
        pg
    }

    /// A new, empty database; its connection URL.
    pub fn database(&self, name: &str) -> String {
        let out = self.psql("postgres", &format!("CREATE DATABASE {name}"));
        assert!(out.status.success(), "create database: {out:?}");
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn psql(&self, db: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap()
    }

    /// `pg_ctl start` or `stop` (fast: connections are cut, nothing committed is lost).
    pub fn ctl(&self, what: &str) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off",
            self.port
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                self.log.to_str().unwrap(),
                "-o",
                &opts,
                "-m",
                "fast",
                "-w",
                what,
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl {what}: {out:?}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = match is_root() {
            true => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&program);
                c
            }
            false => Command::new(&program),
        };
        command.args(args).current_dir("/").output().unwrap()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

/// Debian keeps the server programs in /usr/lib/postgresql/<major>/bin; the newest wins.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
