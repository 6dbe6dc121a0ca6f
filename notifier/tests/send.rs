//! One attempt against real receivers on 127.0.0.1: what each answer means for the delivery,
//! what the receiver sees, and that refused destinations are never connected to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use clickledger_notifier::address::Allow;
use clickledger_notifier::send::{Attempt, Method, Outcome, Request, SendSettings, Sender, signature};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request as the receiver saw it.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(header_name, _)| header_name == name).map(|(_, value)| value.as_str())
    }
}

type Reply = Arc<dyn Fn() -> Response<Full<Bytes>> + Send + Sync>;

/// A hyper server on 127.0.0.1 that records every connection and request and answers each
/// request with `reply()`.
struct Receiver {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    serving: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl Receiver {
    async fn start(reply: impl Fn() -> Response<Full<Bytes>> + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reply: Reply = Arc::new(reply);
        let serving = tokio::spawn({
            let connections = Arc::clone(&connections);
            let requests = Arc::clone(&requests);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let requests = Arc::clone(&requests);
                    let reply = Arc::clone(&reply);
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let requests = Arc::clone(&requests);
                        let reply = Arc::clone(&reply);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            let headers = parts
                                .headers
                                .iter()
                                .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
                                .collect();
                            requests.lock().unwrap().push(Recorded {
                                method: parts.method.to_string(),
                                target: parts.uri.to_string(),
                                headers,
                                body,
                            });
                            Ok::<_, Infallible>(reply())
                        }
                    });
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
                }
            }
        });
        Receiver { address, connections, requests, serving }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn reply(status: u16, headers: &[(&'static str, &str)], body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(*name, value.parse().unwrap());
    }
    response
}

/// A raw TCP receiver that accepts, reads the request, writes `answer` (possibly nothing) and
/// then holds the connection open without another byte.
async fn stalling_receiver(answer: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let holding = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0_u8; 4096];
            let _ = stream.read(&mut request).await;
            stream.write_all(answer).await.unwrap();
            held.push(stream);
        }
    });
    (address, holding)
}

fn loopback_settings() -> SendSettings {
    SendSettings { allow: Allow::Loopback, timeout: Duration::from_secs(5), ..SendSettings::default() }
}

async fn get(settings: SendSettings, url: &str) -> Attempt {
    let sender = Sender::new(settings).unwrap();
    let request = Request { method: Method::Get, url, body: None, headers: &[] };
    sender.send(&request).await
}

fn error_of(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Delivered { .. } => panic!("delivered, expected an error"),
        Outcome::Retry { error, .. } | Outcome::Failed { error, .. } => error,
    }
}

#[tokio::test]
async fn status_200_is_delivered_and_the_response_kept() {
    let receiver = Receiver::start(|| reply(200, &[], "ok")).await;
    let attempt = get(loopback_settings(), &receiver.url("/postback?click=1")).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(attempt.response, "ok");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn status_204_is_delivered() {
    let receiver = Receiver::start(|| reply(204, &[], "")).await;
    let attempt = get(loopback_settings(), &receiver.url("/")).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 204 });
    assert_eq!(attempt.response, "");
}

#[tokio::test]
async fn status_500_is_retried() {
    let receiver = Receiver::start(|| reply(500, &[], "boom")).await;
    let attempt = get(loopback_settings(), &receiver.url("/")).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Retry { status: Some(500), error: "status 500".to_owned(), retry_after: None }
    );
    assert_eq!(attempt.response, "boom");
}

#[tokio::test]
async fn status_429_is_retried_after_the_seconds_asked_for() {
    let receiver = Receiver::start(|| reply(429, &[("retry-after", "7")], "")).await;
    let attempt = get(loopback_settings(), &receiver.url("/")).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Retry { status: Some(429), error: "status 429".to_owned(), retry_after: Some(Duration::from_secs(7)) }
    );
}

#[tokio::test]
async fn status_503_is_retried_after_the_date_asked_for() {
    let in_thirty_seconds = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let receiver = Receiver::start(move || reply(503, &[("retry-after", in_thirty_seconds.as_str())], "")).await;
    let attempt = get(loopback_settings(), &receiver.url("/")).await;
    let Outcome::Retry { status: Some(503), retry_after: Some(retry_after), .. } = attempt.outcome else {
        panic!("expected a 503 retry with a delay, got {:?}", attempt.outcome)
    };
    assert!((Duration::from_secs(29)..=Duration::from_secs(31)).contains(&retry_after), "{retry_after:?}");
}

#[tokio::test]
async fn status_404_fails_for_good() {
    let receiver = Receiver::start(|| reply(404, &[], "no such offer")).await;
    let attempt = get(loopback_settings(), &receiver.url("/")).await;
    assert_eq!(attempt.outcome, Outcome::Failed { status: Some(404), error: "status 404".to_owned() });
    assert_eq!(attempt.response, "no such offer");
}

