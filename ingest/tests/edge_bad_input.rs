//! Bad input gets a 4xx with a reason code and writes nothing: every row checks its status,
//! its reason and that no topic grew.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use clickledger_ingest::auth::sign;
use clickledger_ingest::codes::{Code, Endpoint};
use common::*;
use model::testkit::SECRET;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

enum Send {
    Get(String),
    Post { target: String, content_type: &'static str, body: Vec<u8>, headers: Vec<(&'static str, String)> },
}

fn get(target: impl Into<String>) -> Send {
    Send::Get(target.into())
}

fn post(target: &str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Send {
    Send::Post { target: target.into(), content_type, body: body.into(), headers: Vec::new() }
}

/// The contract (`docs/TRACKING.md`, generated from `ingest::codes`) lists this answer for
/// the endpoint of `target`.
fn assert_in_the_contract(name: &str, target: &str, status: u16, reason: &str) {
    let code = Code::parse(reason).unwrap_or_else(|| panic!("{name}: {reason} is not a code of the edge"));
    let endpoint = if Endpoint::Any.refusals().iter().any(|(any, _)| *any == code) {
        Endpoint::Any
    } else {
        Endpoint::of_path(target)
    };
    assert!(
        endpoint.refusals().contains(&(code, status)),
        "{name}: the contract of {} does not list {status} {reason}",
        endpoint.name()
    );
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_reason_and_write_nothing() {
    let edge = TestEdge::start().await;
    let click = edge.get("/c?offer=summer&member=jane", &[]).await;
    let click_id = location_param(&click, "click_id").unwrap();
    let pb = |extra: &str| get(format!("/pb?click_id={click_id}&order_id=A-1&token={SECRET}&{extra}"));
    let now_seconds = model::Timestamp::now().millis() / 1000;
    let signed_body = br#"{"code":"JANE20","order_id":"S-1","amount":"1.00"}"#.to_vec();
    let signed = |timestamp: i64, signature: String| Send::Post {
        target: "/pb".into(),
        content_type: "application/json",
        body: signed_body.clone(),
        headers: vec![("X-Signature", signature), ("X-Timestamp", timestamp.to_string())],
    };
    // A signed postback accepted once; the table sends it again.
    let accepted_at = now_seconds;
    let accepted_signature = sign(SECRET, accepted_at, &signed_body);
    let first = edge
        .post(
            "/pb",
            "application/json",
            &signed_body,
            &[("X-Signature", accepted_signature.as_str()), ("X-Timestamp", &accepted_at.to_string())],
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let rival_click = edge.get("/c?offer=rival&member=jane", &[]).await;
    let rival_click_id = location_param(&rival_click, "click_id").unwrap();
    let forged = {
        let mut chars: Vec<char> = click_id.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };

    let rows: Vec<(&str, Send, u16, &str)> = vec![
        ("negative amount", pb("amount=-1"), 400, "bad_amount"),
        ("NaN", pb("amount=NaN"), 400, "bad_amount"),
        ("infinite", pb("amount=inf"), 400, "bad_amount"),
        ("exponent", pb("amount=1e309"), 400, "bad_amount"),
        ("decimal comma", pb("amount=1%2C50"), 400, "bad_amount"),
        ("empty amount", pb("amount="), 400, "missing_amount"),
        ("too many decimals", pb("amount=1.23456"), 400, "bad_amount"),
        ("above the range", pb("amount=99999999999"), 400, "amount_out_of_range"),
        ("negative recurring amount", pb("recurring_amount=-5"), 400, "bad_amount"),
        ("lower-case currency", pb("currency=usd"), 400, "bad_currency"),
        ("unknown currency", pb("currency=XYZ"), 400, "bad_currency"),
        (
            "order id too long",
            get(format!("/pb?click_id={click_id}&token={SECRET}&order_id={}", "x".repeat(129))),
            400,
            "bad_order_id",
        ),
        (
            "order id with a space",
            get(format!("/pb?click_id={click_id}&token={SECRET}&order_id=A+1")),
            400,
            "bad_order_id",
        ),
        ("duplicate parameter", pb("amount=1&amount=2"), 400, "duplicate_parameter"),
        ("broken percent-encoding", pb("event=%zz"), 400, "bad_encoding"),
        ("truncated percent-encoding", pb("event=%4"), 400, "bad_encoding"),
        ("invalid UTF-8", pb("event=%ff%fe"), 400, "invalid_utf8"),
        ("NUL byte", pb("event=sa%00le"), 400, "nul_byte"),
        ("control character", pb("event=sa%0Ale"), 400, "control_character"),
        ("bad event name", pb("event=Sale!"), 400, "bad_event"),
        ("bad items", pb("items=sku:1"), 400, "bad_items"),
        ("item quantity zero", pb("items=sku:1.00:0"), 400, "bad_items"),
        ("bad occurred_at", pb("occurred_at=yesterday"), 400, "bad_occurred_at"),
        ("occurred_at a year ago", pb("occurred_at=2000-01-01T00:00:00Z"), 400, "occurred_at_out_of_range"),
        ("forged click id", get(format!("/pb?click_id={forged}&order_id=A-1&token={SECRET}")), 400, "bad_click_id"),
        ("garbage click id", get(format!("/pb?click_id=hello&order_id=A-1&token={SECRET}")), 400, "bad_click_id"),
        ("neither click id nor code", get(format!("/pb?order_id=A-1&token={SECRET}")), 400, "missing_click_id_or_code"),
        ("offer different from the click id", pb("offer=expired"), 400, "offer_mismatch"),
        ("no credentials", get(format!("/pb?click_id={click_id}&order_id=A-1")), 401, "missing_credentials"),
        ("wrong token", get(format!("/pb?click_id={click_id}&order_id=A-1&token=not-the-secret")), 401, "bad_token"),
        ("code without credentials", get("/pb?code=NOPE&order_id=A-1"), 401, "missing_credentials"),
        (
            "stale signature",
            signed(now_seconds - 600, sign(SECRET, now_seconds - 600, &signed_body)),
            401,
            "stale_timestamp",
        ),
        ("timestamp at i64::MIN", signed(i64::MIN, sign(SECRET, i64::MIN, &signed_body)), 401, "stale_timestamp"),
        (
            "wrong signature",
            signed(now_seconds, sign("another-secret-entirely", now_seconds, &signed_body)),
            401,
            "bad_signature",
        ),
        (
            "a signature moved to a fresher timestamp",
            signed(now_seconds + 1, accepted_signature.clone()),
            401,
            "bad_signature",
        ),
        ("replayed signature", signed(accepted_at, accepted_signature.clone()), 409, "replayed"),
        (
            "replayed signature on another path",
            Send::Post {
                target: "/pb/refund".into(),
                content_type: "application/json",
                body: signed_body.clone(),
                headers: vec![("X-Signature", accepted_signature.clone()), ("X-Timestamp", accepted_at.to_string())],
            },
            400,
            "unknown_parameter",
        ),
        (
            "signed refund without refund_id",
            Send::Post {
                target: "/pb/refund".into(),
                content_type: "application/json",
                body: br#"{"order_id":"S-1"}"#.to_vec(),
                headers: vec![
                    ("X-Signature", sign(SECRET, now_seconds, br#"{"order_id":"S-1"}"#)),
                    ("X-Timestamp", now_seconds.to_string()),
                ],
            },
            400,
            "missing_refund_id",
        ),
        (
            "signed body with a query parameter",
            Send::Post {
                target: "/pb?currency=EUR".into(),
                content_type: "application/json",
                body: signed_body.clone(),
                headers: vec![
                    ("X-Signature", sign(SECRET, now_seconds, &signed_body)),
                    ("X-Timestamp", now_seconds.to_string()),
                ],
            },
            400,
            "unsigned_query",
        ),
        (
            "idempotency key too long",
            Send::Post {
                target: "/pb".into(),
                content_type: "application/x-www-form-urlencoded",
                body: format!("click_id={click_id}&order_id=A-9&token={SECRET}").into_bytes(),
                headers: vec![("Idempotency-Key", "k".repeat(129))],
            },
            400,
            "bad_idempotency_key",
        ),
        ("items above the range", pb("items=sku:999999999.00:100"), 400, "items_out_of_range"),
        (
            "another advertiser's offer",
            get(format!("/pb?offer=rival&code=RIVAL10&order_id=A-1&token={SECRET}")),
            400,
            "unknown_offer",
        ),
        (
            "another advertiser's click id",
            get(format!("/pb?click_id={rival_click_id}&order_id=A-1&token={SECRET}")),
            403,
            "wrong_advertiser",
        ),
        (
            "partial refund without refund_id or Idempotency-Key",
            post("/pb/refund", "application/x-www-form-urlencoded", format!("token={SECRET}&order_id=A-1&amount=5")),
            400,
            "missing_refund_id",
        ),
        (
            "refund for another advertiser's offer",
            post("/pb/refund", "application/x-www-form-urlencoded", format!("token={SECRET}&order_id=A-1&offer=rival")),
            400,
            "unknown_offer",
        ),
        (
            "duplicate JSON key",
            post(
                "/pb",
                "application/json",
                format!(r#"{{"click_id":"{click_id}","token":"{SECRET}","amount":"1","amount":"2"}}"#),
            ),
            400,
            "duplicate_parameter",
        ),
        (
            "JSON array value",
            post("/pb", "application/json", format!(r#"{{"click_id":"{click_id}","token":"{SECRET}","items":["a"]}}"#)),
            400,
            "bad_json",
        ),
        ("broken JSON", post("/pb", "application/json", "{\"click_id\":"), 400, "bad_json"),
        (
            "a name in query and body",
            Send::Post {
                target: format!("/pb?token={SECRET}"),
                content_type: "application/json",
                body: format!(r#"{{"token":"{SECRET}","code":"JANE20"}}"#).into_bytes(),
                headers: vec![],
            },
            400,
            "duplicate_parameter",
        ),
        ("unsupported content type", post("/pb", "text/plain", "click_id=x"), 400, "unsupported_content_type"),
        (
            "body too large",
            post("/pb", "application/x-www-form-urlencoded", vec![b'a'; 17 * 1024]),
            413,
            "body_too_large",
        ),
        (
            "refund without order id",
            post("/pb/refund", "application/x-www-form-urlencoded", format!("token={SECRET}&amount=1")),
            400,
            "missing_order_id",
        ),
        (
            "refund with a bad amount",
            post("/pb/refund", "application/x-www-form-urlencoded", format!("token={SECRET}&order_id=A-1&amount=1,5")),
            400,
            "bad_amount",
        ),
        (
            "refund without credentials",
            post("/pb/refund", "application/x-www-form-urlencoded", "order_id=A-1&advertiser=acme"),
            401,
            "missing_credentials",
        ),
        (
            "cancel with a wrong token",
            post("/pb/cancel", "application/x-www-form-urlencoded", "order_id=A-1&token=nope"),
            401,
            "bad_token",
        ),
        ("refund by GET", get("/pb/refund?order_id=A-1"), 405, "method_not_allowed"),
        ("click without member", get("/c?offer=summer"), 400, "missing_member"),
        ("click without offer", get("/c?member=jane"), 400, "missing_offer"),
        ("click with a bad offer id", get("/c?offer=sum%20mer&member=jane"), 400, "bad_offer"),
        ("click on an unknown offer", get("/c?offer=winter&member=jane"), 404, "unknown_offer"),
        (
            "click with a huge sub",
            get(format!("/c?offer=summer&member=jane&sub1={}", "s".repeat(300))),
            400,
            "sub_too_long",
        ),
        ("click with broken encoding", get("/c?offer=summer&member=jane&sub1=%G0"), 400, "bad_encoding"),
        ("click with duplicate member", get("/c?offer=summer&member=jane&member=tom"), 400, "duplicate_parameter"),
        ("unknown route", get("/wp-admin"), 404, "not_found"),
    ];

    for (name, request, status, reason) in rows {
        let before = edge.log_size().await;
        let target = match &request {
            Send::Get(target) | Send::Post { target, .. } => target.clone(),
        };
        assert_in_the_contract(name, &target, status, reason);
        let response = match request {
            Send::Get(target) => edge.get(&target, &[]).await,
            Send::Post { target, content_type, body, headers } => {
                let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
                edge.post(&target, content_type, &body, &headers).await
            }
        };
        assert_eq!(response.status, status, "{name}: {}", response.body);
        assert_eq!(response.reason(), reason, "{name}");
        assert!(response.json()["message"].as_str().is_some_and(|message| !message.is_empty()), "{name}: a message");
        assert_eq!(edge.log_size().await, before, "{name}: nothing reaches the log");
    }
}

#[tokio::test]
async fn bad_pixels_are_still_gifs_that_say_why_and_write_nothing() {
    let edge = TestEdge::start().await;
    let click = edge.get("/c?offer=summer&member=jane", &[]).await;
    let expired_click = format!("/px?offer=expired&click_id={}", location_param(&click, "click_id").unwrap());
    let rows: Vec<(&str, &str)> = vec![
        ("/px?amount=1", "missing_offer"),
        ("/px?offer=winter", "unknown_offer"),
        ("/px?offer=summer&amount=NaN", "bad_amount"),
        ("/px?offer=summer&currency=EURO", "bad_currency"),
        ("/px?offer=summer&order_id=1&order_id=2", "duplicate_parameter"),
        ("/px?offer=summer&items=a:b:c", "bad_items"),
        ("/px?offer=summer&items=a:999999999.00:100", "items_out_of_range"),
        ("/px?offer=summer&order_id=R-1&amount=10&recurring_amount=5", "recurring_needs_postback"),
        ("/px?offer=summer&order_id=B-1&amount=10000.01", "amount_over_pixel_limit"),
        ("/px?offer=summer&order_id=B-2&items=a:5000.00:3", "amount_over_pixel_limit"),
        ("/px?offer=summer&click_id=hello", "bad_click_id"),
        (expired_click.as_str(), "offer_mismatch"),
    ];
    for (target, reason) in rows {
        assert_in_the_contract(target, target, 200, reason);
        let before = edge.log_size().await;
        let response = edge.get(target, &[]).await;
        assert_eq!((response.status, response.header("content-type")), (200, Some("image/gif")), "{target}");
        assert_eq!(response.header("x-clickledger-rejected"), Some(reason), "{target}");
        assert_eq!(edge.log_size().await, before, "{target}");
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let edge = TestEdge::start_with(program(), |config| {
        config.header_timeout = Duration::from_millis(300);
        config.body_timeout = Duration::from_millis(300);
    })
    .await;

    // Headers that never finish: the connection is closed without a request.
    let mut slow_headers = tokio::net::TcpStream::connect(edge.address).await.unwrap();
    slow_headers.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow_headers.read_to_end(&mut buffer)).await;
    assert!(read.is_ok(), "the server closes a connection whose headers stall");
    assert!(!String::from_utf8_lossy(&buffer).contains("200 OK"));

    // A body that never finishes: 408 and nothing written.
    let before = edge.log_size().await;
    let mut slow_body = tokio::net::TcpStream::connect(edge.address).await.unwrap();
    let head = format!(
        "POST /pb?token={SECRET} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ncode=JANE20"
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow_body.read_to_end(&mut response)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"));
    assert_eq!(edge.log_size().await, before);
}
