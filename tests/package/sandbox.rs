//! The unit's sandbox, measured where systemd is not PID 1: `systemd-analyze security` rates the
//! unit file, and a trace of the daemon (strace) shows that what it does at run time stays
//! inside what the unit allows (its system calls, socket families and memory mappings).

use std::collections::BTreeSet;
use std::process::Command;

/// The highest exposure `systemd-analyze security` may give the unit (0 safest, 10 worst;
/// systemd calls up to 2.0 "OK" and up to 1.0 "SAFE").
pub const MAX_EXPOSURE: f64 = 2.0;

/// The unit's overall exposure as `systemd-analyze security --offline=yes` rates the file,
/// with the report (its failed checks) for messages.
pub fn exposure(unit: &str) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", unit])
        .output()
        .expect("systemd-analyze runs");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    // "→ Overall exposure level for baton.service: 1.6 OK 🙂"
    let score = report
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for ")?
                .1
                .split_once(": ")
        })
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no overall exposure in systemd-analyze security's report:\n{report}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let failed = report
        .lines()
        .filter(|l| l.starts_with('✗'))
        .collect::<Vec<_>>()
        .join("\n");
    (score, failed)
}

/// The system calls the unit's `SystemCallFilter=` lines allow: the first line an allow list,
/// each later `~` line taking calls away and each other line adding them, as systemd reads
/// them; `@groups` expanded with `systemd-analyze syscall-filter`.
pub fn allowed_syscalls(unit_text: &str) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    let lines = unit_text
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="));
    for (i, line) in lines.enumerate() {
        let (deny, names) = match line.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        assert!(
            i > 0 || !deny,
            "the unit's first SystemCallFilter= is a deny list; this check reads allow lists"
        );
        for name in names.split_whitespace() {
            let calls = expand(name);
            if deny {
                allowed.retain(|c| !calls.contains(c));
            } else {
                allowed.extend(calls);
            }
        }
    }
    assert!(!allowed.is_empty(), "the unit has no SystemCallFilter=");
    allowed
}

/// One system call, or every call of a `@group` (groups within it expanded too).
fn expand(name: &str) -> BTreeSet<String> {
    if !name.starts_with('@') {
        return BTreeSet::from([name.to_string()]);
    }
    let out = Command::new("systemd-analyze")
        .args(["syscall-filter", "--no-pager", name])
        .output()
        .expect("systemd-analyze syscall-filter runs");
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {name}"
    );
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut calls = BTreeSet::new();
    // The first line names the group; members are indented, comments start with '#'.
    for member in listed.lines().skip(1).map(str::trim) {
        if member.is_empty() || member.starts_with('#') {
            continue;
        }
        calls.extend(expand(member));
    }
    calls
}

/// What a trace (`strace -f -o FILE`) shows the daemon did, from the moment `program` was
/// executed (what ran before, such as setpriv changing users, is not the daemon's).
#[derive(Debug, Default)]
pub struct Traced {
    /// The system calls made, by name.
    pub syscalls: BTreeSet<String>,
    /// The families of the sockets it made (AF_INET, AF_UNIX, ...).
    pub families: BTreeSet<String>,
    /// Memory mapped or protected writable and executable at once (the trace's lines).
    pub write_exec: Vec<String>,
    /// The first line of each call made, for messages.
    pub first: std::collections::BTreeMap<String, String>,
}

impl Traced {
    pub fn read(log: &str, program: &str) -> Traced {
        let mut traced = Traced::default();
        let exec = format!("execve(\"{program}\"");
        let Some(start) = log.find(&exec) else {
            panic!("no {exec} in the trace");
        };
        let from = log[..start].rfind('\n').map_or(0, |i| i + 1);
        for line in log[from..].lines() {
            // "1234  name(args...) = 0", "1234  name(args <unfinished ...>"; resumptions
            // ("<... name resumed>"), signals ("---") and exits ("+++") name no new call.
            let call = line
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            let Some((name, args)) = call.split_once('(') else {
                continue;
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            traced.syscalls.insert(name.to_string());
            traced
                .first
                .entry(name.to_string())
                .or_insert_with(|| line.to_string());
            if name == "socket" || name == "socketpair" {
                let family = args.split(',').next().unwrap_or("").trim();
                traced.families.insert(family.to_string());
            }
            let mapping = matches!(name, "mmap" | "mprotect" | "pkey_mprotect");
            if mapping && args.contains("PROT_WRITE") && args.contains("PROT_EXEC") {
                traced.write_exec.push(line.to_string());
            }
        }
        traced
    }
}

/// The families the unit's `RestrictAddressFamilies=` allows.
pub fn allowed_families(unit_text: &str) -> BTreeSet<String> {
    unit_text
        .lines()
        .filter_map(|l| l.strip_prefix("RestrictAddressFamilies="))
        .flat_map(str::split_whitespace)
        .map(str::to_string)
        .collect()
}

/// The unit as shipped, rated without installing it (the package test rates the installed
/// one too, as root): a sandbox loosened in packaging/ fails here on any machine.
#[test]
fn the_shipped_unit_is_rated_at_most_max_exposure() {
    crate::util::tools::require("systemd-analyze", "systemd");
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/baton.service");
    let (score, failed) = exposure(unit.to_str().unwrap());
    assert!(
        score <= MAX_EXPOSURE,
        "systemd-analyze security rates packaging/baton.service {score} (at most {MAX_EXPOSURE} \
         wanted); its failed checks:\n{failed}"
    );
    // What the daemon needs stays allowed (the package test traces it using them).
    let allowed = allowed_syscalls(&std::fs::read_to_string(&unit).unwrap());
    for call in [
        "setpriority",
        "lchown",
        "fchown",
        "inotify_add_watch",
        "sync_file_range",
    ] {
        assert!(allowed.contains(call), "{call} is not allowed by the unit");
    }
    for call in ["setuid", "mount", "reboot", "setrlimit"] {
        assert!(!allowed.contains(call), "{call} is allowed by the unit");
    }
}

#[test]
fn a_trace_is_read_into_calls_families_and_writable_code() {
    let log = "\
12  execve(\"/usr/bin/setpriv\", [\"setpriv\"], 0x7ffd /* 3 vars */) = 0
12  setresuid(-1, 999, -1) = 0
12  execve(\"/usr/bin/baton\", [\"baton\"], 0x7ffd /* 3 vars */) = 0
12  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f00
13  socket(AF_INET6, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP <unfinished ...>
12  mprotect(0x7f00, 4096, PROT_READ|PROT_WRITE|PROT_EXEC) = 0
13  <... socket resumed>) = 7
12  --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER} ---
12  +++ exited with 0 +++
";
    let traced = Traced::read(log, "/usr/bin/baton");
    let names: Vec<_> = traced.syscalls.iter().map(String::as_str).collect();
    assert_eq!(names, ["execve", "mmap", "mprotect", "socket"]);
    assert_eq!(
        traced.families.iter().collect::<Vec<_>>(),
        [&"AF_INET6".to_string()]
    );
    assert_eq!(traced.write_exec.len(), 1, "{:?}", traced.write_exec);
}
