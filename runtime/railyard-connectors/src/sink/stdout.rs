//! The stdout sink: one JSON line per message, the body or (`with_meta`) the whole envelope.

use std::io::Write;

use super::{Item, SendError, Sink, SinkCx};

pub struct StdoutSink {
    pub with_meta: bool,
}

impl Sink for StdoutSink {
    async fn send(&self, _cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
        let value = if self.with_meta {
            item.message.envelope()
        } else {
            item.message.body()
        };
        let line = serde_json::to_string(value).map_err(|e| SendError::permanent(e.to_string()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| SendError::transient(format!("stdout: {e}")))
    }
}
