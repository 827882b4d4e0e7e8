//! The I/O edges of Railyard. One folder per connector; the core engine stays pure.
//!
//! - [`http`]: the webhook/API input server — routes from pipelines, body limits (413),
//!   content types (415), HMAC signatures and API keys (401), and a 202 only after the message
//!   was durably handed off.
//! - [`file`]: the file-drop input for batch exports — polls a directory (settled files
//!   only, oldest first), reads CSV/JSON lines/JSON into records with their source line, and
//!   moves each file to `done/` or `failed/`; [`file::file_key`] lets the caller resume after
//!   a crash and recognise re-sent files without posting twice.
//! - [`schedule`]: the schedule input — next tick of a fixed interval or a cron expression
//!   (5 to 7 fields, UTC) and the body to emit.
//! - [`sink`]: the output connectors behind one registry ([`sink::send`]): each kind
//!   implements [`sink::Sink`] in its folder (`file/sink.rs`, `http/sink.rs`,
//!   `amqp/sink.rs`; topic and stdout in `sink/`).

pub mod amqp;
pub mod file;
pub mod http;
pub mod schedule;
pub mod sink;
