//! The edge's shared state, and how events are recorded: browser traffic waits a bounded time
//! for the log, server-to-server traffic is acknowledged only once the log acknowledged it.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use metrics::{counter, histogram};
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogError, Record};

use crate::bots::BotFilter;
use crate::codes::Code;
use crate::config::EdgeConfig;
use crate::metrics::{EVENTS, LOG_ACK_SECONDS, LOST, UNACKNOWLEDGED};
use crate::rejection::Rejection;

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
        adapters::process::metrics_handle();
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
        let unavailable = |code: Code, message: String| Rejection::Unavailable { code, message, retry_after_seconds };
        let mut append: Pin<Box<_>> = Box::pin(self.log.append(records));
        match tokio::time::timeout(self.config.postback_ack_timeout, &mut append).await {
            Ok(Ok(())) => {
                histogram!(LOG_ACK_SECONDS).record(started.elapsed());
                counter!(EVENTS, "route" => route).increment(1);
                Ok(())
            }
            Ok(Err(LogError::Overloaded(message))) => Err(unavailable(Code::LogOverloaded, message)),
            Ok(Err(LogError::Unavailable(message))) => Err(unavailable(Code::LogUnavailable, message)),
            Ok(Err(LogError::Fatal(message))) => Err(Rejection::Internal { message }),
            Err(_) => {
                counter!(UNACKNOWLEDGED, "route" => route).increment(1);
                tokio::spawn(async move {
                    if let Err(error) = append.await {
                        tracing::warn!(route, %error, "a postback answered 503 was not written");
                    }
                });
                Err(unavailable(Code::LogTimeout, "the event log did not acknowledge in time".into()))
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
            Err(error) => Err(Rejection::bad_request(Code::BadBody, format!("the body could not be read: {error}"))),
        }
    }
}
