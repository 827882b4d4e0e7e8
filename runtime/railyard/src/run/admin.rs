//! The admin endpoints: `/health` (what runs, versions and revisions, the last reload),
//! `/ready` (503 while stopping, while the store cannot be written, or while a broker
//! consumer is down) and `/metrics` (Prometheus).

use super::*;

pub(crate) fn router(rt: &Arc<Runtime>) -> axum::Router {
    let health_rt = rt.clone();
    let ready_rt = rt.clone();
    let metrics_rt = rt.clone();
    axum::Router::new()
        .route(
            "/health",
            get(move || {
                let rt = health_rt.clone();
                async move {
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
                    axum::Json(json!({
                        "status": "ok",
                        "running": live.running,
                        "pipelines": pipelines,
                        "not_started": live.not_started,
                        "reload": reload,
                    }))
                }
            }),
        )
        .route(
            "/ready",
            get(move || {
                let rt = ready_rt.clone();
                async move {
                    let down = rt.brokers_down();
                    // What the store watchdog found at its last write (every 2 s): a probe
                    // never writes, so polling /ready costs no disk sync.
                    let problem = rt
                        .store_problem
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    let ok = !rt.stopping.load(Ordering::Relaxed)
                        && problem.is_none()
                        && down.is_empty();
                    let status = if ok {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    (
                        status,
                        axum::Json(json!({
                            "ready": ok,
                            "brokers_down": down,
                            "store": problem.unwrap_or_else(|| "ok".to_string()),
                        })),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let rt = metrics_rt.clone();
                async move {
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
            }),
        )
}
