//! `baton keys` and `baton verify`: the daemon's public keys, and a check that a workspace's
//! decision.json is one the daemon signed, still valid, about the bytes on disk now.

use baton::config::Config;
use baton::contract::receipt::{provenance, provenance_kind, ApprovedClaim, HUMAN, UNKNOWN};
use baton::receipts::{self, PublicKey};
use baton::workspace::Workspace;
use std::path::Path;
use std::process::ExitCode;

/// `baton keys [--config F] [--rotate]`: prints `<key_id> <hex>` per key, or makes a new one.
pub fn keys(config: Option<&Path>, rotate: bool, revoke: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    if rotate {
        receipts::Keyring::make(&config.data_dir)?;
        err!("baton: a new signing key was made; the daemon signs with it after its next start");
    }
    if let Some(id) = revoke {
        receipts::revoke(&config.data_dir, id)?;
        err!(
            "baton: {id} is revoked (kept in {}): hand the list below to every verifier, in place \
             of the one they have; what {id} signed no longer verifies",
            config.data_dir.join("keys/revoked").display()
        );
    }
    for key in receipts::published(&config.data_dir)? {
        out!("{} {}", key.key_id, key.public_key);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the trusted keys come from. One of them must be named: a verifier that took whatever
/// key sits in the current folder would trust a key an agent planted there.
pub struct Trust<'a> {
    pub key_file: Option<&'a Path>,
    pub url: Option<&'a str>,
    pub config: Option<&'a Path>,
}

/// `baton verify DIR`: exit 0 only if DIR/decision.json is signed by a trusted key, is what
/// was signed, is about this workspace and the handoff in place, has an outcome the caller
/// accepts (`approved` unless named), is valid at `at` (default now), every byte it covers
/// (artifacts, `approved/`) is on disk as approved, and, on an approval, the decision and every
/// file of `approved/` were approved by whom the caller accepts (`approved_by`: a person unless
/// named).
pub fn verify(
    dir: &Path,
    trust: Trust,
    at: Option<&str>,
    outcomes: &[String],
    approved_by: &[String],
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let now = match at {
        None => time::OffsetDateTime::now_utc(),
        Some(text) => receipts::parse_time(text).ok_or_else(|| {
            anyhow::anyhow!(
                "--at {text:?}: not an RFC 3339 time (e.g. 2026-12-01T00:00:00Z or \
                 2026-11-30T19:00:00-05:00)"
            )
        })?,
    };
    let accepted: Vec<&str> = match outcomes.is_empty() {
        true => vec!["approved"],
        false => outcomes.iter().map(String::as_str).collect(),
    };
    if let Some(bad) = accepted.iter().find(|o| !OUTCOMES.contains(o)) {
        anyhow::bail!(
            "--outcome {bad:?}: not an outcome (one of {})",
            OUTCOMES.join(", ")
        );
    }
    let approvers: Vec<&str> = match approved_by.is_empty() {
        true => vec![HUMAN],
        false => approved_by.iter().map(String::as_str).collect(),
    };
    if let Some(bad) = approvers.iter().find(|k| !APPROVERS.contains(k)) {
        anyhow::bail!(
            "--approved-by {bad:?}: not a kind of approval (one of {})",
            APPROVERS.join(", ")
        );
    }
    let trusted = trusted_keys(&trust)?;
    let doc = read_decision(&ws)?;
    let checked = match problems(&ws, &doc, &trusted, now) {
        Ok(checked) => checked,
        Err(problems) => return Ok(refused(&problems)),
    };
    let mut problems = Vec::new();
    if !accepted.contains(&checked.outcome.as_str()) {
        problems.push(format!(
            "the decision is {}, not {} (--outcome names the outcomes to accept)",
            checked.outcome,
            accepted.join(" or ")
        ));
    }
    problems.extend(handoff_in_place(&ws, &checked));
    if checked.outcome == "approved" {
        problems.extend(approved_tree(&ws, &checked));
        problems.extend(not_approved_by(&checked, &approvers));
    }
    if !problems.is_empty() {
        return Ok(refused(&problems));
    }
    let approved = checked.approved.as_ref().map_or(String::new(), |a| {
        format!(
            ", {} file(s) in approved/, each approved by {}",
            a.len(),
            match approvers.as_slice() {
                [HUMAN] => "a person".to_string(),
                _ => approvers.join(" or "),
            }
        )
    });
    out!(
        "ok: {} {} by {} at {} in workspace {}, signed by {} ({}); {} artifact(s){approved} as decided",
        checked.handoff_key,
        checked.outcome,
        checked.by,
        checked.at,
        checked.workspace,
        checked.key_id,
        checked.form.describe(),
        checked.artifacts.len()
    );
    Ok(ExitCode::SUCCESS)
}

const OUTCOMES: [&str; 7] = [
    "approved",
    "changes_requested",
    "rejected",
    "reassigned",
    "withdrawn",
    "expired",
    "invalid",
];

/// The kinds of approval `--approved-by` names (`contract::receipt::provenance_kind`).
const APPROVERS: [&str; 4] = [HUMAN, "policy", "grant", UNKNOWN];

/// The decision itself, and each file of `approved/`, whose approval is not of a kind the
/// caller accepts, named with who or what approved it. The decision's own is its signed `by`
/// and `policy`. A file's provenance is the signed one: an attestation's per-file record;
/// for one written before that was recorded, its own artifacts carry the decision's (signed)
/// `by` and `policy` and the rest are `unknown`; a v1 receipt signs no `policy`, so its
/// artifacts are `unknown` unless its `by` names a policy or a grant.
fn not_approved_by(checked: &receipts::Checked, accepted: &[&str]) -> Vec<String> {
    let decision = &checked.decision;
    let own = match checked.form {
        receipts::Form::Attestation => provenance(&decision.by, decision.policy.as_deref()),
        receipts::Form::ReceiptV1 => provenance(&checked.by, None),
    };
    let ours = |path: &str, sha256: &str| {
        (checked.artifacts.iter())
            .any(|a| baton::app::approved_path(&a.path) == path && a.sha256 == sha256)
    };
    let files: Vec<ApprovedClaim> = match &checked.approved {
        Some(files) => files
            .iter()
            .map(|f| match &f.provenance {
                None if ours(&f.path, &f.sha256) => ApprovedClaim {
                    provenance: Some(own.clone()),
                    ..f.clone()
                },
                _ => f.clone(),
            })
            .collect(),
        None => (checked.artifacts.iter())
            .map(|a| ApprovedClaim {
                path: baton::app::approved_path(&a.path),
                sha256: a.sha256.clone(),
                provenance: Some(own.clone()),
                handoff_key: Some(checked.handoff_key.clone()),
                revision: None,
                by: Some(checked.by.clone()),
                policy: None,
            })
            .collect(),
    };
    let wanted = match accepted {
        [HUMAN] => "a person".to_string(),
        _ => accepted.join(" or "),
    };
    // The decision's own approver first: with no file in approved/ (none named, or each too
    // large to promote) the files say nothing, and a policy's approval would pass for a
    // person's.
    let own_kind = provenance_kind(&own);
    let mut problems = Vec::new();
    if !accepted.contains(&own_kind) {
        let who = match own.as_str() {
            UNKNOWN => format!(
                "the decision (by {}) does not record that a person made it",
                checked.by
            ),
            p => format!("the decision was made by {p}"),
        };
        problems.push(format!(
            "{who}, not by {wanted}: have a person decide, or accept it with --approved-by {},{own_kind}",
            accepted.join(",")
        ));
    }
    let files = files
        .iter()
        .filter(|f| !accepted.contains(&provenance_kind(f.provenance())))
        .map(|f| {
            let from = match (&f.handoff_key, f.revision) {
                (Some(key), Some(rev)) => format!(" (handoff {key} revision {rev})"),
                (Some(key), None) => format!(" (handoff {key})"),
                _ => String::new(),
            };
            let who = match f.provenance() {
                UNKNOWN => format!(
                    "has no record of who approved it{from}: it was promoted before baton \
                     recorded that"
                ),
                p => format!("was approved by {p}{from}"),
            };
            let kind = provenance_kind(f.provenance());
            format!(
                "{} {who}, not by {wanted}: have a person approve a handoff that names it, or \
                 accept it with --approved-by {},{kind}",
                f.path,
                accepted.join(",")
            )
        });
    problems.extend(files);
    problems
}

fn refused(problems: &[String]) -> ExitCode {
    for line in problems {
        out!("REFUSED: {line}");
    }
    ExitCode::from(1)
}

fn read_decision(ws: &Workspace) -> anyhow::Result<serde_json::Value> {
    let path = ws.decision_path();
    let bytes = ws
        .read(&path, MAX_DECISION_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .ok_or_else(|| anyhow::anyhow!("no decision.json in {}", ws.root.display()))?;
    parse_decision(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The largest decision.json read (a genuine one grows with the files `approved/` holds).
pub(super) const MAX_DECISION_BYTES: usize = 16 << 20;

/// decision.json as JSON, refusing a member named twice: parsers disagree on which one wins,
/// so a file with two `outcome`s could say one thing here and another to the agent.
pub(super) fn parse_decision(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let wide = baton::contract::json::Limits {
        max_bytes: MAX_DECISION_BYTES,
        max_depth: 64,
        max_string: MAX_DECISION_BYTES,
    };
    baton::contract::json::parse(bytes, &wide).map_err(|p| format!("not a decision: {p}"))
}

/// Everything wrong with decision.json (`doc`) as a signed answer in `ws` at `now`: its
/// signature, key, edits, validity, workspace, and the artifacts' bytes; or what it vouches
/// for. One check for `baton verify`, `baton wait --key` and MCP `wait_for_decision` (which
/// match the handoff themselves, as a wait may answer an archived one).
pub(super) fn problems(
    ws: &Workspace,
    doc: &serde_json::Value,
    trusted: &[PublicKey],
    now: time::OffsetDateTime,
) -> Result<receipts::Checked, Vec<String>> {
    let checked = receipts::check(doc, trusted, now).map_err(|r| vec![r.to_string()])?;
    if checked.workspace != ws.name {
        return Err(vec![format!(
            "the decision was made in workspace {:?}, not in {:?}: it was copied here",
            checked.workspace, ws.name
        )]);
    }
    let changed = changed_artifacts(ws, &checked.artifacts);
    match changed.is_empty() {
        true => Ok(checked),
        false => Err(changed),
    }
}

/// Whether the handoff in place is the one decided.
fn handoff_in_place(ws: &Workspace, checked: &receipts::Checked) -> Option<String> {
    let handoff = ws.handoff_file();
    let digests = super::agent::digests_of(&handoff.path, handoff.format).unwrap_or_default();
    match &checked.handoff_sha256 {
        Some(sha) if digests.contains(sha) => None,
        _ => Some(format!(
            "the handoff in place ({}) is not the one decided (handoff_sha256 {}): the \
             decision answers another handoff",
            handoff.path.display(),
            checked.handoff_sha256.as_deref().unwrap_or("absent")
        )),
    }
}

/// Every file in `approved/` against what the approval says it holds: each one signed, with
/// its bytes, and nothing else (a v1 receipt names only its own artifacts' copies).
fn approved_tree(ws: &Workspace, checked: &receipts::Checked) -> Vec<String> {
    let expected: std::collections::BTreeMap<String, String> = match &checked.approved {
        Some(files) => files
            .iter()
            .map(|f| (f.path.clone(), f.sha256.clone()))
            .collect(),
        None => checked
            .artifacts
            .iter()
            .map(|a| (baton::app::approved_path(&a.path), a.sha256.clone()))
            .collect(),
    };
    let mut problems = Vec::new();
    let root = ws.root.join(baton::workspace::APPROVED_DIR);
    let mut seen = std::collections::BTreeSet::new();
    // The folders promotion makes: those the approved files are in.
    let folders: std::collections::BTreeSet<&str> = (expected.keys())
        .flat_map(|path| path.match_indices('/').map(|(at, _)| &path[..at]))
        .collect();
    // approved/ itself must be the workspace's own folder: a deploy that copies it copies what
    // a link points at, files put there after this check included. No approved/ at all holds
    // nothing: every file expected is reported missing below (none when none was approved).
    match std::fs::symlink_metadata(&root) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = std::fs::read_link(&root)
                .map_or(String::new(), |t| format!(" (to {})", t.display()));
            return vec![format!(
                "approved/ is a link{to}, not the workspace's own folder: a copy of it holds \
                 whatever the link points at, not what was approved"
            )];
        }
        Ok(m) if !m.is_dir() => {
            return vec![format!(
                "approved/ is not a folder ({}): nothing was promoted into it",
                root.display()
            )]
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (expected.keys())
                .map(|missing| format!("{missing} is missing from approved/"))
                .collect()
        }
        Err(e) => return vec![format!("approved/ cannot be read: {e}")],
    }
    // follow_root_links(false): a link swapped in after the check above is seen as a link at
    // depth 0 (refused below), not followed.
    for entry in walkdir::WalkDir::new(&root)
        .follow_links(false)
        .follow_root_links(false)
    {
        let entry = match entry {
            Ok(entry) => entry,
            // Anything that cannot be read (a folder that vanished mid-walk included) is a
            // refusal: what the walk did not reach was not checked.
            Err(e) => {
                problems.push(format!("approved/ cannot be read whole: {e}"));
                continue;
            }
        };
        if entry.depth() == 0 && !entry.file_type().is_dir() {
            problems.push("approved/ was replaced while it was read".to_string());
            continue;
        }
        // Names are compared as they are: a name that is not UTF-8 could otherwise pass for a
        // signed one that holds U+FFFD where its bytes are not.
        let Some(rel) = (entry.path().strip_prefix(&ws.root).ok()).and_then(|p| p.to_str()) else {
            problems.push(format!(
                "{} is in approved/ under a name that is not UTF-8, which no approval names",
                entry.path().display()
            ));
            continue;
        };
        let rel = rel.to_string();
        if !entry.file_type().is_symlink() {
            problems.extend(mode_problem(&rel, &entry));
        }
        if entry.file_type().is_dir() {
            if entry.depth() > 0 && !folders.contains(rel.as_str()) {
                problems.push(format!(
                    "{rel}/ is a folder in approved/ that no approved file is in: what a copy \
                     of approved/ would put there was not approved"
                ));
            }
            continue;
        }
        seen.insert(rel.clone());
        match expected.get(&rel) {
            // A v1 receipt names only its own artifacts' copies: anything else is refused too.
            None => problems.push(format!("{rel} is in approved/ but no approval covers it")),
            Some(_) if !entry.file_type().is_file() => {
                problems.push(format!("{rel} is not a regular file"))
            }
            Some(sha) => match ws.sha256(entry.path()) {
                Ok(found) if &found == sha => {}
                Ok(_) => problems.push(format!("{rel} changed since it was approved")),
                Err(e) => problems.push(format!("{rel} cannot be read: {e}")),
            },
        }
    }
    for missing in expected.keys().filter(|p| !seen.contains(*p)) {
        problems.push(format!("{missing} is missing from approved/"));
    }
    problems
}

/// What is wrong with the mode of `rel` (a file or folder of `approved/`, not a link), if
/// anything. Promotion makes files 0444 and folders 0755: a set-user-id or set-group-id bit
/// would run an approved script as its owner or group wherever a deploy copies it with its
/// modes, and a file or folder others may write can change after this check.
fn mode_problem(rel: &str, entry: &walkdir::DirEntry) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match entry.metadata() {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(e) => return Some(format!("{rel} cannot be read: {e}")),
    };
    let mut wrong = Vec::new();
    if mode & 0o7000 != 0 {
        wrong.push("a set-user-id, set-group-id or sticky bit");
    }
    if mode & 0o022 != 0 {
        wrong.push("writable by others than its owner");
    }
    // An execute bit is a power no approval gave (a copy that keeps modes ships it).
    if !entry.file_type().is_dir() && mode & 0o111 != 0 {
        wrong.push("executable");
    }
    let (kind, made) = match entry.file_type().is_dir() {
        true => ("folder", "0755"),
        false => ("file", "0444"),
    };
    (!wrong.is_empty()).then(|| {
        format!(
            "{rel} has mode {mode:04o} ({}), which no approval gives: promotion makes each {kind} \
             {made}",
            wrong.join(", and ")
        )
    })
}

/// The keys `baton wait` and `baton mcp` check answers with: `--key FILE`, else the file
/// `BATON_KEY` names; None: answers are taken unchecked.
pub(super) fn trust_for_waits(flag: Option<&Path>) -> anyhow::Result<Option<Vec<PublicKey>>> {
    let env = std::env::var_os("BATON_KEY").map(std::path::PathBuf::from);
    match flag.map(Path::to_path_buf).or(env) {
        None => Ok(None),
        Some(file) => keys_from_file(&file).map(Some),
    }
}

fn keys_from_file(file: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("key file {}: {e}", file.display()))?;
    let keys: Vec<PublicKey> = text.lines().filter_map(key_line).collect();
    if keys.is_empty() {
        anyhow::bail!(
            "key file {}: no public key in it (lines as `baton keys` prints them)",
            file.display()
        );
    }
    Ok(keys)
}

