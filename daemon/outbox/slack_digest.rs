//! A reviewer's digest in Slack: one direct message (`chat.postMessage` with the Slack user
//! id as channel) listing what waits for them on digest routes a `[[chat]]` entry posts,
//! grouped and ordered as the mail digest is (`digest::order`), each line with the same
//! Approve / Request changes / Reject buttons as the handoff's own post
//! (`chat::decide_buttons`): a click from the digest is a click like any other, decided
//! through the one path with every rule. Slack takes at most 50 blocks in a message: lines
//! that would not fit are counted in a last line linking to the queue.

use super::chat::{decide_buttons, ButtonValue, Call};
use super::digest::{order, Spooled};
use super::letter::Facts;
use super::review_post::clip;
use super::slack::escape;
use super::{handoff_url, Outbox};
use crate::config::Chat;
use serde_json::{json, Value};

/// The most blocks Slack takes in one message.
pub const MAX_BLOCKS: usize = 50;

/// One handoff a Slack digest lists.
#[derive(Clone)]
pub struct Line {
    pub facts: Facts,
    /// When it began to wait on its route (RFC 3339).
    pub since: String,
    /// A critical_action or error trigger.
    pub urgent: bool,
    /// The content digest of the revision (`handoff_sha256`) its buttons are bound to.
    pub digest: String,
    /// Its route approves only with a passkey on the page.
    pub passkey: bool,
}

/// The `chat.postMessage` arguments of the digest of `lines` (at least one) to Slack user
/// `chat_user`, with links under `public_url`.
pub fn compose(chat_user: &str, mut lines: Vec<Line>, public_url: &str) -> Value {
    let count = lines.len();
    order(&mut lines, |l| (&l.facts, &l.since, l.urgent));
    let said = match count {
        1 => "1 handoff waits for your review".to_string(),
        n => format!("{n} handoffs wait for your review"),
    };
    let mut blocks =
        vec![json!({ "type": "header", "text": { "type": "plain_text", "text": said } })];
    let mut group: Option<(String, bool)> = None;
    let mut shown = 0;
    for (i, l) in lines.iter().enumerate() {
        let route = l.facts.route.clone().unwrap_or_default();
        let heading = group.as_ref() != Some(&(route.clone(), l.urgent));
        // A line takes its facts and its buttons, a new group its heading too; one block is
        // kept for the count of the lines left out.
        let needs = 2 + usize::from(heading);
        if blocks.len() + needs > MAX_BLOCKS - 1 {
            break;
        }
        if heading {
            let urgency = if l.urgent { ", urgent" } else { "" };
            blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn",
                "text": clip(&format!("*Route {}*{urgency}", escape(&route)), 3000) } }));
            group = Some((route, l.urgent));
        }
        let link = handoff_url(public_url, &l.facts.key);
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn",
            "text": clip(&facts(l, &link), 3000) } }));
        let value = ButtonValue {
            workspace: l.facts.workspace.clone(),
            key: l.facts.key.clone(),
            revision: l.facts.revision,
            digest: Some(l.digest.clone()),
        };
        // Block ids are unique within a message; a click does not read them.
        blocks.push(
            json!({ "type": "actions", "block_id": format!("baton_decide_{i}"),
            "elements": decide_buttons(&value, l.passkey, &link) }),
        );
        shown += 1;
    }
    if shown < count {
        let left = count - shown;
        let queue = format!("{public_url}/");
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn",
            "text": format!("…and {left} more waiting: <{queue}|open your queue in baton>") } }));
    }
    json!({
        "channel": chat_user,
        "text": format!("[baton] {said}"),
        "blocks": blocks,
        "unfurl_links": false,
    })
}

/// A line's facts: its title linking to its page, where, from whom, why, since when.
fn facts(l: &Line, link: &str) -> String {
    let f = &l.facts;
    let title = f
        .title
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map_or_else(|| format!("handoff {}", f.key), str::to_string);
    let mut s = format!(
        "<{link}|{}> · workspace *{}* · from {}",
        escape(&clip(&title, 150)),
        escape(&f.workspace),
        escape(&f.from_agent)
    );
    if let Some(t) = &f.trigger {
        s.push_str(&format!(" · {}", escape(t)));
    }
    s.push_str(&format!(
        " · revision {} · waiting since {}",
        f.revision, l.since
    ));
    s
}

/// The id of the digest to Slack user `chat_user` through `chat` of `reviewer` at
/// `boundary_ms`: apart from their mail digest's, the same on every node and after a restart.
pub fn digest_id(
    chat: &Chat,
    chat_user: &str,
    reviewer: &str,
    boundary_ms: u64,
    node: Option<&str>,
) -> String {
    let seed = format!("{reviewer}\n{}\n{chat_user}", chat.outbox_channel());
    super::digest::digest_id(&seed, boundary_ms, node)
}

impl Outbox {
    /// Spools the digest `payload` (`compose`) to `chat_user` through `chat` under `id`,
    /// unless a delivery of that id is known here or to any node. `workspace` is where a
    /// failure to deliver it is logged.
    pub fn spool_slack_digest(
        &self,
        chat: &Chat,
        chat_user: &str,
        id: &str,
        workspace: &str,
        payload: Value,
    ) -> Result<Spooled, super::SpoolError> {
        let call = Call {
            method: "chat.postMessage".into(),
            payload,
        };
        let body = serde_json::to_string(&call).expect("a call serializes");
        self.spool_once(&chat.outbox_channel(), id, chat_user, workspace, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize, route: &str, urgent: bool) -> Line {
        Line {
            facts: Facts {
                event: "digest".into(),
                workspace: "alpha".into(),
                key: format!("k{i:03}"),
                title: Some(format!("Fix <!channel> {i}")),
                trigger: Some("review".into()),
                from_agent: "builder".into(),
                summary: None,
                route: Some(route.into()),
                revision: 2,
            },
            since: format!("2026-01-01T00:{:02}:{:02}.000Z", i / 60, i % 60),
            urgent,
            digest: "ab".repeat(32),
            passkey: false,
        }
    }

    #[test]
    fn lines_carry_the_posts_buttons_grouped_urgent_first_escaped() {
        let m = compose(
            "U1",
            vec![
                line(2, "eng", false),
                line(1, "eng", true),
                line(3, "eng", false),
            ],
            "http://h",
        );
        assert_eq!(m["channel"], "U1");
        let text = m["blocks"].to_string();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(at("Route eng*, urgent") < at("k001") && at("k001") < at("*Route eng*\""));
        assert!(at("k002") < at("k003"));
        assert!(text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"));
        let blocks = m["blocks"].as_array().unwrap();
        let actions: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "actions").collect();
        assert_eq!(actions.len(), 3);
        let v: Value =
            serde_json::from_str(actions[0]["elements"][0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            v,
            json!({ "w": "alpha", "k": "k001", "r": 2, "h": "ab".repeat(32) })
        );
        assert_eq!(actions[0]["elements"][0]["action_id"], "baton_approve");
    }

    #[test]
    fn a_long_digest_keeps_to_fifty_blocks_and_counts_what_it_left_out() {
        let lines = (0..40).map(|i| line(i, "eng", false)).collect();
        let m = compose("U1", lines, "http://h");
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
        let shown = blocks.iter().filter(|b| b["type"] == "actions").count();
        assert_eq!(shown, 23, "header, heading, 23 lines of 2, the count");
        let last = blocks.last().unwrap().to_string();
        assert!(last.contains("and 17 more waiting"), "{last}");
        assert!(
            last.contains("<http://h/|open your queue in baton>"),
            "{last}"
        );
    }
}
