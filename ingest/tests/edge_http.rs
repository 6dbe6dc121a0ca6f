//! The tracking contract over HTTP, against the embedded log: every endpoint, the visitor
//! cookie, the click-id round trip, deep links, and what lands in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ingest::auth::sign;
use model::events::{ConversionSource, OrderEvent, Reason, TrackingEvent, wire};
use model::testkit::SECRET;
use pipeline::ports::log::partition_for;
use rust_decimal_macros::dec;

use clickledger_ingest as ingest;

#[tokio::test]
async fn a_click_redirects_with_a_verifiable_click_id_and_sets_the_visitor_cookie() {
    let edge = TestEdge::start().await;
    let response = edge.get("/c?offer=summer&member=jane&sub1=story&sub2=a+b", &[("User-Agent", "Mozilla/5.0")]).await;
    assert_eq!(response.status, 302);
    let location = response.header("location").unwrap();
    assert!(location.starts_with("https://shop.example.com/landing?click_id="), "{location}");
    let cookie = response.header("set-cookie").unwrap();
    assert!(cookie.starts_with("clk_v="));
    assert!(cookie.contains("; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "Secure only when configured");
    assert_eq!(response.header("cache-control"), Some("no-store"));

    let visitor = visitor_of(&response);
    let click_id = location_param(&response, "click_id").unwrap();
    let claims = edge.keys.verify(&click_id).expect("the click id verifies");
    assert_eq!(
        (claims.offer.as_str(), claims.member.as_str(), claims.visitor.as_str()),
        ("summer", "jane", visitor.as_str())
    );

    let events = edge.records(&edge.topics.events).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, visitor, "clicks are keyed by visitor");
    assert_eq!(events[0].partition, partition_for(&visitor, PARTITIONS));
    let click = click_event(&events[0].payload);
    assert_eq!(click.id, claims.click);
    assert_eq!(click.click_id, click_id);
    assert_eq!(click.deep_link, None, "the offer URL is no deep link");
    assert_eq!((click.subs.sub1.as_deref(), click.subs.sub2.as_deref()), (Some("story"), Some("a b")));
    assert_eq!((click.bot, click.rejected), (false, None));

    assert!(edge.records(&edge.topics.ledger).await.is_empty(), "the edge writes each click once");
}

#[tokio::test]
async fn a_returning_visitor_keeps_its_cookie() {
    let edge = TestEdge::start().await;
    let first = edge.get("/c?offer=summer&member=jane", &[]).await;
    let visitor = visitor_of(&first);
    let cookie = format!("other=1; clk_v={visitor}");
    let again = edge.get("/c?offer=summer&member=kid", &[("Cookie", &cookie)]).await;
    assert_eq!(visitor_of(&again), visitor);
    let claims = edge.keys.verify(&location_param(&again, "click_id").unwrap()).unwrap();
    assert_eq!(claims.visitor.as_str(), visitor);

    let tampered = edge.get("/c?offer=summer&member=jane", &[("Cookie", "clk_v=../../etc")]).await;
    assert_ne!(visitor_of(&tampered), "../../etc", "a malformed cookie is replaced");
}

#[tokio::test]
async fn links_redirect_to_their_deep_url_and_unknown_links_are_404() {
    let edge = TestEdge::start().await;
    let response = edge.get("/c/jane-summer", &[]).await;
    assert_eq!(response.status, 302);
    assert!(response.header("location").unwrap().starts_with("https://shop.example.com/sale?click_id="));
    let click = click_event(&edge.records(&edge.topics.events).await[0].payload);
    assert_eq!(click.link.as_ref().map(|link| link.as_str()), Some("jane-summer"));

    let before = edge.log_size().await;
    let unknown = edge.get("/c/nope", &[]).await;
    assert_eq!((unknown.status, unknown.reason().as_str()), (404, "unknown_link"));
    assert_eq!(edge.log_size().await, before);
}

#[tokio::test]
async fn clicks_that_earn_nothing_still_redirect_to_the_offer_and_are_recorded_with_a_reason() {
    let edge = TestEdge::start().await;
    let cases = [
        ("/c/jane-old", Reason::LinkInactive),
        ("/c?offer=summer&member=tom", Reason::MemberNotApproved),
        ("/c?offer=summer&member=ann", Reason::NotEnrolled),
        ("/c?offer=summer&member=nobody", Reason::UnknownMember),
        ("/c?offer=expired&member=jane", Reason::OfferExpired),
        ("/c?offer=paused&member=jane&url=https%3A%2F%2Fshop.example.com%2Fdeep", Reason::OfferPaused),
    ];
    for (target, _) in cases {
        let response = edge.get(target, &[]).await;
        assert_eq!(response.status, 302, "{target}");
        let location = response.header("location").unwrap();
        assert!(
            location.starts_with("https://shop.example.com/landing?click_id="),
            "{target} goes to the offer URL: {location}"
        );
    }
    let events = edge.records(&edge.topics.events).await;
    let reasons: Vec<Option<Reason>> = events.iter().map(|record| click_event(&record.payload).rejected).collect();
    assert_eq!(reasons.len(), cases.len());
    for (_, reason) in cases {
        assert!(reasons.contains(&Some(reason)), "{reason:?} recorded");
    }

    let before = edge.log_size().await;
    let unknown = edge.get("/c?offer=winter&member=jane", &[]).await;
    assert_eq!((unknown.status, unknown.reason().as_str()), (404, "unknown_offer"));
    assert_eq!(edge.log_size().await, before, "an unknown offer writes nothing");
}

#[tokio::test]
async fn deep_links_go_only_to_allowed_hosts() {
    let edge = TestEdge::start().await;
    let cases = [
        ("https://shop.example.com/p/1?color=red", "https://shop.example.com/p/1?color=red&click_id="),
        ("HTTPS://SHOP.EXAMPLE.COM/p/2", "https://shop.example.com/p/2?click_id="),
        ("//evil.com", "https://shop.example.com/landing?click_id="),
        ("https://evil.com@shop.example.com/", "https://shop.example.com/landing?click_id="),
        ("https://shop.example.com@evil.com/", "https://shop.example.com/landing?click_id="),
        ("https://shop.example.com.evil.com/", "https://shop.example.com/landing?click_id="),
        ("javascript:alert(1)", "https://shop.example.com/landing?click_id="),
        ("shop.example.com/p", "https://shop.example.com/landing?click_id="),
        ("https://shоp.example.com/", "https://shop.example.com/landing?click_id="),
        ("https://shop.example.com:8443/", "https://shop.example.com/landing?click_id="),
    ];
    for (requested, expected) in cases {
        let encoded: String = url::form_urlencoded::byte_serialize(requested.as_bytes()).collect();
        let response = edge.get(&format!("/c?offer=summer&member=jane&url={encoded}"), &[]).await;
        assert_eq!(response.status, 302);
        let location = response.header("location").unwrap();
        assert!(location.starts_with(expected), "{requested} → {location}");
    }
    let deep_links: Vec<Option<String>> =
        edge.records(&edge.topics.events).await.iter().map(|record| click_event(&record.payload).deep_link).collect();
    assert_eq!(deep_links[0].as_deref(), Some("https://shop.example.com/p/1?color=red"));
    assert_eq!(deep_links[1].as_deref(), Some("https://shop.example.com/p/2"));
    assert!(deep_links[2..].iter().all(Option::is_none), "refused deep links are not recorded as used");
}

#[tokio::test]
async fn known_bots_are_recorded_as_bots() {
    let edge = TestEdge::start().await;
    let agent = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    assert_eq!(edge.get("/c?offer=summer&member=jane", &[("User-Agent", agent)]).await.status, 302);
    assert!(click_event(&edge.records(&edge.topics.events).await[0].payload).bot);
}

#[tokio::test]
async fn the_pixel_is_always_a_gif_and_records_the_conversion_for_the_cookie_visitor() {
    let edge = TestEdge::start().await;
    let click = edge.get("/c?offer=summer&member=jane", &[]).await;
    let visitor = visitor_of(&click);
    let cookie = format!("clk_v={visitor}");
    let pixel = edge
        .get(
            "/px?offer=summer&order_id=A-1&amount=129.90&currency=USD&items=product1id:100:1,socks:14.95:2&code=jane20",
            &[("Cookie", &cookie)],
        )
        .await;
    assert_eq!(pixel.status, 200);
    assert_eq!(pixel.header("content-type"), Some("image/gif"));
    assert_eq!(pixel.header("cache-control"), Some("no-store"));
    assert_eq!(pixel.bytes.len(), 43);
    assert_eq!(&pixel.bytes[..6], b"GIF89a");
    assert_eq!(pixel.header("x-clickledger-rejected"), None);

    let events = edge.records(&edge.topics.events).await;
    let record = events
        .iter()
        .find(|record| {
            wire::decode::<TrackingEvent>(&record.payload)
                .is_ok_and(|event| matches!(event, TrackingEvent::Conversion(_)))
        })
        .unwrap();
    assert_eq!(record.key, visitor, "a pixel follows its visitor's clicks");
    let conversion = conversion_event(&record.payload);
    assert_eq!(conversion.source, ConversionSource::Pixel);
    assert_eq!(conversion.advertiser.as_ref().map(|id| id.as_str()), Some("acme"));
    assert_eq!(conversion.amount, Some(dec!(129.90)));
    assert_eq!(conversion.amount.unwrap().to_string(), "129.90");
    assert_eq!(conversion.items.len(), 2);
    assert_eq!(conversion.items[1].total(), dec!(29.90));
    assert_eq!(conversion.code.as_ref().map(|code| code.as_str()), Some("JANE20"));
    assert_eq!(conversion.event, "sale");

    let before = edge.log_size().await;
    let bad = edge.get("/px?offer=summer&amount=-1", &[("Cookie", &cookie)]).await;
    assert_eq!((bad.status, bad.header("content-type")), (200, Some("image/gif")));
    assert_eq!(bad.header("x-clickledger-rejected"), Some("bad_amount"));
    assert_eq!(edge.log_size().await, before);
}

#[tokio::test]
async fn a_click_id_postback_is_acknowledged_after_the_log_and_keyed_by_the_clicks_visitor() {
    let edge = TestEdge::start().await;
    let click = edge.get("/c?offer=summer&member=jane", &[]).await;
    let click_id = location_param(&click, "click_id").unwrap();
    let target = format!(
        "/pb?click_id={click_id}&order_id=A-1001&amount=50.00&currency=USD&event=sale&token={SECRET}&recurring_amount=29.95&occurred_at=2026-01-01T00:00:00Z"
    );
    // occurred_at is bounded: 2026-01-01 may be out of range depending on today; use now.
    let now = model::Timestamp::now().to_string();
    let target = target.replace("2026-01-01T00:00:00Z", &now);
    let response = edge.get(&target, &[]).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["status"], "accepted");
    let event_id = body["event_id"].as_str().unwrap().to_string();

    let events = edge.records(&edge.topics.events).await;
    let record = events
        .iter()
        .find(|record| record.payload.windows(event_id.len()).any(|window| window == event_id.as_bytes()))
        .unwrap();
    assert_eq!(record.key, visitor_of(&click));
    let conversion = conversion_event(&record.payload);
    assert_eq!(conversion.source, ConversionSource::Postback);
    assert_eq!(conversion.offer.as_ref().map(|id| id.as_str()), Some("summer"));
    assert_eq!(conversion.order_id.as_ref().map(|id| id.as_str()), Some("A-1001"));
    assert_eq!((conversion.amount, conversion.recurring_amount), (Some(dec!(50.00)), Some(dec!(29.95))));
    assert_eq!(conversion.click_id.as_deref(), Some(click_id.as_str()));
    assert!(conversion.occurred_at.is_some());
}