/// The artifacts whose bytes on disk are not the bytes the receipt names, each with why.
fn changed_artifacts(
    ws: &Workspace,
    artifacts: &[baton::contract::receipt::ArtifactClaim],
) -> Vec<String> {
    let mut changed = Vec::new();
    for a in artifacts {
        let path = ws.root.join(&a.path);
        match ws.sha256(&path) {
            Ok(sha) if sha == a.sha256 => {}
            Ok(_) => changed.push(format!("{} changed since it was approved", a.path)),
            Err(e) => changed.push(format!("{} cannot be read: {e}", a.path)),
        }
    }
    changed
}

pub(super) fn trusted_keys(trust: &Trust) -> anyhow::Result<Vec<PublicKey>> {
    if let Some(file) = trust.key_file {
        return keys_from_file(file);
    }
    if let Some(url) = trust.url {
        return fetched(url);
    }
    let Some(config) = trust.config else {
        anyhow::bail!(
            "name the keys to trust: --key FILE (as `baton keys` prints them), --url URL (a \
             daemon's public keys) or --config FILE (its data_dir's keys); no key is trusted \
             by default, since a workspace's folder is no place to find one"
        );
    };
    let config = Config::load(Some(config))?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    Ok(receipts::published(&config.data_dir)?)
}

/// Refuses `http://` to a host other than this one (loopback) as the source of trusted keys,
/// unless its user trusts the network between (`plain_http::ALLOW_VAR`).
/// The addresses to connect to for `url` (`plain_http::reach`: those `localhost` was checked
/// to resolve to, or none to pin); refused as plain http to another host.
fn refuse_plain_http_afar(url: &str) -> anyhow::Result<Vec<std::net::SocketAddr>> {
    let Some(pinned) = super::plain_http::reach(url).map_err(anyhow::Error::msg)? else {
        anyhow::bail!(
            "{url}: keys fetched over plain http from another host are whatever anyone on the \
             way answers; use the daemon's https:// address, or pin its keys with a file of \
             `baton keys` lines (--key FILE, BATON_KEY); on a private network you trust, set \
             {}=1",
            super::plain_http::ALLOW_VAR
        );
    };
    Ok(pinned)
}

