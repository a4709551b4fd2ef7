//! The contract of SPEC sections 3-5: handoff, checkpoint and decision types, parsing under
//! limits, validation with pointed errors, and the JSON Schemas generated from the types.
//! Pure: no file or network I/O here.

pub mod a2a;
pub mod attention;
pub mod checkpoint;
pub mod decision;
pub mod export;
pub mod handoff;
pub mod json;
pub mod names;
pub mod nulls;
pub mod problem;
pub mod promoted;
pub mod receipt;
pub mod request;
pub mod schema;
pub mod validate;
pub mod yaml;

pub use checkpoint::Checkpoint;
pub use decision::{Decision, Outcome, SignOff};
pub use handoff::Handoff;
pub use json::Limits;
pub use problem::Problem;
