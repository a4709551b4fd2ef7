//! Passkeys in a cluster, over two real nodes, PostgreSQL and Chromium's virtual authenticator:
//! the registered passkeys and the ceremonies under way are rows of `documents` every node
//! reads, so no sticky sessions are needed. A passkey registered through one node confirms an
//! approval decided through the other; a registration started on one node is finished on the
//! other, once; a ceremony finished on both nodes at once is taken by one (nothing decided
//! twice); a damaged passkeys or ceremonies row is refused, named, and decides nothing.
//!
//! Both nodes have the same `public_url` (as behind a load balancer): node a listens on its
//! port, so the browser's pages (and the WebAuthn origin) are a's, and the test sends the
//! finishing requests to b itself, with the browser's session cookie and CSRF token.

use super::nodes::{holder, node_config, served, settled, spread, wait_long, SETTLE_S};
use super::pg::{free_port, Postgres};
use crate::browser::reviewer_config;
use crate::passkeys::{AddVirtualAuthenticator, PASSWORD};
use crate::util::{self, browser::Browser, Daemon, TestEnv};
use serde_json::{json, Value};

/// The row of the registered passkeys.
const CREDENTIALS: &str = "name = 'passkeys/credentials.json'";
/// The rows of the ceremonies under way.
const CEREMONIES: &str = "name LIKE 'passkeys/ceremonies/%'";

struct Stage {
    pg: Postgres,
    db: &'static str,
    env: TestEnv,
    a: Daemon,
    b: Daemon,
    /// `http://localhost:PORT`, a's port: the public URL of both nodes.
    base: String,
    browser: Browser,
}

/// rita reviews route `guarded`, which asks approvals for a passkey; she is signed in on a's
/// pages, with no passkey yet.
fn stage(db: &'static str) -> Stage {
    let pg = Postgres::start();
    let url = pg.database(db);
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 3, &["a", "b"], 1);
    // The public URL names a's port, so it is chosen first; another process may take it
    // before a binds it, so a start that fails is tried on another port.
    let (a, base) = (0..3)
        .find_map(|_| {
            let port = free_port();
            let base = format!("http://localhost:{port}");
            let config = node_config(&env, &url, "a", &extra(&base));
            let text = std::fs::read_to_string(&config).unwrap().replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            );
            std::fs::write(&config, text).unwrap();
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                env.spawn_with_config(&config)
            }));
            started.ok().map(|a| (a, base))
        })
        .expect("node a did not start on three free ports");
    let b = env.spawn_with_config(&node_config(&env, &url, "b", &extra(&base)));
    settled(&env, &pg, db, &["a", "b"], names.len());
    wait_long("shared out", SETTLE_S, || {
        served(&a) + served(&b) == names.len() && served(&b) > 0
    });
    let browser = Browser::start();
    browser
        .rt
        .block_on(browser.client.issue_cmd(AddVirtualAuthenticator))
        .expect("a virtual authenticator");
    browser.sign_in(&base, "rita", PASSWORD);
    Stage {
        pg,
        db,
        env,
        a,
        b,
        base,
        browser,
    }
}

fn extra(base: &str) -> String {
    format!(
        "public_url = \"{base}\"\n{}\
         [[routes]]\nname = \"guarded\"\nreviewers = [\"rita\"]\nstep_up = \"passkey\"\n",
        reviewer_config("rita", PASSWORD)
    )
}

/// An answer of a node: status and body.
struct Answer {
    status: u16,
    body: String,
    /// Where a 303 sends the browser.
    location: Option<String>,
}

impl Answer {
    /// The decision form's answer when it decided (a refusal sends back to the page with
    /// `?refused=decision`).
    fn decided(&self) -> bool {
        self.status == 303
            && self
                .location
                .as_deref()
                .is_some_and(|l| l.contains("?decided="))
    }
}

