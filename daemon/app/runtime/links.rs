//! The app's side of the mail's one-time action links (`login/links.rs` makes and reads the
//! tokens): minting one per reviewer and outcome when a mail is composed, saying what a link
//! would do (the confirm page a GET shows; a GET never decides, since mail scanners and link
//! previews fetch links), and deciding with one through `Cx::decide_via`, with every rule of
//! the page and the API, recorded `via: "email_link"`.

use crate::app::model::{DecideError, Decided};
use crate::app::review::step_up::asks_passkey;
use crate::app::{App, DecisionRequest};
use crate::auth::Actor;
use crate::clock::now_s;
use crate::cluster::{ClusterError, Holder, Peer};
use crate::contract::decision::Via;
use crate::contract::handoff::Classification;
use crate::contract::Outcome;
use crate::login::links::{Channel, Link, LinkKey, LinkOutcome, TokenError, Used};
use crate::outbox::Tokens;
use crate::routing::Route;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// What a link would decide, for its confirm page.
#[derive(Debug, Clone)]
pub struct LinkTarget {
    pub link: Link,
    pub workspace: String,
    pub title: Option<String>,
    pub from_agent: String,
    /// Left out for confidential and restricted handoffs, as in the mail.
    pub summary: Option<String>,
}

/// A one-time action (a mail link, a push notification's action) as the node it was presented
/// to read it: the link its token carries, signed for `channel` with the shared key, and the
/// SHA-256 of the token, which names its used mark on every node. This, never the token, is
/// what goes to the node serving the handoff (in the signed assertion between nodes): that
/// node decides from it as from a token it read itself, so the token stays where it was shown
/// and a process answering at another node's address learns nothing it could use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckedLink {
    pub channel: Channel,
    pub link: Link,
    pub token_sha256: String,
}

/// Which node takes a one-time action (`App::link_holder`).
#[derive(Debug)]
pub enum LinkHolder {
    /// This node: it serves the handoff, or refuses the token as every node would.
    Here,
    /// The node serving the handoff, and the link checked here that it decides from.
    Peer(Peer, Box<CheckedLink>),
    /// The node that served the handoff stopped, and no other took its workspace over yet.
    Unserved,
}

/// Why a link decides nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Invalid(#[from] TokenError),
    #[error("too many links that were not baton's came from your address; try again in {} minutes", .0.as_secs().div_ceil(60))]
    Throttled(Duration),
    #[error("this link expired; nothing was decided. Open the handoff in baton to decide it")]
    Expired,
    #[error("this link was already used; it decides nothing more. Open the handoff in baton to see its decision")]
    Used,
    #[error("the handoff was revised since this mail was sent (the link was for revision {link}, revision {current} is in place); nothing was decided. A mail about the new revision has its own links")]
    Revised { link: u32, current: u32 },
    #[error("this handoff is already decided ({outcome} by {by} at {at}); the link decides nothing more")]
    Decided {
        outcome: &'static str,
        by: String,
        at: String,
    },
    #[error("your approval of this revision is already recorded; the handoff waits for the other approvals or sign-offs it needs")]
    AlreadyApproved,
    #[error("route \"{route}\" asks for your passkey to approve, which only the handoff's page can ask of you; nothing was decided. Approve on the handoff's page (link below), or reject or request changes from the mail")]
    NeedsPasskey { route: String },
    #[error("{0} is no longer a reviewer here; the link decides nothing")]
    UnknownReviewer(String),
    #[error("the handoff of this link is no longer here (withdrawn, or its workspace is gone)")]
    Gone,
    #[error("{OTHER_CONTENT}")]
    OtherContent,
    #[error("not decided: {0}")]
    Refused(DecideError),
    #[error("cannot read or keep links now ({0}); try again in a moment")]
    Io(#[from] std::io::Error),
}

impl LinkError {
    /// Its name in `baton_action_links_total{outcome}`.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkError::Invalid(_) => "invalid",
            LinkError::Throttled(_) => "throttled",
            LinkError::Expired => "expired",
            LinkError::Used => "used",
            LinkError::Revised { .. } => "revised",
            LinkError::Decided { .. } => "decided_before",
            LinkError::AlreadyApproved => "approved_before",
            LinkError::NeedsPasskey { .. } => "needs_passkey",
            LinkError::UnknownReviewer(_) => "unknown_reviewer",
            LinkError::Gone => "gone",
            LinkError::OtherContent => "other_content",
            LinkError::Refused(_) => "refused",
            LinkError::Io(_) => "io",
        }
    }
}

