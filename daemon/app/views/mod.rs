//! Read models: what pages, the API, MCP and the CLI read, computed from the workspaces'
//! state and never changing it (a view may note what a reader saw: `seen`). Each keeps its own
//! cache or ordering, updated as transitions announce changes: `order` and `paging` (the list
//! in its order, a page at a time), `listing` and `queue` (the reviewer's queue), `overview`
//! (workspace and events pages), `history` (the events, newest first, a page at a time),
//! `query` (detail and summaries), the artifact views, `changes` and `earlier_answers`,
//! `timeline`, `a2a`, `search`, `agreement`, and the offline readers `export` and `replay`.

pub(in crate::app) mod a2a;
pub(in crate::app) mod agreement;
pub(in crate::app) mod artifact_preview;
pub(in crate::app) mod artifact_raw;
pub(in crate::app) mod artifact_view;
pub(in crate::app) mod changes;
pub(in crate::app) mod earlier_answers;
pub mod export;
pub(in crate::app) mod history;
pub(in crate::app) mod listing;
pub(in crate::app) mod order;
pub(in crate::app) mod overview;
pub(in crate::app) mod paging;
pub(in crate::app) mod query;
pub(in crate::app) mod queue;
pub(in crate::app) mod queue_order;
pub mod replay;
pub(in crate::app) mod search;
pub(in crate::app) mod seen;
pub(in crate::app) mod timeline;
pub(in crate::app) mod workspace_files;