#[tokio::test]
async fn signed_json_and_form_postbacks_are_accepted_and_tampering_is_refused() {
    let edge = TestEdge::start().await;
    let now = model::Timestamp::now().millis() / 1000;
    let timestamp = now.to_string();
    let body = br#"{"code":"jane20","order_id":"B-7","amount":12.50,"currency":"USD"}"#;
    let signature = sign(SECRET, now, body);
    let headers = [("X-Signature", signature.as_str()), ("X-Timestamp", timestamp.as_str())];
    let response = edge.post("/pb", "application/json", body, &headers).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let events = edge.records(&edge.topics.events).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, "acme:B-7", "a code-only postback is keyed by its order");
    let conversion = conversion_event(&events[0].payload);
    assert_eq!(conversion.amount.map(|amount| amount.to_string()), Some("12.50".to_string()));
    assert_eq!(conversion.offer.as_ref().map(|id| id.as_str()), Some("summer"), "the code names the offer");

    let tampered = br#"{"code":"jane20","order_id":"B-7","amount":99.50,"currency":"USD"}"#;
    let refused = edge.post("/pb", "application/json", tampered, &headers).await;
    assert_eq!((refused.status, refused.reason().as_str()), (401, "bad_signature"));

    let form = format!("code=JANE20&order_id=B-8&amount=5&token={SECRET}");
    let response = edge.post("/pb", "application/x-www-form-urlencoded", form.as_bytes(), &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(edge.records(&edge.topics.events).await.len(), 2);
}

