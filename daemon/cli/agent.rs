//! The agent-side commands: `validate`, `wait` (and `submit`, in its own file). They work on
//! files alone, so an agent can use them on a shared folder without reaching the daemon.

use baton::contract::schema::Kind;
use baton::contract::validate::{self, oversize_digest, sha256_hex, Format, Rejected};
use baton::contract::{json, Decision, Limits, Outcome, Problem};
use baton::workspace::{self, ReadError, Workspace};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub(super) fn read(file: &Path, limits: &Limits) -> anyhow::Result<Vec<u8>> {
    match workspace::read_limited(file, limits.max_bytes) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => anyhow::bail!("{}: no such file", file.display()),
        Err(ReadError::TooLarge { size, .. }) => {
            anyhow::bail!(
                "{}: {}",
                file.display(),
                json::too_large(size, limits).message
            )
        }
        Err(e) => anyhow::bail!("{}: {e}", file.display()),
    }
}

/// The daemon's limits as `./baton.toml` sets them (else the defaults), so an agent's check
/// agrees with what the daemon will say.
pub(super) fn limits() -> Limits {
    baton::config::Config::load(None).map_or_else(|_| Limits::default(), |c| c.limits)
}

pub(super) fn print_problems(problems: &[Problem]) -> ExitCode {
    for p in problems {
        out!("{p}");
    }
    ExitCode::from(1)
}

pub fn validate(file: &Path, kind: Option<Kind>) -> anyhow::Result<ExitCode> {
    let limits = limits();
    let bytes = match read(file, &limits) {
        Ok(b) => b,
        Err(e) => return Ok(print_problems(&[Problem::new("", format!("{e:#}"))])),
    };
    let kind = kind.unwrap_or_else(|| kind_of(file, &bytes));
    let result: Result<String, Rejected> = match kind {
        Kind::Handoff => validate::handoff_as(Format::of(file), &bytes, &limits).map(|a| {
            // Without an id the key depends on the workspace: known if the file is in one.
            let folder = file.parent().filter(|d| !d.as_os_str().is_empty());
            let workspace = Workspace::open(folder.unwrap_or(Path::new("."))).ok();
            let key = match (&a.doc.id, workspace) {
                (Some(id), _) => format!("key {id}"),
                (None, Some(ws)) => format!("key {}", validate::handoff_key(&ws.name, &a)),
                (None, None) => {
                    "no id: its key is derived from the workspace it is submitted to".into()
                }
            };
            format!(
                "valid handoff (handoff_version {}): {key}",
                a.doc.handoff_version
            )
        }),
        Kind::Checkpoint => validate::checkpoint(&bytes, &limits).map(|a| {
            format!(
                "valid checkpoint: task {} step {}",
                a.doc.task_id, a.doc.step
            )
        }),
        Kind::Decision => validate::decision(&bytes, &limits).map(|a| {
            format!(
                "valid decision: {} for {}",
                a.doc.outcome.as_str(),
                a.doc.handoff_key
            )
        }),
    };
    match result {
        Ok(line) => {
            out!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(rejected) => Ok(print_problems(&rejected.problems)),
    }
}

/// The kind of a document as the daemon would take it: by its place (`handoff.json`,
/// `decision.json`, a file under `checkpoints/`), else by its top-level version field, else a
/// handoff, so that a broken file is judged as what it most likely is.
fn kind_of(file: &Path, bytes: &[u8]) -> Kind {
    match file.file_name().and_then(|n| n.to_str()) {
        Some(name) if workspace::HANDOFF_FILES.contains(&name) => return Kind::Handoff,
        Some(workspace::DECISION_FILE) => return Kind::Decision,
        _ => {}
    }
    let folders = file.parent().into_iter().flat_map(Path::components);
    if folders
        .into_iter()
        .any(|c| c.as_os_str() == workspace::CHECKPOINTS_DIR)
    {
        return Kind::Checkpoint;
    }
    if Format::of(file) == Format::Yaml {
        // Only handoffs are taken in YAML.
        return Kind::Handoff;
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let has = |field: &str| value.as_ref().is_some_and(|v| v.get(field).is_some());
    if has("checkpoint_version") {
        Kind::Checkpoint
    } else if has("decision_version") {
        Kind::Decision
    } else {
        Kind::Handoff
    }
}

/// The digests a decision answering these handoff bytes may carry, whatever limits the daemon
/// runs with: raw bytes, canonical JSON, or the size-only digest of an oversize file.
pub(super) fn digests_of(path: &Path, format: Format) -> anyhow::Result<Vec<String>> {
    Ok(read_handoff(path, format)?.0)
}

/// The digests a decision answering exactly these handoff bytes may carry (see `digests_of`):
/// what a caller that wrote the bytes pins its wait to (`Waited::written`).
pub(super) fn digests_of_bytes(format: Format, bytes: &[u8]) -> Vec<String> {
    // Over the daemon's size limit (which this command does not know) it answers by size: of
    // these very bytes, not of the file as it was when it was looked at.
    let mut digests = vec![oversize_digest(bytes.len() as u64), sha256_hex(bytes)];
    digests.extend(validate::handoff_digest_as(format, bytes));
    digests
}

/// One read of the handoff file at `path`: the digests a decision answering it may carry (see
/// `digests_of`), and its bytes when they could be read whole.
fn read_handoff(path: &Path, format: Format) -> anyhow::Result<(Vec<String>, Option<Vec<u8>>)> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Ok((vec![sha256_hex(b"not-regular")], None));
    }
    match workspace::read_limited(path, 64 * 1024 * 1024) {
        Ok(Some(bytes)) => Ok((digests_of_bytes(format, &bytes), Some(bytes))),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok((
            vec![oversize_digest(meta.len()), sha256_hex(b"unreadable")],
            None,
        )),
        _ => Ok((vec![oversize_digest(meta.len())], None)),
    }
}

