//! Pure rendering of untrusted content for the reviewer's handoff page: text previews cut to
//! a size, Markdown rendered and sanitized, diffs, and the checkpoint timeline as inline SVG.
//!
//! Everything an agent wrote is hostile. The one rule: only `SafeHtml` (built here, by the
//! sanitizer) and the SVG of `timeline` (every text in it escaped here) may go into a page
//! unescaped; every other string these functions return is plain text for the template to
//! escape. No I/O, no `App`: the core uses these to build previews.

pub mod diff;
mod escape;
pub mod markdown;
pub mod preview;
pub mod timeline;

pub use escape::escape_html;
pub use markdown::SafeHtml;
