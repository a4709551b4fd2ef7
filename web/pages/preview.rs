//! `/handoffs/{key}/preview/{*path}[?against=previous|approved]`: one artifact shown safely
//! (text and code as escaped lines, Markdown sanitized, images by magic bytes, a diff), with
//! the notes that say what was cut or changed. The core decides what is shown
//! (`App::artifact_preview`); this only lays it out.

use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton::app::{Against, App, Body, Preview, ViewError};
use baton::render::diff::LineKind;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PreviewQuery {
    against: Option<Against>,
    /// `1`: fetched by the handoff page's script to show inline, not opened by the reviewer.
    inline: Option<String>,
}

#[derive(Template)]
#[template(path = "preview.html")]
struct PreviewPage {
    chrome: Chrome,
    key: String,
    p: Preview,
    image_url: String,
    download: String,
}

impl PreviewPage {
    fn sign(&self, k: &LineKind) -> &'static str {
        sign(k)
    }
}

/// The class of a diff line.
pub fn sign(k: &LineKind) -> &'static str {
    match k {
        LineKind::Added => "add",
        LineKind::Removed => "del",
        LineKind::Context => "ctx",
    }
}

pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path((key, path)): Path<(String, String)>,
    Query(q): Query<PreviewQuery>,
) -> Response {
    let (k, p, actor) = (key.clone(), path.clone(), s.actor.clone());
    let inline = q.inline.as_deref() == Some("1");
    let shown = crate::blocking(move || match inline {
        true => app.artifact_preview_inline(&k, &p, &actor, q.against),
        false => app.artifact_preview(&k, &p, &actor, q.against),
    })
    .await;
    match shown {
        Ok(Ok(p)) => render(&PreviewPage {
            chrome: Chrome::new(&s, "queue"),
            image_url: crate::artifacts::artifact_url(&key, &path, true),
            download: crate::artifacts::artifact_url(&key, &path, false),
            key,
            p,
        }),
        Ok(Err(e @ (ViewError::NoHandoff(_) | ViewError::NotNamed(_)))) => {
            (StatusCode::NOT_FOUND, e.to_string()).into_response()
        }
        Ok(Err(e)) => (StatusCode::CONFLICT, e.to_string()).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
    }
}
