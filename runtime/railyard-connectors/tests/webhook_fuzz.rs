//! Fuzz harness for webhook request parsing: the real axum router, driven with `oneshot`
//! on arbitrary requests — methods, paths, headers (duplicates, non-UTF-8 bytes, huge
//! values), content types, bodies (random bytes, near-JSON, deep nesting, BOM, huge
//! numbers, duplicate keys), a declared `content-length` that does not match, streamed
//! bodies. Each request is judged against a model of the checks: which of them certainly
//! fail, which may (a duplicated header), which pass. The answer is one of the documented
//! statuses, one the failing checks allow; 202 only when every check passes (the API key and
//! signature among them, and `railyard_core::json::parse_payload` takes the body); what the
//! hand-off received is the parsed body without credential headers (unless kept). The model
//! does not fix the order of the checks, so it holds whether the API key is checked before
//! or after the body is read.
//!
//! Default case count is small so `cargo test` stays quick; `PROPTEST_CASES=20000` (or
//! `benches/fuzz/run.sh`) runs the long fuzz.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use railyard_connectors::http::{Handoff, Inbound, Unavailable, router, routes, shared};
use railyard_core::json::parse_payload;
use railyard_core::project::{LoadOptions, MemFiles, load};
use serde_json::Value;
use tower::ServiceExt;

#[path = "../../railyard-core/tests/fuzz/mod.rs"]
mod fuzz;
use fuzz::config;

/// What a route is configured with, written out independently of `Route::of`.
struct Spec {
    name: &'static str,
    path: &'static str,
    yaml: &'static str,
    methods: &'static [&'static str],
    max_body: usize,
    types: &'static [&'static str],
    key: Option<(&'static str, &'static [&'static str])>,
    sig: Option<(&'static str, &'static str)>,
    /// Headers the message must not carry.
    stripped: &'static [&'static str],
    /// Credential headers the input keeps.
    kept: &'static [&'static str],
    correlation: &'static str,
}

const SECRET: &str = "s3cret";

const SPECS: &[Spec] = &[
    Spec {
        name: "open",
        path: "/hooks/open",
        yaml: "pipeline: open\ninput:\n  http:\n    path: /hooks/open\n    max_body: 4096\noutput: { stdout: {} }\n",
        methods: &["POST"],
        max_body: 4096,
        types: &["application/json"],
        key: None,
        sig: None,
        stripped: &[
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
        ],
        kept: &[],
        correlation: "x-correlation-id",
    },
    Spec {
        name: "keyed",
        path: "/hooks/keyed",
        yaml: "pipeline: keyed\ninput:\n  http:\n    path: /hooks/keyed\n    methods: [POST, put]\n    max_body: 2048\n    content_types: [application/json, Text/Plain]\n    api_key: { header: X-Token, keys: [k-one, k-two-longer] }\noutput: { stdout: {} }\n",
        methods: &["POST", "PUT"],
        max_body: 2048,
        types: &["application/json", "text/plain"],
        key: Some(("x-token", &["k-one", "k-two-longer"])),
        sig: None,
        stripped: &[
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
            "x-token",
        ],
        kept: &[],
        correlation: "x-correlation-id",
    },
    Spec {
        name: "kept",
        path: "/hooks/kept",
        yaml: "pipeline: kept\ninput:\n  http:\n    path: /hooks/kept\n    max_body: 4096\n    api_key: { keys: [k3y] }\n    keep_headers: [Cookie]\n  correlation_header: X-Request-Id\noutput: { stdout: {} }\n",
        methods: &["POST"],
        max_body: 4096,
        types: &["application/json"],
        key: Some(("x-api-key", &["k3y"])),
        sig: None,
        stripped: &["authorization", "proxy-authorization", "x-api-key"],
        kept: &["cookie"],
        correlation: "x-request-id",
    },
    Spec {
        name: "signed",
        path: "/hooks/signed",
        yaml: "pipeline: signed\ninput:\n  http:\n    path: /hooks/signed\n    max_body: 4096\n    verify:\n      hmac_sha256: { header: X-Sig, secret: s3cret, encoding: hex }\noutput: { stdout: {} }\n",
        methods: &["POST"],
        max_body: 4096,
        types: &["application/json"],
        key: None,
        sig: Some(("x-sig", SECRET)),
        stripped: &[
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-api-key",
            "x-sig",
        ],
        kept: &[],
        correlation: "x-correlation-id",
    },
];

const DOCUMENTED: [u16; 8] = [202, 400, 401, 404, 405, 413, 415, 503];

