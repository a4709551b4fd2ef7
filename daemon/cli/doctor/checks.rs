//! The checks of `baton doctor`, one function each: what the daemon will meet at start (and
//! what makes it miss work later), judged without starting it.

use super::{Finding, Outcome};
use baton::config::Config;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a reachability probe (port, SMTP, webhook) waits.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Open files the daemon wants at least: its reserve for its own files plus room for
/// connections (see `run::FD_RESERVE`).
const MIN_OPEN_FILES: u64 = 4096;

pub fn data_dir(config: &Config) -> Outcome {
    let dir = &config.data_dir;
    let place = format!("data_dir = {} in {}", dir.display(), config.source_name);
    let meta = match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            if parent.is_dir() && writable(parent) {
                return Ok(format!(
                    "{} does not exist yet; the first start makes it (0700)",
                    dir.display()
                ));
            }
            let what = format!(
                "{} does not exist and {} is not a folder this user can write",
                dir.display(),
                parent.display()
            );
            let fix = format!(
                "create it as the daemon's user: install -d -m 0700 -o USER {}",
                dir.display()
            );
            return Err(vec![Finding::problem(what, place, fix)]);
        }
        Err(e) => {
            let what = format!("{} cannot be read: {e}", dir.display());
            let fix =
                "run doctor as the daemon's user (e.g. sudo -u baton baton doctor --config FILE)";
            return Err(vec![Finding::problem(what, place, fix)]);
        }
        Ok(meta) => meta,
    };
    if !meta.is_dir() {
        let fix = "point data_dir at a folder (or a path where one can be made)";
        return Err(vec![Finding::problem(
            format!("{} is not a folder", dir.display()),
            place,
            fix,
        )]);
    }
    let mut findings = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        let what = format!(
            "{} is owned by uid {}, and this check runs as uid {me}",
            dir.display(),
            meta.uid()
        );
        let fix = format!(
            "run doctor as the daemon's user, or give it the folder: chown -R USER: {}",
            dir.display()
        );
        findings.push(Finding::problem(what, place.clone(), fix));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        let what = format!(
            "{} has mode {mode:o}: other users can read the daemon's records",
            dir.display()
        );
        let fix = format!(
            "chmod 700 {} (the daemon also narrows it at start)",
            dir.display()
        );
        findings.push(Finding::warning(what, place.clone(), fix));
    }
    if let Err(e) = probe_write(dir) {
        let what = format!("{} is not writable by this user: {e}", dir.display());
        let fix = format!(
            "chown -R USER: {} for the daemon's user; on systemd, list it in ReadWritePaths=",
            dir.display()
        );
        findings.push(Finding::problem(what, place, fix));
    }
    match findings.is_empty() {
        true => Ok(format!(
            "{} is owner-only ({mode:o}) and writable",
            dir.display()
        )),
        false => Err(findings),
    }
}

pub fn workspaces(config: &Config) -> Outcome {
    let mut findings = Vec::new();
    for (i, entry) in config.workspaces.iter().enumerate() {
        let place = format!("{} in {}", config.entry_key(i), config.source_name);
        let readable = entry
            .canonicalize()
            .and_then(|dir| std::fs::read_dir(&dir).map(|_| dir));
        match readable {
            Err(e) => {
                let what = format!("{} cannot be read: {e}", entry.display());
                let fix =
                    "create the folder, correct the entry, or give the daemon's user read access";
                findings.push(Finding::problem(what, place, fix));
            }
            Ok(dir) if !dir.is_dir() => {
                let what = format!("{} is not a folder", entry.display());
                let fix = "give a workspace folder or a folder of workspaces";
                findings.push(Finding::problem(what, place, fix));
            }
            Ok(_) => {}
        }
    }
    if !findings.is_empty() {
        return Err(findings);
    }
    let found = baton::workspace::discover(&config.workspaces).map_err(|e| {
        let fix = "correct the entry or its permissions";
        vec![Finding::problem(
            e.to_string(),
            format!("workspaces in {}", config.source_name),
            fix,
        )]
    })?;
    for ws in &found.workspaces {
        // The daemon writes decision.json, .baton/events.jsonl and published copies there.
        let baton_dir = ws.root.join(".baton");
        if !writable(&ws.root) || !writable(&baton_dir) {
            let what = format!("workspace \"{}\" is not writable by this user", ws.name);
            let fix = "give the daemon's user write access to the workspace and its .baton/ (chown, or agent_group)";
            findings.push(Finding::problem(what, ws.root.display().to_string(), fix));
        }
    }
    if found.workspaces.is_empty() {
        let what = "no workspace in any entry yet (a workspace is a folder with .baton/ in it)";
        let fix = "make one: baton init DIR --config FILE";
        findings.push(Finding::warning(
            what,
            format!("workspaces in {}", config.source_name),
            fix,
        ));
    }
    match findings.is_empty() {
        true => Ok(format!(
            "{} workspace(s), readable and writable",
            found.workspaces.len()
        )),
        false => Err(findings),
    }
}

