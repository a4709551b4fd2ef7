//! baton: a daemon that turns a shared folder into a human-in-the-loop staging area for agents.
//!
//! # Layout
//! Three crates, with arrows the compiler checks: the `baton` command (daemon/main.rs,
//! daemon/cli/: argument parsing, `run` composing the daemon) -> `baton-web` (web/: router,
//! thin handlers, pages, SSE, OpenAPI) -> this core. Inside the core, the modules stand in
//! layers, listed below from the top (a blank line between layers): a module uses only the
//! layers below its own, so no two modules import each other (`tests/layout.rs` checks it).
//!
//! The flow: an agent's file -> `watch` -> intake (`scan`, `pipeline`) -> the review state
//! machine (`app`: one commit per transition in the `store`, its event in the `audit` log,
//! its notifications in the `outbox`, its text in the search `index`) -> `decision.json` in
//! the workspace, and the pages and API of `baton-web`.
//!
//! - `intake`: `scan` (catch-up of whole workspaces at start and on rescans, on several
//!   threads), `pipeline` (a dispatcher: settle window, retries, rescans, periodic
//!   reconcile; and a pool of workers, one ordered lane per workspace).
//!
//! - `app`: the review state machine behind the `App` handle, from the bottom up: `model`
//!   (the record's types, importing no sibling) and `state`; `review`, the transitions
//!   (receive, revise, invalid, decide, quorum, claim, route, assign, timers, approved work,
//!   ...), methods of a context (`Cx`: configuration, metrics, the workspaces, where changes
//!   go) that lends them no more of the app, each one commit in the `store`; `views`, the
//!   read models for pages, API, MCP and CLI (order and pages, the queue, details, artifact
//!   views, export), which change nothing; `runtime`, loading state at start, which
//!   workspaces are served, the housekeeping.
//! - `evidence`: evidence packs for auditors (log slices, Merkle root, signed manifest).
//!
//! - `cluster`: several daemons over one share: the database's schema and migrations, leases
//!   with epochs that fence every write, fair shares by rendezvous hashing, the store's and the
//!   audit anchors' rows, and `baton cluster status`.
//!
//! - `login`: passwords (argon2id), server-side sessions and a throttle, for the pages.
//! - `passkeys`: reviewers' WebAuthn passkeys (webauthn-rs) in data_dir, and the ceremonies
//!   that register them and confirm an approval on a `step_up = "passkey"` route.
//!
//! - `audit`: the hash-chained `.baton/events.jsonl`, anchored in data_dir, its tampering
//!   recorded, and how far its events reached the outbox.
//! - `auth`: bearer tokens -> `Actor`.
//! - `heartbeat`: `.baton/daemon.json` (written once, naming the daemon's life lock), so
//!   agents' commands can tell no daemon serves them.
//! - `outbox`: notifications of events to webhooks and by email: a durable spool in data_dir,
//!   one worker thread per channel, signed attempts retried on a schedule, dead letters.
//! - `search`: the indexer thread and queries for a caller, over `index`.
//!
//! - `blobs`: snapshots of small text artifacts by sha256 in data_dir (a cache, for diffs).
//! - `config`: baton.toml -> validated `Config` (errors name the file and key).
//! - `locks`: advisory locks on workspace files (the table in `.baton/locks/`, fs4-guarded,
//!   fencing tokens, expiry); used the same by the CLI and the daemon.
//! - `metrics`: Prometheus.
//! - `receipts`: the daemon's Ed25519 signing keys and the receipt each decision carries.
//! - `store`: the daemon's records of each workspace, out of agents' reach, behind one seam
//!   (`store::Backend`) with two backends: files in data_dir (a change of several files is one
//!   commit: an intent renamed into place) and PostgreSQL rows (`cluster`).
//!
//! - `documents`: state of the whole daemon that belongs to no workspace (grants, keys,
//!   passkeys, push subscriptions, chat post places), one JSON document per name: data_dir
//!   files on one daemon, rows every node reads in a cluster (`cluster::documents`).
//!
//! - `events`: the event types. `policy`: route policies as CEL expressions (auto-approve,
//!   shadow) and their hashes. `routing`: routes and who may decide.
//! - `workspace`: the only code that touches a workspace tree: layout, discovery, safe paths,
//!   limited reads, atomic writes; every fsync of the daemon, counted (`workspace::fsync`).
//!
//! - Leaves, importing nothing of the crate: `contract` (handoff/checkpoint/decision types,
//!   parsing under limits, JSON and YAML, validation with pointed errors, JSON Schemas
//!   generated from the types, the export line, the A2A mapping; no I/O); `index` (tantivy:
//!   schema, writer, query parsing, snippets); `render` (pure rendering of untrusted content:
//!   text previews, Markdown sanitized, diffs, the checkpoint timeline as SVG; no I/O);
//!   `watch` (notify or polling -> our own `Signal`s, the callback never blocks); `startup`
//!   (what a start found wrong, typed: fatal or warning; what, where, what to do); `private`
//!   (data_dir is owner-only); `blocking` (core work run from async code on the blocking
//!   pool; a task that panicked is a typed error); `clock` (the one wall clock every time
//!   that decides behaviour is read from; a debug build lets tests move it); `host` (this
//!   machine's name); `media` (what a file is: text, image by magic bytes, binary).

pub mod app;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod blocking;
pub mod chat;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod contract;
pub mod documents;
pub mod events;
pub mod evidence;
pub mod heartbeat;
pub mod host;
pub mod index;
pub mod intake;
pub mod locks;
pub mod login;
pub mod media;
pub mod metrics;
pub mod outbox;
pub mod passkeys;
pub mod policy;
pub mod private;
pub mod push;
pub mod receipts;
pub mod render;
pub mod routing;
pub mod search;
pub mod startup;
pub mod store;
pub mod watch;
pub mod workspace;
