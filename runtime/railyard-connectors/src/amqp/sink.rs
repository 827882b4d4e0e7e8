//! The AMQP sink (`output: { amqp: … }`), and the publish with confirms that the topic sink
//! shares when topics run on RabbitMQ.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use railyard_core::engine::Message;
use railyard_core::model::pipeline::AmqpOutput;

use super::{DEFAULT_URL, Props, Publisher};
use crate::sink::{Item, SendError, Sink, SinkCx};

/// Publishers by kind and broker URL, opened on first use and shared by every message.
pub type Publishers = Mutex<HashMap<String, Arc<Publisher>>>;

/// The longest AMQP short string (exchange, routing key, message and correlation id).
const AMQP_SHORT_STRING: usize = 255;

/// The broker URL: the pipeline's, else `RAILYARD_AMQP_URL`, else the local default.
pub fn amqp_url(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var("RAILYARD_AMQP_URL").ok())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

impl Sink for AmqpOutput {
    async fn send(&self, cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
        let routing_key = match &self.routing_key {
            Some(k) => item.render(&k.value)?,
            None => String::new(),
        };
        let url = amqp_url(self.url.as_ref().map(|u| u.value.as_str()));
        let body = serde_json::to_vec(item.message.body())
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let target = Target {
            url: &url,
            topics: false,
            exchange: &self.exchange.value,
            routing_key: &routing_key,
            persistent: self.persistent != Some(false),
        };
        target
            .publish(cx, &body, item.message)
            .await
            .map_err(|e| e.context(&format!("amqp exchange `{}`", self.exchange.value)))
    }
}

/// Where an AMQP publish goes.
pub(crate) struct Target<'a> {
    /// Broker URL; one publisher (connection and channel) per URL and kind.
    pub(crate) url: &'a str,
    /// A topics publisher declares the topics exchange when it connects.
    pub(crate) topics: bool,
    pub(crate) exchange: &'a str,
    pub(crate) routing_key: &'a str,
    pub(crate) persistent: bool,
}

impl Target<'_> {
    /// Publishes with a confirm; the message id and correlation id travel as AMQP
    /// properties. A broker that cannot be reached holds the message (no attempt spent).
    pub(crate) async fn publish(
        &self,
        cx: &SinkCx<'_>,
        body: &[u8],
        msg: &Message,
    ) -> Result<(), SendError> {
        let publisher = {
            let mut map = cx
                .publishers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = format!(
                "{} {}",
                if self.topics { "topics" } else { "amqp" },
                self.url
            );
            map.entry(key)
                .or_insert_with(|| {
                    Arc::new(if self.topics {
                        Publisher::for_topics(self.url)
                    } else {
                        Publisher::new(self.url)
                    })
                })
                .clone()
        };
        let props = Props {
            message_id: Some(msg.id().to_string()),
            correlation_id: msg.meta_str("correlation_id").map(str::to_string),
        };
        // AMQP "short strings" are at most 255 bytes; the client cannot send a longer one,
        // and retrying will not shorten it.
        for (what, value) in [
            ("exchange", Some(self.exchange)),
            ("routing key", Some(self.routing_key)),
            ("message id", props.message_id.as_deref()),
            ("correlation id", props.correlation_id.as_deref()),
        ] {
            if let Some(v) = value
                && v.len() > AMQP_SHORT_STRING
            {
                return Err(SendError::permanent(format!(
                    "the AMQP {what} is {} bytes; AMQP allows at most {AMQP_SHORT_STRING}",
                    v.len()
                )));
            }
        }
        publisher
            .publish(
                self.exchange,
                self.routing_key,
                body,
                &props,
                self.persistent,
            )
            .await
            .map_err(|e| {
                if e.unavailable {
                    SendError::held(e.message)
                } else {
                    SendError::transient(e.message)
                }
            })
    }
}
