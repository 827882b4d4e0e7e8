//! Replaying dead letters (`POST /admin/dead-letters/replay`, and `railyard dlq replay --url`).
//!
//! Each chosen dead letter's original message — as it entered its pipeline, with its message
//! id and correlation id — runs again through the pipeline's current revision, one attempt,
//! with `meta.replay` counting the replays. Its unit of work names the dead letter
//! (`Unit::replaces`): the commit that settles the message (delivered, or dead-lettered again
//! with its new error, as a new dead letter) deletes the old one in the same transaction; a
//! transient failure (the ERP still down) releases the unit and leaves the dead letter where it
//! was. Dedupe keys do not stop a replay: its own key was committed when it was
//! dead-lettered, and replaying is the operator's decision.

use super::*;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::admin::problem;

/// What a replay request asks for: ids, or the filter of `railyard dlq list`.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[serde(default)]
    ids: Vec<u64>,
    #[serde(flatten)]
    filter: crate::dead_letters::Given,
    /// Say what would be replayed; replay nothing.
    #[serde(default)]
    dry_run: bool,
}

pub(crate) async fn replay(rt: Arc<Runtime>, body: axum::body::Bytes) -> Response {
    let req: Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON: {{\"ids\": [...]}} or filters (pipeline, step, code, since, until, where, limit), and \"dry_run\": {e}"
                ),
            );
        }
    };
    if req.ids.is_empty() && req.filter.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "say which dead letters: \"ids\", or at least one filter".to_string(),
        );
    }
    let chosen = match choose(&rt, &req).await {
        Ok(c) => c,
        Err((status, e)) => return problem(status, e),
    };
    let live = rt.live();
    let loaded = |p: &str| live.project.pipelines.get(p);
    if req.dry_run {
        let mut pipelines: BTreeMap<String, Value> = BTreeMap::new();
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        for (_, d) in &chosen {
            let entry = pipelines.entry(d.pipeline.clone()).or_insert_with(|| {
                json!({
                    "count": 0,
                    "revision": loaded(&d.pipeline).map(|p| p.revision.clone()),
                    "version": loaded(&d.pipeline).map(|p| p.version),
                })
            });
            entry["count"] = json!(entry["count"].as_u64().unwrap_or(0) + 1);
            let code = d.error["code"].as_str().unwrap_or("-").to_string();
            *codes.entry(code).or_default() += 1;
        }
        return axum::Json(json!({
            "dry_run": true,
            "count": chosen.len(),
            "ids": chosen.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            "pipelines": pipelines,
            "codes": codes,
        }))
        .into_response();
    }
    let mut results = Vec::new();
    let (mut delivered, mut again, mut left) = (0u64, 0u64, 0u64);
    for (id, d) in chosen {
        let pipeline = d.pipeline.clone();
        let (outcome, result) = match replay_one(&rt, &live, id, d).await {
            Ok(message) => {
                // Settled: delivered, or failed for good — then it has a newer dead letter.
                let m = message.clone();
                let failed_again = rt
                    .db
                    .run(move |s| s.dead_lettered_since(id, &m))
                    .await
                    .unwrap_or(false);
                let outcome = if failed_again {
                    again += 1;
                    "dead_lettered_again"
                } else {
                    delivered += 1;
                    "delivered"
                };
                let result = json!({ "id": id, "pipeline": pipeline, "settled": true,
                    "message": message, "dead_lettered_again": failed_again });
                (outcome, result)
            }
            Err(why) => {
                left += 1;
                let result =
                    json!({ "id": id, "pipeline": pipeline, "settled": false, "error": why });
                ("left", result)
            }
        };
        metrics::replay(&pipeline, outcome);
        results.push(result);
    }
    axum::Json(json!({
        "count": results.len(),
        "delivered": delivered,
        "dead_lettered_again": again,
        "left": left,
        "results": results,
    }))
    .into_response()
}

async fn choose(
    rt: &Runtime,
    req: &Request,
) -> Result<Vec<(u64, DeadLetter)>, (StatusCode, String)> {
    let unavailable =
        |e: railyard_store::StoreError| (StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    if !req.ids.is_empty() {
        let ids = req.ids.clone();
        return rt
            .db
            .run(move |s| {
                let mut found = Vec::new();
                for id in ids {
                    if let Some(d) = s.dead_letter_by_id(id)? {
                        found.push((id, d));
                    }
                }
                Ok(found)
            })
            .await
            .map_err(unavailable);
    }
    let limit = req.filter.limit.unwrap_or(10_000);
    let search = req
        .filter
        .search()
        .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    rt.db
        .run(move |s| Ok(crate::dead_letters::search(s, &search, limit)))
        .await
        .map_err(unavailable)?
        .map_err(|e| (StatusCode::BAD_REQUEST, e))
}

/// Runs one dead letter's original again; `Ok` with the message id once settled (delivered
/// or dead-lettered anew), `Err` with the reason when it stays where it was.
async fn replay_one(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    id: u64,
    d: DeadLetter,
) -> Result<String, String> {
    if !live.project.pipelines.contains_key(&d.pipeline) {
        return Err(format!("pipeline `{}` is not loaded", d.pipeline));
    }
    let envelope = d.original.unwrap_or(d.message);
    let Some(mut msg) = Message::from_envelope(envelope) else {
        return Err("the dead letter holds no message envelope".to_string());
    };
    let replays = msg
        .meta()
        .get("replay")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    msg.set_meta("replay", json!(replays + 1));
    let unit = Unit {
        replaces: Some(id),
        ..Unit::default()
    };
    let (rt2, live2, pipeline) = (rt.clone(), live.clone(), d.pipeline.clone());
    // On its own task, as a webhook: a caller that goes away does not stop it halfway.
    let ran = tokio::spawn(async move {
        run_message(&rt2, &live2, &pipeline, Input::Message(msg), unit).await
    })
    .await;
    match ran {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(failed)) => Err(failed.error.message),
        Err(e) => Err(format!("the replay's task failed: {e}")),
    }
}
