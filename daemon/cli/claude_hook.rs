//! `baton hook claude-code [--config FILE]`: a Claude Code `PreToolUse` hook. It reads the
//! hook's input on standard input, and for a tool call one of `[hooks.claude_code]`'s rules
//! matches it submits a handoff showing the tool and its arguments (the checks of `baton
//! submit`), waits as `baton wait --key` does (a decision counts only when its attestation is
//! signed by a trusted key), and prints the hook's answer: `allow` only when a person
//! approved, `deny` with the reviewer's words otherwise, and the configured fallback (`ask`
//! unless set) on a timeout or any failure. A call no rule matches passes through: nothing
//! printed, exit 0.
//!
//! Claude Code runs a tool call whose hook exits with a code other than 0 or 2, so this
//! command answers every failure, a panic included, with a decision on standard output and
//! exit 0: nothing here may end in "allow" that no person approved.

use super::agent::{self, Waited};
use super::submit;
use baton::config::hooks::{ClaudeCode, Fallback, HookRule};
use baton::config::Config;
use baton::contract::validate::Format;
use baton::contract::{Decision, Outcome};
use baton::receipts::PublicKey;
use baton::workspace::{self, Workspace};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The hook input is a tool call's arguments; a Write of a large file is the most it holds.
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;
/// How much of the arguments the handoff's summary shows; the whole input is in `context`.
const SHOWN_ARGUMENT_BYTES: usize = 32 * 1024;
/// How often the decision is looked for: a person's answer reaches the agent this soon.
const POLL: Duration = Duration::from_millis(100);
/// How long a workspace without a heartbeat yet is given to get one (see `warn_if_unserved`).
const ADOPTION_WAIT: Duration = Duration::from_secs(3);

/// What Claude Code is told.
#[derive(Debug, PartialEq)]
enum Answer {
    /// No rule stops this call: Claude Code's own permission flow goes on.
    PassThrough,
    Decide {
        decision: &'static str,
        reason: String,
    },
}

impl Answer {
    fn fallback(to: Fallback, reason: String) -> Answer {
        Answer::Decide {
            decision: to.as_str(),
            reason,
        }
    }
}

/// The `PreToolUse` input as Claude Code documents it; other members are ignored.
#[derive(Deserialize)]
struct HookInput {
    #[serde(default)]
    session_id: String,
    #[serde(default)]
    cwd: String,
    hook_event_name: String,
    tool_name: String,
    #[serde(default)]
    tool_input: Value,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    permission_mode: Option<String>,
    #[serde(default)]
    agent_type: Option<String>,
}

pub fn claude_code(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let answer = std::panic::catch_unwind(|| decide(config)).unwrap_or_else(|_| {
        Answer::fallback(
            Fallback::Ask,
            "baton hook claude-code failed unexpectedly (see its standard error); no person \
             approved this call"
                .into(),
        )
    });
    if let Answer::Decide { decision, reason } = &answer {
        tracing::info!(decision, reason = %reason, "claude-code hook answered");
        let out = json!({
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": decision,
                "permissionDecisionReason": reason,
            }
        });
        out!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The answer for the call on standard input, failures made into the configured fallback.
fn decide(config: Option<&Path>) -> Answer {
    // The input is read before anything else, so Claude Code never writes into a closed pipe.
    let mut raw = Vec::new();
    let read = std::io::stdin().take(MAX_INPUT_BYTES).read_to_end(&mut raw);
    // The file `Config::load` reads: the one named, else `baton.toml` here if there is one.
    let config_file = config.map(Path::to_path_buf).or_else(|| {
        let local = std::path::PathBuf::from("baton.toml");
        local.exists().then_some(local)
    });
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            // Without the rules nobody can say this call may pass: the person at the terminal is.
            return Answer::fallback(
                Fallback::Ask,
                format!("baton hook claude-code cannot read its configuration: {e}; fix it (`baton doctor` checks it)"),
            );
        }
    };
    let Some(hook) = config
        .hooks
        .claude_code
        .clone()
        .filter(|h| !h.rules.is_empty())
    else {
        return Answer::PassThrough;
    };
    let failed = |what: String| {
        Answer::fallback(
            hook.on_error,
            format!("baton hook claude-code: {what}; no person approved this call"),
        )
    };
    if let Err(e) = read {
        return failed(format!("cannot read the hook input on standard input: {e}"));
    }
    let input: HookInput = match serde_json::from_slice(&raw) {
        Ok(i) => i,
        Err(e) => return failed(format!("the hook input is not a PreToolUse input: {e}")),
    };
    if input.hook_event_name != "PreToolUse" {
        return failed(format!(
            "registered for {} in settings.json; it answers PreToolUse only",
            input.hook_event_name
        ));
    }
    let Some(rule) = hook
        .rules
        .iter()
        .find(|r| r.matches(&input.tool_name, &input.tool_input))
    else {
        return Answer::PassThrough;
    };
    match ask_a_person(&config, config_file.as_deref(), &hook, rule, &input) {
        Ok(answer) => answer,
        Err(e) => failed(format!("{e:#}")),
    }
}

