//! What `baton wait` and `baton mcp` check a decision.json with before they take it. The
//! workspace folder is shared ground: anyone who can write it can write a decision.json that
//! says `approved`, so an answer counts only if signed by a key the daemon published, and with
//! no key to check with the wait refuses, unless its user chose `--unchecked`.

use baton::receipts::PublicKey;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The environment variable that chooses, as `--unchecked` does, to take decisions unchecked.
const UNCHECKED_VAR: &str = "BATON_UNCHECKED";

/// Where the keys a decision must be signed by come from, in the order they are looked for:
/// `--key FILE`, the file `BATON_KEY` names, the daemon at `BATON_URL`; else none, and then
/// only an explicit `--unchecked` (or `BATON_UNCHECKED=1`) lets a decision be taken.
#[derive(Clone, Debug)]
pub(super) enum Root {
    /// Read from a file of `baton keys` lines (`--key`, `BATON_KEY`).
    Keys(Vec<PublicKey>),
    /// Fetched from the daemon's public route, `GET URL/api/v1/keys`, when asked for
    /// (`fetch`), so a server that outlives a key rotation trusts the new key.
    Url(String),
    /// Chosen by its user: decisions are taken as written, and the answer says so.
    Unchecked,
    /// Nothing to check with and nothing chosen: every decision is refused (`REFUSAL`).
    None,
}

/// What to do when there is no key to check a decision with.
pub(super) const REFUSAL: &str = "no key to check decision.json with, and anyone who can \
    write the workspace can write one that says approved: set BATON_KEY to a file of \
    `baton keys` lines (or pass --key FILE), or BATON_URL to the daemon's address (its public \
    keys are fetched from it), or, to take decision.json as written, knowing that it may be \
    forged, pass --unchecked (baton mcp: BATON_UNCHECKED=1)";

impl Root {
    /// The trust root `flag` (`--key`), the environment and `unchecked` (`--unchecked`) name.
    /// A key named wins over `--unchecked`: a check asked for is never skipped.
    pub(super) fn find(flag: Option<&Path>, unchecked: bool) -> anyhow::Result<Root> {
        if let Some(keys) = super::receipts::trust_for_waits(flag)? {
            return Ok(Root::Keys(keys));
        }
        let set = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = set("BATON_URL") {
            return Ok(Root::Url(url));
        }
        let chosen = match set(UNCHECKED_VAR).as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => anyhow::bail!(
                "{UNCHECKED_VAR}={other:?}: set it to 1 to take decision.json unchecked, or \
                 unset it"
            ),
        };
        Ok(match unchecked || chosen {
            true => Root::Unchecked,
            false => Root::None,
        })
    }

    /// The keys to check with now: `Ok(None)` when decisions are taken unchecked (chosen);
    /// `Err` says why nothing can be taken (no trust root, or the daemon's keys unreachable).
    pub(super) fn keys(&self) -> Result<Option<Keys>, String> {
        match self {
            Root::Keys(keys) => Ok(Some(Keys::from(keys.clone()))),
            Root::Url(url) => fetch(url).map(|keys| {
                Some(Keys {
                    url: Some(url.clone()),
                    ..Keys::from(keys)
                })
            }),
            Root::Unchecked => Ok(None),
            Root::None => Err(REFUSAL.to_string()),
        }
    }
}

/// The daemon's public keys at `url` (`baton verify --url`'s fetch: one code path for them),
/// or why they cannot be had.
fn fetch(url: &str) -> Result<Vec<PublicKey>, String> {
    let trust = super::receipts::Trust {
        key_file: None,
        url: Some(url),
        config: None,
    };
    super::receipts::trusted_keys(&trust).map_err(|e| {
        format!(
            "cannot fetch the daemon's public keys from BATON_URL ({e:#}), so decision.json \
             cannot be checked: start the daemon or correct BATON_URL (or set BATON_KEY to a \
             file of `baton keys` lines)"
        )
    })
}

/// The least time between two fetches of the daemon's keys made because a decision named a
/// key not among them. Anyone who can write the workspace can write a decision naming a new
/// key id at every look: each costs the daemon one request at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

/// Most key ids of one decision asked about (an envelope may carry many signatures).
const MAX_SIGNERS: usize = 8;

