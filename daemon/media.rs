//! What an artifact is, judged without trusting its name where it matters: raster images by
//! their magic bytes (never by extension), text by its content (no NUL bytes, few control
//! characters), and the name only for hints (Markdown, a code language). Pure, no I/O.

use serde::Serialize;

/// How the handoff page shows an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Plain text, shown as lines.
    Text,
    /// Source code or structured text, shown as lines (see `language`).
    Code,
    /// Rendered as sanitized HTML.
    Markdown,
    /// PNG, JPEG, GIF or WebP (by name in the list; the preview checks the magic bytes).
    Image,
    /// Not shown; offered for download only.
    Binary,
    /// Nothing in the name says; the preview decides from the content.
    Unknown,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Text => "text",
            MediaKind::Code => "code",
            MediaKind::Markdown => "markdown",
            MediaKind::Image => "image",
            MediaKind::Binary => "binary",
            MediaKind::Unknown => "unknown",
        }
    }
}

/// The extension of the last component of `path`, lower-cased.
fn extension(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The kind a file's name suggests. SVG is code (XML), never an image: it can hold scripts.
pub fn kind_by_name(path: &str) -> MediaKind {
    let Some(ext) = extension(path) else {
        return MediaKind::Unknown;
    };
    match ext.as_str() {
        "md" | "markdown" | "mdown" | "mkd" => MediaKind::Markdown,
        "png" | "jpg" | "jpeg" | "gif" | "webp" => MediaKind::Image,
        "txt" | "log" | "text" | "csv" | "tsv" | "out" | "err" => MediaKind::Text,
        "zip" | "gz" | "tgz" | "bz2" | "xz" | "zst" | "7z" | "tar" | "pdf" | "exe" | "dll"
        | "so" | "dylib" | "bin" | "o" | "a" | "class" | "jar" | "wasm" | "ico" | "bmp" | "tif"
        | "tiff" | "mp3" | "mp4" | "mov" | "avi" | "woff" | "woff2" | "ttf" | "otf" | "sqlite"
        | "db" | "parquet" => MediaKind::Binary,
        _ if language(path).is_some() => MediaKind::Code,
        _ => MediaKind::Unknown,
    }
}

/// A language name for a code file, from a fixed list (safe to use as a CSS class suffix).
pub fn language(path: &str) -> Option<&'static str> {
    let ext = extension(path)?;
    Some(match ext.as_str() {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" | "tsx" => "typescript",
        "go" => "go",
        "java" => "java",
        "kt" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "cpp",
        "cs" => "csharp",
        "rb" => "ruby",
        "php" => "php",
        "swift" => "swift",
        "sh" | "bash" | "zsh" => "shell",
        "sql" => "sql",
        "json" | "jsonl" => "json",
        "toml" => "toml",
        "yaml" | "yml" => "yaml",
        "xml" | "svg" | "html" | "htm" => "xml",
        "css" => "css",
        "diff" | "patch" => "diff",
        "ini" | "cfg" | "conf" => "ini",
        _ => return None,
    })
}

/// A raster image type recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageType {
    Png,
    Jpeg,
    Gif,
    Webp,
}

impl ImageType {
    /// The MIME type it is served with.
    pub fn mime(self) -> &'static str {
        match self {
            ImageType::Png => "image/png",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
        }
    }
}

/// Bytes of a file's head that `image_type` needs.
pub const MAGIC_BYTES: usize = 16;

/// The raster image type whose signature `head` starts with, if any.
pub fn image_type(head: &[u8]) -> Option<ImageType> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageType::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageType::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(ImageType::Gif)
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some(ImageType::Webp)
    } else {
        None
    }
}

/// What a file's content is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// Valid UTF-8 text.
    Utf8,
    /// Text, but not UTF-8 (Latin-1, say, or UTF-8 cut mid-character): shown lossily.
    NotUtf8,
    /// Not text: an image, an archive, or anything with NUL bytes or many control characters.
    Binary,
}

/// Bytes of a file's head that `sniff` looks at.
pub const SNIFF_BYTES: usize = 8192;

/// Judges `bytes` (a file's head) as text or binary. `complete`: `bytes` is the whole file, so
/// a UTF-8 character cut at the end is an error in the file rather than in the cut.
pub fn sniff(bytes: &[u8], complete: bool) -> Sniffed {
    let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if image_type(head).is_some() || head.contains(&0) {
        return Sniffed::Binary;
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B))
        .count();
    // A few stray control bytes happen in logs; a tenth of them is no text.
    if control * 10 > head.len() {
        return Sniffed::Binary;
    }
    match std::str::from_utf8(head) {
        Ok(_) => Sniffed::Utf8,
        // Cut inside a character by the head's end (not an error of the file itself).
        Err(e) if e.error_len().is_none() && (!complete || head.len() < bytes.len()) => {
            Sniffed::Utf8
        }
        Err(_) => Sniffed::NotUtf8,
    }
}

/// Whether a blob of these bytes is worth keeping as a snapshot: text of any encoding.
pub fn is_text_like(bytes: &[u8]) -> bool {
    sniff(bytes, true) != Sniffed::Binary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_magic_bytes_not_by_name() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some(ImageType::Png));
        assert_eq!(image_type(b"\xFF\xD8\xFF\xE0"), Some(ImageType::Jpeg));
        assert_eq!(image_type(b"GIF89a"), Some(ImageType::Gif));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageType::Webp));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(kind_by_name("inbox/logo.svg"), MediaKind::Code);
        assert_eq!(kind_by_name("inbox/a.PNG"), MediaKind::Image);
        assert_eq!(kind_by_name("inbox/notes.md"), MediaKind::Markdown);
        assert_eq!(kind_by_name("inbox/.hidden"), MediaKind::Unknown);
        assert_eq!(kind_by_name("inbox/Makefile"), MediaKind::Unknown);
        assert_eq!(language("x/fix.diff"), Some("diff"));
    }

    #[test]
    fn text_and_binary_are_told_apart_by_content() {
        assert_eq!(sniff(b"hello\nworld\n", true), Sniffed::Utf8);
        assert_eq!(sniff("caf\u{e9}".as_bytes(), true), Sniffed::Utf8);
        assert_eq!(sniff(b"caf\xe9 au lait", true), Sniffed::NotUtf8);
        assert_eq!(sniff(b"a\0b", true), Sniffed::Binary);
        assert_eq!(sniff(b"\x01\x02\x03\x04abc", true), Sniffed::Binary);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest", true), Sniffed::Binary);
        // A head cut in the middle of a character is still UTF-8; a whole file ending so is not.
        let cut = &"\u{e9}".as_bytes()[..1];
        let text = [b"abc".as_slice(), cut].concat();
        assert_eq!(sniff(&text, false), Sniffed::Utf8);
        assert_eq!(sniff(&text, true), Sniffed::NotUtf8);
        assert_eq!(sniff(b"", true), Sniffed::Utf8);
    }
}
