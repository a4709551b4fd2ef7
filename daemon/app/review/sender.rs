//! Who sent a revision, as far as baton can prove it (`crate::policy::proof`): what a policy
//! reads as `sender`.

use crate::app::state::Record;

/// The agent proven to have sent `rec` whole: its handoff uploaded with that agent's token,
/// and every artifact's bytes either declared by the handoff's `sha256` or that agent's own
/// last upload to the path before it. `None` for a revision any writer of the share could
/// have made (or changed).
pub(in crate::app) fn revision_sender(
    rec: &Record,
    ws: &str,
    data_dir: &std::path::Path,
) -> Option<String> {
    let handoff = rec.handoff();
    let declared: Vec<&str> = handoff
        .artifacts
        .iter()
        .filter_map(|a| a.sha256.as_deref())
        .collect();
    let received: Vec<crate::policy::proof::Received<'_>> = rec
        .meta
        .artifacts
        .iter()
        .map(|s| crate::policy::proof::Received {
            path: &s.path,
            sha256: &s.sha256,
        })
        .collect();
    crate::policy::proof::revision_sender(data_dir, ws, &rec.meta.digest, &declared, &received)
}
