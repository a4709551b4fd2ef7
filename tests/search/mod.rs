//! Search end to end: a real daemon on a temp folder, files written the way agents write them,
//! queried through the API, the page and the `baton search` command.

mod cli;
mod page;
mod rebuild;
mod unreadable;

use crate::util::{self, Daemon, TestEnv};
use serde_json::Value;
use std::path::Path;

/// Copies the repository's example workspace into the test's root as `ws/example`.
pub fn example(env: &TestEnv) -> std::path::PathBuf {
    let to = env.ws("example");
    copy_dir(Path::new("workspace-example"), &to);
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `GET /api/v1/search?q=...` as `token` (the admin's if `None`).
pub fn search_as(daemon: &Daemon, q: &str, token: Option<&str>) -> Value {
    let (status, body) = daemon.get_as(
        &format!("/api/v1/search?q={}&limit=100", encode(q)),
        Some(token.unwrap_or(&daemon.token)),
    );
    assert_eq!(status, 200, "{body}");
    body
}

pub fn search(daemon: &Daemon, q: &str) -> Value {
    search_as(daemon, q, None)
}

/// The hits' (kind, path) pairs, sorted.
pub fn paths(answer: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["kind"].as_str().unwrap().into(),
                h["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    out.sort();
    out
}

pub fn pair(kind: &str, path: &str) -> (String, String) {
    (kind.to_string(), path.to_string())
}

/// Waits until `q` has `total` hits (indexing is asynchronous by design); on timeout the panic
/// shows the last answer, so a missing document can be named.
pub fn wait_for(daemon: &Daemon, q: &str, total: u64) -> Value {
    let deadline = std::time::Instant::now() + util::PATIENCE;
    loop {
        let last = search(daemon, q);
        if last["total"] == total {
            return last;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {total} hits for {q:?}; last answer: {last:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

const KEY: &str = "fix-retry-backoff-2291";
const REV1: &str = ".baton/handoffs/fix-retry-backoff-2291/rev-1.json";

#[test]
fn the_example_workspace_is_indexed_with_exact_hits_snippets_and_facets() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    let answer = wait_for(&daemon, "saturating", 4);
    assert_eq!(
        paths(&answer),
        vec![
            pair("artifact", "inbox/fix-retry-backoff.diff"),
            pair("artifact", "inbox/notes.md"),
            pair("checkpoint", "checkpoints/002-patch.json"),
            pair("handoff", REV1),
        ]
    );
    assert_eq!(
        answer["facets"]["workspace"],
        serde_json::json!({"example": 4})
    );
    assert_eq!(
        answer["facets"]["kind"],
        serde_json::json!({"artifact": 2, "checkpoint": 1, "handoff": 1})
    );
    let hits = answer["hits"].as_array().unwrap();
    let diff = hits
        .iter()
        .find(|h| h["path"] == "inbox/fix-retry-backoff.diff")
        .unwrap();
    // Artifacts a handoff names carry its key and agent.
    assert_eq!(diff["key"], KEY);
    assert_eq!(diff["agent"], "coder-7");
    assert!(
        diff["snippet"]
            .as_str()
            .unwrap()
            .contains("let exp = self.base.<b>saturating</b>_mul(factor);"),
        "{diff}"
    );
    let cp = hits.iter().find(|h| h["kind"] == "checkpoint").unwrap();
    assert!(
        cp["snippet"]
            .as_str()
            .unwrap()
            .contains("Patched delay() with <b>saturating</b> arithmetic and jitter"),
        "{cp}"
    );
    assert!(cp["score"].as_f64().unwrap() > 0.0);

    // A phrase; quotes in the text come back escaped around the highlights.
    let phrase = search(&daemon, "\"decorrelated jitter\"");
    assert_eq!(
        paths(&phrase),
        vec![pair("artifact", "inbox/notes.md"), pair("handoff", REV1)]
    );
    let notes = &phrase["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["kind"] == "artifact")
        .unwrap()["snippet"];
    assert!(
        notes
            .as_str()
            .unwrap()
            .contains("mentions &quot;<b>decorrelated</b> <b>jitter</b>&quot;."),
        "{notes}"
    );

    // Prefixes, filters and their combinations.
    // saturate, saturates (in delay_saturates_at_attempt_32), saturating.
    assert_eq!(search(&daemon, "saturat*")["total"], 6);
    assert_eq!(
        paths(&search(&daemon, "saturating kind:checkpoint")),
        vec![pair("checkpoint", "checkpoints/002-patch.json")]
    );
    assert_eq!(search(&daemon, "saturating -kind:artifact")["total"], 2);
    assert_eq!(
        search(&daemon, "INC-2291 agent:coder-7 kind:checkpoint")["total"],
        3
    );
    assert_eq!(search(&daemon, "INC-2291 agent:somebody-else")["total"], 0);
    assert_eq!(search(&daemon, "saturating workspace:alpha")["total"], 0);
    assert_eq!(
        search(&daemon, "kind:handoff trigger:low_confidence")["total"],
        1
    );
    assert_eq!(search(&daemon, "saturating before:2000-01-01")["total"], 0);
    assert_eq!(search(&daemon, "saturating after:2000-01-01")["total"], 4);

    // A search box never errors: stray quotes, colons and brackets are read as text.
    for q in [
        "\"unclosed saturating",
        "saturating :",
        "saturating AND (",
        "foo:bar saturating",
        "[",
        "after:soon",
    ] {
        let (status, body) = daemon.get(&format!("/api/v1/search?q={}", encode(q)));
        assert_eq!(status, 200, "{q}: {body}");
    }
    assert_eq!(search(&daemon, "\"unclosed saturating")["total"], 0);
    assert_eq!(search(&daemon, "saturating :")["total"], 4);
    assert_eq!(
        search(&daemon, "after:soon")["notes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Paging and the API's own filters.
    let (_, page) = daemon.get("/api/v1/search?q=saturating&limit=3&offset=2&kind=artifact");
    assert_eq!(page["total"], 2);
    assert!(page["hits"].as_array().unwrap().is_empty());
    let (_, first) = daemon.get("/api/v1/search?q=saturating&limit=1");
    assert_eq!(first["total"], 4);
    assert_eq!(first["hits"].as_array().unwrap().len(), 1);
    let (status, body) = daemon.get("/api/v1/search?q=x&kind=picture");
    assert_eq!(status, 422, "{body}");
    let (status, _) = daemon.get("/api/v1/search?q=x&limit=many");
    assert_eq!(status, 422);
    let words: Vec<String> = (0..70).map(|i| format!("w{i}")).collect();
    let (status, body) = daemon.get(&format!("/api/v1/search?q={}", encode(&words.join(" OR "))));
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most 64"),
        "{body}"
    );
}

#[test]
fn every_revision_and_decision_is_searchable() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let daemon = env.start();
    let mut h = util::handoff("rev-test");
    h["summary"] = "first attempt with quicksort".into();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    wait_for(&daemon, "quicksort", 1);
    let (status, _) = daemon.decide(
        "rev-test",
        "changes_requested",
        "use mergesort, it is stable",
    );
    assert_eq!(status, 200);
    h["summary"] = "second attempt with mergesort".into();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    let answer = wait_for(&daemon, "mergesort", 2);
    let base = ".baton/handoffs/rev-test";
    assert_eq!(
        paths(&answer),
        vec![
            pair("decision", &format!("{base}/decision-rev-1.json")),
            pair("handoff", &format!("{base}/rev-2.json")),
        ]
    );
    let hits = answer["hits"].as_array().unwrap();
    let decision = hits.iter().find(|h| h["kind"] == "decision").unwrap();
    assert_eq!(decision["outcome"], "changes_requested");
    assert_eq!(decision["key"], "rev-test");
    assert_eq!(decision["agent"], "test-agent");
    assert_eq!(
        search(&daemon, "quicksort")["total"],
        1,
        "revision 1 is still found"
    );
    daemon.decide("rev-test", "rejected", "neither sort, use the library");
    let rejected = wait_for(
        &daemon,
        "kind:decision outcome:rejected agent:test-agent",
        1,
    );
    assert_eq!(
        paths(&rejected),
        vec![pair("decision", &format!("{base}/decision.json"))]
    );
}

/// The snippet of a decision or checkpoint hit is what a person wrote, not the record's
/// names, times and digests, whether the match is in that text or elsewhere in the record.
#[test]
fn a_decision_or_checkpoint_hit_shows_its_text() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let daemon = env.start();
    util::write_atomic(
        &ws.join("handoff.json"),
        &util::bytes(&util::handoff("snip")),
    );
    wait_for(&daemon, "key:snip kind:handoff", 1);
    let (status, _) = daemon.decide("snip", "rejected", "the backoff never caps its delay");
    assert_eq!(status, 200);
    let checkpoint = serde_json::json!({
        "checkpoint_version": "1.0", "task_id": "task-snip", "step": 3,
        "agent": "builder-9", "at": "2026-11-20T09:40:00Z",
        "summary": "Capped the delay at thirty seconds",
        "completed": ["Wrote the cap"], "remaining": ["Load test"]
    });
    util::write_atomic(&ws.join("checkpoints/003.json"), &util::bytes(&checkpoint));
    let by_comment = wait_for(&daemon, "caps kind:decision", 1);
    assert_eq!(
        by_comment["hits"][0]["snippet"],
        "the backoff never <b>caps</b> its delay"
    );
    // Matched by the record's other strings (its reviewer, its task), shown by its text.
    let by_reviewer = search(&daemon, "admin kind:decision");
    assert_eq!(by_reviewer["total"], 1, "{by_reviewer}");
    assert_eq!(
        by_reviewer["hits"][0]["snippet"],
        "the backoff never caps its delay"
    );
    let cp = wait_for(&daemon, "builder kind:checkpoint", 1);
    let snippet = cp["hits"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.starts_with("Capped the delay at thirty seconds"),
        "{snippet}"
    );
    for noise in ["2026", "builder", "task-snip", "1.0"] {
        assert!(!snippet.contains(noise), "{noise} in {snippet}");
    }
    assert_eq!(
        cp["hits"][0]["title"],
        "task-snip step 3 Capped the delay at thirty seconds"
    );
}

/// Past 1,000 matches, the count stops: the answer says the total is a lower bound and
/// estimates it, and the page says "more than".
#[test]
fn counts_past_the_bound_are_a_lower_bound_with_an_estimate() {
    let mut env = TestEnv::new();
    let inbox = env.ws("alpha").join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let n = 1_300;
    for i in 0..n {
        std::fs::write(inbox.join(format!("f{i:05}.txt")), b"plentiful words").unwrap();
    }
    let daemon = env.start();
    daemon.wait_until("every file indexed", || {
        daemon.health()["search"]["documents"].as_u64() >= Some(n)
    });
    let answer = search(&daemon, "plentiful");
    assert_eq!(answer["total"], 1_000, "{}", answer["total"]);
    assert_eq!(answer["total_is_lower_bound"], true);
    let estimate = answer["total_estimate"].as_u64().unwrap();
    assert!((n - 300..=n + 300).contains(&estimate), "{estimate}");
    assert_eq!(answer["facets"]["workspace"]["alpha"], 1_000);
    assert_eq!(answer["hits"].as_array().unwrap().len(), 100);
    let (code, out, err) = cli::run(&env, &["search", "plentiful"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "more than 1000 matches (about {estimate}), 20 shown"
        )),
        "{out}"
    );
    let few = search(&daemon, "f00001.txt");
    assert_eq!(few["total"], 1);
    assert_eq!(few["total_is_lower_bound"], false);
    assert!(few.get("total_estimate").is_none(), "{few}");
}

#[test]
fn changed_renamed_and_deleted_files_are_reflected() {
    let mut env = TestEnv::new();
    let inbox = env.ws("alpha").join("inbox");
    let daemon = env.start();
    std::fs::create_dir_all(inbox.join("deep/er")).unwrap();
    util::write_atomic(
        &inbox.join("deep/er/report.txt"),
        b"the flux capacitor is misaligned",
    );
    wait_for(&daemon, "capacitor", 1);
    // Written in place, in pieces: the settled content wins.
    util::write_in_place(
        &inbox.join("deep/er/report.txt"),
        b"the warp coil is misaligned",
        3,
        std::time::Duration::from_millis(20),
    );
    wait_for(&daemon, "capacitor", 0);
    let changed = wait_for(&daemon, "warp", 1);
    assert_eq!(
        paths(&changed),
        vec![pair("artifact", "inbox/deep/er/report.txt")]
    );
    std::fs::rename(inbox.join("deep/er/report.txt"), inbox.join("renamed.txt")).unwrap();
    wait_for(&daemon, "path:inbox/renamed.txt", 1);
    wait_for(&daemon, "path:inbox/deep/er/report.txt", 0);
    let renamed = search(&daemon, "warp misaligned");
    assert_eq!(paths(&renamed), vec![pair("artifact", "inbox/renamed.txt")]);
    // A folder moved away takes its files' documents with it.
    util::write_atomic(&inbox.join("deep/er/other.md"), b"tachyon emitter");
    wait_for(&daemon, "tachyon", 1);
    std::fs::rename(inbox.join("deep"), env.root().join("outside-deep")).unwrap();
    wait_for(&daemon, "tachyon", 0);
    std::fs::remove_file(inbox.join("renamed.txt")).unwrap();
    wait_for(&daemon, "warp", 0);
    // Binary files are skipped; approved/ is searched like inbox/.
    std::fs::write(inbox.join("blob.bin"), b"tachyon\0\x01\x02 binary").unwrap();
    std::fs::create_dir_all(env.ws("alpha").join("approved")).unwrap();
    util::write_atomic(
        &env.ws("alpha").join("approved/final.md"),
        b"tachyon approved",
    );
    let only = wait_for(&daemon, "tachyon", 1);
    assert_eq!(paths(&only), vec![pair("artifact", "approved/final.md")]);
}

/// `baton_search_catalogued_total`: files and records the indexer has stat'ed so far.
fn catalogued(daemon: &Daemon) -> u64 {
    counted(daemon, "baton_search_catalogued_total")
}

/// A counter or a histogram's count.
fn counted(daemon: &Daemon, name: &str) -> u64 {
    let value = crate::startup::metric(daemon, name);
    value.unwrap_or_else(|| panic!("no {name} in the metrics")) as u64
}

#[test]
fn every_search_of_the_api_waits_its_turn_and_is_timed_once() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    for q in ["saturating", "jitter", "nothing-matches-this"] {
        search(&daemon, q);
    }
    let waited = counted(&daemon, "baton_search_wait_seconds_count");
    let timed = counted(&daemon, "baton_search_duration_seconds_count");
    assert!(waited >= 4, "{waited} waits counted");
    assert_eq!(
        waited, timed,
        "a search of the API ran without its wait measured"
    );
}

#[test]
fn a_changed_artifact_is_catalogued_alone_and_keeps_the_handoff_naming_it() {
    let mut env = TestEnv::new();
    let ws = example(&env);
    // Many files beside the ones changed: a reconcile of the whole workspace stats them all.
    let bulk = ws.join("inbox/bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..200 {
        std::fs::write(bulk.join(format!("f{i:03}.txt")), format!("ballast {i}")).unwrap();
    }
    let daemon = env.start();
    wait_for(&daemon, "ballast", 200);
    daemon.wait_until("the first full pass done", || {
        daemon.health()["search"]["indexing"] == false
    });
    let before = catalogued(&daemon);
    assert!(before >= 200, "{before}");

    // A new file, a changed file a handoff names, a removed file, a renamed file.
    util::write_atomic(
        &ws.join("inbox/fix-retry-backoff.diff"),
        b"quokka replaced the diff",
    );
    std::fs::remove_file(bulk.join("f000.txt")).unwrap();
    std::fs::rename(bulk.join("f001.txt"), ws.join("inbox/moved.txt")).unwrap();
    let diff = wait_for(&daemon, "quokka", 1);
    wait_for(&daemon, "ballast", 199);
    wait_for(&daemon, "path:inbox/moved.txt", 1);
    wait_for(&daemon, "path:inbox/bulk/f001.txt", 0);
    // The changed artifact is still shown under the handoff naming it.
    assert_eq!(diff["hits"][0]["key"], KEY, "{diff}");
    assert_eq!(diff["hits"][0]["agent"], "coder-7", "{diff}");
    // Twenty more files, one after another, as an agent writes.
    for i in 1..=20 {
        util::write_atomic(&bulk.join(format!("new-{i}.txt")), b"zanzibar arrives");
        wait_for(&daemon, "zanzibar", i);
    }
    // Each of these 24 changes catalogued whole would cost 24 x 200 stats; one whole
    // reconcile (an event of the start-up scan arriving late, say) is allowed for.
    let spent = catalogued(&daemon) - before;
    assert!(
        spent < 1_000,
        "{spent} files catalogued for 24 changed paths: workspaces were catalogued whole"
    );
}

/// The hit for the artifact `path`, once it is shown under `key` (`None`: under no handoff).
fn artifact_named(daemon: &Daemon, path: &str, key: Option<&str>) -> Value {
    let mut hit = Value::Null;
    daemon.wait_until(&format!("{path} shown under {key:?}"), || {
        hit = search(daemon, &format!("path:{path}"))["hits"][0].clone();
        hit["key"].as_str() == key && !hit.is_null()
    });
    hit
}

#[test]
fn a_handoffs_change_is_catalogued_alone_and_names_its_artifacts() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let bulk = ws.join("inbox/bulk");
    std::fs::create_dir_all(&bulk).unwrap();
    for i in 0..400 {
        std::fs::write(bulk.join(format!("f{i:03}.txt")), format!("ballast {i}")).unwrap();
    }
    std::fs::write(ws.join("inbox/a.txt"), "wombat notes").unwrap();
    let daemon = env.start();
    wait_for(&daemon, "ballast", 400);
    daemon.wait_until("the first full pass done", || {
        daemon.health()["search"]["indexing"] == false
    });
    let before = catalogued(&daemon);
    let mut h = util::handoff("named");
    h["artifacts"] = serde_json::json!([{ "path": "inbox/a.txt" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    let hit = artifact_named(&daemon, "inbox/a.txt", Some("named"));
    assert_eq!(hit["agent"], "test-agent", "{hit}");
    let (status, _) = daemon.decide("named", "changes_requested", "add the platypus");
    assert_eq!(status, 200);
    wait_for(&daemon, "platypus", 1);
    std::fs::write(ws.join("inbox/b.txt"), "numbat notes").unwrap();
    h["artifacts"] = serde_json::json!([{ "path": "inbox/a.txt" }, { "path": "inbox/b.txt" }]);
    h["summary"] = "echidna".into();
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    wait_for(&daemon, "echidna", 1);
    artifact_named(&daemon, "inbox/b.txt", Some("named"));
    // A whole reconcile of this workspace stats its 400 files.
    let spent = catalogued(&daemon) - before;
    assert!(
        spent < 400,
        "{spent} files catalogued for three changes of one handoff: its workspace was catalogued whole"
    );

    // A revision that names a file no more: the file is shown under no handoff.
    daemon.decide("named", "changes_requested", "drop a.txt");
    h["artifacts"] = serde_json::json!([{ "path": "inbox/b.txt" }]);
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&h));
    artifact_named(&daemon, "inbox/a.txt", None);
    artifact_named(&daemon, "inbox/b.txt", Some("named"));
}

#[test]
fn an_xss_payload_comes_back_escaped_in_the_snippet_and_on_the_page() {
    let mut env = TestEnv::with_config(&crate::pages::reviewers(&[("rita", "pw-rita")]));
    let inbox = env.ws("alpha").join("inbox");
    let daemon = env.start();
    let payload = "zebra <script>alert('x')</script> <img src=x onerror=alert(1)> & \"quoted\"";
    util::write_atomic(&inbox.join("evil<b>.html"), payload.as_bytes());
    let answer = wait_for(&daemon, "zebra", 1);
    let snippet = answer["hits"][0]["snippet"].as_str().unwrap();
    assert!(
        snippet.starts_with("<b>zebra</b> &lt;script&gt;alert("),
        "{snippet}"
    );
    assert!(
        snippet.contains("&lt;img src=x onerror=alert(1)&gt; &amp; "),
        "{snippet}"
    );
    let markup = snippet.replace("<b>", "").replace("</b>", "");
    assert!(
        !markup.contains('<') && !markup.contains('>'),
        "only <b> is markup: {snippet}"
    );
    let web = crate::pages::Web::new(&daemon);
    let session = web.sign_in("rita", "pw-rita");
    let page = web.get("/search?q=zebra", Some(&session));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(
        page.body.contains("evil&lt;b&gt;.html") || page.body.contains("evil&#60;b&#62;.html"),
        "{}",
        page.body
    );
    assert!(page.body.contains("1 match"), "{}", page.body);
    // Reflected input is escaped too.
    let reflected = web.get(
        &format!("/search?q={}", encode("\"><script>alert(2)</script>")),
        Some(&session),
    );
    assert_eq!(reflected.status, 200);
    assert!(
        !reflected.body.contains("<script>alert(2)"),
        "{}",
        reflected.body
    );
    // Without a session the page sends to sign-in.
    assert!(web.get("/search?q=zebra", None).to_login());
}

#[test]
fn an_agent_token_sees_only_its_own_workspaces() {
    let mut env =
        TestEnv::with_config(&(util::agent("bot", "alpha") + &util::user("rita", "\"reviewer\"")));
    env.init("beta");
    let daemon = env.start();
    util::write_atomic(&env.ws("alpha").join("inbox/a.txt"), b"shared secret alpha");
    util::write_atomic(&env.ws("beta").join("inbox/b.txt"), b"shared secret beta");
    wait_for(&daemon, "secret", 2);
    for q in [
        "secret",
        "secret workspace:beta",
        "beta",
        "workspace:beta",
        "kind:artifact",
    ] {
        let answer = search_as(&daemon, q, Some("bot-token"));
        for hit in answer["hits"].as_array().unwrap() {
            assert_eq!(hit["workspace"], "alpha", "{q}: {answer}");
        }
        assert!(
            answer["facets"]["workspace"].get("beta").is_none(),
            "{q}: {answer}"
        );
    }
    assert_eq!(search_as(&daemon, "secret", Some("bot-token"))["total"], 1);
    let (_, scoped) = daemon.get_as("/api/v1/search?q=secret&workspace=beta", Some("bot-token"));
    assert_eq!(scoped["total"], 0);
    assert_eq!(search_as(&daemon, "secret", Some("rita-token"))["total"], 2);
    let (status, _) = daemon.get_as("/api/v1/search?q=secret", None);
    assert_eq!(status, 401);
}

/// The nice value (field 19 of `stat`) of each of the daemon's threads, by name.
fn thread_nices(pid: u32) -> Vec<(String, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            Some((name.to_string(), rest.split(' ').nth(16)?.parse().ok()?))
        })
        .collect()
}

#[test]
fn the_search_threads_yield_the_cpu_to_intake_and_pages() {
    let mut env = TestEnv::new();
    example(&env);
    let daemon = env.start();
    wait_for(&daemon, "saturating", 4);
    let nices = thread_nices(daemon.pid());
    let nice = |prefix: &str| -> Vec<i64> {
        let of: Vec<i64> = nices
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(_, v)| *v)
            .collect();
        assert!(!of.is_empty(), "no thread named {prefix}*: {nices:?}");
        of
    };
    assert_eq!(nice("baton-indexer"), [10]);
    assert!(
        nice("baton-index-wri").iter().all(|n| *n == 10),
        "{nices:?}"
    );
    assert!(nice("baton-ingest").iter().all(|n| *n == 0), "{nices:?}");
    assert!(nice("tokio-rt").iter().all(|n| *n == 0), "{nices:?}");
}

/// A word held alike by 30 artifacts' names and contents ties them all at its best score: a
/// page of 5 is full at that score after 5 of a segment's, and the segment is read no further
/// (the 30 may be committed in several segments).
#[test]
fn a_page_full_at_the_best_score_stops_reading_and_says_so_in_metrics() {
    let mut env = TestEnv::new();
    let ws = env.init("tied");
    let daemon = env.start();
    for i in 0..30 {
        let file = ws.join("inbox").join(format!("omega-{i:02}.txt"));
        util::write_atomic(&file, b"omega");
    }
    wait_for(&daemon, "omega", 30);
    let (status, answer) = daemon.get_as("/api/v1/search?q=omega&limit=5", Some(&daemon.token));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["total"], 30);
    let hits = answer["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.iter().all(|s| *s == scores[0]), "{scores:?}");
    let metrics = daemon.metrics();
    let stops = metrics
        .lines()
        .find_map(|l| l.strip_prefix("baton_search_ceiling_stops "))
        .unwrap_or_else(|| panic!("no ceiling metric in {metrics}"));
    assert!(stops.trim().parse::<u64>().unwrap() >= 1, "{stops}");
}
