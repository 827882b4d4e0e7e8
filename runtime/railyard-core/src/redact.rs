//! Secrets from the environment, kept out of what Railyard shows.
//!
//! While a project loads, every `${env:NAME}` value is looked at ([`Secrets::note`]): it is a
//! secret when it stands in a secret position (a key named like `secret`, `keys`, `token`,
//! `password`, `authorization`, ...) or its variable is named like one (`*_SECRET`,
//! `*_TOKEN`, `*_API_KEY`, `*PASSWORD*`, ...); and when the value is a URL, its password and
//! the values of query parameters named like secrets are secrets too. [`Secrets::redact`]
//! replaces each of them in a text by `[redacted]`; the runtime passes every log line, dead
//! letter error and `/health` report through it.
//!
//! A value shorter than [`MIN_LEN`] bytes is not redacted: replacing `1` or `abc` everywhere
//! would garble every log line and protect nothing.

use std::borrow::Cow;

/// The shortest value treated as a secret.
pub const MIN_LEN: usize = 6;

/// What a secret is replaced by.
pub const REDACTED: &str = "[redacted]";

/// The secret values of a project (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is replaced whole.
    values: Vec<String>,
}

/// Words that make a setting's key or a variable's name a secret's.
const SECRET_WORDS: [&str; 11] = [
    "secret",
    "token",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "private_key",
    "credential",
    "authorization",
    "cookie",
    "signature",
];

/// Whether a key or variable name names a secret: one of [`SECRET_WORDS`] (case and `-`/`_`
/// ignored), `keys` or `key` alone (API keys), or a name ending in `_key` or `_pass`.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|w| n.contains(w))
        || n.replace('_', "").contains("apikey")
        || matches!(n.as_str(), "key" | "keys" | "pass" | "pwd" | "auth")
        || n.ends_with("_key")
        || n.ends_with("_pass")
        || n.ends_with("_pwd")
        || n.ends_with("_auth")
}

impl Secrets {
    /// Looks at one value read from `${env:name}` at a setting named `key` (the nearest
    /// mapping key above it, if any).
    pub fn note(&mut self, key: Option<&str>, name: &str, value: &str) {
        if looks_secret(name) || key.is_some_and(looks_secret) {
            self.add(value);
            // `Bearer <token>`, `Basic <base64>`: the credential without its scheme too.
            if let Some((_, credential)) = value.split_once(' ') {
                self.add(credential.trim());
            }
        }
        for s in url_secrets(value) {
            self.add(&s);
        }
    }

    /// Adds one secret value (ignored when shorter than [`MIN_LEN`]).
    pub fn add(&mut self, value: &str) {
        if value.len() < MIN_LEN || self.values.iter().any(|v| v == value) {
            return;
        }
        self.values.push(value.to_string());
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every secret of `other` added to these.
    pub fn merge(&mut self, other: &Secrets) {
        for v in &other.values {
            self.add(v);
        }
    }

    /// Every string in `value` (keys too) with the secrets redacted.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.values.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (k, mut v) in entries {
                    self.redact_json(&mut v);
                    map.insert(self.redact(&k).into_owned(), v);
                }
            }
            _ => {}
        }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }
}

/// The secrets inside a URL: its password (as written and percent-decoded) and the values of
/// query parameters named like secrets. Nothing when `value` is not a URL.
pub fn url_secrets(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(scheme_end) = value.find("://") else {
        return out;
    };
    let rest = &value[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((user, password)) = userinfo.split_once(':')
    {
        use base64::Engine;
        out.push(password.to_string());
        out.push(percent_decoded(password));
        // HTTP clients send URL credentials as `Authorization: Basic base64(user:password)`,
        // which a peer's error may quote back.
        let basic = format!("{}:{}", percent_decoded(user), percent_decoded(password));
        out.push(base64::engine::general_purpose::STANDARD.encode(basic));
    }
    if let Some(q) = rest.find('?') {
        let query = rest[q + 1..].split('#').next().unwrap_or_default();
        for pair in query.split('&') {
            if let Some((k, v)) = pair.split_once('=')
                && looks_secret(&percent_decoded(k))
            {
                out.push(v.to_string());
                out.push(percent_decoded(v));
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.dedup();
    out
}

/// `%XX` escapes decoded (`+` left as is); invalid escapes and non-UTF-8 results are kept as
/// written.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_known_by_their_key_or_their_name() {
        for name in [
            "SHOPIFY_WEBHOOK_SECRET",
            "BC_TOKEN",
            "ERP_API_KEY",
            "erp-apikey",
            "DB_PASSWORD",
            "keys",
            "secret",
            "Authorization",
            "x-api-key",
            "SMTP_PASS",
            "client_secret",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "BC_BASE_URL",
            "routing",
            "path",
            "queue",
            "header",
            "keyboard",
            "monkey",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn values_are_redacted_wherever_they_appear() {
        let mut s = Secrets::default();
        s.note(Some("secret"), "WHATEVER", "whsec_8f2b1c9d");
        s.note(Some("Authorization"), "BC", "Bearer eyJhbGciOi.payload");
        s.note(
            Some("url"),
            "BC_BASE_URL",
            "https://bc:p%40ss-w0rd@erp.example.com/api?apikey=k3y-123456&page=2",
        );
        s.note(Some("queue"), "QUEUE", "orders.accepted");
        s.note(Some("secret"), "SHORT", "abc");
        let text = "sig whsec_8f2b1c9d, bearer eyJhbGciOi.payload, pw p@ss-w0rd / p%40ss-w0rd, key k3y-123456, queue orders.accepted, page=2, abc";
        let shown = s.redact(text);
        for leaked in ["whsec_", "eyJhbG", "p@ss", "p%40ss", "k3y-"] {
            assert!(!shown.contains(leaked), "{shown}");
        }
        assert!(
            shown.contains("orders.accepted") && shown.contains("abc"),
            "{shown}"
        );
        assert_eq!(shown.matches(REDACTED).count(), 5, "{shown}");
        assert!(matches!(s.redact("nothing here"), Cow::Borrowed(_)));
        let mut v = serde_json::json!({"error": {"message": "401 from erp with whsec_8f2b1c9d", "n": 1, "list": ["eyJhbGciOi.payload"]}});
        s.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"error": {"message": "401 from erp with [redacted]", "n": 1, "list": ["[redacted]"]}})
        );
    }

    #[test]
    fn url_secrets_are_the_password_and_secret_query_values() {
        assert_eq!(
            url_secrets("amqp://guest:guest-pw@127.0.0.1:5672/%2f"),
            vec!["guest-pw".to_string(), "Z3Vlc3Q6Z3Vlc3QtcHc=".to_string()]
        );
        assert_eq!(
            url_secrets("https://erp/x?token=t0k3n&id=7#frag"),
            vec!["t0k3n".to_string()]
        );
        assert!(url_secrets("https://user@host/p?q=1").is_empty());
        assert!(url_secrets("not a url").is_empty());
        assert_eq!(percent_decoded("a%4"), "a%4");
        assert_eq!(percent_decoded("%zz%41"), "%zzA");
    }
}
