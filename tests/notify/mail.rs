//! Email end to end: lettre talks real SMTP to `smtp.py` on loopback, which parses each mail
//! with Python's email package; and a mail server that never answers delays no webhook.

use super::{config as hook_config, deliveries, submit, Receiver};
use crate::pages::Web;
use crate::util::{self, Daemon, TestEnv};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The SMTP server process, stopped when dropped.
pub struct Smtp {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Smtp {
    pub fn start(dir: &Path, hang: bool) -> Smtp {
        Smtp::start_on(dir, hang, 0)
    }

    /// On `port` (0: any free one).
    fn start_on(dir: &Path, hang: bool, port: u16) -> Smtp {
        let port = port.to_string();
        let args = if hang {
            vec!["--port", &port, "--hang"]
        } else {
            vec!["--port", &port]
        };
        Smtp::spawn(dir, &args)
    }

    fn spawn(dir: &Path, args: &[&str]) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify/smtp.py");
        let log = dir.join(format!("smtp-{}.jsonl", util::now_ms()));
        let mut cmd = Command::new(util::tools::require("python3", "python3"));
        cmd.arg(script).arg(&log).args(args).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("python3 runs the SMTP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .expect("the SMTP server prints its port");
        Smtp { child, port, log }
    }

    pub fn mails(&self) -> Vec<Value> {
        util::jsonl(&self.log)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reviewers with addresses, a route that mails them, and `[smtp]` at `port`. The handoff's
/// sender (`test-agent`, tess's agent, which uploads it: see `upload`) holds the route's role
/// too, and must get no mail.
fn mail_config(port: u16) -> String {
    let user = |name: &str, roles: &str, email: &str| {
        format!("[[users]]\nname = \"{name}\"\nroles = [{roles}]\n{email}")
    };
    [
        "public_url = \"http://baton.example\"\n".to_string(),
        user("rita", "\"reviewer\"", "email = \"rita@example.com\"\n"),
        user("sam", "\"engineer\"", "email = \"sam@example.com\"\n"),
        user("olga", "\"reviewer\"", ""),
        user("tess", "\"engineer\"", "email = \"agent@example.com\"\n"),
        // The sender, agent test-agent, is tess's: proven by its upload, so she is not mailed.
        util::agent_for("test-agent", "tess", "*"),
        format!("[smtp]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"baton <baton@localhost>\"\n"),
        "[[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"role:engineer\"]\nnotify = [\"email\"]\n"
            .to_string(),
    ]
    .concat()
}

/// Uploads handoff `h` into workspace `ws` with `token` (`NAME-token`, agent NAME's): its
/// sender is then proven, as a handoff written on the share never is.
fn upload_as(daemon: &Daemon, token: &str, ws: &str, h: &Value) {
    let auth = format!("Bearer {token}");
    let path = format!("/api/v1/workspaces/{ws}/handoff");
    let headers = [("Authorization", auth.as_str())];
    let reply = Web::new(daemon).send("PUT", &path, &headers, Some(&util::bytes(h)));
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
}

/// Handoff `id` uploaded into workspace alpha by its sender, test-agent (tess's).
fn upload(daemon: &Daemon, id: &str) {
    upload_as(daemon, "test-agent-token", "alpha", &util::handoff(id));
}

fn email_deliveries(daemon: &util::Daemon, state: &str) -> Vec<Value> {
    deliveries(daemon, state)
        .into_iter()
        .filter(|d| d["channel"] == "email")
        .collect()
}

#[test]
fn each_reviewer_of_the_route_gets_one_mail_with_both_alternatives_and_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&mail_config(smtp.port));
    let daemon = env.start();
    upload(&daemon, "mail-1");
    daemon.wait_until("two mails delivered", || {
        email_deliveries(&daemon, "delivered").len() == 2
    });
    let key = daemon.handoffs("pending")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:?}");
    mails.sort_by_key(|m| m["to"].as_str().unwrap().to_string());
    let to: Vec<&str> = mails.iter().map(|m| m["to"].as_str().unwrap()).collect();
    assert_eq!(to, ["rita@example.com", "sam@example.com"]);
    let link = format!("http://baton.example/handoffs/{key}");
    for m in &mails {
        assert_eq!(
            m["rcpt"].as_array().unwrap().len(),
            1,
            "one mail per reviewer"
        );
        assert_eq!(m["content_type"], "multipart/alternative");
        assert_eq!(
            m["subject"],
            "[baton] alpha: low_confidence from test-agent: handoff mail-1"
        );
        assert_eq!(m["from"], "baton <baton@localhost>");
        let text = m["text"].as_str().unwrap();
        let html = m["html"].as_str().unwrap();
        assert!(
            text.contains(&link) && text.contains("Workspace: alpha"),
            "{text}"
        );
        assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
        // Each reviewer's own one-time links (tests/notify/links.rs follows them).
        for label in ["Approve: ", "Request changes: ", "Reject: "] {
            assert!(
                text.contains(&format!("{label}http://baton.example/act/l1.")),
                "{text}"
            );
        }
        assert!(
            html.contains("href=\"http://baton.example/act/l1."),
            "{html}"
        );
        assert!(html.contains("handoff mail-1"));
    }
    let listed = email_deliveries(&daemon, "delivered");
    assert!(listed.iter().all(|d| d["attempts"][0]["status"] == 250));
    assert!(mails[0]["message_id"]
        .as_str()
        .unwrap()
        .contains(listed[0]["id"].as_str().unwrap().split('.').next().unwrap()));
    daemon.stop();
}

