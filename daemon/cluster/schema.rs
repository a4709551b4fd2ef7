//! The cluster's schema: the migrations in `migrations/`, run at start by refinery in one
//! transaction each. A database migrated by a newer baton is refused: this binary would not
//! know what its tables mean.

use super::{ClusterError, Pool};

mod embedded {
    refinery::embed_migrations!("cluster/migrations");
}

pub(super) fn migrate(pool: &Pool) -> Result<(), ClusterError> {
    let mut client = pool.get()?;
    // One node migrates at a time; the others wait here, then find the work done.
    client.execute("SELECT pg_advisory_lock(7281)", &[])?;
    let result = embedded::migrations::runner()
        .set_abort_missing(true)
        .set_abort_divergent(true)
        .run(&mut **client);
    client.execute("SELECT pg_advisory_unlock(7281)", &[])?;
    match result {
        Ok(report) => {
            for m in report.applied_migrations() {
                tracing::info!(
                    version = m.version(),
                    name = m.name(),
                    "cluster schema migrated"
                );
            }
            Ok(())
        }
        Err(e) => Err(ClusterError::Schema(schema_message(&e))),
    }
}

/// The newest version this binary knows.
pub fn known_version() -> u32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

fn schema_message(e: &refinery::Error) -> String {
    match e.kind() {
        refinery::error::Kind::MissingVersion(m) => format!(
            "the cluster's database has schema version {} ({}), newer than this baton knows (up to {}); run the newer baton on this node too",
            m.version(),
            m.name(),
            known_version()
        ),
        refinery::error::Kind::DivergentVersion(applied, ours) => format!(
            "the cluster's database has schema version {} as {:?}, which this baton knows as {:?}; the database was migrated by a different build",
            applied.version(),
            applied.name(),
            ours.name()
        ),
        _ => format!("cannot migrate the cluster's schema: {e}"),
    }
}
