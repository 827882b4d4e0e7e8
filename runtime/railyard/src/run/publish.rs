//! `POST /admin/publish` (and `railyard publish`): put one message into the running project,
//! onto a topic (as a topic output would publish it) or into a pipeline (as its input would
//! hand it over), so topic-input pipelines can be tried live.

use super::*;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::admin::problem;

pub(crate) async fn publish(rt: Arc<Runtime>, body: axum::body::Bytes) -> Response {
    // The request is a payload like any other: the one JSON intake (exact numbers, no
    // duplicate keys).
    let request = match railyard_core::json::parse_payload(&body) {
        Ok(Value::Object(r)) => r,
        Ok(_) => return problem(StatusCode::BAD_REQUEST, usage()),
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("the request {e}")),
    };
    if let Some(unknown) = request
        .keys()
        .find(|k| !["to", "body", "headers", "correlation_id"].contains(&k.as_str()))
    {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("unknown field `{unknown}`; {}", usage()),
        );
    }
    let (Some(Value::String(to)), Some(message_body)) = (request.get("to"), request.get("body"))
    else {
        return problem(StatusCode::BAD_REQUEST, usage());
    };
    let mut headers = serde_json::Map::new();
    match request.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let Value::String(v) = v else {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        format!("header `{k}` must be a string"),
                    );
                };
                headers.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
            }
        }
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "`headers` must be an object of strings".to_string(),
            );
        }
    }
    let correlation_id = match request.get("correlation_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "`correlation_id` must be a string".to_string(),
            );
        }
    };
    let origin = Origin {
        correlation_id,
        source: format!("publish:{to}"),
        headers,
        // As every input stamps it (a topic has no intake step to do it).
        received_at: outputs::now_rfc3339(),
        ..Origin::default()
    };
    let live = rt.live();
    if let Some(name) = to.strip_prefix("pipeline:") {
        return into_pipeline(&rt, &live, name, message_body.clone(), origin).await;
    }
    onto_topic(&rt, &live, to, message_body.clone(), origin).await
}

fn usage() -> String {
    "send {\"to\": \"<topic>\" or \"pipeline:<name>\", \"body\": <JSON>, \"headers\": {...}, \"correlation_id\": \"...\"}".to_string()
}

async fn into_pipeline(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    name: &str,
    body: Value,
    origin: Origin,
) -> Response {
    if !live.project.pipelines.contains_key(name) {
        let known: Vec<&str> = live.project.pipelines.keys().map(String::as_str).collect();
        return problem(
            StatusCode::NOT_FOUND,
            format!(
                "no pipeline `{name}` is loaded (loaded: {})",
                known.join(", ")
            ),
        );
    }
    let (rt2, live2, name2) = (rt.clone(), live.clone(), name.to_string());
    // On its own task, as a webhook: a caller that goes away does not stop it halfway.
    let ran = tokio::spawn(async move {
        run_message(
            &rt2,
            &live2,
            &name2,
            Input::Payload { body, origin },
            Unit::default(),
        )
        .await
    })
    .await;
    match ran {
        Ok(Ok(id)) => axum::Json(json!({ "id": id, "pipeline": name })).into_response(),
        Ok(Err(failed)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "message {} was not accepted: {}",
                failed.original.id(),
                failed.error.message
            ),
        ),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the message's task failed: {e}"),
        ),
    }
}

async fn onto_topic(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    topic: &str,
    body: Value,
    origin: Origin,
) -> Response {
    // A topic nobody consumes would take the message and keep it nowhere.
    let consumers: Vec<&str> = live
        .project
        .pipelines
        .values()
        .filter(|p| consumed_topic(p).is_some_and(|(t, _)| t == topic))
        .map(|p| p.name.as_str())
        .collect();
    if consumers.is_empty() {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no pipeline consumes topic `{topic}`; nothing was published"),
        );
    }
    let id = rt.next_id();
    let message = Message::new(body, origin, &|| id.clone());
    let marked = AtomicBool::new(false);
    let cx = rt.sink_cx(&live.project, &marked);
    match railyard_connectors::sink::topic::publish(&cx, topic, &message).await {
        Ok(()) => axum::Json(json!({ "id": message.id(), "topic": topic, "consumers": consumers }))
            .into_response(),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("topic `{topic}`: {}", e.message),
        ),
    }
}