/// Network file systems: a change made on another machine raises no kernel event here.
pub fn file_systems(config: &Config) -> Outcome {
    if config.poll.is_some() {
        return Ok("poll_ms is set: changes are found by polling".into());
    }
    let mut findings = Vec::new();
    for (i, entry) in config.workspaces.iter().enumerate() {
        if let Some(kind) = network_fs(entry) {
            let what = format!(
                "{} is on {kind}: changes made by agents on other machines raise no event here",
                entry.display()
            );
            let place = format!("{} in {}", config.entry_key(i), config.source_name);
            let fix = "set poll_ms = 1000 (or run the agents on this machine)";
            findings.push(Finding::warning(what, place, fix));
        }
    }
    match findings.is_empty() {
        true => Ok("every workspace entry is on a local file system".into()),
        false => Err(findings),
    }
}

/// The network file system `path` is on, by its statfs magic; None when local.
fn network_fs(path: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes only the struct we pass, which lives for the call.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    match stat.f_type as i64 {
        0x6969 => Some("NFS"),
        0xFF534D42 | 0xFE534D42 | 0x517B => Some("SMB/CIFS"),
        0x65735546 => Some("a FUSE file system"),
        0x564c => Some("NCP"),
        0x01021997 => Some("9p"),
        _ => None,
    }
}

/// Kernel events need one inotify watch per folder.
pub fn inotify(config: &Config) -> Outcome {
    if config.poll.is_some() {
        return Ok("not used (poll_ms is set)".into());
    }
    let file = "/proc/sys/fs/inotify/max_user_watches";
    let Some(limit) = std::fs::read_to_string(file)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
    else {
        return Ok(format!("{file} not readable; not checked"));
    };
    let folders: usize = config
        .workspaces
        .iter()
        .map(|root| {
            walkdir::WalkDir::new(root)
                .follow_links(false)
                .into_iter()
                .flatten()
                .filter(|e| e.file_type().is_dir())
                .take(limit + 1)
                .count()
        })
        .sum();
    let mut findings = Vec::new();
    if folders > limit {
        let what = format!(
            "{folders} folders to watch and the kernel allows {limit} inotify watches per user"
        );
        let fix = format!("raise it: echo 'fs.inotify.max_user_watches = {}' > /etc/sysctl.d/60-baton.conf && sysctl --system (or set poll_ms)", folders * 2);
        findings.push(Finding::warning(what, file, fix));
    }
    let queue_file = "/proc/sys/fs/inotify/max_queued_events";
    let queue = std::fs::read_to_string(queue_file)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    let workspaces =
        baton::workspace::discover(&config.workspaces).map_or(0, |found| found.workspaces.len());
    if let Some(finding) = queue.and_then(|q| event_queue(q, workspaces, queue_file)) {
        findings.push(finding);
    }
    if !findings.is_empty() {
        return Err(findings);
    }
    Ok(format!(
        "{folders} folder(s) to watch, {limit} watches allowed"
    ))
}

