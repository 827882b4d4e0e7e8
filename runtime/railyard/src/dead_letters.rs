//! Searching dead letters: one filter, parsed and applied the same way for `railyard dlq`
//! and the admin API (`/admin/dead-letters`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use railyard_core::expr::JmesPath;
use railyard_store::{DeadLetter, DeadLetterQuery, Store};
use serde_json::{Value, json};

/// What to look for: the store's conditions, then a JMESPath predicate over [`as_json`].
#[derive(Default)]
pub struct Search {
    pub query: DeadLetterQuery,
    pub predicate: Option<JmesPath>,
}

/// The filter as given on the command line or in a query string; each field is optional.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Given {
    pub pipeline: Option<String>,
    pub step: Option<String>,
    pub code: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    #[serde(rename = "where")]
    pub predicate: Option<String>,
    pub limit: Option<usize>,
}

impl Given {
    pub fn is_empty(&self) -> bool {
        self.pipeline.is_none()
            && self.step.is_none()
            && self.code.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.predicate.is_none()
    }

    /// The search, or what is wrong with the filter (naming the setting).
    pub fn search(&self) -> Result<Search, String> {
        let predicate = self
            .predicate
            .as_deref()
            .map(|p| {
                JmesPath::compile(p).map_err(|e| {
                    format!(
                        "where `{p}`: invalid JMESPath at character {}: {}",
                        e.char_offset + 1,
                        e.message
                    )
                })
            })
            .transpose()?;
        Ok(Search {
            query: DeadLetterQuery {
                pipeline: self.pipeline.clone(),
                step: self.step.clone(),
                code: self.code.clone(),
                since_ms: self
                    .since
                    .as_deref()
                    .map(|t| time_ms("since", t))
                    .transpose()?,
                until_ms: self
                    .until
                    .as_deref()
                    .map(|t| time_ms("until", t))
                    .transpose()?,
                after_id: 0,
                limit: 500,
            },
            predicate,
        })
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An RFC 3339 time, or a span back from now (`30m`, `2h`, `3d`).
pub fn time_ms(what: &str, text: &str) -> Result<i64, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64));
    }
    match humantime::parse_duration(text) {
        Ok(span) => Ok(now_ms().saturating_sub(span.as_millis().min(i64::MAX as u128) as i64)),
        Err(_) => Err(format!(
            "{what} `{text}`: give an RFC 3339 time (2026-12-07T10:00:00Z) or a span back from now (30m, 2h, 3d)"
        )),
    }
}

/// Every dead letter matching `search`, oldest first, at most `limit`.
pub fn search(
    store: &Store,
    search: &Search,
    limit: usize,
) -> Result<Vec<(u64, DeadLetter)>, String> {
    let mut q = search.query.clone();
    let mut out = Vec::new();
    loop {
        let page = store
            .find_dead_letters(&q)
            .map_err(|e| format!("cannot read the dead letters: {e}"))?;
        let Some((last, _)) = page.last() else {
            return Ok(out);
        };
        q.after_id = *last;
        for (id, d) in page {
            let keep = match &search.predicate {
                None => true,
                Some(p) => {
                    let seen = p
                        .search(&as_json(id, &d))
                        .map_err(|e| format!("where: {e}"))?;
                    railyard_core::engine::truthy(&seen)
                }
            };
            if keep {
                out.push((id, d));
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
    }
}

pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// A dead letter as JSON: what `--format json` and the API return and `where` looks at.
pub fn as_json(id: u64, d: &DeadLetter) -> Value {
    json!({
        "id": id,
        "pipeline": d.pipeline,
        "pipeline_version": d.pipeline_version,
        "step": d.step,
        "error": d.error,
        "attempts": d.attempts,
        "at": rfc3339(d.at_ms),
        "message": d.message,
        "original": d.original,
    })
}

/// The id of the dead-lettered message.
pub fn message_id(d: &DeadLetter) -> &str {
    d.original
        .as_ref()
        .unwrap_or(&d.message)
        .pointer("/meta/id")
        .and_then(Value::as_str)
        .unwrap_or("-")
}