impl Stage {
    fn sql(&self, q: &str) -> String {
        let out = self.pg.psql(self.db, q);
        assert!(out.status.success(), "{q}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A workspace node b serves.
    fn on_b(&self) -> std::path::PathBuf {
        let names = self.sql("SELECT name FROM workspaces ORDER BY name");
        let name = names
            .lines()
            .find(|n| holder(&self.pg, self.db, n) == "b")
            .expect("b serves a workspace")
            .to_string();
        self.env.ws(&name)
    }

    /// A handoff `key` pending in `ws`, listed by both nodes.
    fn pending(&self, ws: &std::path::Path, key: &str) {
        util::write_atomic(&ws.join("handoff.json"), &util::bytes(&util::handoff(key)));
        for d in [&self.a, &self.b] {
            d.wait_until("the handoff is pending", || {
                crate::pages::state(d, key) == "pending"
            });
        }
    }

    /// Registers a passkey on a's page, as a person would (the password typed again).
    fn register_on_page(&self, label: &str) {
        self.browser
            .goto(&format!("{}/reviewers/passkeys", self.base));
        self.browser.wait_text("[data-passkey-register]");
        self.browser.fill("[data-passkey-label]", label);
        if self.browser.source().contains("data-passkey-password") {
            self.browser.fill("[data-passkey-password]", PASSWORD);
        }
        self.browser.click("[data-passkey-register]");
        self.browser.wait_for_text("table.passkeys", label);
    }

    /// Runs `script` in the page as an async function body (`done` is its callback).
    fn run_async(&self, script: &str, args: Vec<Value>) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1]; {script}");
        self.browser
            .rt
            .block_on(self.browser.client.execute_async(&wrapped, args))
            .expect("script")
    }

    /// The browser's session cookie and CSRF token, to send requests as rita to any node.
    fn session(&self) -> (String, String) {
        let cookie = self
            .browser
            .rt
            .block_on(self.browser.client.get_named_cookie("baton_session"))
            .expect("the session cookie");
        self.browser
            .goto(&format!("{}/reviewers/passkeys", self.base));
        self.browser.wait_text("#passkeys");
        let csrf = self
            .browser
            .run("return document.querySelector('[data-csrf]').dataset.csrf;");
        (
            format!("baton_session={}", cookie.value()),
            csrf.as_str().unwrap().to_string(),
        )
    }

    /// Has the passkey confirm an approval of revision 1 of `key` on a's handoff page (the
    /// ceremony is started by the node serving the handoff): `{ceremony, credential}`.
    fn assertion(&self, key: &str) -> Value {
        self.browser.goto(&format!("{}/handoffs/{key}", self.base));
        self.browser.wait_text("#passkey-step");
        let a = self.run_async(
            "window.batonPasskey.confirm(arguments[0], 1).then(done, (e) => done({error: String(e)}));",
            vec![json!(key)],
        );
        assert!(a["ceremony"].is_string(), "{a}");
        a
    }

