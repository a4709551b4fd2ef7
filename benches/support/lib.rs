//! What the release benches share: the daemon under test, the machine's sync latency, the
//! workspace tree the ingest and notify benches build, the closed-loop HTTP load, and the
//! daemon's SSE stream read for `handoff.received` (notify and agents).
//! A library of its own, so each bench uses what it needs and no file is compiled twice.

pub mod daemon;
pub mod disk;
pub mod load;
pub mod sse;
pub mod tree;
