//! The HTTP input as a platform sees it, driven through the axum router with `oneshot`:
//! real Shopify and Square fixtures with their real signatures, and every refusal path.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use railyard_connectors::http::{Handoff, Inbound, Limits, Unavailable, router, routes};
use railyard_core::project::{LoadOptions, MemFiles, Project, load};
use tower::ServiceExt;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(root().join(rel)).expect("fixture")
}

fn add_dir(files: &mut MemFiles, dir: &str) {
    let mut stack = vec![root().join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root())
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(&rel, std::fs::read(&p).expect("read"));
            }
        }
    }
}

/// The reference project plus a small pipeline with tight limits and an API key.
fn project() -> Project {
    let mut files = MemFiles::new();
    for d in [
        "schemas",
        "mappings",
        "pipelines",
        "plugins",
        "tests/fixtures",
    ] {
        add_dir(&mut files, d);
    }
    files.insert(
        "pipelines/zz-limits.yaml",
        "pipeline: zz-limits\ninput:\n  http:\n    path: /hooks/limited\n    max_body: 64\n    api_key: { header: X-Api-Key, keys: [k-one, k-two] }\noutput: { stdout: {} }\n",
    );
    let loaded = load(&files, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.project
}

type Seen = Arc<Mutex<Vec<Inbound>>>;

fn recording(unavailable: bool) -> (Handoff, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let handoff: Handoff = Arc::new(move |inbound: Inbound| {
        let s = s.clone();
        Box::pin(async move {
            if unavailable {
                return Err(Unavailable {
                    retry_after_secs: 7,
                    reason: "store is busy".into(),
                });
            }
            let mut v = s.lock().unwrap();
            v.push(inbound);
            Ok(format!("msg-{}", v.len()))
        })
    });
    (handoff, seen)
}

async fn send(
    app: axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let resp = app.oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn signed_request(path: &str, headers_file: &str, body: Vec<u8>) -> Request<Body> {
    let headers: serde_json::Value = serde_json::from_slice(&fixture(headers_file)).unwrap();
    let mut b = Request::post(path);
    for (k, v) in headers.as_object().unwrap() {
        if k.starts_with('_') || k.eq_ignore_ascii_case("content-length") {
            continue;
        }
        b = b.header(k.as_str(), v.as_str().unwrap());
    }
    b.body(Body::from(body)).unwrap()
}

fn app(unavailable: bool) -> (axum::Router, Seen) {
    let project = project();
    let routes = railyard_connectors::http::shared(routes(&project).expect("no duplicate paths"));
    let (handoff, seen) = recording(unavailable);
    (router(routes, handoff, Arc::new(Limits::default())), seen)
}

#[tokio::test]
async fn signed_shopify_webhook_is_accepted_after_handoff() {
    let (app, seen) = app(false);
    let body = fixture("tests/fixtures/shopify/orders_create.body.json");
    let req = signed_request(
        "/webhooks/shopify/orders",
        "tests/fixtures/shopify/orders_create.headers.json",
        body,
    );
    let (status, headers, json) = send(app, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(json["id"], "msg-1");
    assert_eq!(headers["x-railyard-message-id"], "msg-1");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].pipeline, "shopify-order-intake");
    assert_eq!(
        seen[0].headers["x-shopify-event-id"],
        "98880550-7158-44d4-b7cd-2c97c8a091b5"
    );
    assert_eq!(seen[0].body["id"], 6104523881562u64);
}

#[tokio::test]
async fn square_signs_url_and_body() {
    let (app, seen) = app(false);
    let body = fixture("tests/fixtures/square/order_updated.body.json");
    let req = signed_request(
        "/webhooks/square",
        "tests/fixtures/square/order_updated.headers.json",
        body,
    );
    let (status, _, json) = send(app, req).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{json}");
    assert_eq!(seen.lock().unwrap()[0].pipeline, "square-order-intake");
}

#[tokio::test]
async fn a_tampered_or_unsigned_body_is_401_and_never_handed_off() {
    let (app, seen) = app(false);
    let mut body = fixture("tests/fixtures/shopify/orders_create.body.json");
    let i = body.iter().position(|b| *b == b'9').unwrap();
    body[i] = b'8';
    let req = signed_request(
        "/webhooks/shopify/orders",
        "tests/fixtures/shopify/orders_create.headers.json",
        body.clone(),
    );
    let (status, _, json) = send(app.clone(), req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["error"], "signature does not match");

    let req = Request::post("/webhooks/shopify/orders")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, _, json) = send(app, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        json["error"],
        "missing signature header `x-shopify-hmac-sha256`"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn refusals_have_their_status_codes() {
    let (app, seen) = app(false);
    let post = |ct: &str, key: Option<&str>, body: &str| {
        let mut b = Request::post("/hooks/limited").header("content-type", ct);
        if let Some(k) = key {
            b = b.header("x-api-key", k);
        }
        b.body(Body::from(body.to_string())).unwrap()
    };
    let (s, _, _) = send(
        app.clone(),
        post("application/json", Some("k-two"), "{\"a\":1}"),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, j) = send(app.clone(), post("text/plain", Some("k-two"), "{}")).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{j}");
    let (s, _, j) = send(
        app.clone(),
        post(
            "application/json; charset=utf-8",
            Some("k-two"),
            &"x".repeat(65),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{j}");
    let (s, _, _) = send(app.clone(), post("application/json", Some("k-three"), "{}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = send(app.clone(), post("application/json", None, "{}")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, j) = send(
        app.clone(),
        post("application/json", Some("k-one"), "{\"a\":"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .starts_with("body is not valid JSON"),
        "{j}"
    );
    let (s, h, _) = send(
        app.clone(),
        Request::get("/hooks/limited").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h["allow"], "POST");
    let (s, _, _) = send(app, Request::post("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "only the first request was handed off"
    );
}

#[tokio::test]
async fn a_busy_handoff_answers_503_with_retry_after() {
    let (app, _) = app(true);
    let req = Request::post("/hooks/limited")
        .header("content-type", "application/json")
        .header("x-api-key", "k-one")
        .body(Body::from("{}"))
        .unwrap();
    let (s, h, j) = send(app, req).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h["retry-after"], "7");
    assert_eq!(j["error"], "store is busy");
}

fn keyed(key: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post("/hooks/limited")
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(body.into())
        .unwrap()
}

/// The reproductions of "numbers and JSON edge cases": `2^64` and `2^64+1` were the same
/// order id, and `"amount":1,"amount":1000` was 1000. Both are now a 400 naming the problem,
/// and a BOM-prefixed body is taken as the JSON after it.
#[tokio::test]
async fn webhook_json_is_taken_exactly_as_written_or_refused() {
    let (app, seen) = app(false);
    for (body, says) in [
        (
            r#"{"order_id":18446744073709551616}"#,
            "integer 18446744073709551616",
        ),
        (
            r#"{"order_id":18446744073709551617}"#,
            "integer 18446744073709551617",
        ),
        (r#"{"amount":1,"amount":1000}"#, "the key `amount` twice"),
    ] {
        let (s, _, j) = send(app.clone(), keyed("k-one", body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {j}");
        let error = j["error"].as_str().unwrap();
        assert!(
            error.starts_with("body has ") && error.contains(says),
            "{error}"
        );
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing refused was handed off"
    );

    let (s, _, j) = send(
        app.clone(),
        keyed("k-one", r#"{"order_id":18446744073709551615}"#),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(br#"{"order_id":1}"#);
    let (s, _, j) = send(app, keyed("k-one", bom)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].body["order_id"].as_u64(), Some(u64::MAX));
    assert_eq!(seen[1].body, serde_json::json!({"order_id": 1}));
}

/// Keys that share a prefix with a real key, longer or shorter, are refused like any other.
#[tokio::test]
async fn api_keys_of_other_lengths_are_refused() {
    let (app, seen) = app(false);
    for key in ["k-on", "k-one-", "k-onex", "k-twok-two", ""] {
        let (s, _, j) = send(app.clone(), keyed(key, "{}")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{key:?}: {j}");
    }
    assert!(seen.lock().unwrap().is_empty());
    let keys = ["k-one".to_string(), "k-two".to_string()];
    assert!(railyard_connectors::http::api_key_matches(&keys, b"k-two"));
    assert!(railyard_connectors::http::api_key_matches(&keys, b"k-one"));
    assert!(!railyard_connectors::http::api_key_matches(
        &keys,
        b"k-one k-two"
    ));
    assert!(!railyard_connectors::http::api_key_matches(&[], b""));
}

/// A body that never arrives, and says whether anyone polled it.
fn never_sent(polled: Arc<std::sync::atomic::AtomicBool>) -> Body {
    let stream = futures_util::stream::poll_fn(move |_| {
        polled.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::<Option<Result<axum::body::Bytes, std::io::Error>>>::Pending
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn the_api_key_is_checked_before_the_body_is_polled() {
    let (app, seen) = app(false);
    let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        send(app, keyed("k-three", never_sent(polled.clone()))),
    )
    .await;
    let (s, h, j) = answer.expect("answered without the body");
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{j}");
    assert_eq!(h["connection"], "close");
    assert!(!polled.load(std::sync::atomic::Ordering::SeqCst));
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_that_does_not_arrive_is_408_after_the_body_timeout() {
    let project = project();
    let routes = railyard_connectors::http::shared(routes(&project).expect("no duplicate paths"));
    let (handoff, seen) = recording(false);
    let limits = Limits {
        body_timeout: std::time::Duration::from_millis(200),
        ..Limits::default()
    };
    let app = router(routes, handoff, Arc::new(limits));
    let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (s, h, j) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        send(app, keyed("k-one", never_sent(polled.clone()))),
    )
    .await
    .expect("answered within the bound");
    assert_eq!(s, StatusCode::REQUEST_TIMEOUT, "{j}");
    assert_eq!(h["connection"], "close");
    assert!(
        polled.load(std::sync::atomic::Ordering::SeqCst),
        "the right key reads the body"
    );
    assert!(seen.lock().unwrap().is_empty());
}
