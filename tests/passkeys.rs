//! Passkey step-up end to end, over the real daemon and headless Chromium with its WebDriver
//! virtual authenticator (CTAP2, internal transport, resident keys, user verification): a
//! reviewer registers a passkey on /reviewers/passkeys and approves on a `step_up =
//! "passkey"` route from the handoff page; the decision records the passkey, signed. An
//! approval without an assertion, with an assertion made for another handoff, or with an
//! assertion already presented once is refused and decides nothing; the mail offers no
//! approve link there (reject from the mail still works). A route that asks for passkeys without a `public_url` keeps the daemon from
//! starting. A session alone (a stolen cookie) registers no passkey: a first one needs the
//! password typed again, another (and a removal) an assertion of a passkey the reviewer has;
//! an agent's event stream is never told of passkeys.

use crate::browser::reviewer_config;
use crate::notify::mail::Smtp;
use crate::pages::{hidden, pending_handoff, state, Web};
use crate::util::{self, browser::Browser, Daemon, TestEnv};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use fantoccini::wd::WebDriverCompatibleCommand;
use serde_json::{json, Value};
use sha2::Digest;
use std::path::PathBuf;

pub(crate) const PASSWORD: &str = "correct horse";
/// An agent of every workspace (`*`), to listen to the event stream.
const AGENT_TOKEN: &str = "passkeys-agent-token";

/// The WebDriver "Add Virtual Authenticator" command (WebAuthn spec, section 11.3).
#[derive(Debug)]
pub(crate) struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true, "automaticPresenceSimulation": true,
        });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Stage {
    /// The daemon's folder (config, data_dir, workspaces), kept while the stage lives.
    _env: TestEnv,
    daemon: Daemon,
    /// `http://localhost:PORT`: the public URL, so the relying party's origin.
    base: String,
    alpha: PathBuf,
    beta: PathBuf,
    smtp: Smtp,
    browser: Browser,
    /// The SMTP stand-in's folder (its mails are kept there).
    _smtp_dir: TestEnv,
    /// The config the daemon runs with (on the public URL's port).
    config: PathBuf,
}

/// rita reviews route `guarded` (both workspaces), which asks for a passkey and mails her
/// with action links; the daemon's public URL is `http://localhost:PORT`, a secure context
/// for Chromium. rita is signed in, with a passkey registered on the page.
fn stage() -> Stage {
    let s = unregistered();
    s.register_on_page("test laptop", PASSWORD);
    s.browser.wait_for_text("table.passkeys", "test laptop");
    s
}

/// The stage with rita signed in and no passkey yet.
fn unregistered() -> Stage {
    // The public URL names the port, so the port is chosen first; another process may take
    // it before the daemon binds it, so a start that fails is tried on another port.
    for _ in 0..3 {
        if let Some(stage) = stage_on(free_port()) {
            return stage;
        }
    }
    panic!("the daemon did not start on three free ports");
}

fn stage_on(port: u16) -> Option<Stage> {
    let base = format!("http://localhost:{port}");
    let probe = TestEnv::new();
    let smtp = Smtp::start(probe.root(), false);
    let rita = format!(
        "{}email = \"rita@example.com\"\n",
        reviewer_config("rita", PASSWORD)
    );
    let extra = format!(
        "public_url = \"{base}\"\n{rita}\
         [smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"guarded\"\nreviewers = [\"rita\"]\nnotify = [\"email\"]\nstep_up = \"passkey\"\n\
         [[agents]]\nname = \"watcher\"\ntoken_sha256 = \"{}\"\nworkspaces = [\"*\"]\n",
        smtp.port,
        hex::encode(sha2::Sha256::digest(AGENT_TOKEN.as_bytes()))
    );
    let mut env = TestEnv::with_config(&extra);
    let alpha = env.ws("alpha");
    let beta = env.init("beta");
    // The daemon must listen on the port the public URL names.
    let config = env.root().join("baton-passkeys.toml");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text).unwrap();
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        env.spawn_with_config(&config)
    }));
    let daemon = started.ok()?;
    let browser = Browser::start();
    browser
        .rt
        .block_on(browser.client.issue_cmd(AddVirtualAuthenticator))
        .expect("a virtual authenticator");
    browser.sign_in(&base, "rita", PASSWORD);
    Some(Stage {
        _env: env,
        daemon,
        base,
        alpha,
        beta,
        smtp,
        browser,
        _smtp_dir: probe,
        config,
    })
}

