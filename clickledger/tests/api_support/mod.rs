//! Harness of the program API tests: the whole embedded clickledger (edge, attributor,
//! settler, API) on a temporary data directory with the sample program, and a JSON client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use clickledger::{AppConfig, Running};
use serde_json::Value;

use crate::common::{self, Response};

pub const ADMIN: &str = "test-bootstrap-admin-key-0001";
pub const POSTBACK_SECRET: &str = "acme-postback-secret-change-me";

pub struct App {
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl App {
    pub fn api(&self) -> SocketAddr {
        self.running.api
    }

    pub fn edge(&self) -> SocketAddr {
        self.running.edge
    }
}

/// clickledger on a new data directory with the sample program loaded.
pub async fn start() -> App {
    common::trace();
    let dir = tempfile::tempdir().unwrap();
    let running = start_in(dir.path()).await;
    App { running, dir }
}

/// clickledger on `data` (kept between starts), ready to answer.
pub async fn start_in(data: &std::path::Path) -> Running {
    start_with(data, notify_for_tests()).await
}

/// clickledger on `data` with the notifier's settings `notify`.
pub async fn start_with(data: &std::path::Path, notify: notifier::NotifyArgs) -> Running {
    let running = clickledger::start(AppConfig {
        data: data.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        program: None,
        click_keys: Some(common::CLICK_KEYS.into()),
        admin_key: Some(ADMIN.into()),
        edge: ingest::EdgeArgs::default(),
        api_limits: api::serve::ApiLimits::default(),
        notify,
        clock: pipeline::wall_clock(),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = call(running.api, "GET", "/v1/offers/summer", Some(ADMIN), None).await;
        if status == 200 {
            return running;
        }
        assert!(tokio::time::Instant::now() < deadline, "the sample program never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One API call: the status and the JSON body (`null` when the body is empty).
pub async fn call(api: SocketAddr, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let response = raw(api, method, path, key, body.map(|body| body.to_string()).as_deref(), "application/json").await;
    let json = if response.body.is_empty() { Value::Null } else { response.json() };
    (response.status, json)
}

pub async fn raw(
    api: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    content_type: &str,
) -> Response {
    let authorization = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization.as_str()));
    }
    common::request(api, method, path, &headers, body.unwrap_or_default()).await
}

/// An admin call that must answer `status`; returns the body.
pub async fn admin(api: SocketAddr, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
    let (got, json) = call(api, method, path, Some(ADMIN), body).await;
    assert_eq!(got, status, "{method} {path}: {json}");
    json
}

/// An admin call that must fail with `status` and error `code`.
pub async fn refused(api: SocketAddr, method: &str, path: &str, body: Option<Value>, status: u16, code: &str) {
    let (got, json) = call(api, method, path, Some(ADMIN), body).await;
    assert_eq!((got, json["error"].as_str().unwrap_or_default()), (status, code), "{method} {path}: {json}");
    assert!(json["message"].as_str().is_some_and(|message| !message.is_empty()), "{method} {path}: {json}");
}

/// Poll `path` (as admin) until `done` holds for its body, for at most 30 s.
pub async fn eventually(api: SocketAddr, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, json) = call(api, "GET", path, Some(ADMIN), None).await;
        if status == 200 && done(&json) {
            return json;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what} never happened; last {path}: {status} {json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A code postback of advertiser acme through the edge, which must be accepted.
pub async fn postback(edge: SocketAddr, query: &str) {
    let response = common::get(edge, &format!("/pb?{query}&token={POSTBACK_SECRET}")).await;
    assert_eq!(response.status, 200, "postback {query}: {}", response.body);
}

/// The items of a page.
pub fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

/// (member, tier, amount, status) of every line of a page of `/v1/lines`, sorted.
pub fn lines_of(page: &Value) -> Vec<(String, u64, String, String)> {
    let mut lines: Vec<(String, u64, String, String)> = items(page)
        .iter()
        .map(|line| {
            (
                line["member"].as_str().unwrap().into(),
                line["tier"].as_u64().unwrap(),
                line["amount"].as_str().unwrap().into(),
                line["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The notifier as the tests run it: receivers on loopback allowed, quick retries and
/// timeouts.
pub fn notify_for_tests() -> notifier::NotifyArgs {
    notifier::NotifyArgs {
        allow: notifier::address::Allow::Loopback,
        backoff: Duration::from_millis(100),
        timeout: Duration::from_millis(1500),
        connect_timeout: Duration::from_millis(500),
        ..notifier::NotifyArgs::default()
    }
}
