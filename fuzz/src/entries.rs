//! One entry function per fuzz target: each hands the input to the real reader or parser of
//! the `baton` crate and checks what must hold of its answer, panicking when it does not (a
//! panic is what libFuzzer reports as a crash). The same file is compiled into the stable
//! test suite (tests/fuzz_corpus.rs), which runs every corpus file through it, so the corpus
//! guards against regressions without cargo-fuzz or a nightly compiler.
//!
//! Inputs that must be text are taken as they come: a reader is given invalid UTF-8 too.
//! Where a checksum or a signature would stop every mutated input at the door (the records
//! snapshot's CRC-32, an attestation's Ed25519 signature), the entry seals the input itself,
//! so what lies behind the check is fuzzed as well.

use baton::contract::json::{self, Limits};
use baton::contract::validate::{self, Accepted, Format, Rejected};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What every rejection must be: at least one problem, each saying something, and a digest.
fn rejection_is_whole(r: &Rejected) {
    assert!(!r.problems.is_empty(), "a rejection without a problem");
    for p in &r.problems {
        assert!(!p.message.is_empty(), "a problem without a message: {p:?}");
    }
    assert_eq!(r.digest.len(), 64, "digest {:?}", r.digest);
}

/// What an accepted document must be: its value canonical JSON that parses back to itself.
fn acceptance_is_whole<T>(a: &Accepted<T>) {
    let canonical = json::canonical(&a.value);
    let wide = Limits {
        max_bytes: usize::MAX,
        max_depth: 1024,
        max_string: usize::MAX,
    };
    let again = json::parse(&canonical, &wide).expect("canonical JSON parses");
    assert_eq!(again, a.value, "canonical JSON reads back as another value");
    assert_eq!(validate::sha256_hex(&canonical), a.digest);
}

/// handoff.json: accepted files are accepted again as kept (the bytes archived), with the same
/// digest, which `baton wait` computes the same way without limits.
pub fn handoff_json(data: &[u8]) {
    let limits = Limits::default();
    match validate::handoff(data, &limits) {
        Ok(a) => {
            acceptance_is_whole(&a);
            let kept = a.kept_bytes(data);
            let again = validate::handoff(&kept, &limits).expect("the kept bytes are accepted");
            assert_eq!(again.digest, a.digest);
            assert_eq!(again.doc, a.doc);
            assert_eq!(validate::handoff_digest(data).as_deref(), Some(&*a.digest));
            let typed = serde_json::to_vec(&a.doc).expect("a handoff serializes");
            let back = validate::handoff(&typed, &limits).expect("the typed handoff is accepted");
            assert_eq!(back.doc, a.doc, "the typed handoff reads back as another");
        }
        Err(r) => rejection_is_whole(&r),
    }
}

/// handoff.yaml: what the YAML reader accepts, as the JSON it stands for, is accepted by the
/// JSON reader with the same digest; `baton wait`'s digest of the YAML agrees.
pub fn handoff_yaml(data: &[u8]) {
    let limits = Limits::default();
    match validate::handoff_as(Format::Yaml, data, &limits) {
        Ok(a) => {
            acceptance_is_whole(&a);
            assert!(a.normalized, "YAML is always kept as JSON");
            let kept = a.kept_bytes(data).into_owned();
            let wide = Limits {
                max_bytes: usize::MAX,
                ..limits
            };
            let json =
                validate::handoff(&kept, &wide).expect("the JSON of accepted YAML is accepted");
            assert_eq!(json.digest, a.digest);
            assert_eq!(json.doc, a.doc);
            assert_eq!(
                validate::handoff_digest_as(Format::Yaml, data).as_deref(),
                Some(&*a.digest)
            );
        }
        Err(r) => rejection_is_whole(&r),
    }
}

