use super::*;

fn ws() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let ws = crate::workspace::init(&dir.path().join("w")).unwrap();
    (dir, ws)
}

fn req(path: &str, owner: &str, ttl_s: u64) -> Request {
    Request {
        path: path.into(),
        owner: owner.into(),
        ttl_s,
        purpose: Some(format!("{owner} edits")),
    }
}

fn rel(path: &str, owner: &str, token: Option<u64>) -> Release {
    Release {
        path: path.into(),
        owner: owner.into(),
        token,
        admin: None,
        reason: None,
    }
}

#[test]
fn another_owner_is_refused_with_the_holder_named() {
    let (_d, ws) = ws();
    let a = acquire(&ws, &req("inbox/a.md", "a", 60)).unwrap();
    let err = acquire(&ws, &req("./inbox/a.md", "b", 60)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("locked by a") && text.contains("a edits"),
        "{text}"
    );
    assert!(text.contains(&a.expires_at), "{text}");
    assert!(matches!(err, LockError::Held { .. }));
}

#[test]
fn the_owner_renews_with_the_same_token_and_tokens_grow() {
    let (_d, ws) = ws();
    let first = acquire(&ws, &req("inbox/a.md", "a", 60)).unwrap();
    let again = acquire(&ws, &req("inbox/a.md", "a", 600)).unwrap();
    assert!(again.renewed && !first.renewed);
    assert_eq!(first.token, again.token);
    assert!(again.expires_at > first.expires_at);
    release(&ws, &rel("inbox/a.md", "a", Some(first.token))).unwrap();
    let next = acquire(&ws, &req("inbox/a.md", "b", 60)).unwrap();
    assert!(next.token > first.token);
}

#[test]
fn an_expired_lock_is_taken_over_and_its_stale_token_refused() {
    let (_d, ws) = ws();
    let old = acquire(&ws, &req("inbox/a.md", "a", 1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let new = acquire(&ws, &req("inbox/a.md", "a", 60)).unwrap();
    assert!(new.token > old.token && !new.renewed);
    let err = release(&ws, &rel("inbox/a.md", "a", Some(old.token))).unwrap_err();
    assert!(matches!(err, LockError::NotYours { .. }), "{err}");
    let journal = read(&ws).unwrap().unwrap().journal;
    let changes: Vec<Change> = journal.iter().map(|e| e.change).collect();
    assert_eq!(
        changes,
        [Change::Acquired, Change::Expired, Change::Acquired]
    );
    assert_eq!(journal[1].reason.as_deref(), Some("taken over by a"));
    release(&ws, &rel("inbox/a.md", "a", Some(new.token))).unwrap();
    assert!(list(&ws).unwrap().is_empty());
}

#[test]
fn only_an_admin_releases_another_owners_lock_and_is_recorded() {
    let (_d, ws) = ws();
    acquire(&ws, &req("inbox/a.md", "a", 60)).unwrap();
    assert!(release(&ws, &rel("inbox/a.md", "b", None)).is_err());
    let mut by_admin = rel("inbox/a.md", "b", None);
    by_admin.admin = Some("root".into());
    release(&ws, &by_admin).unwrap();
    let last = read(&ws).unwrap().unwrap().journal.pop().unwrap();
    assert_eq!(
        (last.change, last.by.as_deref()),
        (Change::Released, Some("root"))
    );
}

#[test]
fn a_damaged_table_is_set_aside_and_tokens_still_grow() {
    let (_d, ws) = ws();
    let old = acquire(&ws, &req("inbox/a.md", "a", 60)).unwrap();
    std::fs::write(table_path(&ws), b"{ not json").unwrap();
    // Tokens of a new table start at the clock's milliseconds.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let new = acquire(&ws, &req("inbox/a.md", "b", 60)).unwrap();
    assert!(new.token > old.token);
    let aside = std::fs::read_dir(ws.baton_dir().join(LOCKS_DIR)).unwrap();
    assert!(aside.flatten().any(|e| e
        .file_name()
        .to_string_lossy()
        .starts_with("table.json.damaged-")));
}