/// Submits the call as a handoff and waits for a person's signed decision.
fn ask_a_person(
    config: &Config,
    config_file: Option<&Path>,
    hook: &ClaudeCode,
    rule: &HookRule,
    input: &HookInput,
) -> anyhow::Result<Answer> {
    refuse_the_daemons_user(config)?;
    let key_file = hook
        .key_file
        .clone()
        .or_else(|| std::env::var_os("BATON_KEY").map(std::path::PathBuf::from));
    let files: Vec<&Path> = [config_file, key_file.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    refuse_writable_trust(&files)?;
    let ws = workspace_of(config, hook, &input.cwd)?;
    if let Err(why) = baton::heartbeat::check_patiently(&ws, ADOPTION_WAIT) {
        anyhow::bail!(
            "no running daemon serves workspace {} ({why}): nobody would see this call; start \
             `baton serve` with a configuration whose `workspaces` cover it",
            ws.root.display()
        );
    }
    let trusted = trusted_keys(hook)?;
    let doc = handoff(&ws, hook, rule, input);
    let bytes = serde_json::to_vec_pretty(&doc)?;
    let key = match submit::check(&ws, Some(config), Format::Json, &bytes, &config.limits) {
        Ok(key) => key,
        Err(problems) => {
            let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "the handoff for this call is refused: {}",
                listed.join("; ")
            );
        }
    };
    let path = ws.root.join(workspace::HANDOFF_FILE);
    ws.write(&path, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if Waited::start(&ws)?.key() != Some(key.as_str()) {
        anyhow::bail!(
            "another handoff replaced this call's in {} at once; give the hook a workspace of its own",
            ws.root.display()
        );
    }
    // Pinned to the bytes written here: a same-id rewrite by the agent (which can write the
    // workspace) is another revision, and its approval approves nothing of this call.
    let mut waited = Waited::written(&key, agent::digests_of_bytes(Format::Json, &bytes))
        .trusting(Some(trusted));
    tracing::info!(workspace = %ws.name, key, tool = %input.tool_name, "waiting for a person");
    let deadline = Instant::now() + Duration::from_secs(hook.timeout_s);
    loop {
        if let Some(d) = waited.answer(&ws)? {
            return Ok(answer_for(&d, &key, &input.tool_name));
        }
        if Instant::now() >= deadline {
            let mut reason = format!(
                "nobody decided on this {} call in baton within {} s (handoff {key} in workspace {})",
                input.tool_name, hook.timeout_s, ws.name
            );
            if let Some(why) = &waited.refused {
                // A decision.json was there but not signed by a trusted key: not taken.
                reason.push_str(&format!("; a decision.json was refused: {why}"));
            }
            return Ok(Answer::fallback(hook.on_timeout, reason));
        }
        std::thread::sleep(POLL);
    }
}

/// The workspace `workspace` names (a name of the configuration's, or a folder), else the one
/// the session's folder is in.
fn workspace_of(config: &Config, hook: &ClaudeCode, cwd: &str) -> anyhow::Result<Workspace> {
    match &hook.workspace {
        Some(path) if path.contains('/') => Workspace::open(Path::new(path))
            .map_err(|e| anyhow::anyhow!("hooks.claude_code.workspace {path}: {e}")),
        Some(name) => {
            let found = workspace::discover(&config.workspaces)?;
            found
                .workspaces
                .into_iter()
                .find(|w| &w.name == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "hooks.claude_code.workspace: no workspace named \"{name}\" under the \
                         configuration's `workspaces` (`baton init DIR` makes one)"
                    )
                })
        }
        None => Path::new(cwd)
            .ancestors()
            .find_map(|dir| Workspace::open(dir).ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the session's folder {cwd:?} is in no workspace and hooks.claude_code.workspace \
                     names none: set it"
                )
            }),
    }
}

