//! The I/O edges of Railyard. One folder per connector; the core engine stays pure.
//!
//! - [`http`]: the webhook/API input server — routes from pipelines, body limits (413),
//!   content types (415), HMAC signatures and API keys (401), and a 202 only after the message
//!   was durably handed off.

pub mod http;
