//! What one webhook sender can take from the server: connections, time and memory.
//!
//! One [`Limits`] is built from `railyard run`'s flags and shared (`Arc`) by the accept loop
//! ([`super::serve`]) and the webhook router ([`super::router`]); nothing copies its values.

use std::time::Duration;

/// Largest count a limit may be set to (a bigger one is refused, so a typo cannot make a
/// semaphore panic or the limit meaningless).
pub const MAX_COUNT: usize = 1_000_000;

/// Longest timeout a limit may be set to (one day: far beyond any sensible value, and far
/// from the overflow of `Instant + Duration`).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The server's resource limits. Every field is positive; [`Limits::check`] says which is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. Over it, new connections wait in the listen backlog (not
    /// accepted, so not read) until a served one closes.
    pub max_connections: usize,
    /// Request bodies read at once before their sender is authenticated (routes without an
    /// API key: signature-only or open), server-wide. Peak memory of such reads is at most
    /// this many times the largest route `max_body`.
    pub max_unauthenticated_reads: usize,
    /// How long a request waits for an unauthenticated-read permit before it is answered 503
    /// with `Retry-After` (the platform retries; nothing is lost).
    pub read_permit_wait: Duration,
    /// From a connection's start, or the end of its previous response, until the request's
    /// headers are complete; then the connection is closed (HTTP/1 header read timeout).
    pub header_timeout: Duration,
    /// From the end of the headers until the body is read; then 408 and the connection is
    /// closed (the read permit, if any, is given back).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_unauthenticated_reads: 64,
            read_permit_wait: Duration::from_secs(1),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// The first field out of range, as `name: reason`.
    pub fn check(&self) -> Result<(), String> {
        for (name, n) in [
            ("max_connections", self.max_connections),
            ("max_unauthenticated_reads", self.max_unauthenticated_reads),
        ] {
            check_count(n).map_err(|e| format!("{name}: {e}"))?;
        }
        for (name, d) in [
            ("read_permit_wait", self.read_permit_wait),
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
        ] {
            check_timeout(d).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

/// A count limit is 1 to [`MAX_COUNT`].
pub fn check_count(n: usize) -> Result<usize, String> {
    match n {
        0 => Err("must be at least 1 (0 would refuse everything)".to_string()),
        n if n > MAX_COUNT => Err(format!("must be at most {MAX_COUNT}")),
        n => Ok(n),
    }
}

/// A timeout is above zero and at most [`MAX_TIMEOUT`].
pub fn check_timeout(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be longer than 0 (e.g. `10s`)".to_string())
    } else if d > MAX_TIMEOUT {
        Err("must be at most 24h".to_string())
    } else {
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_zero_or_huge_values_do_not() {
        assert_eq!(Limits::default().check(), Ok(()));
        let zero = Limits {
            max_connections: 0,
            ..Limits::default()
        };
        assert!(
            zero.check()
                .is_err_and(|e| e.starts_with("max_connections: must be at least 1"))
        );
        let zero = Limits {
            body_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(zero.check().is_err_and(|e| e.starts_with("body_timeout")));
        assert!(check_count(MAX_COUNT + 1).is_err());
        assert!(check_timeout(MAX_TIMEOUT + Duration::from_secs(1)).is_err());
        assert_eq!(check_count(1), Ok(1));
    }
}
