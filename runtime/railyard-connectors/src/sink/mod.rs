//! Output connectors ("sinks"): where a pipeline's messages go. Each connector implements
//! [`Sink`] in its own folder (`file/sink.rs`, `http/sink.rs`, `amqp/sink.rs`, and here the
//! topic and stdout sinks); [`send`] is the one registry that maps a compiled
//! [`OutputSpec`] to its sink, matched exhaustively, so a new output kind does not compile
//! until it has one.
//!
//! A sink confirms a message only once the destination has it (a store commit, an fsync, a
//! broker confirm, a 2xx) and classifies every failure where it is known
//! ([`SendError`]: permanent, transient or held). Client limits (AMQP short strings, header
//! bytes, NUL in paths) are checked before the call and are permanent.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use railyard_core::engine::Message;
use railyard_core::expr::render_template;
use railyard_core::project::{OutputDef, OutputSpec, Project};
use railyard_store::AsyncStore;

pub use railyard_core::delivery::SendError;

mod stdout;
pub mod topic;

pub use self::stdout::StdoutSink;
pub use self::topic::TopicSink;

/// What sinks share, for one message: connections, the store, the project.
pub struct SinkCx<'a> {
    /// When set, topics are RabbitMQ: published to the topics exchange on this broker.
    pub amqp_topics: Option<&'a str>,
    /// AMQP publishers by broker URL, opened on first use.
    pub publishers: &'a crate::amqp::Publishers,
    /// The output root: file outputs write under it and nowhere else (`--output-root`, the
    /// data directory by default).
    pub output_root: &'a Path,
    pub store: &'a AsyncStore,
    pub project: &'a Project,
    pub http: &'a reqwest::Client,
    /// Set when a sink left an output mark for this message (see
    /// `railyard_store::OutputMark`): the caller settles the marks with the message.
    pub marked: &'a AtomicBool,
}

/// One message to send through one output.
pub struct Item<'a> {
    pub message: &'a Message,
    /// The output's compiled `{{ }}` templates.
    pub output: &'a OutputDef,
    /// The pipeline, and the id of the message as it entered it.
    pub pipeline: &'a str,
    pub origin: &'a str,
    /// Which of the messages the steps delivered (a split delivers several), and which output.
    pub index: u32,
    pub output_index: u32,
}

impl Item<'_> {
    /// Renders a templated setting over the message's envelope; a template that cannot
    /// render fails the same way every time: a permanent error.
    pub fn render(&self, template: &str) -> Result<String, SendError> {
        render_template(template, &self.output.templates, self.message.envelope())
            .map_err(SendError::permanent)
    }
}

/// An output connector.
pub trait Sink {
    /// Sends `item`, returning once the destination confirmed it.
    fn send(
        &self,
        cx: &SinkCx<'_>,
        item: &Item<'_>,
    ) -> impl Future<Output = Result<(), SendError>> + Send;
}

/// Sends `item` through its output: the registry of output kinds.
pub async fn send(cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
    match &item.output.spec {
        OutputSpec::Topic { name } => TopicSink::templated(name).send(cx, item).await,
        OutputSpec::Pipeline { topic, .. } => TopicSink::fixed(topic).send(cx, item).await,
        OutputSpec::Stdout { with_meta } => {
            StdoutSink {
                with_meta: *with_meta,
            }
            .send(cx, item)
            .await
        }
        OutputSpec::File(f) => f.send(cx, item).await,
        OutputSpec::Http(h) => h.send(cx, item).await,
        OutputSpec::Amqp(a) => a.send(cx, item).await,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
