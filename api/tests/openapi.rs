//! The OpenAPI document: the checked-in docs/openapi.json is the one the code generates, it
//! has every route the router serves, and the schemas derived for the model's types describe
//! exactly the JSON those types produce.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use model::program::ProgramFile;
use serde_json::Value;

const CHECKED_IN: &str = include_str!("../../docs/openapi.json");

/// Set `CLICKLEDGER_WRITE_OPENAPI=1` to rewrite docs/openapi.json from the code; the test
/// then checks the file it wrote.
#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = clickledger_api::openapi_json();
    if std::env::var("CLICKLEDGER_WRITE_OPENAPI").is_ok_and(|value| value == "1") {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"), &generated).unwrap();
        return;
    }
    assert!(
        CHECKED_IN == generated,
        "docs/openapi.json is stale: run CLICKLEDGER_WRITE_OPENAPI=1 cargo test -p clickledger-api --test openapi"
    );
}

fn document() -> Value {
    serde_json::from_str(&clickledger_api::openapi_json()).unwrap()
}

/// (method, path) of every operation in the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn the_document_is_openapi_3_with_every_endpoint_of_the_issue() {
    let document = document();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let have = operations(&document);
    let want: BTreeSet<(String, String)> = [
        ("GET", "/healthz"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("DELETE", "/v1/keys/{name}"),
        ("GET", "/v1/advertisers"),
        ("POST", "/v1/advertisers"),
        ("POST", "/v1/advertisers/{id}/rotate-secret"),
        ("GET", "/v1/offers"),
        ("POST", "/v1/offers"),
        ("GET", "/v1/offers/{offer}"),
        ("PATCH", "/v1/offers/{offer}"),
        ("POST", "/v1/offers/{offer}/pause"),
        ("POST", "/v1/offers/{offer}/resume"),
        ("POST", "/v1/offers/{offer}/expire"),
        ("POST", "/v1/offers/{offer}/payout-options"),
        ("PUT", "/v1/offers/{offer}/payout-options/{option}"),
        ("DELETE", "/v1/offers/{offer}/payout-options/{option}"),
        ("GET", "/v1/offers/{offer}/enrolments"),
        ("POST", "/v1/offers/{offer}/enrolments"),
        ("PATCH", "/v1/offers/{offer}/enrolments"),
        ("GET", "/v1/members"),
        ("POST", "/v1/members"),
        ("GET", "/v1/members/{member}"),
        ("PATCH", "/v1/members/{member}"),
        ("DELETE", "/v1/members/{member}"),
        ("POST", "/v1/members/{member}/status"),
        ("GET", "/v1/links"),
        ("POST", "/v1/links"),
        ("POST", "/v1/links/activation"),
        ("GET", "/v1/codes"),
        ("POST", "/v1/codes"),
        ("POST", "/v1/codes/activation"),
        ("PATCH", "/v1/codes/{code}"),
        ("POST", "/v1/codes/{code}/refresh"),
        ("GET", "/v1/conversions/pending"),
        ("GET", "/v1/conversions/rejected"),
        ("POST", "/v1/conversions/decisions"),
        ("POST", "/v1/orders/refunds"),
        ("POST", "/v1/orders/reversals"),
        ("POST", "/v1/adjustments"),
        ("GET", "/v1/subscriptions"),
        ("PATCH", "/v1/subscriptions/{order_key}"),
        ("POST", "/v1/subscriptions/{order_key}/cancel"),
        ("POST", "/v1/bills/runs"),
        ("GET", "/v1/bills"),
        ("POST", "/v1/bills/{bill}/paid"),
        ("GET", "/v1/program"),
        ("POST", "/v1/program"),
        ("GET", "/v1/reports/conversions"),
        ("GET", "/v1/reports/summary"),
        ("GET", "/v1/reports/rejections"),
        ("GET", "/v1/reports/history"),
        ("GET", "/v1/lines"),
        ("GET", "/v1/reports/timeseries"),
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks/{webhook}"),
        ("PATCH", "/v1/webhooks/{webhook}"),
        ("POST", "/v1/webhooks/{webhook}/rotate-secret"),
        ("GET", "/v1/deliveries"),
        ("GET", "/v1/deliveries/{delivery}"),
        ("POST", "/v1/deliveries/{delivery}/resend"),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_string(), path.to_string()))
    .collect();
    assert_eq!(have, want);
    // Every operation but the health check needs a key and documents 401.
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if path == "/healthz" {
                continue;
            }
            assert_eq!(operation["security"], serde_json::json!([{"api_key": []}]), "{method} {path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path} documents no 401");
        }
    }
}

