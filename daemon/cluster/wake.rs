//! Wake-up hints between nodes: a node that changes something shared the others act on (a
//! reviewer marked away) sends a `NOTIFY`, and every node `LISTEN`s on a connection of its own,
//! so the others act at once. A hint only saves waiting: notifications are not durable (a node
//! whose connection was down when one was sent never gets it), so every node also catches up
//! from the rows themselves at each lease round (`App::keep_leases`); nothing depends on a
//! notification arriving.

use super::Cluster;
use postgres::fallible_iterator::FallibleIterator;
use postgres::NoTls;
use std::sync::Arc;
use std::time::Duration;

/// Someone was marked away (the payload: their name).
pub const AWAY: &str = "baton_away";

impl Cluster {
    /// Calls `on` with the payload of each notification on `channel`, on a thread of its own
    /// with a connection of its own (not the pool's: a listening session stays open), made
    /// again a few seconds after it fails.
    pub fn listen(
        self: &Arc<Cluster>,
        channel: &'static str,
        on: impl Fn(String) + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let mut config = self.pg_config.clone();
        config.connect_timeout(Duration::from_secs(5));
        std::thread::Builder::new()
            .name(format!("baton-listen-{channel}"))
            .spawn(move || loop {
                match config.connect(NoTls) {
                    Ok(mut client) => match client.batch_execute(&format!("LISTEN {channel}")) {
                        Ok(()) => {
                            let mut notes = client.notifications();
                            let mut iter = notes.blocking_iter();
                            loop {
                                match iter.next() {
                                    Ok(Some(note)) => on(note.payload().to_string()),
                                    Ok(None) => break,
                                    Err(e) => {
                                        tracing::debug!(channel, error = %e, "the wake-up connection ended; the lease rounds catch up meanwhile");
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            tracing::debug!(channel, error = %e, "cannot listen for wake-ups; the lease rounds catch up meanwhile")
                        }
                    },
                    Err(e) => {
                        tracing::debug!(channel, error = %e, "cannot connect to listen for wake-ups; the lease rounds catch up meanwhile")
                    }
                }
                std::thread::sleep(Duration::from_secs(3));
            })
    }
}
