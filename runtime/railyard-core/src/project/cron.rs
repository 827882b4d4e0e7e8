//! Cron expressions of the `schedule:` input: the one parser that `validate` checks with and
//! the schedule connector runs with, so what validates is exactly what runs. Times are UTC.
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
//! `@hourly`, `@daily`, `@weekly` (Sundays), `@monthly`, `@yearly` are accepted too.

use std::str::FromStr;

/// A parsed cron schedule (the `cron` crate's), ready for `after(&t)`.
pub type CronSchedule = ::cron::Schedule;

/// Parses a 5-, 6- or 7-field cron expression or an `@hourly`-style shorthand (see the module
/// doc). The error is a complete sentence naming the expression.
pub fn parse_cron(expr: &str) -> Result<CronSchedule, String> {
    let trimmed = expr.trim();
    let invalid = |why: String| format!("invalid cron expression `{trimmed}`: {why}");
    if trimmed.starts_with('@') {
        return ::cron::Schedule::from_str(trimmed).map_err(|e| {
            invalid(format!(
                "{e}; the shorthands are @hourly, @daily, @weekly, @monthly and @yearly"
            ))
        });
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
    ::cron::Schedule::from_str(&normalized).map_err(|e| invalid(e.to_string()))
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a day-of-week field from Unix numbering (0/7 = Sunday) to the `cron` crate's
/// (1 = Sunday … 7 = Saturday) by expanding it into an explicit list of day names.
pub fn day_of_week(field: &str) -> Result<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_parse() {
        for s in [
            "@hourly",
            "@daily",
            "@weekly",
            "@monthly",
            "@yearly",
            " @hourly ",
        ] {
            assert!(parse_cron(s).is_ok(), "{s}: {:?}", parse_cron(s).err());
        }
        let err = parse_cron("@sometimes").expect_err("not a shorthand");
        assert!(err.contains("@sometimes"), "{err}");
    }

    #[test]
    fn out_of_range_fields_are_errors() {
        let err = parse_cron("99 * * * *").expect_err("minute 99");
        assert!(
            err.starts_with("invalid cron expression `99 * * * *`"),
            "{err}"
        );
        assert!(parse_cron("0 25 * * *").is_err());
        assert!(parse_cron("*/15 * * * *").is_ok());
    }

    #[test]
    fn day_of_week_is_unix_numbering() {
        assert_eq!(day_of_week("0").as_deref(), Ok("SUN"));
        assert_eq!(day_of_week("7").as_deref(), Ok("SUN"));
        assert_eq!(day_of_week("1-5").as_deref(), Ok("MON,TUE,WED,THU,FRI"));
        assert_eq!(day_of_week("0-7").as_deref(), Ok("*"));
        assert!(day_of_week("5-1").is_err());
    }
}
