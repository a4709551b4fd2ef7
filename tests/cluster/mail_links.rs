//! The mail's one-time action links in a cluster: their key and their used marks are rows of
//! `documents` every node reads, so a link mailed by the node that served its workspace is
//! confirmed and decides on whichever node serves it when the reviewer clicks, and a link
//! used on one node is used on every node.

use super::nodes::{holder, lease_round, served, wait_long, SETTLE_S};
use crate::notify::mail::Smtp;
use crate::pages::Web;
use crate::util::*;

const PUBLIC: &str = "http://baton.example";

/// rita and sam review route `eng`, which mails them links good for a day.
fn config(smtp: &Smtp) -> String {
    let user = |name: &str| {
        format!(
            "{}email = \"{name}@example.com\"\n",
            user(name, "\"reviewer\"")
        )
    };
    format!(
        "public_url = \"{PUBLIC}\"\n{}{}\
         [smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"sam\"]\nnotify = [\"email\"]\n\
         action_link_ttl_s = 86400\n",
        user("rita"),
        user("sam"),
        smtp.port,
    )
}

/// The Approve link of the mail to `to`, as a path of the daemon.
fn approve_link(smtp: &Smtp, d: &Daemon, to: &str) -> String {
    let mut text = String::new();
    d.wait_until(&format!("a mail to {to}"), || {
        let mail = smtp.mails().into_iter().find(|m| m["to"] == to);
        text = mail.map_or(String::new(), |m| {
            m["text"].as_str().unwrap().replace("\r\n", "\n")
        });
        !text.is_empty()
    });
    let line = text
        .lines()
        .find(|l| l.starts_with("Approve: "))
        .expect(&text);
    let url = line.split_once(": ").unwrap().1.trim();
    let path = url.strip_prefix(PUBLIC).expect("under public_url");
    assert!(path.starts_with("/act/l1."), "{path}");
    path.to_string()
}

#[test]
fn a_link_mailed_by_one_node_decides_on_another_and_is_used_on_every_node() {
    let _serial = super::nodes::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let (pg, mut env, a, b) = super::shared::two_nodes("mail_links", &config(&smtp));
    let (serving, other, first, survivor) = match holder(&pg, "mail_links", "alpha").as_str() {
        "a" => (a, b, "a", "b"),
        _ => (b, a, "b", "a"),
    };

    // The serving node mails rita her links; then it dies and the other takes alpha over.
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&handoff("ml-1")),
    );
    let approve = approve_link(&smtp, &serving, "rita@example.com");
    serving.kill9();
    for _ in 0..6 {
        lease_round(&env, &pg, "mail_links", &[survivor]);
    }
    wait_long("the survivor serves alpha", SETTLE_S, || {
        holder(&pg, "mail_links", "alpha") == survivor && served(&other) > 0
    });
    other.wait_until("the survivor has ml-1", || {
        other.get("/api/v1/handoffs/ml-1").0 == 200
    });

    // The link the dead node signed is confirmed and decides on the survivor.
    let web = Web::new(&other);
    let page = web.get(&approve, None);
    assert_eq!(page.status, 200, "{}", page.short());
    assert!(page.body.contains(">Approve</button>"), "{}", page.body);
    let csrf = page
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    let cookie = format!("baton_act={csrf}");
    let form = [("csrf", csrf.as_str()), ("comment", "from the mail")];
    let done = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("Recorded: approved by rita"),
        "{}",
        done.body
    );
    let decision = other.get("/api/v1/handoffs/ml-1").1["decision"].clone();
    assert_eq!(decision["by"], "rita", "{decision}");

    // The first node, back, knows the link was used (it serves nothing of alpha now).
    let back = env.spawn_with_config(&env.root().join(format!("baton-{first}.toml")));
    let web = Web::new(&back);
    let again = web.get(&approve, None);
    assert_eq!(again.status, 410, "{}", again.short());
    assert!(again.body.contains("already used"), "{}", again.body);
    let twice = web.post_form(&approve, Some(&cookie), &form);
    assert_eq!(twice.status, 410, "{}", twice.short());
    assert!(twice.body.contains("already used"), "{}", twice.body);
}
