//! Every regular file under a folder of a workspace with its size and mtime, for the search
//! indexer to tell what changed. Confined like every other access: no symlink is followed and
//! nothing outside the workspace is reached; depth and count are bounded. A sub-folder (or a
//! file) that cannot be read for another reason than being gone (EACCES, EIO) is named apart,
//! not left out as if it were empty: what it held is unknown, not removed.

use super::confined::{names, present, walk};
use cap_std::fs::Dir;
use std::io;
use std::path::Path;

/// One file, by its path relative to the workspace ('/'-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub path: String,
    pub size: u64,
    /// Modification time, unix nanoseconds.
    pub mtime_ns: i128,
}

/// What a listing found.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<FileStat>,
    /// Paths under the listed one (relative to the workspace, '/'-separated) that could not
    /// be read, with why: a folder whose files are unknown, or a file whose size and time are.
    pub unlisted: Vec<(String, io::Error)>,
}

const MAX_DEPTH: usize = 32;

/// The regular files under `rel` (a file or a folder), at most `max` of them; names that are
/// not UTF-8 are skipped (they cannot be named in a hit). `rel` missing: none. `Err`: `rel`
/// itself could not be read; a part under it that could not is in `Listing::unlisted`.
pub(super) fn files(root: &Path, rel: &Path, max: usize) -> io::Result<Listing> {
    let parts = names(rel)?;
    let prefix: Vec<String> = parts
        .iter()
        .filter_map(|p| p.to_str().map(str::to_string))
        .collect();
    let mut out = Listing::default();
    if prefix.len() != parts.len() {
        return Ok(out);
    }
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(out);
    };
    let parent = match walk(root, dirs, None) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        other => other?,
    };
    let meta = match parent.symlink_metadata(last) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        other => other?,
    };
    let path = prefix.join("/");
    if meta.is_file() {
        out.files.push(stat(path, &meta));
    } else if meta.is_dir() {
        let dir = walk(root, &parts, None)?;
        visit(&dir, &path, 0, max, &mut out)?;
    }
    Ok(out)
}

fn visit(dir: &Dir, prefix: &str, depth: usize, max: usize, out: &mut Listing) -> io::Result<()> {
    for entry in dir.entries()? {
        if out.files.len() >= max {
            return Ok(());
        }
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let path = format!("{prefix}/{name}");
        // The entry's own type: a symlink is neither a file nor a folder here. An entry
        // renamed or removed since the folder was read (an agent's atomic write does that to
        // its temporary file) is no longer there: skipped, not a failure of the whole folder.
        let ft = match present(entry.file_type()) {
            Ok(Some(ft)) => ft,
            Ok(None) => continue,
            Err(e) => {
                out.unlisted.push((path, e));
                continue;
            }
        };
        if ft.is_file() {
            match present(entry.metadata()) {
                Ok(Some(meta)) => out.files.push(stat(path, &meta)),
                Ok(None) => {}
                Err(e) => out.unlisted.push((path, e)),
            }
        } else if ft.is_dir() && depth + 1 < MAX_DEPTH {
            // Removed or swapped meanwhile (gone, or a link now): the next event or reconcile
            // sees it. Unreadable: its files are unknown, named apart.
            let listed = present(entry.open_dir())
                .and_then(|sub| sub.map_or(Ok(()), |sub| visit(&sub, &path, depth + 1, max, out)));
            match listed {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    tracing::debug!(path, error = %e, "not listing a folder")
                }
                Err(e) => out.unlisted.push((path, e)),
            }
        }
    }
    Ok(())
}

fn stat(path: String, meta: &cap_std::fs::Metadata) -> FileStat {
    let mtime_ns = meta
        .modified()
        .ok()
        .map(|t| t.into_std())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    FileStat {
        path,
        size: meta.len(),
        mtime_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A folder listed while an agent writes atomically in it (a temporary file made, then
    /// renamed) always lists the files already there: the temporary one vanishing between
    /// the folder's read and its stat fails nothing.
    #[test]
    fn a_file_renamed_away_during_a_listing_fails_nothing() {
        let root = tempfile::tempdir().unwrap();
        let inbox = root.path().join("inbox");
        std::fs::create_dir(&inbox).unwrap();
        std::fs::write(inbox.join("kept.txt"), b"kept").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (inbox, stop) = (inbox.clone(), stop.clone());
            std::thread::spawn(move || {
                // Many temporary files at a time, so a listing often meets one on its way.
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..32 {
                        std::fs::write(inbox.join(format!(".f{i}.tmp")), b"x").unwrap();
                    }
                    for i in 0..32 {
                        let to = inbox.join(format!("f{i}.txt"));
                        std::fs::rename(inbox.join(format!(".f{i}.tmp")), to).unwrap();
                    }
                }
            })
        };
        // Until it fails, for at most 2 s (without the skip, it failed within the first few
        // hundred listings here).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut listings = 0;
        let listed = std::iter::from_fn(|| (std::time::Instant::now() < until).then_some(()))
            .try_for_each(|_| {
                listings += 1;
                let found = files(root.path(), Path::new("inbox"), 1_000)?.files;
                match found.iter().any(|f| f.path == "inbox/kept.txt") {
                    true => Ok(()),
                    false => Err(io::Error::other(format!("kept.txt missing from {found:?}"))),
                }
            });
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        listed.unwrap_or_else(|e| panic!("listing {listings}: {e}"));
    }
}
