//! The delivery driver's shared parts: every input asks [`verdict`] what to do after an
//! attempt (the policy itself is `railyard_core::delivery`), and a panic in a step or an
//! output is caught here and becomes a dead letter with code `internal`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use railyard_core::delivery::{RetryPolicy, Verdict, decide};
use railyard_core::project::Pipeline;

use super::outputs::SendError;

/// Runs `work`, turning a panic into its message.
pub fn catch<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|payload| panic_text(payload.as_ref()))
}

/// What a panic said (its `&str` or `String` payload).
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The verdict on attempt `attempt` of a message of `pipeline` that ended with `failure`.
pub fn verdict(pipeline: &Pipeline, attempt: u32, failure: Option<&SendError>) -> Verdict {
    decide(
        &RetryPolicy::of(pipeline),
        attempt,
        failure.map(|e| (e.class, e.retry_after)),
        fastrand::f64(),
    )
}

/// Rate-limits a repeated log line: the first now, then at most one per `EVERY`, saying how
/// many were suppressed in between.
#[derive(Default)]
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub const EVERY: Duration = Duration::from_secs(30);

    /// `Some(suppressed since the last one)` when the line should be logged now.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < Self::EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_error_is_logged_once_per_period_with_a_count() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Some(0));
        for i in 1..300u64 {
            assert_eq!(t.admit(t0 + Duration::from_millis(100 * i)), None);
        }
        assert_eq!(t.admit(t0 + Throttle::EVERY), Some(299));
        assert_eq!(t.admit(t0 + Throttle::EVERY), None);
    }

    #[test]
    fn a_panic_becomes_its_message() {
        assert_eq!(catch(|| 7), Ok(7));
        let text = catch(|| -> u8 { panic!("boom {}", 42) });
        assert_eq!(text, Err("boom 42".to_string()));
        let text = catch(|| -> u8 { std::panic::panic_any(3u8) });
        assert_eq!(text, Err("a panic without a message".to_string()));
    }
}
