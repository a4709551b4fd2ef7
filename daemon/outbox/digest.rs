//! A reviewer's digest: one mail listing every handoff that waits for them on routes with
//! `digest = true`, grouped by route and urgency (urgent first), oldest first within a group,
//! each line with the reviewer's own one-time action links as a single mail would carry. The
//! app decides when one is due and what it lists (`app/runtime/digests.rs`); this module
//! writes the mail and spools it under an id fixed by the reviewer and the cadence's
//! boundary, so it is made once per boundary however often it is asked for.

use super::letter::{Actions, Facts, Letter, Tokens};
use super::spool::{Delivery, State};
use super::{Outbox, EMAIL};
use askama::Template;
use sha2::{Digest, Sha256};

/// One handoff a digest lists.
pub struct Item {
    pub facts: Facts,
    /// When it began to wait on its route (RFC 3339): put there, or revised, whichever is later.
    pub since: String,
    /// A critical_action or error trigger.
    pub urgent: bool,
    /// The reviewer's one-time action links for it, when the route sends them.
    pub links: Option<Tokens>,
}

/// Lines of one route and urgency.
struct Group {
    route: String,
    urgent: bool,
    lines: Vec<Line>,
}

struct Line {
    f: Facts,
    since: String,
    page: String,
    actions: Actions,
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct Text<'a> {
    count: usize,
    groups: &'a [Group],
    one_time: bool,
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct Html<'a> {
    count: usize,
    groups: &'a [Group],
    one_time: bool,
}

/// The digest mail of `items` (at least one), with links under `public_url`.
pub fn compose(mut items: Vec<Item>, public_url: &str) -> Letter {
    let count = items.len();
    order(&mut items, |i| (&i.facts, &i.since, i.urgent));
    let mut groups: Vec<Group> = Vec::new();
    let mut one_time = false;
    for item in items {
        let route = item.facts.route.clone().unwrap_or_default();
        let page = super::handoff_url(public_url, &item.facts.key);
        let actions = match &item.links {
            Some(t) => Actions::one_time(public_url, t),
            None => Actions::on_page(&page),
        };
        one_time |= actions.one_time;
        let line = Line {
            f: item.facts,
            since: item.since,
            page,
            actions,
        };
        match groups.last_mut() {
            Some(g) if g.route == route && g.urgent == item.urgent => g.lines.push(line),
            _ => groups.push(Group {
                route,
                urgent: item.urgent,
                lines: vec![line],
            }),
        }
    }
    let subject = match count {
        1 => "[baton] 1 handoff waits for your review".to_string(),
        n => format!("[baton] {n} handoffs wait for your review"),
    };
    let (groups, one_time) = (&groups[..], one_time);
    Letter {
        subject,
        // Rendering only reads plain fields: it cannot fail.
        text: Text {
            count,
            groups,
            one_time,
        }
        .render()
        .expect("the digest's text renders"),
        html: Html {
            count,
            groups,
            one_time,
        }
        .render()
        .expect("the digest's HTML renders"),
    }
}

/// Puts a digest's lines in order: by route, urgent first, oldest first, then by key. `of`
/// gives a line's facts, when it began to wait and whether it is urgent.
pub(super) fn order<T>(lines: &mut [T], of: impl Fn(&T) -> (&Facts, &str, bool)) {
    let sort_key = |t: &T| {
        let (f, since, urgent) = of(t);
        // Both are `now_rfc3339` times, which compare as strings.
        let route = f.route.clone().unwrap_or_default();
        (route, !urgent, since.to_string(), f.key.clone())
    };
    lines.sort_by_cached_key(sort_key);
}

/// The id of `reviewer`'s digest at the cadence's boundary `boundary_ms` (Unix ms): the same
/// on every node and after a restart, so one boundary makes one mail. `node` (a cluster's
/// node name) keeps apart the digests of nodes that serve different workspaces.
pub fn digest_id(reviewer: &str, boundary_ms: u64, node: Option<&str>) -> String {
    let seed = format!("digest\n{reviewer}\n{boundary_ms}\n{}", node.unwrap_or(""));
    format!(
        "dig_{}",
        hex::encode(&Sha256::digest(seed.as_bytes())[..16])
    )
}

/// What came of spooling a digest.
#[derive(Debug, PartialEq, Eq)]
pub enum Spooled {
    /// Made now, on disk, and the email worker woken.
    Made,
    /// A digest of that id was made already (before a restart, or by another node).
    Before,
}

