//! `railyard run`'s flags for the HTTP server's resource limits, into one
//! [`railyard_connectors::http::Limits`].

use std::time::Duration;

use railyard_connectors::http::{Limits, check_count, check_timeout};

/// What a webhook sender can take from the server (see SECURITY.md, "Webhook senders ↔ server
/// resources").
#[derive(clap::Args, Clone, Debug)]
pub struct HttpLimitArgs {
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, value_name = "N", default_value = "1024", env = "RAILYARD_MAX_CONNECTIONS", value_parser = count)]
    pub max_connections: usize,
    /// Webhook bodies read at once before their sender is authenticated (routes without an
    /// API key); more are answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value = "64", env = "RAILYARD_MAX_UNAUTHENTICATED_READS", value_parser = count)]
    pub max_unauthenticated_reads: usize,
    /// Time to send a request's headers (from the connection's start or the previous
    /// response); then the connection is closed.
    #[arg(long, value_name = "DURATION", default_value = "10s", env = "RAILYARD_HEADER_TIMEOUT", value_parser = timeout)]
    pub header_timeout: Duration,
    /// Time to send a request's body after its headers; then 408.
    #[arg(long, value_name = "DURATION", default_value = "30s", env = "RAILYARD_BODY_TIMEOUT", value_parser = timeout)]
    pub body_timeout: Duration,
}

impl HttpLimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_unauthenticated_reads: self.max_unauthenticated_reads,
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            ..Limits::default()
        }
    }
}

fn count(s: &str) -> Result<usize, String> {
    let n = s
        .trim()
        .parse::<usize>()
        .map_err(|_| format!("`{s}` is not a whole number"))?;
    check_count(n)
}

fn timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration like `10s` or `1m30s`: {e}"))?;
    check_timeout(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_parsed_and_zero_is_refused() {
        assert_eq!(count("64"), Ok(64));
        assert!(count("0").is_err_and(|e| e.contains("at least 1")));
        assert!(count("-1").is_err());
        assert_eq!(timeout("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("250ms"), Ok(Duration::from_millis(250)));
        assert!(timeout("0s").is_err_and(|e| e.contains("longer than 0")));
        assert!(timeout("10").is_err(), "a unit is required");
        assert!(timeout("2days").is_err(), "at most a day");
    }
}
