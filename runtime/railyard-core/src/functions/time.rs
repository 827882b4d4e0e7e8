//! Timestamps: RFC 3339 with any offset (Shopify sends the shop's offset, `-04:00`), epoch
//! seconds or milliseconds (as numbers or digit strings), zone-less local times from POS
//! exports (interpreted at an offset the caller states) and bare dates.
//!
//! Everything is normalized to RFC 3339 in UTC with `Z`. A fractional second appears only when
//! the input had one, at millisecond precision (or micro-/nanoseconds when the input had that
//! many digits), so `2025-03-15T18:41:52.331Z` stays as it is and `...T10:22:31-04:00` becomes
//! `...T14:22:31Z`.
//!
//! Epoch numbers: a magnitude above 10^11 is milliseconds, otherwise seconds. 10^11 seconds is
//! the year 5138 and 10^11 milliseconds is 1973-03-03, so any timestamp a retail system sends
//! today is read correctly; milliseconds before March 1973 would be misread as seconds.
//!
//! Offsets are fixed (`+02:00`): there is no time-zone database here, so a caller whose local
//! times cross a daylight-saving change must pick the offset per record (from the data or a
//! reference table), not once for a whole file.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use serde_json::Value;

use super::{FnDef, show, type_name};

/// Above this magnitude an epoch number is milliseconds, otherwise seconds.
pub const EPOCH_MS_THRESHOLD: i64 = 100_000_000_000;

/// A parsed timestamp argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamp {
    /// An instant, with the number of fractional-second digits the input carried.
    Instant {
        at: DateTime<FixedOffset>,
        fraction_digits: u8,
    },
    /// A date without a time (`2025-03-15`).
    Date(NaiveDate),
}

const EXPECTED: &str = "expected RFC 3339 (`2025-03-14T10:22:31-04:00`), epoch seconds or \
                        milliseconds, `YYYY-MM-DD HH:MM:SS` with an offset argument, or \
                        `YYYY-MM-DD`";

/// Reads a timestamp. `assumed` is the offset of zone-less local times; without it such an
/// input is an error. An offset written in the input always wins over `assumed`.
pub fn parse_timestamp(v: &Value, assumed: Option<FixedOffset>) -> Result<Timestamp, String> {
    match v {
        Value::Number(n) => {
            let i = n.as_i64().or_else(|| {
                super::money::number_to_decimal(n)
                    .filter(|d| d.fract().is_zero())
                    .and_then(|d| rust_decimal::prelude::ToPrimitive::to_i64(&d))
            });
            match i {
                Some(i) => from_epoch(i, v),
                None => Err(format!(
                    "{} is not a whole number of epoch seconds or milliseconds",
                    show(v)
                )),
            }
        }
        Value::String(s) => parse_timestamp_str(s.trim(), v, assumed),
        other => Err(format!(
            "{} is not a timestamp (got {}); {EXPECTED}",
            show(other),
            type_name(other)
        )),
    }
}

fn from_epoch(i: i64, input: &Value) -> Result<Timestamp, String> {
    let (at, fraction_digits) = if i.unsigned_abs() > EPOCH_MS_THRESHOLD.unsigned_abs() {
        (
            DateTime::<Utc>::from_timestamp_millis(i),
            if i.rem_euclid(1000) != 0 { 3 } else { 0 },
        )
    } else {
        (DateTime::<Utc>::from_timestamp(i, 0), 0)
    };
    match at {
        Some(at) => Ok(Timestamp::Instant {
            at: at.fixed_offset(),
            fraction_digits,
        }),
        None => Err(format!(
            "{} is outside the supported time range",
            show(input)
        )),
    }
}

