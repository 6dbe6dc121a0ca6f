//! Routing: every request of the tracking contract to its handler, with its metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use metrics::{counter, gauge, histogram};
use pipeline::ports::log::EventLog;

use crate::codes::Code;
use crate::edge::{Edge, HttpResponse};
use crate::metrics::{
    LOG_QUEUE_DEPTH, RATE_LIMIT_NETWORKS, RATE_LIMIT_OVERFLOW, REJECTED, REQUEST_SECONDS, REQUESTS, status_label,
};
use crate::rejection::{Rejection, json_response};
use crate::{click, conversion};

/// The entry point of every request.
pub async fn handle<L: EventLog>(
    edge: Arc<Edge<L>>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let (route, response) = route(&edge, peer, request).await;
    let status = status_label(response.status().as_u16());
    counter!(REQUESTS, "route" => route, "status" => status).increment(1);
    histogram!(REQUEST_SECONDS, "route" => route, "status" => status).record(started.elapsed());
    Ok(response)
}

fn rejected(rejection: Rejection) -> HttpResponse {
    counter!(REJECTED, "reason" => rejection.reason()).increment(1);
    rejection.into_response()
}

fn answer(result: Result<HttpResponse, Rejection>) -> HttpResponse {
    result.unwrap_or_else(rejected)
}

/// Every path the edge serves (a link's `/c/{code}` besides): another method on one of them
/// is `405`, anything else `404`.
pub const PATHS: &[&str] =
    &["/c", "/px", "/pb", "/pb/refund", "/pb/cancel", "/t.js", "/healthz", "/readyz", "/metrics"];

async fn route<L: EventLog>(
    edge: &Edge<L>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> (&'static str, HttpResponse) {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    match (method, path.as_str()) {
        (Method::GET, "/c") => ("click", answer(click::click(edge, &request.into_parts().0, None, peer).await)),
        (Method::GET, link) if link.starts_with("/c/") => {
            let code = link.trim_start_matches("/c/").to_string();
            ("click", answer(click::click(edge, &request.into_parts().0, Some(&code), peer).await))
        }
        (Method::GET, "/px") => ("pixel", conversion::pixel(edge, &request.into_parts().0, peer).await),
        (Method::GET | Method::POST, "/pb") => ("postback", answer(conversion::postback(edge, request, peer).await)),
        (Method::POST, "/pb/refund") => ("refund", answer(conversion::refund(edge, request).await)),
        (Method::POST, "/pb/cancel") => ("cancel", answer(conversion::cancel(edge, request).await)),
        (Method::GET, "/t.js") => ("script", script()),
        (Method::GET, "/healthz") => ("healthz", json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        (Method::GET, "/readyz") => ("readyz", readiness(edge).await),
        (Method::GET, "/metrics") => ("metrics", metrics(edge)),
        (_, path) if PATHS.contains(&path) => ("method_not_allowed", rejected(Rejection::MethodNotAllowed)),
        (_, link) if link.starts_with("/c/") => ("method_not_allowed", rejected(Rejection::MethodNotAllowed)),
        _ => ("not_found", rejected(Rejection::not_found(Code::NotFound, format!("no route for {path}")))),
    }
}

/// The first-party tracking script a shop puts on its pages (docs/TRACKING.md, "First-party
/// script").
pub const SCRIPT: &[u8] = include_bytes!("t.js");

fn script() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(SCRIPT)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/javascript; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}

async fn readiness<L: EventLog>(edge: &Edge<L>) -> HttpResponse {
    match edge.is_ready().await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(why) => {
            json_response(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "not_ready", "why": why}))
        }
    }
}

fn metrics<L: EventLog>(edge: &Edge<L>) -> HttpResponse {
    gauge!(LOG_QUEUE_DEPTH).set(edge.log.queue_depth() as f64);
    gauge!(RATE_LIMIT_NETWORKS).set(edge.rate_limiter.networks() as f64);
    counter!(RATE_LIMIT_OVERFLOW).absolute(edge.rate_limiter.overflowed());
    let mut response = Response::new(Full::new(Bytes::from(adapters::process::render_metrics())));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
