//! The message: a JSON body plus metadata, held as one JSON envelope `{body, meta}`.
//!
//! Step expressions (filter, switch, dedupe, reserve, metadata, templates) evaluate over that
//! envelope, so keeping the message in exactly that shape means no expression ever needs a copy
//! of the body to run.

use serde_json::{Map, Value};

/// Metadata names the runtime owns; `metadata` steps may read them but not set them.
pub const RESERVED_META: &[&str] = &[
    "id",
    "correlation_id",
    "causation_id",
    "source",
    "schema",
    "pipeline",
    "pipeline_version",
    "pipeline_revision",
    "attempt",
    "received_at",
    "headers",
    "route",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    env: Value,
}

/// What a new message is created from.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// Message id; generated when absent.
    pub id: Option<String>,
    /// Correlation id from the inbound header; the message id when absent.
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// Where it came from, e.g. `http:/webhooks/shopify/orders`, `test:<name>`.
    pub source: String,
    /// Inbound headers, lower-cased names.
    pub headers: Map<String, Value>,
    /// RFC 3339 receive time.
    pub received_at: String,
}

impl Message {
    pub fn new(body: Value, origin: Origin, ids: &dyn Fn() -> String) -> Message {
        let id = origin.id.unwrap_or_else(ids);
        let correlation = origin.correlation_id.unwrap_or_else(|| id.clone());
        let mut meta = Map::new();
        meta.insert("id".into(), Value::String(id));
        meta.insert("correlation_id".into(), Value::String(correlation));
        meta.insert(
            "causation_id".into(),
            origin.causation_id.map_or(Value::Null, Value::String),
        );
        meta.insert("source".into(), Value::String(origin.source));
        meta.insert("schema".into(), Value::Null);
        meta.insert("pipeline".into(), Value::Null);
        meta.insert("pipeline_version".into(), Value::Null);
        meta.insert("pipeline_revision".into(), Value::Null);
        meta.insert("attempt".into(), Value::from(1));
        meta.insert("received_at".into(), Value::String(origin.received_at));
        meta.insert("headers".into(), Value::Object(origin.headers));
        let mut env = Map::new();
        env.insert("body".into(), body);
        env.insert("meta".into(), Value::Object(meta));
        Message {
            env: Value::Object(env),
        }
    }

    /// A message from a stored or received envelope (`{body, meta}`), e.g. off a topic.
    /// Returns `None` when the value is not an envelope.
    pub fn from_envelope(env: Value) -> Option<Message> {
        let ok = env.get("body").is_some() && env.get("meta").is_some_and(Value::is_object);
        ok.then_some(Message { env })
    }

    /// The `{body, meta}` envelope that step expressions see.
    pub fn envelope(&self) -> &Value {
        &self.env
    }

    pub fn body(&self) -> &Value {
        self.env.get("body").unwrap_or(&Value::Null)
    }

    pub fn set_body(&mut self, body: Value) {
        if let Value::Object(env) = &mut self.env {
            env.insert("body".into(), body);
        }
    }

    pub fn take_body(&mut self) -> Value {
        match &mut self.env {
            Value::Object(env) => env
                .insert("body".into(), Value::Null)
                .unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    pub fn meta(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        self.env
            .get("meta")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY)
    }

    fn meta_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.env.get_mut("meta").and_then(Value::as_object_mut)
    }

    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.meta().get(key).and_then(Value::as_str)
    }

    pub fn id(&self) -> &str {
        self.meta_str("id").unwrap_or_default()
    }

    pub fn schema(&self) -> Option<&str> {
        self.meta_str("schema")
    }

    pub fn route(&self) -> Option<&str> {
        self.meta_str("route")
    }

    pub fn set_meta(&mut self, key: &str, value: Value) {
        if let Some(meta) = self.meta_mut() {
            meta.insert(key.to_string(), value);
        }
    }

    pub fn remove_meta(&mut self, key: &str) {
        if let Some(meta) = self.meta_mut() {
            meta.remove(key);
        }
    }

    /// A new message derived from this one (split, batch): fresh id, same correlation id,
    /// causation id = this message's id.
    pub fn child(&self, body: Value, new_id: String) -> Message {
        let mut child = self.clone();
        let parent_id = self.id().to_string();
        child.set_body(body);
        child.set_meta("id", Value::String(new_id));
        child.set_meta("causation_id", Value::String(parent_id));
        child
    }
}