/// A checkpoint file: accepted ones read back the same from their typed form.
pub fn checkpoint(data: &[u8]) {
    let limits = Limits::default();
    match validate::checkpoint(data, &limits) {
        Ok(a) => {
            acceptance_is_whole(&a);
            let typed = serde_json::to_vec(&a.doc).expect("a checkpoint serializes");
            let back =
                validate::checkpoint(&typed, &limits).expect("the typed checkpoint is accepted");
            assert_eq!(
                back.doc, a.doc,
                "the typed checkpoint reads back as another"
            );
        }
        Err(r) => rejection_is_whole(&r),
    }
}

/// decision.json (`baton validate`): accepted ones read back the same from their typed form.
pub fn decision(data: &[u8]) {
    let limits = Limits::default();
    match validate::decision(data, &limits) {
        Ok(a) => {
            acceptance_is_whole(&a);
            let typed = serde_json::to_vec(&a.doc).expect("a decision serializes");
            let back = validate::decision(&typed, &limits).expect("the typed decision is accepted");
            assert_eq!(back.doc, a.doc, "the typed decision reads back as another");
        }
        Err(r) => rejection_is_whole(&r),
    }
}

/// A folder that lives as long as the process (the fuzz targets never exit cleanly).
fn scratch(name: &str) -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::Builder::new().prefix(name).tempdir_in("/dev/shm")
    } else {
        tempfile::Builder::new().prefix(name).tempdir()
    };
    base.expect("a scratch folder").keep()
}

/// A workspace tree with every kind of path an agent can make: files, folders, links inward,
/// outward, absolute, dangling (inward and outward) and looping; and a sibling folder whose
/// name starts with the root's (`root` and `root-outside`), the classic prefix escape.
fn resolver_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        use std::os::unix::fs::symlink;
        let base = scratch("baton-fuzz-paths-");
        let root = base.join("root");
        let outside = base.join("root-outside");
        for dir in [
            root.join("inbox/sub"),
            root.join("checkpoints"),
            root.join(".baton"),
            outside.clone(),
        ] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(root.join("inbox/a.txt"), "a").unwrap();
        std::fs::write(root.join("inbox/sub/b.txt"), "b").unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        let links: [(&str, &Path); 9] = [
            ("inbox/in", Path::new("sub")),
            ("inbox/up", Path::new("..")),
            ("inbox/out", Path::new("../../root-outside")),
            ("inbox/abs", &outside),
            ("inbox/etc", Path::new("/etc")),
            ("inbox/dangling_in", Path::new("none.txt")),
            ("inbox/dangling_out", Path::new("../../nowhere")),
            ("inbox/loop", Path::new("loop")),
            ("checkpoints/root", Path::new("/")),
        ];
        for (link, target) in links {
            symlink(target, root.join(link)).unwrap();
        }
        root.canonicalize().unwrap()
    })
}