type Seen = Arc<Mutex<Vec<Inbound>>>;

struct App {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    seen: Seen,
    unavailable: Arc<AtomicBool>,
}

thread_local! {
    /// One project, router and runtime per test thread (loading per case would dominate).
    static APP: App = app();
}

fn app() -> App {
    let mut files = MemFiles::new();
    for s in SPECS {
        files.insert(&format!("pipelines/{}.yaml", s.name), s.yaml);
    }
    let loaded = load(&files, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let seen: Seen = Arc::default();
    let unavailable = Arc::new(AtomicBool::new(false));
    let (s, u) = (seen.clone(), unavailable.clone());
    let handoff: Handoff = Arc::new(move |inbound: Inbound| {
        let (s, u) = (s.clone(), u.clone());
        Box::pin(async move {
            let mut v = s.lock().unwrap();
            v.push(inbound);
            if u.load(Ordering::Relaxed) {
                return Err(Unavailable {
                    retry_after_secs: 3,
                    reason: "store is busy".into(),
                });
            }
            Ok(format!("msg-{}", v.len()))
        })
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = router(
        shared(routes(&loaded.project).unwrap()),
        handoff,
        std::sync::Arc::new(railyard_connectors::http::Limits::default()),
    );
    App {
        rt,
        router,
        seen,
        unavailable,
    }
}

/// How a request's credential or length header is written.
#[derive(Clone, Debug)]
enum Cred {
    Absent,
    /// The route's own valid value (a configured key, the body's signature, its length).
    Valid,
    Other(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Req {
    route: usize,
    path_suffix: &'static str,
    method: String,
    content_type: Option<String>,
    key: Cred,
    sig: Cred,
    length: Cred,
    extra: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    chunks: Option<usize>,
    unavailable: bool,
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[ -~]{0,30}".prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::sample::select(vec!["k-one", "k3y", "k-two-longer", " k-one", "k-one ", "K-ONE", "k-onek-two-longer", "", "k-on"])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => (0usize..70_000).prop_map(|n| vec![b'a'; n]),
        1 => "[\u{80}-\u{10FFFF}]{1,8}".prop_map(String::into_bytes),
    ]
}

fn cred() -> impl Strategy<Value = Cred> {
    prop_oneof![
        2 => Just(Cred::Absent),
        3 => Just(Cred::Valid),
        2 => header_bytes().prop_map(Cred::Other),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "authorization", "Authorization", "proxy-authorization", "cookie", "COOKIE",
            "x-api-key", "X-Token", "x-token", "x-sig", "X-Request-Id", "x-correlation-id",
            "content-type", "content-length", "accept", "x-custom", "user-agent",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z][a-zA-Z0-9-]{0,14}",
    ]
}

fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("true".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "[0-9]{19,40}",
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][+-]?[0-9]{1,4}",
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        "\"([a-z]|\\\\[nrt\"\\\\/]|\\\\u[0-9a-fA-F]{4})*\"",
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json_text().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..600),
        // Near-JSON: valid text with one byte changed, inserted or cut.
        2 => (json_text(), any::<prop::sample::Index>(), any::<u8>(), 0..3u8).prop_map(|(t, at, b, how)| {
            let mut v = t.into_bytes();
            let i = at.index(v.len() + 1);
            match how {
                0 if i < v.len() => v[i] = b,
                1 => v.insert(i, b),
                _ => v.truncate(i),
            }
            v
        }),
        1 => json_text().prop_map(|t| [b"\xEF\xBB\xBF".as_slice(), t.as_bytes()].concat()),
        1 => (1usize..400, any::<bool>()).prop_map(|(n, closed)| {
            let mut v = vec![b'['; n];
            if closed { v.extend(std::iter::repeat_n(b']', n)); }
            v
        }),
        1 => ("[a-c]", json_text(), json_text()).prop_map(|(k, a, b)| format!("{{\"{k}\": {a}, \"{k}\": {b}}}").into_bytes()),
        // Around the size limits (2048 and 4096 bytes).
        1 => (prop::sample::select(vec![2040usize, 2048, 2049, 4090, 4096, 4097, 70_000]), 0usize..12).prop_map(|(n, d)| {
            let n = n.saturating_sub(d);
            let pad = n.saturating_sub(8);
            format!("{{\"p\":\"{}\"}}", "x".repeat(pad)).into_bytes()
        }),
    ]
}

