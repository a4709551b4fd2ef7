//! Release-mode benchmark of decision attestations: `cargo bench --bench attest`.
//!
//! What one decision costs to sign (`Keyring::attest`: the Statement's JSON, DSSE's encoding,
//! Ed25519) and to check (`receipts::check`: the signature, the payload parsed, decision.json
//! compared with the signed decision), for an approval of a handoff with 3 artifacts in a
//! workspace whose `approved/` holds 20 files, and the envelope's size. Several runs, each
//! reported as the per-operation time's min / median / max.
//! Knobs: BATON_BENCH_OPS (2000 a run), BATON_BENCH_RUNS (5).

use baton::contract::receipt::{ApprovedClaim, ArtifactClaim, Predicate};
use baton::contract::Decision;
use baton::receipts::{self, Keyring};
use std::time::Instant;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    let value = std::env::var(name).ok().and_then(|v| v.parse().ok());
    value.unwrap_or(default)
}

fn claim(path: String, i: usize) -> ArtifactClaim {
    ArtifactClaim {
        path,
        sha256: format!("{:064x}", i),
    }
}

fn main() -> anyhow::Result<()> {
    let ops: usize = env_or("BATON_BENCH_OPS", 2000);
    let runs: usize = env_or("BATON_BENCH_RUNS", 5);
    let data = tempfile::tempdir()?;
    let keyring = Keyring::open(data.path())?;
    let trusted = receipts::published(data.path())?;
    let decision: Decision = serde_json::from_value(serde_json::json!({
        "decision_version": "1.0", "handoff_key": "fix-retry-backoff-2291",
        "task_id": "task-2291", "outcome": "approved", "by": "rita",
        "at": "2026-11-26T21:00:00.000Z", "comment": "ship it after the canary",
        "instructions": "deploy to staging only; open a ticket for production",
        "remaining": ["deploy to staging", "watch the error rate for an hour"],
        "handoff_sha256": "ab".repeat(32), "policy": "human",
    }))?;
    let artifacts: Vec<ArtifactClaim> = (0..3)
        .map(|i| claim(format!("inbox/patch-{i}.diff"), i))
        .collect();
    // Each approved file with the approval that promoted it, as the daemon signs it.
    let approved: Vec<ApprovedClaim> = (0..20)
        .map(|i| ApprovedClaim {
            path: format!("approved/file-{i}.txt"),
            sha256: format!("{:064x}", 100 + i),
            provenance: Some("human".into()),
            handoff_key: Some(format!("earlier-handoff-{i}")),
            revision: Some(1),
            by: Some("rita".into()),
            policy: Some("human".into()),
        })
        .collect();
    let predicate = Predicate {
        workspace: "alpha".into(),
        handoff_key: decision.handoff_key.clone(),
        revision: 2,
        handoff_sha256: decision.handoff_sha256.clone(),
        artifacts,
        approved: Some(approved),
        valid_until: Some("2026-11-27T21:00:00.000Z".into()),
        decision: serde_json::Value::Null,
    };
    let sign = || {
        let statement = receipts::statement(&decision, predicate.clone());
        keyring.attest(&statement)
    };
    let envelope = sign();
    let mut signed = decision.clone();
    signed.attestation = Some(envelope.clone());
    let doc = serde_json::to_value(&signed)?;
    let now = receipts::parse_time("2026-11-26T22:00:00Z").expect("a time");
    receipts::check(&doc, &trusted, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "envelope: {} bytes (payload {} bytes of base64)",
        serde_json::to_vec(&envelope)?.len(),
        envelope.payload.len()
    );
    let time = |what: &str, op: &mut dyn FnMut()| {
        let mut per_op: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ops {
                    op();
                }
                start.elapsed().as_secs_f64() * 1e6 / ops as f64
            })
            .collect();
        per_op.sort_by(f64::total_cmp);
        println!(
            "{what}: {:.1} / {:.1} / {:.1} us a decision (min / median / max of {runs} runs of {ops})",
            per_op[0],
            per_op[runs / 2],
            per_op[runs - 1]
        );
    };
    time("sign", &mut || {
        std::hint::black_box(sign());
    });
    time("check", &mut || {
        std::hint::black_box(receipts::check(&doc, &trusted, now).is_ok());
    });
    Ok(())
}