impl Stage {
    /// Registers a passkey on the page as a person would: a name, the password typed again
    /// when the page asks for it, the button.
    fn register_on_page(&self, label: &str, password: &str) {
        self.browser
            .goto(&format!("{}/reviewers/passkeys", self.base));
        self.browser.wait_text("[data-passkey-register]");
        self.browser.fill("[data-passkey-label]", label);
        if self.browser.source().contains("data-passkey-password") {
            self.browser.fill("[data-passkey-password]", password);
        }
        self.browser.click("[data-passkey-register]");
    }

    /// Registers a new credential of the browser's authenticator with `shown` on
    /// `/reviewers/passkeys/options`, as a thief's script would: the answer of `/options`,
    /// or of `/new` when `/options` gave a ceremony.
    fn register_with(&self, shown: Value) -> Value {
        let started = self.register_start(shown);
        match started["step"].as_str() {
            Some("started") => self.register_finish(&started["body"]),
            _ => started,
        }
    }

    /// Asks `/reviewers/passkeys/options` with `shown`: `{step: "started", body: {ceremony,
    /// options}}`, or the refusal as `{step: "options", status, body}`.
    fn register_start(&self, shown: Value) -> Value {
        self.on_passkeys_page(
            "const r = await post('/reviewers/passkeys/options', arguments[0]);
             if (!r.ok) return {step: 'options', status: r.status, body: await r.text()};
             return {step: 'started', body: await r.json()};",
            shown,
        )
    }

    /// Finishes a registration `started` (`{ceremony, options}`) with a new credential of the
    /// browser's authenticator: `/new`'s answer as `{step: "new", status, body}`.
    fn register_finish(&self, started: &Value) -> Value {
        self.on_passkeys_page(
            "const { ceremony, options } = arguments[0];
             const pk = options.publicKey;
             pk.challenge = bytes(pk.challenge); pk.user.id = bytes(pk.user.id);
             pk.excludeCredentials = [];
             const c = await navigator.credentials.create({ publicKey: pk });
             const credential = { id: c.id, rawId: b64(c.rawId), type: c.type, extensions: {},
               response: { attestationObject: b64(c.response.attestationObject), clientDataJSON: b64(c.response.clientDataJSON) } };
             const n = await post('/reviewers/passkeys/new', { ceremony, credential, label: 'thief' });
             return {step: 'new', status: n.status, body: await n.text()};",
            started.clone(),
        )
    }

