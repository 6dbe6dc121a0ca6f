//! Money the pipeline must not pay, end to end on the embedded clickledger with the sample
//! program (jane earns 15% of `summer` through code JANE20): an anonymous pixel taking over the
//! advertiser's order, a promo code minting commissions on a pixel, a client farming clicks by
//! dropping its cookie, a blocked network, and secrets in the store's history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use api_support::*;
use serde_json::{Value, json};

/// `(status, commission)` of the attributed conversion of `order_id` once `done` holds.
async fn order_row(api: std::net::SocketAddr, order_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/reports/conversions?order_id={order_id}");
    let page = eventually(api, &path, order_id, |page| items(page).len() == 1 && done(&items(page)[0])).await;
    items(&page)[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_pixel_cannot_take_over_the_advertisers_order() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    // The reproduction of the report: a billion on a pixel is refused outright.
    let huge = common::get(edge, "/px?offer=summer&code=JANE20&order_id=A-1001&amount=1000000000").await;
    assert_eq!(huge.header("x-clickledger-rejected"), Some("amount_over_pixel_limit"));
    // Under the limit it is recorded, but a code alone on a pixel only waits for approval.
    let pixel = common::get(edge, "/px?offer=summer&code=JANE20&order_id=A-1001&amount=9000.00").await;
    assert_eq!(pixel.header("x-clickledger-rejected"), None);
    let pending = order_row(api, "A-1001", |row| row["status"] == "pending").await;
    assert_eq!((pending["sale_amount"].as_str(), pending["commission"].as_str()), (Some("9000.00"), Some("1350.00")));

    // The advertiser's signed word for its own order wins: the order is paid on its amount.
    postback(edge, "code=JANE20&order_id=A-1001&amount=80.00").await;
    // The conversion row of the new winner is written by the order stage, its lines by the
    // ledger stage a moment later: wait for both.
    let paid = order_row(api, "A-1001", |row| row["sale_amount"] == "80.00" && row["status"] != "none").await;
    assert_eq!(
        (paid["commission"].as_str(), paid["status"].as_str(), paid["via"].as_str()),
        (Some("12.00"), Some("approved"), Some("code"))
    );
    // The pixel is kept, as evidence, with why it lost.
    let rejected = eventually(api, "/v1/conversions/rejected?order_id=A-1001", "the superseded pixel", |page| {
        items(page).len() == 1
    })
    .await;
    let row = &items(&rejected)[0];
    assert_eq!(
        (row["reason"].as_str(), row["source"].as_str(), row["amount"].as_str()),
        (Some("superseded_by_postback"), Some("pixel"), Some("9000.00"))
    );
    let lines = eventually(api, "/v1/lines?order_key=acme:A-1001", "the re-priced lines", |page| {
        items(page).len() == 2 && items(page).iter().any(|line| line["status"] == "withdrawn")
    })
    .await;
    assert_eq!(
        lines_of(&lines),
        [("jane".into(), 1, "0.00".into(), "withdrawn".into()), ("jane".into(), 1, "12.00".into(), "approved".into())]
    );
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_alone_on_a_pixel_waits_for_a_person_or_is_ignored() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    common::get(edge, "/px?offer=summer&code=JANE20&order_id=K-1&amount=100.00").await;
    let waiting = order_row(api, "K-1", |row| row["status"] == "pending").await;
    assert_eq!(waiting["commission"], "15.00");
    let listed = eventually(api, "/v1/conversions/pending", "K-1 pending", |page| !items(page).is_empty()).await;
    assert_eq!(items(&listed)[0]["order_key"], "acme:K-1");
    admin(api, "POST", "/v1/conversions/decisions", Some(json!({"orders": ["acme:K-1"], "verdict": "approve"})), 202)
        .await;
    order_row(api, "K-1", |row| row["status"] == "approved").await;

    // The same through the API: an offer that ignores code-only pixels.
    let summer = admin(api, "GET", "/v1/offers/summer", None, 200).await;
    assert_eq!(
        (summer["code_pixel"].as_str(), summer["pixel_max_amount"].as_str()),
        (Some("pending"), Some("10000.00"))
    );
    let changed = admin(api, "PATCH", "/v1/offers/summer", Some(json!({"code_pixel": "ignore"})), 200).await;
    assert_eq!(changed["code_pixel"], "ignore");
    common::get(edge, "/px?offer=summer&code=JANE20&order_id=K-2&amount=100.00").await;
    let refused =
        eventually(api, "/v1/conversions/rejected?order_id=K-2", "K-2 refused", |page| items(page).len() == 1).await;
    assert_eq!(items(&refused)[0]["reason"], "unverified_code");
    // A cookie click still counts on a pixel: only a code alone is unverified.
    let click = common::get(edge, "/c/jane-summer").await;
    common::get_with_cookie(edge, "/px?offer=summer&code=JANE20&order_id=K-3&amount=100.00", &click.visitor()).await;
    let clicked = order_row(api, "K-3", |row| row["status"] != "none").await;
    assert_eq!((clicked["status"].as_str(), clicked["commission"].as_str()), (Some("approved"), Some("15.00")));
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cookieless_clicks_from_one_address_pay_once() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let cpc = json!({"id": "cpc", "advertiser": "acme", "name": "Clicks", "url": "https://shop.example.com/cpc",
        "currency": "USD", "default_payout": "click",
        "payout_options": [{"id": "click", "name": "click", "rule": {"type": "cpc", "per_click": [{"from": 1, "value": "0.50"}]}}]});
    admin(api, "POST", "/v1/offers", Some(cpc), 201).await;
    admin(api, "POST", "/v1/offers/cpc/enrolments", Some(json!({"members": ["jane"]})), 201).await;
    for _ in 0..100 {
        // No cookie sent back: every click is a new visitor, from one address and browser.
        let click = common::get(edge, "/c?offer=cpc&member=jane").await;
        assert_eq!(click.status, 302);
    }
    // A network may click 60 times at once (and gains one click a second back); the clicks
    // beyond are `rate_limited`. Of those taken, one is unique for the client.
    let summary = eventually(api, "/v1/reports/summary?by=offer&offer=cpc", "the clicks", |page| {
        items(page).first().is_some_and(|row| row["clicks"].as_u64().unwrap_or_default() >= 60)
    })
    .await;
    let row = &items(&summary)[0];
    assert!((60..=65).contains(&row["clicks"].as_u64().unwrap()), "{row}");
    assert_eq!((row["unique_clicks"].as_u64(), row["commission"].as_str()), (Some(1), Some("0.50")));
    let lines = admin(api, "GET", "/v1/lines?offer=cpc", None, 200).await;
    assert_eq!(lines_of(&lines), [("jane".into(), 1, "0.50".into(), "approved".into())]);
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_history_holds_no_secret() {
    let app = start().await;
    let api = app.api();
    admin(api, "POST", "/v1/advertisers/acme/rotate-secret", Some(json!({})), 200).await;
    eventually(api, "/v1/reports/history?limit=1000", "the rotation", |page| {
        items(page).iter().filter(|row| row["key"] == "advertiser:acme").count() == 2
    })
    .await;
    // What an analyst's query of the store (docs/REPORTS.md) reads.
    let store = rusqlite::Connection::open(app.dir.path().join("store.db")).unwrap();
    let mut query = store.prepare("SELECT payload FROM program_history WHERE entity = 'advertiser'").unwrap();
    let payloads: Vec<String> = query.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(payloads.len(), 2);
    for payload in &payloads {
        assert!(!payload.contains(POSTBACK_SECRET), "the postback secret is in the store: {payload}");
        let history: Value = serde_json::from_str(payload).unwrap();
        let secrets = history["change"]["state"]["secrets"].as_array().unwrap();
        assert!(secrets.iter().all(|secret| secret["secret"].as_str().unwrap().starts_with("fp:")), "{payload}");
    }
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reversal_and_manual_lines_move_money_exactly() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    postback(edge, "code=JANE20&order_id=R-1&amount=200.00").await;
    assert_eq!(order_row(api, "R-1", |row| row["status"] == "approved").await["commission"], "30.00");
    let reason = |orders: &[&str], reason: &str| json!({"orders": orders, "reason": reason});
    refused(api, "POST", "/v1/orders/reversals", Some(reason(&["acme:R-1"], " ")), 400, "missing_reason").await;
    refused(api, "POST", "/v1/orders/reversals", Some(reason(&["acme:NOPE"], "x")), 404, "unknown_order").await;
    admin(api, "POST", "/v1/orders/reversals", Some(reason(&["acme:R-1"], "confirmed fraud")), 202).await;
    let reversed = eventually(api, "/v1/lines?order_key=acme:R-1", "the reversal", |page| {
        items(page).iter().all(|line| line["status"] == "reversed")
    })
    .await;
    assert_eq!(lines_of(&reversed), [("jane".into(), 1, "0.00".into(), "reversed".into())]);
    let description = items(&reversed)[0]["description"].as_str().unwrap();
    assert!(
        description.contains("reversed by key:bootstrap") && description.ends_with("confirmed fraud)"),
        "{description}"
    );
    let rejected =
        eventually(api, "/v1/conversions/rejected?order_id=R-1", "R-1 rejected", |page| items(page).len() == 1).await;
    assert_eq!(
        (items(&rejected)[0]["reason"].as_str(), items(&rejected)[0]["amount"].as_str()),
        (Some("adjusted"), Some("200.00"))
    );
    refused(api, "POST", "/v1/orders/reversals", Some(reason(&["acme:R-1"], "again")), 409, "nothing_to_reverse").await;

    let bonus = json!({"member": "jane", "amount": "25.00", "reason": "launch week"});
    let clawback = json!({"member": "jane", "amount": "-5.00", "reason": "chargeback fee"});
    admin(api, "POST", "/v1/adjustments", Some(bonus), 202).await;
    admin(api, "POST", "/v1/adjustments", Some(clawback), 202).await;
    refused(
        api,
        "POST",
        "/v1/adjustments",
        Some(json!({"member": "jane", "amount": "0", "reason": "x"})),
        400,
        "bad_amount",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/adjustments",
        Some(json!({"member": "nobody", "amount": "1", "reason": "x"})),
        404,
        "unknown_member",
    )
    .await;
    let manual_kind = |line: &&Value| line["kind"] == "bonus" || line["kind"] == "clawback";
    let manual = eventually(api, "/v1/lines?member=jane&status=approved", "the manual lines", |page| {
        items(page).iter().filter(manual_kind).count() == 2
    })
    .await;
    let mut kinds: Vec<(String, String, String)> = items(&manual)
        .iter()
        .filter(manual_kind)
        .map(|line| {
            (
                line["kind"].as_str().unwrap().into(),
                line["amount"].as_str().unwrap().into(),
                line["description"].as_str().unwrap().into(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!((kinds[0].0.as_str(), kinds[0].1.as_str()), ("bonus", "25.00"));
    assert!(
        kinds[0].2.starts_with("Bonus by key:bootstrap at ") && kinds[0].2.ends_with(": launch week"),
        "{}",
        kinds[0].2
    );
    assert_eq!((kinds[1].0.as_str(), kinds[1].1.as_str()), ("clawback", "-5.00"));

    // A sale billed, then reversed: the billed line stays, a correction goes to the next bill.
    postback(edge, "code=JANE20&order_id=R-2&amount=100.00").await;
    order_row(api, "R-2", |row| row["status"] == "approved").await;
    let period_end = model::Timestamp::now().to_string();
    admin(api, "POST", "/v1/bills/runs", Some(json!({"period_end": period_end})), 202).await;
    let bills = eventually(api, "/v1/bills?member=jane", "jane's bill", |page| items(page).len() == 1).await;
    // With the 7.50 jane earned when the sample program's tom was approved (recruiting).
    assert_eq!(items(&bills)[0]["total"], "42.50", "25.00 - 5.00 + 15.00 + 7.50");
    admin(api, "POST", "/v1/orders/reversals", Some(reason(&["acme:R-2"], "cancelled order")), 202).await;
    let corrected =
        eventually(api, "/v1/lines?order_key=acme:R-2", "the correction", |page| items(page).len() == 2).await;
    assert_eq!(
        lines_of(&corrected),
        [("jane".into(), 1, "-15.00".into(), "approved".into()), ("jane".into(), 1, "15.00".into(), "billed".into())]
    );
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_offer_pays_its_cap_and_rejects_the_rest() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let capped = json!({"id": "capped", "advertiser": "acme", "name": "Capped", "url": "https://shop.example.com/c",
        "currency": "USD", "default_payout": "sale", "caps": [{"period": "day", "conversions": 2}],
        "payout_options": [{"id": "sale", "name": "sale", "rule": {"type": "cps", "rate": [{"from": 1, "value": "0.10"}]}}]});
    admin(api, "POST", "/v1/offers", Some(capped), 201).await;
    admin(api, "POST", "/v1/offers/capped/enrolments", Some(json!({"members": ["jane", "tom"]})), 201).await;
    admin(api, "POST", "/v1/codes", Some(json!({"offer": "capped", "member": "jane", "code": "CAPJ"})), 201).await;
    admin(api, "POST", "/v1/codes", Some(json!({"offer": "capped", "member": "tom", "code": "CAPT"})), 201).await;
    // Three sales today, the third over the offer's cap of two a day.
    postback(edge, "code=CAPJ&order_id=M-1&amount=100.00").await;
    postback(edge, "code=CAPT&order_id=M-2&amount=200.00").await;
    postback(edge, "code=CAPJ&order_id=M-3&amount=300.00").await;
    let over = eventually(api, "/v1/conversions/rejected?reason=cap_exceeded", "the third sale over the cap", |page| {
        items(page).len() == 1
    })
    .await;
    assert_eq!((items(&over)[0]["order_id"].as_str(), items(&over)[0]["member"].as_str()), (Some("M-3"), Some("jane")));
    let lines = eventually(api, "/v1/lines?offer=capped", "the capped lines", |page| {
        items(page).iter().filter(|line| line["tier"] == 1).count() == 3
            && items(page).iter().any(|line| line["status"] == "rejected")
    })
    .await;
    let mut first_tier: Vec<(String, String, String)> = items(&lines)
        .iter()
        .filter(|line| line["tier"] == 1)
        .map(|line| {
            (
                line["order_key"].as_str().unwrap().into(),
                line["amount"].as_str().unwrap().into(),
                line["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    first_tier.sort();
    assert_eq!(
        first_tier,
        [
            ("acme:M-1".into(), "10.00".into(), "approved".into()),
            ("acme:M-2".into(), "20.00".into(), "approved".into()),
            ("acme:M-3".into(), "0.00".into(), "rejected".into()),
        ]
    );
    app.running.stop().await.unwrap();
}
