//! An artifact's bytes for download (or, verified by its magic bytes, as an image for the
//! page): only files the handoff names. What is sent is the snapshot kept at receipt
//! (`crate::blobs`), the very bytes whose sha256 was recorded and that an approval promotes,
//! never the file in the workspace as it is now; the workspace file is still opened confined
//! (no symlink on the way or at the end), so a file gone or swapped for a link is refused, and
//! its identity gives the `check` of the live file. Only an artifact without a snapshot (past
//! the snapshot limits: it cannot be approved) is sent from the workspace, no more than its
//! size when opened, so a file that keeps growing cannot keep a response open forever.

use crate::app::review::attention::Opened;
use crate::app::views::artifact_view::{Check, Named, ViewError};
use crate::app::App;
use crate::auth::Actor;
use crate::media::{self, ImageType};
use crate::workspace::{Identity, ReadError};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Largest artifact downloaded through the daemon (as much as it hashes for one handoff).
/// Largest image served inline for the page (bigger ones are offered for download).
pub const MAX_IMAGE_BYTES: u64 = 16 << 20;

pub const MAX_RAW_BYTES: u64 = crate::app::review::artifacts::MAX_HASH_BYTES;

/// An open artifact to send.
#[derive(Debug)]
pub struct Raw {
    pub file: std::fs::File,
    /// Bytes to send: the size when opened.
    pub size: u64,
    /// The last component of the artifact's path (untrusted: encode it for headers).
    pub name: String,
    /// Its bytes now against what was received, as far as known without reading it.
    pub check: Check,
    /// Set for `artifact_image`: the type its magic bytes say.
    pub image: Option<ImageType>,
}

impl App {
    /// Artifact `path` (as the handoff names it) of `key`, opened for download.
    pub fn artifact_raw(&self, key: &str, path: &str, actor: &Actor) -> Result<Raw, ViewError> {
        self.open_artifact(key, path, actor, MAX_RAW_BYTES)
    }

    /// Like `artifact_raw`, for a raster image the page shows: refused unless its magic bytes
    /// say PNG, JPEG, GIF or WebP (never by its name; SVG is never served as an image).
    pub fn artifact_image(&self, key: &str, path: &str, actor: &Actor) -> Result<Raw, ViewError> {
        let mut raw = self.open_artifact(key, path, actor, MAX_IMAGE_BYTES)?;
        let mut head = [0u8; media::MAGIC_BYTES];
        // Positioned read: the file offset stays at 0 for the response body.
        let got = raw
            .file
            .read_at(&mut head, 0)
            .map_err(|e| ViewError::Io(path.to_string(), e))?;
        raw.image = media::image_type(&head[..got]);
        match raw.image {
            Some(_) => Ok(raw),
            None => Err(ViewError::NotAnImage(path.to_string())),
        }
    }

    fn open_artifact(
        &self,
        key: &str,
        path: &str,
        actor: &Actor,
        limit: u64,
    ) -> Result<Raw, ViewError> {
        let named = self.named(key, actor)?;
        if !named.artifacts.iter().any(|a| a.path == path) {
            return Err(ViewError::NotNamed(path.to_string()));
        }
        let stamp = named.stamp(path);
        let (live, identity) = open(&named, &named.file(path, stamp), path)?;
        let blobs = &self.inner.common.blobs;
        let kept = stamp.and_then(|s| Some((blobs.open(&s.sha256, s.identity.size)?, s)));
        let (file, size) = match kept {
            Some((snapshot, s)) => (snapshot, s.identity.size),
            None => (live, identity.size),
        };
        if size > limit {
            return Err(ViewError::TooLarge {
                path: path.to_string(),
                size,
                limit,
            });
        }
        let check = match stamp {
            None => Check::Unchecked,
            Some(s) if s.identity == identity => Check::Ok,
            Some(s) => match self.inner.common.hashes.get(&identity) {
                Some(digest) if digest == s.sha256 => Check::Ok,
                Some(_) => Check::Mismatch,
                None => Check::Unchecked,
            },
        };
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path).to_string();
        // A download (or the page's image) is an opened artifact, for attention signals.
        self.cx()
            .attend_served(actor, key, named.revision, Opened::Artifact(path));
        Ok(Raw {
            file,
            size,
            name,
            check,
            image: None,
        })
    }
}

/// Opens a workspace file confined, as `ViewError`s naming `shown`.
pub(in crate::app) fn open(
    named: &Named,
    file: &Path,
    shown: &str,
) -> Result<(std::fs::File, Identity), ViewError> {
    match named.ws.workspace.open_regular(file) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(ViewError::Missing(shown.to_string())),
        Err(ReadError::NotRegular) => Err(ViewError::NotRegular(shown.to_string())),
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(ViewError::NotRegular(shown.to_string()))
        }
        Err(e) => Err(ViewError::Io(
            shown.to_string(),
            std::io::Error::other(e.to_string()),
        )),
    }
}

/// At most `limit` bytes of a workspace file, and its size.
pub(in crate::app) fn read_head(
    named: &Named,
    file: &Path,
    shown: String,
    limit: u64,
) -> Result<(Vec<u8>, u64), ViewError> {
    let (file, identity) = open(named, file, &shown)?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| ViewError::Io(shown, e))?;
    Ok((bytes, identity.size))
}
