#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The schedule input: fixed intervals, cron expressions in UTC, and their errors.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use railyard_connectors::schedule::Schedule;
use railyard_core::diag::Span;
use railyard_core::model::HumanDuration;
use railyard_core::model::pipeline::ScheduleInput;
use railyard_core::spanned::Spanned;
use serde_json::json;

fn at(s: &str) -> SystemTime {
    DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&Utc)
        .into()
}

fn show(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339()
}

fn every(d: Duration) -> ScheduleInput {
    ScheduleInput {
        every: Some(Spanned::new(HumanDuration(d), Span::default())),
        cron: None,
        body: None,
    }
}

fn cron(expr: &str) -> ScheduleInput {
    ScheduleInput {
        every: None,
        cron: Some(Spanned::new(expr.to_string(), Span::default())),
        body: None,
    }
}

/// The next `n` ticks after `start`, as RFC 3339 strings.
fn ticks(s: &Schedule, start: &str, n: usize) -> Vec<String> {
    let mut t = at(start);
    (0..n)
        .map(|_| {
            t = s.next_after(t).expect("a next tick");
            show(t)
        })
        .collect()
}

#[test]
fn every_five_minutes_ticks_from_the_previous_tick() {
    let s = Schedule::from_config(&every(Duration::from_secs(300))).unwrap();
    assert_eq!(
        ticks(&s, "2025-03-15T23:52:30Z", 3),
        vec![
            "2025-03-15T23:57:30+00:00",
            "2025-03-16T00:02:30+00:00",
            "2025-03-16T00:07:30+00:00",
        ]
    );
}

#[test]
fn cron_every_quarter_hour_crosses_the_hour() {
    let s = Schedule::from_config(&cron("0 */15 * * * *")).unwrap();
    assert_eq!(
        ticks(&s, "2025-03-15T10:31:07Z", 4),
        vec![
            "2025-03-15T10:45:00+00:00",
            "2025-03-15T11:00:00+00:00",
            "2025-03-15T11:15:00+00:00",
            "2025-03-15T11:30:00+00:00",
        ]
    );
    // Strictly after: a tick time gives the following tick, and a fraction of a second
    // before a tick gives that tick.
    assert_eq!(
        show(s.next_after(at("2025-03-15T11:00:00Z")).unwrap()),
        "2025-03-15T11:15:00+00:00"
    );
    assert_eq!(
        show(s.next_after(at("2025-03-15T10:59:59.500Z")).unwrap()),
        "2025-03-15T11:00:00+00:00"
    );
    // Across midnight and the end of the year, in UTC.
    assert_eq!(
        ticks(&s, "2025-12-31T23:50:00Z", 2),
        vec!["2026-01-01T00:00:00+00:00", "2026-01-01T00:15:00+00:00"]
    );
}

#[test]
fn five_field_cron_is_unix_crontab_at_second_zero() {
    let s = Schedule::from_config(&cron("30 2 * * *")).unwrap();
    assert_eq!(
        ticks(&s, "2025-03-15T10:00:00Z", 2),
        vec!["2025-03-16T02:30:00+00:00", "2025-03-17T02:30:00+00:00"]
    );
}

#[test]
fn day_of_week_numbers_are_unix_ones() {
    // 2025-03-15 is a Saturday.
    let weekdays = Schedule::from_config(&cron("0 0 9 * * 1-5")).unwrap();
    assert_eq!(
        ticks(&weekdays, "2025-03-15T12:00:00Z", 2),
        vec!["2025-03-17T09:00:00+00:00", "2025-03-18T09:00:00+00:00"]
    );
    for sunday in ["0 6 * * 0", "0 6 * * 7", "0 6 * * SUN", "0 0 6 * * sun"] {
        let s = Schedule::from_config(&cron(sunday)).unwrap();
        assert_eq!(
            ticks(&s, "2025-03-15T12:00:00Z", 1),
            vec!["2025-03-16T06:00:00+00:00"],
            "{sunday}"
        );
    }
    // Friday to Sunday, written with 7.
    let weekend = Schedule::from_config(&cron("0 0 * * 5-7")).unwrap();
    assert_eq!(
        ticks(&weekend, "2025-03-13T12:00:00Z", 3),
        vec![
            "2025-03-14T00:00:00+00:00",
            "2025-03-15T00:00:00+00:00",
            "2025-03-16T00:00:00+00:00",
        ]
    );
    let names = Schedule::from_config(&cron("0 0 9 * * MON-FRI")).unwrap();
    assert_eq!(
        ticks(&names, "2025-03-15T12:00:00Z", 1),
        vec!["2025-03-17T09:00:00+00:00"]
    );
}