/// Claude Code runs its tool calls as the user that runs its hooks. A user who can read the
/// daemon's data_dir (its owner, or root) can read the signing key and the key of mail links,
/// so a call the rules let through (`cat`, `python3`) could forge any approval: no answer of
/// such a hook is worth anything, and it says so instead of waiting.
fn refuse_the_daemons_user(config: &Config) -> anyhow::Result<()> {
    if std::fs::read_dir(&config.data_dir).is_ok() {
        anyhow::bail!(
            "this hook runs as a user who can read the daemon's data_dir ({}), so the calls \
             Claude Code makes as this user could read its keys and forge any approval; run \
             Claude Code (and this hook) as a user other than the daemon's, with \
             hooks.claude_code.key_file naming a copy of `baton keys` it can read",
            config.data_dir.display()
        );
    }
    Ok(())
}

/// What the hook's answers rest on, its configuration (the rules, `key_file`) and the key
/// file, must be out of reach of the user it runs as: Claude Code makes its tool calls as that
/// user, and a call the rules let through could otherwise name a key of its own, sign a
/// decision.json with it and approve its own calls. Refused when that user can change the file
/// or anything on the way to it (`changeable_by_me`).
fn refuse_writable_trust(files: &[&Path]) -> anyhow::Result<()> {
    for file in files {
        if let Some(why) = changeable_by_me(file) {
            anyhow::bail!(
                "{}: {why}, by the user this hook runs as, the user Claude Code makes its tool \
                 calls as: a call could name a key of its own there and approve its own calls. \
                 Make it, and every folder above it, owned by another user and writable only \
                 by them (e.g. owned by root, mode 0644, in folders owned by root)",
                file.display()
            );
        }
    }
    Ok(())
}

/// How this process's user could change what `file` names, if it can. The path is followed
/// name by name as the kernel resolves it, links included (a link's target is checked as
/// well as the folder the link is in), and refused when the user owns the file or any folder
/// on the way (an owner can change its mode, then its content), can write the file, or can
/// write a folder on the way (it could rename an entry away and put its own in its place). A
/// sticky folder (as /tmp) is accepted when the user owns neither it nor the entry in it: it
/// lets its users rename only their own. A name that does not exist is left to the read,
/// which fails.
fn changeable_by_me(file: &Path) -> Option<String> {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Component, PathBuf};
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let may_write = |p: &Path| {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a NUL-terminated path that outlives the call. AT_EACCESS: as the
        // effective user, the one that makes the calls.
        unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
    };
    let push = |pending: &mut Vec<OsString>, path: &Path| {
        for c in path.components().rev() {
            match c {
                Component::Normal(name) => pending.push(name.to_os_string()),
                Component::ParentDir => pending.push(OsString::from("..")),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    };
    let absolute = match file.is_absolute() {
        true => file.to_path_buf(),
        false => match std::env::current_dir() {
            Ok(cwd) => cwd.join(file),
            Err(e) => return Some(format!("the current folder cannot be read ({e})")),
        },
    };
    let mut real = PathBuf::from("/");
    match std::fs::metadata(&real) {
        Ok(m) if m.uid() == me => return Some("/ is owned by this user".to_string()),
        _ if may_write(&real) => return Some("/ can be written".to_string()),
        _ => {}
    }
    let mut pending = Vec::new();
    push(&mut pending, &absolute);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            // `real` holds no link: its parent is the one `..` names.
            real.pop();
            continue;
        }
        let next = real.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&next) else {
            return None;
        };
        let folder_open = may_write(&real);
        let sticky = std::fs::metadata(&real).is_ok_and(|m| m.mode() & 0o1000 != 0);
        if folder_open && (!sticky || meta.uid() == me) {
            return Some(format!(
                "{} can be replaced (its folder can be written)",
                next.display()
            ));
        }
        if meta.file_type().is_symlink() {
            links += 1;
            let target = match std::fs::read_link(&next) {
                Ok(target) if links <= 40 => target,
                _ => return Some(format!("{} cannot be followed", next.display())),
            };
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            push(&mut pending, &target);
            continue;
        }
        if meta.uid() == me {
            return Some(format!(
                "{} is owned by this user, who can change its mode",
                next.display()
            ));
        }
        if !meta.is_dir() && may_write(&next) {
            return Some(format!("{} can be written", next.display()));
        }
        real = next;
    }
    None
}

