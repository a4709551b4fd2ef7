//! The raw download: headers that keep a browser from rendering it, verified images for the
//! page, and nothing served but the files the handoff names, inside the workspace.

use super::{get_raw, submit};
use crate::util::TestEnv;
use baton_web::artifacts::artifact_url;
use serde_json::json;
use std::os::unix::fs::symlink;

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[test]
fn downloads_are_attachments_a_browser_never_renders() {
    let mut env = TestEnv::new();
    let ws = env.ws("alpha");
    let d = env.start();
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let files: &[(&str, &[u8])] = &[
        ("inbox/r\u{e9}sum\u{e9} 1.txt", b"hello\n"),
        ("inbox/page.html", page),
        ("inbox/pixel.png", PNG),
        (
            "inbox/logo.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
        ),
        ("inbox/fake.png", b"not an image at all"),
    ];
    submit(&d, &ws, "dl", files, json!({}), 1);
    let token = Some(d.token.as_str());

    let got = get_raw(
        &d,
        &artifact_url("dl", "inbox/r\u{e9}sum\u{e9} 1.txt", false),
        token,
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"hello\n");
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert_eq!(
        got.header("content-disposition"),
        "attachment; filename=\"r_sum_ 1.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.txt"
    );
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(got.header("content-security-policy"), "sandbox");
    assert_eq!(got.header("content-length"), "6");
    assert_eq!(got.header("x-baton-check"), "ok");

    // HTML is a download like any other file, never a page of baton's origin.
    let got = get_raw(&d, &artifact_url("dl", "inbox/page.html", false), token);
    assert_eq!((got.status, &got.body[..]), (200, &page[..]));
    assert_eq!(got.header("content-type"), "application/octet-stream");
    assert!(got.header("content-disposition").starts_with("attachment;"));

    // An image for the page: by its magic bytes, with its real type, still sandboxed.
    let got = get_raw(&d, &artifact_url("dl", "inbox/pixel.png", true), token);
    assert_eq!((got.status, &got.body[..]), (200, PNG));
    assert_eq!(got.header("content-type"), "image/png");
    assert!(got.header("content-disposition").starts_with("inline;"));
    assert_eq!(got.header("x-content-type-options"), "nosniff");
    assert_eq!(got.header("content-security-policy"), "sandbox");
    for not_an_image in ["inbox/logo.svg", "inbox/fake.png", "inbox/page.html"] {
        let got = get_raw(&d, &artifact_url("dl", not_an_image, true), token);
        assert_eq!(got.status, 415, "{not_an_image}");
        assert!(
            String::from_utf8_lossy(&got.body).contains("is not a PNG, JPEG, GIF or WebP image")
        );
    }
    let got = get_raw(
        &d,
        "/handoffs/dl/artifacts/inbox/pixel.png?inline=html",
        token,
    );
    assert_eq!(got.status, 422);

    // Signed-in callers only.
    let got = get_raw(&d, &artifact_url("dl", "inbox/page.html", false), None);
    assert_eq!(got.status, 401);
    assert!(got.body.is_empty() || !String::from_utf8_lossy(&got.body).contains("script"));
}

#[test]
fn nothing_but_the_named_artifacts_inside_the_workspace_is_served() {
    let agent = baton::auth::token_hash("beta-agent");
    let config =
        format!("[[agents]]\nname = \"b\"\ntoken_sha256 = \"{agent}\"\nworkspaces = [\"beta\"]\n");
    let mut env = TestEnv::with_config(&config);
    let ws = env.ws("alpha");
    let outside = env.root().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(env.root().join("secret.txt"), "TOP SECRET").unwrap();
    std::fs::write(outside.join("c.txt"), "TOP SECRET").unwrap();
    let d = env.start();
    let files: &[(&str, &[u8])] = &[
        ("inbox/a.txt", b"a\n"),
        ("inbox/b.txt", b"b\n"),
        ("inbox/sub/c.txt", b"c\n"),
    ];
    submit(&d, &ws, "trav", files, json!({}), 1);
    let token = Some(d.token.as_str());
    let refused = |target: &str, status: u16| {
        let got = get_raw(&d, target, token);
        assert_eq!(
            got.status,
            status,
            "{target}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert!(
            !String::from_utf8_lossy(&got.body).contains("TOP SECRET"),
            "{target}"
        );
    };
    for target in [
        "/handoffs/trav/artifacts/../../../secret.txt",
        "/handoffs/trav/artifacts/inbox/../../../secret.txt",
        "/handoffs/trav/artifacts/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "/handoffs/trav/artifacts/inbox/%2E%2E/%2E%2E/%2E%2E/secret.txt",
        "/handoffs/trav/artifacts/..%2f..%2f..%2fsecret.txt",
        "/handoffs/trav/artifacts/%252e%252e/secret.txt",
        "/handoffs/trav/artifacts//etc/passwd",
        "/handoffs/trav/artifacts/%2Fetc%2Fpasswd",
        "/handoffs/trav/artifacts/inbox/a.txt%00",
        "/handoffs/trav/artifacts/inbox/a.txt%00.png",
        "/handoffs/trav/artifacts/%00",
        "/handoffs/trav/artifacts/inbox/./a.txt",
        "/handoffs/trav/artifacts/inbox//a.txt",
        "/handoffs/trav/artifacts/handoff.json",
        "/handoffs/trav/artifacts/.baton/events.jsonl",
        "/handoffs/trav/artifacts/inbox/%ff%fe",
        "/handoffs/nobody/artifacts/inbox/a.txt",
    ] {
        refused(target, 404);
    }
    // A caller who may not see the workspace is told nothing more than "not found".
    let got = get_raw(
        &d,
        "/handoffs/trav/artifacts/inbox/a.txt",
        Some("beta-agent"),
    );
    assert_eq!(got.status, 404);
    assert_eq!(
        get_raw(&d, "/handoffs/trav/artifacts/inbox/a.txt", token).status,
        200
    );

    // After receipt the agent swaps a named file, then a folder, for links out.
    std::fs::remove_file(ws.join("inbox/b.txt")).unwrap();
    symlink(env.root().join("secret.txt"), ws.join("inbox/b.txt")).unwrap();
    std::fs::remove_dir_all(ws.join("inbox/sub")).unwrap();
    symlink(&outside, ws.join("inbox/sub")).unwrap();
    refused("/handoffs/trav/artifacts/inbox/b.txt", 403);
    refused("/handoffs/trav/artifacts/inbox/sub/c.txt", 403);
    refused("/handoffs/trav/artifacts/inbox/b.txt?inline=image", 403);
    let listed = super::listed(&d, "trav");
    for path in ["inbox/b.txt", "inbox/sub/c.txt"] {
        assert_eq!(listed[path]["check"], "missing", "{path}: {}", listed[path]);
        let (status, preview) = d.get(&format!("/api/v1/handoffs/trav/previews/{path}"));
        // Shown as received (kept at receipt), and said what became of the file.
        assert_eq!(status, 200);
        assert_eq!(preview["source"], "received", "{preview}");
        assert!(
            preview["notes"][0]
                .as_str()
                .unwrap()
                .starts_with("the file in the workspace is now a symlink"),
            "{preview}"
        );
        assert!(!preview.to_string().contains("TOP SECRET"));
    }
    assert_eq!(listed["inbox/a.txt"]["check"], "ok");
    // And a file removed is simply gone.
    std::fs::remove_file(ws.join("inbox/a.txt")).unwrap();
    refused("/handoffs/trav/artifacts/inbox/a.txt", 404);
}