impl App {
    /// The tokens of `reviewer`'s mail about `key` at `revision` on `route`, good for the
    /// route's `action_link_ttl_s`; none when the route sends no links (ttl 0) or the key
    /// cannot be read (logged: the mail goes out with its page links only). No approve token
    /// on a route that asks for a passkey: a link cannot hold the ceremony, so it could only
    /// be refused (the mail sends the reviewer to the page to approve).
    pub(in crate::app) fn action_tokens(
        &self,
        reviewer: &str,
        key: &str,
        (revision, digest): (u32, &str),
        route: &Route,
    ) -> Option<Tokens> {
        let ttl_s = route.action_link_ttl_s();
        if ttl_s == 0 {
            return None;
        }
        let signer = match self.action_link_key() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the action links' key; mails go out without them");
                return None;
            }
        };
        let mint = |outcome| {
            signer.mint(&Link {
                reviewer: reviewer.to_string(),
                key: key.to_string(),
                revision,
                outcome,
                digest: Some(digest.to_string()),
                expires: now_s().saturating_add(ttl_s),
            })
        };
        Some(Tokens {
            approve: (!asks_passkey(Some(route))).then(|| mint(LinkOutcome::Approved)),
            changes: mint(LinkOutcome::ChangesRequested),
            reject: mint(LinkOutcome::Rejected),
        })
    }

    /// What the link `token` would decide, if it may decide anything now. Decides nothing.
    pub fn open_link(&self, token: &str, addr: Option<IpAddr>) -> Result<LinkTarget, LinkError> {
        let opened = self
            .read_link(token, addr)
            .and_then(|c| self.link_target(&c));
        self.count_link(opened.as_ref().map(|_| "confirm"));
        opened
    }

    /// `open_link`, for a link another node read from its token (`CheckedLink`).
    pub fn open_checked_link(&self, checked: &CheckedLink) -> Result<LinkTarget, LinkError> {
        let opened = self.link_target(checked);
        self.count_link(opened.as_ref().map(|_| "confirm"));
        opened
    }

    fn link_target(&self, checked: &CheckedLink) -> Result<LinkTarget, LinkError> {
        let link = checked.link.clone();
        self.link_actor(checked)?;
        let not_here = || LinkError::Gone;
        let ws = self.cx().ws_of_key(&link.key).ok_or_else(not_here)?;
        let st = ws.lock();
        let rec = st.records.get(&link.key).ok_or_else(not_here)?;
        still_open(&link, rec)?;
        // A confirm button that can only be refused is not offered: an approve link on a
        // passkey route (an old mail's, or minted before the route asked) sends the reviewer
        // to the page. Its POST is refused all the same, by `Cx::decide_via`'s step-up.
        let route = self.cx().route_of(rec, &ws.workspace.name);
        if link.outcome == LinkOutcome::Approved && asks_passkey(route) {
            return Err(LinkError::NeedsPasskey {
                route: route.map_or_else(String::new, |r| r.name.clone()),
            });
        }
        let h = rec.handoff();
        let thin = matches!(
            h.classification,
            Some(Classification::Confidential | Classification::Restricted)
        );
        Ok(LinkTarget {
            workspace: ws.workspace.name.clone(),
            title: h.title.clone(),
            from_agent: h.from_agent.clone(),
            summary: h.summary.clone().filter(|_| !thin),
            link,
        })
    }

    /// Decides with the link `token` (its confirm page's POST), as its reviewer, through the
    /// one decision path; the link is then used.
    pub fn use_link(
        &self,
        token: &str,
        comment: Option<String>,
        addr: Option<IpAddr>,
    ) -> Result<Decided, LinkError> {
        let used = self
            .read_link(token, addr)
            .and_then(|c| self.decide_by_link(&c, comment));
        self.count_link(used.as_ref().map(|_| "decided"));
        used
    }

    /// `use_link`, for a link another node read from its token (`CheckedLink`): the same
    /// checks, the same used mark, the same decision path.
    pub fn use_checked_link(
        &self,
        checked: &CheckedLink,
        comment: Option<String>,
    ) -> Result<Decided, LinkError> {
        let used = self.decide_by_link(checked, comment);
        self.count_link(used.as_ref().map(|_| "decided"));
        used
    }

    fn decide_by_link(
        &self,
        checked: &CheckedLink,
        comment: Option<String>,
    ) -> Result<Decided, LinkError> {
        let link = &checked.link;
        let actor = self.link_actor(checked)?;
        {
            let ws = self.cx().ws_of_key(&link.key).ok_or(LinkError::Gone)?;
            let st = ws.lock();
            let rec = st.records.get(&link.key).ok_or(LinkError::Gone)?;
            still_open(link, rec)?;
        }
        // The mark is taken before deciding, under its document's lock: of two uses at once
        // (two nodes, two tabs) one decides and the other is told the link was used. It is
        // taken back when nothing was decided, so a refusal leaves the link as it was.
        let used = self.used_links();
        if !used.mark(&checked.token_sha256, link.expires, now_s())? {
            return Err(LinkError::Used);
        }
        let decided = self.decide_with_link(link, comment, &actor);
        if decided.is_err() {
            if let Err(e) = used.unmark(&checked.token_sha256) {
                tracing::error!(error = %e, key = %link.key, "cannot take back the mark of an action link that decided nothing; the link stays used");
            }
        }
        let decided = decided?;
        tracing::info!(key = %link.key, reviewer = %link.reviewer, outcome = link.outcome.as_str(), "decided through an action link");
        Ok(decided)
    }

    fn decide_with_link(
        &self,
        link: &Link,
        comment: Option<String>,
        actor: &Actor,
    ) -> Result<Decided, LinkError> {
        let outcome = match link.outcome {
            LinkOutcome::Approved => Outcome::Approved,
            LinkOutcome::ChangesRequested => Outcome::ChangesRequested,
            LinkOutcome::Rejected => Outcome::Rejected,
        };
        let request = DecisionRequest {
            outcome,
            comment,
            // Decide what the mail was about: a newer revision in place refuses it.
            revision: Some(link.revision),
            handoff_sha256: link.digest.clone(),
            to_agent: None,
            edits: Default::default(),
        };
        self.cx()
            .decide_via(&link.key, request, actor, Via::EmailLink)
            .map_err(|e| match e {
                DecideError::Stale { revision, .. } => LinkError::Revised {
                    link: link.revision,
                    current: revision,
                },
                DecideError::NotFound(_) => LinkError::Gone,
                e => LinkError::Refused(e),
            })
    }

    /// Which node takes `token` (a mail link's, or with `Channel::Push` a notification's
    /// action): the one serving its handoff's workspace, since only that node can decide it.
    /// Here outside a cluster, and for a token this node refuses as well as any (one baton did
    /// not make, expired or used: told here, and a bad one counted against the address as
    /// always; or from an address the bad-token throttle holds back) or whose handoff no node
    /// ever served. The token is checked here with the shared key, and what was checked (the
    /// link and the token's SHA-256, `CheckedLink`) is what goes to the holder, never the
    /// token: the holder checks that link again (expiry, used mark, reviewer, the handoff's
    /// state) before anything is decided, and nothing is claimed here. Counted as `forwarded`
    /// or `unserved` (`action_` for a push) when it goes, or cannot go, to another node.
    pub fn link_holder(
        &self,
        token: &str,
        channel: Channel,
        addr: Option<IpAddr>,
    ) -> Result<LinkHolder, ClusterError> {
        let throttled = self.inner.access.logins.link_wait(addr).is_some();
        if self.inner.cluster.is_none() || throttled {
            return Ok(LinkHolder::Here);
        }
        let Ok(link) = self
            .action_link_key()
            .map_err(|_| ())
            .and_then(|k| k.read_for(channel, token).map_err(|_| ()))
        else {
            return Ok(LinkHolder::Here);
        };
        let token_sha256 = Used::hash(token);
        let used = self.used_links().is_marked(&token_sha256);
        if now_s() > link.expires || used.unwrap_or(true) {
            return Ok(LinkHolder::Here);
        }
        let (holder, counted) =
            match self.holder_of(&crate::app::Scope::Handoff(link.key.clone()))? {
                Holder::Peer(peer) => {
                    let checked = CheckedLink {
                        channel,
                        link,
                        token_sha256,
                    };
                    (LinkHolder::Peer(peer, Box::new(checked)), "forwarded")
                }
                Holder::Unserved => (LinkHolder::Unserved, "unserved"),
                Holder::Here | Holder::Nobody => return Ok(LinkHolder::Here),
            };
        match channel {
            Channel::Mail => self.count_link(Ok(counted)),
            Channel::Push => self.push_count(&format!("action_{counted}")),
        }
        Ok(holder)
    }

    /// The links' key, the same on every node of a cluster (`links/key`, a document).
    pub fn action_link_key(&self) -> std::io::Result<LinkKey> {
        LinkKey::shared(&self.inner.common.mac_keys)
    }

    /// The used links' marks, the same on every node of a cluster (`links/used.json`).
    pub(super) fn used_links(&self) -> Used {
        Used::shared(&self.config().data_dir, self.inner.common.documents.clone())
    }

    /// Counts a link followed in `baton_action_links_total{outcome}`.
    fn count_link(&self, result: Result<&'static str, &LinkError>) {
        let outcome = result.unwrap_or_else(LinkError::kind);
        self.metrics()
            .action_links
            .get_or_create(&crate::metrics::OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The mail link of `token`, when this daemon's key signed it (a bad one counted against
    /// `addr`, which the bad-token throttle may hold back).
    fn read_link(&self, token: &str, addr: Option<IpAddr>) -> Result<CheckedLink, LinkError> {
        let logins = &self.inner.access.logins;
        if let Some(wait) = logins.link_wait(addr) {
            return Err(LinkError::Throttled(wait));
        }
        match self.action_link_key()?.read(token) {
            Ok(link) => Ok(CheckedLink {
                channel: Channel::Mail,
                link,
                token_sha256: Used::hash(token),
            }),
            Err(e) => {
                logins.link_failed(addr);
                Err(e.into())
            }
        }
    }

    /// Who a mail link acts as, when it is unexpired, unused and its reviewer still one.
    fn link_actor(&self, checked: &CheckedLink) -> Result<Actor, LinkError> {
        // A push action's link is no mail link (which decides with no sign-in).
        if checked.channel != Channel::Mail {
            return Err(TokenError::Invalid.into());
        }
        let link = &checked.link;
        if now_s() > link.expires {
            return Err(LinkError::Expired);
        }
        if self.used_links().is_marked(&checked.token_sha256)? {
            return Err(LinkError::Used);
        }
        let user = self.config().users.iter().find(|u| u.name == link.reviewer);
        let Some(user) = user else {
            return Err(LinkError::UnknownReviewer(link.reviewer.clone()));
        };
        Ok(Actor::Reviewer {
            name: user.name.clone(),
            roles: user.roles.clone(),
        })
    }
}

/// How a handoff moved on since a link or a push named it: revised, decided, or approved by
/// the link's reviewer already.
pub(super) enum MovedOn {
    Revised {
        was: u32,
        current: u32,
    },
    Decided {
        outcome: &'static str,
        by: String,
        at: String,
    },
    AlreadyApproved,
    OtherContent,
}

/// Why a one-time action bound to other content (or to none) decides nothing.
pub(super) const OTHER_CONTENT: &str = "the handoff in place under this key and revision is not the content this was sent about (its workspace folder was made again and the handoff sent anew), or it was made by an older baton; nothing was decided. Open the handoff in baton to read what is there now";

/// Refuses a one-time action (a mail link, a push action) whose handoff moved on since it
/// was sent.
pub(super) fn still_open(link: &Link, rec: &crate::app::state::Record) -> Result<(), MovedOn> {
    if rec.meta.revision != link.revision {
        return Err(MovedOn::Revised {
            was: link.revision,
            current: rec.meta.revision,
        });
    }
    // Key and revision come back when a workspace's folder is made again and its agent
    // sends the key anew: only the content's digest tells what the reviewer was sent.
    let same = |h: &String| h.eq_ignore_ascii_case(&rec.meta.digest);
    if !link.digest.as_ref().is_some_and(same) {
        return Err(MovedOn::OtherContent);
    }
    if let Some(d) = &rec.decision {
        return Err(MovedOn::Decided {
            outcome: d.outcome.as_str(),
            by: d.by.to_string(),
            at: d.at.to_string(),
        });
    }
    let mine = rec.review.approvals.iter().any(|a| a.by == link.reviewer);
    if mine && link.outcome == LinkOutcome::Approved {
        return Err(MovedOn::AlreadyApproved);
    }
    Ok(())
}

impl From<MovedOn> for LinkError {
    fn from(m: MovedOn) -> LinkError {
        match m {
            MovedOn::Revised { was, current } => LinkError::Revised { link: was, current },
            MovedOn::Decided { outcome, by, at } => LinkError::Decided { outcome, by, at },
            MovedOn::AlreadyApproved => LinkError::AlreadyApproved,
            MovedOn::OtherContent => LinkError::OtherContent,
        }
    }
}
