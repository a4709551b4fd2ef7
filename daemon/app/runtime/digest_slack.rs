//! Digests in Slack: a reviewer whose Slack account is theirs for sure (an entry's own
//! `users`, or an admin's link they confirmed, `chat::links`) gets, at their cadence, one
//! direct message per account listing what waits for them on the digest routes that entry
//! posts, each line with the post's own buttons (`outbox::slack_digest`). An unconfirmed
//! link gets nothing: its holder is not proven to be the reviewer, and the message would
//! show them the handoffs. The same boundaries, freshness and record of the last digest as
//! mail (`digests`); the message's outbox id is fixed by reviewer, entry, account and
//! boundary, so a boundary makes one message even across a restart or a takeover.

use super::digests::{Account, Due, Listed};
use crate::app::state::Record;
use crate::app::{App, Served};
use crate::chat::links::LinkState;
use crate::config::ChatKind;
use crate::outbox::slack_digest::{self, Line};
use crate::routing::{Route, User};
use std::sync::Arc;

impl App {
    /// Whether any route asks for digests and a Slack entry could carry them.
    pub(super) fn slack_digesting(&self) -> bool {
        let config = self.config();
        config.routes.iter().any(|r| r.digest)
            && config.chat.iter().any(|c| c.kind == ChatKind::Slack)
    }

    /// `u`'s Slack accounts, entry by entry: the entry's `users` that name them, then the
    /// confirmed links an admin made of other Slack users to them (the entry's own mapping
    /// wins for a Slack user it names, as at a click).
    pub(super) fn slack_accounts(&self, u: &User) -> Vec<Account> {
        // Unreadable links are told where they are used (clicks, the links page): here
        // they give no account, so nothing goes to someone not proven to be `u`.
        let links = self.inner.common.chat_links.all().unwrap_or_else(|e| {
            tracing::warn!(reviewer = %u.name, error = %e, "cannot read the chat links; Slack digests go only to the entries' own users");
            Vec::new()
        });
        let mut out = Vec::new();
        for c in self
            .config()
            .chat
            .iter()
            .filter(|c| c.kind == ChatKind::Slack)
        {
            let own = c.users.iter().filter(|(_, name)| **name == u.name);
            let linked = links.iter().filter(|l| {
                l.user == u.name
                    && l.state == LinkState::Confirmed
                    && !c.users.contains_key(&l.chat_user)
                    && self.link_in(l, c)
            });
            let ids = own
                .map(|(id, _)| id.clone())
                .chain(linked.map(|l| l.chat_user.clone()));
            out.extend(ids.map(|chat_user| Account {
                chat: c.name.clone(),
                chat_user,
            }));
        }
        out
    }

    /// Adds pending `rec` on digest route `route` in `ws` to `d`'s Slack lines, once per
    /// entry of theirs that posts the route, when it waits for them.
    pub(super) fn gather_slack(
        &self,
        d: &mut Due,
        rec: &Record,
        route: &Route,
        ws: &Arc<Served>,
        since: &str,
    ) {
        if d.accounts.is_empty() {
            return;
        }
        let name = &ws.workspace.name;
        let config = self.config();
        let entries = config.chat.iter().filter(|c| {
            c.kind == ChatKind::Slack
                && c.channel_for(Some(&route.name)).is_some()
                && d.accounts.iter().any(|a| a.chat == c.name)
        });
        let mut owed = None;
        for c in entries {
            if !*owed.get_or_insert_with(|| self.owed_review(rec, route, name, d.user)) {
                return;
            }
            d.lines.push(Listed {
                chat: c.name.clone(),
                line: Line {
                    facts: self.mail_facts(rec, name, route, "digest"),
                    since: since.to_string(),
                    urgent: super::digests::urgent(&rec.handoff()),
                    digest: rec.meta.digest.clone(),
                    passkey: crate::app::review::step_up::asks_passkey(Some(route)),
                },
                ws: ws.clone(),
            });
        }
    }

    /// `d`'s accounts owed a Slack digest now: those with a line that is `fresh`.
    pub(super) fn slack_due(&self, d: &Due, fresh: &dyn Fn(&str) -> bool) -> Vec<Account> {
        let fresh_in = |chat: &str| {
            d.lines
                .iter()
                .any(|l| l.chat == chat && fresh(&l.line.since))
        };
        d.accounts
            .iter()
            .filter(|a| fresh_in(&a.chat))
            .cloned()
            .collect()
    }

    /// Spools `user`'s Slack digest to `account` at `boundary`, of the lines of its entry.
    /// Whether it is spooled (now or before).
    pub(super) fn send_slack_digest(
        &self,
        user: &User,
        boundary: u64,
        account: &Account,
        lines: &[Listed],
    ) -> bool {
        let config = self.config();
        let Some(chat) = config.chat.iter().find(|c| c.name == account.chat) else {
            return true;
        };
        let mine: Vec<&Listed> = lines.iter().filter(|l| l.chat == chat.name).collect();
        let Some(oldest) = mine.iter().min_by(|a, b| a.line.since.cmp(&b.line.since)) else {
            return true;
        };
        let workspace = oldest.ws.workspace.name.clone();
        let listed = mine
            .iter()
            .map(|l| (l.line.facts.key.clone(), l.ws.clone()))
            .collect();
        let payload = slack_digest::compose(
            &account.chat_user,
            mine.iter().map(|l| l.line.clone()).collect(),
            &config.public_url,
        );
        let id = slack_digest::digest_id(
            chat,
            &account.chat_user,
            &user.name,
            boundary,
            self.node_name(),
        );
        let spooled = self.inner.commit.outbox.spool_slack_digest(
            chat,
            &account.chat_user,
            &id,
            &workspace,
            payload,
        );
        self.digest_spooled(user, &id, &chat.outbox_channel(), spooled, listed)
    }
}
