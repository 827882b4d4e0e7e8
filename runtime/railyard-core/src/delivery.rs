//! What happens to a message after an attempt: the one place that turns an outcome into a
//! verdict (acknowledge, retry after a delay, hold, dead-letter), for every input kind.
//!
//! The runtime's delivery driver asks [`decide`] after each attempt and carries out the
//! verdict on the message's source; connectors only say how a failure classifies
//! ([`ErrorClass`]). Pure: the clock stays outside, and the jitter is passed in, so the
//! policy is tested without waiting.
//!
//! The attempt number of a message lives with its source (a store delivery's `attempt`, an
//! AMQP `x-railyard-attempt` header, a file record's in-memory count), not in an iterator,
//! which is why the delay is a function of the attempt rather than a `backon`-style
//! iterator: a redelivered message after a restart still gets the right delay.

use std::time::Duration;

use crate::model::pipeline::{Backoff, PipelineFile};
use crate::project::Pipeline;

/// How a failed attempt classifies. Decided once, where the failure is known (an output, the
/// store, a step), never re-derived from a message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retrying cannot help: a 4xx the peer rejects, a value over a client limit, a template
    /// that cannot render, a panic in a step. The message is dead-lettered now.
    Permanent,
    /// Retrying may help (a timeout, a 5xx, a 429): it costs one of the pipeline's attempts.
    Transient,
    /// The destination is unreachable (a broker outage) or the store cannot be written: the
    /// message waits for it without spending an attempt, so an outage never dead-letters.
    Held,
}

impl ErrorClass {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Transient => "transient",
            ErrorClass::Held => "held",
        }
    }
}

/// Why an attempt did not go through: a failed output, a store that cannot be written, a
/// message another copy of which is in flight. Classified where it is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub class: ErrorClass,
    /// What the peer asked for (`Retry-After`), if anything: a floor for the next delay.
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError::of(ErrorClass::Transient, message)
    }
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError::of(ErrorClass::Permanent, message)
    }
    pub fn held(message: impl Into<String>) -> SendError {
        SendError::of(ErrorClass::Held, message)
    }
    pub fn of(class: ErrorClass, message: impl Into<String>) -> SendError {
        SendError {
            class,
            retry_after: None,
            message: message.into(),
        }
    }
    /// The same error, its message prefixed with `what` (e.g. "topic `orders`: ...").
    pub fn context(self, what: &str) -> SendError {
        SendError {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendError {}

/// A pipeline's resolved retry policy (`on_error.retry`, with the defaults filled in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (at least 1).
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// Eight attempts, exponential from 500 ms up to one minute.
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            backoff: Backoff::Exponential,
        }
    }
}

/// How long a held message waits before it is tried again.
pub const HOLD_DELAY: Duration = Duration::from_secs(1);

impl RetryPolicy {
    /// The policy of `pipeline` (resolved when it was loaded).
    pub fn of(pipeline: &Pipeline) -> RetryPolicy {
        pipeline.retry
    }

    /// The policy a pipeline file declares: its `on_error.retry`, defaults for what it leaves
    /// out.
    pub fn of_file(file: &PipelineFile) -> RetryPolicy {
        let default = RetryPolicy::default();
        let Some(retry) = file
            .on_error
            .as_ref()
            .and_then(|l| l.ok())
            .and_then(|e| e.value.retry.as_ref())
        else {
            return default;
        };
        let r = &retry.value;
        RetryPolicy {
            attempts: r.attempts.value.max(1),
            initial: r.initial.as_ref().map_or(default.initial, |d| d.value.0),
            max: r.max.as_ref().map_or(default.max, |d| d.value.0),
            backoff: r.backoff,
        }
    }

    /// The delay before the attempt after `attempt` (1-based): exponential or fixed, capped
    /// at `max`, with "equal jitter" (`jitter` in `0.0..=1.0` spreads the second half of the
    /// delay, so retries of many messages failing together do not arrive together), and never
    /// shorter than what the peer asked for (`Retry-After`).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let base = match self.backoff {
            Backoff::Exponential => self
                .initial
                .saturating_mul(1u32 << attempt.saturating_sub(1).min(20)),
            Backoff::Fixed => self.initial,
        }
        .min(self.max);
        let half = base / 2;
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let spread = half.mul_f64(jitter);
        (base - half + spread).max(retry_after.unwrap_or_default())
    }
}