/// The keys a decision must be signed by: `key_file`, else the file `BATON_KEY` names. None is
/// an error: an unchecked decision is never taken.
fn trusted_keys(hook: &ClaudeCode) -> anyhow::Result<Vec<PublicKey>> {
    super::receipts::trust_for_waits(hook.key_file.as_deref())?.ok_or_else(|| {
        anyhow::anyhow!(
            "no key to check decisions with: set hooks.claude_code.key_file to a file of \
             `baton keys` lines (or BATON_KEY to one)"
        )
    })
}

/// The handoff a reviewer sees: the tool, its arguments, the rule that stopped it, and a
/// deadline just past the hook's own, so the daemon closes it when nobody waits any more.
fn handoff(ws: &Workspace, hook: &ClaudeCode, rule: &HookRule, input: &HookInput) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let deadline =
        now + time::Duration::seconds(i64::try_from(hook.timeout_s).unwrap_or(86_400) + 2);
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let call = input
        .tool_use_id
        .as_deref()
        .unwrap_or(input.session_id.as_str());
    // A new handoff per call (a fresh id), so no earlier answer is ever taken for this one.
    let id: String = format!("claude-code-{call}")
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "._:-".contains(c) {
            true => c,
            false => '-',
        })
        .take(100)
        .collect();
    let id = format!("{id}-{}", now.unix_timestamp_nanos() / 1_000_000);
    let pretty = serde_json::to_string_pretty(&input.tool_input).unwrap_or_default();
    let shown = match pretty.len() > SHOWN_ARGUMENT_BYTES {
        true => {
            let mut end = SHOWN_ARGUMENT_BYTES;
            while !pretty.is_char_boundary(end) {
                end -= 1;
            }
            format!(
                "{}\n… ({} bytes in all; the whole input is in the context)",
                &pretty[..end],
                pretty.len()
            )
        }
        false => pretty,
    };
    let why = rule.reason.clone().unwrap_or_else(|| describe(rule));
    let mut context = Map::new();
    context.insert("tool_name".into(), json!(input.tool_name));
    context.insert("tool_input".into(), input.tool_input.clone());
    context.insert("cwd".into(), json!(input.cwd));
    context.insert("session_id".into(), json!(input.session_id));
    if let Some(t) = &input.tool_use_id {
        context.insert("tool_use_id".into(), json!(t));
    }
    if let Some(m) = &input.permission_mode {
        context.insert("permission_mode".into(), json!(m));
    }
    context.insert("rule".into(), json!(describe(rule)));
    json!({
        "handoff_version": "1.0",
        "id": id,
        "task_id": if input.session_id.is_empty() { "claude-code" } else { input.session_id.as_str() },
        "from_agent": input.agent_type.as_deref().unwrap_or("claude-code"),
        "title": title(&input.tool_name, &input.tool_input),
        "trigger": "critical_action",
        "reason": why,
        "task": format!("Decide whether Claude Code may run this {} call (workspace {}).", input.tool_name, ws.name),
        "summary": format!("Claude Code wants to call `{}` with these arguments:\n\n```json\n{shown}\n```\n\nApprove to let it run; reject or request changes to stop it (your comment and instructions are what the model is told).", input.tool_name),
        "context": context,
        "deadline": rfc3339(deadline),
    })
}

