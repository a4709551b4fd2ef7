//! Intake: how an agent's file becomes a job for the review state machine. `crate::watch`
//! turns notify's events (or polling, for network mounts) into our own `Signal`s without
//! blocking; `scan` catches up whole workspaces at start and on rescans; `pipeline` is the dispatcher
//! (settle window, retries, rescans, periodic reconcile) and the pool of workers, one ordered
//! lane per workspace, that call into `app`. The core asks intake for work over the same
//! channel (`Signal::Repair`, `Signal::WatchDir`, `Signal::Folder`). `filing` remembers the
//! handoffs agents are uploading until their first receipt, so that receipt takes their bytes.

pub mod pipeline;
pub mod scan;
