//! baton: a daemon that turns a shared folder into a human-in-the-loop staging area for agents.
//!
//! # Layout
//! Arrows point one way: `web -> app -> leaves`.
//! - `contract`: handoff/checkpoint/decision types, parsing under limits (JSON, and YAML for
//!   `handoff.yaml`), validation with pointed errors, JSON Schemas generated from the types,
//!   the export line and the A2A mapping. Pure, no I/O.
//! - `config`: baton.toml -> validated `Config` (errors name the file and key).
//! - `workspace`: the only code that touches a workspace tree: layout, discovery, safe paths,
//!   limited reads, atomic writes; every fsync of the daemon, counted (`workspace::fsync`).
//! - `watch`: notify (or polling) -> our own `Signal`s; the callback never blocks.
//! - `pipeline`: ingest: a dispatcher (settle window, retries, rescans, periodic reconcile) and
//!   a pool of workers, one ordered lane per workspace.
//! - `scan`: catch-up of whole workspaces (start-up and rescans), on several threads.
//! - `app`: the core state machine (receive, revise, invalid, decide, with the reviewer's
//!   edits) behind `App`; `app::export` reads the store, read-only, for `baton export`.
//! - `audit`: the hash-chained `.baton/events.jsonl`, anchored (the anchors of all workspaces
//!   made durable together in one ledger) and its tampering recorded in data_dir; `events`:
//!   the event types.
//! - `private`: data_dir is owner-only (the umask, the repair walk at start, the message
//!   another user's command gets).
//! - `store`: the daemon's records of each workspace in data_dir, out of agents' reach.
//! - `blobs`: snapshots of small text artifacts by sha256 in data_dir (a cache, for diffs).
//! - `media`: what a file is (text, image by magic bytes, binary); pure.
//! - `auth`: bearer tokens -> `Actor`; `routing`: routes and who may decide.
//! - `metrics`: Prometheus metrics.
//! - `locks`: advisory locks on workspace files (the table in `.baton/locks/`, fs4-guarded,
//!   fencing tokens, expiry); used the same by the CLI and the daemon.
//! - `outbox`: notifications of events to webhooks: a durable spool in data_dir, one worker
//!   thread per endpoint, signed attempts retried on a schedule, dead letters.
//! - `heartbeat`: `.baton/daemon.json`, so agents' commands can tell no daemon serves them.
//! - `run`: composition of the daemon: tasks, HTTP server, ordered shutdown.
//! - `web`: the HTTP surface (JSON API, SSE, health, metrics) over `App`, and `web::server`,
//!   the accept loop (connection limit, header timeout, shutdown deadline).
//! - `web::render`: pure rendering of untrusted content (text previews, Markdown sanitized,
//!   diffs, the checkpoint timeline as SVG). No I/O and no `App`: a leaf, which `app` uses
//!   to build previews, so the one exception to the arrows above.

pub mod app;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod config;
pub mod contract;
pub mod events;
pub mod heartbeat;
pub mod index;
pub mod locks;
pub mod login;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod private;
pub mod routing;
pub mod run;
pub mod scan;
pub mod search;
pub mod store;
pub mod watch;
#[path = "../web/mod.rs"]
pub mod web;
pub mod workspace;