/// Which handoff a wait is for: the key submitted (`--handoff`), and the very file submitted
/// (`--submitted`), whose bytes alone a decision may answer.
pub struct About<'a> {
    pub handoff: Option<&'a str>,
    pub submitted: Option<&'a Path>,
}

pub fn wait(
    dir: &Path,
    about: About<'_>,
    timeout: Option<f64>,
    key: Option<&Path>,
    unchecked: bool,
) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let root = super::trust::Root::find(key, unchecked)?;
    let trusted = root.keys().map_err(anyhow::Error::msg)?;
    if trusted.is_none() {
        err!(
            "baton: warning: decision.json will be taken as written, unchecked (--unchecked): \
             anyone who can write {} can write it",
            ws.root.display()
        );
    }
    warn_if_unserved(&ws);
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    let mut waited = match (about.handoff, about.submitted) {
        (Some(handoff), Some(file)) => {
            // Refused as --handoff alone is when another key is in place; then pinned to the
            // bytes submitted, not to the revision in place now.
            Waited::for_key(&ws, handoff)?;
            let bytes = read(file, &limits())?;
            Waited::written(handoff, digests_of_bytes(Format::of(file), &bytes))
        }
        (Some(handoff), None) => Waited::for_key(&ws, handoff)?,
        (None, _) => Waited::start(&ws)?,
    }
    .trusting(trusted);
    let mut warned = None;
    if let Some(key) = waited.key() {
        // Says which handoff this answers for: a newer one written meanwhile is not it.
        err!("baton: waiting for the decision on handoff {key}");
    }
    loop {
        match waited.answer(&ws) {
            Ok(Some(d)) => {
                out!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(ExitCode::from(d.outcome.exit_code()));
            }
            Ok(None) => {}
            Err(e) => match e.downcast::<OtherRevision>() {
                Ok(other) => {
                    err!("baton: {other}");
                    return Ok(ExitCode::from(OtherRevision::EXIT_CODE));
                }
                Err(e) => return Err(e),
            },
        }
        if waited.refused.is_some() && waited.refused != warned {
            err!(
                "baton: warning: decision.json is not taken: {}; still waiting",
                waited.refused.as_deref().unwrap_or("")
            );
            warned.clone_from(&waited.refused);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            err!(
                "baton: no decision for the handoff in {} yet (timed out)",
                ws.root.display()
            );
            return Ok(ExitCode::from(7));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A decision signed for the waited handoff's key about a revision the waiter did not pin (a
/// same-id rewrite by a writer of the share, decided): it ends the wait, never as an answer
/// to the bytes the waiter submitted.
#[derive(Debug)]
pub(super) struct OtherRevision {
    pub key: String,
    pub outcome: &'static str,
    pub decided: String,
    pub submitted: String,
}

impl OtherRevision {
    /// `baton wait`'s exit code for it (the outcomes take 0 to 9).
    pub const EXIT_CODE: u8 = 10;
}

impl std::fmt::Display for OtherRevision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let OtherRevision {
            key,
            outcome,
            decided,
            submitted,
        } = self;
        write!(
            f,
            "handoff {key} was decided ({outcome}) on a revision that is not the one submitted: \
             the decision answers handoff_sha256 {decided}, the handoff submitted is \
             {submitted}; a writer of the workspace replaced it under the same id, so this \
             decision says nothing about what was submitted: look at what was decided, and \
             submit again if it is still needed"
        )
    }
}

