//! The review state machine. Its transitions are methods of the context they run in (`Cx`,
//! in `context`): each takes a workspace's state under its lock, commits its change to the
//! store in one commit, records its event (audit log, then outbox and subscribers) and
//! returns.
//!
//! - Receipt of agent files: `ingest` dispatches to `receive`, `revise`, `invalid`,
//!   `checkpoints`, `artifacts`.
//! - Reviewers' acts: `decide`, `quorum`, `edits`, `claim`, `bulk`, `ownership`, `away`.
//! - The route's: `route`, `assign` over `rota` (who holds what), `audience`, `policy` (over
//!   `sender`, who is proven to have sent a revision),
//!   `timers`, `stall`; an approval's passkey on routes that ask for one: `step_up`.
//! - What a decision leaves behind: `receipt`, `approved`, `holds`, `repair`.
//! - Agents' writes through the API: `upload`, `locks`; an agent taking its handoff back:
//!   `withdraw`.
//! - How every transition commits and announces: `records`, `record_events` over `commit`;
//!   tampering it finds raises an alert (`tamper`); what it asks of the ingest thread goes
//!   on `intake_line`.

pub(in crate::app) mod approved;
pub(in crate::app) mod artifacts;
pub(in crate::app) mod assign;
pub(in crate::app) mod attention;
pub(in crate::app) mod audience;
pub(in crate::app) mod away;
pub(in crate::app) mod bulk;
pub(in crate::app) mod canary;
pub(in crate::app) mod checkpoints;
pub(in crate::app) mod claim;
pub(in crate::app) mod commit;
pub(in crate::app) mod context;
pub(in crate::app) mod damage;
pub(in crate::app) mod decide;
pub(in crate::app) mod edits;
pub(in crate::app) mod filing;
pub(in crate::app) mod folder_check;
pub(in crate::app) mod grants;
pub(in crate::app) mod holds;
pub(in crate::app) mod ingest;
pub(in crate::app) mod intake_line;
pub(in crate::app) mod invalid;
pub(in crate::app) mod locks;
pub mod memo_damage;
pub(in crate::app) mod ownership;
pub(in crate::app) mod policy;
pub(in crate::app) mod quorum;
pub(in crate::app) mod receipt;
pub(in crate::app) mod receive;
pub(in crate::app) mod record_events;
pub(in crate::app) mod records;
pub(in crate::app) mod repair;
pub(in crate::app) mod revise;
pub(in crate::app) mod rota;
pub(in crate::app) mod route;
pub(in crate::app) mod sender;
pub(in crate::app) mod stall;
pub(in crate::app) mod step_up;
pub(in crate::app) mod tamper;
pub(in crate::app) mod timers;
pub(in crate::app) mod upload;
pub(in crate::app) mod withdraw;

use crate::documents::Documents;
use crate::store::people::People;
pub(in crate::app) use commit::Commit;
pub use context::Cx;
pub(in crate::app) use context::Notes;
use std::path::Path;
use std::sync::Arc;

/// What the transitions keep across workspaces, beside the records.
pub(in crate::app) struct Common {
    /// Artifact digests by file identity, so an unchanged file is hashed once.
    pub hashes: artifacts::HashCache,
    /// Snapshots of small text artifacts as received, for diffs between revisions.
    pub blobs: crate::blobs::Blobs,
    /// Who said they are away, so routes assign them nothing.
    pub away: away::Away,
    /// Every open claim by holder, and the assigning routes' rounds.
    pub rota: rota::Rota,
    /// When each workspace next needs its timers, stall clock and locks looked at.
    pub agenda: crate::app::runtime::agenda::Agenda,
    /// Tampering found and not yet acknowledged, by workspace (shown on /healthz).
    pub alerts: tamper::Alerts,
    /// The ingest thread, for what a transition asks of it.
    pub intake: intake_line::IntakeLine,
    /// Canaries caught and missed by reviewer, and the rate's counts (`canary`).
    pub canaries: canary::CanaryTally,
    /// Reviewers' scoped grants ("approve similar"), in data_dir/grants.json or the cluster's
    /// database.
    pub grants: grants::table::Grants,
    /// Documents every node must read alike (grants, digest cadences): data_dir's files, or
    /// the cluster's rows.
    pub documents: Arc<dyn Documents>,
    /// What each reviewer opened of each pending handoff (attention signals).
    pub attention: attention::Attentions,
    /// Reviewers' passkeys and the ceremonies under way (`step_up`).
    pub passkeys: crate::passkeys::Passkeys,
    /// Chat accounts an admin linked to people, in data_dir/chat/links.json or the cluster's
    /// database.
    pub chat_links: crate::chat::links::Links,
    /// The MAC keys of chat buttons, forms and link confirmations, as `documents`.
    pub mac_keys: crate::store::mac_keys::MacKeys,
}

impl Common {
    /// In files under data_dir, or shared by a cluster's nodes (`people`, `documents`).
    pub fn open(
        data_dir: &Path,
        people: Option<&Arc<dyn People>>,
        documents: Option<Arc<dyn Documents>>,
        public_url: &str,
    ) -> Common {
        let documents =
            documents.unwrap_or_else(|| Arc::new(crate::documents::InDataDir::new(data_dir)));
        Common {
            hashes: Default::default(),
            blobs: crate::blobs::Blobs::new(data_dir),
            away: match people {
                Some(p) => away::Away::shared(data_dir, p.clone()),
                None => away::Away::open(data_dir),
            },
            rota: match people {
                Some(p) => rota::Rota::shared(data_dir, p.clone()),
                None => rota::Rota::open(data_dir),
            },
            agenda: Default::default(),
            alerts: Default::default(),
            intake: Default::default(),
            canaries: canary::CanaryTally::open(data_dir),
            grants: grants::table::Grants::open(documents.clone()),
            documents: documents.clone(),
            attention: attention::Attentions::open(data_dir),
            passkeys: crate::passkeys::Passkeys::open(data_dir, documents.clone(), public_url),
            chat_links: crate::chat::links::Links::open(data_dir, documents.clone()),
            mac_keys: crate::store::mac_keys::MacKeys::new(documents.clone()),
        }
    }
}