fn request() -> impl Strategy<Value = Req> {
    (
        (
            0..SPECS.len(),
            prop_oneof![
                8 => Just(""),
                2 => prop::sample::select(vec!["/", "?a=1", "/..", "%2F", "x", "/../open", ";a", "?", "#f"]),
            ],
            prop_oneof![
                10 => Just("POST".to_string()),
                1 => prop::sample::select(vec!["PUT", "GET", "HEAD", "DELETE", "PATCH", "OPTIONS", "post", "M-SEARCH"]).prop_map(str::to_string),
                1 => "[A-Za-z!#$%&'*+.^_`|~-]{1,10}",
            ],
            prop_oneof![
                8 => Just(Some("application/json".to_string())),
                1 => Just(None),
                2 => prop::sample::select(vec![
                    "application/json; charset=utf-8", "Application/JSON", " application/json ",
                    "text/plain", "application/json;", "application/jsonx", "application/x-www-form-urlencoded",
                    "application/json, text/plain", "",
                ]).prop_map(|s| Some(s.to_string())),
                1 => header_bytes().prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned())),
            ],
        ),
        (cred(), cred(), prop_oneof![3 => Just(Cred::Absent), 2 => Just(Cred::Valid), 1 => prop::sample::select(vec!["0", "5", "+5", "-1", "abc", "99999999999999999999999", "2049", "4097", "4096"]).prop_map(|s| Cred::Other(s.as_bytes().to_vec()))]),
        prop::collection::vec((header_name(), header_bytes()), 0..6),
        body(),
        prop_oneof![3 => Just(None), 1 => (1usize..6).prop_map(Some)],
        prop::bool::weighted(0.1),
    )
        .prop_map(|((route, path_suffix, method, content_type), (key, sig, length), extra, body, chunks, unavailable)| Req {
            route,
            path_suffix,
            method,
            content_type,
            key,
            sig,
            length,
            extra,
            body,
            chunks,
            unavailable,
        })
}

fn signature(body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Builds the request; `None` when the generated method or path is not valid HTTP at all.
fn build(r: &Req) -> Option<Request<Body>> {
    let spec = &SPECS[r.route];
    let method = Method::from_bytes(r.method.as_bytes()).ok()?;
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{}{}", spec.path, r.path_suffix));
    let mut add = |name: &str, value: &[u8]| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) && let Some(h) = b.headers_mut()
        {
            h.append(n, v);
        }
    };
    if let Some(ct) = &r.content_type {
        add("content-type", ct.as_bytes());
    }
    let key_header = spec.key.map_or("x-api-key", |(h, _)| h);
    match &r.key {
        Cred::Absent => {}
        Cred::Valid => add(
            key_header,
            spec.key.map_or("k-one", |(_, k)| k[0]).as_bytes(),
        ),
        Cred::Other(v) => add(key_header, v),
    }
    match &r.sig {
        Cred::Absent => {}
        Cred::Valid => add("x-sig", signature(&r.body).as_bytes()),
        Cred::Other(v) => add("x-sig", v),
    }
    match &r.length {
        Cred::Absent => {}
        Cred::Valid => add("content-length", r.body.len().to_string().as_bytes()),
        Cred::Other(v) => add("content-length", v),
    }
    for (name, value) in &r.extra {
        add(name, value);
    }
    let body = match r.chunks {
        None => Body::from(r.body.clone()),
        Some(n) => {
            let size = r.body.len().div_ceil(n).max(1);
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                r.body.chunks(size).map(|c| Ok(c.to_vec())).collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        }
    };
    b.body(body).ok()
}

/// A check's outcome on a request: passes, fails, or may go either way (a duplicated header).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Pass,
    Fail,
    Either,
}

/// Whether the values of a header satisfy `ok`: one value that does passes; none that do
/// fails; several with some passing may go either way (which one counts is not specified).
fn judge(values: &[&HeaderValue], ok: impl Fn(&str) -> bool) -> Check {
    let good = values.iter().filter(|v| v.to_str().is_ok_and(&ok)).count();
    match (good, values.len()) {
        (0, _) => Check::Fail,
        (1, 1) => Check::Pass,
        _ => Check::Either,
    }
}