fn parse_timestamp_str(
    s: &str,
    input: &Value,
    assumed: Option<FixedOffset>,
) -> Result<Timestamp, String> {
    let bad = || format!("{} is not a timestamp; {EXPECTED}", show(input));
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let i: i64 = s
            .parse()
            .map_err(|_| format!("{} is outside the supported time range", show(input)))?;
        return from_epoch(i, input);
    }
    let bytes = s.as_bytes();
    if bytes.len() < 10 {
        return Err(bad());
    }
    let date = s.get(..10).and_then(parse_date).ok_or_else(bad)?;
    if bytes.len() == 10 {
        return Ok(Timestamp::Date(date));
    }
    if !matches!(bytes[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let rest = s.get(11..).ok_or_else(bad)?;
    // Time: HH:MM[:SS[.fraction]]
    let (time, fraction_digits, zone) = parse_time(rest).ok_or_else(bad)?;
    let naive = NaiveDateTime::new(date, time);
    let offset = if zone.is_empty() {
        match assumed {
            Some(offset) => offset,
            None => {
                return Err(format!(
                    "{} has no UTC offset; pass the offset its local time is in as the second \
                     argument, e.g. `'-04:00'`",
                    show(input)
                ));
            }
        }
    } else {
        parse_offset_str(zone.trim_start()).ok_or_else(bad)?
    };
    let at = naive
        .and_local_timezone(offset)
        .single()
        .ok_or_else(|| format!("{} is outside the supported time range", show(input)))?;
    Ok(Timestamp::Instant {
        at,
        fraction_digits,
    })
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

/// `HH:MM[:SS[.fff]]` followed by the zone text (possibly empty).
fn parse_time(s: &str) -> Option<(NaiveTime, u8, &str)> {
    let two = |i: usize| -> Option<u32> {
        let part = s.get(i..i + 2)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let b = s.as_bytes();
    let hour = two(0)?;
    if b.get(2) != Some(&b':') {
        return None;
    }
    let minute = two(3)?;
    let mut pos = 5;
    let mut second = 0;
    let mut nanos = 0u32;
    let mut fraction_digits = 0u8;
    if b.get(pos) == Some(&b':') {
        second = two(pos + 1)?;
        pos += 3;
        if matches!(b.get(pos), Some(b'.') | Some(b',')) {
            let start = pos + 1;
            let mut end = start;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            let frac = s.get(start..end)?;
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            fraction_digits = u8::try_from(frac.len()).ok()?;
            let padded = format!("{frac:0<9}");
            nanos = padded.parse().ok()?;
            pos = end;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    if second > 59 {
        return None;
    }
    Some((time, fraction_digits, s.get(pos..)?))
}

/// `Z`, `UTC`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH`.
fn parse_offset_str(s: &str) -> Option<FixedOffset> {
    if matches!(s, "Z" | "z") || s.eq_ignore_ascii_case("utc") {
        return FixedOffset::east_opt(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = s.get(1..)?;
    let (h, m) = match body.len() {
        2 => (body, "00"),
        4 => (body.get(..2)?, body.get(2..)?),
        5 if body.as_bytes().get(2) == Some(&b':') => (body.get(..2)?, body.get(3..)?),
        _ => return None,
    };
    if !h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// An offset argument.
pub fn parse_offset(v: &Value) -> Result<FixedOffset, String> {
    match v.as_str().map(str::trim).and_then(parse_offset_str) {
        Some(offset) => Ok(offset),
        None => {
            let hint = match v.as_str() {
                Some(s) if s.contains('/') => {
                    "; time-zone names are not supported, pass the offset in effect, e.g. `-05:00`"
                }
                _ => "",
            };
            Err(format!(
                "{} is not a UTC offset (expected `+HH:MM`, `-HH:MM` or `Z`){hint}",
                show(v)
            ))
        }
    }
}

/// RFC 3339 in UTC with `Z`, with the fractional digits the input had.
pub fn format_utc(at: DateTime<FixedOffset>, fraction_digits: u8) -> Result<String, String> {
    let utc = at.with_timezone(&Utc);
    if !(0..=9999).contains(&chrono::Datelike::year(&utc)) {
        return Err(format!(
            "{} is outside the years 0000-9999 that RFC 3339 can write",
            utc.to_rfc3339()
        ));
    }
    let format = match fraction_digits {
        0 => SecondsFormat::Secs,
        1..=3 => SecondsFormat::Millis,
        4..=6 => SecondsFormat::Micros,
        _ => SecondsFormat::Nanos,
    };
    Ok(utc.to_rfc3339_opts(format, true))
}

fn optional_offset(args: &[Value]) -> Result<Option<FixedOffset>, String> {
    args.get(1).map(parse_offset).transpose()
}

fn ts_utc(args: &[Value]) -> Result<Value, String> {
    let assumed = optional_offset(args)?;
    let s = match parse_timestamp(&args[0], assumed)? {
        Timestamp::Instant {
            at,
            fraction_digits,
        } => format_utc(at, fraction_digits)?,
        Timestamp::Date(d) => format!("{}T00:00:00Z", d.format("%Y-%m-%d")),
    };
    Ok(Value::String(s))
}

fn ts_date(args: &[Value]) -> Result<Value, String> {
    let offset = optional_offset(args)?;
    let date = match parse_timestamp(&args[0], offset)? {
        Timestamp::Date(d) => d,
        Timestamp::Instant { at, .. } => match offset {
            Some(offset) => at.with_timezone(&offset).date_naive(),
            None => at.with_timezone(&Utc).date_naive(),
        },
    };
    Ok(Value::String(date.format("%Y-%m-%d").to_string()))
}

fn ts_millis(args: &[Value]) -> Result<Value, String> {
    let assumed = optional_offset(args)?;
    let ms = match parse_timestamp(&args[0], assumed)? {
        Timestamp::Instant { at, .. } => at.timestamp_millis(),
        Timestamp::Date(d) => d.and_time(NaiveTime::MIN).and_utc().timestamp_millis(),
    };
    Ok(Value::from(ms))
}

pub const TS_UTC: FnDef = FnDef {
    name: "ts_utc",
    min_args: 1,
    max_args: 2,
    call: ts_utc,
    doc: "A timestamp as RFC 3339 UTC with `Z`; zone-less local times need an offset.",
};
pub const TS_DATE: FnDef = FnDef {
    name: "ts_date",
    min_args: 1,
    max_args: 2,
    call: ts_date,
    doc: "The calendar date (YYYY-MM-DD) of a timestamp in UTC, or at the given offset.",
};
pub const TS_MILLIS: FnDef = FnDef {
    name: "ts_millis",
    min_args: 1,
    max_args: 2,
    call: ts_millis,
    doc: "A timestamp as epoch milliseconds.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        let secs = |s: &str| parse_offset_str(s).map(|o| o.local_minus_utc());
        assert_eq!(secs("Z"), Some(0));
        assert_eq!(secs("utc"), Some(0));
        assert_eq!(secs("+02:00"), Some(7200));
        assert_eq!(secs("-04:00"), Some(-14400));
        assert_eq!(secs("+0530"), Some(19800));
        assert_eq!(secs("-03"), Some(-10800));
        for bad in [
            "", "+", "02:00", "+2:00", "+24:00", "+02:60", "+02-00", "+aé1", "GMT+2",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_and_fractions() {
        let t =
            |s: &'static str| parse_time(s).map(|(t, digits, zone)| (t.to_string(), digits, zone));
        assert_eq!(t("10:04"), Some(("10:04:00".to_string(), 0, "")));
        assert_eq!(t("10:04:12Z"), Some(("10:04:12".to_string(), 0, "Z")));
        assert_eq!(
            t("10:04:12.5-04:00"),
            Some(("10:04:12.500".to_string(), 1, "-04:00"))
        );
        assert_eq!(t("10:04:12,25"), Some(("10:04:12.250".to_string(), 2, "")));
        assert_eq!(t("24:00:00"), None);
        assert_eq!(t("10:04:60"), None);
        assert_eq!(t("10:4"), None);
        assert_eq!(t("10:04:12."), None);
    }

    #[test]
    fn epoch_threshold() {
        let v = serde_json::json!(0);
        let at = |i: i64| match from_epoch(i, &v) {
            Ok(Timestamp::Instant {
                at,
                fraction_digits,
            }) => format_utc(at, fraction_digits).ok(),
            _ => None,
        };
        assert_eq!(
            at(EPOCH_MS_THRESHOLD).as_deref(),
            Some("5138-11-16T09:46:40Z")
        );
        assert_eq!(
            at(EPOCH_MS_THRESHOLD + 1).as_deref(),
            Some("1973-03-03T09:46:40.001Z")
        );
        assert_eq!(
            at(-EPOCH_MS_THRESHOLD - 1).as_deref(),
            Some("1966-10-31T14:13:19.999Z")
        );
    }
}
