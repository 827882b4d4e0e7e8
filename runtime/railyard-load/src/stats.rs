//! Small helpers: percentiles, rates, summaries.

use std::time::Duration;

/// `q`-quantile (0..=1) of sorted samples, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Seconds, to the millisecond.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

pub fn rate(n: u64, over: Duration) -> f64 {
    if over.is_zero() {
        return 0.0;
    }
    (n as f64 / over.as_secs_f64() * 10.0).round() / 10.0
}

pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Prints the summary: JSON on stdout, `what: key=value ...` on stderr.
pub fn report(what: &str, summary: &serde_json::Value) {
    let mut human = format!("{what}:");
    if let Some(map) = summary.as_object() {
        for (k, v) in map {
            if !v.is_object() && !v.is_array() {
                human.push_str(&format!(" {k}={v}"));
            }
        }
    }
    eprintln!("{human}");
    println!("{summary}");
}

/// The sequence number at the end of `<prefix><seq>`, when `id` has that prefix.
pub fn seq_of(id: &str, prefix: &str) -> Option<u64> {
    id.strip_prefix(prefix)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        assert_eq!(seq_of("load-7-42", "load-7-"), Some(42));
        assert_eq!(seq_of("other-42", "load-7-"), None);
    }
}
