//! The time series report (hours and days of the program's time zone) and CSV downloads: every
//! report and list downloaded as CSV parses and equals its JSON row for row, across pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_support;
mod common;

use std::net::SocketAddr;

use api_support::*;
use serde_json::{Value, json};

/// Traffic for the reports: clicks on jane's link, two sales by click id, a pixel nobody
/// clicked for (rejected), a webhook delivery.
async fn traffic(api: SocketAddr, edge: SocketAddr) {
    let receiver = testkit::receiver::Receiver::start(|_| testkit::receiver::Reply::Status(200)).await;
    admin(
        api,
        "POST",
        "/v1/webhooks",
        Some(json!({"id": "books", "url": receiver.url("/h"), "events": ["commission.created"]})),
        201,
    )
    .await;
    for (order, amount) in [("E-1", "100.00"), ("E-2", "20.50")] {
        let click = common::get(edge, "/c/jane-summer?sub1=a,b&sub2=x%22y").await;
        assert_eq!(click.status, 302);
        postback(edge, &format!("click_id={}&order_id={order}&amount={amount}", click.click_id())).await;
    }
    assert_eq!(common::get(edge, "/c/jane-summer").await.status, 302);
    assert_eq!(common::get(edge, "/px?offer=summer&order_id=E-3&amount=5.00").await.status, 200);
    eventually(api, "/v1/lines?offer=summer", "two lines", |page| items(page).len() == 2).await;
    eventually(api, "/v1/conversions/rejected", "the rejected pixel", |page| items(page).len() == 1).await;
    eventually(api, "/v1/deliveries?status=delivered", "two deliveries", |rows| rows.as_array().unwrap().len() == 2)
        .await;
}

