//! Property harness for webhook parsing: whatever a sender puts in the body, the content type,
//! the signature or the API key, the HTTP input answers with a client error or hands the
//! message off — never a panic, never a 5xx of its own, never a hand-off of something it
//! should have refused.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use railyard_connectors::http::{Handoff, Inbound, Limits, router, routes, shared};
use railyard_core::project::{LoadOptions, MemFiles, load};
use tower::ServiceExt;

const PIPELINES: &str = "pipeline: keyed\ninput:\n  http:\n    path: /hooks/keyed\n    max_body: 256\n    api_key: { header: X-Api-Key, keys: [k-one] }\noutput: { stdout: {} }\n";
const SIGNED: &str = "pipeline: signed\ninput:\n  http:\n    path: /hooks/signed\n    verify:\n      hmac_sha256: { header: X-Sig, secret: s3cret, encoding: base64 }\noutput: { stdout: {} }\n";

fn app() -> (axum::Router, Arc<Mutex<Vec<Inbound>>>) {
    let mut files = MemFiles::new();
    files.insert("pipelines/keyed.yaml", PIPELINES);
    files.insert("pipelines/signed.yaml", SIGNED);
    let loaded = load(&files, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let seen: Arc<Mutex<Vec<Inbound>>> = Arc::default();
    let s = seen.clone();
    let handoff: Handoff = Arc::new(move |inbound: Inbound| {
        let s = s.clone();
        Box::pin(async move {
            let mut v = s.lock().unwrap();
            v.push(inbound);
            Ok(format!("msg-{}", v.len()))
        })
    });
    let routes = shared(routes(&loaded.project).unwrap());
    (router(routes, handoff, Arc::new(Limits::default())), seen)
}

fn answer(req: Request<Body>) -> (StatusCode, usize) {
    let (app, seen) = app();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async { app.oneshot(req).await.unwrap().status() });
    let handed = seen.lock().unwrap().len();
    (status, handed)
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_string()),
        Just("application/json; charset=utf-8".to_string()),
        Just("text/plain".to_string()),
        Just("".to_string()),
        "[ -~]{0,40}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        "[ -~]{0,300}".prop_map(String::into_bytes),
        (any::<i64>(), "[a-z]{0,10}")
            .prop_map(|(n, s)| format!("{{\"n\": {n}, \"s\": \"{s}\"}}").into_bytes()),
        Just(b"\xEF\xBB\xBF{\"bom\": true}".to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_api_key_route_refuses_or_hands_off_never_fails(
        body in body(),
        ctype in content_type(),
        key in prop_oneof![Just(Some("k-one".to_string())), Just(None), "[ -~]{0,20}".prop_map(Some)],
    ) {
        let mut b = Request::post("/hooks/keyed");
        if !ctype.is_empty() {
            b = b.header("content-type", ctype.as_str());
        }
        if let Some(k) = &key {
            b = b.header("x-api-key", k.as_str());
        }
        let (status, handed) = answer(b.body(Body::from(body.clone())).unwrap());
        prop_assert!(!status.is_server_error(), "{status}");
        if status == StatusCode::ACCEPTED {
            prop_assert_eq!(handed, 1);
            prop_assert_eq!(key.as_deref(), Some("k-one"));
            prop_assert!(body.len() <= 256);
        } else {
            prop_assert!(status.is_client_error(), "{status}");
            prop_assert_eq!(handed, 0, "refused, yet handed off");
        }
    }

    #[test]
    fn a_signature_route_never_hands_off_a_forged_body(
        body in body(),
        sig in prop_oneof!["[A-Za-z0-9+/=]{0,60}", "[ -~]{0,60}"],
    ) {
        let req = Request::post("/hooks/signed")
            .header("content-type", "application/json")
            .header("x-sig", sig.as_str())
            .body(Body::from(body))
            .unwrap();
        let (status, handed) = answer(req);
        prop_assert!(status.is_client_error(), "{status}");
        prop_assert_eq!(handed, 0);
    }
}