    /// rita's passkeys as `d` lists them on its page.
    fn listed_on(&self, d: &Daemon) -> Vec<String> {
        let (cookie, _) = self.session();
        let page = get(&d.url, "/reviewers/passkeys", &cookie);
        assert_eq!(page.status, 200, "{}", page.body);
        page.body
            .split("data-passkey-id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    }

    /// The decision events of `key` in `ws`.
    fn decided(&self, ws: &std::path::Path, key: &str) -> usize {
        util::events(ws)
            .iter()
            .filter(|e| e["type"] == "handoff.decided" && e["key"] == key)
            .count()
    }
}

/// Posts the handoff page's approval of `key` with assertion `a` to the node at `base`, as
/// rita (her session cookie and CSRF token).
fn approve(base: &str, key: &str, a: &Value, rita: &(String, String)) -> Answer {
    let (cookie, csrf) = rita.clone();
    let form = vec![
        ("csrf", csrf),
        ("outcome", "approved".into()),
        ("revision", "1".into()),
        ("passkey_ceremony", a["ceremony"].as_str().unwrap().into()),
        (
            "passkey_credential",
            a["credential"].as_str().unwrap().into(),
        ),
    ];
    let path = format!("/handoffs/{key}/decision");
    let mut answer = post(base, &path, &cookie, None, Body::Form(form));
    // A refusal is told on the page it sends back to, once (the same node, or the one it
    // forwards the page to, holds the message).
    if let Some(back) = answer.location.clone().filter(|l| l.contains("?refused=")) {
        answer.body = get(base, &back, &cookie).body;
    }
    answer
}

enum Body {
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    match r {
        Ok(r) => Answer {
            status: r.status(),
            location: r.header("location").map(str::to_string),
            body: r.into_string().unwrap_or_default(),
        },
        Err(ureq::Error::Status(status, r)) => Answer {
            status,
            location: r.header("location").map(str::to_string),
            body: r.into_string().unwrap_or_default(),
        },
        Err(e) => panic!("{e}"),
    }
}

/// POSTs to node `d` with rita's session cookie (and the CSRF header, for the JSON calls).
fn post(base: &str, path: &str, cookie: &str, csrf: Option<&str>, body: Body) -> Answer {
    let mut req = agent().post(&format!("{base}{path}")).set("Cookie", cookie);
    if let Some(csrf) = csrf {
        req = req.set("X-CSRF-Token", csrf);
    }
    answer(match body {
        Body::Form(fields) => {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            req.send_form(&fields)
        }
        Body::Json(v) => req.send_json(v),
    })
}

fn get(base: &str, path: &str, cookie: &str) -> Answer {
    answer(
        agent()
            .get(&format!("{base}{path}"))
            .set("Cookie", cookie)
            .call(),
    )
}

/// A passkey registered through a is rita's on b: the approval's ceremony is started and
/// finished by b (which serves the handoff; a's page forwards the challenge), its assertion
/// checked against the passkey a kept, and its new signature count written back for every
/// node. The same approval sent to both nodes at once is taken once.
#[test]
fn a_passkey_registered_through_one_node_approves_through_the_other() {
    let _serial = super::nodes::one_at_a_time();
    let s = stage("passkeys_across");
    s.register_on_page("laptop");
    let ws = s.on_b();
    s.pending(&ws, "pk-1");
    let rita = s.session();
    let a1 = s.assertion("pk-1");
    let done = approve(&s.b.url, "pk-1", &a1, &rita);
    assert!(
        done.decided(),
        "{} {:?}: {}",
        done.status,
        done.location,
        done.body
    );
    let d = util::decision(&ws).expect("pk-1 decided through b");
    assert_eq!(d["by"], "rita", "{d}");
    assert_eq!(d["step_up"]["method"], "passkey", "{d}");
    let kept: Value = serde_json::from_str(&s.sql(&format!(
        "SELECT convert_from(body, 'UTF8') FROM documents WHERE {CREDENTIALS}"
    )))
    .unwrap();
    let key = &kept["rita"][0];
    assert_eq!(
        key["id"], d["step_up"]["credential"],
        "the passkey a registered: {kept}"
    );
    assert!(key["last_used_at"].is_string(), "{kept}");
    let counted = key["passkey"]["cred"]["counter"].as_u64().unwrap();

    // The same answer presented again, now through a: spent.
    s.pending(&ws, "pk-2");
    let again = approve(&s.a.url, "pk-2", &a1, &rita);
    assert!(
        again.body.contains("already used or expired"),
        "{}: {}",
        again.status,
        again.body
    );

    // One answer sent to both nodes at once: one approves, the other is refused, and the
    // handoff is decided once.
    let a2 = s.assertion("pk-2");
    let (on_a, on_b) = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| approve(&s.a.url, "pk-2", &a2, &rita));
        let on_b = scope.spawn(|| approve(&s.b.url, "pk-2", &a2, &rita));
        (on_a.join().unwrap(), on_b.join().unwrap())
    });
    let won: Vec<&Answer> = [&on_a, &on_b].into_iter().filter(|r| r.decided()).collect();
    assert_eq!(
        won.len(),
        1,
        "a: {} {}; b: {} {}",
        on_a.status,
        on_a.body,
        on_b.status,
        on_b.body
    );
    let lost = if on_a.decided() { &on_b } else { &on_a };
    assert!(
        lost.body.contains("already used or expired") || lost.body.contains("already decided"),
        "{}: {}",
        lost.status,
        lost.body
    );
    assert_eq!(s.decided(&ws, "pk-2"), 1, "pk-2 decided once");
    let kept: Value = serde_json::from_str(&s.sql(&format!(
        "SELECT convert_from(body, 'UTF8') FROM documents WHERE {CREDENTIALS}"
    )))
    .unwrap();
    let now = kept["rita"][0]["passkey"]["cred"]["counter"]
        .as_u64()
        .unwrap();
    assert!(
        counted == 0 || now > counted,
        "the second assertion's count is kept: {counted} then {now}"
    );
}