/// Events queued per workspace in a burst into every workspace: an agent's temporary file
/// (create, write, close) and its rename, then the daemon's own writes back into the
/// workspace. Opens and reads are left out at the kernel (`watch::config`).
const EVENTS_PER_WORKSPACE: usize = 16;

/// A warning when the kernel's queue of inotify events is small for `workspaces`: when it
/// overflows, the daemon reads every workspace again (nothing is missed, but at 10,000
/// workspaces that is a start's work each time).
fn event_queue(queue: usize, workspaces: usize, file: &str) -> Option<Finding> {
    let wanted = workspaces * EVENTS_PER_WORKSPACE;
    if queue >= wanted {
        return None;
    }
    let what = format!(
        "the kernel queues {queue} inotify events and {workspaces} workspaces want some {wanted}: each overflow makes the daemon read every workspace again"
    );
    let fix = format!(
        "raise it: echo 'fs.inotify.max_queued_events = {}' > /etc/sysctl.d/60-baton.conf && sysctl --system",
        wanted.next_power_of_two()
    );
    Some(Finding::warning(what, file, fix))
}

pub fn open_files() -> Outcome {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok("unknown; not checked".into());
    }
    // The daemon raises its soft limit to the hard one, so the hard one is what counts.
    let hard = limit.rlim_max;
    if hard < MIN_OPEN_FILES {
        let what = format!(
            "the open-files hard limit is {hard}: few connections and workspaces fit under it"
        );
        let fix = format!("raise it to {MIN_OPEN_FILES} or more: LimitNOFILE=65536 in the systemd unit, or ulimit -Hn");
        return Err(vec![Finding::warning(
            what,
            "RLIMIT_NOFILE of this session",
            fix,
        )]);
    }
    Ok(format!("hard limit {hard}"))
}

