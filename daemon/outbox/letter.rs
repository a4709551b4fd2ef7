//! The mail about a handoff: subject, plain text and HTML alternatives, from the askama
//! templates in `templates/email/` (the HTML one escapes everything the agent wrote).

use askama::Template;
use serde::{Deserialize, Serialize};

/// What a mail says about a handoff, gathered by the app from its record and route.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `handoff.received`, `handoff.revised` or `handoff.escalated`.
    pub event: String,
    pub workspace: String,
    pub key: String,
    pub title: Option<String>,
    pub trigger: Option<String>,
    pub from_agent: String,
    /// Left out for confidential and restricted handoffs (a mail leaves baton's control).
    pub summary: Option<String>,
    pub route: Option<String>,
    pub revision: u32,
}

/// A reviewer's one-time action-link tokens, one per outcome (see `login/links.rs`).
pub struct Tokens {
    /// None on a route that asks for a passkey to approve: only the handoff's page can.
    pub approve: Option<String>,
    pub changes: String,
    pub reject: String,
}

/// A composed mail, as spooled (so every attempt sends the same words).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Letter {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Template)]
#[template(path = "email/handoff.txt")]
struct Text<'a> {
    f: &'a Facts,
    headline: &'a str,
    link: &'a str,
    actions: &'a Actions,
}

/// The mail's action links. A GET never decides, since mail scanners follow links: one-time
/// links open a confirm page whose button decides (no sign-in: the link is the credential);
/// without them (a route with `action_link_ttl_s = 0`), Approve and Request changes open the
/// handoff page (sign-in first) with the choice named.
pub struct Actions {
    /// None when approving needs the reviewer's passkey: the mail says so and sends them to
    /// the handoff's page, the one place that can ask for it.
    pub(super) approve: Option<String>,
    pub(super) changes: String,
    /// Only one-time links offer Reject from the mail.
    pub(super) reject: Option<String>,
    pub(super) one_time: bool,
}

impl Actions {
    /// The reviewer's one-time links, under `public_url`.
    pub fn one_time(public_url: &str, t: &Tokens) -> Actions {
        // Tokens are base64url and dots: fit for a path segment as they are.
        let at = |token: &str| format!("{public_url}/act/{token}");
        Actions {
            approve: t.approve.as_deref().map(at),
            changes: at(&t.changes),
            reject: Some(at(&t.reject)),
            one_time: true,
        }
    }

    pub(super) fn on_page(link: &str) -> Actions {
        Actions {
            approve: Some(format!("{link}?intent=approved#decide")),
            changes: format!("{link}?intent=changes_requested#decide"),
            reject: None,
            one_time: false,
        }
    }
}

#[derive(Template)]
#[template(path = "email/handoff.html")]
struct Html<'a> {
    f: &'a Facts,
    headline: &'a str,
    link: &'a str,
    actions: &'a Actions,
}

/// Longest title kept in a subject line.
const SUBJECT_TITLE: usize = 120;

pub fn compose(f: &Facts, link: &str, actions: Option<Actions>) -> Letter {
    let trigger = f.trigger.as_deref().unwrap_or("handoff");
    let title = one_line(f.title.as_deref().unwrap_or(&f.key), SUBJECT_TITLE);
    let revised = match f.event.as_str() {
        "handoff.revised" => format!(" (revision {})", f.revision),
        "handoff.escalated" => " (escalated)".to_string(),
        _ => String::new(),
    };
    let subject = one_line(
        &format!(
            "[baton] {}: {trigger} from {}: {title}{revised}",
            f.workspace, f.from_agent
        ),
        400,
    );
    let headline = match f.event.as_str() {
        "handoff.revised" => "A handoff you review was revised",
        "handoff.escalated" => "A handoff was escalated to you: no decision came in time",
        _ => "A handoff waits for your review",
    };
    let actions = &actions.unwrap_or_else(|| Actions::on_page(link));
    let text = Text {
        f,
        headline,
        link,
        actions,
    };
    let html = Html {
        f,
        headline,
        link,
        actions,
    };
    Letter {
        subject,
        // Rendering only reads plain fields: it cannot fail.
        text: text.render().expect("the text template renders"),
        html: html.render().expect("the HTML template renders"),
    }
}

/// Text fit for a header: control characters (line breaks above all) become spaces, and
/// it is clipped to `max` characters.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            event: "handoff.received".into(),
            workspace: "alpha".into(),
            key: "k-1".into(),
            title: Some("Fix <b>it</b>\r\nBcc: x@y".into()),
            trigger: Some("error".into()),
            from_agent: "builder-1".into(),
            summary: Some("tests <script>fail</script>".into()),
            route: Some("eng".into()),
            revision: 1,
        }
    }

    #[test]
    fn the_subject_names_workspace_trigger_and_agent_on_one_line() {
        let l = compose(&facts(), "http://h/handoffs/k-1", None);
        assert_eq!(
            l.subject,
            "[baton] alpha: error from builder-1: Fix <b>it</b>  Bcc: x@y"
        );
        assert!(l.text.contains("http://h/handoffs/k-1"));
        assert!(l
            .text
            .contains("http://h/handoffs/k-1?intent=approved#decide"));
        assert!(l
            .html
            .contains("href=\"http://h/handoffs/k-1?intent=changes_requested#decide\""));
        assert!(l.text.contains("tests <script>fail</script>"), "{}", l.text);
        assert!(
            l.html.contains("href=\"http://h/handoffs/k-1\""),
            "{}",
            l.html
        );
        assert!(
            !l.html.contains("<script>") && !l.html.contains("<b>"),
            "{}",
            l.html
        );
        assert!(
            !l.text.contains("Reject"),
            "no reject without one-time links"
        );
    }

    #[test]
    fn one_time_links_name_all_three_outcomes_and_the_confirmation() {
        let tokens = Tokens {
            approve: Some("l1.a.x".into()),
            changes: "l1.c.x".into(),
            reject: "l1.r.x".into(),
        };
        let actions = Actions::one_time("http://h", &tokens);
        let l = compose(&facts(), "http://h/handoffs/k-1", Some(actions));
        for t in ["l1.a.x", "l1.c.x", "l1.r.x"] {
            assert!(l.text.contains(&format!("http://h/act/{t}")), "{}", l.text);
            assert!(
                l.html.contains(&format!("href=\"http://h/act/{t}\"")),
                "{}",
                l.html
            );
        }
        assert!(!l.text.contains("intent="), "{}", l.text);
        assert!(l.text.contains("once"), "{}", l.text);
    }

    #[test]
    fn without_an_approve_token_the_mail_sends_approvals_to_the_page_for_a_passkey() {
        let tokens = Tokens {
            approve: None,
            changes: "l1.c.x".into(),
            reject: "l1.r.x".into(),
        };
        let actions = Actions::one_time("http://h", &tokens);
        let l = compose(&facts(), "http://h/handoffs/k-1", Some(actions));
        assert!(!l.text.contains("\nApprove: "), "{}", l.text);
        assert!(
            l.text.contains(
                "Approving needs your passkey, on the handoff's page: http://h/handoffs/k-1"
            ),
            "{}",
            l.text
        );
        assert!(!l.html.contains(">Approve…<"), "{}", l.html);
        assert!(l.html.contains("passkey"), "{}", l.html);
        for t in ["l1.c.x", "l1.r.x"] {
            assert!(l.text.contains(&format!("http://h/act/{t}")), "{}", l.text);
        }
    }
}
