//! Chat apps' interactions, free of HTTP: checking that a request is Slack's (`signature`),
//! refusing one seen before (`replay`), and reading a button click into what it asks
//! (`slack`). The app maps the click to a reviewer and decides through the one decision path
//! (`app::runtime::chat`); the web layer only hands the request over. `socket` receives the
//! same interactions over Slack's Socket Mode.

pub mod replay;
pub mod signature;
pub mod slack;
pub mod socket;

pub use replay::Seen;
pub use signature::{verify, SignatureError, WINDOW_S};
pub use slack::{Click, ClickError};