impl std::error::Error for OtherRevision {}

/// The handoff a wait is for: the one in place when it began, by key, and of that key only
/// the revision pinned then (or the bytes the caller wrote, `written`). A newer handoff
/// written meanwhile closes this one (`withdrawn`), and the root decision.json then answers
/// the newer one: the wait answers with this one's archived decision, never the other's.
pub(super) struct Waited {
    /// None when the file in place has no key yet (unreadable, no id and not valid): the
    /// wait then follows the file in place.
    key: Option<String>,
    /// Keys an answer must be signed by (see `trust::Root`, `trust::Keys`); None: taken
    /// unchecked, as chosen with `--unchecked`.
    trusted: Option<super::trust::Keys>,
    /// Why the last answer found was not taken (a forged, edited or expired decision, or an
    /// artifact changed since), for the caller to warn about once.
    pub refused: Option<String>,
    /// The digests of the revision waited on: the bytes in place when the wait began, or
    /// those the caller wrote (`written`). A decision is taken only if its handoff_sha256 is
    /// one of them; a later revision under the same key is never added.
    digests: Vec<String>,
    /// Whether the pin may still be set from the file in place: only when the wait began on a
    /// file not readable as a handoff (no key), until it first reads as one.
    adopt: bool,
    /// The signature of the decision last taken (see `signed`).
    proof: Proof,
}

/// A decision's signature, as the file that was checked carried it.
#[derive(Default)]
pub(super) struct Proof {
    pub receipt: Option<baton::contract::receipt::Receipt>,
    pub attestation: Option<baton::contract::receipt::Envelope>,
}

impl Waited {
    pub(super) fn start(ws: &Workspace) -> anyhow::Result<Waited> {
        let handoff = ws.handoff_file();
        if std::fs::symlink_metadata(&handoff.path).is_err() {
            anyhow::bail!(
                "no handoff.json (or handoff.yaml) in {}: submit one first",
                ws.root.display()
            );
        }
        let InPlace { key, digests } = in_place(ws)?;
        Ok(Waited {
            adopt: key.is_none(),
            key,
            trusted: None,
            refused: None,
            digests,
            proof: Proof::default(),
        })
    }

    /// A wait for the handoff of key `key` whose bytes the caller wrote itself (`digests`, see
    /// `digests_of_bytes`): only a decision on those bytes answers it, whatever revision a
    /// writer of the share puts under the same id.
    pub(super) fn written(key: &str, digests: Vec<String>) -> Waited {
        Waited {
            key: Some(key.to_string()),
            trusted: None,
            refused: None,
            digests,
            adopt: false,
            proof: Proof::default(),
        }
    }

    /// A wait for the handoff of key `key` (the one the agent submitted): refused when another
    /// is in place, so a writer of the share who put another handoff (and its genuine
    /// decision) there before the wait began is not taken for it.
    pub(super) fn for_key(ws: &Workspace, key: &str) -> anyhow::Result<Waited> {
        let waited = Waited::start(ws)?;
        match waited.key() {
            Some(now) if now == key => Ok(waited),
            now => anyhow::bail!(
                "{} holds {}, not handoff {key}: another was written there since (the decision \
                 on {key}, if it has one, is in .baton/handoffs/{key}/decision.json, which \
                 `baton verify` checks)",
                ws.root.display(),
                now.map_or("no readable handoff".to_string(), |k| format!(
                    "handoff {k}"
                ))
            ),
        }
    }

    /// Answers count only if signed by one of `trusted` and about the bytes on disk.
    pub(super) fn trusting(self, trusted: Option<impl Into<super::trust::Keys>>) -> Waited {
        Waited {
            trusted: trusted.map(Into::into),
            ..self
        }
    }