#[tokio::test]
async fn refunds_and_cancels_go_to_the_orders_topic_and_a_refund_id_makes_retries_one_refund() {
    let edge = TestEdge::start().await;
    let form = |refund: &str| format!("order_id=A-1001&amount=10.00&refund_id={refund}&token={SECRET}");
    let first = edge.post("/pb/refund", "application/x-www-form-urlencoded", form("r1").as_bytes(), &[]).await;
    let retry = edge.post("/pb/refund", "application/x-www-form-urlencoded", form("r1").as_bytes(), &[]).await;
    let other = edge.post("/pb/refund", "application/x-www-form-urlencoded", form("r2").as_bytes(), &[]).await;
    assert_eq!((first.status, retry.status, other.status), (200, 200, 200));
    assert_eq!(first.json()["event_id"], retry.json()["event_id"]);
    assert_ne!(first.json()["event_id"], other.json()["event_id"]);

    let cancel = edge
        .post(
            "/pb/cancel",
            "application/json",
            format!(r#"{{"order_id":"A-1001","token":"{SECRET}"}}"#).as_bytes(),
            &[],
        )
        .await;
    assert_eq!(cancel.status, 200);

    let orders = edge.records(&edge.topics.orders).await;
    assert_eq!(orders.len(), 4);
    assert!(orders.iter().all(|record| record.key == "acme:A-1001"));
    let kinds: Vec<&str> = orders
        .iter()
        .map(|record| match wire::decode::<OrderEvent>(&record.payload).unwrap() {
            OrderEvent::Refund(refund) => {
                assert_eq!(refund.amount, Some(dec!(10.00)));
                "refund"
            }
            OrderEvent::Cancel(_) => "cancel",
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds.iter().filter(|kind| **kind == "refund").count(), 3);
}

#[tokio::test]
async fn operations_endpoints_report_health_readiness_and_metrics() {
    let edge = TestEdge::start().await;
    assert_eq!(edge.get("/healthz", &[]).await.status, 200);
    let ready = edge.get("/readyz", &[]).await;
    assert_eq!((ready.status, ready.json()["status"].as_str()), (200, Some("ready")));
    edge.get("/c?offer=summer&member=jane", &[]).await;
    edge.get("/c?offer=nope&member=jane", &[]).await;
    let metrics = edge.get("/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.bytes).unwrap();
    assert!(text.contains(r#"clickledger_ingest_requests_total{route="click",status="302"}"#), "{text}");
    assert!(text.contains(r#"clickledger_ingest_rejected_total{reason="unknown_offer"}"#));
    assert!(text.contains("clickledger_ingest_request_seconds_bucket"));
    assert!(text.contains("clickledger_ingest_log_ack_seconds"));
    assert!(text.contains("clickledger_ingest_log_queue_depth"));
}

#[tokio::test]
async fn readiness_waits_for_the_program_and_goes_false_at_shutdown_while_requests_still_finish() {
    let empty = pipeline::follow::SharedProgram::new();
    assert!(!empty.is_loaded());
    let mut edge =
        TestEdge::start_with(program(), |config| config.shutdown_grace = std::time::Duration::from_millis(400)).await;
    let click_id = location_param(&edge.get("/c?offer=summer&member=jane", &[]).await, "click_id").unwrap();
    let address = edge.address;
    let stopping = edge.signal_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let during = raw_get(address, "/readyz").await;
    assert!(during.starts_with("HTTP/1.1 503"), "{during}");
    let postback = raw_get(address, &format!("/pb?click_id={click_id}&order_id=Z-1&amount=1&token={SECRET}")).await;
    assert!(postback.starts_with("HTTP/1.1 200"), "still served during the grace period: {postback}");
    stopping.await.unwrap().unwrap();
    let events = edge.records(&edge.topics.events).await;
    assert_eq!(events.len(), 2, "the click and the postback acknowledged during shutdown are in the log");
}

async fn raw_get(address: std::net::SocketAddr, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}