#[test]
fn a_mail_server_that_never_answers_delays_no_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), true);
    let receiver = Receiver::start(dir.path(), 0, &[]);
    let config = format!(
        "{}{}",
        mail_config(smtp.port),
        hook_config(&receiver.url(), "0, 1")
    );
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    submit(&env, "mail-2");
    submit_more(&env);
    daemon.wait_until("both webhooks delivered", || receiver.requests().len() == 2);
    // Meanwhile the mail worker waits out its 10 s timeouts on the silent server.
    let mails =
        email_deliveries(&daemon, "pending").len() + email_deliveries(&daemon, "dead").len();
    assert!(mails > 0);
    assert!(email_deliveries(&daemon, "delivered").is_empty());
    daemon.kill9();
}

/// A second handoff, in its own workspace, while the first one's mail hangs.
fn submit_more(env: &TestEnv) {
    env.init("beta");
    let ws = env.ws("beta");
    util::write_atomic(
        &ws.join("handoff.json"),
        &util::bytes(&util::handoff("mail-3")),
    );
}

#[test]
fn mails_resolved_before_a_kill_9_are_sent_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hung = Smtp::start(dir.path(), true);
    let port = hung.port;
    let mut env = TestEnv::with_config(&mail_config(port));
    let daemon = env.start();
    upload(&daemon, "mail-kill-1");
    // The notice became one delivery per reviewer, and the first is stuck in its exchange.
    daemon.wait_until("two mails spooled", || {
        email_deliveries(&daemon, "pending")
            .iter()
            .filter(|d| d["to"].is_string())
            .count()
            == 2
    });
    daemon.kill9();
    drop(hung);
    let smtp = Smtp::start_on(dir.path(), false, port);
    let daemon = env.start();
    daemon.wait_until("both delivered after restart", || {
        email_deliveries(&daemon, "delivered").len() == 2
    });
    let mut to: Vec<String> = smtp
        .mails()
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    to.sort();
    assert_eq!(to, ["rita@example.com", "sam@example.com"], "each once");
    assert!(email_deliveries(&daemon, "pending").is_empty());
    daemon.stop();
}

/// The test CA and the server certificate it signed (for `localhost` and 127.0.0.1).
fn tls_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/notify/tls")
        .join(name);
    path.to_str().unwrap().to_string()
}

