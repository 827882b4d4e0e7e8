//! The schedule input: a message on a fixed interval (`every: 5m`) or a cron schedule
//! (`cron: "0 */15 * * * *"`), for pipelines that poll an API. Times are UTC.
//!
//! `every` ticks a fixed interval after the *previous tick* (not after the work finished),
//! so a slow poll does not make the schedule drift: the caller keeps the time of the last
//! tick and asks [`Schedule::next_after`] for the next one. A tick missed while the runtime
//! was down is not replayed; the first tick is `next_after(start)`.
//!
//! Cron expressions have 5, 6 or 7 fields:
//!
//! | fields | meaning |
//! | --- | --- |
//! | 5 | `min hour dom month dow` (Unix crontab; at second 0) |
//! | 6 | `sec min hour dom month dow` |
//! | 7 | `sec min hour dom month dow year` |
//!
//! `*`, lists (`1,15`), ranges (`9-17`), steps (`*/15`, `0-30/10`), names (`JAN`, `MON-FRI`)
//! and `?` for day-of-month or day-of-week. Day-of-week numbers are the Unix ones: `0` or
//! `7` is Sunday, `1` Monday … `6` Saturday. A time must match both day-of-month and
//! day-of-week (Unix cron fires when *either* matches if both are restricted).
//! `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` are accepted too.

use std::str::FromStr;
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
    Cron(Box<cron::Schedule>),
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

/// Parses a 5-, 6- or 7-field cron expression (see the module doc).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let trimmed = expr.trim();
    let invalid = |why: String| format!("invalid cron expression `{trimmed}`: {why}");
    if trimmed.starts_with('@') {
        return cron::Schedule::from_str(trimmed).map_err(|e| invalid(e.to_string()));
    }
    let mut fields: Vec<String> = trimmed.split_whitespace().map(str::to_string).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_string()),
        6 | 7 => {}
        n => {
            return Err(invalid(format!(
                "{n} fields; expected 5 (min hour dom month dow), 6 (sec min hour dom month dow) \
                 or 7 (sec min hour dom month dow year)"
            )));
        }
    }
    fields[5] = day_of_week(&fields[5]).map_err(invalid)?;
    let normalized = fields.join(" ");
    cron::Schedule::from_str(&normalized).map_err(|e| invalid(e.to_string()))
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a day-of-week field from Unix numbering (0/7 = Sunday) to the `cron` crate's
/// (1 = Sunday … 7 = Saturday) by expanding it into an explicit list of day names.
fn day_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: usize =
                    s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("day-of-week step `{s}` is not a positive number")
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = match range {
            "*" | "?" => (0, 6),
            r => match r.split_once('-') {
                Some((a, b)) => (day(a)?, day(b)?),
                None if step > 1 => (day(r)?, 6),
                None => {
                    let d = day(r)?;
                    (d, d)
                }
            },
        };
        if lo > hi {
            return Err(format!(
                "day-of-week range `{range}` runs backwards (0 or 7 is Sunday)"
            ));
        }
        for d in (lo..=hi).step_by(step) {
            days[d % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Ok("*".to_string());
    }
    Ok(DAY_NAMES
        .iter()
        .zip(days)
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(","))
}

/// A Unix day-of-week: 0..=7 or a name; 7 stays 7 so `5-7` is a range.
fn day(s: &str) -> Result<usize, String> {
    if let Ok(n) = s.parse::<usize>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!(
                "day-of-week `{n}` is out of range (0-7, 0 or 7 = Sunday)"
            ))
        };
    }
    let upper = s.to_ascii_uppercase();
    let full = [
        "SUNDAY",
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
    ];
    DAY_NAMES
        .iter()
        .position(|n| *n == upper)
        .or_else(|| full.iter().position(|n| *n == upper))
        .ok_or_else(|| format!("`{s}` is not a day of the week (0-7 or SUN-SAT)"))
}
