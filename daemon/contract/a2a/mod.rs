//! baton in the Agent2Agent protocol (A2A). `v03` is the v0.3 JSON view of a handoff (the
//! `/a2a` route of a handoff and callers of the v0.3 JSON-RPC method names); `v1` the v1.0
//! shapes (protobuf JSON: `TASK_STATE_*`, `ROLE_*`, parts without `kind`) and the Agent Card;
//! `rpc` the JSON-RPC envelope and the errors the spec names. Pure: JSON in, JSON out.

pub mod rpc;
pub mod v03;
pub mod v1;

pub use v03::{handoff_of, reply, state, task};