/// The property names a schema allows, following `$ref`s into components.
fn properties(document: &Value, schema: &str) -> BTreeSet<String> {
    document["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {schema}"))
        .keys()
        .cloned()
        .collect()
}

fn keys_of(value: &Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

/// Every field of every entity of the sample program, set or not, is in its schema, and the
/// schema has nothing the type does not.
#[test]
fn the_model_schemas_describe_the_model_types() {
    let document = document();
    let sample = ProgramFile::from_toml(include_str!("../../deploy/sample-program.toml")).unwrap();
    let mut offer = sample.offers[0].clone();
    offer.expires_at = Some(model::Timestamp::from_millis(0));
    let offer_json = serde_json::to_value(&offer).unwrap();
    assert_eq!(keys_of(&offer_json), properties(&document, "Offer"));
    let mut option = offer.payout_options[0].clone();
    option.hold = Some(model::Span::days(1));
    option.recurring = sample.offers[1].payout_options[0].recurring.clone();
    assert_eq!(keys_of(&serde_json::to_value(&option).unwrap()), properties(&document, "PayoutOption"));
    let mut member = sample.members[1].clone();
    member.cookie_window = Some(model::Span::days(7));
    member.handle = Some("@tom".into());
    assert_eq!(keys_of(&serde_json::to_value(&member).unwrap()), properties(&document, "Member"));
    let mut enrolment = sample.enrolments[0].clone();
    enrolment.payout_override = Some(option.rule.clone());
    enrolment.recurring_override =
        Some(model::program::RecurringOverride { rate: rust_decimal::Decimal::ONE, every: model::Interval::Months(1) });
    assert_eq!(keys_of(&serde_json::to_value(&enrolment).unwrap()), properties(&document, "Enrolment"));
    assert_eq!(keys_of(&serde_json::to_value(&sample.links[0]).unwrap()), properties(&document, "TrackingLink"));
    let mut code = sample.codes[0].clone();
    code.starts_at = Some(model::Timestamp::from_millis(0));
    code.ends_at = Some(model::Timestamp::from_millis(1000));
    assert_eq!(keys_of(&serde_json::to_value(&code).unwrap()), properties(&document, "PromoCodeGrant"));
    // A CPS rule is `{"type": "cps", "rate": [...]}`.
    let rule = serde_json::to_value(&offer.payout_options[0].rule).unwrap();
    assert_eq!(rule["type"], "cps");
    assert!(clickledger_api::openapi_json().contains("\"cpa_cps\""), "every rule type is documented");
}

/// The settler's outputs and the report rows, every optional field set: their schemas have
/// exactly the keys their JSON has.
#[test]
fn the_output_and_report_schemas_describe_their_types() {
    use model::events::{
        Bill, BillStatus, CommissionLine, LineKind, LineStatus, SubscriptionAccount, SubscriptionStatus,
    };
    use model::reports::{ConversionReportRow, RejectionRow, SummaryRow};
    use model::testkit::{event_id, member_id, offer_id, ts};
    use model::{Currency, DerivedId, Interval, OrderKey};
    use rust_decimal::Decimal;

    let document = document();
    let at = ts("2026-11-21T10:00:00Z");
    let order_key = OrderKey::from_string("acme:A-1001".into());
    let line = CommissionLine {
        id: DerivedId::derive(&["line"]),
        member: member_id("jane"),
        tier: 1,
        earned_by: member_id("jane"),
        offer: Some(offer_id("summer")),
        order_key: Some(order_key.clone()),
        source: event_id(1),
        kind: LineKind::Conversion,
        rule: "cps".into(),
        keyword: "sale".into(),
        amount: Decimal::ONE,
        currency: Currency::USD,
        status: LineStatus::Billed,
        description: "sale".into(),
        earned_at: at,
        revision: 2,
        bill: Some(DerivedId::derive(&["bill"])),
    };
    assert_eq!(keys_of(&serde_json::to_value(&line).unwrap()), properties(&document, "CommissionLine"));
    let bill = Bill {
        id: DerivedId::derive(&["bill"]),
        member: member_id("jane"),
        currency: Currency::USD,
        period_end: at,
        total: Decimal::ONE,
        lines: 1,
        status: BillStatus::Paid,
        issued_at: at,
        paid_at: Some(at),
        revision: 2,
    };
    assert_eq!(keys_of(&serde_json::to_value(&bill).unwrap()), properties(&document, "Bill"));
    let account = SubscriptionAccount {
        order_key,
        conversion: event_id(2),
        member: member_id("jane"),
        offer: offer_id("summer"),
        name: "subscriptionsales".into(),
        recurring_amount: Decimal::TEN,
        currency: Currency::USD,
        rate: Decimal::ONE,
        every: Interval::Months(1),
        started_at: at,
        anchor_at: at,
        credits_since_anchor: 1,
        credits: 1,
        cancelled_at: Some(at),
        status: SubscriptionStatus::Cancelled,
        revision: 3,
    };
    assert_eq!(keys_of(&serde_json::to_value(&account).unwrap()), properties(&document, "SubscriptionAccount"));
    let conversion = ConversionReportRow {
        conversion: event_id(2),
        order_date: at,
        offer: offer_id("summer"),
        member: member_id("jane"),
        order_id: "A-1001".into(),
        sale_amount: Decimal::TEN,
        currency: "USD".into(),
        commission: Decimal::ONE,
        status: "approved".into(),
        via: "cookie".into(),
    };
    assert_eq!(keys_of(&serde_json::to_value(&conversion).unwrap()), properties(&document, "ConversionReportRow"));
    let summary = SummaryRow {
        key: "summer".into(),
        clicks: 10,
        unique_clicks: 8,
        conversions: 1,
        revenue: Decimal::TEN,
        commission: Decimal::ONE,
        epc: Decimal::ONE,
        conversion_rate: Decimal::ONE,
    };
    assert_eq!(keys_of(&serde_json::to_value(&summary).unwrap()), properties(&document, "SummaryRow"));
    let rejection = RejectionRow { reason: "bot".into(), offer: "summer".into(), conversions: 1 };
    assert_eq!(keys_of(&serde_json::to_value(&rejection).unwrap()), properties(&document, "RejectionRow"));
}

/// The values an enum schema lists.
fn enum_values(document: &Value, schema: &str) -> BTreeSet<String> {
    document["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} is not a string enum"))
        .iter()
        .map(|value| value.as_str().unwrap().to_string())
        .collect()
}

