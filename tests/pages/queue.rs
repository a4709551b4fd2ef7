//! The queue page reads its page from the order kept as handoffs change: each tab shows the
//! right lines in the right order, with the right counts and pager, before and after
//! decisions and claims move handoffs between tabs. The expected page is the plain sort of
//! every line the list API gives the same reviewer.

use super::Web;
use crate::util::{bytes, handoff, write_atomic, TestEnv};
use serde_json::{json, Value};

/// A person who signs in with `pw-NAME` and calls the API with `NAME-token`.
fn person(name: &str) -> String {
    let hash = baton::login::hash_password(&format!("pw-{name}")).unwrap();
    let token = baton::auth::token_hash(&format!("{name}-token"));
    format!(
        "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\ntoken_sha256 = \"{token}\"\nroles = [\"reviewer\"]\n"
    )
}

/// Whole seconds to an RFC 3339 time from now.
fn left(at: &str) -> i64 {
    let at = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339);
    (at.unwrap() - time::OffsetDateTime::now_utc()).whole_seconds()
}

/// The keys `view` shows, in the queue's order, from the list API's lines as `rita` sees
/// them: pending first, those she may decide first, then a near deadline, then `error` /
/// `critical_action`, then another deadline, then the rest; the nearest deadline, then the
/// oldest; decided ones the latest decided first.
fn expected(lines: &[Value], view: &str) -> Vec<String> {
    let pending = |l: &Value| l["state"] == "pending";
    let md = |l: &Value| pending(l) && l["may_decide"] == true;
    let deadline = |l: &Value| l["deadline"].as_str().map(left);
    let urgency = |l: &Value| {
        let hot = matches!(l["trigger"].as_str(), Some("error" | "critical_action"));
        match deadline(l) {
            Some(s) if s <= 30 * 60 => 0,
            _ if hot => 1,
            Some(_) => 2,
            None => 3,
        }
    };
    let mut shown: Vec<&Value> = lines
        .iter()
        .filter(|l| match view {
            "pending" => pending(l),
            "mine" => md(l) || (pending(l) && l["claimed_by"] == "rita"),
            "claimed" => pending(l) && l["claimed_by"].is_string(),
            "decided" => !pending(l),
            _ => true,
        })
        .collect();
    let text = |l: &Value, f: &str| l[f].as_str().unwrap_or_default().to_string();
    shown.sort_by(|a, b| {
        pending(b)
            .cmp(&pending(a))
            .then(md(b).cmp(&md(a)))
            .then_with(|| match pending(a) {
                true => urgency(a)
                    .cmp(&urgency(b))
                    .then(
                        deadline(a)
                            .unwrap_or(i64::MAX)
                            .cmp(&deadline(b).unwrap_or(i64::MAX)),
                    )
                    .then(text(a, "received_at").cmp(&text(b, "received_at"))),
                false => (text(b, "decided_at"), text(b, "received_at"))
                    .cmp(&(text(a, "decided_at"), text(a, "received_at"))),
            })
            .then(text(a, "key").cmp(&text(b, "key")))
    });
    shown.iter().map(|l| text(l, "key")).collect()
}

