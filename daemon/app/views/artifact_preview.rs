//! One artifact's preview, loaded lazily by the handoff page: text and code as lines, Markdown
//! as sanitized HTML, a raster image (by its magic bytes) to be fetched from its own URL, or a
//! diff against the previous revision's content or the `approved/` copy. Every read is
//! confined to the workspace and capped; whatever is wrong (missing, binary, not UTF-8, too
//! big) becomes a sentence in the preview, never a failed page.
//!
//! What is shown is what was received: the snapshot kept at receipt (`crate::blobs`), the
//! bytes an approval promotes, with a note when the workspace file changed since. Only an
//! artifact without one (past the snapshot limits, so not approvable) is shown as the file is
//! now, compared with the recorded sha256 when it is small enough to hash here.

use crate::app::model::Stamp;
use crate::app::review::attention::Opened;
use crate::app::views::artifact_raw::{open, read_head, MAX_IMAGE_BYTES};
use crate::app::views::artifact_view::{approved_path, Named, ViewError};
use crate::app::App;
use crate::auth::Actor;
use crate::blobs::MAX_BLOB_BYTES;
use crate::media::{self, ImageType, Sniffed};
use crate::render::diff::{self, LineDiff};
use crate::render::preview::{self, human_size, TextPreview};
use crate::render::{markdown, SafeHtml};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// What to diff an artifact against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// The same path in the previous revision, as it was received.
    Previous,
    /// Its promoted copy under `approved/`.
    Approved,
}

