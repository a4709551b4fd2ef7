//! What a chat button (Slack, Mattermost) may still decide, and the decision it takes: the
//! revision its message showed, through `Cx::decide_via` with every rule of the page and the
//! API. Each chat proves its clicker its own way; from there on, every chat is the same.

use crate::app::model::{DecideError, Decided};
use crate::app::{App, DecisionRequest};
use crate::auth::Actor;
use crate::contract::decision::Via;
use crate::contract::Outcome;
use crate::routing::User;

/// The handoff revision a button was made for.
pub(super) struct Button<'a> {
    pub workspace: &'a str,
    pub key: &'a str,
    pub revision: u32,
    /// The digest of the content its message showed (`handoff_sha256`); None in buttons
    /// posted by an older baton.
    pub digest: Option<&'a str>,
}

/// Why a chat button decides nothing once its clicker is proven.
#[derive(Debug, thiserror::Error)]
pub enum Closed {
    #[error("the handoff was revised since this message (the button was for revision {button}, revision {current} is in place); nothing was decided. The new revision has its own message")]
    Revised { button: u32, current: u32 },
    #[error(
        "this handoff is already decided ({outcome} by {by} at {at}); nothing more was decided"
    )]
    Decided {
        outcome: &'static str,
        by: String,
        at: String,
    },
    #[error("your approval of this revision is already recorded; the handoff waits for the other approvals or sign-offs it needs")]
    AlreadyApproved,
    #[error("the handoff of this message is no longer here (withdrawn, or its workspace is gone)")]
    Gone,
    #[error("the handoff in place under this key and revision is not the content this message showed (its workspace folder was made again, and the handoff sent anew); nothing was decided. Open it in baton to read what is there now")]
    OtherContent,
    #[error("this button was posted by an older baton and is not bound to the content its message showed, so it is no longer taken; nothing was decided. Open the handoff in baton to decide")]
    Unbound,
    #[error("not decided: {0}")]
    Refused(DecideError),
}

impl Closed {
    /// Its name in `baton_chat_clicks_total{outcome}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Closed::Revised { .. } => "revised",
            Closed::Decided { .. } => "decided_before",
            Closed::AlreadyApproved => "approved_before",
            Closed::Gone => "gone",
            Closed::OtherContent => "other_content",
            Closed::Unbound => "unbound",
            Closed::Refused(_) => "refused",
        }
    }

    fn of(button: &Button, e: DecideError) -> Closed {
        match e {
            DecideError::Stale { revision, .. } => Closed::Revised {
                button: button.revision,
                current: revision,
            },
            DecideError::NotFound(_) => Closed::Gone,
            DecideError::Conflict(d) => Closed::Decided {
                outcome: d.outcome.as_str(),
                by: d.by.to_string(),
                at: d.at.to_string(),
            },
            DecideError::AlreadySigned(_) => Closed::AlreadyApproved,
            e => Closed::Refused(e),
        }
    }
}

impl App {
    /// The title of the handoff `button` names (its key where it has none), when it waits for
    /// a decision at that revision.
    pub(super) fn button_open(&self, button: &Button) -> Result<String, Closed> {
        let ws = self.cx().ws_of_key(button.key).ok_or(Closed::Gone)?;
        if ws.workspace.name != button.workspace {
            return Err(Closed::Gone);
        }
        let st = ws.lock();
        let rec = st.records.get(button.key).ok_or(Closed::Gone)?;
        if let Some(d) = &rec.decision {
            return Err(Closed::Decided {
                outcome: d.outcome.as_str(),
                by: d.by.to_string(),
                at: d.at.to_string(),
            });
        }
        if rec.meta.revision != button.revision {
            return Err(Closed::Revised {
                button: button.revision,
                current: rec.meta.revision,
            });
        }
        // Name, key and revision come back when a workspace's folder is made again and its
        // agent sends the key anew: only the content's digest tells what the reviewer saw.
        let digest = button.digest.ok_or(Closed::Unbound)?;
        if !digest.eq_ignore_ascii_case(&rec.meta.digest) {
            return Err(Closed::OtherContent);
        }
        let title = rec.handoff().title.clone();
        Ok(title.unwrap_or_else(|| button.key.to_string()))
    }

    /// Decides `outcome` (with `comment`) for `user` on the revision `button` was made for:
    /// the handoff's title and what was decided.
    pub(super) fn button_decide(
        &self,
        button: &Button,
        (outcome, comment): (Outcome, Option<String>),
        user: &User,
        via: Via,
    ) -> Result<(String, Decided), Closed> {
        let title = self.button_open(button)?;
        let request = DecisionRequest {
            outcome,
            comment,
            // Decide what the message showed: a newer revision in place refuses it.
            revision: Some(button.revision),
            // ... and the content it showed: the same name, key and revision with other
            // content (a workspace made again) refuses it.
            handoff_sha256: button.digest.map(str::to_string),
            to_agent: None,
            edits: Default::default(),
        };
        let actor = Actor::Reviewer {
            name: user.name.clone(),
            roles: user.roles.clone(),
        };
        let decided = self
            .cx()
            .decide_via(button.key, request, &actor, via)
            .map_err(|e| Closed::of(button, e))?;
        Ok((title, decided))
    }
}
