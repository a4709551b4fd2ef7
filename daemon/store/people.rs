//! Reviewers' state that belongs to no workspace: away marks, each assigning route's place in
//! its round, and what each reviewer last saw of each handoff. One daemon keeps them in files
//! in data_dir (`app::away`, `app::rota`, `app::seen`, which hold them in memory too); a
//! cluster keeps them as rows (`crate::cluster`), read at each use, so that every node acts on
//! the same marks: an away mark set on one node stops every node assigning to that reviewer.

use std::collections::HashMap;
use std::io;

/// What one reviewer last saw of one handoff: its revision and number of approvals.
pub type Glimpse = (u32, usize);

/// One reviewer's open claims elsewhere: how many, and how many of them a route assigned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Claims {
    pub claims: usize,
    pub assigned: usize,
}

/// The shared keeper of reviewers' state (a cluster's database).
pub trait People: Send + Sync + std::fmt::Debug {
    /// Since when `name` is away (RFC 3339); `None`: not away.
    fn away_since(&self, name: &str) -> io::Result<Option<String>>;
    /// Marks `name` away since `since`, or back (`None`).
    fn set_away(&self, name: &str, since: Option<&str>) -> io::Result<()>;
    /// The reviewer `route` assigned a new handoff to last.
    fn last_assigned(&self, route: &str) -> io::Result<Option<String>>;
    fn set_last_assigned(&self, route: &str, name: &str) -> io::Result<()>;
    /// What `name` last saw of each of `keys` they looked at.
    fn seen(&self, name: &str, keys: &[&str]) -> io::Result<HashMap<String, Glimpse>>;
    /// Records `name`'s look at `key`.
    fn look(&self, name: &str, key: &str, seen: Glimpse) -> io::Result<()>;
    /// The open claims, by holder, on pending handoffs of the workspaces this node does not
    /// hold the lease of (those it serves, it counts itself, as claims change).
    fn claims_elsewhere(&self) -> io::Result<HashMap<String, Claims>>;
}
