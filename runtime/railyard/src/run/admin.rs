//! The admin endpoints: `/health` (what runs, versions and revisions, the last reload),
//! `/ready` (503 while stopping, while the store cannot be written, or while a broker
//! consumer is down), `/metrics` (Prometheus) and `/admin/dead-letters[/{id}]` (the search of
//! `railyard dlq list|show`, as JSON).
//!
//! Who may see them ([`Access`]): `/ready` and a minimal `/health` (`{"status": …}`) are open
//! on the webhook listener, for load balancers and probes. The detailed `/health` and
//! `/metrics` and `/admin/*` are admin endpoints: served on the admin
//! listener (`--admin-listen`) to whoever reaches it, and on the webhook listener only to a
//! request with `Authorization: Bearer <RAILYARD_ADMIN_TOKEN>` — or, when no token and no
//! admin listener is configured, to a request from this machine (a loopback peer that no
//! proxy forwarded). Nothing served over HTTP shows source lines: a rejected reload is
//! reported as positions, codes and messages.

use super::*;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Who may use the admin endpoints on the listener a router serves.
#[derive(Clone, Debug)]
pub(crate) enum Access {
    /// The admin listener: whoever reaches it (its address is the control).
    Anyone,
    /// The webhook listener: the admin token when one is set; otherwise, when no admin
    /// listener takes the admin endpoints, a loopback peer without forwarding headers.
    Webhook {
        token: Option<String>,
        admin_listener: bool,
    },
}

/// Headers a proxy adds: a request carrying one came from elsewhere, whatever its peer.
const FORWARDED: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

impl Access {
    fn allows(&self, request: &Request) -> bool {
        match self {
            Access::Anyone => true,
            Access::Webhook {
                token: Some(token), ..
            } => bearer(request.headers()).is_some_and(|given| {
                railyard_connectors::http::api_key_matches(
                    std::slice::from_ref(token),
                    given.as_bytes(),
                )
            }),
            Access::Webhook {
                token: None,
                admin_listener: true,
            } => false,
            Access::Webhook {
                token: None,
                admin_listener: false,
            } => {
                let local = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
                local && !FORWARDED.iter().any(|h| request.headers().contains_key(*h))
            }
        }
    }

