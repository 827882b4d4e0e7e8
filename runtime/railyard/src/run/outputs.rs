//! Output connectors available to `railyard run` today: topic and pipeline (durable rows in
//! the embedded store), stdout (a JSON line), file (appended JSON line, fsynced), and HTTP
//! (an ERP or marketplace API: success and retryable status sets, `Retry-After`, timeout).

use std::io::Write;
use std::time::Duration;

use railyard_core::delivery::ErrorClass;
use railyard_core::engine::Message;
use railyard_core::expr::render_template;
use railyard_core::project::{OutputDef, OutputSpec, Project};
use railyard_store::AsyncStore;
use serde_json::Value;

/// Why an output did not confirm a message.
#[derive(Clone, Debug)]
pub struct SendError {
    /// How it classifies (decided here, where the failure is known): permanent (dead-letter
    /// now), transient (retry, spending an attempt) or held (the destination is unreachable:
    /// wait without spending one).
    pub class: ErrorClass,
    /// What the peer asked for (`Retry-After`), if anything.
    pub retry_after: Option<Duration>,
    pub message: String,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            class: ErrorClass::Transient,
            retry_after: None,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            class: ErrorClass::Permanent,
            retry_after: None,
            message: message.into(),
        }
    }
    pub fn held(message: impl Into<String>) -> SendError {
        SendError {
            class: ErrorClass::Held,
            retry_after: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What outputs need besides the message.
pub struct OutputCtx<'a> {
    /// When set, topics are RabbitMQ: published to the topics exchange on this broker.
    pub amqp_topics: Option<&'a str>,
    /// AMQP publishers by broker URL, opened on first use.
    pub publishers: &'a std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<railyard_connectors::amqp::Publisher>>,
    >,
    /// The project directory: relative file paths are relative to it, not to the process.
    pub root: &'a std::path::Path,
    pub store: &'a AsyncStore,
    pub project: &'a Project,
    pub http: &'a reqwest::Client,
}

/// Runs blocking `work` (a store write, an fsync) on the blocking pool, so no async worker
/// thread waits on it.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("blocking task failed: {e}"))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    crate::cmd::map::rfc3339(now_ms() / 1000)
}

/// Sends `msg` to one output and returns once the output confirmed it.
pub async fn send(ctx: &OutputCtx<'_>, o: &OutputDef, msg: &Message) -> Result<(), SendError> {
    let render =
        |t: &str| render_template(t, &o.templates, msg.envelope()).map_err(SendError::permanent);
    match &o.spec {
        OutputSpec::Topic { name } => {
            let topic = render(name)?;
            publish_topic(ctx, &topic, msg).await
        }
        OutputSpec::Pipeline { topic, .. } => publish_topic(ctx, topic, msg).await,
        OutputSpec::Stdout { with_meta } => {
            let value = if *with_meta {
                msg.envelope()
            } else {
                msg.body()
            };
            let line =
                serde_json::to_string(value).map_err(|e| SendError::permanent(e.to_string()))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .map_err(|e| SendError::transient(format!("stdout: {e}")))
        }
        OutputSpec::File(f) => {
            let rendered = render(&f.path.value)?;
            if rendered.contains('\0') {
                return Err(SendError::permanent(format!(
                    "file path `{}` contains a NUL byte",
                    rendered.escape_default()
                )));
            }
            let path = ctx.root.join(rendered);
            let body = msg.body().clone();
            blocking(move || append_line(&path.to_string_lossy(), &body))
                .await
                .and_then(|r| r)
                .map_err(SendError::transient)
        }
        OutputSpec::Http(h) => send_http(ctx, o, h, msg, render).await,
        OutputSpec::Amqp(a) => {
            let routing_key = match &a.routing_key {
                Some(k) => render(&k.value)?,
                None => String::new(),
            };
            let url = amqp_url(a.url.as_ref().map(|u| u.value.as_str()));
            let body =
                serde_json::to_vec(msg.body()).map_err(|e| SendError::permanent(e.to_string()))?;
            let target = Target {
                publisher: url.clone(),
                topics: false,
                exchange: &a.exchange.value,
                routing_key: &routing_key,
                persistent: a.persistent != Some(false),
            };
            amqp_publish(ctx, &target, &body, msg)
                .await
                .map_err(|e| e.context(&format!("amqp exchange `{}`", a.exchange.value)))
        }
    }
}

/// Publishes the whole envelope (metadata travels) to a topic: the embedded store, or the
/// broker's topics exchange when one is configured.
async fn publish_topic(ctx: &OutputCtx<'_>, topic: &str, msg: &Message) -> Result<(), SendError> {
    let Some(url) = ctx.amqp_topics else {
        let (name, envelope) = (topic.to_string(), msg.envelope().clone());
        return ctx
            .store
            .run(move |s| s.publish(&name, &envelope))
            .await
            .map(drop)
            .map_err(|e| SendError::transient(format!("topic `{topic}`: {e}")));
    };
    let body =
        serde_json::to_vec(msg.envelope()).map_err(|e| SendError::permanent(e.to_string()))?;
    let target = Target {
        publisher: url.to_string(),
        topics: true,
        exchange: railyard_connectors::amqp::TOPICS_EXCHANGE,
        routing_key: topic,
        persistent: true,
    };
    amqp_publish(ctx, &target, &body, msg)
        .await
        .map_err(|e| e.context(&format!("topic `{topic}` on the broker")))
}

/// Where an AMQP publish goes.
struct Target<'a> {
    /// Broker URL; one publisher (connection and channel) per URL and kind.
    publisher: String,
    /// A topics publisher declares the topics exchange when it connects.
    topics: bool,
    exchange: &'a str,
    routing_key: &'a str,
    persistent: bool,
}

