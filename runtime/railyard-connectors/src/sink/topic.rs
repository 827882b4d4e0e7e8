//! The topic sink (also `output: { pipeline: … }`, over the pipeline's internal topic):
//! the whole envelope, metadata included, to the embedded store or, when topics run on
//! RabbitMQ, to the broker's topics exchange.

use super::{Item, SendError, Sink, SinkCx};
use crate::amqp::{TOPICS_EXCHANGE, Target};

pub struct TopicSink<'a> {
    name: &'a str,
    templated: bool,
}

impl<'a> TopicSink<'a> {
    /// A topic name that may hold `{{ }}` templates.
    pub fn templated(name: &'a str) -> TopicSink<'a> {
        TopicSink {
            name,
            templated: true,
        }
    }
    /// A topic name used as it is (a pipeline's internal topic).
    pub fn fixed(name: &'a str) -> TopicSink<'a> {
        TopicSink {
            name,
            templated: false,
        }
    }
}

impl Sink for TopicSink<'_> {
    async fn send(&self, cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
        let topic = if self.templated {
            item.render(self.name)?
        } else {
            self.name.to_string()
        };
        publish(cx, &topic, item.message).await
    }
}

/// Publishes `message` (its whole envelope) to `topic`: the one way onto a topic, for the
/// topic sink and for `railyard publish`.
pub async fn publish(
    cx: &SinkCx<'_>,
    topic: &str,
    message: &railyard_core::engine::Message,
) -> Result<(), SendError> {
    let topic = topic.to_string();
    let Some(url) = cx.amqp_topics else {
        let (name, envelope) = (topic.clone(), message.envelope().clone());
        return cx
            .store
            .run(move |s| s.publish(&name, &envelope))
            .await
            .map(drop)
            .map_err(|e| SendError::transient(format!("topic `{topic}`: {e}")));
    };
    let body =
        serde_json::to_vec(message.envelope()).map_err(|e| SendError::permanent(e.to_string()))?;
    let target = Target {
        url,
        topics: true,
        exchange: TOPICS_EXCHANGE,
        routing_key: &topic,
        persistent: true,
    };
    target
        .publish(cx, &body, message)
        .await
        .map_err(|e| e.context(&format!("topic `{topic}` on the broker")))
}
