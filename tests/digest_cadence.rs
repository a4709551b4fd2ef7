//! A reviewer chooses their digest cadence on `/reviewers` (session, CSRF): kept in data_dir,
//! it decides when the digest mail goes out from the next boundary of the new cadence; a
//! reviewer changes only their own (an admin anyone's); 1 to 10080 minutes, else refused
//! saying so. The configuration's `digest_every_min` stays the default.

use crate::grants::person;
use crate::notify::mail::Smtp;
use crate::pages::{Session, Web};
use crate::util::{self, Daemon, TestEnv};
use serde_json::Value;
use std::time::Duration;

/// rita (hourly) and sam review route `batch` (workspaces b*, digests); ada is an admin.
fn config(port: u16) -> String {
    format!(
        "public_url = \"http://baton.example\"\n\
         {}email = \"rita@example.com\"\ndigest_every_min = 60\n\
         {}email = \"sam@example.com\"\n\
         {}email = \"ada@example.com\"\n\
         [smtp]\nurl = \"smtp://127.0.0.1:{port}\"\nfrom = \"baton <baton@localhost>\"\n\
         [[routes]]\nname = \"batch\"\nworkspaces = [\"b*\"]\nreviewers = [\"rita\", \"sam\"]\n\
         notify = [\"email\"]\ndigest = true\n",
        person("rita", "\"reviewer\""),
        person("sam", "\"reviewer\""),
        person("ada", "\"admin\""),
    )
}

fn digests_to(smtp: &Smtp, to: &str) -> Vec<Value> {
    smtp.mails()
        .into_iter()
        .filter(|m| m["to"] == to)
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .ends_with("for your review")
        })
        .collect()
}

/// Posts the cadence form as `s`: the flash the page then shows (notice or error).
fn set(web: &Web, s: &Session, user: &str, every: &str) -> String {
    let reply = web.post_form(
        "/reviewers/digest",
        Some(&s.cookie),
        &[("csrf", &s.csrf), ("user", user), ("every_min", every)],
    );
    assert_eq!(reply.status, 303, "{}", reply.body);
    let page = web.get("/reviewers", Some(s));
    assert_eq!(page.status, 200);
    let flash = page
        .body
        .split("class=\"flash")
        .nth(1)
        .unwrap_or_else(|| panic!("a flash: {}", page.body));
    let text = flash.split("</p>").next().unwrap();
    text.replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
}

/// What `/reviewers` shows `s` as `user`'s cadence (the "Every" cell), if a row is shown.
fn shown(web: &Web, s: &Session, user: &str) -> Option<String> {
    let page = web.get("/reviewers", Some(s)).body;
    let section = page.split("id=\"digests\"").nth(1)?;
    let row = section.split(&format!("data-reviewer=\"{user}\"")).nth(1)?;
    let cell = row.split("class=\"num every\"").nth(1)?;
    let text = cell.split('>').nth(1)?.split('<').next()?;
    Some(text.trim().to_string())
}

fn file(env: &TestEnv) -> Value {
    let at = env.root().join("data/digest-cadence.json");
    serde_json::from_slice(&std::fs::read(at).unwrap_or_default()).unwrap_or(Value::Null)
}

/// Moves the clock past the next whole hour when it is less than `margin_s` away, so that a
/// shorter cadence's boundaries can turn without an hourly one turning too.
fn away_from_the_hour(env: &TestEnv, margin_s: i64) {
    let now = env.clock_now().unix_timestamp();
    let to_hour = 3600 - now.rem_euclid(3600);
    if to_hour < margin_s {
        env.move_clock((to_hour + 10) as f64);
        std::thread::sleep(Duration::from_millis(1500));
    }
}

#[test]
fn a_reviewer_s_chosen_cadence_decides_when_their_digest_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port));
    env.init("b1");
    env.drive_clock();
    let d: Daemon = env.start();
    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(shown(&web, &rita, "rita").as_deref(), Some("60"));
    away_from_the_hour(&env, 7 * 60);

    let mut h = util::handoff("cad-1");
    h["trigger"] = "low_confidence".into();
    util::write_atomic(&env.ws("b1").join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || !d.handoffs("pending").is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert!(digests_to(&smtp, "rita@example.com").is_empty());

    // Every 5 minutes from now on: the next 5-minute boundary mails it, long before the hour.
    let said = set(&web, &rita, "rita", "5");
    assert!(said.contains("every 5 minute(s)"), "{said}");
    assert_eq!(shown(&web, &rita, "rita").as_deref(), Some("5 (chosen)"));
    assert_eq!(file(&env)["rita"], 5, "kept in data_dir");
    assert!(
        d.metrics()
            .contains("baton_events_total{type=\"digest.cadence_changed\"} 1"),
        "{}",
        d.metrics()
    );
    env.move_clock(300.0);
    d.wait_until("rita's digest at 5 minutes", || {
        !digests_to(&smtp, "rita@example.com").is_empty()
    });
    // sam kept the hourly default: no digest of his yet.
    std::thread::sleep(Duration::from_secs(2));
    assert!(digests_to(&smtp, "sam@example.com").is_empty());
    d.stop();
}

