//! The bench's PostgreSQL: BATON_BENCH_DATABASE_URL's server, or a private one started from
//! Debian's programs in a temp folder (as the `postgres` user when run as root).

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

pub struct Server {
    base: String,
    _dir: Option<tempfile::TempDir>,
    ctl: Option<(PathBuf, PathBuf)>,
}

impl Server {
    pub fn start() -> Result<Server> {
        if let Ok(url) = std::env::var("BATON_BENCH_DATABASE_URL") {
            let base = url
                .rsplit_once('/')
                .map_or(url.clone(), |(b, _)| b.to_string());
            return Ok(Server {
                base,
                _dir: None,
                ctl: None,
            });
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL's server programs: apt-get install postgresql")?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .context("no /usr/lib/postgresql/*/bin/pg_ctl")?;
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("pg");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            Command::new("chmod").arg("755").arg(dir.path()).status()?;
            std::fs::create_dir(&data)?;
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&data)
                .status()?;
        }
        let run = |program: &str, args: &[&str]| -> Result<()> {
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            let out = c.args(args).current_dir("/").output()?;
            if !out.status.success() {
                bail!("{program}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        let d = data.to_str().unwrap_or_default();
        run(
            "initdb",
            &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        // pg_stat_statements: which statements a handoff costs (`Statements`).
        let opts = format!("-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200 -c shared_preload_libraries=pg_stat_statements");
        run(
            "pg_ctl",
            &["-D", d, "-o", &opts, "-w", "-l", "/dev/null", "start"],
        )?;
        let server = Server {
            base: format!("postgres://postgres@127.0.0.1:{port}"),
            _dir: Some(dir),
            ctl: Some((bin, data)),
        };
        server
            .admin()?
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")?;
        Ok(server)
    }

    fn admin(&self) -> Result<postgres::Client> {
        Ok(postgres::Client::connect(
            &format!("{}/postgres", self.base),
            postgres::NoTls,
        )?)
    }

    /// CPU seconds (user + system) of the private server's processes: the postmaster and its
    /// children (the backends, the WAL writer, the checkpointer...). `None` for a server of
    /// BATON_BENCH_DATABASE_URL (not on this machine, or not ours to read).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let (_, data) = self.ctl.as_ref()?;
        let pid: u32 = std::fs::read_to_string(data.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let mut total = crate::cpu::seconds(pid)?;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if crate::cpu::parent(child) == Some(pid) {
                total += crate::cpu::seconds(child).unwrap_or(0.0);
            }
        }
        Some(total)
    }

    /// Forgets the statements counted so far (pg_stat_statements), when the server has it.
    pub fn reset_statements(&self) {
        if let Ok(mut client) = self.admin() {
            let _ = client.batch_execute("SELECT pg_stat_statements_reset()");
        }
    }

    /// The statements run in the database of `url` since `reset_statements`, the most called
    /// first: (calls, mean time in the server in ms, the statement's first words). Empty
    /// without pg_stat_statements.
    pub fn statements(&self, url: &str) -> Vec<(i64, f64, String)> {
        let db = url.rsplit('/').next().unwrap_or_default().to_string();
        let Ok(mut client) = self.admin() else {
            return Vec::new();
        };
        let rows = client.query(
            "SELECT s.calls, s.mean_exec_time, regexp_replace(s.query, '\\s+', ' ', 'g')
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = $1 ORDER BY s.calls DESC",
            &[&db],
        );
        rows.unwrap_or_default()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    pub fn database(&self, name: &str) -> Result<String> {
        let mut client =
            postgres::Client::connect(&format!("{}/postgres", self.base), postgres::NoTls)?;
        client.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(format!("{}/{name}", self.base))
    }

    /// Transactions committed in the database of `url` so far.
    pub fn commits(&self, url: &str) -> Result<i64> {
        let db = url.rsplit('/').next().unwrap_or_default().to_string();
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        // The statistics are sent by each backend when idle: ask for a fresh snapshot.
        client.batch_execute("SELECT pg_stat_clear_snapshot()")?;
        let row = client.query_one(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = $1",
            &[&db],
        )?;
        Ok(row.get(0))
    }
}

impl Server {
    /// Seconds from now until the last lease `node` holds expires (by the database's clock;
    /// negative once all have expired), and how many it holds.
    pub fn leases_expire_in(&self, url: &str, node: &str) -> Result<(f64, i64)> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let row = client.query_one(
            "SELECT COALESCE(EXTRACT(EPOCH FROM max(expires_at) - now())::float8, 0), count(*) \
             FROM leases WHERE node = $1",
            &[&node],
        )?;
        Ok((row.get(0), row.get(1)))
    }

    /// Each handoff key's deliveries of `event` in the outbox rows (distinct ids: a delivery
    /// is one row however often it is tried).
    pub fn deliveries_by_key(&self, url: &str, event: &str) -> Result<HashMap<String, usize>> {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let rows = client.query(
            "SELECT doc->>'key', count(DISTINCT id) FROM deliveries WHERE doc->>'event' = $1 GROUP BY 1",
            &[&event],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let key: Option<String> = r.get(0);
                let n: i64 = r.get(1);
                (key.unwrap_or_default(), n as usize)
            })
            .collect())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some((bin, data)) = &self.ctl {
            let ctl = bin.join("pg_ctl");
            let d = data.to_str().unwrap_or_default();
            let root = unsafe { libc::geteuid() } == 0;
            let _ = if root {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&ctl)
                    .args(["-D", d, "-m", "immediate", "stop"])
                    .output()
            } else {
                Command::new(&ctl)
                    .args(["-D", d, "-m", "immediate", "stop"])
                    .output()
            };
        }
    }
}
