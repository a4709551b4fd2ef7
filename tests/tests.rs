//! baton's integration tests: one binary, one module per area (see `util` for the harness).

mod util;

mod anchors;
mod audit;
mod auth;
mod cli;
mod confined;
mod contract;
mod corpus;
mod defects;
mod e2e;
mod failures;
mod http;
mod lifecycle;
mod operator;
mod paths;
mod signoff;
mod syncs;
mod trust;