#[test]
fn mail_goes_over_starttls_and_smtps_to_a_server_signed_by_the_configured_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (tls_file("server.pem"), tls_file("server.key"));
    for (mode, url) in [
        ("--starttls", "smtp://127.0.0.1:{port}?tls=required"),
        ("--tls", "smtps://127.0.0.1:{port}"),
    ] {
        let smtp = Smtp::spawn(dir.path(), &[mode, "--cert", &cert, "--key", &key]);
        let url = url.replace("{port}", &smtp.port.to_string());
        let plain = format!("url = \"smtp://127.0.0.1:{}\"", smtp.port);
        let config = mail_config(smtp.port).replace(
            &plain,
            &format!("url = \"{url}\"\nca_file = \"{}\"", tls_file("ca.pem")),
        );
        let mut env = TestEnv::with_config(&config);
        let daemon = env.start();
        upload(&daemon, "tls-1");
        daemon.wait_until("mailed over TLS", || smtp.mails().len() == 2);
        let mails = smtp.mails();
        assert!(mails.iter().all(|m| m["tls"] == true), "{mode}: {mails:?}");
        assert!(mails[0]["subject"].as_str().unwrap().contains("alpha"));
        drop(daemon);
    }
    // Without the CA the server's certificate is not trusted: nothing is sent in clear.
    let smtp = Smtp::spawn(dir.path(), &["--starttls", "--cert", &cert, "--key", &key]);
    let plain = format!("url = \"smtp://127.0.0.1:{}\"", smtp.port);
    let url = format!("url = \"smtp://127.0.0.1:{}?tls=required\"", smtp.port);
    let config = mail_config(smtp.port).replace(&plain, &url);
    let schedule = "[deliveries]\nretry_schedule_s = [0]\n";
    let mut env = TestEnv::with_config(&format!("{config}{schedule}"));
    let daemon = env.start();
    upload(&daemon, "tls-2");
    daemon.wait_until("dead", || deliveries(&daemon, "dead").len() == 2);
    assert!(smtp.mails().is_empty());
    let dead = deliveries(&daemon, "dead");
    let error = dead[0]["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "{error}"
    );
}

#[test]
fn an_escalated_handoff_is_mailed_to_the_new_routes_reviewers() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let plain = format!("url = \"smtp://127.0.0.1:{}\"", smtp.port);
    let routes = "[[routes]]\nname = \"first\"\nreviewers = [\"rita\"]\nnotify = [\"email\"]\n\
                  escalate_after_s = 60\nescalate_to = \"oncall\"\n\n[[routes]]\nname = \"oncall\"\n\
                  triggers = [\"error\"]\nreviewers = [\"sam\"]\nnotify = [\"email\"]\n";
    let config = mail_config(smtp.port)
        .replace("[[routes]]\nname = \"eng\"\nreviewers = [\"rita\", \"role:engineer\"]\nnotify = [\"email\"]\n", routes);
    assert!(config.contains(&plain) && config.contains("oncall"));
    let mut env = TestEnv::with_config(&config);
    env.drive_clock();
    let daemon = env.start();
    submit(&env, "esc-mail");
    daemon.wait_until("the first route's mail", || smtp.mails().len() == 1);
    env.move_clock(61.0);
    daemon.wait_until("both mails", || smtp.mails().len() == 2);
    let mails = smtp.mails();
    assert_eq!(mails[0]["to"], "rita@example.com");
    assert!(!mails[0]["subject"].as_str().unwrap().contains("escalated"));
    assert_eq!(mails[1]["to"], "sam@example.com");
    let subject = mails[1]["subject"].as_str().unwrap();
    assert!(subject.ends_with("(escalated)"), "{subject}");
    assert!(
        mails[1]["text"].as_str().unwrap().contains("escalated"),
        "{}",
        mails[1]["text"]
    );
}

#[test]
fn confidential_handoffs_are_mailed_only_where_smtp_allows_their_class_and_then_thin() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let write = |daemon: &Daemon, ws: &str, id: &str, class: &str| {
        let mut h = util::handoff(id);
        h["classification"] = json!(class);
        h["summary"] = json!("SECRET-SUMMARY");
        upload_as(daemon, "test-agent-token", ws, &h);
    };
    // The default: public and internal only. One worker sends in order, so once the
    // internal handoff's mails are in, the confidential one's notice (still pending, in
    // another workspace) was dealt with.
    let mut env = TestEnv::with_config(&mail_config(smtp.port));
    env.init("beta");
    let daemon = env.start();
    write(&daemon, "beta", "conf-1", "confidential");
    daemon.wait_until("received", || daemon.handoffs("pending").len() == 1);
    write(&daemon, "alpha", "int-1", "internal");
    daemon.wait_until("internal mailed", || smtp.mails().len() == 2);
    assert_eq!(daemon.handoffs("pending").len(), 2);
    let mails = smtp.mails();
    assert!(
        mails
            .iter()
            .all(|m| m["subject"].as_str().unwrap().contains("int-1")),
        "{mails:?}"
    );
    daemon.stop();

    let smtp = Smtp::start(dir.path(), false);
    let allowed = mail_config(smtp.port).replace(
        "from = \"baton <baton@localhost>\"\n",
        "from = \"baton <baton@localhost>\"\nclassifications = [\"internal\", \"confidential\"]\n",
    );
    let mut env = TestEnv::with_config(&allowed);
    let daemon = env.start();
    write(&daemon, "alpha", "conf-2", "confidential");
    daemon.wait_until("mailed thin", || smtp.mails().len() == 2);
    for m in smtp.mails() {
        assert!(m["subject"].as_str().unwrap().contains("conf-2"));
        let both = format!("{}{}", m["text"], m["html"]);
        assert!(!both.contains("SECRET"), "{both}");
        assert!(both.contains("/handoffs/conf-2"), "{both}");
    }
}