/// The path resolver: an answer is always an existing, canonical path inside the root;
/// a refusal on its face is exactly what the contract's path check says.
pub fn path_resolve(data: &[u8]) {
    let root = resolver_root();
    let rel = String::from_utf8_lossy(data);
    let refused_on_its_face = validate::relative_path_problem(&rel);
    match baton::workspace::resolve(root, &rel) {
        Ok(path) => {
            assert!(
                refused_on_its_face.is_none(),
                "{rel:?} resolved though refused"
            );
            assert!(path.starts_with(root), "{rel:?} resolved outside: {path:?}");
            assert_eq!(path.canonicalize().ok().as_ref(), Some(&path), "{rel:?}");
        }
        Err(baton::workspace::PathError::Refused(why)) => {
            assert_eq!(Some(why), refused_on_its_face, "{rel:?}");
        }
        Err(e) => {
            assert!(refused_on_its_face.is_none(), "{rel:?}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The audit log's line readers: the history's walk back from the head, the re-check's read
/// of the whole chain and `baton audit verify`. Over the input as a log they never panic and
/// agree; over a chain built from the input's lines every reader accepts it whole, and a
/// change of any one byte is found by each.
pub fn audit_lines(data: &[u8]) {
    use baton::audit::fuzzing::{chain_problem, chained_back};
    // The input as it is, its last whole line taken as the head.
    let body = &data[..data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)];
    let head = match body.len() {
        0 => baton::audit::GENESIS.to_string(),
        n => sha256_hex(
            &body[body[..n - 1]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1)..n - 1],
        ),
    };
    let walked = chained_back(data, &head);
    let mut want_end = body.len() as u64;
    for line in walked.iter().rev() {
        let end = line.offset + u64::from(line.len);
        assert_eq!(end + 1, want_end, "lines out of place");
        let bytes = &data[line.offset as usize..end as usize];
        assert_eq!(data[end as usize], b'\n');
        assert_eq!(
            &sha256_hex(bytes).as_bytes()[..32],
            hex::encode(line.proof).as_bytes()
        );
        want_end = line.offset;
    }
    if chain_problem(data, &head).is_none() && !body.is_empty() {
        // The whole log chains to its head: the walk back must have found every line.
        assert_eq!(
            walked.first().map(|w| w.offset),
            Some(0),
            "a chained log walked short"
        );
    }
    verify_bytes(data);

    // A chain made of the input's lines, each an event carrying the line as its text.
    let mut log = Vec::new();
    let mut prev = baton::audit::GENESIS.to_string();
    let texts: Vec<&[u8]> = data.split(|b| *b == b'\n').take(64).collect();
    for (i, text) in texts.iter().enumerate() {
        let line = serde_json::json!({
            "seq": i + 1,
            "prev": prev,
            "at": "2026-01-01T00:00:00Z",
            "type": "handoff.received",
            "text": String::from_utf8_lossy(text),
        });
        let line = serde_json::to_vec(&line).unwrap();
        prev = sha256_hex(&line);
        log.extend_from_slice(&line);
        log.push(b'\n');
    }
    let walked = chained_back(&log, &prev);
    assert_eq!(walked.len(), texts.len(), "a whole chain walked short");
    assert_eq!(chain_problem(&log, &prev), None);
    let report = verify_bytes(&log);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.lines, texts.len() as u64);
    // One byte changed anywhere (chosen by the input) is found by each reader.
    let at = data
        .iter()
        .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(*b as usize))
        % log.len();
    log[at] ^= 0x01;
    assert!(
        chain_problem(&log, &prev).is_some(),
        "byte {at} changed unseen"
    );
    let walked = chained_back(&log, &prev);
    assert!(
        walked.len() < texts.len(),
        "byte {at} changed unseen by the walk"
    );
}

/// `baton audit verify` over `bytes` as a log file, read from memory (`verify` reads the file
/// the same way, through `verify_read`).
fn verify_bytes(bytes: &[u8]) -> baton::audit::Report {
    let report = baton::audit::verify_read(bytes, None).expect("a log in memory reads");
    assert!(report.lines <= bytes.len() as u64 + 1);
    report
}

