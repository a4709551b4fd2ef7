//! Daemon file operations inside a workspace stay inside it, even while an agent swaps folders
//! for symlinks between the daemon's system calls (the check-then-use race of a path check).

use baton::workspace::{self, ReadError, Workspace};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// top/{ws (a workspace), outside (an empty folder an agent would like the daemon to use)}.
fn setup() -> (tempfile::TempDir, Workspace, PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let ws = workspace::init(&top.path().join("ws")).unwrap();
    let outside = top.path().canonicalize().unwrap().join("outside");
    std::fs::create_dir(&outside).unwrap();
    (top, ws, outside)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Atomically exchanges two names, as an attacker would (renameat2 RENAME_EXCHANGE).
fn exchange(a: &CString, b: &CString) -> bool {
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD needs no descriptor.
    unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        ) == 0
    }
}

#[test]
fn a_folder_swapped_for_a_symlink_mid_write_never_leads_outside() {
    let (_top, ws, outside) = setup();
    std::fs::write(outside.join("x.json"), "outside").unwrap();
    let key_dir = ws.archive_dir("k");
    std::fs::create_dir(&key_dir).unwrap();
    std::fs::write(key_dir.join("x.json"), "inside").unwrap();
    let link = ws.handoffs_dir().join("k-link");
    symlink(&outside, &link).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (a, b, stop) = (c_path(&key_dir), c_path(&link), stop.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            // Stops on failure too (the test may be unwinding); the count tells.
            while !stop.load(Ordering::Relaxed) && exchange(&a, &b) {
                swaps += 1;
            }
            // An even count puts the real folder back under its own name.
            if swaps % 2 == 1 {
                exchange(&a, &b);
            }
            swaps
        })
    };
    let target = key_dir.join("x.json");
    let (mut written, mut refused, mut read) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match ws.write(&target, b"inside") {
            Ok(()) => written += 1,
            Err(_) => refused += 1,
        }
        if let Ok(Some(bytes)) = ws.read(&target, 1024) {
            assert_eq!(bytes, b"inside", "read a file outside the workspace");
            read += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();

    assert_eq!(names(&outside), ["x.json"], "a file landed outside");
    assert_eq!(
        std::fs::read_to_string(outside.join("x.json")).unwrap(),
        "outside"
    );
    assert!(swaps > 100, "the race was hardly run: {swaps} swaps");
    assert!(
        written > 0 && read > 0,
        "{written} writes, {read} reads succeeded"
    );
    assert!(refused > 0, "the swapped-in symlink was never met");
    assert_eq!(names(&key_dir), ["x.json"], "no temp file is left behind");
}

#[test]
fn a_symlinked_archive_folder_is_refused_and_nothing_is_made_outside() {
    let (_top, ws, outside) = setup();
    let handoffs = ws.handoffs_dir();
    std::fs::remove_dir(&handoffs).unwrap();
    symlink(&outside, &handoffs).unwrap();

    let err = ws
        .write(&ws.archive_dir("new").join("meta.json"), b"{}")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(names(&outside).is_empty(), "made {:?}", names(&outside));
    let err = ws.list_dirs(&handoffs).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
    assert!(ws.list_json_in(&handoffs).is_empty());
}

#[test]
fn reads_through_a_symlinked_folder_or_of_a_symlink_are_refused() {
    let (_top, ws, outside) = setup();
    std::fs::write(outside.join("meta.json"), "{}").unwrap();
    symlink(&outside, ws.archive_dir("planted")).unwrap();
    let through = ws.read(&ws.archive_dir("planted").join("meta.json"), 1024);
    assert!(
        matches!(&through, Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied),
        "{through:?}"
    );

    symlink(outside.join("meta.json"), ws.decision_path()).unwrap();
    let link = ws.read(&ws.decision_path(), 1024);
    assert!(matches!(link, Err(ReadError::NotRegular)), "{link:?}");
    assert_eq!(
        ws.read(&ws.archive_dir("absent").join("x"), 9).unwrap(),
        None
    );
    assert_eq!(ws.read(&ws.state_path("absent.json"), 9).unwrap(), None);
}

#[test]
fn a_reader_holding_a_folder_reads_only_beneath_it_whatever_its_name_points_to_later() {
    let (_top, ws, outside) = setup();
    let (a, b) = (ws.inbox_dir().join("a"), ws.inbox_dir().join("b"));
    for (dir, name, text) in [
        (&a, "one.txt", "one"),
        (&a, "two.txt", "two"),
        (&b, "x.txt", "x"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(outside.join("two.txt"), "secret").unwrap();
    symlink(outside.join("two.txt"), b.join("link.txt")).unwrap();
    let mut files = ws.reader();
    let read = |files: &mut workspace::FolderReader, path: &Path| files.read(path, 1024);
    assert_eq!(
        read(&mut files, &a.join("one.txt")).unwrap().unwrap(),
        b"one"
    );
    // Another folder, then back: each read is of the folder its path names.
    assert_eq!(read(&mut files, &b.join("x.txt")).unwrap().unwrap(), b"x");
    assert!(matches!(
        read(&mut files, &b.join("link.txt")),
        Err(ReadError::NotRegular)
    ));
    assert_eq!(
        read(&mut files, &a.join("one.txt")).unwrap().unwrap(),
        b"one"
    );
    assert_eq!(read(&mut files, &a.join("gone.txt")).unwrap(), None);

    // The held folder is moved away and its name made a link to a folder outside: reads go
    // on beneath the real folder (still inside the workspace), never through the link.
    std::fs::rename(&a, ws.inbox_dir().join("moved")).unwrap();
    symlink(&outside, &a).unwrap();
    let held = read(&mut files, &a.join("two.txt")).unwrap().unwrap();
    assert_eq!(
        held,
        b"two",
        "read through the link: {:?}",
        String::from_utf8_lossy(&held)
    );
    // A reader that walks anew refuses the link.
    let fresh = read(&mut ws.reader(), &a.join("two.txt"));
    assert!(
        matches!(&fresh, Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied),
        "{fresh:?}"
    );
    let elsewhere = read(&mut files, &outside.join("two.txt"));
    assert!(matches!(&elsewhere, Err(ReadError::Io(_))), "{elsewhere:?}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let (_top, ws, _outside) = setup();
    let fifo = ws.state_path("seen.json");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path(&fifo).as_ptr(), 0o644) }, 0);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(ws.read(&fifo, 1024));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading a FIFO blocked");
    assert!(matches!(result, Err(ReadError::NotRegular)), "{result:?}");
}