#[test]
fn a_sign_off_is_mailed_to_the_holder_of_the_role_and_not_to_reviewers_who_cannot_complete_it() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let user = |name: &str, role: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\nroles = [\"{role}\"]\nemail = \"{name}@example.com\"\n"
        )
    };
    let config = [
        "public_url = \"http://baton.example\"\n".to_string(),
        user("rita", "reviewer"),
        user("sam", "reviewer"),
        user("vic", "security"),
        format!("[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n", smtp.port),
        "[[routes]]\nname = \"eng\"\nreviewers = [\"role:reviewer\"]\nsign_off_roles = [\"security\"]\n\
         notify = [\"email\"]\n"
            .to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let mut h = util::handoff("gate-1");
    h["sign_off"] = json!(["security"]);
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&h));
    daemon.wait_until("the notice is dealt with", || {
        !email_deliveries(&daemon, "delivered").is_empty()
    });
    let to: Vec<String> = smtp
        .mails()
        .iter()
        .map(|m| m["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        to,
        ["vic@example.com"],
        "only the security holder can approve it"
    );
    daemon.stop();
}

/// rita runs agent rita-bot; helper, another agent of the workspace, writes its handoff on the
/// share in rita-bot's name. That `from_agent` is a claim anyone writing there can make: rita
/// is mailed all the same (a forged name must not silence the reviewer it names), while a
/// handoff rita-bot uploads with its own token is proven hers, and mailed to bob alone.
#[test]
fn a_handoff_naming_a_reviewers_agent_on_the_share_is_still_mailed_to_that_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let person = |name: &str| {
        format!(
            "{}email = \"{name}@example.com\"\n",
            util::user(name, "\"reviewer\"")
        )
    };
    let config = [
        "public_url = \"http://baton.example\"\n".to_string(),
        person("rita"),
        person("bob"),
        util::agent_for("rita-bot", "rita", "alpha"),
        util::agent("helper", "alpha"),
        format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n",
            smtp.port
        ),
        "[[routes]]\nname = \"four-eyes\"\nreviewers = [\"rita\", \"bob\"]\nnotify = [\"email\"]\n"
            .to_string(),
    ]
    .concat();
    let mut env = TestEnv::with_config(&config);
    let daemon = env.start();
    let to = |id: &str| -> Vec<String> {
        let about = |m: &&Value| m["subject"].as_str().unwrap_or_default().contains(id);
        let mut to: Vec<String> = smtp
            .mails()
            .iter()
            .filter(about)
            .map(|m| m["to"].as_str().unwrap().to_string())
            .collect();
        to.sort();
        to
    };

    let mut forged = util::handoff("forged");
    forged["from_agent"] = json!("rita-bot");
    util::write_atomic(&env.ws("alpha").join("handoff.json"), &util::bytes(&forged));
    daemon.wait_until("the forged handoff's mail", || !to("forged").is_empty());
    // One notice is resolved into all of its mails at once: none is still to come.
    daemon.wait_until("each spooled mail sent", || {
        email_deliveries(&daemon, "pending").is_empty()
    });
    assert_eq!(
        to("forged"),
        ["bob@example.com", "rita@example.com"],
        "a from_agent written on the share skips nobody"
    );
    let shown = daemon.get("/api/v1/handoffs/forged").1;
    assert_eq!(shown["sender_proven"], false, "{shown}");

    let mut hers = util::handoff("hers");
    hers["from_agent"] = json!("rita-bot");
    upload_as(&daemon, "rita-bot-token", "alpha", &hers);
    daemon.wait_until("the uploaded handoff's mail", || !to("hers").is_empty());
    daemon.wait_until("each spooled mail sent", || {
        email_deliveries(&daemon, "pending").is_empty()
    });
    assert_eq!(to("hers"), ["bob@example.com"], "rita sent it, proven");
    daemon.stop();
}
