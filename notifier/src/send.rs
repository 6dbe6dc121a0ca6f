//! One HTTP attempt at a postback or webhook, and what it means for delivery.
//!
//! [`Sender::send`] makes exactly one request and classifies the result as an [`Outcome`]:
//! delivered, worth retrying, or failed for good. Retrying, backoff and the dead letter are the
//! caller's policy; this module only guarantees that an attempt
//! - calls only destinations the deployment's [`Allow`] permits, checked on the addresses the
//!   connection actually uses (the resolver refuses, so DNS rebinding cannot slip through);
//! - never follows a redirect, since the target of a redirect is a destination nobody checked
//!   and a partner's 3xx means the configured URL is wrong;
//! - ends within [`SendSettings::timeout`], whatever the receiver does;
//! - reads at most [`SendSettings::body_limit`] bytes of the response.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::RETRY_AFTER;
use reqwest::{StatusCode, redirect};
use sha2::Sha256;
use url::Url;

use crate::address::{Allow, Refusal, check_url, classify};

/// The longest `Retry-After` honoured; a receiver asking for more is retried after a day.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// How attempts are made; one value per deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSettings {
    /// Time to establish the TCP (and TLS) connection. Default 5 s.
    pub connect_timeout: Duration,
    /// The whole attempt: resolving, connecting, sending and reading the response. Default 10 s.
    pub timeout: Duration,
    /// Which non-public networks may be called. Default [`Allow::Public`].
    pub allow: Allow,
    /// Response bytes kept for the delivery log; the rest is never read. Default 4096.
    pub body_limit: usize,
    /// Sent as `User-Agent`. Default `clickledger-notifier/<version>`.
    pub user_agent: String,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            allow: Allow::Public,
            body_limit: 4096,
            user_agent: concat!("clickledger-notifier/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request to make. Header names are matched case-insensitively by receivers and sent
/// lowercase.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub body: Option<&'a [u8]>,
    pub headers: &'a [(&'static str, String)],
}

/// What one attempt means for the delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Worth trying again: a timeout, a connection or DNS error, 408, 425, 429 or 5xx.
    /// `retry_after` is the receiver's `Retry-After`, capped at 24 hours.
    Retry { status: Option<u16>, error: String, retry_after: Option<Duration> },
    /// Trying again would give the same answer: another 4xx, a 3xx (never followed), a refused
    /// destination (`error` starts with the [`Refusal::code`]) or a request that cannot be built.
    Failed { status: Option<u16>, error: String },
}

/// The result of one attempt, for the caller's retry decision and the delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub latency: Duration,
    /// The first `body_limit` bytes of the response body, invalid UTF-8 replaced.
    pub response: String,
}

/// Makes attempts. Cheap to clone: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Sender {
    client: reqwest::Client,
    allow: Allow,
    timeout: Duration,
    body_limit: usize,
}

/// What arrived before the attempt ended; kept outside the timed exchange so that an attempt
/// cut short by the timeout still reports the status and the body read so far.
#[derive(Default)]
struct Received {
    status: Option<u16>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Sender {
    /// Fails only when the settings cannot make a client (a user agent that is not a valid
    /// header value, or no TLS backend).
    pub fn new(settings: SendSettings) -> Result<Self, reqwest::Error> {
        let resolver = PermittedResolver { allow: settings.allow };
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            // A proxy would resolve and connect on our behalf, past the resolver's check.
            .no_proxy()
            .user_agent(settings.user_agent)
            .dns_resolver(Arc::new(resolver))
            .build()?;
        Ok(Sender { client, allow: settings.allow, timeout: settings.timeout, body_limit: settings.body_limit })
    }

    /// Makes one attempt. Never panics and never takes longer than the settings' timeout.
    pub async fn send(&self, request: &Request<'_>) -> Attempt {
        let started = Instant::now();
        // A host written as an IP address never reaches the resolver, so it is checked here.
        let url = match check_url(request.url, self.allow) {
            Ok(url) => url,
            Err(refusal) => {
                return Attempt {
                    outcome: Outcome::Failed { status: None, error: refusal_text(&refusal) },
                    latency: started.elapsed(),
                    response: String::new(),
                };
            }
        };
        let mut received = Received::default();
        // reqwest's own timeout covers the same span; this one makes the bound independent of
        // how reqwest applies it to a body that stalls.
        let finished = tokio::time::timeout(self.timeout, self.exchange(url, request, &mut received)).await;
        let outcome = match finished {
            Ok(Ok(status)) => outcome_of_status(status, received.retry_after),
            Ok(Err(error)) => outcome_of_error(error, &received),
            Err(_elapsed) => Outcome::Retry {
                status: received.status,
                error: "timeout".to_owned(),
                retry_after: received.retry_after,
            },
        };
        Attempt { outcome, latency: started.elapsed(), response: String::from_utf8_lossy(&received.body).into_owned() }
    }

    async fn exchange(
        &self,
        url: Url,
        request: &Request<'_>,
        received: &mut Received,
    ) -> Result<StatusCode, reqwest::Error> {
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self.client.request(method, url);
        for (name, value) in request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body.to_vec());
        }
        let mut response = builder.send().await?;
        let status = response.status();
        received.status = Some(status.as_u16());
        received.retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        while received.body.len() < self.body_limit {
            let Some(chunk) = response.chunk().await? else {
                break;
            };
            let room = self.body_limit - received.body.len();
            received.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        // Dropping the response here closes the connection instead of draining the rest.
        Ok(status)
    }
}