/// The records' snapshot: the input is the file's body, sealed with its checksum. What it
/// reads, written again, reads back the same; the reader also takes the input unsealed.
pub fn records_snapshot(data: &[u8]) {
    use baton::store::snapshot::{self, Snapshot, MAGIC};
    let _ = snapshot::parse(data);
    let mut sealed = format!("{MAGIC} {:08x}\n", crc32(data)).into_bytes();
    sealed.extend_from_slice(data);
    let Some(first) = snapshot::parse(&sealed) else {
        return;
    };
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("baton-fuzz-snapshot-"));
    let dir = dir.join(format!("{:?}", std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    first.write(&dir).expect("the snapshot is written");
    let written = std::fs::read(dir.join(snapshot::FILE)).unwrap();
    let again = snapshot::parse(&written).expect("a written snapshot reads back");
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
    let read = Snapshot::read(&dir);
    assert_eq!(format!("{first:?}"), format!("{read:?}"));
}

/// CRC-32 (IEEE), as the snapshot's first line gives it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// The outbox's spool: the input is one spool file. Loading never drops it (a damaged file is
/// a dead delivery), what load leaves behind loads again cleanly, and a delivery read
/// serializes back to itself.
pub fn outbox_spool(data: &[u8]) {
    thread_local! {
        static SPOOL: baton::outbox::Spool = baton::outbox::Spool::open(&scratch("baton-fuzz-spool-"))
            .expect("the spool opens");
    }
    SPOOL.with(|spool| {
        // The spool holds the input's file alone, as a spool just opened would (`damaged/`,
        // which the load never reads, is kept; only what was set aside in it is removed):
        // removing and making the folders again for each input was a fifth of the time.
        empty(spool.dir());
        empty(&spool.dir().join("damaged"));
        load_one_spool_file(spool, data);
    });
}

/// Removes the files in `dir` (it may not exist).
fn empty(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}

fn load_one_spool_file(spool: &baton::outbox::Spool, data: &[u8]) {
    use baton::outbox::{Delivery, State};
    std::fs::write(spool.dir().join("msg_fuzz.json"), data).unwrap();
    let (loaded, warnings) = spool.load().expect("a spool in reach loads");
    assert_eq!(loaded.len(), 1, "a spool file was dropped: {warnings:?}");
    let d = &loaded[0];
    if warnings.is_empty() {
        let text = serde_json::to_vec(d).unwrap();
        let back: Delivery = serde_json::from_slice(&text).expect("a delivery reads back");
        assert_eq!(serde_json::to_vec(&back).unwrap(), text);
    } else {
        assert_eq!(d.state, State::Dead, "a damaged file not listed dead");
        assert_eq!(d.id, "msg_fuzz");
        let (again, warnings) = spool.load().expect("the spool loads again");
        assert!(
            warnings.is_empty(),
            "the dead delivery does not load: {warnings:?}"
        );
        assert_eq!(again.len(), 1);
    }
}

/// A signing key of the fuzz run's own, and its public half as the trusted key.
fn keys() -> &'static (baton::receipts::Keyring, Vec<baton::receipts::PublicKey>) {
    static KEYS: OnceLock<(baton::receipts::Keyring, Vec<baton::receipts::PublicKey>)> =
        OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = scratch("baton-fuzz-keys-");
        let ring = baton::receipts::Keyring::make(&dir).expect("a key is made");
        let trusted = baton::receipts::published(&dir).expect("its public half");
        (ring, trusted)
    })
}

/// Receipts and attestations (`baton verify`, `baton wait --key`): the input as decision.json
/// is never taken as signed; as an envelope's payload signed by the trusted key, it passes
/// only if it is a statement whose decision is the file's; a decision that validates, signed
/// as the daemon signs, is checked whole, and any change of it is refused.
pub fn receipt(data: &[u8]) {
    use base64::Engine;
    use baton::contract::receipt::{pae, Predicate, PAYLOAD_TYPE};
    use baton::receipts::{check, statement};
    let (ring, trusted) = keys();
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let b64 = base64::engine::general_purpose::STANDARD;

    // The input as decision.json: no key of ours signed it.
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        let _ = check(&doc, trusted, now);
    }

    // The input as a signed payload.
    let envelope = serde_json::json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": b64.encode(data),
        "signatures": [{"keyid": ring.key_id(), "sig": ring.sign_bytes(&pae(PAYLOAD_TYPE, data))}],
    });
    let claimed = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|s| s.pointer("/predicate/decision").cloned());
    let mut doc = match claimed {
        Some(Value::Object(map)) => Value::Object(map),
        _ => serde_json::json!({}),
    };
    doc["attestation"] = envelope;
    if let Ok(c) = check(&doc, trusted, now) {
        let mut file = doc.clone();
        file.as_object_mut().unwrap().remove("attestation");
        let signed: Value = serde_json::from_slice(data).unwrap();
        assert_eq!(signed["predicate"]["decision"], file);
        assert_eq!(c.key_id, ring.key_id());
    }

    // A valid decision, attested as the daemon attests it.
    let Ok(accepted) = validate::decision(data, &Limits::default()) else {
        return;
    };
    let mut decision = accepted.doc;
    decision.attestation = None;
    decision.receipt = None;
    let predicate = Predicate {
        workspace: "ws".into(),
        handoff_key: decision.handoff_key.clone(),
        revision: 1,
        handoff_sha256: decision.handoff_sha256.clone(),
        artifacts: Vec::new(),
        approved: None,
        valid_until: None,
        decision: Value::Null,
    };
    decision.attestation = Some(ring.attest(&statement(&decision, predicate)));
    let mut doc = serde_json::to_value(&decision).unwrap();
    let checked = check(&doc, trusted, now).expect("a decision the daemon attested is accepted");
    let mut unsigned = decision.clone();
    unsigned.attestation = None;
    assert_eq!(
        checked.decision, unsigned,
        "the checked decision is another"
    );
    doc["by"] = Value::String(format!("{}!", decision.by));
    assert!(
        check(&doc, trusted, now).is_err(),
        "an edited decision was accepted"
    );
}