/// Where the shown content comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Exactly what was received (the snapshot, or the file unchanged since).
    Received,
    /// The file as it is now: it changed since it was received.
    Changed,
    /// The file as it is now, not compared with what was received (too big to hash here).
    Unverified,
    /// Nothing is shown.
    None,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// Lines of text or code (plain text: escape). `language`: from a fixed list.
    Text {
        #[serde(skip_serializing_if = "Option::is_none")]
        language: Option<&'static str>,
        text: TextPreview,
    },
    /// Rendered and sanitized: the one field a template may emit unescaped.
    Markdown { html: SafeHtml },
    /// A verified raster image: fetch it from the artifact URL with `?inline=image`.
    Image { mime: &'static str, size: u64 },
    /// Not shown; download it.
    Binary { size: u64 },
    Diff {
        against: Against,
        /// Plain text (escape): e.g. "revision 1: inbox/a.txt".
        old_label: String,
        new_label: String,
        diff: LineDiff,
    },
    /// Nothing to show; `reason` says why (plain text).
    Unavailable { reason: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// The artifact as the handoff names it (plain text).
    pub path: String,
    pub source: Source,
    pub body: Body,
    /// Plain sentences for the reviewer (escape): what was cut, what is odd.
    pub notes: Vec<String>,
}

/// The old side of a diff.
enum Old {
    /// Its bytes and label.
    Content(Vec<u8>, String),
    /// Known equal to the new side by digest (its label): nothing to read.
    Same(String),
    /// Nothing to compare with, and why.
    None(String),
}

/// Bytes of an artifact read for a preview.
struct Content {
    bytes: Vec<u8>,
    /// The file's whole size (`bytes` may be its head only).
    total: u64,
    source: Source,
    /// What became of the workspace file since, when a snapshot is shown (plain text).
    since: Option<String>,
}

fn unavailable(path: &str, reason: impl Into<String>) -> Preview {
    Preview {
        path: path.to_string(),
        source: Source::None,
        body: Body::Unavailable {
            reason: reason.into(),
        },
        notes: Vec::new(),
    }
}

/// Why an artifact cannot be read, as a sentence.
fn unreadable(e: &ViewError) -> String {
    match e {
        ViewError::Missing(_) => "the file is no longer in the workspace".into(),
        ViewError::NotRegular(_) => {
            "the file is now a symlink, folder or pipe (or lies behind one): not shown".into()
        }
        other => other.to_string(),
    }
}

impl App {
    /// The preview of artifact `path` (as the handoff names it) of `key`, or with `against`
    /// its diff. `NoHandoff`/`NotNamed` when there is nothing to preview; any other trouble
    /// is said in the preview.
    pub fn artifact_preview(
        &self,
        key: &str,
        path: &str,
        actor: &Actor,
        against: Option<Against>,
    ) -> Result<Preview, ViewError> {
        self.artifact_preview_as(key, path, actor, against, true)
    }

    /// `artifact_preview` for the handoff page's own script, which fetches each changed
    /// artifact's diff on load to show it inline: that fetch is not the reviewer opening it
    /// (they may never scroll to it), so it is not noted for the attention signals; only an
    /// explicit open (the preview or diff page, a download, the API) counts.
    pub fn artifact_preview_inline(
        &self,
        key: &str,
        path: &str,
        actor: &Actor,
        against: Option<Against>,
    ) -> Result<Preview, ViewError> {
        self.artifact_preview_as(key, path, actor, against, false)
    }

    fn artifact_preview_as(
        &self,
        key: &str,
        path: &str,
        actor: &Actor,
        against: Option<Against>,
        opened_by_reader: bool,
    ) -> Result<Preview, ViewError> {
        let named = self.named(key, actor)?;
        if !named.artifacts.iter().any(|a| a.path == path) {
            return Err(ViewError::NotNamed(path.to_string()));
        }
        let stamp = named.stamp(path).cloned();
        let (shown, opened) = match against {
            None => (
                self.preview(&named, path, stamp.as_ref()),
                Opened::Artifact(path),
            ),
            Some(against) => (
                self.diff(&named, path, stamp.as_ref(), against),
                Opened::Diff(path),
            ),
        };
        // What the reviewer opened, for the attention signals of their decision: of the
        // revision this read served.
        if opened_by_reader {
            self.cx().attend_served(actor, key, named.revision, opened);
        }
        Ok(shown)
    }

    fn preview(&self, named: &Named, path: &str, stamp: Option<&Stamp>) -> Preview {
        let content = match self.content(named, path, stamp, preview::MAX_BYTES as u64) {
            Ok(content) => content,
            Err(e) => return unavailable(path, unreadable(&e)),
        };
        let mut notes: Vec<String> = content.since.into_iter().collect();
        match content.source {
            Source::Changed => notes.push(
                "the file changed since it was received: this is the file as it is now".into(),
            ),
            Source::Unverified => notes.push(
                "the file as it is now, not compared here with what was received (see its check)"
                    .into(),
            ),
            _ => {}
        }
        let complete = content.bytes.len() as u64 >= content.total;
        let image = media::image_type(&content.bytes);
        if image.is_none() && media::kind_by_name(path) == media::MediaKind::Image {
            notes.push("named like an image, but its bytes are not PNG, JPEG, GIF or WebP".into());
        }
        let body = if let Some(image) = image {
            image_body(image, content.total, &mut notes)
        } else if media::sniff(&content.bytes, complete) == Sniffed::Binary {
            notes.push("binary content is not shown: download it".into());
            Body::Binary {
                size: content.total,
            }
        } else if media::kind_by_name(path) == media::MediaKind::Markdown {
            let mut text = preview::text(&content.bytes, content.total);
            notes.append(&mut text.notes);
            Body::Markdown {
                html: markdown::render(&text.lines.join("\n")),
            }
        } else {
            let mut text = preview::text(&content.bytes, content.total);
            notes.append(&mut text.notes);
            if media::language(path) == Some("xml") {
                notes.push("markup is shown as text, never rendered".into());
            }
            Body::Text {
                language: media::language(path),
                text,
            }
        };
        Preview {
            path: path.to_string(),
            source: content.source,
            body,
            notes,
        }
    }

    fn diff(&self, named: &Named, path: &str, stamp: Option<&Stamp>, against: Against) -> Preview {
        let new_label = format!("revision {}: {path}", named.revision);
        let (old, old_label) = match self.old_side(named, path, stamp, against) {
            Old::Content(bytes, label) => (bytes, label),
            Old::Same(old_label) => {
                return Preview {
                    path: path.to_string(),
                    source: Source::Received,
                    body: Body::Diff {
                        against,
                        old_label,
                        new_label,
                        diff: LineDiff::same(),
                    },
                    notes: vec!["unchanged since the previous revision".into()],
                }
            }
            Old::None(why) => return unavailable(path, why),
        };
        let new = match self.content(named, path, stamp, MAX_BLOB_BYTES) {
            Ok(new) if new.total <= MAX_BLOB_BYTES => new,
            Ok(new) => {
                let size = human_size(new.total);
                return unavailable(path, format!("the file is {size}, too big to compare here"));
            }
            Err(e) => return unavailable(path, unreadable(&e)),
        };
        if !media::is_text_like(&old) || !media::is_text_like(&new.bytes) {
            return unavailable(path, "binary content is not compared");
        }
        let mut notes: Vec<String> = new.since.into_iter().collect();
        if new.source == Source::Changed {
            notes.push("the file changed since it was received: compared as it is now".into());
        }
        if std::str::from_utf8(&old).is_err() || std::str::from_utf8(&new.bytes).is_err() {
            notes.push("not valid UTF-8: the bytes that are not are shown as \u{FFFD}".into());
        }
        let old_text = String::from_utf8_lossy(&old);
        let mut diff = diff::diff(&old_text, &String::from_utf8_lossy(&new.bytes));
        notes.append(&mut diff.notes);
        Preview {
            path: path.to_string(),
            source: new.source,
            body: Body::Diff {
                against,
                old_label,
                new_label,
                diff,
            },
            notes,
        }
    }

    /// The old side of a diff: the previous revision's snapshot, or the approved copy.
    fn old_side(&self, named: &Named, path: &str, stamp: Option<&Stamp>, against: Against) -> Old {
        let before = named.revision.saturating_sub(1);
        match against {
            Against::Previous => {
                let Some(previous) = &named.previous else {
                    return Old::None(match named.revision {
                        1 => "this is the handoff's first revision".into(),
                        _ => format!("the artifacts of revision {before} were not recorded"),
                    });
                };
                let Some(stamp) = stamp else {
                    return Old::None("this artifact was not recorded when received".into());
                };
                let Some(old) = previous.iter().find(|p| p.path == stamp.path) else {
                    let now = named.revision;
                    return Old::None(format!(
                        "new in revision {now}: revision {before} did not have it"
                    ));
                };
                let label = format!("revision {before}: {path}");
                if old.sha256 == stamp.sha256 {
                    return Old::Same(label);
                }
                let size = old.identity.size;
                if size > MAX_BLOB_BYTES {
                    let size = human_size(size);
                    return Old::None(format!(
                        "revision {before}'s {path} is {size}, too big to compare here"
                    ));
                }
                match self.inner.common.blobs.head(&old.sha256, size, size) {
                    Some(bytes) => Old::Content(bytes, label),
                    None => Old::None(format!("the content of revision {before} was not kept")),
                }
            }
            Against::Approved => {
                let copy = approved_path(path);
                // The approved copy as promoted (kept in data_dir), when baton promoted it:
                // approved/ itself may be mid-tampering, before it is restored.
                if let Some(f) = self.cx().approved_files(&named.ws).get(&copy) {
                    if f.size > MAX_BLOB_BYTES {
                        let size = human_size(f.size);
                        return Old::None(format!("{copy} is {size}, too big to compare here"));
                    }
                    if let Some(bytes) = self.inner.common.blobs.get_pinned(&f.sha256, f.size) {
                        return Old::Content(bytes, copy);
                    }
                }
                let file = named.ws.workspace.root.join(&copy);
                match read_head(named, &file, copy.clone(), MAX_BLOB_BYTES) {
                    Ok((bytes, total)) if total <= MAX_BLOB_BYTES => Old::Content(bytes, copy),
                    Ok((_, total)) => {
                        let size = human_size(total);
                        Old::None(format!("{copy} is {size}, too big to compare here"))
                    }
                    Err(ViewError::Missing(_)) => Old::None(format!("no approved copy at {copy}")),
                    Err(e) => Old::None(unreadable(&e)),
                }
            }
        }
    }

    /// What became of an artifact's file since its snapshot was taken, if anything: one open,
    /// no read.
    fn since(&self, named: &Named, path: &str, stamp: Option<&Stamp>) -> Option<String> {
        let stamp = stamp?;
        let now = open(named, &named.file(path, Some(stamp)), path);
        let changed = match now {
            Ok((_, identity)) if identity == stamp.identity => false,
            Ok((_, identity)) => self
                .inner
                .common.hashes
                .get(&identity)
                .is_none_or(|digest| digest != stamp.sha256),
            Err(ViewError::Missing(_)) => {
                return Some("the file is gone from the workspace; shown as it was received".into())
            }
            Err(ViewError::NotRegular(_)) => return Some(
                "the file in the workspace is now a symlink, folder or pipe (or lies behind one); shown as it was received".into(),
            ),
            Err(e) => return Some(format!("{e}; shown as it was received")),
        };
        changed.then(|| {
            "the file in the workspace was written since it was received; shown as it was received"
                .into()
        })
    }

    /// An artifact's content, at most `limit` bytes of it (and one more, to tell a cut): the
    /// snapshot kept at receipt, else (none kept) the file now, compared with its stamp when
    /// that is cheap.
    fn content(
        &self,
        named: &Named,
        path: &str,
        stamp: Option<&Stamp>,
        limit: u64,
    ) -> Result<Content, ViewError> {
        let blobs = &self.inner.common.blobs;
        let kept = stamp.and_then(|s| Some((blobs.head(&s.sha256, s.identity.size, limit)?, s)));
        if let Some((bytes, s)) = kept {
            let total = s.identity.size;
            let since = self.since(named, path, stamp);
            return Ok(Content {
                bytes,
                total,
                source: Source::Received,
                since,
            });
        }
        let file = named.file(path, stamp);
        let (file, identity) = open(named, &file, path)?;
        let mut bytes = Vec::new();
        let read = file.take(limit + 1).read_to_end(&mut bytes);
        read.map_err(|e| ViewError::Io(path.to_string(), e))?;
        let source = match stamp {
            None => Source::Unverified,
            Some(s) if s.identity == identity => Source::Received,
            Some(s) => match self.inner.common.hashes.get(&identity) {
                Some(digest) => same(&digest, s),
                // Whole and small: hashed here (a few hundred KiB at most), and remembered.
                None if bytes.len() as u64 == identity.size => {
                    let digest = crate::contract::validate::sha256_hex(&bytes);
                    self.inner
                        .common
                        .hashes
                        .put(identity.clone(), digest.clone());
                    same(&digest, s)
                }
                None => Source::Unverified,
            },
        };
        Ok(Content {
            bytes,
            total: identity.size,
            source,
            since: None,
        })
    }
}

fn same(digest: &str, stamp: &Stamp) -> Source {
    if digest == stamp.sha256 {
        Source::Received
    } else {
        Source::Changed
    }
}

fn image_body(image: ImageType, size: u64, notes: &mut Vec<String>) -> Body {
    if size > MAX_IMAGE_BYTES {
        notes.push(format!(
            "an image of {}, too big to show here: download it",
            human_size(size)
        ));
        return Body::Binary { size };
    }
    Body::Image {
        mime: image.mime(),
        size,
    }
}
