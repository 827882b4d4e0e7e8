//! The schedule input: a message on a fixed interval (`every: 5m`) or a cron schedule
//! (`cron: "0 */15 * * * *"`), for pipelines that poll an API. Times are UTC.
//!
//! `every` ticks a fixed interval after the *previous tick* (not after the work finished),
//! so a slow poll does not make the schedule drift: the caller keeps the time of the last
//! tick and asks [`Schedule::next_after`] for the next one. A tick missed while the runtime
//! was down is not replayed; the first tick is `next_after(start)`.
//!
//! Cron expressions (5, 6 or 7 fields, Unix day-of-week numbers, `@hourly` and the other
//! shorthands) are parsed by [`railyard_core::project::cron::parse_cron`], the parser
//! `validate` checks them with, so an expression that validates is one that runs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use railyard_core::model::pipeline::ScheduleInput;
use serde_json::{Map, Value};

/// A pipeline's `schedule:` input.
#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    body: Value,
}

#[derive(Clone, Debug)]
enum Kind {
    Every(Duration),
    Cron(Box<railyard_core::project::cron::CronSchedule>),
}

impl Schedule {
    /// Exactly one of `every` (longer than zero) or `cron` (a valid expression).
    pub fn from_config(config: &ScheduleInput) -> Result<Schedule, String> {
        let kind = match (&config.every, &config.cron) {
            (Some(e), None) if e.value.0.is_zero() => {
                return Err("`every` must be longer than zero".to_string());
            }
            (Some(e), None) => Kind::Every(e.value.0),
            (None, Some(c)) => Kind::Cron(Box::new(parse_cron(&c.value)?)),
            _ => return Err("a schedule needs exactly one of `every` or `cron`".to_string()),
        };
        Ok(Schedule {
            kind,
            body: config
                .body
                .clone()
                .unwrap_or_else(|| Value::Object(Map::new())),
        })
    }

    /// The first tick strictly after `t`; `None` when there is none (a cron whose years are
    /// all past). `every` always has one: `t + every`.
    pub fn next_after(&self, t: SystemTime) -> Option<SystemTime> {
        match &self.kind {
            Kind::Every(d) => t.checked_add(*d),
            Kind::Cron(c) => {
                let t: DateTime<Utc> = t.into();
                let next = c.after(&t).next()?;
                let secs = u64::try_from(next.timestamp()).ok()?;
                UNIX_EPOCH.checked_add(Duration::from_secs(secs))
            }
        }
    }

    /// The body of each emitted message: the configured `body`, or `{}`.
    pub fn body(&self) -> Value {
        self.body.clone()
    }
}

/// Parses a cron expression: the core's parser, the same one `validate` checks with (see
/// [`railyard_core::project::cron`]).
pub use railyard_core::project::cron::parse_cron;
