//! Partner postbacks and webhooks against receivers on 127.0.0.1 (docs/NOTIFICATIONS.md):
//! every event delivered exactly once successfully through failures (500, a timeout, 429 with
//! `Retry-After`), with one delivery id on every attempt, macros filled in and encoded exactly
//! and webhooks signed; a receiver that never answers does not hold up another; destinations
//! the deployment does not allow are refused; templates are checked when the program changes;
//! a delivery can be sent again by hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use api_support::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use testkit::receiver::{Receiver, Reply};

/// The delivery log once every row matching `query` is final and there are `count` of them.
async fn settled(api: std::net::SocketAddr, query: &str, count: usize) -> Vec<Value> {
    let path = format!("/v1/deliveries?{query}");
    let log = eventually(api, &path, &format!("{count} settled deliveries for {query}"), |rows| {
        let rows = rows.as_array().unwrap();
        rows.len() == count && rows.iter().all(|row| row["status"] != "pending")
    })
    .await;
    log.as_array().unwrap().clone()
}

/// A webhook on `url` for `events`; returns its secret.
async fn webhook(api: std::net::SocketAddr, id: &str, url: &str, events: &[&str]) -> String {
    let made = admin(api, "POST", "/v1/webhooks", Some(json!({"id": id, "url": url, "events": events})), 201).await;
    assert_eq!(made["id"], id);
    made["secret"].as_str().unwrap().to_string()
}

