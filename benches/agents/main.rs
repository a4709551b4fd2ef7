//! Release-mode benchmark of the agents' read paths: `cargo bench --bench agents`.
//!
//! 1. Parse + validate one handoff of about 380 KB, written as JSON and as YAML (the same
//!    content): what reading `handoff.yaml` costs next to `handoff.json`.
//! 2. A "billion laughs" YAML (aliases nested 10 deep, 10 each): the time to refuse it.
//! 3. `baton mcp`: start, initialize, `tools/list`, a `submit_handoff` of a small valid handoff
//!    (dry run) and end of input, over a pipe, from spawn to exit.
//!
//! Each is run RUNS times (BATON_BENCH_RUNS, default 20) and reported as min / median / max.
//!
//! 4. `baton hook claude-code` against a running daemon, a reviewer approving through the API
//!    (`hook`): BATON_BENCH_HOOK_RUNS runs (3) of BATON_BENCH_HOOK_TRIPS round trips (100),
//!    each run's min / median / max and p50 / p99, beside the machine's sync latency.

mod hook;

use baton::contract::validate::{self, Format};
use baton::contract::Limits;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

fn runs() -> usize {
    env_or("BATON_BENCH_RUNS", 20)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` `n` times; min, median and max in milliseconds.
fn time(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[n / 2], ms[n - 1])
}

fn report(what: &str, (min, median, max): (f64, f64, f64)) {
    println!("{what:<48} min {min:>9.3} ms   median {median:>9.3} ms   max {max:>9.3} ms");
}

fn big_handoff() -> Value {
    let items: Vec<String> = (0..4000)
        .map(|i| format!("step {i}: check the retry budget of client {i} and note it"))
        .collect();
    let context: serde_json::Map<String, Value> = (0..2000)
        .map(|i| {
            (
                format!("key_{i}"),
                json!(format!("value number {i} of the context table")),
            )
        })
        .collect();
    json!({
        "handoff_version": "1.0", "id": "bench-1", "task_id": "bench", "from_agent": "bench-agent",
        "title": "A large handoff", "confidence": 0.5, "trigger": "completion",
        "completed": items, "remaining": ["review"], "context": context,
    })
}

/// The same document as YAML, block style, strings quoted where the core schema would read
/// them otherwise.
fn to_yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        to_yaml(v, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}- {}\n", scalar(item)));
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn laughs() -> String {
    let mut text = String::from("handoff_version: \"1\"\ntask_id: t\nfrom_agent: a\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    text
}

fn mcp_session(bin: &str, config: &std::path::Path) {
    let mut child = Command::new(bin)
        .args(["mcp", "--config", config.to_str().unwrap()])
        .env("BATON_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("baton mcp");
    let mut input = child.stdin.take().unwrap();
    let handoff = json!({"handoff_version": "1", "task_id": "t", "from_agent": "a"});
    let lines = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "submit_handoff", "arguments": {"workspace": "alpha", "handoff": handoff, "dry_run": true}}}),
    ];
    for l in lines {
        writeln!(input, "{l}").unwrap();
    }
    // The answers first, then end of input: the session ends once all three are out.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    let mut line = String::new();
    while seen < 3 {
        line.clear();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            panic!("baton mcp ended early");
        }
        seen += 1;
    }
    drop(input);
    assert!(child.wait().unwrap().success());
}

fn main() {
    let n = runs();
    let limits = Limits::default();
    let doc = big_handoff();
    let json_bytes = serde_json::to_vec_pretty(&doc).unwrap();
    let mut yaml = String::new();
    to_yaml(&doc, 0, &mut yaml);
    let yaml_bytes = yaml.into_bytes();
    assert!(
        validate::handoff_as(Format::Yaml, &yaml_bytes, &limits).is_ok(),
        "the YAML is valid"
    );
    println!(
        "handoff: {} bytes as JSON, {} bytes as YAML; {n} runs each",
        json_bytes.len(),
        yaml_bytes.len()
    );
    report(
        "validate handoff.json",
        time(n, || {
            validate::handoff(&json_bytes, &limits).unwrap();
        }),
    );
    report(
        "validate handoff.yaml (same content)",
        time(n, || {
            validate::handoff_as(Format::Yaml, &yaml_bytes, &limits).unwrap();
        }),
    );
    let bomb = laughs();
    report(
        "refuse a billion-laughs YAML (10^10 nodes)",
        time(n, || {
            assert!(validate::handoff_as(Format::Yaml, bomb.as_bytes(), &limits).is_err());
        }),
    );

    let bin = env!("CARGO_BIN_EXE_baton");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ws")).unwrap();
    let status = Command::new(bin)
        .args(["init", dir.path().join("ws/alpha").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\nworkspaces = [\"ws\"]\n",
    )
    .unwrap();
    report(
        "baton mcp: spawn, initialize, list, submit, exit",
        time(n, || mcp_session(bin, &config)),
    );
    drop(dir);

    let (runs, trips) = (
        env_or("BATON_BENCH_HOOK_RUNS", 3).max(1),
        env_or("BATON_BENCH_HOOK_TRIPS", 100).max(1),
    );
    hook::bench(bin, runs, trips).expect("the hook round trip");
}