/// (the page's line keys in order, its tab counts by view, its pager line, a next link).
fn read(page: &str) -> (Vec<String>, Vec<(String, usize)>, String, bool) {
    let keys = page
        .split("data-key=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect();
    let nav = page.split("<nav class=\"tabs\"").nth(1).unwrap();
    let tabs = nav
        .split("</nav>")
        .next()
        .unwrap()
        .split("<a href=\"/?view=")
        .skip(1)
        .map(|s| {
            let view = s.split('"').next().unwrap().to_string();
            let count = s.split("<span class=\"count\">").nth(1).unwrap();
            (view, count.split('<').next().unwrap().parse().unwrap())
        })
        .collect();
    let pager = page.split("<nav class=\"pager\"").nth(1).unwrap();
    let line = pager
        .split("<span>")
        .nth(1)
        .unwrap()
        .split("</span>")
        .next();
    let next = pager
        .split("</nav>")
        .next()
        .unwrap()
        .contains("rel=\"next\"");
    (keys, tabs, line.unwrap().to_string(), next)
}

#[test]
fn every_tab_shows_its_page_counts_and_pager_as_decisions_and_claims_move_handoffs() {
    // Errors go to omar's route: rita may not decide them, so they come after hers.
    let config = [
        person("rita"),
        person("omar"),
        "[[routes]]\nname = \"ops\"\ntriggers = [\"error\"]\nreviewers = [\"omar\"]\n".into(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let n = 60;
    let near = (time::OffsetDateTime::now_utc() + time::Duration::minutes(10))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let wss: Vec<_> = (0..n).map(|i| env.init(&format!("w{i:02}"))).collect();
    let d = env.start();
    for (i, ws) in wss.iter().enumerate() {
        let mut doc = handoff(&format!("q{i:02}"));
        doc["trigger"] = json!(["low_confidence", "error", "completion", "critical_action"][i % 4]);
        match i % 5 {
            0 => doc["deadline"] = json!(near),
            1 => doc["deadline"] = json!(format!("2099-01-01T00:{:02}:00Z", 59 - i)),
            _ => {}
        }
        write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    }
    d.wait_until("every handoff pending", || d.handoffs("pending").len() == n);
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    let lines = || {
        let (status, body) = d.get_as("/api/v1/handoffs?state=all", Some("rita-token"));
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    };
    let check = |what: &str| {
        let all = lines();
        for view in ["pending", "mine", "claimed", "decided", "all"] {
            let want = expected(&all, view);
            let pages = want.len().div_ceil(25).max(1);
            for page in 1..=pages {
                let html = web.get(&format!("/?view={view}&page={page}"), Some(&rita));
                assert_eq!(html.status, 200, "{what}: {view} {page}");
                let (keys, tabs, pager, next) = read(&html.body);
                let part: Vec<String> = want
                    .iter()
                    .skip((page - 1) * 25)
                    .take(25)
                    .cloned()
                    .collect();
                assert_eq!(keys, part, "{what}: the lines of {view}, page {page}");
                for (tab, count) in &tabs {
                    if tab != "invalid" {
                        assert_eq!(
                            *count,
                            expected(&all, tab).len(),
                            "{what}: the {tab} tab's count"
                        );
                    }
                }
                let total = want.len();
                assert_eq!(
                    pager,
                    format!("{total} handoff(s) · page {page} of {pages}"),
                    "{what}: {view}"
                );
                assert_eq!(
                    next,
                    page < pages,
                    "{what}: {view} page {page}: a link to more"
                );
            }
        }
    };
    check("all pending");
    // rita claims one and decides ten of hers (no errors), omar claims errors.
    let (status, answer) = d.post_as("/api/v1/handoffs/q02/claim", Some("rita-token"), "{}");
    assert_eq!(status, 200, "{answer}");
    let all = lines();
    let mine = expected(&all, "mine").into_iter().filter(|k| k != "q02");
    let hers: Vec<String> = mine.step_by(3).take(10).collect();
    for key in &hers {
        let url = format!("/api/v1/handoffs/{key}/decision");
        let (status, answer) = d.post_as(&url, Some("rita-token"), r#"{"outcome":"rejected"}"#);
        assert_eq!(status, 200, "{answer}");
    }
    for key in ["q01", "q05", "q09", "q13"] {
        let url = format!("/api/v1/handoffs/{key}/claim");
        let (status, answer) = d.post_as(&url, Some("omar-token"), "{}");
        assert_eq!(status, 200, "{answer}");
    }
    let all = lines();
    assert_eq!(expected(&all, "decided").len(), 10);
    assert_eq!(expected(&all, "claimed").len(), 5);
    check("after decisions and claims");
    // A filter narrows the counts as well as the lines.
    let html = web.get("/?view=pending&trigger=error", Some(&rita)).body;
    let (keys, tabs, _, _) = read(&html);
    let errors: Vec<&Value> = all.iter().filter(|l| l["trigger"] == "error").collect();
    let pending_errors = errors.iter().filter(|l| l["state"] == "pending").count();
    assert_eq!(keys.len(), pending_errors.min(25));
    assert!(
        tabs.contains(&("pending".to_string(), pending_errors)),
        "{tabs:?}"
    );
    assert!(
        tabs.contains(&("all".to_string(), errors.len())),
        "{tabs:?}"
    );
    // So does a workspace.
    let html = web.get("/?view=all&workspace=w03", Some(&rita)).body;
    let (keys, tabs, pager, next) = read(&html);
    assert_eq!(keys, ["q03"]);
    assert!(tabs.contains(&("all".to_string(), 1)), "{tabs:?}");
    assert_eq!(
        (pager.as_str(), next),
        ("1 handoff(s) · page 1 of 1", false)
    );
}
