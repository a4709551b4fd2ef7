//! Chat apps' interactions, free of the web layer: checking that a request is Slack's
//! (`signature`), refusing one seen before (`replay`), reading a button click or a form
//! submission into what it asks (`slack`), and the comment modal those clicks open (`view`).
//! The app maps the click to a reviewer and decides through the one decision path
//! (`app::runtime::chat`); the web layer only hands the request over. `socket` receives the
//! same interactions over Slack's Socket Mode.

pub mod links;
pub mod mattermost;
pub mod replay;
pub mod signature;
pub mod slack;
pub mod socket;
pub mod view;

pub use replay::Seen;
pub use signature::{verify, SignatureError, WINDOW_S};
pub use slack::{Click, ClickError, Interaction, LinkClick};