    /// Runs `body` (an async function's, given `arguments[0]` = `arg`, `post` with the page's
    /// CSRF token, `b64` and `bytes`) on the passkeys page, as a script of the signed-in page.
    fn on_passkeys_page(&self, body: &str, arg: Value) -> Value {
        self.browser
            .goto(&format!("{}/reviewers/passkeys", self.base));
        self.browser.wait_text("#passkeys");
        let script = format!(
            "(async () => {{
               const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
               const bytes = (s) => {{ const t = s.replace(/-/g, '+').replace(/_/g, '/'); return Uint8Array.from(atob(t + '==='.slice((t.length + 3) % 4)), (c) => c.charCodeAt(0)); }};
               const csrf = document.querySelector('[data-csrf]').dataset.csrf;
               const post = (url, body) => fetch(url, {{method: 'POST', credentials: 'same-origin',
                 headers: {{'Content-Type': 'application/json', 'X-CSRF-Token': csrf}}, body: JSON.stringify(body)}});
               {body}
             }})().then(done, (e) => done({{step: 'error', status: 0, body: String(e)}}));"
        );
        self.run_async(&script, vec![arg])
    }

    /// rita's passkeys as the page lists them (their ids).
    fn listed(&self) -> Vec<String> {
        self.browser
            .goto(&format!("{}/reviewers/passkeys", self.base));
        self.browser.wait_text("#passkeys");
        self.browser
            .source()
            .split("data-passkey-id=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect()
    }

    /// Runs `script` in the page as an async function body (`done` is its callback).
    fn run_async(&self, script: &str, args: Vec<Value>) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1]; {script}");
        self.browser
            .rt
            .block_on(self.browser.client.execute_async(&wrapped, args))
            .expect("script")
    }

    /// Opens handoff `key`'s page and has the passkey confirm an approval of `revision`:
    /// `{ceremony, credential}`, as the page's script would post them.
    fn assertion(&self, key: &str, revision: u32) -> Value {
        self.browser.goto(&format!("{}/handoffs/{key}", self.base));
        self.browser.wait_text("#passkey-step");
        self.run_async(
            "window.batonPasskey.confirm(arguments[0], arguments[1]).then(done, (e) => done({error: String(e)}));",
            vec![json!(key), json!(revision)],
        )
    }

    /// Posts handoff `key`'s decision form from the signed-in page with `fields` (plus the
    /// session's CSRF token); the page it lands on, as HTML.
    fn post_decision(&self, key: &str, fields: Value) -> String {
        self.browser.goto(&format!("{}/handoffs/{key}", self.base));
        self.browser.wait_text("#decide");
        let answer = self.run_async(
            "const f = new URLSearchParams(arguments[1]); f.set('csrf', document.querySelector('input[name=csrf]').value);
             fetch(`/handoffs/${encodeURIComponent(arguments[0])}/decision`, {method: 'POST', body: f, credentials: 'same-origin'})
               .then((r) => r.text()).then(done, (e) => done(String(e)));",
            vec![json!(key), fields],
        );
        answer.as_str().unwrap_or_default().to_string()
    }

    fn pending(&self, key: &str) -> bool {
        state(&self.daemon, key) == "pending"
    }
}

fn with_assertion(a: &Value, revision: &str) -> Value {
    json!({
        "outcome": "approved", "revision": revision,
        "passkey_ceremony": a["ceremony"], "passkey_credential": a["credential"],
    })
}