fn run(r: &Req) -> Result<(), TestCaseError> {
    let Some(req) = build(r) else {
        return Ok(());
    };
    let spec = &SPECS[r.route];
    let headers = req.headers().clone();
    let all = |name: &str| headers.get_all(name).iter().collect::<Vec<_>>();
    let path_matches = req.uri().path() == spec.path;
    let method = req.method().as_str().to_string();

    // The model: each check, with the status it answers when it fails.
    let mut checks: Vec<(Check, &[u16])> = Vec::new();
    let on = |c: bool| if c { Check::Pass } else { Check::Fail };
    checks.push((on(spec.methods.contains(&method.as_str())), &[405]));
    let media = |v: &str| {
        let m = v
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        spec.types.contains(&m.as_str())
    };
    checks.push((judge(&all("content-type"), media), &[415]));
    let max = spec.max_body;
    let declared = all("content-length");
    let declared_too_big = declared.iter().any(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .is_some_and(|n| n > max)
    });
    checks.push((on(r.body.len() <= max && !declared_too_big), &[413]));
    // A declared length that is not the body's: the server may refuse it as malformed.
    let mismatch = declared
        .iter()
        .any(|v| v.to_str().ok().and_then(|s| s.parse::<usize>().ok()) != Some(r.body.len()));
    if mismatch {
        checks.push((Check::Either, &[400, 413]));
    }
    if let Some((header, keys)) = spec.key {
        checks.push((judge(&all(header), |v| keys.contains(&v)), &[401]));
    }
    if let Some((header, _)) = spec.sig {
        let want = signature(&r.body);
        checks.push((
            judge(&all(header), |v| v.trim().eq_ignore_ascii_case(&want)),
            &[401],
        ));
    }
    let parsed = parse_payload(&r.body);
    checks.push((on(parsed.is_ok()), &[400]));

    let (status, body, handed) = APP.with(|app| {
        app.seen.lock().unwrap().clear();
        app.unavailable.store(r.unavailable, Ordering::Relaxed);
        let response = app.rt.block_on(app.router.clone().oneshot(req)).unwrap();
        let status = response.status();
        let bytes = app
            .rt
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let handed = std::mem::take(&mut *app.seen.lock().unwrap());
        (status, bytes, handed)
    });
    let code = status.as_u16();
    prop_assert!(DOCUMENTED.contains(&code), "undocumented status {}", status);
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);

    if !path_matches {
        prop_assert_eq!(code, 404);
    } else {
        let failing: BTreeSet<u16> = checks
            .iter()
            .filter(|(c, _)| *c != Check::Pass)
            .flat_map(|(_, codes)| codes.iter().copied())
            .collect();
        let certain = checks.iter().any(|(c, _)| *c == Check::Fail);
        let success = if r.unavailable { 503 } else { 202 };
        if certain {
            prop_assert!(
                failing.contains(&code),
                "{} where the checks failing allow {:?}",
                code,
                failing
            );
        } else if failing.is_empty() {
            prop_assert_eq!(code, success, "every check passes: {}", answer);
        } else {
            prop_assert!(
                code == success || failing.contains(&code),
                "{} not in {:?} nor {}",
                code,
                failing,
                success
            );
        }
    }
    if method == "HEAD" {
        // axum answers HEAD without a body.
    } else if code == 202 {
        prop_assert_eq!(&answer["id"], "msg-1");
    } else {
        prop_assert!(
            answer["error"].is_string(),
            "a refusal says why: {}",
            answer
        );
    }

    // What the hand-off saw.
    if code == 202 || code == 503 {
        prop_assert_eq!(handed.len(), 1);
        let inbound = &handed[0];
        prop_assert_eq!(inbound.pipeline.as_str(), spec.name);
        prop_assert_eq!(Ok(&inbound.body), parsed.as_ref());
        for h in spec.stripped {
            prop_assert!(
                !inbound.headers.contains_key(*h),
                "credential `{}` handed off",
                h
            );
        }
        for name in inbound.headers.keys() {
            prop_assert_eq!(name.clone(), name.to_ascii_lowercase());
        }
        for h in spec.kept {
            if let [one] = all(h).as_slice()
                && let Ok(v) = one.to_str()
            {
                prop_assert_eq!(&inbound.headers[*h], v, "kept header `{}`", h);
            }
        }
        if let [one] = all(spec.correlation).as_slice()
            && let Ok(v) = one.to_str()
        {
            prop_assert_eq!(inbound.correlation_id.as_deref(), Some(v));
        }
    } else {
        prop_assert!(handed.is_empty(), "refused with {}, yet handed off", code);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any request: a documented status that the failing checks allow, 202 only when all
    /// pass, and the hand-off holds the parsed body and no credential header.
    #[test]
    fn fuzz_webhook_requests_are_answered_as_the_checks_say(r in request()) {
        run(&r)?;
    }
}
