//! Posted forms: `application/x-www-form-urlencoded` bodies (repeated names kept, for the
//! queue's checkboxes) and the CSRF check every form post passes before anything is done.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton::login::SignedIn;

/// The hidden field that carries the session's CSRF token in every form.
pub const CSRF_FIELD: &str = "csrf";

pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A field left empty counts as absent.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether the form carries this session's CSRF token. Without it nothing is changed: the
    /// post may come from another site through the person's browser.
    pub fn csrf_ok(&self, s: &SignedIn) -> bool {
        self.get(CSRF_FIELD)
            .is_some_and(|t| crate::auth::same(t, &s.csrf))
    }
}

/// The answer to a form posted without a valid CSRF token.
pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        "This form expired or did not come from baton's own page; nothing was changed. \
         Go back, reload the page and submit it again.",
    )
        .into_response()
}