    /// The decision for the waited handoff, once there is one it can take (see `trusting`).
    pub(super) fn answer(&mut self, ws: &Workspace) -> anyhow::Result<Option<Decision>> {
        let Some(found) = self.found(ws)? else {
            return Ok(None);
        };
        let Some(trusted) = &mut self.trusted else {
            return self.names(found.decision);
        };
        self.proof = Proof::default();
        let now = time::OffsetDateTime::now_utc();
        let mut checked = super::receipts::problems(ws, &found.doc, trusted.list(), now);
        // Signed by a key the daemon published after the wait fetched its keys (a rotation):
        // fetched again, and checked again; a forged signer is refused all the same.
        if checked.is_err() && trusted.learn(&found.doc) {
            checked = super::receipts::problems(ws, &found.doc, trusted.list(), now);
        }
        if checked.is_ok() {
            // The signature just checked, from the same bytes: the file may change after.
            self.proof = Proof {
                receipt: found.decision.receipt.clone(),
                attestation: found.decision.attestation.clone(),
            };
        }
        let checked = match checked {
            Ok(c) => match self.names(c.decision.clone()) {
                Ok(Some(_)) => Ok(c),
                named => {
                    self.proof = Proof::default();
                    return named;
                }
            },
            checked => checked,
        };
        match checked {
            // The decision as signed, not as the file says: they are equal, or it was refused.
            // A v1 receipt signs none of what the agent is told to do next, nor whether a
            // person or a policy decided: those are left out (a policy unknown is no person's).
            Ok(checked) if checked.form == baton::receipts::Form::ReceiptV1 => Ok(Some(Decision {
                policy: None,
                comment: None,
                sign_offs: Vec::new(),
                to_agent: None,
                edits: Default::default(),
                shadow: None,
                ..checked.decision
            })),
            Ok(checked) => Ok(Some(checked.decision)),
            Err(problems) => {
                self.refused = Some(problems.join("; "));
                Ok(None)
            }
        }
    }

    /// `decision` if it may answer the handoff waited on: one signed for its key, or an
    /// `invalid` one (the daemon answers bytes it cannot read, such as a file over its size
    /// limit, under a key of its own; and an `invalid` answer approves nothing). A genuine
    /// decision on another handoff (an older one's, copied to the root by a writer of the
    /// share, with the file in place made to look like that handoff) answers nothing here.
    fn names(&mut self, decision: Decision) -> anyhow::Result<Option<Decision>> {
        let ours = Some(decision.handoff_key.as_str()) == self.key.as_deref();
        if answers(&decision, &self.digests) && (ours || decision.outcome == Outcome::Invalid) {
            return Ok(Some(decision));
        }
        if ours {
            return self.other_revision(decision);
        }
        self.refused = Some(format!(
            "it is the decision on handoff {}, not on {}",
            decision.handoff_key,
            self.key.as_deref().unwrap_or("the one in place")
        ));
        Ok(None)
    }

    /// A decision signed for our key on a revision not pinned. `changes_requested` (the key
    /// opens again: the revision submitted may still be decided, as after a same-id
    /// resubmission the daemon has not read yet) and `invalid` are passed over; any other
    /// outcome ends the wait with `OtherRevision`, never as an answer.
    fn other_revision(&mut self, decision: Decision) -> anyhow::Result<Option<Decision>> {
        let decided = decision
            .handoff_sha256
            .clone()
            .unwrap_or_else(|| "absent".into());
        if matches!(
            decision.outcome,
            Outcome::ChangesRequested | Outcome::Invalid
        ) {
            self.refused = Some(format!(
                "it answers another revision of handoff {} (handoff_sha256 {decided}), not the \
                 one submitted",
                decision.handoff_key
            ));
            return Ok(None);
        }
        Err(OtherRevision {
            outcome: decision.outcome.as_str(),
            submitted: self.submitted(),
            key: decision.handoff_key,
            decided,
        }
        .into())
    }

    /// The digest of the revision waited on, as a decision on it would name it (the
    /// canonical digest when its bytes were readable, else the raw one).
    fn submitted(&self) -> String {
        self.digests
            .iter()
            .skip(1)
            .last()
            .cloned()
            .unwrap_or_default()
    }

    /// The signature of the decision `answer` last took, checked: what a host is handed to
    /// check it again (never read from the folder again, where it may have changed since).
    pub(super) fn signed(&mut self) -> Proof {
        std::mem::take(&mut self.proof)
    }