#[test]
fn a_passkey_approves_on_the_page_and_the_signed_decision_records_it() {
    let s = stage();
    pending_handoff(&s.daemon, &s.alpha, "pk-1");
    s.browser.goto(&format!("{}/handoffs/pk-1", s.base));
    s.browser.wait_text("#passkey-step");
    s.browser.click("button.approve");
    s.browser.accept_dialog();
    s.daemon.wait_until("the approval is decided", || {
        util::decision(&s.alpha).is_some()
    });
    let d = util::decision(&s.alpha).unwrap();
    assert_eq!(d["outcome"], "approved", "{d}");
    assert_eq!(d["by"], "rita");
    assert_eq!(d["step_up"]["method"], "passkey", "{d}");
    let id = d["step_up"]["credential"].as_str().unwrap().to_string();
    let mut each = d["step_up"].clone();
    each["by"] = json!("rita");
    assert_eq!(
        d["step_ups"],
        json!([each]),
        "every counted approval's passkey: {d}"
    );
    s.browser.goto(&format!("{}/reviewers/passkeys", s.base));
    let listed = s.browser.source();
    assert!(
        listed.contains(&format!("data-passkey-id=\"{id}\"")),
        "the decision names the registered passkey {id}"
    );
    // Signed: the attestation's statement carries the decision with its step_up.
    let payload = STANDARD
        .decode(d["attestation"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        statement["predicate"]["decision"]["step_up"], d["step_up"],
        "{statement}"
    );
    let types = util::event_types(&s.alpha);
    let asserted = types.iter().position(|t| t == "passkey.asserted");
    let decided = types.iter().position(|t| t == "handoff.decided");
    assert!(
        asserted.is_some() && asserted < decided,
        "passkey.asserted, then handoff.decided: {types:?}"
    );
    let metrics = s.daemon.metrics();
    assert!(
        metrics.contains("baton_passkeys_total{outcome=\"registered\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_passkeys_total{outcome=\"asserted\"} 1"));
}

/// An approval given while the route did not yet ask for a passkey does not count toward
/// its quorum once it does: sam approves without one, the route is then made a passkey route,
/// and rita's approval with her passkey leaves the handoff waiting for a second approval that
/// carries one (else sam's old "yes" would stand in for a passkey nobody presented).
#[test]
fn an_approval_given_without_a_passkey_does_not_count_on_a_passkey_route() {
    let s = stage();
    let guarded = std::fs::read_to_string(&s.config).unwrap();
    let quorum = guarded
        .replace(
            "step_up = \"passkey\"\n",
            "step_up = \"passkey\"\nmin_approvals = 2\n",
        )
        .replace("reviewers = [\"rita\"]", "reviewers = [\"rita\", \"sam\"]")
        + &util::user("sam", "\"reviewer\"");
    let open = quorum.replace("step_up = \"passkey\"\n", "");
    let Stage {
        mut _env,
        daemon,
        base,
        alpha,
        beta,
        smtp,
        browser,
        _smtp_dir,
        config,
    } = s;
    daemon.stop();
    std::fs::write(&config, &open).unwrap();
    let daemon = _env.spawn_with_config(&config);
    pending_handoff(&daemon, &alpha, "pk-q");
    let (status, answer) = daemon.post_as(
        "/api/v1/handoffs/pk-q/decision",
        Some("sam-token"),
        r#"{"outcome": "approved", "revision": 1}"#,
    );
    assert_eq!(
        status, 202,
        "sam's approval leaves it waiting for a second: {answer}"
    );
    daemon.stop();
    std::fs::write(&config, &quorum).unwrap();
    let daemon = _env.spawn_with_config(&config);
    daemon.wait_until("pk-q is pending again", || {
        state(&daemon, "pk-q") == "pending"
    });
    let s = Stage {
        _env,
        daemon,
        base,
        alpha,
        beta,
        smtp,
        browser,
        _smtp_dir,
        config,
    };
    s.browser.goto(&format!("{}/handoffs/pk-q", s.base));
    s.browser.wait_text("#passkey-step");
    s.browser.click("button.approve");
    s.browser.accept_dialog();
    let partial = |ws: &std::path::Path| {
        util::event_types(ws)
            .iter()
            .filter(|t| *t == "handoff.partially_approved")
            .count()
    };
    s.daemon.wait_until("rita's approval is recorded", || {
        partial(&s.alpha) == 2 || util::decision(&s.alpha).is_some()
    });
    assert!(
        util::decision(&s.alpha).is_none(),
        "sam's approval without a passkey completed the quorum: {:?}",
        util::decision(&s.alpha)
    );
    assert!(s.pending("pk-q"));
}

/// A stage with handoff `pk-a` pending in alpha and `pk-b` in beta, both on `guarded`.
fn two_pending() -> Stage {
    let s = stage();
    pending_handoff(&s.daemon, &s.alpha, "pk-a");
    pending_handoff(&s.daemon, &s.beta, "pk-b");
    s
}

fn refused_count(s: &Stage) -> bool {
    s.daemon
        .metrics()
        .contains("baton_passkeys_total{outcome=\"refused\"} 1")
}

#[test]
fn an_approval_without_an_assertion_is_refused() {
    let s = two_pending();
    // The form posted as the page would post it without its script.
    let html = s.post_decision("pk-a", json!({"outcome": "approved", "revision": "1"}));
    assert!(html.contains("asks for a passkey to approve"), "{html}");
    assert!(s.pending("pk-a"), "approved without a passkey");
    assert!(refused_count(&s));
    // Rejecting grants nothing: no passkey asked.
    let html = s.post_decision("pk-b", json!({"outcome": "rejected", "revision": "1"}));
    assert!(!html.contains("asks for a passkey"), "{html}");
    let d = util::decision(&s.beta).expect("pk-b decided");
    assert_eq!(d["outcome"], "rejected", "{d}");
    assert!(d.get("step_up").is_none(), "{d}");
}

#[test]
fn an_assertion_made_for_another_handoff_is_refused() {
    let s = two_pending();
    let for_b = s.assertion("pk-b", 1);
    assert!(for_b["ceremony"].is_string(), "{for_b}");
    let html = s.post_decision("pk-a", with_assertion(&for_b, "1"));
    assert!(
        html.contains("was made for approved of handoff &#34;pk-b&#34; revision 1"),
        "{html}"
    );
    assert!(s.pending("pk-a"), "an assertion for pk-b approved pk-a");
}

#[test]
fn a_replayed_assertion_is_refused() {
    let s = two_pending();
    // Presented once (with a stale revision, so nothing was decided), then again.
    let for_a = s.assertion("pk-a", 1);
    let html = s.post_decision("pk-a", with_assertion(&for_a, "7"));
    assert!(html.contains("changed since it was read"), "{html}");
    assert!(s.pending("pk-a"));
    let html = s.post_decision("pk-a", with_assertion(&for_a, "1"));
    assert!(html.contains("already used or expired"), "{html}");
    assert!(s.pending("pk-a"), "a replayed assertion approved");
}

#[test]
fn a_mail_on_a_passkey_route_offers_no_approve_link_and_sends_to_the_page() {
    let s = two_pending();
    let mail = {
        let mut found = None;
        s.daemon.wait_until("rita's mail about pk-a", || {
            found = s
                .smtp
                .mails()
                .into_iter()
                .find(|m| m["text"].as_str().unwrap_or_default().contains("pk-a"));
            found.is_some()
        });
        found.unwrap()["text"]
            .as_str()
            .unwrap()
            .replace("\r\n", "\n")
    };
    // A link cannot hold the ceremony, so none is minted that could only be refused (an old
    // one is refused: tests/notify/links.rs); the mail names the page that asks for it.
    assert!(
        !mail.lines().any(|l| l.starts_with("Approve")),
        "an approve link on a passkey route: {mail}"
    );
    let page = format!("{}/handoffs/pk-a", s.base);
    assert!(
        mail.contains(&format!(
            "Approving needs your passkey, on the handoff's page: {page}"
        )),
        "{mail}"
    );
    let reject = mail
        .lines()
        .find_map(|l| l.strip_prefix("Reject: "))
        .unwrap_or_else(|| panic!("no Reject link in {mail}"))
        .trim()
        .strip_prefix(s.base.as_str())
        .expect("under public_url")
        .to_string();
    // Rejecting grants nothing: the mail's link decides it, no passkey asked.
    let web = Web::new(&s.daemon);
    let shown = web.get(&reject, None);
    let csrf = shown
        .cookie_value("baton_act")
        .expect("the confirm page's cookie");
    assert_eq!(hidden(&shown.body, "csrf").as_deref(), Some(csrf.as_str()));
    let posted = web.post_form(
        &reject,
        Some(&format!("baton_act={csrf}")),
        &[("csrf", &csrf)],
    );
    assert_eq!(posted.status, 200, "{}", posted.body);
    let d = util::decision(&s.alpha).expect("pk-a rejected from the mail");
    assert_eq!(d["outcome"], "rejected", "{d}");
    assert!(d.get("step_up").is_none(), "{d}");
}

#[test]
fn a_passkey_route_without_public_url_keeps_the_daemon_from_starting() {
    let env = TestEnv::with_config(&format!(
        "{}[[routes]]\nname = \"guarded\"\nreviewers = [\"rita\"]\nstep_up = \"passkey\"\n",
        reviewer_config("rita", PASSWORD)
    ));
    let (code, stderr) = util::refused_start(&env.config_path());
    assert_ne!(code, Some(0));
    assert!(
        stderr.contains("routes[0] (\"guarded\").step_up") && stderr.contains("needs public_url"),
        "{stderr}"
    );
    let ip = TestEnv::with_config(&format!(
        "public_url = \"http://127.0.0.1:9\"\n{}[[routes]]\nname = \"guarded\"\nreviewers = [\"rita\"]\nstep_up = \"passkey\"\n",
        reviewer_config("rita", PASSWORD)
    ));
    let (code, stderr) = util::refused_start(&ip.config_path());
    assert_ne!(code, Some(0));
    assert!(stderr.contains("names an IP address"), "{stderr}");
}

#[test]
fn a_grant_cannot_stand_in_for_a_passkey() {
    let s = two_pending();
    let for_a = s.assertion("pk-a", 1);
    let mut fields = with_assertion(&for_a, "1");
    fields["grant"] = json!("1");
    let html = s.post_decision("pk-a", fields);
    assert!(html.contains("which a grant would skip"), "{html}");
    assert!(
        s.pending("pk-a"),
        "approved with a grant on a passkey route"
    );
}

#[test]
fn a_second_passkey_needs_an_assertion_of_the_first() {
    let s = stage();
    let before = s.listed();
    assert_eq!(before.len(), 1, "{before:?}");
    // The session alone, the session with the password, a made-up assertion: refused, and
    // nothing is registered.
    for shown in [
        json!({}),
        json!({"password": PASSWORD}),
        json!({"ceremony": "0123456789abcdef0123456789abcdef", "credential": {"id": "x"}}),
    ] {
        let answer = s.register_with(shown.clone());
        assert_eq!(answer["step"], "options", "{shown}: {answer}");
        let status = answer["status"].as_u64().unwrap();
        assert!(status == 403 || status == 422, "{shown}: {answer}");
    }
    // An assertion made for another purpose (removing the passkey) does not register either.
    let for_remove = s.run_async(
        "window.batonPasskey.manage('remove', arguments[0]).then(done, (e) => done({error: String(e)}));",
        vec![json!(before[0])],
    );
    assert!(for_remove["ceremony"].is_string(), "{for_remove}");
    let credential: Value =
        serde_json::from_str(for_remove["credential"].as_str().unwrap()).unwrap();
    let answer =
        s.register_with(json!({"ceremony": for_remove["ceremony"], "credential": credential}));
    assert_eq!(answer["status"], 422, "{answer}");
    assert!(
        answer["body"].as_str().unwrap().contains("was made for"),
        "{answer}"
    );
    assert_eq!(
        s.listed(),
        before,
        "a passkey was registered without the first one"
    );
    // With an assertion made for registering, another is registered (a credential of its own
    // on the same authenticator).
    let for_register = s.run_async(
        "window.batonPasskey.manage('register').then(done, (e) => done({error: String(e)}));",
        vec![],
    );
    let credential: Value =
        serde_json::from_str(for_register["credential"].as_str().unwrap()).unwrap();
    let answer =
        s.register_with(json!({"ceremony": for_register["ceremony"], "credential": credential}));
    assert_eq!(answer["status"], 201, "{answer}");
    assert_eq!(s.listed().len(), 2);
    let journal = std::fs::read_to_string(s._env.root().join("data/passkeys/changes.jsonl"))
        .expect("the passkey record");
    let lines: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{journal}");
    assert_eq!(lines[0]["type"], "passkey.registered");
    assert_eq!(lines[0]["proof"], "password");
    assert!(
        lines[1]["proof"].as_str().unwrap().starts_with("passkey "),
        "{journal}"
    );
}

#[test]
fn a_first_passkey_needs_the_password_typed_again() {
    let s = unregistered();
    for shown in [
        json!({}),
        json!({"password": ""}),
        json!({"password": "wrong horse"}),
    ] {
        let answer = s.register_with(shown.clone());
        assert_eq!(answer["step"], "options", "{shown}: {answer}");
        assert_eq!(answer["status"], 403, "{shown}: {answer}");
    }
    assert!(s.listed().is_empty(), "registered without the password");
    s.register_on_page("laptop", PASSWORD);
    s.browser.wait_for_text("table.passkeys", "laptop");
}

/// The password stands for a first passkey when the registration finishes, not only when it
/// starts: a thief holding rita's session and password opens a registration before she has a
/// passkey and finishes it after she registered her first, and is refused.
#[test]
fn a_registration_started_with_the_password_is_refused_once_a_first_passkey_is_kept() {
    let s = unregistered();
    let started = s.register_start(json!({"password": PASSWORD}));
    assert_eq!(started["step"], "started", "{started}");
    s.register_on_page("laptop", PASSWORD);
    s.browser.wait_for_text("table.passkeys", "laptop");
    let before = s.listed();
    assert_eq!(before.len(), 1, "{before:?}");
    let answer = s.register_finish(&started["body"]);
    assert_eq!(answer["status"], 403, "{answer}");
    let body = answer["body"].as_str().unwrap();
    assert!(body.contains("you have a passkey by now"), "{answer}");
    assert_eq!(s.listed(), before, "the thief's passkey was kept");
}

#[test]
fn removing_a_passkey_needs_an_assertion() {
    let s = stage();
    let ids = s.listed();
    // The form posted with the session and its CSRF token only.
    let answer = s.run_async(
        "const f = new URLSearchParams({csrf: document.querySelector('[data-csrf]').dataset.csrf, id: arguments[0]});
         fetch('/reviewers/passkeys/remove', {method: 'POST', body: f, credentials: 'same-origin'})
           .then((r) => r.text()).then(done, (e) => done(String(e)));",
        vec![json!(ids[0])],
    );
    assert!(
        answer.as_str().unwrap().contains("confirm with it first"),
        "{answer}"
    );
    assert_eq!(s.listed(), ids, "removed without an assertion");
    // On the page, confirmed with the passkey: removed.
    s.browser.click("form[data-passkey-remove] button");
    s.browser.wait_text("#no-passkeys");
    assert!(s.listed().is_empty());
}

#[test]
fn an_agent_event_stream_is_not_told_of_passkeys() {
    use std::io::{Read, Write};
    let s = unregistered();
    let listen = |token: &str| {
        let mut stream = std::net::TcpStream::connect(s.daemon.addr()).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let request = format!(
            "GET /api/v1/events HTTP/1.1\r\nHost: baton\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream
    };
    let read = |stream: &mut std::net::TcpStream, seen: &mut String| {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    let mut agent = listen(AGENT_TOKEN);
    let mut person = listen(&s.daemon.token);
    let (mut agent_saw, mut person_saw) = (String::new(), String::new());
    read(&mut agent, &mut agent_saw);
    assert!(agent_saw.starts_with("HTTP/1.1 200"), "{agent_saw}");
    s.register_on_page("laptop", PASSWORD);
    s.browser.wait_for_text("table.passkeys", "laptop");
    s.daemon
        .wait_until("the admin's stream tells of the passkey", || {
            read(&mut person, &mut person_saw);
            person_saw.contains("passkey.registered")
        });
    read(&mut agent, &mut agent_saw);
    assert!(!agent_saw.contains("passkey"), "{agent_saw}");
}