/// The facts of a handoff as a policy sees them (`Facts::of`): the artifacts as the daemon
/// would have read them, the sender proven to be the one the file names.
fn facts_of(handoff: &baton::contract::Handoff) -> baton::policy::Facts {
    use baton::policy::{ArtifactFact, Facts};
    let artifacts = handoff
        .artifacts
        .iter()
        .enumerate()
        .map(|(i, a)| ArtifactFact {
            path: a.path.clone(),
            size: i as i64 * 1000 - 1,
            sha256: sha256_hex(a.path.as_bytes()),
        })
        .collect();
    Facts::of(
        handoff,
        "ws",
        "default",
        Some(handoff.from_agent.clone()),
        artifacts,
        2,
    )
}

/// A policy that passed the load-time check must not make the interpreter fail.
fn never_fails(expr: &str, held: &Result<bool, String>) {
    if let Err(e) = held {
        assert_ne!(
            e, "the interpreter failed on it",
            "{expr:?} passed the check and then failed"
        );
    }
}

/// Policies of every shape the facts meet: each fact and field, the old `handoff.*` names, the
/// list macros, string functions (with a fact as the argument), conversions, arithmetic.
const POLICIES: &[&str] = &[
    "claimed.trigger == 'completion' && claimed.confidence >= 0.97 && artifacts.all(a, a.size < 100000)",
    "handoff.trigger == 'completion' && handoff.confidence >= 0.97 && handoff.artifacts.all(a, a.size < 100000) && handoff.checkpoints >= 2",
    "'docs' in claimed.labels || 'docs' in handoff.labels",
    "sender == 'release-bot' && route == 'default' && workspace == 'ws'",
    "claimed.from_agent == sender || claimed.to_agent == 'reviewer' || handoff.to_agent == sender",
    "claimed.classification == 'internal' && handoff.classification != 'secret'",
    "claimed.confidence * 2.0 - 1.0 > claimed.confidence / 3.0",
    "checkpoints + 1 > 2 && artifacts.exists_one(a, a.sha256 == 'ab')",
    "size(claimed.title) > 0 && claimed.title.startsWith('fix') && !claimed.title.endsWith('.')",
    "claimed.title.contains('wip') || handoff.title.endsWith(claimed.trigger)",
    "claimed.labels.all(l, claimed.title.contains(l) || l.startsWith(sender))",
    "int(claimed.confidence * 100.0) >= 97 && string(checkpoints) != '' && double(checkpoints) < claimed.confidence * 10.0",
    "uint(checkpoints) > 0u && max(claimed.confidence, 0.5) > min(claimed.confidence, 0.5)",
    "has(claimed.title) && size(bytes(claimed.title)) < 100",
    "claimed.labels.filter(l, l.startsWith('x')).size() == 0",
    "artifacts.map(a, a.size).all(s, s < 10)",
    "artifacts.exists(a, a.path.endsWith('.md')) || checkpoints >= 3",
    "artifacts.all(a, a.path.startsWith(claimed.trigger) || size(a.sha256) == 64)",
    "size(artifacts) + size(claimed.labels) < 20 && size(claimed.labels) == size(handoff.labels)",
    "claimed.labels.exists(l, l == claimed.title || l in artifacts.map(a, a.path))",
    "claimed.trigger in ['completion', 'blocked', 'question'] ? claimed.confidence > 0.5 : sender != ''",
];

