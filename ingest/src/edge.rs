//! The edge's shared state, and how events are recorded: browser traffic waits a bounded time
//! for the log, server-to-server traffic is acknowledged only once the log acknowledged it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use metrics::{counter, gauge, histogram};
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogError, Record};

use crate::bots::BotFilter;
use crate::client::{RateLimiter, UniqueClients};
use crate::codes::Code;
use crate::config::EdgeConfig;
use crate::metrics::{EVENTS, LOG_ACK_SECONDS, LOST, REPLAY_CACHE_ENTRIES, UNACKNOWLEDGED};
use crate::rejection::Rejection;
use crate::replay::{Remembered, ReplayCache, Seen};
use model::events::Client;
use model::time::Timestamp;

/// Everything a request handler needs, shared by all connections.
pub struct Edge<L: EventLog> {
    pub config: EdgeConfig,
    pub log: L,
    pub program: Arc<SharedProgram>,
    pub(crate) bots: BotFilter,
    /// Signatures accepted within the timestamp tolerance, shared by every signed path.
    pub replays: ReplayCache,
    /// Clicks per client network and minute.
    pub rate_limiter: RateLimiter,
    /// The clients that clicked each link within its unique-click window.
    pub unique_clients: UniqueClients,
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
        crate::metrics::register();
        Arc::new(Self {
            replays: ReplayCache::new(config.replay_capacity),
            rate_limiter: RateLimiter::new(config.rate_limit_networks),
            unique_clients: UniqueClients::new(config.unique_client_entries),
            config,
            log,
            program,
            bots: BotFilter::new(),
            accepting: AtomicBool::new(true),
        })
    }

    /// Traffic is taken only once the program is loaded: before, an offer that exists would be
    /// unknown. 503 `not_ready` with `Retry-After`.
    pub(crate) fn ensure_ready(&self) -> Result<(), Rejection> {
        if self.program.is_loaded() {
            return Ok(());
        }
        Err(Rejection::Unavailable {
            code: Code::NotReady,
            message: "the edge has not loaded the program yet".into(),
            retry_after_seconds: self.config.retry_after_seconds,
        })
    }

    /// The client of a request from `peer` (see [`crate::client`]).
    pub(crate) fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> Client {
        crate::client::client(peer, headers, &self.config.trusted_proxies)
    }

    /// Remember a verified signature sent at `sent_at`: a second use is a replay.
    pub(crate) fn remember_signature(&self, seen: Seen, sent_at: i64, now: Timestamp) -> Result<(), Rejection> {
        let until = sent_at.saturating_add(self.config.signature_tolerance_seconds);
        let remembered = self.replays.remember(seen, until, now.millis() / 1000);
        gauge!(REPLAY_CACHE_ENTRIES).set(self.replays.len() as f64);
        match remembered {
            Remembered::New => Ok(()),
            Remembered::Replayed => Err(Rejection::Conflict {
                code: Code::Replayed,
                message: "this signature was accepted before; sign each request anew".into(),
            }),
            Remembered::Full => Err(Rejection::Unavailable {
                code: Code::ReplayCacheFull,
                message: "too many signed requests within the timestamp tolerance".into(),
                retry_after_seconds: self.config.retry_after_seconds,
            }),
        }
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

    /// Server-to-server traffic: acknowledged only after the log acknowledged. A 503 means
    /// the log gave its final answer and it was no: the wait covers the log's own delivery
    /// timeout, so a record is never written after its request was told it was not
    /// (docs/TRACKING.md, "Retries and idempotency").
    pub(crate) async fn record_durable(&self, route: &'static str, records: Vec<Record>) -> Result<(), Rejection> {
        let started = Instant::now();
        let retry_after_seconds = self.config.retry_after_seconds;
        let unavailable = |code: Code, message: String| Rejection::Unavailable { code, message, retry_after_seconds };
        let mut append: Pin<Box<_>> = Box::pin(self.log.append(records));
        let wait = self.config.postback_ack_timeout.max(self.log.delivery_timeout());
        match tokio::time::timeout(wait, &mut append).await {
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
                // Past the log's own delivery timeout: it may still write the record, so the
                // answer is 503 and the retry, carrying the same order id, refund id or
                // Idempotency-Key, is applied once.
                tokio::spawn(async move {
                    match append.await {
                        Ok(()) => tracing::warn!(route, "a request answered 503 was written after all"),
                        Err(error) => tracing::warn!(route, %error, "a request answered 503 was not written"),
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