/// The keys a wait checks decisions with. Fetched from `BATON_URL`, they are fetched again
/// when a decision is signed by a key id not among them (`learn`): the daemon may have
/// rotated its key since the wait began, and the new key's decision would otherwise be
/// refused until the wait is run again. A forged decision naming an unknown key is refused
/// all the same: the keys come from the daemon, never from the workspace.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    keys: Vec<PublicKey>,
    /// Where `keys` came from, to fetch them again; None: a file's, fixed.
    url: Option<String>,
    /// The key ids already fetched again for: each is asked about once.
    asked: HashSet<String>,
    /// When the keys were last fetched again (`REFETCH_EVERY`).
    refetched: Option<Instant>,
}

impl From<Vec<PublicKey>> for Keys {
    fn from(keys: Vec<PublicKey>) -> Keys {
        Keys {
            keys,
            url: None,
            asked: HashSet::new(),
            refetched: None,
        }
    }
}

impl Keys {
    pub(super) fn list(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Fetches the daemon's keys again when `doc` (a decision.json) is signed only by key ids
    /// not among them, each id asked about once, at most once every `REFETCH_EVERY`; true
    /// when the keys now hold one of its signers (check the decision again).
    pub(super) fn learn(&mut self, doc: &serde_json::Value) -> bool {
        let Some(url) = self.url.clone() else {
            return false;
        };
        let signers = signers(doc);
        let known = |keys: &[PublicKey]| {
            signers
                .iter()
                .any(|id| keys.iter().any(|k| &k.key_id == id))
        };
        if signers.is_empty() || known(&self.keys) {
            return false;
        }
        let new: Vec<&String> = signers
            .iter()
            .filter(|id| !self.asked.contains(*id))
            .collect();
        let recent = self.refetched.is_some_and(|t| t.elapsed() < REFETCH_EVERY);
        if new.is_empty() || recent {
            return false;
        }
        if self.asked.len() > 1024 {
            // Bounded memory against a writer naming a new id at every look; the rate bound
            // holds all the same.
            self.asked.clear();
        }
        self.asked.extend(new.iter().map(|id| id.to_string()));
        self.refetched = Some(Instant::now());
        tracing::info!(
            "decision.json is signed by key {}, not among the {} keys fetched from {url}: \
             fetching them again (the daemon may have rotated its key)",
            new.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.keys.len()
        );
        match fetch(&url) {
            Ok(keys) => {
                self.keys = keys;
                known(&self.keys)
            }
            Err(why) => {
                tracing::warn!("{why}; checking with the keys fetched before");
                false
            }
        }
    }
}

/// The key ids a decision.json says it is signed by: its attestation's signatures, or its v1
/// receipt's key (the first few; what they say is checked, never trusted).
fn signers(doc: &serde_json::Value) -> Vec<String> {
    let ids: Vec<&serde_json::Value> = match doc.get("attestation") {
        Some(envelope) => envelope["signatures"]
            .as_array()
            .map(|s| s.iter().map(|s| &s["keyid"]).collect())
            .unwrap_or_default(),
        None => vec![&doc["receipt"]["key_id"]],
    };
    ids.into_iter()
        .filter_map(|id| id.as_str())
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .take(MAX_SIGNERS)
        .map(str::to_string)
        .collect()
}

/// `workspace::unrevised_warning` (after `changes_requested`, the id that revises), checked:
/// it reads the workspace's decision.json, which any writer of the folder can forge to steer
/// the agent into submitting its work as a revision of another handoff. With keys to check
/// with, the warning is given only for a decision the daemon signed in this workspace; with
/// none (or decisions taken unchecked, as chosen) it is given as written, as before.
pub(super) fn unrevised_warning(
    ws: &baton::workspace::Workspace,
    key: &str,
    root: &Root,
) -> Option<baton::workspace::Unrevised> {
    let warning = baton::workspace::unrevised_warning(ws, key)?;
    let Ok(Some(keys)) = root.keys() else {
        return Some(warning);
    };
    let bytes = ws.read(&ws.decision_path(), super::receipts::MAX_DECISION_BYTES);
    let doc = bytes
        .ok()
        .flatten()
        .and_then(|b| super::receipts::parse_decision(&b).ok())?;
    let now = time::OffsetDateTime::now_utc();
    match baton::receipts::check(&doc, keys.list(), now) {
        Ok(checked) if checked.workspace == ws.name => Some(warning),
        Ok(checked) => {
            tracing::warn!(
                "decision.json was made in workspace {:?}, not {:?}: no revision warning from it",
                checked.workspace,
                ws.name
            );
            None
        }
        Err(why) => {
            tracing::warn!("decision.json is not taken ({why}): no revision warning from it");
            None
        }
    }
}
