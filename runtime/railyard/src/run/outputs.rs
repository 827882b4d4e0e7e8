//! Output connectors available to `railyard run` today: topic and pipeline (durable rows in
//! the embedded store), stdout (a JSON line), file (appended JSON line, fsynced).

use std::io::Write;

use railyard_core::engine::Message;
use railyard_core::expr::render_template;
use railyard_core::model::OrShort;
use railyard_core::project::OutputDef;
use railyard_store::Store;
use serde_json::Value;

/// The internal topic behind `output: { pipeline: name }`.
pub fn pipeline_topic(name: &str) -> String {
    format!("pipeline:{name}")
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_rfc3339() -> String {
    crate::cmd::map::rfc3339(now_ms() / 1000)
}

/// Sends `msg` to one output and returns once the output confirmed it.
pub fn send(
    store: &Store,
    o: &OutputDef,
    msg: &Message,
    _ids: impl Fn() -> String,
) -> Result<(), String> {
    let d = &o.def;
    let render = |t: &str| render_template(t, &o.templates, msg.envelope());
    if let Some(t) = &d.topic {
        let name = match &t.value {
            OrShort::Short(s) => s.clone(),
            OrShort::Full(f) => f.name.value.clone(),
        };
        let topic = render(&name)?;
        store
            .publish(&topic, msg.envelope())
            .map(drop)
            .map_err(|e| format!("topic `{topic}`: {e}"))
    } else if let Some(p) = &d.pipeline {
        store
            .publish(&pipeline_topic(&p.value), msg.envelope())
            .map(drop)
            .map_err(|e| format!("pipeline `{}`: {e}", p.value))
    } else if let Some(s) = &d.stdout {
        let value = if s.value.with_meta == Some(true) {
            msg.envelope()
        } else {
            msg.body()
        };
        let line = serde_json::to_string(value).map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))
    } else if let Some(f) = &d.file {
        let path = render(&f.value.path.value)?;
        append_line(&path, msg.body())
    } else {
        Err(format!(
            "the `{}` output is not available in this build",
            o.kind
        ))
    }
}

fn append_line(path: &str, body: &Value) -> Result<(), String> {
    let p = std::path::Path::new(path);
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("file `{path}`: {e}"))?;
    }
    let mut line = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("file `{path}`: {e}"))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("file `{path}`: {e}"))
}
