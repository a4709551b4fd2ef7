//! One attempt to hand a delivery over, as the transports (webhook, mail) and the workers
//! share it: what it came to, and the clock its schedule is kept in.

use super::spool::Delivery;
use std::time::Duration;

/// What one attempt came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The receiver's status (HTTP, or the SMTP reply code), if it answered.
    pub status: Option<u16>,
    /// `None`: delivered.
    pub error: Option<String>,
    /// A webhook receiver's `Retry-After` on a 429 or 503.
    pub retry_after: Option<Duration>,
    /// `410 Gone`: the endpoint is to be disabled.
    pub gone: bool,
    /// Trying again cannot help (e.g. a mail server's 5xx for an address).
    pub permanent: bool,
}

impl Outcome {
    pub fn delivered(&self) -> bool {
        self.error.is_none()
    }
    pub fn failed(error: String) -> Outcome {
        Outcome {
            error: Some(error),
            ..Outcome::default()
        }
    }
}

/// A way to hand a delivery over: one webhook endpoint, or the mail server.
pub trait Transport: Send {
    fn send(&self, d: &Delivery) -> Outcome;
}

/// A scheduled delay in milliseconds, varied by up to ±20 % so that retries of many
/// deliveries (after an outage) spread out instead of arriving together.
pub fn delay_ms(seconds: f64) -> u64 {
    if seconds <= 0.0 {
        return 0;
    }
    (seconds * 1000.0 * rand::random_range(0.8..1.2)) as u64
}
