//! A raw HTTP/1.1 client, so requests go out exactly as written (malformed ones too), and the
//! requests an advertiser makes with its token.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::setup::SECRET;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub bytes: Vec<u8>,
    /// The body as text (invalid UTF-8 replaced).
    pub body: String,
}

impl Response {
    /// A response as read off the wire: status line, headers, body.
    pub fn parse(bytes: &[u8]) -> Self {
        let split = bytes.windows(4).position(|window| window == b"\r\n\r\n").expect("a complete response");
        let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect::<Vec<(String, String)>>();
        let chunked = headers.iter().any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
        let raw = &bytes[split + 4..];
        let body = if chunked { dechunk(raw) } else { raw.to_vec() };
        Self { status, headers, body: String::from_utf8_lossy(&body).into_owned(), bytes: body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The `clk_v` value of the response's `Set-Cookie`.
    pub fn visitor(&self) -> String {
        let cookie = self.header("set-cookie").expect("a visitor cookie");
        cookie.split(';').next().unwrap().trim_start_matches("clk_v=").to_string()
    }

    /// The `click_id` of the redirect's `Location`.
    pub fn click_id(&self) -> String {
        let location = self.header("location").unwrap();
        location.split("click_id=").nth(1).unwrap().split(['&', '#']).next().unwrap().to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The `error` of a rejection body.
    pub fn reason(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_string()
    }
}

/// A chunked body's data (RFC 9112, 7.1): each chunk's size in hex, CRLF, its bytes, CRLF; a
/// chunk of size 0 ends it.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|window| window == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        body.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 2 + size + 2..];
    }
    body
}

/// Send `raw` as it is and read the whole response (the request says `Connection: close`).
pub async fn send(address: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes))
        .await
        .expect("a response within 20 s")
        .unwrap();
    Response::parse(&bytes)
}

pub async fn request(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    request_bytes(address, method, target, headers, body.as_bytes()).await
}

pub async fn request_bytes(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body.len())
            .into_bytes();
    for (name, value) in headers {
        raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    send(address, &raw).await
}

/// A shopper's browser as the edge sees it: its own `User-Agent`, so that simulated shoppers, who all come from
/// 127.0.0.1, are different clients to the edge (docs/RULES.md, "Unique clicks").
#[derive(Debug, Clone)]
pub struct Shopper {
    agent: String,
}

impl Shopper {
    pub fn new(shopper: impl std::fmt::Display) -> Self {
        Self { agent: format!("Mozilla/5.0 (shopper {shopper})") }
    }

    pub async fn get(&self, address: SocketAddr, target: &str) -> Response {
        request(address, "GET", target, &[("User-Agent", &self.agent)], "").await
    }

    pub async fn get_with_cookie(&self, address: SocketAddr, target: &str, visitor: &str) -> Response {
        let cookie = format!("clk_v={visitor}");
        request(address, "GET", target, &[("User-Agent", &self.agent), ("Cookie", &cookie)], "").await
    }
}

pub async fn get(address: SocketAddr, target: &str) -> Response {
    request(address, "GET", target, &[], "").await
}

pub async fn get_with_cookie(address: SocketAddr, target: &str, visitor: &str) -> Response {
    request(address, "GET", target, &[("Cookie", &format!("clk_v={visitor}"))], "").await
}

/// A server-to-server postback (`/pb?query`) with the advertiser's token.
pub async fn postback(address: SocketAddr, query: &str) -> Response {
    get(address, &format!("/pb?{query}&token={SECRET}")).await
}

/// A form the advertiser posts (`/pb/refund`, `/pb/cancel`) with its token.
pub async fn post_form(address: SocketAddr, path: &str, body: &str) -> Response {
    request(
        address,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("{body}&token={SECRET}"),
    )
    .await
}
