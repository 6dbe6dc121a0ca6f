//! The edge's shared state and configuration, request routing, and how events are recorded.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use metrics::{counter, gauge, histogram};
use model::clickid::ClickKeyRing;
use model::time::Span;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogError, Record, Topics};

use crate::bots::BotFilter;
use crate::metrics::{
    EVENTS, LOG_ACK_SECONDS, LOG_QUEUE_DEPTH, LOST, REJECTED, REQUEST_SECONDS, REQUESTS, UNACKNOWLEDGED, status_label,
};
use crate::rejection::{Rejection, json_response};
use crate::{click, conversion};

/// How the edge behaves; every field has a default (see [`EdgeConfig::new`]) and an
/// environment variable (see [`EdgeConfig::from_env`] and the README).
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub topics: Topics,
    /// Signs new click ids and verifies returned ones. `CLICKLEDGER_CLICK_KEYS`.
    pub click_keys: ClickKeyRing,
    /// Mark the visitor cookie `Secure` (behind HTTPS). `CLICKLEDGER_SECURE_COOKIE`, default false.
    pub secure_cookie: bool,
    /// Lifetime of the visitor cookie, default 365d.
    pub visitor_cookie_max_age: Span,
    /// How long a click or pixel waits for the log before answering anyway, default 5 ms: a
    /// shopper's redirect never waits out a slow fsync or broker (docs/PERFORMANCE.md).
    /// `CLICKLEDGER_CLICK_ACK_WAIT_MS`.
    pub click_ack_wait: Duration,
    /// How long a postback, refund or cancel waits for the log before 503, default 5 s.
    /// `CLICKLEDGER_POSTBACK_ACK_TIMEOUT_MS`.
    pub postback_ack_timeout: Duration,
    /// Largest request body, default 16 KiB (413 above). `CLICKLEDGER_BODY_LIMIT`.
    pub body_limit: usize,
    /// Time allowed for a client to send its request headers, default 5 s.
    pub header_timeout: Duration,
    /// Time allowed for a client to send its body, default 5 s (408 after).
    pub body_timeout: Duration,
    /// How far `X-Timestamp` may be from now, default 300 s.
    pub signature_tolerance_seconds: i64,
    /// How far in the past and future `occurred_at` may be: 90d and 5m.
    pub occurred_at_past: Span,
    pub occurred_at_future: Span,
    /// `Retry-After` on 503, default 1 s.
    pub retry_after_seconds: u32,
    /// After a shutdown signal, how long to keep serving while `/readyz` already says no, so
    /// load balancers stop sending first. Default 0. `CLICKLEDGER_SHUTDOWN_GRACE_MS`.
    pub shutdown_grace: Duration,
    /// How long in-flight requests may take to finish at shutdown, default 10 s.
    pub drain_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl EdgeConfig {
    pub fn new(topics: Topics, click_keys: ClickKeyRing) -> Self {
        Self {
            topics,
            click_keys,
            secure_cookie: false,
            visitor_cookie_max_age: Span::days(365),
            click_ack_wait: Duration::from_millis(5),
            postback_ack_timeout: Duration::from_secs(5),
            body_limit: 16 * 1024,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            signature_tolerance_seconds: 300,
            occurred_at_past: Span::days(90),
            occurred_at_future: Span::seconds(300),
            retry_after_seconds: 1,
            shutdown_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// Build from environment variables (names in the README); defaults for the rest.
    pub fn from_env(vars: &BTreeMap<String, String>, topics: Topics) -> Result<Self, ConfigError> {
        let keys = vars.get("CLICKLEDGER_CLICK_KEYS").ok_or_else(|| {
            ConfigError("CLICKLEDGER_CLICK_KEYS is required (id:secret,...; secrets of 32+ bytes)".into())
        })?;
        let click_keys = ClickKeyRing::parse(keys).map_err(|error| ConfigError(error.to_string()))?;
        let mut config = Self::new(topics, click_keys);
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            vars.get(name)
                .map(|value| value.parse::<u64>().map_err(|_| ConfigError(format!("{name} must be a whole number"))))
                .transpose()
        };
        if let Some(value) = vars.get("CLICKLEDGER_SECURE_COOKIE") {
            config.secure_cookie = matches!(value.as_str(), "1" | "true" | "yes");
        }
        if let Some(millis) = number("CLICKLEDGER_CLICK_ACK_WAIT_MS")? {
            config.click_ack_wait = Duration::from_millis(millis);
        }
        if let Some(millis) = number("CLICKLEDGER_POSTBACK_ACK_TIMEOUT_MS")? {
            config.postback_ack_timeout = Duration::from_millis(millis);
        }
        if let Some(bytes) = number("CLICKLEDGER_BODY_LIMIT")? {
            config.body_limit = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        if let Some(millis) = number("CLICKLEDGER_SHUTDOWN_GRACE_MS")? {
            config.shutdown_grace = Duration::from_millis(millis);
        }
        Ok(config)
    }
}

/// Everything a request handler needs, shared by all connections.
pub struct Edge<L: EventLog> {
    pub config: EdgeConfig,
    pub log: L,
    pub program: Arc<SharedProgram>,
    pub(crate) bots: BotFilter,
    accepting: AtomicBool,
}

impl<L: EventLog> std::fmt::Debug for Edge<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("accepting", &self.accepting).finish()
    }
}

pub type HttpResponse = Response<Full<Bytes>>;

impl<L: EventLog> Edge<L> {
    pub fn new(config: EdgeConfig, log: L, program: Arc<SharedProgram>) -> Arc<Self> {
        // Make sure the recorder exists before the first request records anything.
        crate::metrics::handle();
        Arc::new(Self { config, log, program, bots: BotFilter::new(), accepting: AtomicBool::new(true) })
    }