    /// The key of the handoff waited on, once known.
    pub(super) fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The decision found for the waited handoff, checked or not: one about bytes of it seen
    /// in place (`answer` then takes it only if it is signed for its key).
    fn found(&mut self, ws: &Workspace) -> anyhow::Result<Option<Found>> {
        // The key and the digests from one read: a writer flipping the file between two reads
        // could otherwise pair our key with another handoff's digests.
        let now = in_place(ws)?;
        if self.adopt {
            // The file was not readable as a handoff when the wait began: the first revision
            // read as one is ours, and pinned from then on.
            self.digests.clone_from(&now.digests);
            if now.key.is_some() {
                self.key.clone_from(&now.key);
                self.adopt = false;
            }
        }
        let root = read_decision(ws, &ws.decision_path());
        let Some(ours) = self.key.clone() else {
            // Never readable as a handoff (the daemon can only have answered it `invalid`).
            return Ok(root.filter(|d| answers(&d.decision, &self.digests)));
        };
        let archived = || read_decision(ws, &ws.archive_dir(&ours).join(workspace::DECISION_FILE));
        // The revision pinned, answered in place or (replaced since) in its archive.
        let pinned = |d: &Found| answers(&d.decision, &self.digests);
        if root.as_ref().is_some_and(pinned) {
            return Ok(root);
        }
        let archived = archived();
        if archived.as_ref().is_some_and(pinned) {
            return Ok(archived);
        }
        // Another revision under our key, decided: `answer` checks it is genuine, then ends
        // the wait with `OtherRevision` (it answers nothing submitted).
        let about_ours = |d: &Found| d.decision.handoff_key == ours;
        if now.key.as_deref() == Some(ours.as_str()) && root.as_ref().is_some_and(about_ours) {
            return Ok(root);
        }
        Ok(archived.filter(about_ours))
    }
}

/// The handoff in place as one read found it.
struct InPlace {
    /// Its `id`, else the key derived from valid content; None when neither can be read.
    key: Option<String>,
    /// The digests a decision answering those bytes may carry (`digests_of`).
    digests: Vec<String>,
}

fn in_place(ws: &Workspace) -> anyhow::Result<InPlace> {
    let handoff = ws.handoff_file();
    if std::fs::symlink_metadata(&handoff.path).is_err() {
        anyhow::bail!(
            "no handoff.json (or handoff.yaml) in {}: submit one first",
            ws.root.display()
        );
    }
    let (digests, bytes) = read_handoff(&handoff.path, handoff.format)?;
    let key = bytes.and_then(|b| key_of(ws, handoff.format, &b));
    Ok(InPlace { key, digests })
}

/// The key of a handoff with these bytes: its `id`, else the key derived from valid content.
fn key_of(ws: &Workspace, format: Format, bytes: &[u8]) -> Option<String> {
    let wide = Limits {
        max_bytes: usize::MAX,
        max_depth: 128,
        max_string: usize::MAX,
    };
    match validate::handoff_as(format, bytes, &wide) {
        Ok(accepted) => Some(validate::handoff_key(&ws.name, &accepted)),
        // A broken revision still names its handoff by id.
        Err(_) => {
            let value: serde_json::Value = match format {
                Format::Json => json::parse(bytes, &wide).ok()?,
                Format::Yaml => baton::contract::yaml::parse(bytes, &wide).ok()?.0,
            };
            value.get("id")?.as_str().map(str::to_string)
        }
    }
}

/// A decision.json found, parsed, and as the JSON it is (what a signature is checked against:
/// members a `Decision` does not know are part of it too).
struct Found {
    decision: Decision,
    doc: serde_json::Value,
}

fn read_decision(ws: &Workspace, path: &Path) -> Option<Found> {
    let bytes = ws
        .read(path, super::receipts::MAX_DECISION_BYTES)
        .ok()
        .flatten()?;
    let doc = super::receipts::parse_decision(&bytes).ok()?;
    let decision = serde_json::from_value(doc.clone()).ok()?;
    Some(Found { decision, doc })
}

/// Whether `decision` answers a handoff with one of these digests.
fn answers(decision: &Decision, digests: &[String]) -> bool {
    decision
        .handoff_sha256
        .as_ref()
        .is_some_and(|s| digests.contains(s))
}

/// How long a workspace without a heartbeat yet is given to get one: a daemon adopts a
/// workspace just made under one of its roots (and beats in it) within a moment.
const ADOPTION_WAIT: Duration = Duration::from_secs(3);

/// Warns on standard error when no running daemon serves `ws` (its heartbeat is missing or
/// stale): the agent would otherwise wait for an answer that cannot come.
pub(super) fn warn_if_unserved(ws: &Workspace) {
    if let Err(why) = baton::heartbeat::check_patiently(ws, ADOPTION_WAIT) {
        err!(
            "baton: warning: no running daemon serves {}: {why}; a handoff there is answered \
             only once a daemon whose `workspaces` cover it runs (`baton init` says which)",
            ws.root.display()
        );
    }
}
