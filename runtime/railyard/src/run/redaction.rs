//! The secrets in force, and the log writer that keeps them out of every log line.
//!
//! The running project's `${env:…}` secrets ([`railyard_core::redact`]) plus the password of
//! `RAILYARD_AMQP_URL` are held here, swapped at each reload; every log line (text or JSON)
//! goes through [`Stderr`], every dead letter's error through [`redact_error`].

use std::io::Write;
use std::sync::{Arc, LazyLock, RwLock};

use railyard_core::redact::{Secrets, url_secrets};

static IN_FORCE: LazyLock<RwLock<Arc<Secrets>>> = LazyLock::new(Default::default);

/// Makes `project`'s secrets, with the process's own, the ones redacted from now on.
pub(crate) fn set(project: &Secrets) {
    let mut all = project.clone();
    if let Ok(url) = std::env::var("RAILYARD_AMQP_URL") {
        for s in url_secrets(&url) {
            all.add(&s);
        }
    }
    if let Ok(token) = std::env::var("RAILYARD_ADMIN_TOKEN") {
        all.add(token.trim());
    }
    let mut slot = IN_FORCE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *slot = Arc::new(all);
}

pub(crate) fn in_force() -> Arc<Secrets> {
    IN_FORCE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A dead letter's error with the secrets redacted (a downstream error can quote a header or
/// a URL the output sent).
pub(crate) fn redact_error(mut error: serde_json::Value) -> serde_json::Value {
    in_force().redact_json(&mut error);
    error
}

/// Standard error, redacted: the log writer. The formatter hands it one whole event per
/// `write`, so a secret is never split between two calls.
pub(crate) struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let secrets = in_force();
        if secrets.is_empty() {
            return std::io::stderr().write_all(buf).map(|()| buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .write_all(secrets.redact(&text).as_bytes())
            .map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