#[tokio::test]
async fn a_redirect_fails_and_is_not_followed() {
    let target = Receiver::start(|| reply(200, &[], "")).await;
    let location = target.url("/elsewhere");
    let redirecting = Receiver::start(move || reply(302, &[("location", location.as_str())], "")).await;
    let attempt = get(loopback_settings(), &redirecting.url("/")).await;
    let Outcome::Failed { status: Some(302), .. } = attempt.outcome else {
        panic!("expected a failed 302, got {:?}", attempt.outcome)
    };
    assert_eq!(redirecting.requests().len(), 1);
    assert_eq!(target.connections(), 0);
    assert!(target.requests().is_empty());
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_retried_after_the_timeout() {
    let (address, _holding) = stalling_receiver(b"").await;
    let settings = SendSettings { timeout: Duration::from_millis(300), ..loopback_settings() };
    let started = Instant::now();
    let attempt = get(settings, &format!("http://{address}/")).await;
    let elapsed = started.elapsed();
    assert_eq!(attempt.outcome, Outcome::Retry { status: None, error: "timeout".to_owned(), retry_after: None });
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(attempt.latency >= Duration::from_millis(300), "{attempt:?}");
}

#[tokio::test]
async fn a_body_that_stalls_after_the_headers_is_retried_after_the_timeout() {
    let (address, _holding) = stalling_receiver(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial").await;
    let settings = SendSettings { timeout: Duration::from_millis(300), ..loopback_settings() };
    let started = Instant::now();
    let attempt = get(settings, &format!("http://{address}/")).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(attempt.outcome, Outcome::Retry { status: Some(200), error: "timeout".to_owned(), retry_after: None });
    assert_eq!(attempt.response, "partial");
}

#[tokio::test]
async fn a_closed_port_is_retried_as_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let attempt = get(loopback_settings(), &format!("http://{address}/")).await;
    let Outcome::Retry { status: None, ref error, retry_after: None } = attempt.outcome else {
        panic!("expected a retry without status, got {:?}", attempt.outcome)
    };
    assert!(error.starts_with("connect: "), "{error}");
}

#[tokio::test]
async fn only_body_limit_bytes_of_a_large_response_are_kept() {
    let receiver = Receiver::start(|| reply(200, &[], vec![b'x'; 1024 * 1024])).await;
    let settings = SendSettings { body_limit: 4096, ..loopback_settings() };
    let attempt = get(settings, &receiver.url("/")).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(attempt.response.len(), 4096);
    assert_eq!(attempt.response, "x".repeat(4096));
}

#[tokio::test]
async fn a_post_arrives_exactly_as_sent() {
    let receiver = Receiver::start(|| reply(200, &[], "")).await;
    let sender = Sender::new(loopback_settings()).unwrap();
    let body = br#"{"id":"evt_1","type":"conversion.approved"}"#;
    let signed = signature("whsec_test", 1_700_000_000, body);
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("x-clickledger-timestamp", "1700000000".to_owned()),
        ("x-clickledger-signature", signed.clone()),
    ];
    let url = receiver.url("/hooks/clickledger?offer=7&member=m%201");
    let attempt = sender.send(&Request { method: Method::Post, url: &url, body: Some(body), headers: &headers }).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let recorded = &requests[0];
    assert_eq!(recorded.method, "POST");
    assert_eq!(recorded.target, "/hooks/clickledger?offer=7&member=m%201");
    assert_eq!(recorded.body, body);
    assert_eq!(recorded.header("content-type"), Some("application/json"));
    assert_eq!(recorded.header("x-clickledger-timestamp"), Some("1700000000"));
    assert_eq!(recorded.header("x-clickledger-signature"), Some(signed.as_str()));
    let expected_agent = format!("clickledger-notifier/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(recorded.header("user-agent"), Some(expected_agent.as_str()));
    assert_eq!(recorded.header("content-length"), Some(body.len().to_string().as_str()));
}

#[tokio::test]
async fn a_get_postback_sends_its_query_and_no_body() {
    let receiver = Receiver::start(|| reply(200, &[], "")).await;
    let attempt = get(loopback_settings(), &receiver.url("/pb?cid=abc&payout=1.50")).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/pb?cid=abc&payout=1.50");
    assert!(requests[0].body.is_empty());
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_by_the_resolver_under_public() {
    let receiver = Receiver::start(|| reply(200, &[], "")).await;
    let url = format!("http://localhost:{}/", receiver.address.port());
    let settings = SendSettings { allow: Allow::Public, ..loopback_settings() };
    let attempt = get(settings, &url).await;
    let Outcome::Failed { status: None, ref error } = attempt.outcome else {
        panic!("expected a refusal, got {:?}", attempt.outcome)
    };
    assert!(error.starts_with("address_not_allowed: localhost is "), "{error}");
    assert_eq!(receiver.connections(), 0);

    let allowed = get(loopback_settings(), &url).await;
    assert_eq!(allowed.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn an_address_host_is_refused_before_any_connection() {
    let receiver = Receiver::start(|| reply(200, &[], "")).await;
    let settings = SendSettings { allow: Allow::Public, ..loopback_settings() };
    let attempt = get(settings, &receiver.url("/")).await;
    assert_eq!(
        attempt.outcome,
        Outcome::Failed {
            status: None,
            error: "address_not_allowed: 127.0.0.1 is 127.0.0.1, a loopback address".to_owned(),
        }
    );
    assert!(attempt.latency < Duration::from_millis(50), "{attempt:?}");
    assert_eq!(receiver.connections(), 0);
}

#[tokio::test]
async fn other_schemes_and_credentials_are_refused() {
    let ftp = get(loopback_settings(), "ftp://127.0.0.1/file").await;
    assert!(error_of(&ftp.outcome).starts_with("scheme_not_allowed: "));
    assert!(matches!(ftp.outcome, Outcome::Failed { status: None, .. }));

    let credentials = get(loopback_settings(), "http://user:pw@127.0.0.1/").await;
    assert!(error_of(&credentials.outcome).starts_with("bad_url: "));
    assert!(matches!(credentials.outcome, Outcome::Failed { status: None, .. }));
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_retried() {
    // `.invalid` never resolves (RFC 2606); a DNS fix may make a partner's name resolve later.
    let attempt = get(loopback_settings(), "http://receiver.invalid/postback").await;
    let Outcome::Retry { status: None, ref error, retry_after: None } = attempt.outcome else {
        panic!("expected a retry without status, got {:?}", attempt.outcome)
    };
    assert!(error.starts_with("resolve_failed: cannot resolve receiver.invalid: "), "{error}");
}
