//! Keeping the daemon going: loading each workspace's state at start (`load`, `recover`,
//! `published_copies`), which workspaces this daemon serves (`serving`, `leases` in a cluster,
//! `group_modes`), the housekeeping driven by due times (`agenda`, `housekeeping`), the
//! outbox's workers (`notify`), tampering alerts (`alerts`) and what the core asks of the
//! ingest thread (`intake_asks`).

pub(in crate::app) mod agenda;
pub(in crate::app) mod alerts;
pub(in crate::app) mod group_modes;
pub(in crate::app) mod housekeeping;
pub(in crate::app) mod intake_asks;
pub(in crate::app) mod leases;
pub(in crate::app) mod load;
pub(in crate::app) mod notify;
pub(in crate::app) mod published_copies;
pub(in crate::app) mod recover;
pub(in crate::app) mod serving;
