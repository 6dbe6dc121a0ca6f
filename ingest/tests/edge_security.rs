//! The edge as an attacker meets it: replayed and forged signatures, retried refunds, probes
//! for promo codes and owners, spoofed client addresses, blocked networks, click floods, and
//! traffic before the program is loaded. Each test fails on an edge without the defence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use clickledger_ingest::auth::sign;
use common::*;
use model::events::{ConversionSource, OrderEvent, Reason, wire};
use model::program::ProgramSettings;
use model::testkit::SECRET;
use pipeline::follow::SharedProgram;

fn signed_headers(signature: &str, timestamp: i64) -> Vec<(&'static str, String)> {
    vec![("X-Signature", signature.to_string()), ("X-Timestamp", timestamp.to_string())]
}

async fn post_signed(edge: &TestEdge, path: &str, body: &[u8], headers: &[(&'static str, String)]) -> TestResponse {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    edge.post(path, "application/json", body, &headers).await
}

#[tokio::test]
async fn a_captured_signed_postback_or_refund_is_applied_once() {
    let edge = TestEdge::start().await;
    let now = now_seconds();
    let body = br#"{"code":"JANE20","order_id":"R-1","amount":"80.00"}"#;
    let headers = signed_headers(&sign(SECRET, now, body), now);
    let first = post_signed(&edge, "/pb", body, &headers).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = post_signed(&edge, "/pb", body, &headers).await;
    assert_eq!((again.status, again.reason().as_str()), (409, "replayed"));
    // Moving the captured signature to a fresh timestamp breaks it: the timestamp is signed.
    let moved = signed_headers(&sign(SECRET, now, body), now + 2);
    assert_eq!(post_signed(&edge, "/pb", body, &moved).await.reason(), "bad_signature");
    assert_eq!(edge.records(&edge.topics.events).await.len(), 1);

    let refund = br#"{"order_id":"R-1","amount":"10.00","refund_id":"rf-1"}"#;
    let refund_headers = signed_headers(&sign(SECRET, now, refund), now);
    assert_eq!(post_signed(&edge, "/pb/refund", refund, &refund_headers).await.status, 200);
    assert_eq!(post_signed(&edge, "/pb/refund", refund, &refund_headers).await.reason(), "replayed");
    // The advertiser's own retry, signed anew, carries the same refund_id: the same refund.
    let later = now + 1;
    let retry = post_signed(&edge, "/pb/refund", refund, &signed_headers(&sign(SECRET, later, refund), later)).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    let refunds: Vec<_> = edge
        .records(&edge.topics.orders)
        .await
        .into_iter()
        .map(|record| match wire::decode::<OrderEvent>(&record.payload).unwrap() {
            OrderEvent::Refund(refund) => refund.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(refunds.len(), 2, "written twice, ...");
    assert_eq!(refunds[0], refunds[1], "... as one refund, which the order stage applies once");
}

#[tokio::test]
async fn retries_carry_their_identity_and_a_partial_refund_without_one_is_refused() {
    let edge = TestEdge::start().await;
    let form = "application/x-www-form-urlencoded";
    let event_id = |response: &TestResponse| response.json()["event_id"].as_str().unwrap().to_string();
    let keyed = |key: &'static str| vec![("Idempotency-Key", key)];

    let partial = format!("order_id=K-1&amount=5.00&token={SECRET}");
    let refused = edge.post("/pb/refund", form, partial.as_bytes(), &[]).await;
    assert_eq!((refused.status, refused.reason().as_str()), (400, "missing_refund_id"));
    let first = edge.post("/pb/refund", form, partial.as_bytes(), &keyed("refund-7")).await;
    let retry = edge.post("/pb/refund", form, partial.as_bytes(), &keyed("refund-7")).await;
    let other = edge.post("/pb/refund", form, partial.as_bytes(), &keyed("refund-8")).await;
    assert_eq!((first.status, retry.status, other.status), (200, 200, 200));
    assert_eq!(event_id(&first), event_id(&retry));
    assert_ne!(event_id(&first), event_id(&other));

    let full = format!("order_id=K-1&token={SECRET}");
    let full_first = edge.post("/pb/refund", form, full.as_bytes(), &[]).await;
    let full_again = edge.post("/pb/refund", form, full.as_bytes(), &[]).await;
    assert_eq!(event_id(&full_first), event_id(&full_again), "an order has one full refund");

    let cancel = format!("order_id=K-1&token={SECRET}");
    let cancels = [
        edge.post("/pb/cancel", form, cancel.as_bytes(), &[]).await,
        edge.post("/pb/cancel", form, cancel.as_bytes(), &keyed("c-1")).await,
    ];
    assert_eq!(event_id(&cancels[0]), event_id(&cancels[1]), "an order's subscription ends once");

    let postback = format!("code=JANE20&token={SECRET}&amount=3.00&event=lead");
    let leads = [
        edge.post("/pb", form, postback.as_bytes(), &keyed("lead-1")).await,
        edge.post("/pb", form, postback.as_bytes(), &keyed("lead-1")).await,
    ];
    assert_eq!(event_id(&leads[0]), event_id(&leads[1]), "a retried postback with its key is one event");
}

#[tokio::test]
async fn the_same_signed_request_on_two_edges_is_one_event() {
    let (one, two) = (TestEdge::start().await, TestEdge::start().await);
    let now = now_seconds();
    let body = br#"{"code":"JANE20","amount":"4.00","event":"lead"}"#;
    let headers = signed_headers(&sign(SECRET, now, body), now);
    let (first, second) =
        (post_signed(&one, "/pb", body, &headers).await, post_signed(&two, "/pb", body, &headers).await);
    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.json()["event_id"], second.json()["event_id"]);
}

#[tokio::test]
async fn without_credentials_known_and_unknown_codes_and_offers_look_the_same() {
    let edge = TestEdge::start().await;
    let answer = |response: TestResponse| (response.status, response.body.clone());
    for (known, unknown) in [
        ("/pb?code=JANE20&order_id=P-1&amount=1", "/pb?code=NOPE99&order_id=P-1&amount=1"),
        ("/pb?code=JANE20&order_id=P-1&token=guess", "/pb?code=NOPE99&order_id=P-1&token=guess"),
        ("/pb?offer=summer&code=X&token=guess", "/pb?offer=winter&code=X&token=guess"),
        ("/pb?offer=rival&code=RIVAL10&token=guess", "/pb?offer=nope&code=RIVAL10&token=guess"),
    ] {
        let (known, unknown) = (answer(edge.get(known, &[]).await), answer(edge.get(unknown, &[]).await));
        assert_eq!(known, unknown);
        assert_eq!(known.0, 401);
        for name in ["acme", "Acme", "globex", "jane"] {
            assert!(!known.1.contains(name), "{} names {name}", known.1);
        }
    }
    // Authenticated as acme, another advertiser's code is no code of acme's: nothing names it.
    let theirs = edge.get(&format!("/pb?code=RIVAL10&order_id=P-2&amount=1&token={SECRET}"), &[]).await;
    assert_eq!(theirs.status, 200);
    let conversion = conversion_event(&edge.records(&edge.topics.events).await[0].payload);
    assert_eq!((conversion.offer, conversion.advertiser.unwrap().as_str()), (None, "acme"));
}

#[tokio::test]
async fn before_the_program_is_loaded_traffic_waits_instead_of_being_unknown() {
    let program = SharedProgram::new();
    let edge = TestEdge::start_embedded(program.clone(), |_| {}).await;
    let click = edge.get("/c?offer=summer&member=jane", &[]).await;
    assert_eq!((click.status, click.reason().as_str(), click.header("retry-after")), (503, "not_ready", Some("1")));
    let pixel = edge.get("/px?offer=summer&order_id=N-1&amount=1", &[]).await;
    assert_eq!((pixel.status, pixel.header("x-clickledger-rejected")), (200, Some("not_ready")));
    let postback = edge.get(&format!("/pb?code=JANE20&order_id=N-1&token={SECRET}"), &[]).await;
    assert_eq!((postback.status, postback.reason().as_str()), (503, "not_ready"));
    let refund = edge.post("/pb/refund", "application/x-www-form-urlencoded", b"order_id=N-1", &[]).await;
    assert_eq!((refund.status, refund.reason().as_str()), (503, "not_ready"));
    assert!(edge.log_size().await.values().all(|size| *size == 0), "nothing was written");
}

#[tokio::test]
async fn the_client_is_the_socket_peer_unless_a_trusted_proxy_says_otherwise() {
    let direct = TestEdge::start().await;
    let spoofed = [("X-Forwarded-For", "198.51.100.23"), ("User-Agent", "Mozilla/5.0 (X11)")];
    direct.get("/c?offer=summer&member=jane", &spoofed).await;
    let click = click_event(&direct.records(&direct.topics.events).await[0].payload);
    let client = click.client.unwrap();
    assert_eq!(client.address.to_string(), "127.0.0.1", "the header of an untrusted peer is ignored");
    assert_eq!(client, model::events::Client::new("127.0.0.1".parse().unwrap(), Some("Mozilla/5.0 (X11)")));
    assert_ne!(client.agent, 0);

    let proxied =
        TestEdge::start_with(program(), |config| config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    proxied.get("/c?offer=summer&member=jane", &[("X-Forwarded-For", "10.9.9.9, 198.51.100.23")]).await;
    let click = click_event(&proxied.records(&proxied.topics.events).await[0].payload);
    assert_eq!(click.client.unwrap().address.to_string(), "198.51.100.23");
    let postback =
        proxied.get(&format!("/pb?code=JANE20&order_id=C-1&token={SECRET}"), &[("User-Agent", "Googlebot/2.1")]).await;
    assert_eq!(postback.status, 200);
    let records = proxied.records(&proxied.topics.events).await;
    let conversion = conversion_event(&records[1].payload);
    assert_eq!(conversion.source, ConversionSource::Postback);
    assert!(!conversion.bot, "a server's postback is not judged by a browser's bot list");
}

#[tokio::test]
async fn a_blocked_network_is_recorded_rejected_and_a_click_flood_is_rate_limited() {
    let settings = ProgramSettings {
        blocked_addresses: vec!["203.0.113.0/24".parse().unwrap()],
        click_rate_limit: 3,
        ..ProgramSettings::default()
    };
    let edge = TestEdge::start_with(program_builder().settings(settings).build(), |config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |address: &'static str| [("X-Forwarded-For", address)];

    let blocked = edge.get("/c/jane-summer", &from("203.0.113.9")).await;
    assert_eq!(blocked.status, 302, "a blocked click still redirects ...");
    assert!(blocked.header("location").unwrap().starts_with("https://shop.example.com/landing?"), "... to the offer");
    let pixel = edge.get("/px?offer=summer&order_id=X-1&amount=5", &from("203.0.113.10")).await;
    assert_eq!(pixel.header("x-clickledger-rejected"), None);

    for _ in 0..5 {
        assert_eq!(edge.get("/c?offer=summer&member=jane", &from("192.0.2.50")).await.status, 302);
    }
    edge.get("/c?offer=summer&member=jane", &from("192.0.2.51")).await;

    let records = edge.records(&edge.topics.events).await;
    let clicks: Vec<_> = records
        .iter()
        .filter_map(|record| match wire::decode(&record.payload).unwrap() {
            model::events::TrackingEvent::Click(click) => Some(click),
            model::events::TrackingEvent::Conversion(conversion) => {
                assert_eq!(conversion.refused, Some(Reason::BlockedAddress));
                None
            }
        })
        .collect();
    let rejected: Vec<Option<Reason>> = clicks.iter().map(|click| click.rejected).collect();
    assert_eq!(
        rejected,
        [Some(Reason::BlockedAddress), None, None, None, Some(Reason::RateLimited), Some(Reason::RateLimited), None]
    );
}

#[tokio::test]
async fn an_acknowledgement_timeout_of_zero_still_answers_from_the_logs_own_outcome() {
    let edge = TestEdge::start_with(program(), |config| config.postback_ack_timeout = Duration::ZERO).await;
    let response = edge.get(&format!("/pb?code=JANE20&order_id=Z-1&amount=1&token={SECRET}"), &[]).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let records = edge.records(&edge.topics.events).await;
    assert_eq!(records.len(), 1);
    assert_eq!(conversion_event(&records[0].payload).id.to_string(), response.json()["event_id"].as_str().unwrap());
}
