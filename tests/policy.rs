//! Policies as code: a route's `auto_approve_if` (CEL) decides, or in shadow mode says what it
//! would have decided beside a person's decision; a bad expression is refused at start with its
//! column; `baton policy replay` tries a candidate configuration on what people decided.
//!
//! Policies decide only on what is proven, and only on booleans (issue 49, item 10): a claimed
//! `from_agent` is not a sender, a non-boolean operand or an unknown fact is refused at load,
//! an error at run time decides nothing and is counted, and replay covers every decided
//! revision.

use crate::util::{
    agent, baton, bytes, handoff, user, write_atomic, Daemon, TestEnv, BIN, PATIENCE,
};
use serde_json::{json, Value};
use std::io::{Read, Write};

const RULE: &str = "claimed.trigger == 'completion' && claimed.confidence >= 0.97 && artifacts.all(a, a.size < 100000)";

fn config(mode: &str) -> String {
    [
        user("rita", "\"reviewer\""),
        format!(
            "[[routes]]\nname = \"docs\"\nauto_approve_if = \"{RULE}\"\nauto_approve_unproven = true\npolicy_mode = \"{mode}\"\n"
        ),
    ]
    .concat()
}

fn confident(id: &str, confidence: f64) -> Value {
    let mut h = handoff(id);
    h["trigger"] = json!("completion");
    h["confidence"] = json!(confidence);
    h
}

fn decision(env: &TestEnv, key: &str) -> Value {
    let path = env
        .store("alpha")
        .join("handoffs")
        .join(key)
        .join("decision.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn an_enforced_policy_approves_what_it_says_and_names_itself() {
    let mut env = TestEnv::with_config(&config("enforce"));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("sure", 0.98)));
    d.wait_until("auto-approved", || {
        d.handoffs("decided").iter().any(|h| h["key"] == "sure")
    });
    let sure = decision(&env, "sure");
    assert_eq!(sure["outcome"], "approved");
    assert_eq!(sure["by"], "policy:docs");
    assert!(
        sure["policy"].as_str().unwrap().starts_with("sha256:"),
        "{sure}"
    );
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("unsure", 0.9)));
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "unsure")
    });
    let (status, body) = d.post_as(
        "/api/v1/handoffs/unsure/decision",
        Some("rita-token"),
        r#"{"outcome":"rejected"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&env, "unsure")["policy"], "human");
}

#[test]
fn a_shadow_policy_decides_nothing_and_is_recorded_beside_the_person() {
    let mut env = TestEnv::with_config(&config("shadow"));
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&confident("s-1", 0.99)),
    );
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    let (status, body) = d.post_as(
        "/api/v1/handoffs/s-1/decision",
        Some("rita-token"),
        r#"{"outcome":"changes_requested","comment":"not yet"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let made = decision(&env, "s-1");
    assert_eq!(made["policy"], "human");
    assert_eq!(made["shadow"]["would_approve"], true, "{made}");
}

