//! A store file committed as it is (its manifest sealed over it), and not a record as the
//! daemon writes it: a decision answering other content than its record's, a file that does
//! not parse. It is damage, as a failed checksum is: the record left out (its decision never
//! served, nothing decided over it), the workspace read-only, /healthz degraded naming the
//! file. Before, such a decision was loaded as the record's decision, and a meta.json that did
//! not parse was read as no record at all.

use super::*;
use crate::store_damage::{decided_and_pending, decided_events, health_names};

/// Rewrites `file` of record folder `folder` as `bytes`, and its manifest to commit them (as
/// the store's own change would: the damage is past every checksum).
fn sealed_over(folder: &Path, file: &str, bytes: &[u8]) {
    write_atomic(&folder.join(file), bytes);
    let path = folder.join(".baton-manifest");
    let text = std::fs::read(&path).unwrap();
    let at = text.iter().position(|&c| c == b'\n').unwrap();
    let mut manifest: Value = serde_json::from_slice(&text[at + 1..]).unwrap();
    manifest["files"][file] = sha256_hex(bytes).into();
    let mut json = serde_json::to_vec(&manifest).unwrap();
    json.push(b'\n');
    let mut sealed = format!("baton-manifest 1 {}\n", sha256_hex(&json)).into_bytes();
    sealed.extend_from_slice(&json);
    write_atomic(&path, &sealed);
}

#[test]
fn a_committed_decision_of_other_content_or_a_file_that_does_not_parse_is_damage() {
    type Change = fn(&[u8]) -> Vec<u8>;
    let rebound: Change = |bytes| {
        let mut d: Value = serde_json::from_slice(bytes).unwrap();
        // The digest of other content: an answer to another revision, not this one's.
        d["handoff_sha256"] = sha256_hex(b"other content").into();
        serde_json::to_vec_pretty(&d).unwrap()
    };
    let garbled: Change = |bytes| bytes[..bytes.len() / 2].to_vec();
    let cases: [(&str, Change); 3] = [
        ("decision.json", rebound),
        ("decision.json", garbled),
        ("meta.json", garbled),
    ];
    for (file, change) in cases {
        let mut env = TestEnv::new();
        let ws = env.ws("alpha");
        let folder = decided_and_pending(&mut env, &ws, false);
        let copy = ws.join(".baton/handoffs/first/decision.json");
        let published = std::fs::read(&copy).unwrap();
        let decided = decided_events(&ws);
        let committed = std::fs::read(folder.join(file)).unwrap();
        sealed_over(&folder, file, &change(&committed));
        let rel = format!("handoffs/first/{file}");
        let case = format!(
            "{file} {:?}",
            String::from_utf8_lossy(&change(&committed)[..40])
        );

        let d = env.start();
        d.wait_until("health names the file", || health_names(&d, &rel));
        // Not served as a decision, nor as no record: an answer naming the damage.
        let (status, body) = d.get("/api/v1/handoffs/first");
        assert_eq!(status, 503, "{case}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(&rel), "{case}: {error}");
        // Read-only: nothing is decided, on it or on another handoff of the workspace.
        for key in ["first", "second"] {
            let (status, body) = d.decide(key, "rejected", "no");
            assert_eq!(status, 503, "{case}: {key}: {body}");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains(&rel), "{case}: {key}: {error}");
        }
        assert_eq!(decided_events(&ws), decided, "{case}");
        assert_eq!(std::fs::read(&copy).unwrap(), published, "{case}");
        d.stop();
    }
}