/// A line as `baton keys` prints it (`<key_id> <hex>`), or just the hex.
fn key_line(line: &str) -> Option<PublicKey> {
    let hex = line.split_whitespace().last()?;
    receipts::parse_public(hex)
}

/// The keys a daemon serves at `URL/api/v1/keys`, a public route: no token is sent, so one
/// never reaches whoever answers at that address (a port taken while the daemon is down).
/// Plain `http://` is taken only to this host: from another, the keys would be whatever
/// anyone on the way answered. No redirect is followed: one to another host, or from https to
/// plain http, would hand the choice of keys to whoever the first address sends us to.
fn fetched(url: &str) -> anyhow::Result<Vec<PublicKey>> {
    let pinned = refuse_plain_http_afar(url)?;
    let address = format!("{}/api/v1/keys", url.trim_end_matches('/'));
    // Connected to the addresses checked, not to what `localhost` resolves to a second time.
    let agent = super::api::pinned_agent(ureq::AgentBuilder::new().redirects(0), url, pinned);
    let answer = agent
        .get(&address)
        .call()
        .map_err(|e| anyhow::anyhow!("{address}: {e}"))?;
    if answer.status() != 200 {
        anyhow::bail!(
            "{address}: answered {} {}{}, not the keys; no redirect is followed (the keys \
             would be whatever the next address answers): name the daemon's own address",
            answer.status(),
            answer.status_text(),
            answer
                .header("location")
                .map_or(String::new(), |to| format!(" (to {to})"))
        );
    }
    let text = answer.into_string()?;
    let listed: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{address}: not a list of keys: {e}"))?;
    Ok(listed
        .iter()
        .filter_map(|k| k["public_key"].as_str().and_then(receipts::parse_public))
        .collect())
}
