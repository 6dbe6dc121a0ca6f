//! A change made through the program API changes what the tracking edge does at once (the
//! edge shares the program the API applies each change to before it answers), and the money
//! endpoints move real commissions: approvals, refunds, subscription terms and cancels, bills.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::time::{Duration, Instant};

use api_support::*;
use serde_json::{Value, json};

const WITHIN: Duration = Duration::from_secs(1);

/// The conversion report row of `order_id`, once the store has it and its commission.
async fn conversion(api: std::net::SocketAddr, order_id: &str) -> Value {
    let page = eventually(api, "/v1/reports/conversions?limit=1000", order_id, |page| {
        items(page).iter().any(|row| row["order_id"] == order_id && row["status"] != "none")
    })
    .await;
    items(&page).iter().find(|row| row["order_id"] == order_id).unwrap().clone()
}

/// Rejected conversions as (reason, offer, count), once the store has `count` of `reason`.
async fn rejected(api: std::net::SocketAddr, reason: &str, count: u64) -> Vec<(String, String, u64)> {
    let page = eventually(api, "/v1/reports/rejections", reason, |page| {
        items(page).iter().any(|row| row["reason"] == reason && row["conversions"] == count)
    })
    .await;
    let mut rows: Vec<(String, String, u64)> = items(&page)
        .iter()
        .map(|row| {
            (
                row["reason"].as_str().unwrap().into(),
                row["offer"].as_str().unwrap().into(),
                row["conversions"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_link_stops_earning_within_a_second() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let click = common::get(edge, "/c/jane-summer").await;
    assert_eq!(click.status, 302);
    let pixel = common::get_with_cookie(edge, "/px?offer=summer&order_id=L-1&amount=100.00", &click.visitor()).await;
    assert_eq!(pixel.status, 200);
    let earned = conversion(api, "L-1").await;
    assert_eq!((earned["member"].as_str(), earned["commission"].as_str()), (Some("jane"), Some("15.00")));

    let changed = Instant::now();
    admin(api, "POST", "/v1/links/activation", Some(json!({"codes": ["jane-summer"], "active": false})), 200).await;
    let click = common::get(edge, "/c/jane-summer").await;
    assert!(changed.elapsed() < WITHIN, "the change and the next click took {:?}", changed.elapsed());
    // The shopper is still redirected (to the offer URL, not the link's deep link), but the
    // click earns nothing and nor does the sale.
    assert_eq!(click.status, 302);
    let landing = format!("https://shop.example.com/summer?click_id={}", click.click_id());
    assert_eq!(click.header("location"), Some(landing.as_str()));
    common::get_with_cookie(edge, "/px?offer=summer&order_id=L-2&amount=100.00", &click.visitor()).await;
    assert_eq!(
        rejected(api, "no_click_in_window", 1).await,
        [("no_click_in_window".to_string(), "summer".to_string(), 1)]
    );
    let summary =
        eventually(api, "/v1/reports/summary?by=member&member=jane", "jane's summary", |page| !items(page).is_empty())
            .await;
    assert_eq!((items(&summary)[0]["clicks"].as_u64(), items(&summary)[0]["conversions"].as_u64()), (Some(1), Some(1)));
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_code_routes_to_the_member_and_the_old_one_stops() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let changed = Instant::now();
    let refreshed = admin(api, "POST", "/v1/codes/JANE20/refresh", Some(json!({})), 200).await;
    assert_eq!(refreshed["new"]["code"], "JANE20-2");
    postback(edge, "code=JANE20-2&order_id=C-1&amount=100.00").await;
    postback(edge, "code=JANE20&order_id=C-2&amount=100.00").await;
    assert!(changed.elapsed() < WITHIN, "the refresh and two postbacks took {:?}", changed.elapsed());
    let row = conversion(api, "C-1").await;
    assert_eq!(
        (row["member"].as_str(), row["via"].as_str(), row["commission"].as_str()),
        (Some("jane"), Some("code"), Some("15.00"))
    );
    assert_eq!(rejected(api, "code_inactive", 1).await, [("code_inactive".to_string(), "summer".to_string(), 1)]);
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_offer_rejects_within_a_second_and_earns_again_when_resumed() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let changed = Instant::now();
    admin(api, "POST", "/v1/offers/summer/pause", None, 200).await;
    postback(edge, "code=JANE20&order_id=P-1&amount=100.00").await;
    let click = common::get(edge, "/c?offer=summer&member=tom").await;
    assert!(changed.elapsed() < WITHIN, "the pause, a postback and a click took {:?}", changed.elapsed());
    assert_eq!(click.status, 302);
    assert_eq!(rejected(api, "offer_paused", 1).await, [("offer_paused".to_string(), "summer".to_string(), 1)]);
    admin(api, "POST", "/v1/offers/summer/resume", None, 200).await;
    postback(edge, "code=JANE20&order_id=P-2&amount=100.00").await;
    assert_eq!(conversion(api, "P-2").await["commission"], "15.00");
    // The paused click earned nothing: tom has no clicks in the summary.
    let summary = admin(api, "GET", "/v1/reports/summary?by=member&member=tom", None, 200).await;
    assert!(items(&summary).iter().all(|row| row["clicks"] == 0), "{summary}");
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_conversions_are_approved_or_rejected_and_orders_refunded() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    let mut pend = json!({"id": "pend", "advertiser": "acme", "name": "Pending", "url": "https://shop.example.com/pend",
        "currency": "USD", "default_payout": "pending",
        "payout_options": [{"id": "pending", "name": "Pending_sale", "pending": true, "tier2": "0.5",
            "rule": {"type": "cps", "rate": [{"from": 1, "value": "0.20"}]}}]});
    admin(api, "POST", "/v1/offers", Some(pend.take()), 201).await;
    admin(api, "POST", "/v1/offers/pend/enrolments", Some(json!({"members": ["tom"]})), 201).await;
    admin(api, "POST", "/v1/codes", Some(json!({"offer": "pend", "member": "tom", "code": "TOMPEND"})), 201).await;
    postback(edge, "code=TOMPEND&order_id=Q-1&amount=100.00").await;
    postback(edge, "code=TOMPEND&order_id=Q-2&amount=50.00").await;
    let pending =
        eventually(api, "/v1/conversions/pending", "two pending conversions", |page| items(page).len() == 2).await;
    let listed: Vec<(&str, &str, &str)> = items(&pending)
        .iter()
        .map(|row| {
            (row["order_key"].as_str().unwrap(), row["member"].as_str().unwrap(), row["commission"].as_str().unwrap())
        })
        .collect();
    assert_eq!(listed, [("acme:Q-1", "tom", "20.00"), ("acme:Q-2", "tom", "10.00")]);

    refused(
        api,
        "POST",
        "/v1/conversions/decisions",
        Some(json!({"orders": [], "verdict": "approve"})),
        400,
        "no_orders",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/conversions/decisions",
        Some(json!({"orders": ["acme:Q-9"], "verdict": "approve"})),
        409,
        "not_pending",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/conversions/decisions",
        Some(json!({"orders": ["acme:Q-1"], "verdict": "maybe"})),
        400,
        "bad_json",
    )
    .await;
    let accepted = admin(
        api,
        "POST",
        "/v1/conversions/decisions",
        Some(json!({"orders": ["acme:Q-1"], "verdict": "approve", "note": "paid"})),
        202,
    )
    .await;
    assert_eq!(accepted["events"].as_array().unwrap().len(), 1);
    admin(api, "POST", "/v1/conversions/decisions", Some(json!({"orders": ["acme:Q-2"], "verdict": "reject"})), 202)
        .await;
    let lines = eventually(api, "/v1/lines?offer=pend", "the decisions", |page| {
        items(page).iter().all(|line| line["status"] != "pending") && items(page).len() == 4
    })
    .await;
    let decided = lines_of(&lines);
    assert_eq!(
        decided,
        [
            ("jane".into(), 2, "0.00".into(), "rejected".into()),
            ("jane".into(), 2, "10.00".into(), "approved".into()),
            ("tom".into(), 1, "0.00".into(), "rejected".into()),
            ("tom".into(), 1, "20.00".into(), "approved".into()),
        ]
    );
    let (status, body) = call(
        api,
        "POST",
        "/v1/conversions/decisions",
        None,
        Some(json!({"orders": ["acme:Q-1"], "verdict": "reject"})),
    )
    .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "unauthenticated"));

    // Refunds: a partial one shrinks the commission, a full one reverses it.
    postback(edge, "code=JANE20&order_id=F-1&amount=200.00").await;
    postback(edge, "code=JANE20&order_id=F-2&amount=80.00").await;
    assert_eq!(conversion(api, "F-1").await["commission"], "30.00");
    assert_eq!(conversion(api, "F-2").await["commission"], "12.00");
    refused(
        api,
        "POST",
        "/v1/orders/refunds",
        Some(json!({"advertiser": "acme", "order_id": "F-1", "amount": "0"})),
        400,
        "bad_amount",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/orders/refunds",
        Some(json!({"advertiser": "nobody", "order_id": "F-1"})),
        404,
        "unknown_advertiser",
    )
    .await;
    refused(
        api,
        "POST",
        "/v1/orders/refunds",
        Some(json!({"advertiser": "acme", "order_id": "bad id"})),
        400,
        "bad_order_id",
    )
    .await;
    admin(
        api,
        "POST",
        "/v1/orders/refunds",
        Some(json!({"advertiser": "acme", "order_id": "F-1", "amount": "50.00"})),
        202,
    )
    .await;
    admin(api, "POST", "/v1/orders/refunds", Some(json!({"advertiser": "acme", "order_id": "F-2"})), 202).await;
    let refunded = eventually(api, "/v1/lines?offer=summer&member=jane", "the refunds", |page| {
        let by_order = |order: &str| items(page).iter().find(|line| line["order_key"] == order).cloned();
        by_order("acme:F-1").is_some_and(|line| line["amount"] == "22.50")
            && by_order("acme:F-2").is_some_and(|line| line["status"] == "reversed")
    })
    .await;
    let f2 = items(&refunded).iter().find(|line| line["order_key"] == "acme:F-2").unwrap();
    assert_eq!(f2["amount"], "0.00");
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_listed_their_terms_changed_and_cancelled() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    admin(api, "POST", "/v1/codes", Some(json!({"offer": "hosting", "member": "jane", "code": "JANEHOST"})), 201).await;
    postback(edge, "code=JANEHOST&order_id=S-1&amount=50.00&recurring_amount=29.95").await;
    let listed =
        eventually(api, "/v1/subscriptions?member=jane", "the subscription", |page| items(page).len() == 1).await;
    let account = &items(&listed)[0];
    assert_eq!(
        (account["order_key"].as_str(), account["rate"].as_str(), account["every"].clone(), account["status"].as_str()),
        (Some("acme:S-1"), Some("0.10"), json!({"months": 1}), Some("active"))
    );
    refused(
        api,
        "PATCH",
        "/v1/subscriptions/acme:S-1",
        Some(json!({"rate": "1.5", "every": {"months": 1}})),
        400,
        "bad_rate",
    )
    .await;
    refused(
        api,
        "PATCH",
        "/v1/subscriptions/acme:S-1",
        Some(json!({"rate": "0.1", "every": {"days": 0}})),
        400,
        "bad_interval",
    )
    .await;
    refused(
        api,
        "PATCH",
        "/v1/subscriptions/acme:S-9",
        Some(json!({"rate": "0.1", "every": {"days": 7}})),
        404,
        "unknown_subscription",
    )
    .await;
    admin(api, "PATCH", "/v1/subscriptions/acme:S-1", Some(json!({"rate": "0.15", "every": {"days": 14}})), 202).await;
    eventually(api, "/v1/subscriptions?member=jane", "the new terms", |page| {
        items(page)[0]["rate"] == "0.15" && items(page)[0]["every"] == json!({"days": 14})
    })
    .await;
    admin(api, "POST", "/v1/subscriptions/acme:S-1/cancel", None, 202).await;
    eventually(api, "/v1/subscriptions?status=cancelled", "the cancel", |page| items(page).len() == 1).await;
    refused(api, "POST", "/v1/subscriptions/acme:S-1/cancel", None, 409, "subscription_ended").await;
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bills_are_generated_for_a_period_carried_over_under_the_minimum_and_marked_paid() {
    let app = start().await;
    let api = app.api();
    // The sample program's recruiting: jane earns 5.00 for tom and 2.50 (Tier2) for ann; tom 5.00 for ann.
    eventually(api, "/v1/lines?member=jane", "jane's recruiting lines", |page| items(page).len() == 2).await;
    eventually(api, "/v1/lines?member=tom", "tom's recruiting line", |page| items(page).len() == 1).await;
    admin(api, "PATCH", "/v1/members/tom", Some(json!({"minimum_payout": "10.00"})), 200).await;
    refused(
        api,
        "POST",
        "/v1/bills/runs",
        Some(json!({"period_end": "2999-01-01T00:00:00Z"})),
        400,
        "period_in_future",
    )
    .await;
    let (_, future) =
        call(api, "POST", "/v1/bills/runs", Some(ADMIN), Some(json!({"period_end": "2999-01-01T00:00:00Z"}))).await;
    assert_eq!(future["message"], "period_end must be at or before now");
    refused(api, "POST", "/v1/bills/runs", Some(json!({})), 400, "bad_json").await;
    let period_end = model::Timestamp::now().to_string();
    admin(api, "POST", "/v1/bills/runs", Some(json!({"period_end": period_end})), 202).await;
    let bills = eventually(api, "/v1/bills", "two bills", |page| items(page).len() == 2).await;
    let mut summary: Vec<(&str, &str, &str, u64)> = items(&bills)
        .iter()
        .map(|bill| {
            (
                bill["member"].as_str().unwrap(),
                bill["total"].as_str().unwrap(),
                bill["status"].as_str().unwrap(),
                bill["lines"].as_u64().unwrap(),
            )
        })
        .collect();
    summary.sort();
    assert_eq!(summary, [("jane", "7.50", "unpaid", 2), ("tom", "5.00", "carried_over", 1)]);
    let jane_bill =
        items(&bills).iter().find(|bill| bill["member"] == "jane").unwrap()["id"].as_str().unwrap().to_string();
    let tom_bill =
        items(&bills).iter().find(|bill| bill["member"] == "tom").unwrap()["id"].as_str().unwrap().to_string();
    refused(api, "POST", &format!("/v1/bills/{tom_bill}/paid"), None, 409, "bill_not_unpaid").await;
    refused(api, "POST", "/v1/bills/0000/paid", None, 404, "unknown_bill").await;
    admin(api, "POST", &format!("/v1/bills/{jane_bill}/paid"), None, 202).await;
    eventually(api, "/v1/bills?status=paid", "the payment", |page| items(page).len() == 1).await;
    let lines = eventually(api, "/v1/lines?member=jane&status=paid", "paid lines", |page| items(page).len() == 2).await;
    assert!(items(&lines).iter().all(|line| line["bill"] == jane_bill.as_str()));
    refused(api, "POST", &format!("/v1/bills/{jane_bill}/paid"), None, 409, "bill_not_unpaid").await;
    app.running.stop().await.unwrap();
}

/// "Why was I not paid?": every conversion that earns nothing is listed with its order, the
/// member the evidence named, the evidence and the reason; lines and the conversion report
/// are found by order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rejected_conversion_says_which_order_which_member_and_why() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    // No cookie at all.
    common::get(edge, "/px?offer=summer&order_id=R-1&amount=10.00").await;
    // A visitor whose only click is on another offer.
    let hosting = common::get(edge, "/c?offer=hosting&member=jane").await;
    common::get_with_cookie(edge, "/px?offer=summer&order_id=R-2&amount=20.00", &hosting.visitor()).await;
    // Tom is stopped after his click: the cookie names him, and he may not earn.
    let tom = common::get(edge, "/c?offer=summer&member=tom").await;
    admin(api, "POST", "/v1/members/tom/status", Some(json!({"status": "stopped"})), 200).await;
    common::get_with_cookie(edge, "/px?offer=summer&order_id=R-3&amount=30.00", &tom.visitor()).await;
    // Jane's code, twice for the same order: the second is a duplicate.
    postback(edge, "code=JANE20&order_id=R-4&amount=40.00").await;
    postback(edge, "code=JANE20&order_id=R-4&amount=40.00").await;

    let page =
        eventually(api, "/v1/conversions/rejected?offer=summer", "four rejections", |page| items(page).len() == 4)
            .await;
    let rows: Vec<(String, String, Value, String, String)> = items(&page)
        .iter()
        .map(|row| {
            (
                row["order_id"].as_str().unwrap().to_string(),
                row["reason"].as_str().unwrap().to_string(),
                row["member"].clone(),
                row["evidence"].as_str().unwrap().to_string(),
                row["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |order: &str, reason: &str, member: Value, evidence: &str, amount: &str| {
        (order.to_string(), reason.to_string(), member, evidence.to_string(), amount.to_string())
    };
    assert_eq!(
        rows,
        [
            row("R-1", "no_click_in_window", Value::Null, "none", "10.00"),
            row("R-2", "no_click_in_window", Value::Null, "cookie", "20.00"),
            row("R-3", "member_not_approved", json!("tom"), "cookie", "30.00"),
            row("R-4", "duplicate_order", json!("jane"), "code", "40.00"),
        ]
    );
    let r3 = &items(&page)[2];
    assert_eq!((r3["order_key"].as_str(), r3["source"].as_str()), (Some("acme:R-3"), Some("pixel")));
    assert_eq!(items(&page)[3]["source"], "postback");

    // Filtered by member, reason and order.
    let toms = admin(api, "GET", "/v1/conversions/rejected?member=tom", None, 200).await;
    assert_eq!(items(&toms).iter().map(|row| row["order_id"].clone()).collect::<Vec<_>>(), [json!("R-3")]);
    let duplicates = admin(api, "GET", "/v1/conversions/rejected?reason=duplicate_order", None, 200).await;
    assert_eq!(items(&duplicates).len(), 1);
    let by_key = admin(api, "GET", "/v1/conversions/rejected?order_key=acme:R-2", None, 200).await;
    assert_eq!(items(&by_key)[0]["order_id"], "R-2");
    // The counts stay as the summary.
    assert_eq!(
        rejected(api, "no_click_in_window", 2).await,
        [
            ("duplicate_order".to_string(), "summer".to_string(), 1),
            ("member_not_approved".to_string(), "summer".to_string(), 1),
            ("no_click_in_window".to_string(), "summer".to_string(), 2),
        ]
    );

    // Jane's winning conversion of R-4: its lines and its report row, found by order.
    let lines = eventually(api, "/v1/lines?order_id=R-4", "R-4's lines", |page| !items(page).is_empty()).await;
    let paid: Vec<(Value, Value)> =
        items(&lines).iter().map(|line| (line["member"].clone(), line["amount"].clone())).collect();
    assert_eq!(paid, [(json!("jane"), json!("6.00"))]);
    let report = admin(api, "GET", "/v1/reports/conversions?order_key=acme:R-4", None, 200).await;
    assert_eq!(items(&report).len(), 1);
    assert_eq!(items(&report)[0]["commission"], "6.00");
    assert!(items(&admin(api, "GET", "/v1/lines?order_id=R-5", None, 200).await).is_empty());

    refused(api, "GET", "/v1/conversions/rejected?order_key=R-4", None, 400, "bad_order_key").await;
    refused(api, "GET", "/v1/conversions/rejected?reason=late", None, 400, "bad_reason").await;
    refused(api, "GET", "/v1/lines?order_id=a%20b", None, 400, "bad_order_id").await;
    refused(api, "GET", "/v1/lines?by=member", None, 400, "bad_query").await;
}
