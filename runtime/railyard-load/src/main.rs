//! `railyard-load`: the load generator behind `benches/load/*.sh`.
//!
//! - `amqp-publish` pre-loads a queue (or an exchange) with N distinct JSON messages, publisher
//!   confirms pipelined (many in flight), as fast as possible or at a fixed rate;
//! - `amqp-drain` consumes a queue until N distinct message ids were seen and reports the rate
//!   from the first to the last one, duplicates and missing ids;
//! - `forward` is the baseline for AMQP runs: a bare consume → publish forwarder (manual acks,
//!   prefetch P, confirms, the source acked only after its copy was confirmed, up to P in flight);
//! - `http-post` POSTs N distinct JSON messages at a fixed rate over C connections, retrying 503s
//!   after `Retry-After`, and reports accepted, 503s and latency percentiles;
//! - `webhook-retry` delivers N distinct events like a webhook platform: each re-sent with the
//!   same event id header until it is answered 2xx (refused/reset connections, timeouts, 5xx,
//!   429), for the crash harness (`benches/crash`);
//! - `amqp-queue` declares, purges, deletes or counts queues (for the scripts' setup and cleanup).
//!
//! Every command prints one JSON summary line on stdout (for the scripts) and a human line on
//! stderr.

mod amqp;
mod http;
mod payload;
mod stats;
mod webhook;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "railyard-load",
    about = "Load generator for Railyard's load runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish N distinct JSON messages with publisher confirms (pipelined).
    AmqpPublish(amqp::PublishArgs),
    /// Consume a queue until N distinct message ids were seen (or a timeout).
    AmqpDrain(amqp::DrainArgs),
    /// The baseline: a bare consume -> publish forwarder (manual acks, prefetch, confirms).
    Forward(amqp::ForwardArgs),
    /// Declare, purge, delete or count queues.
    AmqpQueue(amqp::QueueArgs),
    /// POST N distinct JSON messages at a fixed rate over C connections.
    HttpPost(http::PostArgs),
    /// Deliver N distinct events like a webhook platform: each retried with the same event id
    /// until a 2xx.
    WebhookRetry(webhook::WebhookArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::AmqpPublish(a) => amqp::publish(a).await,
            Command::AmqpDrain(a) => amqp::drain(a).await,
            Command::Forward(a) => amqp::forward(a).await,
            Command::AmqpQueue(a) => amqp::queue(a).await,
            Command::HttpPost(a) => http::post(a).await,
            Command::WebhookRetry(a) => webhook::webhook(a).await,
        }
    });
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
