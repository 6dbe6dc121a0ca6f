//! Serving the API: each connection gets the same limits as the tracking edge — a client has
//! `header_timeout` to send its request headers and `body_timeout` to send its body (408 after),
//! and a body is at most `body_limit` bytes (413 above) — so a slow or endless client holds no
//! connection for long. Shutdown lets requests in flight finish.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::error::ApiError;

/// How long a client may take and how much it may send.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_limit: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(5), body_timeout: Duration::from_secs(10), body_limit: 8 << 20 }
    }
}

/// The API's limits as flags and environment variables (defaults: [`ApiLimits::default`]).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ApiLimitArgs {
    /// Time a client has to send its request headers to the API (ms, default 5000).
    #[arg(long, env = "CLICKLEDGER_API_HEADER_TIMEOUT_MS")]
    pub api_header_timeout_ms: Option<u64>,
    /// Time a client has to send its request body to the API (ms, default 10000; 408 after).
    #[arg(long, env = "CLICKLEDGER_API_BODY_TIMEOUT_MS")]
    pub api_body_timeout_ms: Option<u64>,
    /// Largest API request body in bytes (default 8388608; 413 above).
    #[arg(long, env = "CLICKLEDGER_API_BODY_LIMIT")]
    pub api_body_limit: Option<usize>,
}

impl ApiLimitArgs {
    pub fn limits(&self) -> ApiLimits {
        let defaults = ApiLimits::default();
        ApiLimits {
            header_timeout: self.api_header_timeout_ms.map_or(defaults.header_timeout, Duration::from_millis),
            body_timeout: self.api_body_timeout_ms.map_or(defaults.body_timeout, Duration::from_millis),
            body_limit: self.api_body_limit.unwrap_or(defaults.body_limit),
        }
    }
}

/// Read the whole body within the limits before the handler runs.
async fn bounded_body(limits: ApiLimits, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let collected = tokio::time::timeout(limits.body_timeout, Limited::new(body, limits.body_limit).collect()).await;
    let bytes = match collected {
        Err(_) => return ApiError::RequestTimeout.into_response(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return ApiError::PayloadTooLarge { limit: limits.body_limit }.into_response();
        }
        Ok(Err(error)) => {
            return ApiError::bad_request("bad_body", format!("the body could not be read: {error}")).into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Serve `router` on `listener` with `limits` until `shutdown`.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router
        .layer(axum::middleware::from_fn(move |request, next| bounded_body(limits, request, next)))
        .route_layer(axum::middleware::from_fn(crate::metrics::record));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("API requests in flight did not finish within 10 s");
    }
    Ok(())
}