/// The port is free, or a baton daemon already answers on it.
pub fn listen(config: &Config) -> Outcome {
    let addr = config.listen;
    let place = format!("listen = \"{addr}\" in {}", config.source_name);
    let err = match std::net::TcpListener::bind(addr) {
        Ok(_) => return Ok(format!("{addr} is free")),
        Err(e) => e,
    };
    if err.kind() != std::io::ErrorKind::AddrInUse {
        let fix = "use a port above 1024 and an address of this machine (e.g. 127.0.0.1:7878)";
        return Err(vec![Finding::problem(
            format!("cannot listen on {addr}: {err}"),
            place,
            fix,
        )]);
    }
    let mut probe = addr;
    if probe.ip().is_unspecified() {
        probe.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let health = ureq::AgentBuilder::new()
        .timeout(PROBE_TIMEOUT)
        .build()
        .get(&format!("http://{probe}/healthz"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    match health {
        Some(h) if h.get("ready").is_some() => Ok(format!(
            "{addr}: a baton daemon answers /healthz (status {})",
            h["status"]
        )),
        _ => {
            let what =
                format!("{addr} is taken by another program (no baton answers /healthz there)");
            let fix = format!(
                "stop that program (ss -ltnp 'sport = :{}' names it) or change listen",
                addr.port()
            );
            Err(vec![Finding::problem(what, place, fix)])
        }
    }
}

/// SMTP and webhook URLs parse and their hosts take a connection.
pub fn notifications(config: &Config) -> Outcome {
    let mut findings = Vec::new();
    let mut checked = 0;
    // The key, the URL, the default port, and whether the daemon refuses private targets
    // there (a webhook without `allow_private`).
    let mut targets: Vec<(String, String, u16, bool)> = Vec::new();
    if let Some(smtp) = &config.smtp {
        let default = if smtp.url.starts_with("smtps:") {
            465
        } else {
            25
        };
        targets.push(("smtp.url".into(), smtp.url.clone(), default, false));
    }
    for (i, hook) in config.webhooks.iter().enumerate() {
        let default = if hook.url.starts_with("https:") {
            443
        } else {
            80
        };
        targets.push((
            format!("webhooks[{i}].url ({})", hook.name),
            hook.url.clone(),
            default,
            !hook.allow_private,
        ));
    }
    for (key, raw, default_port, guarded) in targets {
        let place = format!("{key} in {}", config.source_name);
        let parsed = url::Url::parse(&raw).ok();
        let Some(host) = parsed
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_string))
        else {
            let fix =
                "write it as scheme://host[:port][/path], e.g. https://hooks.example.com/baton";
            findings.push(Finding::problem("not a URL with a host", place, fix));
            continue;
        };
        checked += 1;
        let port = parsed.and_then(|u| u.port()).unwrap_or(default_port);
        if guarded {
            if let Some(finding) = private_target(&host, port, &place) {
                findings.push(finding);
                continue;
            }
        }
        if let Err(e) = connect(&host, port) {
            let what = format!("{host}:{port} does not take a connection from here: {e}");
            let fix = "check the host name, the port and the firewall; notifications are retried meanwhile, then dead-lettered";
            findings.push(Finding::warning(what, place, fix));
        }
    }
    match findings.is_empty() {
        true => Ok(format!("{checked} channel(s) parse and answer")),
        false => Err(findings),
    }
}

/// A webhook target the daemon will refuse (its deliveries fail with "private address" and
/// are dead-lettered): the host resolves only to loopback, private or link-local addresses
/// and the webhook does not set `allow_private`. The same judgement as the daemon's.
fn private_target(host: &str, port: u16, place: &str) -> Option<Finding> {
    // A URL's IPv6 host is bracketed; the resolver wants it bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (bare, port).to_socket_addrs().ok()?.collect();
    if !baton::outbox::address::refused(&addrs) {
        return None;
    }
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    let what = format!(
        "{host}:{port} is a private address ({}): the daemon refuses to deliver there; {}",
        shown.join(", "),
        baton::outbox::address::PRIVATE_REFUSED
    );
    let fix = "point the webhook at a public address, or set allow_private = true on it if the receiver is meant to be on this host or network";
    Some(Finding::problem(what, place, fix))
}

fn connect(host: &str, port: u16) -> std::io::Result<()> {
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the name resolves to no address",
    );
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The clock: not before this software was written, and not behind data_dir's newest file
/// (a clock set back makes decisions look older than the events before them).
pub fn clock(config: &Config) -> Outcome {
    let now = SystemTime::now();
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // 2025-01-01T00:00:00Z
    if since_epoch.as_secs() < 1_735_689_600 {
        let fix = "set the clock (timedatectl set-ntp true)";
        return Err(vec![Finding::problem(
            "the system clock is before 2025",
            "the system clock",
            fix,
        )]);
    }
    let newest = walkdir::WalkDir::new(&config.data_dir)
        .max_depth(3)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    if let Some(ahead) = newest.and_then(|t| t.duration_since(now).ok()) {
        if ahead > Duration::from_secs(300) {
            let what = format!(
                "files in data_dir were written {}s in the future: the clock went back",
                ahead.as_secs()
            );
            let fix = "set the clock right (timedatectl set-ntp true) before starting the daemon";
            return Err(vec![Finding::warning(
                what,
                config.data_dir.display().to_string(),
                fix,
            )]);
        }
    }
    Ok("the system clock is plausible and not behind data_dir".into())
}

/// Whether this user may write in `dir` (as the kernel would judge it).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path, which lives for the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// Makes and removes a probe file: proves writability where access(2) cannot (read-only
/// mounts, systemd's ProtectSystem).
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".baton-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::event_queue;

    #[test]
    fn the_event_queue_is_judged_against_the_workspaces() {
        assert!(event_queue(16_384, 1_000, "q").is_none());
        assert!(event_queue(16_384, 1_100, "q").is_some());
        let finding = event_queue(16_384, 10_000, "q").expect("too small for 10,000");
        assert!(
            finding.fix.contains("max_queued_events = 262144"),
            "{}",
            finding.fix
        );
        assert!(event_queue(262_144, 10_000, "q").is_none());
    }
}