/// What the driver does with a message after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every output confirmed (or the message was dropped by a step): settle the effects and
    /// acknowledge the source.
    Ack,
    /// Try again after the delay; the next attempt is `attempt + 1`.
    Retry(Duration),
    /// Try again after the delay with the same attempt number.
    Hold(Duration),
    /// Write the dead letter, then settle and acknowledge the source.
    DeadLetter,
}

/// The verdict on attempt `attempt` (1-based) of a message whose outcome was `failure`
/// (`None`: it succeeded).
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    failure: Option<(ErrorClass, Option<Duration>)>,
    jitter: f64,
) -> Verdict {
    match failure {
        None => Verdict::Ack,
        Some((ErrorClass::Permanent, _)) => Verdict::DeadLetter,
        Some((ErrorClass::Held, retry_after)) => {
            Verdict::Hold(HOLD_DELAY.max(retry_after.unwrap_or_default()))
        }
        Some((ErrorClass::Transient, _)) if attempt >= policy.attempts => Verdict::DeadLetter,
        Some((ErrorClass::Transient, retry_after)) => {
            Verdict::Retry(policy.delay(attempt, retry_after, jitter))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn success_acks_and_permanent_failure_dead_letters_on_the_first_attempt() {
        let p = policy(5);
        assert_eq!(decide(&p, 1, None, 0.5), Verdict::Ack);
        assert_eq!(
            decide(&p, 1, Some((ErrorClass::Permanent, None)), 0.5),
            Verdict::DeadLetter
        );
    }

    #[test]
    fn transient_failures_retry_until_the_last_attempt_then_dead_letter() {
        let p = policy(3);
        let t = Some((ErrorClass::Transient, None));
        assert!(matches!(decide(&p, 1, t, 0.0), Verdict::Retry(_)));
        assert!(matches!(decide(&p, 2, t, 0.0), Verdict::Retry(_)));
        assert_eq!(decide(&p, 3, t, 0.0), Verdict::DeadLetter);
        assert_eq!(decide(&p, 9, t, 0.0), Verdict::DeadLetter);
        // One attempt means no retry at all.
        assert_eq!(decide(&policy(1), 1, t, 0.0), Verdict::DeadLetter);
    }

    #[test]
    fn held_never_spends_attempts_and_never_dead_letters() {
        let p = policy(1);
        assert_eq!(
            decide(&p, 50, Some((ErrorClass::Held, None)), 0.3),
            Verdict::Hold(HOLD_DELAY)
        );
        assert_eq!(
            decide(
                &p,
                50,
                Some((ErrorClass::Held, Some(Duration::from_secs(7)))),
                0.3
            ),
            Verdict::Hold(Duration::from_secs(7))
        );
    }

    #[test]
    fn delay_doubles_with_jitter_in_the_upper_half_and_stops_at_max() {
        let p = RetryPolicy {
            attempts: 20,
            initial: Duration::from_millis(400),
            max: Duration::from_secs(3),
            backoff: Backoff::Exponential,
        };
        // Jitter 0 → half the delay; jitter 1 → the whole delay.
        assert_eq!(p.delay(1, None, 0.0), Duration::from_millis(200));
        assert_eq!(p.delay(1, None, 1.0), Duration::from_millis(400));
        assert_eq!(p.delay(2, None, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(3, None, 0.5), Duration::from_millis(1200));
        assert_eq!(p.delay(4, None, 1.0), Duration::from_secs(3));
        assert_eq!(p.delay(40, None, 1.0), Duration::from_secs(3));
        // Out-of-range jitter is clamped, not trusted.
        assert_eq!(p.delay(1, None, 7.0), Duration::from_millis(400));
        assert_eq!(p.delay(1, None, f64::NAN), p.delay(1, None, 0.0));
    }

    #[test]
    fn retry_after_is_a_floor_even_above_max() {
        let p = policy(8);
        let d = p.delay(1, Some(Duration::from_secs(120)), 0.9);
        assert_eq!(d, Duration::from_secs(120));
        let fixed = RetryPolicy {
            backoff: Backoff::Fixed,
            ..p
        };
        assert_eq!(fixed.delay(7, None, 1.0), fixed.initial);
    }
}
