//! What the runtime takes from the output connectors (`railyard_connectors::sink`: topic,
//! pipeline, stdout, file, HTTP and AMQP sinks behind one registry), and the clock.

pub use railyard_connectors::amqp::amqp_url;
pub use railyard_connectors::sink::{SendError, now_ms};

pub fn now_rfc3339() -> String {
    crate::cmd::map::rfc3339(now_ms() / 1000)
}
