//! The artifact list, previews and diffs, and the timeline's data, as the handoff page gets
//! them (through the JSON views, which call the same core methods).

use super::{get_raw, listed, submit};
use crate::util::{bytes, handoff, write_atomic, TestEnv};
use serde_json::{json, Value};

const NOTES_1: &[u8] = b"# Plan\n\nstep one\nstep two\n";
const NOTES_2: &[u8] = b"# Plan\n\nstep one\nstep 2 <script>alert(1)</script>\nstep three\n";

fn lines_of(diff: &Value) -> Vec<(String, String)> {
    diff["hunks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["lines"].as_array().unwrap().clone())
        .map(|l| {
            (
                l["kind"].as_str().unwrap().into(),
                l["text"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn a_changed_artifact_is_diffed_against_the_previous_revision() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let binary: &[u8] = b"\0\x01\x02binary\0";
    let first: &[(&str, &[u8])] = &[
        ("inbox/notes.md", NOTES_1),
        ("inbox/same.txt", b"same\n"),
        ("inbox/data.bin", binary),
    ];
    submit(&d, &ws, "diffed", first, json!({}), 1);
    // Every artifact is kept as received, by sha256, in data_dir (binary ones too).
    let blob = |bytes: &[u8]| {
        let sha = baton::contract::validate::sha256_hex(bytes);
        env.root().join("data/blobs").join(&sha[..2]).join(sha)
    };
    assert_eq!(std::fs::read(blob(NOTES_1)).unwrap(), NOTES_1);
    assert_eq!(std::fs::read(blob(binary)).unwrap(), binary);
    let list = listed(&d, "diffed");
    assert_eq!(list["inbox/notes.md"]["check"], "ok");
    assert_eq!(list["inbox/notes.md"]["kind"], "markdown");
    assert_eq!(
        list["inbox/notes.md"]["note"], "<b>see</b>",
        "plain text, as written"
    );
    assert_eq!(list["inbox/data.bin"]["kind"], "binary");
    assert!(
        list["inbox/notes.md"].get("previous").is_none(),
        "revision 1"
    );
    let (_, preview) = d.get("/api/v1/handoffs/diffed/previews/inbox/notes.md?against=previous");
    assert_eq!(
        preview["body"]["reason"],
        "this is the handoff's first revision"
    );

    // The agent rewrites a file, adds one, and sends the handoff again: revision 2.
    let second: &[(&str, &[u8])] = &[
        ("inbox/notes.md", NOTES_2),
        ("inbox/same.txt", b"same\n"),
        ("inbox/data.bin", binary),
        ("inbox/new.txt", b"new\n"),
    ];
    submit(&d, &ws, "diffed", second, json!({"summary": "v2"}), 2);
    let list = listed(&d, "diffed");
    let previous = |p: &str| list[p]["previous"].as_str().unwrap().to_string();
    assert_eq!(previous("inbox/notes.md"), "changed");
    assert_eq!(previous("inbox/same.txt"), "unchanged");
    assert_eq!(previous("inbox/data.bin"), "unchanged");
    assert_eq!(previous("inbox/new.txt"), "new");

    let (status, preview) =
        d.get("/api/v1/handoffs/diffed/previews/inbox/notes.md?against=previous");
    assert_eq!(status, 200, "{preview}");
    let body = &preview["body"];
    assert_eq!(body["kind"], "diff", "{preview}");
    assert_eq!(body["old_label"], "revision 1: inbox/notes.md");
    assert_eq!(body["new_label"], "revision 2: inbox/notes.md");
    assert_eq!(
        (
            body["diff"]["added"].as_u64(),
            body["diff"]["removed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let lines = lines_of(&body["diff"]);
    assert!(
        lines.contains(&("removed".into(), "step two".into())),
        "{lines:?}"
    );
    // Plain text, for the template to escape.
    assert!(lines.contains(&("added".into(), "step 2 <script>alert(1)</script>".into())));
    assert!(lines.contains(&("context".into(), "step one".into())));

    let (_, same) = d.get("/api/v1/handoffs/diffed/previews/inbox/same.txt?against=previous");
    assert_eq!(same["body"]["diff"]["identical"], true, "{same}");
    let (_, new) = d.get("/api/v1/handoffs/diffed/previews/inbox/new.txt?against=previous");
    assert_eq!(
        new["body"]["reason"],
        "new in revision 2: revision 1 did not have it"
    );

    // The Markdown preview is sanitized HTML.
    let (_, md) = d.get("/api/v1/handoffs/diffed/previews/inbox/notes.md");
    let html = md["body"]["html"].as_str().unwrap();
    assert!(
        html.contains("<h1>Plan</h1>") && !html.contains("<script"),
        "{html}"
    );
    assert_eq!(md["source"], "received");
    let (_, bin) = d.get("/api/v1/handoffs/diffed/previews/inbox/data.bin");
    assert_eq!(bin["body"]["kind"], "binary");

    // Edited after receipt: the check finds it (hashed in the background), while previews
    // and diffs keep showing what was received.
    std::fs::write(
        ws.join("inbox/notes.md"),
        "rewritten behind the reviewer's back\n",
    )
    .unwrap();
    d.wait_until("the edit is found", || {
        listed(&d, "diffed")["inbox/notes.md"]["check"] == "mismatch"
    });
    let (_, md) = d.get("/api/v1/handoffs/diffed/previews/inbox/notes.md");
    assert!(
        md["body"]["html"].as_str().unwrap().contains("step three"),
        "{md}"
    );
    let (_, diff) = d.get("/api/v1/handoffs/diffed/previews/inbox/notes.md?against=previous");
    assert_eq!(diff["body"]["diff"]["added"], 2);
    let got = get_raw(
        &d,
        "/handoffs/diffed/artifacts/inbox/notes.md",
        Some(&d.token),
    );
    assert_eq!(got.header("x-baton-check"), "mismatch");

    // Against the approved copy, once there is one.
    let (_, none) = d.get("/api/v1/handoffs/diffed/previews/inbox/same.txt?against=approved");
    assert_eq!(
        none["body"]["reason"],
        "no approved copy at approved/same.txt"
    );
    std::fs::create_dir_all(ws.join("approved")).unwrap();
    std::fs::write(ws.join("approved/same.txt"), "older\n").unwrap();
    assert_eq!(
        listed(&d, "diffed")["inbox/same.txt"]["approved_copy"],
        true
    );
    let (_, approved) = d.get("/api/v1/handoffs/diffed/previews/inbox/same.txt?against=approved");
    assert_eq!(approved["body"]["old_label"], "approved/same.txt");
    assert_eq!(
        lines_of(&approved["body"]["diff"]),
        [
            ("removed".to_string(), "older".to_string()),
            ("added".into(), "same".into())
        ]
    );
    let (status, _) = d.get("/api/v1/handoffs/diffed/previews/inbox/same.txt?against=tomorrow");
    assert_eq!(status, 422);
    let (_, openapi) = d.get("/api/v1/openapi.json");
    for path in [
        "/api/v1/handoffs/{key}/artifacts",
        "/api/v1/handoffs/{key}/previews/{path}",
        "/api/v1/handoffs/{key}/timeline",
        "/handoffs/{key}/artifacts/{path}",
    ] {
        assert!(openapi["paths"][path]["get"].is_object(), "{path}");
    }
}

#[test]
fn bad_artifacts_still_preview_and_say_what_is_wrong() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let big: String = (0..20_000).map(|i| format!("log line {i:06}\n")).collect();
    let files: &[(&str, &[u8])] = &[
        ("inbox/latin1.txt", b"caf\xe9 cr\xe8me\n"),
        ("inbox/big.log", big.as_bytes()),
        ("inbox/fake.png", b"just text"),
        ("inbox/logo.svg", b"<svg onload=\"alert(1)\"/>"),
        ("inbox/pixel.gif", b"GIF89a\x01\0\x01\0\0\0\0;"),
        ("inbox/gone.txt", b"soon gone\n"),
    ];
    submit(&d, &ws, "bad", files, json!({}), 1);
    let preview = |path: &str| d.get(&format!("/api/v1/handoffs/bad/previews/{path}")).1;

    let p = preview("inbox/latin1.txt");
    assert_eq!(p["body"]["text"]["lines"][0], "caf\u{FFFD} cr\u{FFFD}me");
    assert!(
        p["notes"][0]
            .as_str()
            .unwrap()
            .starts_with("not valid UTF-8"),
        "{p}"
    );
    let p = preview("inbox/big.log");
    assert_eq!(p["body"]["text"]["lines"].as_array().unwrap().len(), 2000);
    assert_eq!(p["body"]["text"]["truncated"], true);
    assert_eq!(
        p["notes"][0],
        "showing the first 256.0 KiB of 312.5 KiB; download the file for the rest"
    );
    let p = preview("inbox/fake.png");
    assert_eq!(p["body"]["kind"], "text");
    assert_eq!(
        p["notes"][0],
        "named like an image, but its bytes are not PNG, JPEG, GIF or WebP"
    );
    let p = preview("inbox/logo.svg");
    assert_eq!(p["body"]["text"]["lines"][0], "<svg onload=\"alert(1)\"/>");
    assert!(p["notes"]
        .to_string()
        .contains("markup is shown as text, never rendered"));
    let p = preview("inbox/pixel.gif");
    assert_eq!(
        (p["body"]["kind"].as_str(), p["body"]["mime"].as_str()),
        (Some("image"), Some("image/gif"))
    );

    std::fs::remove_file(ws.join("inbox/gone.txt")).unwrap();
    assert_eq!(listed(&d, "bad")["inbox/gone.txt"]["check"], "missing");
    let p = preview("inbox/gone.txt");
    // Kept at receipt: still shown, as received.
    assert_eq!(
        (p["source"].as_str(), p["body"]["text"]["lines"][0].as_str()),
        (Some("received"), Some("soon gone"))
    );
    let (status, _) = d.get("/api/v1/handoffs/bad/previews/inbox/not-named.txt");
    assert_eq!(status, 404);
}

#[test]
fn a_thousand_artifacts_are_listed() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let names: Vec<String> = (0..1000)
        .map(|i| format!("inbox/many/{i:04}.txt"))
        .collect();
    let contents: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("file {i}\n").into_bytes())
        .collect();
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(contents.iter().map(Vec::as_slice))
        .collect();
    submit(
        &d,
        &ws,
        "many",
        &files,
        json!({"title": "x".repeat(60_000)}),
        1,
    );
    let list = listed(&d, "many");
    assert_eq!(list.len(), 1000);
    assert!(list
        .values()
        .all(|a| a["check"] == "ok" && a["kind"] == "text"));
    let (_, p) = d.get("/api/v1/handoffs/many/previews/inbox/many/0999.txt");
    assert_eq!(p["body"]["text"]["lines"][0], "file 999");
}

#[test]
fn the_timeline_has_the_task_s_checkpoints_and_its_stalls() {
    let mut env = TestEnv::with_config("[[routes]]\nname = \"all\"\nstall_after_s = 600\n");
    let ws = env.ws("alpha");
    let d = env.start();
    std::fs::create_dir_all(ws.join("checkpoints")).unwrap();
    for (step, at) in [
        (1, "2025-01-01T09:00:00Z"),
        (2, "2025-01-01T09:05:00Z"),
        (3, "2025-01-01T11:05:00Z"),
    ] {
        let checkpoint = json!({"checkpoint_version": "1", "task_id": "task-tl", "step": step, "at": at,
                                "summary": format!("step {step} <done>")});
        write_atomic(
            &ws.join(format!("checkpoints/{step:03}.json")),
            &bytes(&checkpoint),
        );
    }
    let other = json!({"checkpoint_version": "1", "task_id": "another", "step": 9});
    write_atomic(&ws.join("checkpoints/other.json"), &bytes(&other));
    d.wait_until("checkpoints read", || {
        crate::util::event_types(&ws)
            .iter()
            .filter(|t| *t == "checkpoint.written")
            .count()
            == 4
    });
    write_atomic(&ws.join("handoff.json"), &bytes(&handoff("tl")));
    d.wait_until("tl pending", || {
        d.handoffs("pending").iter().any(|h| h["key"] == "tl")
    });
    let (status, timeline) = d.get("/api/v1/handoffs/tl/timeline");
    assert_eq!(status, 200, "{timeline}");
    let steps: Vec<u64> = timeline["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3]);
    assert_eq!(timeline["points"][0]["summary"], "step 1 <done>");
    assert_eq!(timeline["stall_after_s"], 600);
    let stalls = timeline["stalls"].as_array().unwrap();
    assert_eq!(
        (
            stalls[0]["after_step"].as_u64(),
            stalls[0]["before_step"].as_u64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(stalls[0]["silent_s"], 7200);
    // From the last checkpoint to the handoff, written now: silent too.
    assert_eq!(stalls.len(), 2);
    assert!(stalls[1].get("before_step").is_none(), "absent, never null");
    assert_eq!(d.get("/api/v1/handoffs/nobody/timeline").0, 404);
}