#[test]
fn a_bad_expression_is_refused_at_start_with_its_key_and_column() {
    let env = TestEnv::with_config(&[
        user("rita", "\"reviewer\""),
        "[[routes]]\nname = \"docs\"\nauto_approve_if = \"handoff.confidence >= 0.9 &&& true\"\n"
            .to_string(),
    ]
    .concat());
    let cfg = env.config_path();
    let out = baton(&["serve", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains("routes[0] (\"docs\").auto_approve_if: column"),
        "{said}"
    );
}

#[test]
fn replay_shows_what_a_candidate_policy_would_have_done_with_human_decisions() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    for (id, confidence, outcome) in [
        ("r-a", 0.99, "approved"),
        ("r-b", 0.98, "rejected"),
        ("r-c", 0.5, "approved"),
    ] {
        d.submit_and_decide(&ws, &confident(id, confidence), "rita-token", outcome);
    }
    d.stop();
    // The candidate: the same configuration with a policy on the route the handoffs took.
    let live = std::fs::read_to_string(env.config_path()).unwrap();
    let candidate = env.root().join("candidate.toml");
    std::fs::write(
        &candidate,
        format!("{live}\n[[routes]]\nname = \"docs\"\nauto_approve_if = \"{RULE}\"\nauto_approve_unproven = true\n"),
    )
    .unwrap();
    let out = baton(&["policy", "replay", candidate.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("route docs:"), "{text}");
    assert!(
        text.contains(
            "disagrees: r-b (alpha): the policy would approve; rita answered rejected (revision 1; sender unproven)"
        ),
        "{text}"
    );
    assert!(
        !text.contains("disagrees: r-a") && !text.contains("disagrees: r-c"),
        "{text}"
    );
}

/// What `baton serve` says when it refuses to start on `route` (a TOML `[[routes]]` body).
fn refused_at_start(extra: &str, route: &str) -> String {
    let env = TestEnv::with_config(&[extra, route].concat());
    let cfg = env.config_path();
    // A daemon that takes the expression runs: stopped, and the test fails, after PATIENCE.
    let mut serve = std::process::Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("BATON_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run baton");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = serve.kill();
            let _ = serve.wait();
            panic!("baton serve took the expression and started");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    let mut said = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    // The same configuration is refused by the other commands that load it.
    for args in [
        ["policy", "replay", cfg.to_str().unwrap()],
        ["doctor", "--config", cfg.to_str().unwrap()],
    ] {
        let other = baton(&args);
        assert!(!other.status.success(), "{other:?}");
        let all = [other.stdout.as_slice(), other.stderr.as_slice()].concat();
        assert!(
            String::from_utf8_lossy(&all).contains("(\"docs\").auto_approve_if: ")
                || String::from_utf8_lossy(&all).contains("(\"release\").auto_approve_if: "),
            "{other:?}"
        );
    }
    said
}

fn put(d: &Daemon, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(d.addr()).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    let status = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn a_claimed_from_agent_is_no_sender_only_an_upload_with_its_token_proves_one() {
    // The rule as the issue found it on main: refused, pointing to what to write instead.
    let said = refused_at_start(
        &user("rita", "\"reviewer\""),
        "[[routes]]\nname = \"release\"\nauto_approve_if = \"handoff.from_agent == 'release-bot' && handoff.confidence >= 0.9\"\n",
    );
    assert!(
        said.contains("routes[0] (\"release\").auto_approve_if: column 1: `handoff.from_agent` is only what the file claims"),
        "{said}"
    );
    assert!(
        said.contains("`sender`") && said.contains("`claimed.from_agent`"),
        "{said}"
    );

    // The rule on the proven sender: a file on the share that claims release-bot is left to
    // people; the same agent's upload with its token is approved.
    let mut env = TestEnv::with_config(
        &[
            user("rita", "\"reviewer\""),
            agent("release-bot", "alpha"),
            agent("helper", "alpha"),
            "[[routes]]\nname = \"release\"\nauto_approve_if = \"sender == 'release-bot' && claimed.confidence >= 0.9\"\n".into(),
        ]
        .concat(),
    );
    let d = env.start();
    let ws = env.ws("alpha");
    let mut forged = handoff("forged");
    forged["from_agent"] = json!("release-bot");
    forged["confidence"] = json!(0.99);
    write_atomic(&ws.join("handoff.json"), &bytes(&forged));
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "forged")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        d.handoffs("pending").iter().any(|h| h["key"] == "forged"),
        "a claim is not a sender: left to people"
    );
    // Another agent's token cannot upload in release-bot's name (the API's own check).
    let at = "/api/v1/workspaces/alpha/handoff";
    let mut sent = handoff("sent");
    sent["from_agent"] = json!("release-bot");
    sent["confidence"] = json!(0.99);
    let (status, body) = put(&d, at, "helper-token", &bytes(&sent));
    assert_eq!(status, 403, "{body}");
    let (status, body) = put(&d, at, "release-bot-token", &bytes(&sent));
    assert!(status == 200 || status == 201, "{body}");
    d.wait_until("the proven sender's handoff auto-approved", || {
        d.handoffs("decided").iter().any(|h| h["key"] == "sent")
    });
    let made = decision(&env, "sent");
    assert_eq!(made["by"], "policy:release", "{made}");
    // The forged one was closed by the new handoff in its place, not by the policy.
    let forged = decision(&env, "forged");
    assert_ne!(forged["by"], "policy:release", "{forged}");
}

