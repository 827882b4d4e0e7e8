//! The client side of the admin API, for commands that act on a running server
//! (`railyard dlq replay`, `railyard publish`).

use serde_json::Value;

/// POSTs `body` to `path` on the server at `url` (`RAILYARD_ADMIN_TOKEN`, when set, as a bearer
/// token) and returns its JSON answer; a failure to connect or a non-2xx answer is the error,
/// with the server's reason.
pub fn post(url: &str, path: &str, body: &Value) -> Result<Value, String> {
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let token = std::env::var("RAILYARD_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let sent = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?
        .block_on(async {
            // TLS for an https admin URL: rustls with ring, as `run` uses for its outputs.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()?;
            let mut req = client
                .post(&endpoint)
                .header("content-type", "application/json")
                .body(body.to_string());
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await?;
            let status = resp.status();
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, text))
        });
    let (status, text) = sent.map_err(|e| {
        format!(
            "cannot reach {}: {}",
            railyard_connectors::http::shown_url(&endpoint),
            e.without_url()
        )
    })?;
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let why = answer["error"]
            .as_str()
            .map_or_else(|| answer.to_string(), str::to_string);
        return Err(format!("the server answered {status}: {why}"));
    }
    Ok(answer)
}
