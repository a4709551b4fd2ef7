//! What an agent's wait trusts, and where its token goes: `baton wait` takes only a decision
//! signed by keys it can trust (`--key`, `BATON_KEY`, or `BATON_URL`'s, fetched with no token,
//! again for a rotated key), and the agent's token (and the keys) never go over plain http to
//! another host, from the command line, the MCP server or the Python client.

use crate::util::{
    self, agent_wait, bytes, decision, handoff, wait_with_url, write_atomic, Daemon, TestEnv,
};
use serde_json::json;
use std::io::BufRead;
use std::process::{Command, Output};
use std::time::Duration;

/// A decision.json as any writer of the shared folder can forge it: about the handoff in
/// place (its digest, from the API, as anyone who reads the handoff can compute it), approved
/// by a reviewer's name, unsigned.
fn forge_approval(d: &Daemon, ws: &std::path::Path, key: &str) {
    let sha = d.get(&format!("/api/v1/handoffs/{key}")).1["handoff_sha256"].clone();
    assert!(sha.is_string(), "the detail names the digest");
    let forged = json!({"decision_version": "1.0", "handoff_key": key,
        "task_id": format!("task-{key}"), "outcome": "approved", "by": "rita",
        "at": "2026-11-28T10:00:00Z", "handoff_sha256": sha, "policy": "human"});
    write_atomic(&ws.join("decision.json"), &bytes(&forged));
}

/// `baton wait` with `vars` as its only trust root (none from the test's environment).
fn wait_with(vars: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(util::BIN)
        .arg("wait")
        .args(args)
        .env_remove("BATON_URL")
        .env_remove("BATON_KEY")
        .env_remove("BATON_UNCHECKED")
        .envs(vars.iter().copied())
        .env("BATON_LOG", "warn")
        .output()
        .expect("run baton wait")
}

/// With no key to check decision.json with (no --key, BATON_KEY or BATON_URL), `baton wait`
/// used to take a forged approval and exit 0. It now exits 1 at once, saying what to set; only
/// an explicit --unchecked takes the file as written, and says so.
#[test]
fn wait_with_no_key_to_check_with_exits_1_and_says_what_to_set() {
    let mut env = TestEnv::new();
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("nk")));
    d.wait_until("nk pending", || d.handoffs("pending").len() == 1);
    forge_approval(&d, &ws, "nk");
    let dir = ws.to_str().unwrap();

    let out = wait_with(&[], &[dir, "--timeout", "20"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a forged approval taken: {out:?}"
    );
    assert!(out.stdout.is_empty(), "no decision printed: {out:?}");
    for fix in [
        "no key to check decision.json with",
        "BATON_KEY",
        "BATON_URL",
        "--unchecked",
    ] {
        assert!(said.contains(fix), "{fix:?} not said: {said}");
    }

    // Chosen: taken as written, with a warning that it was not checked.
    for (vars, flag) in [
        (&[][..], Some("--unchecked")),
        (&[("BATON_UNCHECKED", "1")][..], None),
    ] {
        let args: Vec<&str> = [dir, "--timeout", "5"].into_iter().chain(flag).collect();
        let out = wait_with(vars, &args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(said.contains("unchecked"), "{said}");
    }
    // A key named wins over --unchecked: the check asked for is never skipped.
    let both = wait_with(&[], &[dir, "--unchecked", "--key", "/nonexistent"]);
    assert_eq!(
        both.status.code(),
        Some(2),
        "--key and --unchecked conflict: {both:?}"
    );
}

/// With BATON_URL, `baton wait` checks decision.json with the daemon's published keys
/// (`GET /api/v1/keys`): a forged approval with the right digest is not taken (warned about,
/// the wait goes on), and the daemon's own decision is.
#[test]
fn wait_with_baton_url_refuses_a_forged_decision_and_takes_the_daemons() {
    let mut env = TestEnv::with_config(&util::user("rita", "\"reviewer\""));
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("fu")));
    d.wait_until("fu pending", || d.handoffs("pending").len() == 1);
    forge_approval(&d, &ws, "fu");
    let dir = ws.to_str().unwrap();
    let url = [("BATON_URL", d.url.as_str())];

    let out = wait_with(&url, &[dir, "--timeout", "2"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "a forged approval taken: {out:?}"
    );
    assert!(said.contains("decision.json is not taken"), "{said}");

    let out = std::thread::scope(|scope| {
        let waiter = scope.spawn(|| wait_with(&url, &[dir, "--timeout", "60"]));
        assert_eq!(d.decide("fu", "rejected", "no").0, 200);
        waiter.join().unwrap()
    });
    assert_eq!(
        out.status.code(),
        Some(3),
        "the daemon's rejection: {out:?}"
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&printed["outcome"], &printed["by"]),
        (&json!("rejected"), &json!("admin"))
    );

    // A daemon that cannot be reached gives no keys: refused, saying so.
    let out = wait_with(
        &[("BATON_URL", "http://127.0.0.1:9")],
        &[dir, "--timeout", "1"],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        said.contains("cannot fetch the daemon's public keys"),
        "{said}"
    );
}

