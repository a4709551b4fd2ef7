//! baton's integration tests: one binary, one module per area (see `util` for the harness).

mod util;

mod a2a;
mod agent_docs;
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
mod edits;
mod export;
mod failures;
mod http;
mod lifecycle;
mod mcp;
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
mod yaml;