#[test]
fn an_operand_that_is_not_true_or_false_is_refused_at_load() {
    // On main this approved a 0.2-confidence handoff: a non-empty title counted as true.
    let said = refused_at_start(
        &user("rita", "\"reviewer\""),
        "[[routes]]\nname = \"docs\"\nauto_approve_if = \"handoff.title && handoff.confidence > 0.1\"\n",
    );
    assert!(
        said.contains("routes[0] (\"docs\").auto_approve_if: column 1: an operand of `&&` must be true or false, and this is a string"),
        "{said}"
    );
    let said = refused_at_start(
        "",
        "[[routes]]\nname = \"docs\"\nauto_approve_if = \"claimed.confidence\"\n",
    );
    assert!(
        said.contains("routes[0] (\"docs\").auto_approve_if: column 1: the expression gives a double, not true or false"),
        "{said}"
    );
}

#[test]
fn an_unknown_fact_is_refused_at_load_with_its_column() {
    // On main a typo only warned, at each handoff, and approved nothing in silence.
    let said = refused_at_start(
        "",
        "[[routes]]\nname = \"docs\"\nauto_approve_if = \"handoff.trigger == 'completion' && handoff.confidenc >= 0.9\"\n",
    );
    assert!(
        said.contains(
            "routes[0] (\"docs\").auto_approve_if: column 36: unknown fact `handoff.confidenc`"
        ),
        "{said}"
    );
}

#[test]
fn an_error_at_run_time_decides_nothing_and_is_counted() {
    // Well typed, but the title is not a number: it fails on this handoff.
    let mut env = TestEnv::with_config(
        &[
            user("rita", "\"reviewer\""),
            "[[routes]]\nname = \"docs\"\nauto_approve_if = \"int(handoff.title) > 0\"\nauto_approve_unproven = true\n".into(),
        ]
        .concat(),
    );
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&confident("e-1", 0.99)),
    );
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "e-1")
    });
    d.wait_until("counted", || {
        d.metrics().contains("baton_policy_errors_total 1")
    });
}

#[test]
fn replay_covers_a_revision_a_person_sent_back_and_fails_on_a_policy_that_errs() {
    let mut env = TestEnv::with_config(&user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    // Revision 1, which the candidate would approve, is sent back; revision 2 is approved.
    d.submit_and_decide(
        &ws,
        &confident("back", 0.99),
        "rita-token",
        "changes_requested",
    );
    write_atomic(&ws.join("handoff.json"), &bytes(&confident("back", 0.5)));
    d.wait_until("revision 2", || {
        d.get("/api/v1/handoffs/back").1["revision"] == 2
    });
    let (status, body) = d.post_as(
        "/api/v1/handoffs/back/decision",
        Some("rita-token"),
        r#"{"outcome":"approved","revision":2}"#,
    );
    assert_eq!(status, 200, "{body}");
    d.stop();
    let live = std::fs::read_to_string(env.config_path()).unwrap();
    let candidate = |rule: &str| {
        let path = env.root().join("candidate.toml");
        std::fs::write(
            &path,
            format!("{live}\n[[routes]]\nname = \"docs\"\nauto_approve_if = \"{rule}\"\nauto_approve_unproven = true\n"),
        )
        .unwrap();
        baton(&["policy", "replay", path.to_str().unwrap()])
    };
    // In the older names, which main read too: what differs is the revisions replayed.
    let out = candidate(
        "handoff.trigger == 'completion' && handoff.confidence >= 0.97 && handoff.artifacts.all(a, a.size < 100000)",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("disagrees: back (alpha): the policy would approve; rita answered changes_requested (revision 1; sender unproven)"),
        "{text}"
    );
    assert!(
        text.contains("policy facts: proven by the daemon: sender"),
        "{text}"
    );
    // Both revisions are counted: one it would approve (sent back), one it would leave to
    // people (approved).
    let row = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no row {label}: {text}"))
            .split_whitespace()
            .filter_map(|w| w.parse::<u32>().ok())
            .collect::<Vec<_>>()
    };
    assert_eq!(row("would auto-approve"), [0, 0, 1, 0], "{text}");
    assert_eq!(row("would leave to people"), [1, 0, 0, 0], "{text}");

    // A candidate that fails on them is listed and fails the replay.
    let out = candidate("int(handoff.title) > 0");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{out:?}");
    assert!(text.contains("error: back (alpha) revision 1:"), "{text}");
    assert!(text.contains("error: back (alpha) revision 2:"), "{text}");
}