#[test]
fn writes_make_folders_and_replace_a_symlink_instead_of_following_it() {
    let (_top, ws, outside) = setup();
    let path = ws.archive_dir("a:b").join("decision.json");
    ws.write(&path, b"one").unwrap();
    ws.write(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);

    std::fs::write(outside.join("victim"), "untouched").unwrap();
    symlink(outside.join("victim"), ws.decision_path()).unwrap();
    ws.write(&ws.decision_path(), b"decided").unwrap();
    assert_eq!(std::fs::read(ws.decision_path()).unwrap(), b"decided");
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    let elsewhere = ws.root.parent().unwrap().join("elsewhere.json");
    assert!(
        ws.write(&elsewhere, b"x").is_err(),
        "a path outside the root"
    );
    assert!(
        ws.write(&ws.root.join("a/../b.json"), b"x").is_err(),
        "a path with .."
    );
}

#[test]
fn remove_rename_and_listing_stay_inside() {
    let (_top, ws, outside) = setup();
    let dir = ws.archive_dir("k");
    ws.write(&dir.join("handoff.json"), b"1").unwrap();
    ws.rename(&dir.join("handoff.json"), &dir.join("rev-1.json"))
        .unwrap();
    assert_eq!(names(&dir), ["rev-1.json"]);
    let missing = ws.rename(&dir.join("handoff.json"), &dir.join("rev-2.json"));
    assert_eq!(missing.unwrap_err().kind(), std::io::ErrorKind::NotFound);

    ws.remove(&dir.join("rev-1.json")).unwrap();
    ws.remove(&dir.join("rev-1.json")).unwrap();
    ws.remove(&ws.archive_dir("never").join("x")).unwrap();
    assert!(names(&dir).is_empty());

    std::fs::write(outside.join("victim"), "v").unwrap();
    symlink(outside.join("victim"), ws.decision_path()).unwrap();
    ws.remove(&ws.decision_path()).unwrap();
    assert_eq!(names(&outside), ["victim"], "the link went, not its target");

    symlink(&outside, ws.archive_dir("link")).unwrap();
    std::fs::write(ws.handoffs_dir().join("file"), "").unwrap();
    ws.write(&ws.archive_dir("j").join("meta.json"), b"{}")
        .unwrap();
    assert_eq!(ws.list_dirs(&ws.handoffs_dir()).unwrap(), ["j", "k"]);
    assert!(ws.list_dirs(&ws.archive_dir("absent")).unwrap().is_empty());

    let cps = ws.checkpoints_dir();
    for name in ["b.json", "a.json", ".hidden.json", "notes.txt"] {
        std::fs::write(cps.join(name), "{}").unwrap();
    }
    assert_eq!(ws.list_json_in(&cps), ["a.json", "b.json"]);
}

#[test]
fn artifacts_are_hashed_by_their_real_path_only() {
    let (_top, ws, outside) = setup();
    std::fs::write(ws.inbox_dir().join("a.txt"), "a").unwrap();
    std::fs::write(outside.join("secret"), "s").unwrap();
    symlink(ws.inbox_dir(), ws.root.join("link_in")).unwrap();
    symlink(&outside, ws.inbox_dir().join("out")).unwrap();
    let sha_a = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
    assert_eq!(ws.sha256(&ws.inbox_dir().join("a.txt")).unwrap(), sha_a);
    let real = workspace::resolve(&ws.root, "link_in/a.txt").unwrap();
    assert_eq!(ws.sha256(&real).unwrap(), sha_a);
    for linked in ["link_in/a.txt", "inbox/out/secret"] {
        let err = ws.sha256(&ws.root.join(linked)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{linked}");
    }
    assert!(
        ws.sha256(&ws.inbox_dir()).is_err(),
        "a folder is no artifact"
    );
}

#[test]
fn the_log_is_appended_in_place_and_never_through_a_link() {
    let (_top, ws, outside) = setup();
    use std::io::Write;
    ws.open_append(&ws.events_path())
        .unwrap()
        .write_all(b"one\n")
        .unwrap();
    ws.open_append(&ws.events_path())
        .unwrap()
        .write_all(b"two\n")
        .unwrap();
    assert_eq!(std::fs::read(ws.events_path()).unwrap(), b"one\ntwo\n");

    std::fs::remove_file(ws.events_path()).unwrap();
    symlink(outside.join("events.jsonl"), ws.events_path()).unwrap();
    assert!(ws.open_append(&ws.events_path()).is_err());
    assert!(names(&outside).is_empty());

    std::fs::remove_file(ws.events_path()).unwrap();
    std::fs::write(outside.join("other"), "").unwrap();
    std::fs::hard_link(outside.join("other"), ws.events_path()).unwrap();
    assert!(ws.open_append(&ws.events_path()).is_err(), "a hard link");
}