#[test]
fn a_reviewer_changes_only_their_own_cadence_within_bounds_and_an_admin_anyone_s() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port));
    let d = env.start();
    let web = Web::new(&d);
    let sam = web.sign_in("sam", "pw-sam");
    // sam sees his own row only, and cannot change rita's.
    assert_eq!(shown(&web, &sam, "rita"), None);
    assert_eq!(shown(&web, &sam, "sam").as_deref(), Some("60"));
    let said = set(&web, &sam, "rita", "30");
    assert!(
        said.contains("sam cannot change rita's digest cadence: only rita or an admin may"),
        "{said}"
    );
    assert_eq!(file(&env), Value::Null, "nothing recorded");

    // Out of range, or no number: refused saying the bounds.
    for every in ["0", "10081", "soon"] {
        let said = set(&web, &sam, "sam", every);
        assert!(
            said.contains("must be 1 to 10080 minutes") && said.contains(every),
            "{every}: {said}"
        );
    }
    assert_eq!(shown(&web, &sam, "sam").as_deref(), Some("60"));
    assert_eq!(file(&env), Value::Null, "nothing recorded");
    // The bounds themselves are taken.
    assert!(set(&web, &sam, "sam", "10080").contains("every 10080 minute(s)"));

    // Without the form's token nothing changes.
    let forged = web.post_form(
        "/reviewers/digest",
        Some(&sam.cookie),
        &[("user", "sam"), ("every_min", "1")],
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(file(&env)["sam"], 10080);

    // An admin sees and sets anyone's.
    let ada = web.sign_in("ada", "pw-ada");
    assert_eq!(shown(&web, &ada, "rita").as_deref(), Some("60"));
    assert!(set(&web, &ada, "rita", "15").contains("rita's digests now go out every 15"));
    assert_eq!(file(&env)["rita"], 15);
    assert_eq!(shown(&web, &ada, "sam").as_deref(), Some("10080 (chosen)"));
    d.stop();
}

/// A damaged `digest-cadence.json` is not read as "none chosen" and saved over: each save is
/// refused naming the file and what to do, the file is left as it was, digests still go out
/// at the configured cadence, and the damage is told (log, metric, `/healthz` degraded) until
/// the operator moves the file aside, which the next save sees without a restart.
#[test]
fn a_damaged_cadence_file_refuses_saves_and_digests_go_at_the_configured_cadence() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port));
    env.init("b1");
    env.drive_clock();
    let at = env.root().join("data/digest-cadence.json");
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    let torn = b"{\"rita\": 5, \"sam\": 30,";
    std::fs::write(&at, torn).unwrap();
    let d: Daemon = env.start();

    let health = d.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let damage = &health["digest_cadence_damaged"];
    assert!(
        damage["file"]
            .as_str()
            .unwrap()
            .ends_with("digest-cadence.json"),
        "{health}"
    );
    assert!(
        damage["action"].as_str().unwrap().contains("move it aside"),
        "{health}"
    );
    assert!(
        d.metrics()
            .contains("baton_errors_total{kind=\"digest_cadence_damaged\"} 1"),
        "{}",
        d.metrics()
    );

    let web = Web::new(&d);
    let rita = web.sign_in("rita", "pw-rita");
    assert_eq!(shown(&web, &rita, "rita").as_deref(), Some("60"));
    let said = set(&web, &rita, "rita", "15");
    assert!(
        said.contains("rita's digest cadence was not saved")
            && said.contains("digest-cadence.json is damaged")
            && said.contains("move it aside"),
        "{said}"
    );
    let (status, body) = put(&d, "rita", "rita-token", r#"{"every_min": 15}"#);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("is damaged"),
        "{body}"
    );
    assert_eq!(
        std::fs::read(&at).unwrap(),
        torn,
        "the file is left as it was"
    );
    assert!(!d
        .metrics()
        .contains("baton_events_total{type=\"digest.cadence_changed\"}"));

    // Digests go on at the configured hour.
    let mut h = util::handoff("cad-dmg");
    h["trigger"] = "low_confidence".into();
    util::write_atomic(&env.ws("b1").join("handoff.json"), &util::bytes(&h));
    d.wait_until("pending", || !d.handoffs("pending").is_empty());
    let now = env.clock_now().unix_timestamp();
    env.move_clock((3600 - now.rem_euclid(3600) + 5) as f64);
    d.wait_until("rita's hourly digest", || {
        !digests_to(&smtp, "rita@example.com").is_empty()
    });

    // Moved aside: the next save is taken, and health is whole again.
    std::fs::rename(&at, at.with_extension("json.damaged")).unwrap();
    assert!(set(&web, &rita, "rita", "15").contains("every 15 minute(s)"));
    assert_eq!(file(&env)["rita"], 15);
    assert_eq!(d.health()["status"], "ok", "{}", d.health());
    d.stop();
}

