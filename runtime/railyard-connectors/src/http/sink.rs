//! The HTTP sink (`output: { http: … }`): an ERP or marketplace API. Success and retryable
//! status sets, `Retry-After` (seconds or an HTTP date), a timeout, headers checked before
//! the call.

use std::time::{Duration, SystemTime};

use railyard_core::delivery::ErrorClass;
use railyard_core::expr::past_url_authority;
use railyard_core::model::pipeline::HttpOutput;

use crate::sink::{Item, SendError, Sink, SinkCx};

impl Sink for HttpOutput {
    async fn send(&self, cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
        let msg = item.message;
        let url = render_url(&self.url.value, item)?;
        let method = self
            .method
            .as_ref()
            .map_or("POST", |m| m.value.as_str())
            .to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let body = match &self.mapping {
            Some(m) => {
                let Some(mapping) = cx.project.mappings.get(&m.value) else {
                    return Err(SendError::permanent(format!(
                        "mapping `{}` is not loaded",
                        m.value
                    )));
                };
                railyard_core::functions::with_tables(&cx.project.tables, || {
                    mapping.apply(&cx.project.rhai, msg.body())
                })
                .map_err(|e| SendError::permanent(format!("body mapping `{}`: {e}", m.value)))?
            }
            None => msg.body().clone(),
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| SendError::permanent(e.to_string()))?;
        let timeout = self
            .timeout
            .as_ref()
            .map_or(Duration::from_secs(30), |t| t.value.0);
        let correlation = msg.meta_str("correlation_id").unwrap_or_default();
        header_value("x-correlation-id", correlation)?;
        let mut req = cx
            .http
            .request(method, &url)
            .timeout(timeout)
            .header("content-type", "application/json")
            // Idempotency help for the peer: the same message keeps its id across retries.
            .header("x-railyard-message-id", msg.id())
            .header("x-correlation-id", correlation);
        for (k, v) in &self.headers {
            let value = item.render(&v.value)?;
            header_value(k, &value)?;
            req = req.header(k.as_str(), value);
        }
        let response = match req.body(bytes).send().await {
            Ok(r) => r,
            // A request that could not be built (a URL that does not parse) fails every time.
            Err(e) if e.is_builder() => {
                let (url, e) = (shown_url(&url), e.without_url());
                return Err(SendError::permanent(format!("http {url}: {e}")));
            }
            // Connect errors and timeouts: the peer may come back.
            Err(e) => {
                let (url, e) = (shown_url(&url), e.without_url());
                return Err(SendError::transient(format!("http {url}: {e}")));
            }
        };
        let status = response.status().as_u16();
        let ok = if self.success.is_empty() {
            (200..300).contains(&status)
        } else {
            self.success.contains(&status)
        };
        if ok {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        let retryable = if self.retry_on.is_empty() {
            matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
        } else {
            self.retry_on.contains(&status)
        };
        let text = response.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(300).collect();
        Err(SendError {
            class: if retryable {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            },
            retry_after,
            message: format!("{} answered {status}: {snippet}", shown_url(&url)),
        })
    }
}

/// Bytes left as they are in a templated URL value: RFC 3986's unreserved characters.
/// Everything else — `/`, `?`, `#`, `&`, `=`, `%`, spaces — is percent-encoded.
const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Renders the URL template with each value encoded for where it lands: one path segment
/// (a `.` or `..` segment is refused: clients resolve it even encoded), a query name or
/// value, or the fragment. Scheme, host and port come from configuration only (`validate`
/// refuses a template there; here it is a permanent error). A path segment holding a value
/// may not end up empty, `.` or `..` either (`/orders/{{ id }}` with an empty id would be
/// `/orders/`, and `{{ name }}.{{ ext }}` with both empty would be `.`): that changes the
/// path as a `/` in the value would.
pub fn render_url(template: &str, item: &Item<'_>) -> Result<String, SendError> {
    // Where each value placed in the path landed in the rendered text, by expression.
    let mut in_path: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let url = railyard_core::expr::render_template_with(
        template,
        &item.output.templates,
        item.message.envelope(),
        |expr, value, before| {
            if !past_url_authority(before) {
                return Err(format!(
                    "http url: `{{{{ {expr} }}}}` is in the scheme, host or port, which come from configuration only"
                ));
            }
            let placed = percent_encoding::utf8_percent_encode(&value, URL_VALUE).to_string();
            if !before.contains(['?', '#']) {
                if value == "." || value == ".." {
                    return Err(format!(
                        "http url: `{{{{ {expr} }}}}` is `{value}`, a path segment that would change the path"
                    ));
                }
                in_path.push((expr.to_string(), before.len()..before.len() + placed.len()));
            }
            Ok(placed)
        },
    )
    .map_err(SendError::permanent)?;
    // Values are encoded (no `/`, `?` or `#` of their own): the path ends at the first of
    // those after the template's fixed text, and a value's segment is between slashes.
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    for (expr, at) in &in_path {
        let start = url
            .get(..at.start)
            .and_then(|head| head.rfind('/'))
            .map_or(0, |i| i + 1);
        let end = url
            .get(at.end..path_end)
            .and_then(|tail| tail.find('/'))
            .map_or(path_end, |i| at.end + i);
        let segment = url.get(start..end).unwrap_or_default();
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        if matches!(dots.as_str(), "" | "." | "..") {
            return Err(SendError::permanent(format!(
                "http url: `{{{{ {expr} }}}}` leaves the path segment `{segment}`, which would change the path"
            )));
        }
    }
    Ok(url)
}

/// A URL as errors and logs show it: no user name or password, and no query string (where
/// API keys travel); `?…` says there was one.
pub fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        // Not a URL: show the part before any `?`, without anything up to an `@`.
        let head = url.split(['?', '#']).next().unwrap_or_default();
        let head = head.rsplit_once('@').map_or(head, |(_, host)| host);
        return format!("{head} (not a valid URL)");
    };
    let had_query = parsed.query().is_some();
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    let mut shown = parsed.to_string();
    if had_query {
        shown.push_str("?…");
    }
    shown
}

