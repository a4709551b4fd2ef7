//! What `baton wait` and `baton mcp` check a decision.json with before they take it. The
//! workspace folder is shared ground: anyone who can write it can write a decision.json that
//! says `approved`, so an answer counts only if signed by a key the daemon published, and with
//! no key to check with the wait refuses, unless its user chose `--unchecked`.

use baton::receipts::PublicKey;
use std::path::Path;

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
    pub(super) fn keys(&self) -> Result<Option<Vec<PublicKey>>, String> {
        match self {
            Root::Keys(keys) => Ok(Some(keys.clone())),
            Root::Url(url) => {
                let trust = super::receipts::Trust {
                    key_file: None,
                    url: Some(url),
                    config: None,
                };
                // `baton verify --url`'s fetch: one code path for the daemon's public keys.
                super::receipts::trusted_keys(&trust)
                    .map(Some)
                    .map_err(|e| {
                        format!(
                            "cannot fetch the daemon's public keys from BATON_URL ({e:#}), so \
                         decision.json cannot be checked: start the daemon or correct BATON_URL \
                         (or set BATON_KEY to a file of `baton keys` lines)"
                        )
                    })
            }
            Root::Unchecked => Ok(None),
            Root::None => Err(REFUSAL.to_string()),
        }
    }
}
