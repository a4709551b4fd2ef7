//! `baton restore FILE`: a `baton backup` archive put in place as data_dir. Only into a
//! missing or empty data_dir, so a restore can never mix two histories; the daemon is then
//! started on it and finishes, as after a crash, any change the archive caught half-made.

use super::backup::{refuse_cluster, MARKER};
use anyhow::Context;
use baton::config::Config;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

pub fn restore(file: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    refuse_cluster(&config, "restore")?;
    let data_dir = &config.data_dir;
    let occupied = std::fs::read_dir(data_dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        anyhow::bail!(
            "{}: data_dir {} is not empty: stop the daemon and move it aside (mv {0} {0}.old), then restore again",
            config.source_name,
            data_dir.display()
        );
    }
    baton::private::restrict_umask();
    let archive =
        std::fs::File::open(file).with_context(|| format!("{}: cannot open", file.display()))?;
    let mut archive = tar::Archive::new(archive);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(false);
    let mut entries = archive
        .entries()
        .with_context(|| format!("{}: not a tar archive", file.display()))?;
    check_marker(file, entries.next())?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("data_dir {}: cannot create", data_dir.display()))?;
    let mut files = 0;
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{}: damaged archive", file.display()))?;
        let path = entry.path()?.into_owned();
        // unpack_in refuses a path that would land outside data_dir (absolute, or with ..).
        if !entry
            .unpack_in(data_dir)
            .with_context(|| format!("{}: cannot restore {}", file.display(), path.display()))?
        {
            anyhow::bail!(
                "{}: {} would land outside data_dir; this is not an archive baton made",
                file.display(),
                path.display()
            );
        }
        files += usize::from(entry.header().entry_type().is_file());
    }
    for line in baton::private::repair(data_dir) {
        err!("baton: {line}");
    }
    out!("baton: restored {files} files into {}; start the daemon, then run `baton audit verify DIR` on each workspace", data_dir.display());
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        out!(
            "baton: restored as root: give data_dir to the daemon's user (chown -R baton: {})",
            data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first entry must be the marker `baton backup` writes.
fn check_marker<R: Read>(
    file: &Path,
    first: Option<std::io::Result<tar::Entry<'_, R>>>,
) -> anyhow::Result<()> {
    let not_ours = || {
        anyhow::anyhow!(
            "{}: not an archive `baton backup` wrote (no {MARKER} first)",
            file.display()
        )
    };
    let mut entry = first.ok_or_else(not_ours)??;
    if entry.path()?.as_os_str() != MARKER {
        return Err(not_ours());
    }
    let mut text = String::new();
    entry.read_to_string(&mut text)?;
    let marker: serde_json::Value = serde_json::from_str(&text).map_err(|_| not_ours())?;
    if marker["baton_backup"] != 1 {
        anyhow::bail!(
            "{}: a backup of another format ({}); restore it with the baton that made it",
            file.display(),
            marker["baton_backup"]
        );
    }
    Ok(())
}
