//! The cluster's clock: when a lease expires, whether a node is live and when a shared session
//! ends are decided by the database's time (`now()`), so no node's clock decides who holds a
//! lease. Every statement that compares such a time reads `now!()` instead of `now()`: the
//! database's time, moved by the offset of `crate::clock` while a test drives it.
//!
//! A debug build started with `BATON_TEST_CLOCK` sets `baton.clock_s` (the offset, seconds) on
//! each connection it takes from its pool, so the tests move lease time as they move every
//! other time: a lease expires, a dead node stops counting as live, its deliveries are adopted,
//! when the test says so, not after real seconds a loaded machine may stretch. All the nodes of
//! a test read one offset file, so they agree; the fencing is untouched (epochs and the
//! `FOR SHARE` check in the database, only on a moved time line). Production never sets the
//! variable, and `now!()` is then `now()` plus zero.

/// The database's time as the cluster reads it (see the module's note).
macro_rules! now {
    () => {
        "(now() + make_interval(secs => coalesce(nullif(current_setting('baton.clock_s', true), ''), '0')::float8))"
    };
}

/// A connection from the pool, on the moved time line while a test drives the clock.
pub(super) fn checkout(
    pool: &super::Pool,
) -> Result<r2d2::PooledConnection<super::Manager>, super::ClusterError> {
    let mut client = pool.get()?;
    if crate::clock::clock().is_driven() {
        let secs = crate::clock::offset().as_secs_f64();
        client.batch_execute(&format!("SET baton.clock_s = '{secs}'"))?;
    }
    Ok(client)
}
