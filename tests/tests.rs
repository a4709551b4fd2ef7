//! baton's integration tests: one binary, one module per area (see `util` for the harness).

mod util;

mod anchors;
mod artifacts;
mod audit;
mod auth;
mod browser;
mod claim;
mod cli;
mod confined;
mod contract;
mod corpus;
mod defects;
mod e2e;
mod failures;
mod http;
mod lifecycle;
mod notify;
mod operator;
mod pages;
mod paths;
mod quorum;
mod review;
mod search;
mod signoff;
mod syncs;
mod trust;