/// A key rotation during a long `baton wait` (`baton keys --rotate`, then the daemon's
/// restart on the new key): the decision is signed by a key id the wait did not fetch when it
/// began. The wait fetches the daemon's keys again and takes it; it used to refuse it until
/// run again (here: a timeout).
#[test]
fn a_wait_takes_a_decision_signed_by_a_key_rotated_during_it() {
    let mut env = TestEnv::new();
    let d = env.start();
    // The next start listens where this one does, so the wait's BATON_URL stays right.
    let config = env.config_path();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("127.0.0.1:0", d.addr())).unwrap();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("rot")));
    d.wait_until("rot pending", || d.handoffs("pending").len() == 1);
    let (url, dir) = (d.url.clone(), ws.to_str().unwrap().to_string());
    let waiter = std::thread::spawn(move || wait_with_url(&url, &[&dir, "--timeout", "40"]));
    // The wait fetches the keys as it begins: let it, before the key changes.
    std::thread::sleep(Duration::from_secs(2));
    d.stop();
    let rotated = util::baton(&["keys", "--rotate", "--config", config.to_str().unwrap()]);
    assert!(rotated.status.success(), "{rotated:?}");
    let d = env.start();
    d.wait_until("rot pending again", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide("rot", "approved", "go").0, 200);
    let out = waiter.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the new key's approval is taken: {out:?}"
    );
    let newest = String::from_utf8_lossy(&rotated.stdout).into_owned();
    let signer = decision(&ws).unwrap()["attestation"]["signatures"][0]["keyid"].clone();
    assert!(
        newest.lines().count() == 2 && signer.as_str().is_some_and(|s| newest.contains(s)),
        "signed by a rotated key {signer} of {newest}"
    );
}

/// A stand-in for the daemon (`stand_in`): its address, how many requests it was sent, and
/// their heads.
pub(crate) struct KeyServer {
    pub(crate) url: String,
    pub(crate) asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) heard: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A stand-in for the daemon's `GET /api/v1/keys` on this host: answers `keys`.
fn key_server(keys: String) -> KeyServer {
    stand_in("127.0.0.1", keys)
}

/// A stand-in listening on `ip` (any port) that answers `answer` to every request, counts
/// them, and keeps their heads.
pub(crate) fn stand_in(ip: &str, answer: String) -> KeyServer {
    use std::io::Write;
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let heard = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (counted, kept) = (asked.clone(), heard.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while request.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                kept.lock().unwrap().push_str(&line);
                line.clear();
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    KeyServer { url, asked, heard }
}

/// A workspace alpha whose handoff `id` its daemon approved: the daemon (running) and its
/// signed decision.json.
fn approved_by_a_daemon(env: &mut TestEnv, id: &str) -> (Daemon, serde_json::Value) {
    let d = env.start();
    let ws = env.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff(id)));
    d.wait_until("pending", || d.handoffs("pending").len() == 1);
    assert_eq!(d.decide(id, "approved", "go").0, 200);
    d.wait_until("decided", || decision(&ws).is_some());
    let genuine = decision(&ws).unwrap();
    (d, genuine)
}