fn written<T: serde::Serialize>(values: &[T]) -> BTreeSet<String> {
    values.iter().map(|value| serde_json::to_value(value).unwrap().as_str().unwrap().to_string()).collect()
}

/// A client reading the document learns the formats, tags and allowed values the API really
/// uses: timestamps are date-time strings, a payout rule is tagged by `type`, and every status
/// lists exactly the values the model writes.
#[test]
fn timestamps_rules_and_statuses_are_described_precisely() {
    use model::events::{BillStatus, LineKind, LineStatus, SubscriptionStatus};
    use model::program::MemberStatus;

    let document = document();
    let schemas = &document["components"]["schemas"];
    assert_eq!(schemas["Timestamp"]["type"], "string");
    assert_eq!(schemas["Timestamp"]["format"], "date-time");
    assert_eq!(schemas["Member"]["properties"]["joined_at"]["$ref"], "#/components/schemas/Timestamp");
    assert_eq!(schemas["Span"]["type"], "string");

    let tags: BTreeSet<String> = schemas["PayoutRule"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| {
            assert!(variant["required"].as_array().unwrap().contains(&Value::from("type")), "{variant}");
            variant["properties"]["type"]["enum"][0].as_str().unwrap().to_string()
        })
        .collect();
    let kinds = ["cpc", "cpa", "cps", "cpa_cps", "order_bands", "products", "accumulated"];
    assert_eq!(tags, kinds.into_iter().map(String::from).collect());

    assert_eq!(
        enum_values(&document, "MemberStatus"),
        written(&[
            MemberStatus::Pending,
            MemberStatus::Approved,
            MemberStatus::Denied,
            MemberStatus::Stopped,
            MemberStatus::Deleted,
            MemberStatus::Disabled,
        ])
    );
    assert_eq!(schemas["Member"]["properties"]["status"]["$ref"], "#/components/schemas/MemberStatus");
    assert_eq!(
        enum_values(&document, "LineStatus"),
        written(&[
            LineStatus::Pending,
            LineStatus::Approved,
            LineStatus::Billed,
            LineStatus::Paid,
            LineStatus::Rejected,
            LineStatus::Reversed,
            LineStatus::Withdrawn,
        ])
    );
    assert_eq!(
        enum_values(&document, "LineKind"),
        written(&[
            LineKind::Click,
            LineKind::Conversion,
            LineKind::Recurring,
            LineKind::Recruiting,
            LineKind::Adjustment,
            LineKind::Bonus,
            LineKind::Clawback
        ])
    );
    assert_eq!(
        enum_values(&document, "BillStatus"),
        written(&[BillStatus::Unpaid, BillStatus::Paid, BillStatus::CarriedOver])
    );
    assert_eq!(
        enum_values(&document, "SubscriptionStatus"),
        written(&[SubscriptionStatus::Active, SubscriptionStatus::Cancelled, SubscriptionStatus::Closed])
    );
}

