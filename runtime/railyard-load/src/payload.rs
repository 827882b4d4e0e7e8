//! The messages: one JSON template, made distinct by a message id `<prefix><seq>` (written into
//! the body at `--id-field`) and the sequence number (at `--seq-field`).

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;

/// The built-in payload: a canonical order (two lines, money, addresses; 3.2 KB).
const DEFAULT_PAYLOAD: &str =
    include_str!("../../../tests/fixtures/canonical/order.shopify_1042.json");

#[derive(clap::Args, Clone, Debug)]
pub struct PayloadArgs {
    /// JSON file sent as every message body (default: the canonical order of
    /// tests/fixtures/canonical/order.shopify_1042.json, built in).
    #[arg(long)]
    pub payload: Option<PathBuf>,
    /// Write the message id (a string) at this dotted path of the body, e.g. `order_id`.
    #[arg(long)]
    pub id_field: Option<String>,
    /// Write the sequence number (an integer) at this dotted path of the body, e.g. `seq`.
    #[arg(long)]
    pub seq_field: Option<String>,
    /// Message ids are `<prefix><seq>` (default `load-<unix seconds>-`).
    #[arg(long)]
    pub id_prefix: Option<String>,
    /// First sequence number.
    #[arg(long, default_value_t = 0)]
    pub start: u64,
}

pub struct Payload {
    template: Value,
    id_field: Option<Vec<String>>,
    seq_field: Option<Vec<String>>,
    pub prefix: String,
    pub start: u64,
}

pub fn default_prefix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("load-{secs}-")
}

fn path(p: &Option<String>) -> Option<Vec<String>> {
    p.as_ref()
        .map(|p| p.split('.').map(str::to_string).collect())
}

impl Payload {
    pub fn new(args: &PayloadArgs) -> anyhow::Result<Payload> {
        let text = match &args.payload {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the payload {}", p.display()))?,
            None => DEFAULT_PAYLOAD.to_string(),
        };
        let template: Value = serde_json::from_str(&text).context("the payload is not JSON")?;
        Ok(Payload {
            template,
            id_field: path(&args.id_field),
            seq_field: path(&args.seq_field),
            prefix: args.id_prefix.clone().unwrap_or_else(default_prefix),
            start: args.start,
        })
    }

    /// The id of the `i`-th message (counting from 0).
    pub fn id(&self, i: u64) -> String {
        format!("{}{}", self.prefix, self.start + i)
    }

    /// The body of the `i`-th message.
    pub fn body(&self, i: u64) -> Vec<u8> {
        let mut v = self.template.clone();
        if let Some(p) = &self.id_field {
            set(&mut v, p, Value::String(self.id(i)));
        }
        if let Some(p) = &self.seq_field {
            set(&mut v, p, Value::from(self.start + i));
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

/// Sets `value` at a dotted path, creating (or replacing non-objects by) objects on the way.
pub fn set(root: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *root = value;
        return;
    };
    let mut cur = root;
    for key in parents {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Value::Object(map) = cur else { return };
        cur = map.entry(key.clone()).or_insert(Value::Null);
    }
    if !cur.is_object() {
        *cur = Value::Object(Default::default());
    }
    if let Value::Object(map) = cur {
        map.insert(last.clone(), value);
    }
}

/// Reads a dotted path: a string as is, a number or boolean as its JSON text.
pub fn get(root: &Value, path: &[String]) -> Option<String> {
    let mut cur = root;
    for key in path {
        cur = cur.get(key)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

pub fn dotted(p: &str) -> Vec<String> {
    p.split('.').map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_fields_are_distinct_per_message() {
        let p = Payload::new(&PayloadArgs {
            payload: None,
            id_field: Some("order_id".into()),
            seq_field: Some("meta.seq".into()),
            id_prefix: Some("load:t-".into()),
            start: 10,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let b: Value = serde_json::from_slice(&p.body(2)).unwrap_or_default();
        assert_eq!(b["order_id"], "load:t-12");
        assert_eq!(b["meta"]["seq"], 12);
        assert_eq!(b["channel"], "shopify");
        assert_eq!(get(&b, &dotted("meta.seq")).as_deref(), Some("12"));
        assert_eq!(p.id(2), "load:t-12");
    }
}