/// A decision.json signed by a key id the daemon never published (a daemon's genuine
/// decision with its signature's key id changed, then changed again and again) is refused,
/// and the wait asks the daemon for its keys again once for the first unknown id, not at
/// each of the twenty others written within the rate bound.
#[test]
fn a_decision_naming_unknown_keys_is_refused_and_the_keys_are_fetched_again_once() {
    let mut signer = TestEnv::new();
    let (d, genuine) = approved_by_a_daemon(&mut signer, "fk");
    let KeyServer { url, asked, .. } = key_server(d.get("/api/v1/keys").1.to_string());

    // Another workspace alpha with the same handoff, which no daemon serves: the forger's.
    let forged_in = TestEnv::new();
    let ws = forged_in.ws("alpha");
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("fk")));
    let forge = |n: usize| {
        let mut doc = genuine.clone();
        doc["attestation"]["signatures"][0]["keyid"] = json!(format!("ed25519:forged-{n}"));
        write_atomic(&ws.join("decision.json"), &bytes(&doc));
    };
    forge(0);
    let out = std::thread::scope(|scope| {
        let dir = ws.to_str().unwrap();
        let waiter = scope.spawn(|| wait_with_url(&url, &[dir, "--timeout", "6"]));
        for n in 1..=20 {
            std::thread::sleep(Duration::from_millis(300));
            forge(n);
        }
        waiter.join().unwrap()
    });
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "a forged decision taken: {out:?}"
    );
    assert!(said.contains("not among the trusted keys"), "{said}");
    assert_eq!(
        asked.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "once as the wait began, once for the first unknown key id: {said}"
    );
}

/// The daemon's keys are a public route: `baton wait` sends them no token, so an agent's
/// token never reaches whoever answers at `BATON_URL` (a port taken while the daemon is
/// down); and it refuses keys fetched over plain http from another host, which anyone on
/// the way could have answered.
#[test]
fn a_wait_sends_no_token_for_the_keys_and_refuses_plain_http_keys_from_afar() {
    let mut signer = TestEnv::new();
    let (d, _) = approved_by_a_daemon(&mut signer, "nt");
    let ws = signer.ws("alpha");
    let KeyServer { url, heard, .. } = key_server(d.get("/api/v1/keys").1.to_string());
    let wait = |url: &str| {
        Command::new(crate::util::BIN)
            .args(["wait", ws.to_str().unwrap(), "--timeout", "5"])
            .env("BATON_URL", url)
            .env("BATON_TOKEN", "agent-secret-token")
            .env_remove("BATON_KEY")
            .env_remove("BATON_UNCHECKED")
            .env("BATON_LOG", "warn")
            .output()
            .expect("run baton wait")
    };
    let out = wait(&url);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let heard = heard.lock().unwrap().clone();
    assert!(heard.contains("GET /api/v1/keys"), "{heard}");
    assert!(
        !heard.contains("agent-secret-token") && !heard.to_lowercase().contains("authorization"),
        "the agent's token was sent for the public keys: {heard}"
    );

    // Another host over plain http (TEST-NET-1: nothing answers there): refused before any
    // request, naming what to use instead.
    let started = std::time::Instant::now();
    let out = wait("http://192.0.2.1:9");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(
        said.contains("plain http") && said.contains("BATON_KEY"),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(4), "{said}");
}

/// An address of this machine that is not loopback (the one it would reach the network
/// from; a UDP socket's connect sends nothing), to stand in for another host: the CLI
/// judges a host by its address, and a stand-in there sees whatever would cross a network.
/// None on a machine with no network.
pub(crate) fn this_hosts_other_address() -> Option<String> {
    ["192.0.2.1:9", "10.255.255.254:9", "[2001:db8::1]:9"]
        .iter()
        .find_map(|far| {
            let any = if far.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let socket = std::net::UdpSocket::bind(any).ok()?;
            socket.connect(far).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
        })
}

