//! Serving the edge: accept connections, answer requests, and shut down without losing what
//! was acknowledged — readiness goes false, in-flight requests finish, the log is flushed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use pipeline::ports::log::EventLog;
use tokio::net::TcpListener;

use crate::edge::Edge;
use crate::routes::handle;

/// Serve `edge` on `listener` until `shutdown` resolves. `main` and the tests call this same
/// function.
pub async fn run<L: EventLog>(
    listener: TcpListener,
    edge: Arc<Edge<L>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(edge.config.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);

    let accept = |stream: tokio::net::TcpStream, peer: SocketAddr| {
        let _ = stream.set_nodelay(true);
        let edge = edge.clone();
        let service = service_fn(move |request| handle(edge.clone(), peer, request));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    };

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => accept(stream, peer),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down: readiness is now false");
    edge.stop_accepting();
    let grace = tokio::time::sleep(edge.config.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            accepted = listener.accept() => if let Ok((stream, peer)) = accepted { accept(stream, peer) },
            () = &mut grace => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(edge.config.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within the drain timeout");
    }
    if let Err(error) = edge.log.flush(Duration::from_secs(10)).await {
        tracing::error!(%error, "the log was not flushed at shutdown");
    }
    tracing::info!("edge stopped");
    Ok(())
}
