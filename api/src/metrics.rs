//! Prometheus metrics of the program API: requests and latency by route (the route's pattern,
//! so ids do not make new series), refusals by error code. The recorder and the `/metrics`
//! listener are the process's (`adapters::process`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Requests answered, by `route`, `method` and `status`.
pub const REQUESTS: &str = "clickledger_api_requests_total";
/// From a request's head to its response, by `route`.
pub const REQUEST_SECONDS: &str = "clickledger_api_request_seconds";
/// Requests refused or failed, by error `code` (`bad_json`, `unauthorized`, ...).
pub const ERRORS: &str = "clickledger_api_errors_total";

/// Every API metric, for the dashboard's test.
pub const ALL: &[&str] = &[REQUESTS, REQUEST_SECONDS, ERRORS];

/// Count and time every request.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |path| path.as_str()).to_string();
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "route" => route).record(started.elapsed());
    response
}

pub fn refused(code: &'static str) {
    metrics::counter!(ERRORS, "code" => code).increment(1);
}