fn outcome_of_status(status: StatusCode, retry_after: Option<Duration>) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        return Outcome::Delivered { status: code };
    }
    let retriable = matches!(code, 408 | 425 | 429) || status.is_server_error();
    if retriable {
        return Outcome::Retry { status: Some(code), error: format!("status {code}"), retry_after };
    }
    let error = if status.is_redirection() {
        format!("status {code}: redirects are not followed")
    } else {
        format!("status {code}")
    };
    Outcome::Failed { status: Some(code), error }
}

fn outcome_of_error(error: reqwest::Error, received: &Received) -> Outcome {
    let status = received.status;
    let retry = |text: String| Outcome::Retry { status, error: text, retry_after: received.retry_after };
    if let Some(refusal) = refusal_in(&error) {
        return match refusal {
            // A name that does not resolve now may resolve after a DNS fix.
            Refusal::Resolve(_) => retry(refusal_text(refusal)),
            _ => Outcome::Failed { status, error: refusal_text(refusal) },
        };
    }
    if error.is_timeout() {
        return retry("timeout".to_owned());
    }
    if error.is_builder() {
        // An invalid header value: the same request will never be built.
        return Outcome::Failed { status, error: describe(error) };
    }
    if error.is_connect() {
        return retry(format!("connect: {}", innermost_cause(&error)));
    }
    retry(describe(error))
}

/// The resolver's refusal, if that is what ended the attempt; reqwest keeps it as the source
/// of its connect error.
fn refusal_in(error: &reqwest::Error) -> Option<&Refusal> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<Refusal>() {
            return Some(refusal);
        }
        source = cause.source();
    }
    None
}

fn refusal_text(refusal: &Refusal) -> String {
    format!("{}: {refusal}", refusal.code())
}

/// The error and its causes, without the URL: postback URLs carry partner tokens, and this
/// text is stored and logged.
fn describe(error: reqwest::Error) -> String {
    let anonymous = error.without_url();
    let mut text = anonymous.to_string();
    let mut source = anonymous.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The deepest cause, which for a connect error is the operating system's reason
/// ("Connection refused (os error 111)").
fn innermost_cause(error: &reqwest::Error) -> String {
    let mut deepest: &dyn StdError = error;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    deepest.to_string()
}

/// Resolves host names for the client and refuses the resolution if any address is not
/// permitted. reqwest connects only to the addresses returned here, so the checked address is
/// the connected one. Any refused address refuses the name: a name with one public and one
/// private address would otherwise be called on whichever the connector tried first.
#[derive(Debug)]
struct PermittedResolver {
    allow: Allow,
}

impl Resolve for PermittedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| Refusal::Resolve(format!("{host}: {error}")))?;
            let addresses: Vec<SocketAddr> = resolved.collect();
            if addresses.is_empty() {
                return Err(Refusal::Resolve(format!("{host}: no addresses")).into());
            }
            for address in &addresses {
                let class = classify(address.ip());
                if !allow.permits(class) {
                    let refusal = Refusal::Address { host, address: address.ip(), class };
                    return Err(refusal.into());
                }
            }
            let addrs: Addrs = Box::new(addresses.into_iter());
            Ok(addrs)
        })
    }
}

/// The webhook signature: lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed with the
/// endpoint's secret. The timestamp is inside the signed bytes so a captured request cannot be
/// replayed later with a fresh timestamp.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC-SHA256 takes a key of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A `Retry-After` value as a delay from `now`: delta-seconds or an HTTP-date (a date in the
/// past means now), capped at 24 hours. `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let trimmed = value.trim();
    let is_seconds = !trimmed.is_empty() && trimmed.bytes().all(|byte| byte.is_ascii_digit());
    let delay = if is_seconds {
        // Too many digits for a u64 is still a number of seconds, just far past the cap.
        Duration::from_secs(trimmed.parse().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(trimmed).ok()?;
        date.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3: hmac.new(b"whsec_test", b'1700000000.{"id":"evt_1"}', hashlib.sha256)
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#),
            "c89214b5b5da833daed6f0b8c5bb6bd58cea9022bd80ccc78230f3942d632925"
        );
    }

    #[test]
    fn retry_after_in_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("  5 ", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(90)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_is_capped_at_a_day() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("86401", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("99999999999999999999999999", now), Some(RETRY_AFTER_CAP));
        let next_year = httpdate::fmt_http_date(now + Duration::from_secs(365 * 86_400));
        assert_eq!(parse_retry_after(&next_year, now), Some(RETRY_AFTER_CAP));
    }

    #[test]
    fn retry_after_rejects_garbage() {
        let now = SystemTime::now();
        for garbage in ["", "soon", "-5", "1.5", "Tuesday"] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    #[test]
    fn statuses_are_classified() {
        let retry_after = Some(Duration::from_secs(3));
        let outcome = |code: u16| {
            let Ok(status) = StatusCode::from_u16(code) else { panic!("{code} is a status code") };
            outcome_of_status(status, retry_after)
        };
        assert_eq!(outcome(200), Outcome::Delivered { status: 200 });
        assert_eq!(outcome(204), Outcome::Delivered { status: 204 });
        for code in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(
                outcome(code),
                Outcome::Retry { status: Some(code), error: format!("status {code}"), retry_after }
            );
        }
        for code in [400, 401, 403, 404, 410, 422] {
            assert_eq!(outcome(code), Outcome::Failed { status: Some(code), error: format!("status {code}") });
        }
        assert!(matches!(outcome(301), Outcome::Failed { status: Some(301), .. }));
    }
}
