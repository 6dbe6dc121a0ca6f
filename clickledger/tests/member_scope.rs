//! A member's own key (`scope: member`) reads that member's reports, lines, bills and
//! subscriptions and nothing else: every route of the API, in a table, refuses it another
//! member's data and everything that is not a read of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use api_support::*;
use serde_json::{Value, json};

/// The reads a member key may make, each then filtered to its member.
const OWN_READS: [&str; 11] = [
    "/v1/reports/conversions",
    "/v1/reports/summary",
    "/v1/reports/rejections",
    "/v1/reports/timeseries",
    "/v1/conversions/rejected",
    "/v1/conversions/pending",
    "/v1/lines",
    "/v1/subscriptions",
    "/v1/bills",
    "/v1/links",
    "/v1/codes",
];

/// The member a row is about, where it names one.
fn member_of(path: &str, row: &Value) -> Option<String> {
    if path == "/v1/reports/summary" {
        return None;
    }
    row.get("member").and_then(Value::as_str).map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_key_reads_its_own_members_data_and_is_refused_everything_else() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    // A sale by tom (jane earns its Tier 2) and a sale by jane, and a bill run.
    let click = common::get(edge, "/c?offer=summer&member=tom").await;
    postback(edge, &format!("click_id={}&order_id=T-1&amount=100.00", click.click_id())).await;
    postback(edge, "code=JANE20&order_id=J-1&amount=50.00").await;
    eventually(api, "/v1/lines?offer=summer", "three lines", |page| items(page).len() == 3).await;
    admin(api, "POST", "/v1/bills/runs", Some(json!({"period_end": model::Timestamp::now().to_string()})), 202).await;
    eventually(api, "/v1/bills", "bills for tom and jane", |page| items(page).len() >= 2).await;

    let made =
        admin(api, "POST", "/v1/keys", Some(json!({"name": "tom-portal", "scope": "member", "member": "tom"})), 201)
            .await;
    assert_eq!((made["scope"].as_str(), made["member"].as_str()), (Some("member"), Some("tom")));
    let tom = made["key"].as_str().unwrap().to_string();
    refused(api, "POST", "/v1/keys", Some(json!({"name": "x", "scope": "member"})), 422, "invalid").await;
    refused(
        api,
        "POST",
        "/v1/keys",
        Some(json!({"name": "y", "scope": "member", "member": "nobody"})),
        422,
        "unknown_member",
    )
    .await;

    let document: Value = serde_json::from_str(&api::openapi_json()).unwrap();
    let mut table = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() || template == "/healthz" {
                continue;
            }
            let path = template
                .replace("{offer}", "summer")
                .replace("{member}", "tom")
                .replace("{option}", "standard")
                .replace("{code}", "JANE20")
                .replace("{name}", "tom-portal")
                .replace("{id}", "acme")
                .replace("{bill}", "b")
                .replace("{order_key}", "acme:T-1")
                .replace("{webhook}", "w")
                .replace("{delivery}", "d");
            let method = method.to_uppercase();
            let body = (method != "GET" && method != "DELETE").then(|| json!({}));
            let (status, answer) = call(api, &method, &path, Some(&tom), body).await;
            if method == "GET" && OWN_READS.contains(&template.as_str()) {
                assert_eq!(status, 200, "{method} {path}: {answer}");
                let rows = items(&answer);
                for row in rows {
                    if let Some(member) = member_of(template, row) {
                        assert_eq!(member, "tom", "{method} {path} shows {row}");
                    }
                }
                // Another member's data, asked for by name: refused.
                let (status, answer) = call(api, "GET", &format!("{path}?member=jane"), Some(&tom), None).await;
                assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "{path}?member=jane");
                table.push((method, path, rows.len()));
            } else {
                assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "{method} {path}: {answer}");
                table.push((method, path, 0));
            }
        }
    }
    assert!(table.len() >= 60, "only {} operations checked", table.len());

    // What tom sees is exactly his: his lines (10% of T-1, and recruiting ann), his
    // conversion, his bill, his summary.
    let lines = call(api, "GET", "/v1/lines", Some(&tom), None).await.1;
    let line = |amount: &str| ("tom".to_string(), 1, amount.to_string(), "billed".to_string());
    assert_eq!(lines_of(&lines), [line("10.00"), line("5.00")]);
    let report = call(api, "GET", "/v1/reports/conversions", Some(&tom), None).await.1;
    let orders: Vec<&str> = items(&report).iter().map(|row| row["order_id"].as_str().unwrap()).collect();
    assert_eq!(orders, ["T-1"]);
    let bills = call(api, "GET", "/v1/bills", Some(&tom), None).await.1;
    assert_eq!(
        items(&bills)
            .iter()
            .map(|bill| (bill["member"].as_str().unwrap(), bill["total"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        [("tom", "15.00")]
    );
    let summary = call(api, "GET", "/v1/reports/summary?by=member", Some(&tom), None).await.1;
    assert_eq!(items(&summary).iter().map(|row| row["key"].as_str().unwrap()).collect::<Vec<_>>(), ["tom"]);
    // The same rows as CSV, and jane's through an analyst or admin key.
    let csv = raw(api, "GET", "/v1/lines?format=csv", Some(&tom), None, "").await;
    assert_eq!(csv.body.lines().count(), 3, "a header and two lines: {}", csv.body);
    let all = admin(api, "GET", "/v1/lines?offer=summer", None, 200).await;
    assert_eq!(items(&all).len(), 3);
    // A revoked member key reads nothing.
    admin(api, "DELETE", "/v1/keys/tom-portal", None, 200).await;
    assert_eq!(call(api, "GET", "/v1/lines", Some(&tom), None).await.0, 401);
    app.running.stop().await.unwrap();
}