/// A registration started on a is finished on b, once: the same answer then sent to a is
/// refused. A confirmation made on a (for registering another passkey) presented to both
/// nodes at once is taken by one of them.
#[test]
fn a_registration_started_on_one_node_is_finished_on_the_other_once() {
    let _serial = super::nodes::one_at_a_time();
    let s = stage("passkeys_register");
    s.browser.goto(&format!("{}/reviewers/passkeys", s.base));
    s.browser.wait_text("#passkeys");
    // The page's first two steps on a: the options (with the password typed again) and the
    // authenticator's new credential; the third, the credential's post, goes to b.
    let made = s.run_async(
        "(async () => {
           const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
           const bytes = (s) => { const t = s.replace(/-/g, '+').replace(/_/g, '/'); return Uint8Array.from(atob(t + '==='.slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)); };
           const csrf = document.querySelector('[data-csrf]').dataset.csrf;
           const r = await fetch('/reviewers/passkeys/options', {method: 'POST', credentials: 'same-origin',
             headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf}, body: JSON.stringify({password: arguments[0]})});
           if (!r.ok) return {error: r.status + ' ' + await r.text()};
           const { ceremony, options } = await r.json();
           const pk = options.publicKey;
           pk.challenge = bytes(pk.challenge); pk.user.id = bytes(pk.user.id);
           pk.excludeCredentials = [];
           const c = await navigator.credentials.create({ publicKey: pk });
           const credential = { id: c.id, rawId: b64(c.rawId), type: c.type, extensions: {},
             response: { attestationObject: b64(c.response.attestationObject), clientDataJSON: b64(c.response.clientDataJSON) } };
           return { ceremony, credential };
         })().then(done, (e) => done({error: String(e)}));",
        vec![json!(PASSWORD)],
    );
    assert!(made["ceremony"].is_string(), "{made}");
    let (cookie, csrf) = s.session();
    let new =
        json!({"ceremony": made["ceremony"], "credential": made["credential"], "label": "via b"});
    let finish = |d: &Daemon| {
        post(
            &d.url,
            "/reviewers/passkeys/new",
            &cookie,
            Some(&csrf),
            Body::Json(new.clone()),
        )
    };
    let on_b = finish(&s.b);
    assert_eq!(on_b.status, 201, "finished on b: {}", on_b.body);
    let on_a = finish(&s.a);
    assert_eq!(on_a.status, 422, "{}", on_a.body);
    assert!(
        on_a.body.contains("already used or expired"),
        "{}",
        on_a.body
    );
    let listed = s.listed_on(&s.a);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(s.listed_on(&s.b), listed, "the same passkey on both nodes");

    // A confirmation for registering another, made on a's page, sent to both at once.
    s.browser.goto(&format!("{}/reviewers/passkeys", s.base));
    s.browser.wait_text("#passkeys");
    let confirmed = s.run_async(
        "window.batonPasskey.manage('register').then(done, (e) => done({error: String(e)}));",
        vec![],
    );
    assert!(confirmed["ceremony"].is_string(), "{confirmed}");
    let credential: Value =
        serde_json::from_str(confirmed["credential"].as_str().unwrap()).unwrap();
    let shown = json!({"ceremony": confirmed["ceremony"], "credential": credential});
    let options = |base: &str| {
        post(
            base,
            "/reviewers/passkeys/options",
            &cookie,
            Some(&csrf),
            Body::Json(shown.clone()),
        )
    };
    let (on_a, on_b) = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| options(&s.a.url));
        let on_b = scope.spawn(|| options(&s.b.url));
        (on_a.join().unwrap(), on_b.join().unwrap())
    });
    let statuses = [on_a.status, on_b.status];
    assert!(
        statuses.contains(&200) && statuses.contains(&422),
        "one taken, one refused: a {} {}; b {} {}",
        on_a.status,
        on_a.body,
        on_b.status,
        on_b.body
    );
    let lost = if on_a.status == 422 { &on_a } else { &on_b };
    assert!(
        lost.body.contains("already used or expired"),
        "{}",
        lost.body
    );
}