/// `Bash: git push origin main`: the tool and its main argument, on one short line.
fn title(tool: &str, args: &Value) -> String {
    let main = [
        "command",
        "file_path",
        "url",
        "path",
        "pattern",
        "query",
        "prompt",
    ]
    .iter()
    .find_map(|k| args.get(k).and_then(Value::as_str));
    let Some(main) = main else {
        return format!("Claude Code: {tool}");
    };
    let line = main.lines().next().unwrap_or_default();
    let short: String = line.chars().take(120).collect();
    let cut = short.len() < line.len() || main.lines().nth(1).is_some();
    format!(
        "Claude Code: {tool}: {short}{}",
        if cut { " …" } else { "" }
    )
}

/// The rule in words, for the reviewer.
fn describe(rule: &HookRule) -> String {
    let mut text = format!("hooks.claude_code rule: tool {}", rule.tool);
    if let Some(a) = &rule.argument {
        text.push_str(&format!(", argument {a}"));
        if let Some(r) = &rule.regex {
            text.push_str(&format!(" matches /{r}/"));
        }
        if let Some(g) = &rule.glob {
            text.push_str(&format!(" matches {g}"));
        }
    }
    text
}

/// A signed decision in Claude Code's terms: allow only on a person's `approved` (its signed
/// `policy` is `human`); an approval no person gave here (a route's `auto_approve_if`, a
/// reviewer's grant) is "ask", so the person at the terminal decides; every other outcome a
/// deny whose reason the model can act on.
fn answer_for(d: &Decision, key: &str, tool: &str) -> Answer {
    if d.outcome == Outcome::Approved && d.policy.as_deref() != Some("human") {
        return Answer::Decide {
            decision: "ask",
            reason: format!(
                "{} approved this {tool} call in baton (handoff {key}), but no person did: \
                 baton answers allow only for a person's approval, so you decide here",
                d.by
            ),
        };
    }
    let said = |prefix: &str| {
        let mut parts = Vec::new();
        if let Some(c) = d.comment.as_deref().filter(|c| !c.trim().is_empty()) {
            parts.push(format!("{prefix}\"{c}\""));
        }
        if let Some(i) = d
            .edits
            .instructions
            .as_deref()
            .filter(|i| !i.trim().is_empty())
        {
            parts.push(format!("instructions: {i}"));
        }
        if let Some(r) = d.edits.remaining.as_ref().filter(|r| !r.is_empty()) {
            parts.push(format!("remaining: {}", r.join("; ")));
        }
        parts.join(". ")
    };
    let with = |text: String, extra: String| match extra.is_empty() {
        true => text,
        false => format!("{text}: {extra}"),
    };
    let by = &d.by;
    let (decision, reason) = match d.outcome {
        Outcome::Approved => (
            "allow",
            with(format!("{by} approved this {tool} call in baton (handoff {key})"), said("comment: ")),
        ),
        Outcome::Rejected => (
            "deny",
            format!(
                "{}. Do not run this call; choose another way, or stop and tell the user.",
                with(format!("{by} rejected this {tool} call in baton (handoff {key})"), said("reviewer's comment: "))
            ),
        ),
        Outcome::ChangesRequested => (
            "deny",
            format!(
                "{}. Change the call as asked and try again.",
                with(format!("{by} asked for changes before this {tool} call may run (baton handoff {key})"), said("reviewer's comment: "))
            ),
        ),
        Outcome::Withdrawn => (
            "deny",
            format!("the baton handoff for this {tool} call ({key}) was withdrawn: a newer handoff replaced it in its workspace before anyone decided. Try the call again."),
        ),
        Outcome::Expired => (
            "deny",
            format!("nobody decided on this {tool} call in time (baton handoff {key} expired). Try again later, or stop and tell the user."),
        ),
        Outcome::Invalid => {
            let problems: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
            (
                "deny",
                format!("baton refused the handoff for this {tool} call ({key}) as invalid: {}. This is a setup problem: tell the user.", problems.join("; ")),
            )
        }
        Outcome::Reassigned => (
            "deny",
            with(format!("the baton handoff for this {tool} call ({key}) was reassigned to another agent"), said("comment: ")),
        ),
    };
    Answer::Decide { decision, reason }
}