    /// What a refused caller is told: how to get in, never what is inside.
    fn refusal(&self) -> Response {
        let how = match self {
            Access::Webhook { token: Some(_), .. } => {
                "send `Authorization: Bearer <admin token>` (RAILYARD_ADMIN_TOKEN)"
            }
            Access::Webhook {
                admin_listener: true,
                ..
            } => "use the admin listener (--admin-listen)",
            _ => {
                "set RAILYARD_ADMIN_TOKEN and send it as a bearer token, or serve the admin endpoints on --admin-listen"
            }
        };
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": format!("admin endpoint: {how}") })),
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"railyard admin\""),
        );
        r
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The admin token from `RAILYARD_ADMIN_TOKEN` (environment only: a flag would show it in
/// `ps`); empty means none.
pub(crate) fn token_from_env() -> Option<String> {
    std::env::var("RAILYARD_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

pub(crate) fn router(rt: &Arc<Runtime>, access: Access) -> axum::Router {
    use axum::extract::State;
    // Admin-only routes: every one behind the same check, so a route added here cannot be
    // left open by mistake.
    let gate = access.clone();
    let admin_only = axum::Router::new()
        .route("/metrics", get(metrics_page))
        .route(
            "/admin/dead-letters",
            get(
                |State(rt): State<Arc<Runtime>>, uri: axum::http::Uri| async move {
                    list_dead_letters(&rt, &uri).await
                },
            ),
        )
        .route(
            "/admin/publish",
            axum::routing::post(
                |State(rt): State<Arc<Runtime>>, body: axum::body::Bytes| async move {
                    super::publish::publish(rt, body).await
                },
            ),
        )
        .route(
            "/admin/dead-letters/replay",
            axum::routing::post(
                |State(rt): State<Arc<Runtime>>, body: axum::body::Bytes| async move {
                    super::replay::replay(rt, body).await
                },
            ),
        )
        .route(
            "/admin/dead-letters/{id}",
            get(
                |State(rt): State<Arc<Runtime>>,
                 axum::extract::Path(id): axum::extract::Path<String>| async move {
                    one_dead_letter(&rt, &id).await
                },
            ),
        )
        .route_layer(axum::middleware::from_fn(
            move |request: Request, next: axum::middleware::Next| {
                let gate = gate.clone();
                async move {
                    if !gate.allows(&request) {
                        return gate.refusal();
                    }
                    // A web page cannot send `application/json` across origins without a CORS
                    // preflight, which is never answered: a browser on this machine cannot be
                    // made to replay or publish (the loopback trust is for people and tools).
                    let json = request
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim_start().starts_with("application/json"));
                    if request.method() != axum::http::Method::GET && !json {
                        return problem(
                            StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            "admin requests with a body are JSON: send `Content-Type: application/json`".to_string(),
                        );
                    }
                    next.run(request).await
                }
            },
        ));
    axum::Router::new()
        .route(
            "/health",
            get(
                move |State(rt): State<Arc<Runtime>>, request: Request| async move {
                    if access.allows(&request) {
                        let held = rt
                            .db
                            .run(|s| s.dead_letter_counts())
                            .await
                            .unwrap_or_default();
                        axum::Json(health(&rt, &held))
                    } else {
                        // Enough for a probe; what runs and how is for admins.
                        let status = if rt.stopping.load(Ordering::Relaxed) {
                            "stopping"
                        } else {
                            "ok"
                        };
                        axum::Json(json!({ "status": status }))
                    }
                },
            ),
        )
        .route("/ready", get(ready))
        .merge(admin_only)
        .with_state(rt.clone())
}

async fn ready(axum::extract::State(rt): axum::extract::State<Arc<Runtime>>) -> Response {
    let down = rt.brokers_down();
    // What the store watchdog found at its last write (every 2 s): a probe never writes, so
    // polling /ready costs no disk sync.
    let problem = rt
        .store_problem
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let ok = !rt.stopping.load(Ordering::Relaxed) && problem.is_none() && down.is_empty();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ok,
        "brokers_down": down,
        "store": problem.unwrap_or_else(|| "ok".to_string()),
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics_page(axum::extract::State(rt): axum::extract::State<Arc<Runtime>>) -> String {
    // Read at scrape time: a replay, a drop or another replica's writes change it.
    if let Ok(counts) = rt.db.run(|s| s.dead_letter_counts()).await {
        metrics::dead_letters(&counts);
    }
    // With topics on RabbitMQ the broker holds the backlog (its own metrics show it).
    if rt.amqp_topics.is_none()
        && let Ok(rows) = rt.db.run(|s| s.backlog()).await
    {
        metrics::backlog(&rows, outputs::now_ms());
    }
    if let Ok(brokers) = rt.brokers.lock() {
        for (worker, up) in brokers.iter() {
            metrics::broker(worker, up.load(Ordering::Relaxed));
        }
    }
    rt.prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default()
}

fn health(rt: &Runtime, dead_letters: &[(String, String, u64)]) -> Value {
    let mut held: BTreeMap<&str, u64> = BTreeMap::new();
    for (p, _, n) in dead_letters {
        *held.entry(p.as_str()).or_default() += n;
    }
    let live = rt.live();
    let reload = rt.reload.lock().map(|r| r.clone()).unwrap_or(Value::Null);
    let pipelines: serde_json::Map<String, Value> = live
        .project
        .pipelines
        .values()
        .map(|p| {
            (
                p.name.clone(),
                json!({ "version": p.version, "revision": p.revision }),
            )
        })
        .collect();
    json!({
        "status": if rt.stopping.load(Ordering::Relaxed) { "stopping" } else { "ok" },
        "running": live.running,
        "pipelines": pipelines,
        "not_started": live.not_started,
        "reload": reload,
        "dead_letters": held,
    })
}

/// An admin API error: the status and `{"error": message}`.
pub(crate) fn problem(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `GET /admin/dead-letters?pipeline=&step=&code=&since=&until=&where=&limit=`: the same
/// filter as `railyard dlq list`.
async fn list_dead_letters(rt: &Runtime, uri: &axum::http::Uri) -> Response {
    let given = match axum::extract::Query::<crate::dead_letters::Given>::try_from_uri(uri) {
        Ok(axum::extract::Query(g)) => g,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = given.limit.unwrap_or(100).min(10_000);
    let search = match given.search() {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let found = rt
        .db
        .run(move |s| Ok(crate::dead_letters::search(s, &search, limit)))
        .await;
    match found {
        Ok(Ok(found)) => {
            let all: Vec<Value> = found
                .iter()
                .map(|(id, d)| crate::dead_letters::as_json(*id, d))
                .collect();
            axum::Json(json!({ "count": all.len(), "dead_letters": all })).into_response()
        }
        Ok(Err(e)) => problem(StatusCode::BAD_REQUEST, e),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET /admin/dead-letters/{id}`.
async fn one_dead_letter(rt: &Runtime, id: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("`{id}` is not a dead-letter id"),
        );
    };
    match rt.db.run(move |s| s.dead_letter_by_id(id)).await {
        Ok(Some(d)) => axum::Json(crate::dead_letters::as_json(id, &d)).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, format!("no dead letter {id}")),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}