/// The longest AMQP short string (exchange, routing key, message and correlation id).
const AMQP_SHORT_STRING: usize = 255;

/// Publishes with a confirm; the message id and correlation id travel as AMQP properties.
async fn amqp_publish(
    ctx: &OutputCtx<'_>,
    target: &Target<'_>,
    body: &[u8],
    msg: &Message,
) -> Result<(), SendError> {
    use railyard_connectors::amqp::{Props, Publisher};
    let publisher = {
        let mut map = ctx
            .publishers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = format!(
            "{} {}",
            if target.topics { "topics" } else { "amqp" },
            target.publisher
        );
        map.entry(key)
            .or_insert_with(|| {
                std::sync::Arc::new(if target.topics {
                    Publisher::for_topics(target.publisher.clone())
                } else {
                    Publisher::new(target.publisher.clone())
                })
            })
            .clone()
    };
    let props = Props {
        message_id: Some(msg.id().to_string()),
        correlation_id: msg.meta_str("correlation_id").map(str::to_string),
    };
    // AMQP "short strings" are at most 255 bytes; the client cannot send a longer one, and
    // retrying will not shorten it.
    for (what, value) in [
        ("exchange", Some(target.exchange)),
        ("routing key", Some(target.routing_key)),
        ("message id", props.message_id.as_deref()),
        ("correlation id", props.correlation_id.as_deref()),
    ] {
        if let Some(v) = value
            && v.len() > AMQP_SHORT_STRING
        {
            return Err(SendError::permanent(format!(
                "the AMQP {what} is {} bytes; AMQP allows at most {AMQP_SHORT_STRING}",
                v.len()
            )));
        }
    }
    publisher
        .publish(
            target.exchange,
            target.routing_key,
            body,
            &props,
            target.persistent,
        )
        .await
        .map_err(|e| {
            if e.unavailable {
                SendError::held(e.message)
            } else {
                SendError::transient(e.message)
            }
        })
}

impl SendError {
    fn context(self, what: &str) -> SendError {
        SendError {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }
}

async fn send_http(
    ctx: &OutputCtx<'_>,
    o: &OutputDef,
    h: &railyard_core::model::pipeline::HttpOutput,
    msg: &Message,
    render: impl Fn(&str) -> Result<String, SendError>,
) -> Result<(), SendError> {
    let url = render(&h.url.value)?;
    let method = h
        .method
        .as_ref()
        .map_or("POST", |m| m.value.as_str())
        .to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|e| SendError::permanent(e.to_string()))?;
    let body = match &h.mapping {
        Some(m) => {
            let Some(mapping) = ctx.project.mappings.get(&m.value) else {
                return Err(SendError::permanent(format!(
                    "mapping `{}` is not loaded",
                    m.value
                )));
            };
            railyard_core::functions::with_tables(&ctx.project.tables, || {
                mapping.apply(&ctx.project.rhai, msg.body())
            })
            .map_err(|e| SendError::permanent(format!("body mapping `{}`: {e}", m.value)))?
        }
        None => msg.body().clone(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| SendError::permanent(e.to_string()))?;
    let timeout = h
        .timeout
        .as_ref()
        .map_or(Duration::from_secs(30), |t| t.value.0);
    let correlation = msg.meta_str("correlation_id").unwrap_or_default();
    header_value("x-correlation-id", correlation)?;
    let mut req = ctx
        .http
        .request(method, &url)
        .timeout(timeout)
        .header("content-type", "application/json")
        // Idempotency help for the peer: the same message keeps its id across retries.
        .header("x-railyard-message-id", msg.id())
        .header("x-correlation-id", correlation);
    for (k, v) in &h.headers {
        let value = render(&v.value)?;
        header_value(k, &value)?;
        req = req.header(k.as_str(), value);
    }
    let response = req.body(bytes).send().await;
    let response = match response {
        Ok(r) => r,
        // A request that could not be built (a URL that does not parse) fails every time.
        Err(e) if e.is_builder() => {
            return Err(SendError::permanent(format!("{} {url}: {e}", o.kind())));
        }
        // Connect errors and timeouts: the peer may come back.
        Err(e) => return Err(SendError::transient(format!("{} {url}: {e}", o.kind()))),
    };
    let status = response.status().as_u16();
    let ok = if h.success.is_empty() {
        (200..300).contains(&status)
    } else {
        h.success.contains(&status)
    };
    if ok {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, std::time::SystemTime::now()));
    let retryable = if h.retry_on.is_empty() {
        matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
    } else {
        h.retry_on.contains(&status)
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
        message: format!("{url} answered {status}: {snippet}"),
    })
}

fn append_line(path: &str, body: &Value) -> Result<(), String> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("file `{path}`: {e}"))?;
    }
    let mut line = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("file `{path}`: {e}"))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("file `{path}`: {e}"))
}

/// The broker URL: the pipeline's, else `RAILYARD_AMQP_URL`, else the local default.
pub fn amqp_url(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var("RAILYARD_AMQP_URL").ok())
        .unwrap_or_else(|| railyard_connectors::amqp::DEFAULT_URL.to_string())
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
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
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
    fn header_values_with_control_characters_are_permanent_errors() {
        assert!(header_value("x-a", "plain value\twith tab").is_ok());
        for bad in ["a\r\nX-Injected: 1", "a\nb", "nul\0"] {
            let e = header_value("x-a", bad).unwrap_err();
            assert_eq!(e.class, ErrorClass::Permanent, "{bad:?}");
            assert!(e.message.contains("x-a"), "{}", e.message);
        }
    }
}
