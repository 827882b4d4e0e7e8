//! `railyard publish <topic | pipeline:NAME> [FILE|-]`: one message into a running project
//! through its admin API (`POST /admin/publish`), so topic-input pipelines can be tried live.

use std::io::Read;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::exit;

#[derive(clap::Args)]
pub struct Args {
    /// A topic (`orders.accepted`), or `pipeline:NAME` to hand the message to that pipeline.
    pub to: String,
    /// The message body (JSON); `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// A header for the message's metadata, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The correlation id (default: the message id).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// The running server (`http://127.0.0.1:8080`, or its `--admin-listen` address);
    /// `RAILYARD_ADMIN_TOKEN` is sent as a bearer token when set.
    #[arg(long, env = "RAILYARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

pub fn run(args: Args) -> u8 {
    match publish(&args) {
        Ok(answer) => {
            match (answer["topic"].as_str(), answer["pipeline"].as_str()) {
                (Some(topic), _) => println!(
                    "published {} to topic `{topic}` (consumed by {})",
                    answer["id"].as_str().unwrap_or("-"),
                    answer["consumers"]
                        .as_array()
                        .map(|c| c
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                ),
                (_, Some(pipeline)) => println!(
                    "pipeline `{pipeline}` took {}",
                    answer["id"].as_str().unwrap_or("-")
                ),
                _ => println!("{answer}"),
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

fn publish(args: &Args) -> Result<Value, String> {
    let bytes = match &args.file {
        None => read_stdin()?,
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?,
    };
    let shown = args
        .file
        .as_ref()
        .map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    let body = railyard_core::json::parse_payload(&bytes).map_err(|e| format!("`{shown}` {e}"))?;
    let mut headers = Map::new();
    for h in &args.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("--header `{h}`: write it as `Name: value`"));
        };
        headers.insert(
            name.trim().to_string(),
            Value::String(value.trim().to_string()),
        );
    }
    let request = json!({
        "to": args.to,
        "body": body,
        "headers": headers,
        "correlation_id": args.correlation_id,
    });
    crate::cmd::admin_client::post(&args.url, "/admin/publish", &request)
}

fn read_stdin() -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    Ok(buf)
}