/// A click on jane's link with `subs`, then the advertiser's postback with its click id.
async fn sale(edge: std::net::SocketAddr, order_id: &str, amount: &str, subs: &str) -> String {
    let click = common::get(edge, &format!("/c/jane-summer?{subs}")).await;
    assert_eq!(click.status, 302);
    let click_id = click.click_id();
    postback(edge, &format!("click_id={click_id}&order_id={order_id}&amount={amount}")).await;
    click_id
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_delivered_once_through_failures_with_one_delivery_id_and_exact_macros() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    // The partner fails each postback three times (500, no answer, 429 asking for 1 s), then
    // takes it; the finance system fails each webhook once (503).
    let partner = Receiver::start(|request| match request.attempt {
        1 => Reply::Status(500),
        2 => Reply::Hang,
        3 => Reply::RetryAfter(429, 1),
        _ => Reply::Status(200),
    })
    .await;
    let finance =
        Receiver::start(|request| if request.attempt == 1 { Reply::Status(503) } else { Reply::Status(204) }).await;
    let secret =
        webhook(api, "finance", &finance.url("/hooks"), &["conversion.attributed", "commission.approved"]).await;
    let template = partner.url(
        "/pb?cid={click_id}&s1={sub1}&s2={sub2}&s3={sub3}&amt={amount}&pay={payout}&cur={currency}&st={status}\
         &o={order_id}&m={member}&of={offer}&ev={event_id}&conv={conversion_id}&t={conversion_time}",
    );
    let postbacks =
        json!({"postbacks": [{"url": template, "events": ["conversion.attributed", "commission.approved"]}]});
    admin(api, "PATCH", "/v1/offers/summer", Some(postbacks), 200).await;

    let click_id = sale(edge, "N-1", "120.00", "sub1=net%2042%2F%C3%A9%26x&sub2=abc").await;

    // Two notices (attributed, approved), each to the partner and to finance.
    let partner_log = settled(api, "destination=postback:offer:summer%230", 2).await;
    let finance_log = settled(api, "destination=webhook:finance", 2).await;
    for row in &partner_log {
        assert_eq!(
            (row["status"].as_str(), row["attempts"].as_u64(), row["last_status"].as_u64()),
            (Some("delivered"), Some(4), Some(200)),
            "{row}"
        );
        assert_eq!(row["method"], "GET");
    }
    for row in &finance_log {
        assert_eq!(
            (row["status"].as_str(), row["attempts"].as_u64(), row["last_status"].as_u64()),
            (Some("delivered"), Some(2), Some(204)),
            "{row}"
        );
    }

    // What the receivers saw: per delivery id, the attempts the log says, one of them taken.
    let by_delivery = |receiver: &Receiver| {
        let mut attempts: BTreeMap<String, Vec<testkit::receiver::Received>> = BTreeMap::new();
        for request in receiver.received() {
            attempts.entry(request.delivery()).or_default().push(request);
        }
        attempts
    };
    let partner_seen = by_delivery(&partner);
    let logged: Vec<String> = partner_log.iter().map(|row| row["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(partner_seen.keys().cloned().collect::<Vec<_>>(), {
        let mut ids = logged.clone();
        ids.sort();
        ids
    });
    for (delivery, attempts) in &partner_seen {
        assert_eq!(attempts.len(), 4, "delivery {delivery}: 500, timeout, 429, 200");
        assert!(attempts.windows(2).all(|pair| pair[0].target == pair[1].target), "the same URL every attempt");
        let waited = attempts[3].at - attempts[2].at;
        assert!(waited >= Duration::from_millis(950), "Retry-After 1 s honoured, waited {waited:?}");
    }
    let finance_seen = by_delivery(&finance);
    assert_eq!(finance_seen.len(), 2);
    assert!(finance_seen.values().all(|attempts| attempts.len() == 2 && attempts[0].body == attempts[1].body));

    // Macros, each URL-encoded on substitution and read back exactly.
    let report = eventually(api, "/v1/reports/conversions", "N-1 in the report", |page| {
        items(page).iter().any(|row| row["order_id"] == "N-1")
    })
    .await;
    let report_row = items(&report).iter().find(|row| row["order_id"] == "N-1").unwrap().clone();
    let conversion_id = report_row["conversion"].as_str().unwrap();
    let approved_line =
        eventually(api, "/v1/lines?order_id=N-1", "the line of N-1", |page| items(page).len() == 1).await;
    let payout = items(&approved_line)[0]["amount"].as_str().unwrap().to_string();
    assert_eq!(payout, report_row["commission"].as_str().unwrap());
    for row in &partner_log {
        let request = &partner_seen[row["id"].as_str().unwrap()][3];
        let expected = [
            ("cid", click_id.as_str()),
            ("s1", "net 42/é&x"),
            ("s2", "abc"),
            ("s3", ""),
            ("amt", "120.00"),
            ("pay", payout.as_str()),
            ("cur", "USD"),
            ("st", "approved"),
            ("o", "N-1"),
            ("m", "jane"),
            ("of", "summer"),
            ("ev", row["notice"].as_str().unwrap()),
            ("conv", conversion_id),
        ];
        for (name, value) in expected {
            assert_eq!(request.query(name).as_deref(), Some(value), "{name} in {}", request.target);
        }
        assert!(request.target.contains("s1=net%2042%2F%C3%A9%26x&"), "encoded on substitution: {}", request.target);
        let converted_at = model::Timestamp::parse(report_time(&report_row)).unwrap();
        assert_eq!(model::Timestamp::parse(&request.query("t").unwrap()).unwrap(), converted_at);
        assert_eq!(request.header("clickledger-event-id"), row["notice"].as_str());
    }

    // Webhooks: signed over "{timestamp}.{body}" with the endpoint's secret; a stable event id.
    let mut kinds = Vec::new();
    for attempts in finance_seen.values() {
        for request in attempts {
            let signature = request.header("clickledger-signature").unwrap();
            let (timestamp, v1) = signature.split_once(',').unwrap();
            let timestamp = timestamp.strip_prefix("t=").unwrap();
            let v1 = v1.strip_prefix("v1=").unwrap();
            assert_eq!(
                v1,
                hmac_hex(&secret, &format!("{timestamp}.{}", request.body)),
                "signature of {}",
                request.body
            );
            assert_eq!(request.header("content-type"), Some("application/json"));
        }
        let body: Value = serde_json::from_str(&attempts[1].body).unwrap();
        assert_eq!(body["id"].as_str(), attempts[1].header("clickledger-event-id"));
        assert_eq!(body["data"]["conversion"]["order_id"], "N-1");
        assert_eq!(body["data"]["conversion"]["subs"]["sub1"], "net 42/é&x");
        assert_eq!(body["data"]["commission"]["amount"].as_str(), Some(payout.as_str()));
        kinds.push(body["type"].as_str().unwrap().to_string());
    }
    kinds.sort();
    assert_eq!(kinds, ["commission.approved", "conversion.attributed"]);
    app.running.stop().await.unwrap();
}