#[test]
fn a_policy_that_can_hold_without_a_proven_sender_is_refused_unless_its_route_opts_in() {
    let reviewer = user("rita", "\"reviewer\"");
    let route = |rule: &str, extra: &str| {
        format!("[[routes]]\nname = \"docs\"\nauto_approve_if = \"{rule}\"\n{extra}")
    };
    for rule in [
        "claimed.confidence >= 0.97",
        // A disjunction lets an unproven sender through its other side.
        "sender == 'bot' || claimed.confidence >= 0.99",
    ] {
        let said = refused_at_start(&reviewer, &route(rule, ""));
        let head = format!(
            "routes[0] (\"docs\").auto_approve_if: \"{rule}\" can hold for a revision no agent \
             is proven to have sent"
        );
        assert!(said.contains(&head), "{said}");
        assert!(
            said.contains("set auto_approve_unproven = true on route \"docs\""),
            "{said}"
        );
    }

    // Opted in: it starts, says so in the log, decides, and replay says so above its tables.
    let rule = "claimed.confidence >= 0.97";
    let opted = route(rule, "auto_approve_unproven = true\n");
    let env = approves_a_claim_and_says_so(&[reviewer.clone(), opted].concat(), "docs");
    let cfg = env.config_path();
    let out = baton(&["policy", "replay", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("warning: route docs has auto_approve_unproven = true"),
        "{text}"
    );

    // A policy that requires the sender, and a shadow one, need no opt-in.
    for ok in [
        route("sender != '' && claimed.confidence >= 0.97", ""),
        route(rule, "policy_mode = \"shadow\"\n"),
    ] {
        let env = TestEnv::with_config(&[reviewer.clone(), ok].concat());
        let cfg = env.config_path();
        let out = baton(&["doctor", "--config", cfg.to_str().unwrap()]);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !String::from_utf8_lossy(&all).contains("auto_approve_if"),
            "{}",
            String::from_utf8_lossy(&all)
        );
    }
}

#[test]
fn auto_approve_min_confidence_approves_only_a_proven_sender_unless_its_route_opts_in() {
    // `confidence` is a claim: a file on the share that says 0.99 is left to people, whatever
    // from_agent it names; the same handoff uploaded with an agent's token is approved.
    let route = |extra: &str| {
        format!("[[routes]]\nname = \"release\"\nauto_approve_min_confidence = 0.9\n{extra}")
    };
    let mut env = TestEnv::with_config(
        &[
            user("rita", "\"reviewer\""),
            agent("release-bot", "alpha"),
            route(""),
        ]
        .concat(),
    );
    let d = env.start();
    let ws = env.ws("alpha");
    let mut forged = confident("forged", 0.99);
    forged["from_agent"] = json!("release-bot");
    write_atomic(&ws.join("handoff.json"), &bytes(&forged));
    d.wait_until("pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "forged")
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        d.handoffs("pending").iter().any(|h| h["key"] == "forged"),
        "a claimed confidence on a file no agent is proven to have sent is left to people"
    );
    let mut sent = confident("sent", 0.99);
    sent["from_agent"] = json!("release-bot");
    let (status, body) = put(
        &d,
        "/api/v1/workspaces/alpha/handoff",
        "release-bot-token",
        &bytes(&sent),
    );
    assert!(status == 200 || status == 201, "{body}");
    d.wait_until("the proven sender's handoff auto-approved", || {
        d.handoffs("decided").iter().any(|h| h["key"] == "sent")
    });
    assert_eq!(decision(&env, "sent")["by"], "policy:release");
    d.stop();

    // Opted in: the share's claim is taken, and each load says so.
    approves_a_claim_and_says_so(
        &[
            user("rita", "\"reviewer\""),
            route("auto_approve_unproven = true\n"),
        ]
        .concat(),
        "release",
    );
}

/// Under `config`, whose `route` opts in with `auto_approve_unproven`: a file on the share
/// claiming confidence 0.99 is approved by the route, and the daemon's log warns of the route.
fn approves_a_claim_and_says_so(config: &str, route: &str) -> TestEnv {
    let mut env = TestEnv::with_config(config);
    let d = env.start();
    write_atomic(
        &env.ws("alpha").join("handoff.json"),
        &bytes(&confident("claimed", 0.99)),
    );
    d.wait_until("approved by the policy", || {
        d.get("/api/v1/handoffs/claimed").1["decision"]["by"] == format!("policy:{route}")
    });
    d.stop();
    let logs = crate::util::daemon_logs(&env);
    assert!(
        logs.contains("auto_approve_unproven") && logs.contains(&format!("route={route}")),
        "{logs}"
    );
    env
}
