//! Where a posted form leads afterwards: the queue's bulk form goes back to the queue view it
//! was posted from, and never elsewhere, whatever its `back` field says.

use super::{pending_handoff, reviewers, Web};
use crate::util::TestEnv;

#[test]
fn the_bulk_form_leads_back_to_the_queue_only() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let ws = env.ws("alpha");
    let daemon = env.start();
    let web = Web::new(&daemon);
    let rita = web.sign_in("rita", "pw-rita");
    let cases = [
        ("/?view=all&per=50", "/?view=all&per=50&"),
        ("/", "/?"),
        ("//evil.com", "/?"),
        ("https://evil.com/?", "/?"),
        ("/?\r\nSet-Cookie: baton_session=planted", "/?"),
        ("/?\t/evil.com", "/?"),
    ];
    for (i, (back, lands)) in cases.iter().enumerate() {
        let key = format!("bulk-{i}");
        pending_handoff(&daemon, &ws, &key);
        // What the queue line shows of it: the approval is bound to that revision.
        let (_, h) = daemon.get(&format!("/api/v1/handoffs/{key}"));
        let seen = format!(
            "{} {} {key}",
            h["revision"],
            h["handoff_sha256"].as_str().unwrap()
        );
        let fields = [
            ("csrf", rita.csrf.as_str()),
            ("outcome", "approved"),
            ("key", &key),
            ("seen", &seen),
            ("back", back),
        ];
        let reply = web.post_form("/decisions", Some(&rita.cookie), &fields);
        assert_eq!(reply.status, 303, "back {back:?}: {}", reply.short());
        let want = format!("{lands}decided=1&failed=0");
        assert_eq!(reply.location(), want, "back {back:?}");
        assert!(reply.set_cookie("baton_session").is_none());
    }
}