/// The agent's token goes over plain http to another host never: `baton withdraw` and the
/// MCP server's `search`, given a `BATON_URL` of plain http to an address of this machine
/// that is not loopback, refuse before sending anything, saying what, where and what to do,
/// and the stand-in there never sees the token (it used to, for each of them). With
/// `BATON_ALLOW_PLAIN_HTTP=1` (a private network its user trusts) the request is sent; to
/// this host (loopback) it always is.
#[test]
fn the_agents_token_never_goes_over_plain_http_to_another_host() {
    let mut env = TestEnv::with_config(&util::agent("builder", "*"));
    let d = env.start();
    let ws = env.ws("alpha");
    let mut doc = handoff("pt");
    doc["from_agent"] = json!("builder");
    write_atomic(&ws.join("handoff.json"), &bytes(&doc));
    d.wait_until("pending", || d.handoffs("pending").len() == 1);

    let (afar, heard) = match this_hosts_other_address() {
        Some(ip) => {
            let s = stand_in(&ip, "{}".into());
            (s.url, Some(s.heard))
        }
        // Nothing to listen on: the refusal is still checked, at an address nothing answers.
        None => {
            eprintln!("no address of this machine but loopback: no stand-in listens afar");
            ("http://192.0.2.1:9".to_string(), None)
        }
    };
    let withdraw = |url: &str, allow: bool| {
        let mut command = Command::new(util::BIN);
        command
            .args(["withdraw", "pt", "--reason", "r"])
            .env("BATON_URL", url)
            .env("BATON_TOKEN", "builder-token")
            .env("BATON_LOG", "warn")
            .env_remove("BATON_ALLOW_PLAIN_HTTP");
        if allow {
            command.env("BATON_ALLOW_PLAIN_HTTP", "1");
        }
        command.output().expect("run baton withdraw")
    };
    let refused = |said: &str| {
        for what in [
            afar.as_str(),
            "BATON_URL",
            "plain http",
            "https://",
            "BATON_ALLOW_PLAIN_HTTP",
        ] {
            assert!(said.contains(what), "{what} not said: {said}");
        }
    };

    let started = std::time::Instant::now();
    let out = withdraw(&afar, false);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    refused(&String::from_utf8_lossy(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "refused before connecting"
    );

    let agent = [
        ("BATON_URL", afar.as_str()),
        ("BATON_TOKEN", "builder-token"),
    ];
    let found = crate::mcp::call_tool(&env, &agent, "search", json!({"query": "pt"}));
    assert_eq!(found["isError"], true, "{found}");
    refused(found["structuredContent"]["error"].as_str().unwrap_or(""));

    if let Some(recorded) = &heard {
        let heard = recorded.lock().unwrap().clone();
        assert!(heard.is_empty(), "sent to {afar} over plain http: {heard}");
        // Let through when chosen: the stand-in hears the token then (and so would have).
        withdraw(&afar, true);
        let heard = recorded.lock().unwrap().clone();
        assert!(heard.contains("Bearer builder-token"), "{heard}");
    }
    assert_eq!(d.handoffs("pending").len(), 1, "nothing withdrawn yet");

    // To this host, over plain http: withdrawn.
    let out = withdraw(&d.url, false);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    d.wait_until("withdrawn", || {
        decision(&ws).is_some_and(|d| d["outcome"] == "withdrawn")
    });
}

/// `baton wait` run as the daemon's user (the test's, as the daemon is) checks a signature
/// its own user could have made with the daemon's key: it says so on standard
/// error, naming the daemon's pid and what to do, and still answers (the quick start runs
/// both as one person). Unchecked it claims nothing and says nothing of it; run as another
/// user (the workspaces' group) it takes the same decision without the warning.
#[test]
fn a_wait_as_the_daemons_user_warns_that_the_signature_proves_nothing() {
    let mut signer = TestEnv::new();
    let (d, _) = approved_by_a_daemon(&mut signer, "du");
    let ws = signer.ws("alpha");
    let warning = "runs the daemon serving";

    let out = agent_wait(&d, &[ws.to_str().unwrap(), "--timeout", "5"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let pid = std::fs::read_to_string(ws.join(".baton/daemon.json")).unwrap();
    let pid = serde_json::from_str::<serde_json::Value>(&pid).unwrap()["pid"].to_string();
    for what in [warning, &format!("pid {pid}"), "data_dir", "agent_group"] {
        assert!(said.contains(what), "{what} not said: {said}");
    }

    let out = Command::new(util::BIN)
        .args([
            "wait",
            ws.to_str().unwrap(),
            "--unchecked",
            "--timeout",
            "5",
        ])
        .env_remove("BATON_URL")
        .env_remove("BATON_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(warning),
        "{out:?}"
    );

    let script = format!(
        "BATON_URL={} \"$BATON\" wait {} --timeout 5",
        d.url,
        ws.display()
    );
    let out = util::as_other_user(&signer, "users", &script);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(warning),
        "{out:?}"
    );
}

/// The start of the Python client's refusal checks: `refused(make)` prints the refusal, or
/// "sent"; `doc` is a handoff to submit.
const REFUSED: &str = r#"import sys
from baton_client import Baton, BatonError, fetch_keys
def refused(make):
    try:
        make()
        return "sent"
    except BatonError as e:
        return str(e)
doc = {"task_id": "t", "from_agent": "builder", "id": "py-1", "status": "needs_review",
       "summary": "s", "trigger": "low_confidence"}
"#;

/// The Python client (`clients/python`) keeps the same rule: `Baton(url=...)` with a plain
/// http address of another host refuses before any request, saying what to do, and so does
/// `fetch_keys`; the stand-in there never sees the token (every request used to carry it).
/// To this host the client is made as before.
#[test]
fn the_python_client_sends_no_token_over_plain_http_to_another_host() {
    let s = this_hosts_other_address().map(|ip| stand_in(&ip, "{}".into()));
    // With no address but loopback, the refusal is still checked where nothing answers.
    let afar = s
        .as_ref()
        .map_or("http://192.0.2.1:9".into(), |s| s.url.clone());
    let code = format!(
        "{REFUSED}{}",
        r#"print(refused(lambda: Baton(url=sys.argv[1], token="builder-token", workspace_name="alpha").submit(doc)))
print(refused(lambda: fetch_keys(sys.argv[1])))
print(refused(lambda: Baton(url="http://127.0.0.1:9", token="t", workspace_name="alpha")))
"#
    );
    let out = python_client(&code, &afar);
    let said = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    for line in &lines[..2] {
        for what in [
            afar.as_str(),
            "plain http",
            "https://",
            "BATON_ALLOW_PLAIN_HTTP",
        ] {
            assert!(line.contains(what), "{what} not said: {line}");
        }
    }
    assert_eq!(lines[2], "sent", "to this host: {said}");
    if let Some(s) = s {
        let heard = s.heard.lock().unwrap().clone();
        assert!(heard.is_empty(), "sent to {afar} over plain http: {heard}");
    }
}

/// Python's `code` run with the client importable and `url` as its argument, with no
/// `BATON_ALLOW_PLAIN_HTTP` from the test's environment.
fn python_client(code: &str, url: &str) -> Output {
    Command::new(crate::util::tools::python())
        .args(["-c", code, url])
        .env(
            "PYTHONPATH",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/src"),
        )
        .env_remove("BATON_ALLOW_PLAIN_HTTP")
        .output()
        .unwrap()
}

/// The Python client asks the daemon on this host, which answers with a redirect to another
/// host over plain http: the client follows it (as urllib does) without the token, which
/// urllib copied onto the redirected request.
#[test]
fn the_python_client_sends_no_token_where_a_redirect_leads() {
    use std::io::{BufRead, Write};
    let Some(ip) = this_hosts_other_address() else {
        eprintln!("no address but loopback: nothing to redirect to");
        return;
    };
    let afar = stand_in(&ip, "[]".into());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let here = format!("http://{}", listener.local_addr().unwrap());
    let to = afar.url.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while request.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: {to}/api/v1/handoffs\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
        }
    });
    let code = r#"