/// The time of a conversion report row.
fn report_time(row: &Value) -> &str {
    row["order_date"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_does_not_hold_up_another() {
    let dir = tempfile::tempdir().unwrap();
    let notify = notifier::NotifyArgs { timeout: Duration::from_secs(20), ..notify_for_tests() };
    let running = start_with(dir.path(), notify).await;
    let (api, edge) = (running.api, running.edge);
    let stuck = Receiver::start(|_| Reply::Hang).await;
    let healthy = Receiver::start(|_| Reply::Status(200)).await;
    webhook(api, "stuck", &stuck.url("/hooks"), &["commission.created"]).await;
    webhook(api, "healthy", &healthy.url("/hooks"), &["commission.created"]).await;
    for order in 0..10 {
        sale(edge, &format!("S-{order}"), "50.00", "sub1=x").await;
    }
    // Every delivery to the healthy endpoint arrives while the stuck one holds its four
    // connections (the per-destination limit) and has not finished a single attempt.
    settled(api, "destination=webhook:healthy", 10).await;
    assert_eq!(healthy.received().len(), 10);
    assert_eq!(stuck.open_connections(), 4, "the stuck destination's attempts wait for its own limit");
    let stuck_log = eventually(api, "/v1/deliveries?destination=webhook:stuck", "10 stuck deliveries", |rows| {
        rows.as_array().unwrap().len() == 10
    })
    .await;
    assert!(stuck_log.as_array().unwrap().iter().all(|row| row["status"] == "pending" && row["attempts"] == 0));
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_the_deployment_does_not_allow_are_refused_without_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    // The default: public destinations only.
    let notify = notifier::NotifyArgs { backoff: Duration::from_millis(100), ..notifier::NotifyArgs::default() };
    let running = start_with(dir.path(), notify).await;
    let (api, edge) = (running.api, running.edge);
    let local = Receiver::start(|_| Reply::Status(200)).await;
    webhook(api, "loopback", &local.url("/hooks"), &["commission.created"]).await;
    webhook(api, "metadata", "http://169.254.169.254/latest/meta-data/", &["commission.created"]).await;
    webhook(api, "private", "http://10.1.2.3:8080/hooks", &["commission.created"]).await;
    webhook(api, "localhost", &format!("http://localhost:{}/hooks", local.address.port()), &["commission.created"])
        .await;
    sale(edge, "P-1", "10.00", "sub1=x").await;
    let log = settled(api, "event=commission.created", 4).await;
    for row in &log {
        assert_eq!((row["status"].as_str(), row["attempts"].as_u64()), (Some("failed"), Some(1)), "{row}");
        assert!(row["last_error"].as_str().unwrap().starts_with("address_not_allowed"), "{row}");
    }
    assert!(local.received().is_empty(), "no connection reached the loopback receiver");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_endpoints_are_checked_when_the_program_changes() {
    let app = start().await;
    let api = app.api();
    let postback = |url: &str| json!({"postbacks": [{"url": url}]});
    refused(
        api,
        "PATCH",
        "/v1/offers/summer",
        Some(postback("https://p.example/pb?c={clickid}")),
        422,
        "unknown_macro",
    )
    .await;
    refused(api, "PATCH", "/v1/offers/summer", Some(postback("https://p.example/pb?c={click_id")), 422, "bad_url")
        .await;
    refused(api, "PATCH", "/v1/members/jane", Some(postback("ftp://p.example/{click_id}")), 422, "bad_url").await;
    let enrolment = json!({"members": ["jane"], "postbacks": [{"url": "https://p.example/?x={nope}"}]});
    refused(api, "PATCH", "/v1/offers/summer/enrolments", Some(enrolment), 422, "unknown_macro").await;
    let bill_postback = json!({"postbacks": [{"url": "https://p.example/", "events": ["bill.paid"]}]});
    refused(api, "PATCH", "/v1/offers/summer", Some(bill_postback), 422, "invalid").await;
    let bad_hook = json!({"id": "x", "url": "gopher://h.example/", "events": ["bill.paid"]});
    refused(api, "POST", "/v1/webhooks", Some(bad_hook), 422, "bad_url").await;
    let no_events = json!({"id": "x", "url": "https://h.example/", "events": []});
    refused(api, "POST", "/v1/webhooks", Some(no_events), 422, "invalid").await;
    let unknown_event = json!({"id": "x", "url": "https://h.example/", "events": ["bill.lost"]});
    refused(api, "POST", "/v1/webhooks", Some(unknown_event), 400, "bad_json").await;
    // Nothing of the refused changes was kept.
    let offer = admin(api, "GET", "/v1/offers/summer", None, 200).await;
    assert_eq!(offer["postbacks"], json!([]));
    assert_eq!(admin(api, "GET", "/v1/webhooks", None, 200).await, json!([]));
    // A good one is kept as sent; its secret is shown once, then only as a fingerprint.
    let good = "https://p.example/pb?cid={click_id}&pay={payout}";
    admin(api, "PATCH", "/v1/offers/summer", Some(postback(good)), 200).await;
    let offer = admin(api, "GET", "/v1/offers/summer", None, 200).await;
    assert_eq!(offer["postbacks"], json!([{"url": good, "events": ["conversion.attributed"]}]));
    let secret = webhook(api, "crm", "https://crm.example/hooks", &["bill.paid"]).await;
    assert!(secret.starts_with("whsec_") && secret.len() == 46, "{secret}");
    let listed = admin(api, "GET", "/v1/webhooks/crm", None, 200).await;
    assert!(listed["secret_fingerprint"].as_str().unwrap().starts_with("fp:"));
    assert!(!listed.to_string().contains(&secret));
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_delivery_is_sent_again_by_hand_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().unwrap();
    // Retried for a moment only, so the first outage kills the delivery.
    let notify = notifier::NotifyArgs { retry_for: Duration::from_millis(300), ..notify_for_tests() };
    let running = start_with(dir.path(), notify).await;
    let (api, edge) = (running.api, running.edge);
    let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let outage = down.clone();
    let receiver = Receiver::start(move |_| {
        if outage.load(std::sync::atomic::Ordering::SeqCst) { Reply::Status(502) } else { Reply::Status(200) }
    })
    .await;
    webhook(api, "ops", &receiver.url("/hooks"), &["conversion.attributed"]).await;
    sale(edge, "D-1", "10.00", "sub1=x").await;
    let dead = settled(api, "destination=webhook:ops", 1).await;
    assert_eq!((dead[0]["status"].as_str(), dead[0]["last_status"].as_u64()), (Some("dead"), Some(502)));
    let attempts = dead[0]["attempts"].as_u64().unwrap();
    let id = dead[0]["id"].as_str().unwrap().to_string();

    down.store(false, std::sync::atomic::Ordering::SeqCst);
    admin(api, "POST", &format!("/v1/deliveries/{id}/resend"), None, 202).await;
    let delivered =
        eventually(api, &format!("/v1/deliveries/{id}"), "the re-sent delivery", |row| row["status"] == "delivered")
            .await;
    assert_eq!(delivered["attempts"].as_u64(), Some(attempts + 1));
    let seen = receiver.received();
    assert_eq!(seen.len() as u64, attempts + 1);
    assert!(seen.iter().all(|request| request.delivery() == id), "one delivery id on every attempt");
    assert_eq!(seen.iter().filter(|request| request.body == seen[0].body).count(), seen.len());
    refused(api, "POST", "/v1/deliveries/nope/resend", None, 404, "unknown_delivery").await;
    running.stop().await.unwrap();
}