/// The fixed policies, compiled once (compiling is most of what `holds` costs).
fn policies() -> &'static [(&'static str, baton::policy::fuzzing::Compiled)] {
    static COMPILED: OnceLock<Vec<(&str, baton::policy::fuzzing::Compiled)>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        POLICIES
            .iter()
            .map(|expr| {
                baton::policy::check(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
                let compiled = baton::policy::fuzzing::Compiled::new(expr)
                    .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
                (*expr, compiled)
            })
            .collect()
    })
}

/// The route policies over the facts of a handoff (the input, as handoff.json; a rejected one
/// gives the facts of an empty handoff): `Facts::of`, then every policy of a fixed set that
/// passes the load-time check, evaluated as `policy::holds` evaluates it. None makes the
/// interpreter fail, whatever the facts hold.
pub fn policy_facts(data: &[u8]) {
    let handoff = match validate::handoff(data, &Limits::default()) {
        Ok(a) => a.doc,
        Err(_) => baton::contract::Handoff::default(),
    };
    // The context `holds` makes of the facts, made once for all the policies: it is the same
    // for each, and making it is most of what one evaluation costs.
    let given = baton::policy::fuzzing::Given::new(&facts_of(&handoff))
        .expect("a handoff's facts are given to an expression");
    for (expr, compiled) in policies() {
        never_fails(expr, &compiled.holds_given(&given));
    }
}

/// Two handoffs' facts for `policy_expr`, as `holds` gives them to an expression: an empty
/// handoff's, and a full one's.
fn fixed_facts() -> &'static [baton::policy::fuzzing::Given; 2] {
    static FACTS: OnceLock<[baton::policy::fuzzing::Given; 2]> = OnceLock::new();
    FACTS.get_or_init(|| {
        let full = br#"{"handoff_version":"1.0","id":"h1","task_id":"t1","from_agent":"release-bot","to_agent":"reviewer","trigger":"completion","confidence":0.97,"title":"fix the parser","classification":"internal","labels":["docs","x-ray"],"artifacts":[{"path":"inbox/a.md"},{"path":"inbox/b.txt"}]}"#;
        let full = validate::handoff(full, &Limits::default())
            .map(|a| a.doc)
            .unwrap_or_else(|r| panic!("the fixed handoff is refused: {:?}", r.problems));
        let given = |facts| {
            baton::policy::fuzzing::Given::new(&facts).expect("the fixed facts are given")
        };
        [
            given(facts_of(&baton::contract::Handoff::default())),
            given(facts_of(&full)),
        ]
    })
}

/// A route's `auto_approve_if` (the input, as text): an expression that passes the load-time
/// check (`policy::check`) never makes the interpreter fail (`policy::holds`, compiled once and
/// evaluated over an empty handoff's facts and a full one's).
///
/// The compile comes first: `check` begins with the very same bound and parse, so an
/// expression that does not compile is refused by `check` at that step, and parsing it a
/// second time (most fuzzed input does not parse, and the parser's error recovery is most of
/// the cost) would find nothing new.
pub fn policy_expr(data: &[u8]) {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(compiled) = baton::policy::fuzzing::Compiled::new(expr) else {
        return;
    };
    let checked = baton::policy::check(expr);
    for given in fixed_facts() {
        let held = compiled.holds_given(given);
        if checked.is_ok() {
            never_fails(expr, &held);
        }
    }
}