import sys
from baton_client import Baton
print(Baton(url=sys.argv[1], token="builder-token", workspace_name="alpha")._request("GET", "/api/v1/handoffs")[0])
"#;
    let out = python_client(code, &here);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "200",
        "{out:?}"
    );
    let heard = afar.heard.lock().unwrap().clone();
    assert!(
        heard.contains("GET /api/v1/handoffs"),
        "the redirect was followed: {heard}"
    );
    assert!(
        !heard.contains("builder-token"),
        "the token went to {}: {heard}",
        afar.url
    );
}

/// `program args` run with `hosts` in place of /etc/hosts, for it alone (a private mount
/// namespace: `unshare -m`, root only); None where that cannot be done.
fn with_hosts(
    hosts: &std::path::Path,
    program: &std::path::Path,
    args: &[&str],
) -> Option<Command> {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind \"$0\" /etc/hosts"])
        .arg(hosts)
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    let mut command = Command::new("unshare");
    command
        .args([
            "-m",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
        ])
        .arg(hosts)
        .arg(program)
        .args(args);
    Some(command)
}

/// `localhost` is this host only when it resolves to loopback alone: with a hosts file that
/// maps it to another address (where a stand-in listens), `baton withdraw` and the Python
/// client given `BATON_URL=http://localhost:PORT` refuse before sending anything, naming
/// `BATON_ALLOW_PLAIN_HTTP`, and the stand-in never sees the token (it used to: the name was
/// trusted as written). With the machine's own hosts file the token goes to the loopback
/// stand-in at that name.
#[test]
fn the_agents_token_never_goes_to_a_localhost_that_resolves_to_another_host() {
    let Some(ip) = this_hosts_other_address() else {
        eprintln!("no address of this machine but loopback: nothing to map localhost to");
        return;
    };
    let env = TestEnv::new();
    let afar = stand_in(&ip, "{}".into());
    let port = afar.url.rsplit(':').next().unwrap().to_string();
    let hosts = env.root().join("hosts");
    std::fs::write(&hosts, format!("{ip} localhost\n")).unwrap();
    let url = format!("http://localhost:{port}");
    let withdraw = ["withdraw", "pt", "--reason", "r"];
    let Some(mut command) = with_hosts(&hosts, std::path::Path::new(util::BIN), &withdraw) else {
        eprintln!("cannot give the command its own /etc/hosts here (unshare -m needs root)");
        return;
    };
    let out = command
        .env("BATON_URL", &url)
        .env("BATON_TOKEN", "builder-token")
        .env("BATON_LOG", "warn")
        .env_remove("BATON_ALLOW_PLAIN_HTTP")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for what in [url.as_str(), "plain http", "BATON_ALLOW_PLAIN_HTTP"] {
        assert!(said.contains(what), "{what} not said: {said}");
    }

    let code = format!(
        "{REFUSED}{}",
        r#"print(refused(lambda: Baton(url=sys.argv[1], token="builder-token", workspace_name="alpha").submit(doc)))
"#
    );
    let python = crate::util::tools::python();
    let mut command = with_hosts(&hosts, &python, &["-c", &code, &url]).unwrap();
    let out = command
        .env(
            "PYTHONPATH",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/src"),
        )
        .env_remove("BATON_ALLOW_PLAIN_HTTP")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    for what in [url.as_str(), "plain http", "BATON_ALLOW_PLAIN_HTTP"] {
        assert!(said.contains(what), "{what} not said: {out:?}");
    }
    let heard = afar.heard.lock().unwrap().clone();
    assert!(heard.is_empty(), "sent to {ip} as localhost: {heard}");

    // The machine's own hosts file: localhost is loopback, and the token goes there.
    let here = stand_in("127.0.0.1", "{}".into());
    let port = here.url.rsplit(':').next().unwrap();
    let out = Command::new(util::BIN)
        .args(withdraw)
        .env("BATON_URL", format!("http://localhost:{port}"))
        .env("BATON_TOKEN", "builder-token")
        .env_remove("BATON_ALLOW_PLAIN_HTTP")
        .output()
        .unwrap();
    let heard = here.heard.lock().unwrap().clone();
    assert!(heard.contains("Bearer builder-token"), "{out:?} {heard}");
}