/// A JSON value as its CSV cell.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The rows of a JSON answer: a page's items, a list, or one object.
fn json_rows(body: &Value) -> Vec<serde_json::Map<String, Value>> {
    let items = body.get("items").unwrap_or(body);
    match items {
        Value::Array(rows) => rows.iter().map(|row| row.as_object().unwrap().clone()).collect(),
        Value::Object(row) => vec![row.clone()],
        _ => panic!("no rows in {body}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_and_list_downloads_as_csv_equal_to_its_json_row_for_row() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    traffic(api, edge).await;
    let document: Value = serde_json::from_str(&api::openapi_json()).unwrap();
    let mut checked = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path == "/healthz" || path == "/v1/program" {
            continue;
        }
        let path = path
            .replace("{offer}", "summer")
            .replace("{member}", "jane")
            .replace("{webhook}", "books")
            .replace("{delivery}", "none");
        if path.contains('{') || path.ends_with("/none") {
            continue;
        }
        let paged =
            item["get"]["parameters"].as_array().into_iter().flatten().any(|parameter| parameter["name"] == "cursor");
        let json_path = if paged { format!("{path}?limit=1000") } else { path.clone() };
        let (status, body) = call(api, "GET", &json_path, Some(ADMIN), None).await;
        assert_eq!(status, 200, "GET {json_path}: {body}");
        let expected = json_rows(&body);
        for (how, response) in [
            (
                "?format=csv",
                raw(api, "GET", &format!("{path}?format=csv"), Some(ADMIN), None, "application/json").await,
            ),
            ("Accept: text/csv", {
                let authorization = format!("Bearer {ADMIN}");
                common::request(api, "GET", &path, &[("Accept", "text/csv"), ("Authorization", &authorization)], "")
                    .await
            }),
        ] {
            assert_eq!(response.status, 200, "GET {path} {how}: {}", response.body);
            assert_eq!(response.header("content-type"), Some("text/csv; charset=utf-8"), "GET {path} {how}");
            let mut reader = csv::ReaderBuilder::new().from_reader(response.body.as_bytes());
            let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
            let rows: Vec<Vec<String>> = reader
                .records()
                .map(|record| {
                    record
                        .unwrap_or_else(|error| panic!("GET {path} {how}: {error}\n{}", response.body))
                        .iter()
                        .map(str::to_string)
                        .collect()
                })
                .collect();
            assert_eq!(rows.len(), expected.len(), "GET {path} {how}: rows");
            if let Some(first) = expected.first() {
                assert_eq!(header, first.keys().cloned().collect::<Vec<_>>(), "GET {path} {how}: columns");
            }
            for (row, json) in rows.iter().zip(&expected) {
                let wanted: Vec<String> = header.iter().map(|column| cell(&json[column])).collect();
                assert_eq!(row, &wanted, "GET {path} {how}");
            }
        }
        checked.push(path);
    }
    for needed in ["/v1/reports/conversions", "/v1/reports/timeseries", "/v1/lines", "/v1/deliveries", "/v1/members"] {
        assert!(checked.iter().any(|path| path == needed), "{needed} not checked: {checked:?}");
    }
    assert!(checked.len() >= 15, "only {} lists checked: {checked:?}", checked.len());

    // Across pages: a CSV of every line, asked a page of one row at a time, has both; an
    // error is answered as JSON with its code; an unknown format is refused.
    let paged = raw(api, "GET", "/v1/lines?format=csv&limit=1", Some(ADMIN), None, "application/json").await;
    assert_eq!(
        csv::Reader::from_reader(paged.body.as_bytes()).records().count(),
        items(&admin(api, "GET", "/v1/lines?limit=1000", None, 200).await).len()
    );
    refused(api, "GET", "/v1/lines?format=csv&status=x&nope=1", None, 400, "bad_query").await;
    refused(api, "GET", "/v1/lines?format=xml", None, 400, "bad_format").await;
    app.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_series_sums_hours_and_days_of_the_programs_time_zone() {
    let app = start().await;
    let (api, edge) = (app.api(), app.edge());
    // Kolkata is 5:30 ahead of UTC: its hours start at half past the UTC hour.
    let mut program = String::from_utf8(raw(api, "GET", "/v1/program", Some(ADMIN), None, "").await.bytes).unwrap();
    program = program.replace("time_zone = \"UTC\"", "time_zone = \"Asia/Kolkata\"");
    let loaded = raw(api, "POST", "/v1/program", Some(ADMIN), Some(&program), "application/toml").await;
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    let before = model::Timestamp::now();
    traffic(api, edge).await;
    let after = model::Timestamp::now();
    let lines = admin(api, "GET", "/v1/lines?offer=summer", None, 200).await;
    let commission: rust_decimal::Decimal = items(&lines)
        .iter()
        .map(|line| line["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum();

    for interval in ["hour", "day"] {
        let series =
            admin(api, "GET", &format!("/v1/reports/timeseries?interval={interval}&offer=summer"), None, 200).await;
        let rows = items(&series);
        // Three clicks, two sales of 100.00 and 20.50, their commission: in one bucket, or two
        // when the traffic crossed the end of one.
        assert!(!rows.is_empty() && rows.len() <= 2, "{series}");
        let sum = |field: &str| rows.iter().map(|row| row[field].as_u64().unwrap()).sum::<u64>();
        let money = |field: &str| {
            rows.iter()
                .map(|row| row[field].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
                .sum::<rust_decimal::Decimal>()
        };
        assert_eq!((sum("clicks"), sum("unique_clicks"), sum("conversions")), (3, 1, 2), "{series}");
        assert_eq!(money("revenue"), rust_decimal_macros::dec!(120.50));
        assert_eq!(money("commission"), commission);
        for row in rows {
            let start = model::Timestamp::parse(row["start"].as_str().unwrap()).unwrap();
            let text = start.to_string();
            // Kolkata's hours and days start at :30 past a UTC hour; its days at 18:30 UTC.
            assert!(text.contains(":30:00"), "{interval} starts at {text}");
            if interval == "day" {
                assert!(text.contains("T18:30:00"), "a Kolkata day starts at 18:30 UTC: {text}");
            }
            let length = if interval == "hour" { 3_600_000 } else { 86_400_000 };
            assert!(start.millis() <= after.millis() && before.millis() < start.millis() + length, "{text}");
        }
    }
    // The breakdown by sub1: the two clicks with `a,b` and the sales made through them, with
    // their commission; the click without subs on its own.
    let by_sub = admin(api, "GET", "/v1/reports/summary?by=sub1&offer=summer", None, 200).await;
    let rows: Vec<(&str, u64, u64, &str, &str)> = items(&by_sub)
        .iter()
        .map(|row| {
            let text = |field: &str| row[field].as_str().unwrap();
            (
                text("key"),
                row["clicks"].as_u64().unwrap(),
                row["conversions"].as_u64().unwrap(),
                text("revenue"),
                text("commission"),
            )
        })
        .collect();
    let commission = commission.to_string();
    assert_eq!(rows, [("", 1, 0, "0.00", "0.00"), ("a,b", 2, 2, "120.50", commission.as_str())]);
    refused(api, "GET", "/v1/reports/summary?by=sub6", None, 400, "bad_by").await;
    refused(api, "GET", "/v1/reports/timeseries?interval=week", None, 400, "bad_interval").await;
    let empty = admin(api, "GET", "/v1/reports/timeseries?offer=hosting", None, 200).await;
    assert!(items(&empty).is_empty());
    app.running.stop().await.unwrap();
}
