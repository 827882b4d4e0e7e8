//! The accept loop: HTTP/1.1 on hyper with a connection cap, a header read timeout and a
//! graceful stop.
//!
//! `axum::serve` sets neither a connection cap nor a timer (without a timer hyper has no
//! header read timeout, so a half-sent request held its connection for good), hence this loop:
//!
//! - **Connection cap** ([`Limits::max_connections`]): a permit is taken *before* `accept`,
//!   so over the cap a new connection waits in the kernel's listen backlog, neither accepted
//!   nor read, until a served one closes (then it is served, in arrival order). Nothing is
//!   refused: a client that gives up waiting closes its own socket, and once the backlog is
//!   full the kernel stops completing handshakes, which senders retry.
//! - **Header read timeout** ([`Limits::header_timeout`]): hyper's, with tokio's timer; it runs
//!   from the connection's start and from the end of each response, so a connection that
//!   sends nothing, or half its headers, or stays idle between keep-alive requests, is closed
//!   after it.
//! - **HTTP/1.1 only**: hyper-util's `auto` builder (HTTP/1 or cleartext HTTP/2) first waits
//!   for the client's first bytes to tell the versions apart, with no timeout, so a
//!   connection that sent nothing would never be closed. Webhook senders speak HTTP/1.1 (TLS
//!   ends before railyard).
//! - **Graceful stop**: on `shutdown`, no new connection is accepted; idle ones close, each
//!   request being served gets its response (its hand-off is never cut), then the function
//!   returns.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Limits;

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then waits for the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Arc<Limits>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // closed: never, the semaphore is ours
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(accepted) => accepted,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors, most often: wait for some to close.
                        tracing::error!(error = %e, "Cannot accept a connection; trying again in 1 s.");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => {}
                            () = &mut shutdown => break,
                        }
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Each request carries its peer's address, as `axum::serve`'s connect info does (the
        // admin endpoints ask whether a request is local).
        let app = tower::Layer::layer(
            &axum::Extension(axum::extract::ConnectInfo(peer)),
            app.clone(),
        );
        let conn = http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // A header read timeout, a client that went away, a malformed request.
                tracing::debug!(error = %e, "Connection closed with an error.");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