/// A header value the HTTP client can send: no CR, LF or NUL (or other control bytes but
/// tab), which would split or end the header. Otherwise a permanent error: the message
/// carries the same value on every retry.
fn header_value(name: &str, value: &str) -> Result<(), SendError> {
    match reqwest::header::HeaderValue::from_str(value) {
        Ok(_) => Ok(()),
        Err(_) => Err(SendError::permanent(format!(
            "header `{name}`: the value `{}` has a control character (CR, LF, NUL ...) that HTTP does not allow",
            value.chars().take(120).collect::<String>().escape_default()
        ))),
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (a date in the past is no delay).
fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Mon, 07 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Mon, 07 Dec 2026 10:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Mon, 07 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }

    #[test]
    fn where_a_url_template_may_stand() {
        assert!(!past_url_authority("http://"));
        assert!(!past_url_authority("http://erp.example.com:80"));
        assert!(!past_url_authority(""));
        assert!(past_url_authority("http://erp.example.com/"));
        assert!(past_url_authority("http://erp.example.com?"));
        assert!(past_url_authority(
            "https://u:p@erp.example.com/api/orders/"
        ));
        // Found by `tests/template_fuzz.rs`: parsers skip extra slashes after `http:`, so a
        // value here is the host (`http:///{{ host }}/x`).
        assert!(!past_url_authority("http:///"));
        assert!(!past_url_authority("https:////"));
        assert!(!past_url_authority("http://\\/"));
        assert!(past_url_authority("http:///erp.example.com/"));
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        assert_eq!(
            shown_url("https://bc:s3cret@erp.example.com/api/orders?apikey=k3y&x=1"),
            "https://erp.example.com/api/orders?…"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:8089/orders"),
            "http://127.0.0.1:8089/orders"
        );
        assert_eq!(
            shown_url("amqps://u:p%40ss@mq.example.com/prod"),
            "amqps://mq.example.com/prod"
        );
        assert_eq!(
            shown_url("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        let bad = shown_url("ht!tp://user:pw@host/p?key=1");
        assert!(!bad.contains("pw") && !bad.contains("key"), "{bad}");
    }

    #[test]
    fn url_values_are_encoded_as_data() {
        let encode = |v: &str| percent_encoding::utf8_percent_encode(v, URL_VALUE).to_string();
        assert_eq!(
            encode("../../admin/delete?all=1#"),
            "..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23"
        );
        assert_eq!(encode("A-1_b.c~"), "A-1_b.c~");
        assert_eq!(encode("a b&c=d%"), "a%20b%26c%3Dd%25");
        assert_eq!(encode("Zürich"), "Z%C3%BCrich");
    }

    #[test]
    fn header_values_with_control_characters_are_permanent_errors() {
        assert!(header_value("x-a", "plain value\twith tab").is_ok());
        for bad in ["a\r\nX-Injected: 1", "a\nb", "nul\0"] {
            let e = header_value("x-a", bad).unwrap_err();
            assert_eq!(e.class, ErrorClass::Permanent, "{bad:?}");
            assert!(e.message.contains("x-a"), "{}", e.message);
        }
    }
}
