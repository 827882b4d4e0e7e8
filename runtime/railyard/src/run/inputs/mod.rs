//! One file per input kind (the webhook's routes themselves are in
//! `railyard_connectors::http`), and the registry of input kinds: [`worker`] (the task an
//! input needs) and [`unsupported`], both exhaustive on `InputSpec`.

use super::*;

mod amqp;
mod batch;
mod file;
mod schedule;
mod topic;
mod webhook;

pub(crate) use self::amqp::*;
pub(crate) use self::batch::*;
pub(crate) use self::file::*;
pub(crate) use self::schedule::*;
pub(crate) use self::topic::*;
pub(crate) use self::webhook::*;

/// Why a pipeline is not running, if it isn't: its input is not one `run` serves. Every
/// output kind runs.
pub(crate) fn unsupported(p: &Pipeline) -> Option<String> {
    match &p.input {
        InputSpec::Stdin => Some(
            "its `stdin` input is for `railyard map` and `railyard test`, not for `run`"
                .to_string(),
        ),
        InputSpec::Http(_)
        | InputSpec::Amqp(_)
        | InputSpec::Topic { .. }
        | InputSpec::Pipeline { .. }
        | InputSpec::File(_)
        | InputSpec::Schedule(_) => None,
    }
}

/// The registry of input kinds: the background task `p`'s input needs (its key, which
/// changes with its settings, and how to start it), if any. Webhooks need none: they are
/// routes of the HTTP server (`Live::routes`).
pub(crate) fn worker(rt: &Arc<Runtime>, p: &Pipeline) -> Option<(String, StartWorker)> {
    let name = p.name.clone();
    let rt2 = rt.clone();
    match &p.input {
        InputSpec::Topic { name: topic, group } | InputSpec::Pipeline { topic, group } => {
            let (topic, group) = (topic.clone(), group.clone());
            let Some(url) = rt.amqp_topics.clone() else {
                return Some((
                    format!("consume {name} {topic} {group}"),
                    Box::new(move |stop| tokio::spawn(consume(rt2, name, topic, group, stop))),
                ));
            };
            let key = format!("amqp-topic {name} {topic} {group}");
            let cfg = railyard_connectors::amqp::ConsumerConfig {
                url,
                queue: railyard_connectors::amqp::topic_queue(&topic, &group),
                declare: true,
                prefetch: 32,
                bindings: vec![(
                    railyard_connectors::amqp::TOPICS_EXCHANGE.to_string(),
                    topic.clone(),
                )],
                connected: rt.broker_flag(&key),
            };
            Some((
                key,
                Box::new(move |stop| {
                    tokio::spawn(amqp_topic_input(rt2, name, topic, group, cfg, stop))
                }),
            ))
        }
        InputSpec::Schedule(config) => {
            match railyard_connectors::schedule::Schedule::from_config(config) {
                Ok(schedule) => Some((
                    format!("schedule {name} {config:?}"),
                    Box::new(move |stop| tokio::spawn(scheduled(rt2, name, schedule, stop))),
                )),
                Err(e) => {
                    tracing::error!(pipeline = %name, error = %e, "Schedule not started.");
                    None
                }
            }
        }
        InputSpec::Amqp(a) => {
            // The worker's key changes with its whole config, but shows (on `/ready`, in
            // logs) only the queue and a hash: the config holds the credentials.
            let key = format!(
                "amqp {name} {} {:016x}",
                a.queue.value,
                hash_of(&format!("{a:?}"))
            );
            let cfg = railyard_connectors::amqp::ConsumerConfig {
                url: outputs::amqp_url(a.url.as_ref().map(|u| u.value.as_str())),
                queue: a.queue.value.clone(),
                declare: a.declare != Some(false),
                prefetch: a.prefetch.unwrap_or(64),
                bindings: a
                    .bindings
                    .iter()
                    .map(|b| {
                        (
                            b.exchange.value.clone(),
                            b.routing_key.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
                connected: rt.broker_flag(&key),
            };
            Some((
                key,
                Box::new(move |stop| tokio::spawn(amqp_input(rt2, name, cfg, stop))),
            ))
        }
        InputSpec::File(config) => {
            let drop = railyard_connectors::file::FileDrop::new(config, &rt.root);
            Some((
                format!("file {name} {config:?}"),
                Box::new(move |stop| tokio::spawn(file_drop(rt2, name, drop, stop))),
            ))
        }
        // Routes of the HTTP server, not workers.
        InputSpec::Http(_) => None,
        // Not run (see `unsupported`).
        InputSpec::Stdin => None,
    }
}
