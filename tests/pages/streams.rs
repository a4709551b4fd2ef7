//! The queue's live updates hold one event stream per open page, not per page visited: a
//! browser opens at most six connections to a host, and streams left open by pages kept in
//! the back/forward cache made the sixth queue view wait about a minute for a free one.

use super::reviewers;
use crate::util::browser::Browser;
use crate::util::{self, TestEnv, PATIENCE};
use fantoccini::wd::TimeoutConfiguration;

#[test]
fn moving_between_queue_views_never_waits_for_a_connection() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    let daemon = env.start();
    let browser = Browser::start();
    browser.sign_in(&daemon.url, "rita", "pw-rita");
    // Only a stalled page reaches the bound: a view loads in milliseconds.
    let bound = TimeoutConfiguration::new(None, Some(PATIENCE), None);
    browser
        .rt
        .block_on(browser.client.update_timeouts(bound))
        .unwrap();
    for view in ["pending", "mine", "claimed", "decided", "all"] {
        for per in [25, 50] {
            let url = format!("{}/?view={view}&per={per}", daemon.url);
            browser
                .rt
                .block_on(browser.client.goto(&url))
                .unwrap_or_else(|e| panic!("{url} did not load: {e}"));
            browser.wait_text("[data-page=queue] .tabs");
        }
    }
    // Back through the cache, the page is live again: a new handoff appears on its own.
    browser.rt.block_on(browser.client.back()).unwrap();
    browser.wait_text("[data-page=queue] .tabs");
    let h = util::handoff("after-back");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    browser.wait_text("tr[data-key='after-back'] .title a");
}