/// PUT `{"every_min": every}` to `/api/v1/digest-cadences/{name}` with `token`.
pub(crate) fn put(d: &Daemon, name: &str, token: &str, body: &str) -> (u16, Value) {
    let url = format!("{}/api/v1/digest-cadences/{name}", d.url);
    let answer = ureq::put(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(body);
    match answer {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            (status, r.into_json().unwrap_or(Value::Null))
        }
        Err(e) => panic!("PUT {url}: {e}"),
    }
}

/// The API reads and sets the same cadence the page does: one's own, anyone's for an admin,
/// the same bounds and refusals; what it sets the page shows, and the file keeps.
#[test]
fn the_api_reads_and_sets_a_cadence_as_the_page_does() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port));
    let d = env.start();

    let (status, mine) = d.get_as("/api/v1/digest-cadences", Some("sam-token"));
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["name"], "sam");
    assert_eq!(mine[0]["every_min"], 60);
    assert_eq!(mine[0]["chosen"], false);

    let (status, set) = put(&d, "sam", "sam-token", r#"{"every_min": 30}"#);
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["every_min"], 30);
    assert_eq!(set["configured_min"], 60);
    assert_eq!(set["chosen"], true);
    assert_eq!(file(&env)["sam"], 30);
    let (status, one) = d.get_as("/api/v1/digest-cadences/sam", Some("sam-token"));
    assert_eq!((status, &one["every_min"]), (200, &Value::from(30)));
    let web = Web::new(&d);
    let sam = web.sign_in("sam", "pw-sam");
    assert_eq!(shown(&web, &sam, "sam").as_deref(), Some("30 (chosen)"));

    // Another's: refused to read and to set; out of range refused; nothing recorded.
    let (status, body) = d.get_as("/api/v1/digest-cadences/rita", Some("sam-token"));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("sam cannot see rita's"));
    let (status, body) = put(&d, "rita", "sam-token", r#"{"every_min": 5}"#);
    assert_eq!(status, 403, "{body}");
    for bad in [
        r#"{"every_min": 0}"#,
        r#"{"every_min": 10081}"#,
        r#"{"every": 5}"#,
    ] {
        let (status, body) = put(&d, "sam", "sam-token", bad);
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(file(&env), serde_json::json!({ "sam": 30 }));

    // An admin reads everyone's and sets anyone's; nobody of that name is a 404.
    let (status, all) = d.get_as("/api/v1/digest-cadences", Some("ada-token"));
    assert_eq!(status, 200, "{all}");
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let (status, set) = put(&d, "rita", "ada-token", r#"{"every_min": 1440}"#);
    assert_eq!(
        (status, &set["every_min"]),
        (200, &Value::from(1440)),
        "{set}"
    );
    assert_eq!(file(&env)["rita"], 1440);
    let (status, body) = put(&d, "nobody", "ada-token", r#"{"every_min": 5}"#);
    assert_eq!(status, 404, "{body}");
    assert!(d
        .metrics()
        .contains("baton_events_total{type=\"digest.cadence_changed\"} 2"));
    d.stop();
}

/// The form in a real browser: rita sets her cadence on `/reviewers`, sees it shown as
/// chosen, and axe-core finds nothing on the page. Screenshot:
/// `target/screenshots/reviewers-digests.png`.
#[test]
fn a_reviewer_sets_their_cadence_with_the_form_in_a_browser() {
    use crate::util::browser::Browser;
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path(), false);
    let mut env = TestEnv::with_config(&config(smtp.port));
    let d = env.start();
    let b = Browser::start();
    b.sign_in(&d.url, "rita", "pw-rita");
    b.goto(&format!("{}/reviewers", d.url));
    let row = "#digests tr[data-reviewer=rita]";
    b.wait_text(row);
    b.fill(&format!("{row} input[name=every_min]"), "15");
    b.click(&format!("{row} button[type=submit]"));
    b.wait_for_text(".flash[role=status]", "rita's digests now go out every 15");
    let shown = b.wait_text(&format!("{row} td.every"));
    assert_eq!(shown.trim(), "15 (chosen)");
    assert_eq!(file(&env)["rita"], 15);
    let found = crate::browser_a11y::axe(&b, &crate::browser_a11y::axe_source());
    assert!(found.is_empty(), "axe-core on /reviewers: {found:#?}");
    let png = b.screenshot("reviewers-digests");
    eprintln!("screenshot {}", png.display());
    d.stop();
}
