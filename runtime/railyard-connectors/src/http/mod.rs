//! The HTTP input: one route per pipeline with an `http:` input.
//!
//! Request checks run in the order a platform's engineer would debug them, and everything
//! that can be checked from the headers is checked before the body is read: route (404),
//! method (405), content type (415), declared size (413), API key (401). Only then is the body
//! read — within [`Limits::body_timeout`] (408), up to the route's `max_body` (413) and, when
//! the route has no API key (signature-only or open: the sender is not authenticated yet),
//! holding one of [`Limits::max_unauthenticated_reads`] server-wide permits (none free within
//! [`Limits::read_permit_wait`]: 503 with `Retry-After`) until the signature is verified.
//! Then the signature (401) and JSON (400: not JSON, a duplicate key, an integer beyond 64
//! bits; see [`railyard_core::json`]).
//! Only then is the message handed off; the 202 with the message id is sent after the
//! hand-off confirmed it durable. A hand-off that cannot take the message answers 503 with
//! `Retry-After`, so the platform retries instead of losing it.
//!
//! The connection-level limits (connection cap, header read timeout) are in [`serve`].

mod limits;
mod server;
mod sink;
pub mod verify;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use railyard_core::project::{Pipeline, Project};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

pub use self::limits::{Limits, MAX_COUNT, MAX_TIMEOUT, check_count, check_timeout};
pub use self::server::serve;
pub use self::sink::shown_url;
pub use self::verify::{HmacCheck, SignatureError};

/// The HTTP sink's URL rendering, public only for the template property harness
/// (`tests/template_fuzz.rs`).
#[doc(hidden)]
pub use self::sink::render_url;

/// Default largest body when the pipeline does not say (`max_body`).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// A request that passed every check, ready for the pipeline.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub pipeline: String,
    pub body: Value,
    /// Request headers, lower-case names.
    pub headers: Map<String, Value>,
    pub correlation_id: Option<String>,
}

/// The hand-off could not take the message now; the sender should retry.
#[derive(Clone, Debug)]
pub struct Unavailable {
    pub retry_after_secs: u64,
    pub reason: String,
}

/// Takes an accepted request and returns its message id once it is durable.
pub type Handoff = Arc<
    dyn Fn(Inbound) -> Pin<Box<dyn Future<Output = Result<String, Unavailable>> + Send>>
        + Send
        + Sync,
>;

/// One route, from a pipeline's `http:` input.
#[derive(Clone, Debug)]
pub struct Route {
    pub pipeline: String,
    pub methods: Vec<Method>,
    pub max_body: usize,
    /// Accepted media types, lower-case (`application/json`).
    pub content_types: Vec<String>,
    pub hmac: Option<HmacCheck>,
    /// Header (lower-case) and accepted keys.
    pub api_key: Option<(String, Vec<String>)>,
    /// Header (lower-case) carrying the correlation id.
    pub correlation_header: String,
    /// Credential headers (lower-case) removed once checked: not kept in the message.
    pub strip_headers: Vec<String>,
}

pub use railyard_core::model::pipeline::CREDENTIAL_HEADERS;