#[test]
fn seven_field_cron_with_a_past_year_has_no_next_tick() {
    let s = Schedule::from_config(&cron("0 0 0 1 1 * 2020")).unwrap();
    assert_eq!(s.next_after(at("2025-03-15T00:00:00Z")), None);
    let s = Schedule::from_config(&cron("0 0 0 1 1 * 2030")).unwrap();
    assert_eq!(
        ticks(&s, "2025-03-15T00:00:00Z", 1),
        vec!["2030-01-01T00:00:00+00:00"]
    );
}

#[test]
fn invalid_cron_is_an_error_with_a_message() {
    let err = Schedule::from_config(&cron("0 61 * * * *")).unwrap_err();
    assert!(
        err.contains("invalid cron expression `0 61 * * * *`"),
        "{err}"
    );

    let err = Schedule::from_config(&cron("*/5 * *")).unwrap_err();
    assert!(err.contains("3 fields"), "{err}");

    let err = Schedule::from_config(&cron("0 0 9 * * MON-FUNDAY")).unwrap_err();
    assert!(err.contains("FUNDAY"), "{err}");

    let err = Schedule::from_config(&cron("0 0 9 * * 8")).unwrap_err();
    assert!(err.contains("out of range"), "{err}");

    let err = Schedule::from_config(&cron("0 0 9 * * 5-1")).unwrap_err();
    assert!(err.contains("backwards"), "{err}");

    let err = Schedule::from_config(&cron("every monday")).unwrap_err();
    assert!(err.contains("2 fields"), "{err}");
}

#[test]
fn a_schedule_needs_exactly_one_of_every_or_cron() {
    let both = ScheduleInput {
        cron: Some(Spanned::new("0 * * * * *".to_string(), Span::default())),
        ..every(Duration::from_secs(60))
    };
    assert!(
        Schedule::from_config(&both)
            .unwrap_err()
            .contains("exactly one")
    );
    let neither = ScheduleInput {
        every: None,
        cron: None,
        body: None,
    };
    assert!(
        Schedule::from_config(&neither)
            .unwrap_err()
            .contains("exactly one")
    );
    let zero = Schedule::from_config(&every(Duration::ZERO)).unwrap_err();
    assert!(zero.contains("longer than zero"), "{zero}");
}

#[test]
fn body_is_the_configured_one_or_an_empty_object() {
    let s = Schedule::from_config(&every(Duration::from_secs(60))).unwrap();
    assert_eq!(s.body(), json!({}));
    let with_body = ScheduleInput {
        body: Some(json!({"marketplace": "ATVPDKIKX0DER", "window": "15m"})),
        ..cron("0 */15 * * * *")
    };
    let s = Schedule::from_config(&with_body).unwrap();
    assert_eq!(
        s.body(),
        json!({"marketplace": "ATVPDKIKX0DER", "window": "15m"})
    );
}

/// `validate` and the schedule share one parser: every expression the schedule runs
/// validates, and every one it refuses is a `validate` error.
#[test]
fn validate_accepts_exactly_what_the_schedule_runs() {
    use railyard_core::project::{LoadOptions, MemFiles, load};
    let expressions = [
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "*/15 * * * *",
        "0 */15 * * * *",
        "0 0 9 * * MON-FRI",
        "0 0 * * 5-7",
        "0 0 0 1 1 * 2030",
        "99 * * * *",
        "0 61 * * * *",
        "*/5 * *",
        "0 0 9 * * 8",
        "0 0 9 * * 5-1",
        "every monday",
        "@sometimes",
        "",
    ];
    for expr in expressions {
        let runs = Schedule::from_config(&cron(expr)).is_ok();
        let files = MemFiles::new().with(
            "pipelines/poll.yaml",
            format!(
                "pipeline: poll\ninput:\n  schedule:\n    cron: \"{expr}\"\noutput: {{ topic: ticks }}\n"
            ),
        );
        let loaded = load(&files, &LoadOptions::default());
        assert_eq!(
            !loaded.has_errors(),
            runs,
            "`{expr}`: runs {runs}, validate says {:#?}",
            loaded.diagnostics
        );
    }
}