/// A passkeys row emptied or a ceremonies row damaged behind the nodes' backs is refused and
/// named, never read as "no passkeys" (which would let the password alone register one) or
/// "no ceremony"; nothing is decided, and the rows are not written over.
#[test]
fn a_damaged_passkeys_row_is_refused_and_decides_nothing() {
    let _serial = super::nodes::one_at_a_time();
    let s = stage("passkeys_damaged");
    s.register_on_page("laptop");
    let ws = s.on_b();
    s.pending(&ws, "pk-d");
    let kept = s.sql(&format!(
        "SELECT encode(body, 'hex') FROM documents WHERE {CREDENTIALS}"
    ));
    assert!(!kept.is_empty(), "the passkeys are a row");

    let rita = s.session();
    let a1 = s.assertion("pk-d");
    s.sql(&format!(
        "UPDATE documents SET body = '' WHERE {CREDENTIALS}"
    ));
    let refused = approve(&s.b.url, "pk-d", &a1, &rita);
    assert!(
        refused.body.contains("not a list of passkeys")
            && refused.body.contains("passkeys/credentials.json"),
        "{}: {}",
        refused.status,
        refused.body
    );
    assert!(
        util::decision(&ws).is_none(),
        "decided with damaged passkeys"
    );
    // The page says so, and the password alone registers nothing.
    let (cookie, csrf) = rita.clone();
    let page = get(&s.a.url, "/reviewers/passkeys", &cookie);
    assert!(
        page.body.contains("not a list of passkeys"),
        "{}",
        page.body
    );
    let options = post(
        &s.b.url,
        "/reviewers/passkeys/options",
        &cookie,
        Some(&csrf),
        Body::Json(json!({"password": PASSWORD})),
    );
    assert_eq!(options.status, 503, "{}", options.body);
    assert!(
        options.body.contains("not a list of passkeys"),
        "{}",
        options.body
    );
    let left = s.sql(&format!(
        "SELECT length(body) FROM documents WHERE {CREDENTIALS}"
    ));
    assert_eq!(left, "0", "the damaged row is not written over");

    // Mended; then rita's ceremonies row is damaged while a confirmation is under way.
    s.sql(&format!(
        "UPDATE documents SET body = decode('{kept}', 'hex') WHERE {CREDENTIALS}"
    ));
    let a2 = s.assertion("pk-d");
    s.sql(&format!(
        "UPDATE documents SET body = convert_to('{{\"open\": 7}}', 'UTF8') WHERE {CEREMONIES}"
    ));
    let refused = approve(&s.b.url, "pk-d", &a2, &rita);
    assert!(
        refused.body.contains("not a list of passkey ceremonies"),
        "{}: {}",
        refused.status,
        refused.body
    );
    assert!(
        util::decision(&ws).is_none(),
        "decided with damaged ceremonies"
    );
}
