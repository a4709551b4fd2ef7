//! Nodes reach each other over TLS when a node's `peer_url` is `https://` (a TLS proxy in
//! front of it), trusting only the cluster's own CA when `peer_ca_file` names it: a request
//! forwarded to such a node goes encrypted and is answered, and a proxy in its place that
//! shows a certificate the CA did not sign (a machine in the middle) is refused before any
//! byte of the request leaves the node.

use super::nodes::{holder, node_config, one_at_a_time, served, settled, spread, wait_long};
use super::nodes::{SETTLE_S, TTL_S};
use super::pg::{free_port, Postgres};
use crate::util::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The TLS proxy (tests/cluster/tls_relay.py) on `port` in front of `upstream`, showing the
/// `cluster` certificate (signed by the CA it writes to `dir/peer-ca.pem`) or a `rogue` one.
struct Relay(Child);

impl Relay {
    fn start(dir: &Path, port: u16, upstream: u16, which: &str) -> Relay {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/tls_relay.py");
        let mut child = Command::new(crate::util::tools::python())
            .arg(script)
            .arg(dir)
            .args([port.to_string(), upstream.to_string(), which.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the TLS proxy did not start");
        Relay(child)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn relay_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("relay.log")).unwrap_or_default()
}

#[test]
fn a_node_behind_tls_is_reached_encrypted_and_a_certificate_the_cluster_ca_did_not_sign_is_refused()
{
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("tls");
    let mut env = TestEnv::new();
    env.drive_clock();
    let mut names = vec!["alpha".to_string()];
    spread(&env, &mut names, 4, &["a", "b"], 1);
    let total = names.len();
    let certs = env.root().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (b_port, tls_port) = (free_port(), free_port());
    let relay = Relay::start(&certs, tls_port, b_port, "cluster");
    std::fs::copy(certs.join("peer-ca.pem"), env.root().join("peer-ca.pem")).unwrap();
    let b_config = env.root().join("baton-b.toml");
    std::fs::write(
        &b_config,
        format!(
            "listen = \"127.0.0.1:{b_port}\"\ndata_dir = \"data-b\"\nworkspaces = [\"ws\"]\nsettle_ms = 300\npoll_ms = 200\n\
             [cluster]\ndatabase_url = \"{url}\"\nnode = \"b\"\nlease_ttl_s = {TTL_S}\npeer_url = \"https://127.0.0.1:{tls_port}\"\npeer_ca_file = \"peer-ca.pem\"\n"
        ),
    )
    .unwrap();
    let a_config = node_config(&env, &url, "a", "");
    let mut text = std::fs::read_to_string(&a_config).unwrap();
    text.push_str("peer_ca_file = \"peer-ca.pem\"\n");
    std::fs::write(&a_config, text).unwrap();
    let a = env.spawn_with_config(&a_config);
    let b = env.spawn_with_config(&b_config);
    settled(&env, &pg, "tls", &["a", "b"], total);
    wait_long("shared out", SETTLE_S, || {
        served(&a) > 0 && served(&b) > 0 && served(&a) + served(&b) == total
    });
    let on_b = names
        .iter()
        .find(|n| holder(&pg, "tls", n) == "b")
        .cloned()
        .expect("b serves one");
    write_atomic(&env.ws(&on_b).join("handoff.json"), &bytes(&handoff("far")));

    // a asks b through the proxy, over TLS, and is answered; a decision goes the same way.
    wait_long("a reads b's handoff over TLS", SETTLE_S, || {
        a.get("/api/v1/handoffs/far").0 == 200
    });
    assert!(
        relay_log(&certs).contains("relayed"),
        "{}",
        relay_log(&certs)
    );
    let (status, body) = a.decide("far", "approved", "over TLS");
    assert_eq!(status, 200, "{body}");
    assert_eq!(decision(&env.ws(&on_b)).unwrap()["by"], "admin");

    // A machine in the middle, with a certificate of its own for the same address: refused.
    drop(relay);
    let _rogue = Relay::start(&certs, tls_port, b_port, "rogue");
    wait_long("the rogue certificate is refused", SETTLE_S, || {
        let (status, body) = a.get("/api/v1/handoffs/far");
        assert_ne!(
            status, 200,
            "answered through a proxy the cluster's CA did not vouch for: {body}"
        );
        status == 502 && relay_log(&certs).contains("refused")
    });
    let log = relay_log(&certs);
    assert!(!log.contains("GET "), "{log}");
    a.assert_alive();
    b.assert_alive();
}

/// A `peer_ca_file` that holds no certificate stops the start, naming the file; an
/// `https://` peer_url is taken, one of another scheme refused.
#[test]
fn a_peer_ca_file_without_a_certificate_stops_the_start_and_peer_url_takes_http_or_https() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let config = |cluster: &str| {
        let text = format!(
            "workspaces = [\"ws\"]\n[cluster]\ndatabase_url = \"postgres://baton@127.0.0.1:1/baton\"\n{cluster}"
        );
        baton::config::Config::parse(&text, "test.toml", dir.path())
    };
    let err = config("peer_ca_file = \"empty.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("peer_ca_file")
            && err.contains("empty.pem")
            && err.contains("no PEM certificate"),
        "{err}"
    );
    let err = config("peer_ca_file = \"missing.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.pem"), "{err}");
    assert!(config("peer_url = \"https://node-b.internal:8443\"\n").is_ok());
    let err = config("peer_url = \"ftp://node-b.internal\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster.peer_url"), "{err}");
}
