//! The `/search` page: hits link where a reviewer goes next, facets narrow, pages page.

use super::{example, wait_for};
use crate::pages::{reviewers, Web};
use crate::util::{self, TestEnv};

#[test]
fn the_page_links_hits_narrows_by_facet_and_pages() {
    let mut env = TestEnv::with_config(&reviewers(&[("rita", "pw-rita")]));
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    let web = Web::new(&daemon);
    let session = web.sign_in("rita", "pw-rita");
    let page = web.get("/search?q=saturating", Some(&session));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("4 matches"), "{}", page.body);
    let key = "fix%2Dretry%2Dbackoff%2D2291";
    // A handoff hit opens the handoff; an artifact it names opens its preview there.
    assert!(
        page.body.contains(&format!("href=\"/handoffs/{key}\"")),
        "{}",
        page.body
    );
    let preview = format!("/handoffs/{key}/preview/inbox/notes%2Emd");
    assert!(
        page.body.contains(&format!("href=\"{preview}\"")),
        "{}",
        page.body
    );
    assert_eq!(web.get(&preview, Some(&session)).status, 200);
    // Facets: counts of all matches, each a link that narrows to it; all listed, none cut.
    assert!(!page.body.contains("id=\"facets-cut\""), "{}", page.body);
    let narrowed = "/search?q=saturating&#38;kind=checkpoint";
    assert!(page.body.contains(narrowed), "{}", page.body);
    let only = web.get("/search?q=saturating&kind=checkpoint", Some(&session));
    assert!(only.body.contains("1 match"), "{}", only.body);
    // Twenty hits a page.
    let inbox = env.ws("alpha").join("inbox");
    for i in 0..25 {
        util::write_atomic(&inbox.join(format!("z{i:02}.txt")), b"zircon crystal");
    }
    wait_for(&daemon, "zircon", 25);
    let first = web.get("/search?q=zircon", Some(&session));
    assert_eq!(first.body.matches("class=\"hit\"").count(), 20);
    assert!(
        first
            .body
            .contains("href=\"/search?q=zircon&#38;offset=20\""),
        "{}",
        first.body
    );
    let second = web.get("/search?q=zircon&offset=20", Some(&session));
    assert_eq!(second.body.matches("class=\"hit\"").count(), 5);
    assert!(second.body.contains("rel=\"prev\""));
    assert!(!second.body.contains("rel=\"next\""));
    // An empty box shows how to search, not every document.
    let empty = web.get("/search", Some(&session));
    assert_eq!(empty.status, 200);
    assert!(!empty.body.contains("class=\"hit\""));
}