impl Route {
    /// The route of `pipeline`, if its input is `http`.
    pub fn of(pipeline: &Pipeline) -> Option<(String, Route)> {
        let railyard_core::project::InputSpec::Http(h) = &pipeline.input else {
            return None;
        };
        let input = pipeline.def.input.ok()?;
        let methods = if h.methods.is_empty() {
            vec![Method::POST]
        } else {
            h.methods
                .iter()
                .filter_map(|m| Method::from_bytes(m.value.to_ascii_uppercase().as_bytes()).ok())
                .collect()
        };
        let content_types = if h.content_types.is_empty() {
            vec!["application/json".to_string()]
        } else {
            h.content_types
                .iter()
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let hmac = h.verify.as_ref().map(|v| {
            let hm = &v.value.hmac_sha256.value;
            HmacCheck {
                header: hm.header.value.to_ascii_lowercase(),
                encoding: hm.encoding,
                secret: hm.secret.value.clone(),
                signed: hm.signed,
                url: hm.url.as_ref().map(|u| u.value.clone()),
            }
        });
        let api_key = h.api_key.as_ref().map(|k| {
            (
                k.value
                    .header
                    .clone()
                    .unwrap_or_else(|| "x-api-key".to_string())
                    .to_ascii_lowercase(),
                k.value.keys.iter().map(|k| k.value.clone()).collect(),
            )
        });
        let strip_headers = h.stripped_headers();
        let route = Route {
            pipeline: pipeline.name.clone(),
            methods,
            max_body: h
                .max_body
                .as_ref()
                .map_or(DEFAULT_MAX_BODY, |b| b.value.0 as usize),
            content_types,
            hmac,
            api_key,
            correlation_header: input
                .value
                .correlation_header
                .clone()
                .unwrap_or_else(|| "x-correlation-id".to_string())
                .to_ascii_lowercase(),
            strip_headers,
        };
        Some((h.path.value.clone(), route))
    }
}

/// Routes of every HTTP pipeline of the project, by path. Two pipelines on one path is a
/// configuration error, returned as `(path, first, second)`.
pub fn routes(project: &Project) -> Result<HashMap<String, Route>, (String, String, String)> {
    let mut out: HashMap<String, Route> = HashMap::new();
    for p in project.pipelines.values() {
        if let Some((path, route)) = Route::of(p) {
            if let Some(existing) = out.get(&path) {
                return Err((path, existing.pipeline.clone(), route.pipeline));
            }
            out.insert(path, route);
        }
    }
    Ok(out)
}

/// The routes in force, swappable at run time (hot reload): each request reads a snapshot.
pub type SharedRoutes = Arc<std::sync::RwLock<Arc<HashMap<String, Route>>>>;

/// Wraps routes for [`router`].
pub fn shared(routes: HashMap<String, Route>) -> SharedRoutes {
    Arc::new(std::sync::RwLock::new(Arc::new(routes)))
}

#[derive(Clone)]
struct HttpState {
    routes: SharedRoutes,
    handoff: Handoff,
    limits: Arc<Limits>,
    /// Permits for body reads before the sender is authenticated, server-wide.
    unauthenticated_reads: Arc<Semaphore>,
}

/// An axum router answering every webhook route (as its fallback, so admin routes added by
/// the caller take precedence), within `limits` (the ones [`serve`] is given).
pub fn router(routes: SharedRoutes, handoff: Handoff, limits: Arc<Limits>) -> axum::Router {
    let unauthenticated_reads = Arc::new(Semaphore::new(limits.max_unauthenticated_reads));
    axum::Router::new()
        .fallback(dispatch)
        .with_state(HttpState {
            routes,
            handoff,
            limits,
            unauthenticated_reads,
        })
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Whether `given` is one of `keys`, in time independent of the keys' contents and lengths
/// and of which key matched: both sides are hashed to SHA-256 digests (fixed length) and
/// compared with `digest`'s constant-time equality ([`CtOutput`]), every key in turn.
///
/// [`CtOutput`]: hmac::digest::CtOutput
pub fn api_key_matches(keys: &[String], given: &[u8]) -> bool {
    use hmac::digest::CtOutput;
    use sha2::{Digest, Sha256};
    let given = CtOutput::<Sha256>::new(Sha256::digest(given));
    keys.iter().fold(false, |found, key| {
        let key = CtOutput::<Sha256>::new(Sha256::digest(key.as_bytes()));
        // `|` rather than `||`: no early exit once one key matched.
        found | (key == given)
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn dispatch(State(state): State<HttpState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let routes = match state.routes.read() {
        Ok(r) => r.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let Some(route) = routes.get(&path) else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no pipeline listens on {path}"),
        );
    };
    let (parts, body) = request.into_parts();
    if !route.methods.contains(&parts.method) {
        let allow = route
            .methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut r = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not accepted here", parts.method),
        );
        if let Ok(v) = HeaderValue::from_str(&allow) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    }
    let media = header_str(&parts.headers, "content-type")
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if !route.content_types.contains(&media) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type `{media}` is not accepted; send {}",
                route.content_types.join(" or ")
            ),
        );
    }
    let declared =
        header_str(&parts.headers, "content-length").and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > route.max_body) {
        return too_large(route.max_body);
    }
    if let Some((name, keys)) = &route.api_key {
        let given = header_str(&parts.headers, name)
            .unwrap_or_default()
            .as_bytes();
        if !api_key_matches(keys, given) {
            // Answered from the headers alone: the body is never read (a client that sent
            // `Expect: 100-continue` never sends it), and the connection is closed.
            return closing(problem(
                StatusCode::UNAUTHORIZED,
                format!("missing or unknown API key in `{name}`"),
            ));
        }
    }
    // A sender without an API key is not authenticated until its signature, over the body,
    // is verified: the read holds one of the server-wide permits, so such reads hold at most
    // permits × max_body of memory together.
    let permit = if route.api_key.is_none() {
        let wait = state.limits.read_permit_wait;
        match tokio::time::timeout(wait, state.unauthenticated_reads.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => Some(permit),
            Ok(Err(_)) | Err(_) => {
                tracing::debug!(pipeline = %route.pipeline, "Every unauthenticated read permit is taken; answered 503.");
                let mut r = closing(problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many webhook bodies are being read; send it again",
                ));
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
                return r;
            }
        }
    } else {
        None
    };
    // Only the read is timed, never the hand-off below: once a message is handed off it may
    // become durable (and be delivered) at any moment, so cutting the hand-off short would
    // answer an error for a message that was taken — the platform would send it again, and
    // its first copy would lose the 202 that carries its id. The read phase of a request is
    // thus bounded by the header timeout (hyper, in `serve`) plus the permit wait plus the
    // body timeout; the hand-off is bounded by the pipeline's own timeouts.
    let read = read_body(body, route.max_body, declared);
    let bytes = match tokio::time::timeout(state.limits.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => return closing(too_large(route.max_body)),
        Ok(Err(BodyError::Broken(e))) => {
            return closing(problem(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {e}"),
            ));
        }
        Err(_) => {
            tracing::debug!(pipeline = %route.pipeline, "A body was not received within the body timeout; answered 408.");
            return closing(problem(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body was not received within {}",
                    humantime::format_duration(state.limits.body_timeout)
                ),
            ));
        }
    };
    if let Some(check) = &route.hmac
        && let Err(e) = check.verify(header_str(&parts.headers, &check.header), &bytes)
    {
        tracing::warn!(pipeline = %route.pipeline, reason = %e, "Rejected unsigned webhook.");
        return problem(StatusCode::UNAUTHORIZED, e.to_string());
    }
    // Authenticated (or an open route, read in full): the permit goes back.
    drop(permit);
    // The one JSON intake: a duplicate key or an integer beyond 64 bits is a 400 naming it.
    let body = match railyard_core::json::parse_payload(&bytes) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body {e}")),
    };
    let mut headers = Map::new();
    for (k, v) in &parts.headers {
        // Credentials stop here: checked above, never stored or forwarded.
        if route.strip_headers.iter().any(|h| h == k.as_str()) {
            continue;
        }
        if let Ok(s) = v.to_str() {
            headers.insert(
                k.as_str().to_ascii_lowercase(),
                Value::String(s.to_string()),
            );
        }
    }
    let correlation_id = header_str(&parts.headers, &route.correlation_header).map(str::to_string);
    let inbound = Inbound {
        pipeline: route.pipeline.clone(),
        body,
        headers,
        correlation_id,
    };
    match (state.handoff)(inbound).await {
        Ok(id) => {
            let mut r = (StatusCode::ACCEPTED, axum::Json(json!({ "id": id }))).into_response();
            if let Ok(v) = HeaderValue::from_str(&id) {
                r.headers_mut().insert("x-railyard-message-id", v);
            }
            r
        }
        Err(u) => {
            let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, u.reason);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(u.retry_after_secs));
            r
        }
    }
}

enum BodyError {
    TooLarge,
    Broken(axum::Error),
}

/// The body, up to `limit` bytes, into one buffer sized by the declared length (already
/// checked against `limit`): one copy of the body in memory, not the chunks and then a copy.
async fn read_body(
    body: Body,
    limit: usize,
    declared: Option<usize>,
) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Broken)?;
        if chunk.len() > limit - out.len() {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `response` with `Connection: close`: after a refusal whose request body was not read (in
/// full), the connection cannot carry another request.
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_large(limit: usize) -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body is larger than the {limit} bytes this route accepts"),
    )
}