    /// Readiness turns false; the server keeps serving what arrives until it stops.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    pub async fn is_ready(&self) -> Result<(), &'static str> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err("shutting down");
        }
        if !self.program.is_loaded() {
            return Err("the program is not loaded yet");
        }
        self.log.check().await.map_err(|_| "the event log is unreachable")
    }

    /// Browser traffic (clicks, pixels): wait up to `click_ack_wait` for the log, then answer
    /// anyway. An event the log has not acknowledged by then is counted as unacknowledged and
    /// followed to the end; one the log refuses is counted as lost and logged.
    pub(crate) async fn record_browser(&self, route: &'static str, records: Vec<Record>) {
        let started = Instant::now();
        let mut append: Pin<Box<_>> = Box::pin(self.log.append(records));
        match tokio::time::timeout(self.config.click_ack_wait, &mut append).await {
            Ok(Ok(())) => {
                histogram!(LOG_ACK_SECONDS).record(started.elapsed());
            }
            Ok(Err(error)) => {
                counter!(UNACKNOWLEDGED, "route" => route).increment(1);
                counter!(LOST, "route" => route).increment(1);
                tracing::error!(route, %error, "the log refused a browser event; it is lost");
            }
            Err(_) => {
                counter!(UNACKNOWLEDGED, "route" => route).increment(1);
                tokio::spawn(async move {
                    match append.await {
                        Ok(()) => histogram!(LOG_ACK_SECONDS).record(started.elapsed()),
                        Err(error) => {
                            counter!(LOST, "route" => route).increment(1);
                            tracing::error!(route, %error, "a browser event the log did not acknowledge in time failed");
                        }
                    }
                });
            }
        }
        counter!(EVENTS, "route" => route).increment(1);
    }

    /// Server-to-server traffic: acknowledged only after the log acknowledged.
    pub(crate) async fn record_durable(&self, route: &'static str, records: Vec<Record>) -> Result<(), Rejection> {
        let started = Instant::now();
        let retry_after_seconds = self.config.retry_after_seconds;
        let unavailable =
            |reason: &'static str, message: String| Rejection::Unavailable { reason, message, retry_after_seconds };
        let mut append: Pin<Box<_>> = Box::pin(self.log.append(records));
        match tokio::time::timeout(self.config.postback_ack_timeout, &mut append).await {
            Ok(Ok(())) => {
                histogram!(LOG_ACK_SECONDS).record(started.elapsed());
                counter!(EVENTS, "route" => route).increment(1);
                Ok(())
            }
            Ok(Err(LogError::Overloaded(message))) => Err(unavailable("log_overloaded", message)),
            Ok(Err(LogError::Unavailable(message))) => Err(unavailable("log_unavailable", message)),
            Ok(Err(LogError::Fatal(message))) => Err(Rejection::Internal { message }),
            Err(_) => {
                counter!(UNACKNOWLEDGED, "route" => route).increment(1);
                tokio::spawn(async move {
                    if let Err(error) = append.await {
                        tracing::warn!(route, %error, "a postback answered 503 was not written");
                    }
                });
                Err(unavailable("log_timeout", "the event log did not acknowledge in time".into()))
            }
        }
    }

    /// Read a request body within the size and time limits.
    pub(crate) async fn read_body(&self, body: Incoming) -> Result<Bytes, Rejection> {
        let limit = self.config.body_limit;
        let collected = tokio::time::timeout(self.config.body_timeout, Limited::new(body, limit).collect())
            .await
            .map_err(|_| Rejection::Timeout)?;
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(Rejection::PayloadTooLarge { limit }),
            Err(error) => Err(Rejection::bad_request("bad_body", format!("the body could not be read: {error}"))),
        }
    }
}

/// The entry point of every request.
pub async fn handle<L: EventLog>(edge: Arc<Edge<L>>, request: Request<Incoming>) -> Result<HttpResponse, Infallible> {
    let started = Instant::now();
    let (route, response) = route(&edge, request).await;
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

async fn route<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> (&'static str, HttpResponse) {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    match (method, path.as_str()) {
        (Method::GET, "/c") => ("click", answer(click::click(edge, &request.into_parts().0, None).await)),
        (Method::GET, link) if link.starts_with("/c/") => {
            let code = link.trim_start_matches("/c/").to_string();
            ("click", answer(click::click(edge, &request.into_parts().0, Some(&code)).await))
        }
        (Method::GET, "/px") => ("pixel", conversion::pixel(edge, &request.into_parts().0).await),
        (Method::GET | Method::POST, "/pb") => ("postback", answer(conversion::postback(edge, request).await)),
        (Method::POST, "/pb/refund") => ("refund", answer(conversion::refund(edge, request).await)),
        (Method::POST, "/pb/cancel") => ("cancel", answer(conversion::cancel(edge, request).await)),
        (Method::GET, "/healthz") => ("healthz", json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))),
        (Method::GET, "/readyz") => ("readyz", readiness(edge).await),
        (Method::GET, "/metrics") => ("metrics", metrics(edge)),
        (_, "/c" | "/px" | "/pb" | "/pb/refund" | "/pb/cancel" | "/healthz" | "/readyz" | "/metrics") => {
            ("method_not_allowed", rejected(Rejection::MethodNotAllowed))
        }
        (_, link) if link.starts_with("/c/") => ("method_not_allowed", rejected(Rejection::MethodNotAllowed)),
        _ => ("not_found", rejected(Rejection::not_found("not_found", format!("no route for {path}")))),
    }
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
    let recorder = crate::metrics::handle();
    recorder.run_upkeep();
    let mut response = Response::new(Full::new(Bytes::from(recorder.render())));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    response
}