/// Every operation documents the parameters it takes and no other: query parameters in the
/// query and optional, path parameters in the path and required. (That an operation refuses
/// what it does not document is `clickledger/tests/api_program.rs`.)
#[test]
fn each_operation_documents_only_its_own_parameters() {
    let document = document();
    let report = ["from", "to", "offer", "member"];
    let page = ["limit", "cursor"];
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("/v1/reports/conversions", [&report[..], &["status", "order_id", "order_key"], &page].concat()),
        ("/v1/reports/summary", [&["by"][..], &report, &page].concat()),
        ("/v1/reports/rejections", [&report[..], &["reason"], &page].concat()),
        ("/v1/conversions/rejected", [&report[..], &["reason", "order_id", "order_key"], &page].concat()),
        ("/v1/reports/history", [&["offer"][..], &page].concat()),
        ("/v1/lines", [&report[..], &["status", "order_id", "order_key"], &page].concat()),
        ("/v1/conversions/pending", [&["offer", "member"][..], &page].concat()),
        ("/v1/subscriptions", [&["offer", "member", "status"][..], &page].concat()),
        ("/v1/bills", [&["member", "status"][..], &page].concat()),
        ("/v1/members", [&["status", "parent"][..], &page].concat()),
        ("/v1/links", [&["offer", "member"][..], &page].concat()),
        ("/v1/codes", [&["offer", "member"][..], &page].concat()),
        ("/v1/keys", page.to_vec()),
        ("/v1/advertisers", page.to_vec()),
        ("/v1/offers", page.to_vec()),
        ("/v1/offers/{offer}/enrolments", [&["offer"][..], &page].concat()),
    ];
    for (path, names) in expected {
        let parameters = document["paths"][path]["get"]["parameters"].as_array().unwrap();
        let documented: Vec<&str> = parameters.iter().map(|parameter| parameter["name"].as_str().unwrap()).collect();
        assert_eq!(documented, names, "GET {path}");
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                let in_path = path.contains(&format!("{{{name}}}"));
                let place = if in_path { "path" } else { "query" };
                assert_eq!(parameter["in"], place, "{method} {path}: {name}");
                assert_eq!(parameter["required"].as_bool().unwrap_or(false), in_path, "{method} {path}: {name}");
            }
        }
    }
}
