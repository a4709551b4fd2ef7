//! The contract as a library: keys, digests and version rules that agents and the daemon must
//! agree on.

use baton::contract::validate::{self, sha256_hex};
use baton::contract::{json, Limits};

#[test]
fn the_key_without_id_is_the_sha256_of_workspace_nul_canonical_json_whatever_the_formatting() {
    let a =
        br#"{"task_id":"t","from_agent":"a","handoff_version":"1","context":{"b":1,"a":[1,2]}}"#;
    let b = b"{\n  \"handoff_version\": \"1\",\n  \"context\": {\"a\": [1, 2], \"b\": 1},\n  \"from_agent\": \"a\",\n  \"task_id\": \"t\"\n}";
    let (a, b) = (
        validate::handoff(a, &Limits::default()).unwrap(),
        validate::handoff(b, &Limits::default()).unwrap(),
    );
    let canonical =
        br#"{"context":{"a":[1,2],"b":1},"from_agent":"a","handoff_version":"1","task_id":"t"}"#;
    let keyed = [b"alpha\0".as_slice(), canonical].concat();
    assert_eq!(validate::handoff_key("alpha", &a), sha256_hex(&keyed));
    assert_eq!(validate::handoff_key("alpha", &b), sha256_hex(&keyed));
    // The digest (what `decision.json` answers) is of the content alone.
    assert_eq!(a.digest, sha256_hex(canonical));
    assert_ne!(
        validate::handoff_key("beta", &a),
        validate::handoff_key("alpha", &a),
        "the same content in another workspace is another handoff"
    );
}

#[test]
fn the_key_is_the_id_when_there_is_one() {
    let doc = br#"{"handoff_version":"1.2.0","task_id":"t","from_agent":"a","id":"job:42.v1"}"#;
    let a = validate::handoff(doc, &Limits::default()).unwrap();
    assert_eq!(validate::handoff_key("alpha", &a), "job:42.v1");
}

#[test]
fn higher_minor_versions_are_accepted_and_unknown_fields_kept() {
    let doc =
        br#"{"handoff_version":"1.9","task_id":"t","from_agent":"a","future_field":{"x":[1]}}"#;
    let a = validate::handoff(doc, &Limits::default()).unwrap();
    assert_eq!(a.doc.extra["future_field"], serde_json::json!({"x": [1]}));
    assert_eq!(a.value["future_field"]["x"][0], 1);
}

#[test]
fn locate_maps_pointers_to_line_and_column() {
    let text = "{\n  \"a\": [1, {\"b/c\": true}],\n  \"d\": \"x\"\n}";
    assert_eq!(json::locate(text, ""), Some((1, 1)));
    assert_eq!(json::locate(text, "/a/1/b~1c"), Some((2, 20)));
    assert_eq!(json::locate(text, "/d"), Some((3, 8)));
    assert_eq!(
        json::locate(text, "/missing"),
        Some((1, 1)),
        "nearest ancestor"
    );
}