impl Outbox {
    /// Spools the digest `letter` to `to` under `id`, unless a delivery of that id is known
    /// here or (in a cluster) to any node. `workspace` is where a failure to deliver it is
    /// logged (its oldest line's).
    pub fn spool_digest(
        &self,
        id: &str,
        to: &str,
        workspace: &str,
        letter: &Letter,
    ) -> Result<Spooled, super::SpoolError> {
        let body = serde_json::to_string(letter).expect("a letter serializes");
        self.spool_once(EMAIL, id, to, workspace, body)
    }

    /// Spools a digest `body` on `channel` to `to` under `id`, unless a delivery of that id
    /// is known here or (in a cluster) to any node, and wakes the channel's worker.
    pub(super) fn spool_once(
        &self,
        channel: &str,
        id: &str,
        to: &str,
        workspace: &str,
        body: String,
    ) -> Result<Spooled, super::SpoolError> {
        if self.shared.lock().contains_key(id) {
            return Ok(Spooled::Before);
        }
        if !self.shared.spool.known(&[id.to_string()])?.is_empty() {
            return Ok(Spooled::Before);
        }
        let now = crate::clock::now_ms();
        let d = Delivery {
            id: id.to_string(),
            channel: channel.to_string(),
            to: Some(to.to_string()),
            event: "digest.sent".into(),
            workspace: workspace.to_string(),
            key: None,
            created_at: crate::clock::now_rfc3339(),
            state: State::Pending,
            attempts: Vec::new(),
            next_at_ms: Some(now),
            round_start: 0,
            body,
            damaged: None,
        };
        let mut index = self.shared.lock();
        if index.contains_key(id) {
            return Ok(Spooled::Before);
        }
        self.shared.spool.save(&[&d])?;
        index.insert(d.id.clone(), d);
        self.shared.count(&index);
        drop(index);
        if let Some(tx) = self.wake.get(channel) {
            let _ = tx.send(id.to_string());
        }
        Ok(Spooled::Made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, route: &str, since: &str, urgent: bool, links: bool) -> Item {
        Item {
            facts: Facts {
                event: "handoff.received".into(),
                workspace: "alpha".into(),
                key: key.into(),
                title: Some(format!("Title <b>{key}</b>")),
                trigger: Some(if urgent { "error" } else { "review" }.into()),
                from_agent: "builder".into(),
                summary: None,
                route: Some(route.into()),
                revision: 1,
            },
            since: since.into(),
            urgent,
            links: links.then(|| Tokens {
                approve: Some(format!("l1.a.{key}")),
                changes: format!("l1.c.{key}"),
                reject: format!("l1.r.{key}"),
            }),
        }
    }

    #[test]
    fn lines_are_grouped_by_route_then_urgency_oldest_first_with_their_own_links() {
        let items = vec![
            item("k3", "eng", "2026-01-01T00:03:00.000Z", false, true),
            item("k1", "eng", "2026-01-01T00:01:00.000Z", false, true),
            item("k9", "ops", "2026-01-01T00:00:00.000Z", false, false),
            item("k2", "eng", "2026-01-01T00:02:00.000Z", true, true),
        ];
        let l = compose(items, "http://h");
        assert_eq!(l.subject, "[baton] 4 handoffs wait for your review");
        let at = |s: &str| {
            l.text
                .find(s)
                .unwrap_or_else(|| panic!("{s} in {}", l.text))
        };
        assert!(at("Route eng, urgent") < at("l1.a.k2"));
        assert!(at("l1.a.k2") < at("Route eng:"));
        assert!(at("Route eng:") < at("l1.a.k1") && at("l1.a.k1") < at("l1.a.k3"));
        assert!(at("l1.a.k3") < at("Route ops:"));
        assert!(
            l.text
                .contains("http://h/handoffs/k9?intent=approved#decide"),
            "{}",
            l.text
        );
        assert!(
            l.html.contains("href=\"http://h/act/l1.r.k1\""),
            "{}",
            l.html
        );
        assert!(
            !l.html.contains("<b>k1"),
            "the HTML escapes what agents wrote: {}",
            l.html
        );
    }

    #[test]
    fn one_reviewer_and_boundary_make_one_id() {
        let a = digest_id("rita", 3_600_000, None);
        assert_eq!(a, digest_id("rita", 3_600_000, None));
        assert_ne!(a, digest_id("rita", 7_200_000, None));
        assert_ne!(a, digest_id("sam", 3_600_000, None));
        assert_ne!(a, digest_id("rita", 3_600_000, Some("n1")));
    }
}
