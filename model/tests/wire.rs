//! The wire format: every record type survives encode → decode unchanged in both versions
//! (1, JSON; 2, MessagePack), the documented shapes are what is written, and unknown versions
//! are refused.

use clickledger_model as model;

use model::events::wire::{self, WireError};
use model::events::*;
use model::ids::*;
use model::program::{ProgramChange, ProgramRecord};
use model::testkit::*;
use model::{Currency, Interval};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn click() -> Click {
    Click {
        id: event_id(1),
        received_at: ts("2026-11-21T10:00:00.250Z"),
        offer: offer_id("summer"),
        member: member_id("jane"),
        link: Some(LinkCode::new("jane-summer").unwrap()),
        visitor: VisitorId::new("v_8Jk2s9dkQpZ").unwrap(),
        click_id: "c1.abc".into(),
        deep_link: Some("https://shop.example.com/p/1?color=red".into()),
        subs: Subs { sub1: Some("story".into()), sub5: Some("x".into()), ..Subs::default() },
        bot: false,
        rejected: None,
        client: Some(Client::new("203.0.113.7".parse().unwrap(), Some("Mozilla/5.0"))),
        client_repeat: true,
        program: 12,
    }
}

fn conversion() -> Conversion {
    Conversion {
        id: event_id(2),
        received_at: ts("2026-11-21T10:05:00Z"),
        occurred_at: Some(ts("2026-11-21T10:04:59Z")),
        source: ConversionSource::Postback,
        advertiser: Some(AdvertiserId::new("acme").unwrap()),
        offer: Some(offer_id("summer")),
        event: "sale".into(),
        order_id: Some(OrderId::new("A-1001").unwrap()),
        amount: Some(dec!(129.90)),
        currency: Some(Currency::USD),
        items: vec![Item { sku: Sku::new("product1id").unwrap(), amount: dec!(100), quantity: 1 }],
        code: Some(PromoCode::new("JANE20").unwrap()),
        recurring_amount: Some(dec!(29.95)),
        visitor: Some(VisitorId::new("v_8Jk2s9dkQpZ").unwrap()),
        click_id: Some("c1.abc".into()),
        bot: false,
        client: Some(Client::new("2001:db8::1".parse().unwrap(), None)),
        refused: Some(Reason::BlockedAddress),
        program: 12,
    }
}

fn refund(amount: Option<Decimal>) -> Refund {
    Refund {
        id: event_id(3),
        received_at: ts("2026-11-22T00:00:00Z"),
        advertiser: AdvertiserId::new("acme").unwrap(),
        order_id: OrderId::new("A-1001").unwrap(),
        amount,
    }
}

fn cancel() -> SubscriptionCancel {
    SubscriptionCancel {
        id: event_id(4),
        received_at: ts("2026-12-22T00:00:00Z"),
        advertiser: AdvertiserId::new("acme").unwrap(),
        order_id: OrderId::new("A-1001").unwrap(),
    }
}

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = wire::encode(value);
    let decoded: T =
        wire::decode(&bytes).unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(&decoded, value);
    let bytes = wire::encode_compact(value);
    if wire::compact_version_written() == wire::COMPACT_WIRE_VERSION {
        assert_eq!(bytes[0], 0x82, "version 2: a MessagePack map of two entries");
    }
    let decoded: T = wire::decode(&bytes).unwrap_or_else(|error| panic!("{error}: {bytes:02x?}"));
    assert_eq!(&decoded, value);
}

#[test]
fn tracking_events_round_trip() {
    round_trip(&TrackingEvent::Click(click()));
    round_trip(&TrackingEvent::Conversion(conversion()));
    let minimal_pixel = Conversion {
        occurred_at: None,
        source: ConversionSource::Pixel,
        advertiser: None,
        order_id: None,
        amount: None,
        currency: None,
        items: vec![],
        code: None,
        recurring_amount: None,
        click_id: None,
        client: None,
        refused: None,
        ..conversion()
    };
    round_trip(&TrackingEvent::Conversion(minimal_pixel));
}

#[test]
fn order_events_round_trip() {
    let acme = AdvertiserId::new("acme").unwrap();
    let order_key = OrderKey::new(&acme, &OrderId::new("A-1001").unwrap());
    let attributed = AttributedConversion {
        conversion: conversion(),
        order_key: order_key.clone(),
        advertiser: acme.clone(),
        offer: offer_id("summer"),
        member: member_id("jane"),
        via: Via::Cookie { click: event_id(1), clicked_at: ts("2026-11-21T10:00:00Z") },
        unverified: false,
        click: None,
    };
    round_trip(&OrderEvent::Attributed(attributed));
    round_trip(&OrderEvent::Rejected(RejectedConversion {
        conversion: conversion(),
        reason: Reason::MemberNotApproved,
        order_key: Some(order_key.clone()),
        offer: Some(offer_id("summer")),
        member: Some(member_id("tom")),
        via: Some(Via::Code { code: PromoCode::new("TOM10").unwrap() }),
    }));
    round_trip(&OrderEvent::Refund(refund(Some(dec!(10.50)))));
    round_trip(&OrderEvent::Cancel(cancel()));
    round_trip(&OrderEvent::Decision(Decision {
        id: event_id(5),
        received_at: ts("2026-11-23T00:00:00Z"),
        order_key,
        verdict: Verdict::Reject,
        actor: "key:ops".into(),
        note: Some("fraud".into()),
    }));
}

#[test]
fn ledger_events_and_outputs_round_trip() {
    let order_key = OrderKey::new(&AdvertiserId::new("acme").unwrap(), &OrderId::new("A-1").unwrap());
    round_trip(&LedgerEvent::Click(click()));
    round_trip(&LedgerEvent::Order(AttributedConversion {
        conversion: conversion(),
        order_key: order_key.clone(),
        advertiser: AdvertiserId::new("acme").unwrap(),
        offer: offer_id("summer"),
        member: member_id("jane"),
        via: Via::ClickId { click: event_id(1), clicked_at: ts("2026-11-21T10:00:00.250Z") },
        unverified: true,
        click: None,
    }));
    round_trip(&LedgerEvent::Withdraw { order_key: order_key.clone(), conversion: event_id(2) });
    round_trip(&LedgerEvent::Refund { order_key: order_key.clone(), refund: refund(None) });
    round_trip(&LedgerEvent::Cancel { order_key: order_key.clone(), cancel: cancel() });
    round_trip(&LedgerEvent::Decision(Decision {
        id: event_id(5),
        received_at: ts("2026-11-23T00:00:00Z"),
        order_key: order_key.clone(),
        verdict: Verdict::Approve,
        actor: "key:ops".into(),
        note: None,
    }));
    round_trip(&LedgerEvent::MemberApproved {
        id: event_id(8),
        member: member_id("ann"),
        at: ts("2026-11-24T08:00:00Z"),
    });
    round_trip(&LedgerEvent::BillPaid {
        id: event_id(9),
        bill: DerivedId::derive(&["bill"]),
        at: ts("2026-12-02T09:00:00Z"),
        actor: "key:admin".into(),
    });
    round_trip(&LedgerEvent::BillRun {
        id: event_id(6),
        period_end: ts("2026-12-01T00:00:00Z"),
        at: ts("2026-12-01T09:00:00Z"),
        actor: "key:admin".into(),
    });
    round_trip(&LedgerEvent::SubscriptionTerms {
        id: event_id(7),
        order_key: order_key.clone(),
        rate: dec!(0.12),
        every: Interval::Days(14),
        at: ts("2026-12-01T09:00:00Z"),
        actor: "key:admin".into(),
    });
    round_trip(&CommissionLine {
        id: DerivedId::derive(&["line", "1"]),
        member: member_id("jane"),
        tier: 2,
        earned_by: member_id("tom"),
        offer: Some(offer_id("summer")),
        order_key: Some(order_key.clone()),
        source: event_id(2),
        kind: LineKind::Conversion,
        rule: "tier2".into(),
        keyword: "sale".into(),
        amount: dec!(25.00),
        currency: Currency::USD,
        status: LineStatus::Pending,
        description: "Tier 2 of 50.00".into(),
        earned_at: ts("2026-11-21T10:05:00Z"),
        revision: 0,
        bill: None,
    });
    round_trip(&Bill {
        id: DerivedId::derive(&["bill"]),
        member: member_id("jane"),
        currency: Currency::EUR,
        period_end: ts("2026-12-01T00:00:00Z"),
        total: dec!(-3.00),
        lines: 2,
        status: BillStatus::CarriedOver,
        issued_at: ts("2026-12-01T09:00:00Z"),
        paid_at: None,
        revision: 1,
    });
}

#[test]
fn program_records_round_trip() {
    round_trip(&ProgramRecord {
        at: ts("2026-11-21T09:00:00Z"),
        actor: "key:admin".into(),
        change: ProgramChange::Offer(offer("summer", cps(dec!(0.10)))),
    });
    round_trip(&ProgramRecord {
        at: ts("2026-11-21T09:00:00Z"),
        actor: "bootstrap".into(),
        change: ProgramChange::Member(child("ann", "jane")),
    });
}

#[test]
fn the_written_shape_is_the_documented_one() {
    let bytes = wire::encode(&TrackingEvent::Click(click()));
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["v"], 1);
    let event = &json["event"]["click"];
    assert_eq!(event["id"], "00000000000000000000000001");
    assert_eq!(event["received_at"], "2026-11-21T10:00:00.250Z");
    assert_eq!(event["offer"], "summer");
    assert_eq!(event["subs"]["sub1"], "story");
    assert!(event.get("rejected").is_none(), "absent options are left out");

    let bytes = wire::encode(&TrackingEvent::Conversion(conversion()));
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["event"]["conversion"]["amount"], "129.90", "money is a decimal string");
    assert_eq!(json["event"]["conversion"]["items"][0]["amount"], "100");
}

/// Version 2 is the version 1 object in MessagePack: the same names, timestamps as Unix
/// milliseconds, money as decimal strings, absent options left out.
#[test]
fn the_compact_shape_is_the_documented_one() {
    let refund = Refund { received_at: ts("2026-11-22T00:00:00.250Z"), ..refund(Some(dec!(10.50))) };
    let as_value =
        |event: &OrderEvent| -> serde_json::Value { rmp_serde::from_slice(&wire::encode_compact(event)).unwrap() };
    assert_eq!(
        as_value(&OrderEvent::Refund(refund.clone())),
        serde_json::json!({"v": 2, "event": {"refund": {
            "id": "00000000000000000000000003",
            "received_at": 1_795_305_600_250_i64,
            "advertiser": "acme",
            "order_id": "A-1001",
            "amount": "10.50",
        }}})
    );
    let whole = as_value(&OrderEvent::Refund(Refund { amount: None, ..refund }));
    assert!(whole["event"]["refund"].get("amount").is_none(), "absent options are left out: {whole}");
}

#[test]
fn unknown_versions_and_garbage_are_refused() {
    let bytes = wire::encode(&TrackingEvent::Click(click()));
    let future = String::from_utf8(bytes).unwrap().replacen("\"v\":1", "\"v\":3", 1);
    assert_eq!(wire::decode::<TrackingEvent>(future.as_bytes()), Err(WireError::UnsupportedVersion(3)));
    // Version 2 is MessagePack only; version 1 JSON only.
    let bytes = wire::encode(&TrackingEvent::Click(click()));
    let mislabelled = String::from_utf8(bytes).unwrap().replacen("\"v\":1", "\"v\":2", 1);
    assert!(matches!(wire::decode::<TrackingEvent>(mislabelled.as_bytes()), Err(WireError::Malformed(_))));
    #[derive(serde::Serialize)]
    struct Labelled<'a> {
        v: u16,
        event: &'a TrackingEvent,
    }
    let click = TrackingEvent::Click(click());
    let future = rmp_serde::to_vec_named(&Labelled { v: 3, event: &click }).unwrap();
    assert_eq!(wire::decode::<TrackingEvent>(&future), Err(WireError::UnsupportedVersion(3)));
    let future_shape = rmp_serde::to_vec_named(&Labelled { v: 9, event: &click }).unwrap();
    assert_eq!(wire::decode::<OrderEvent>(&future_shape), Err(WireError::UnsupportedVersion(9)));
    let mislabelled = rmp_serde::to_vec_named(&Labelled { v: 1, event: &click }).unwrap();
    assert!(matches!(wire::decode::<TrackingEvent>(&mislabelled), Err(WireError::Malformed(_))));
    let truncated = &wire::encode_compact(&click)[..20];
    assert!(matches!(wire::decode::<TrackingEvent>(truncated), Err(WireError::Malformed(_))));
    let future_shape = r#"{"v":7,"event":{"teleport":{}}}"#;
    assert_eq!(wire::decode::<TrackingEvent>(future_shape.as_bytes()), Err(WireError::UnsupportedVersion(7)));
    assert!(matches!(wire::decode::<TrackingEvent>(b"not json"), Err(WireError::Malformed(_))));
    let bad_amount = r#"{"v":1,"event":{"refund":{"id":"00000000000000000000000001","received_at":"2026-11-21T10:00:00Z","advertiser":"acme","order_id":"A","amount":"abc"}}}"#;
    assert!(matches!(wire::decode::<OrderEvent>(bad_amount.as_bytes()), Err(WireError::Malformed(_))));
}

fn decimal_amount() -> impl Strategy<Value = Decimal> {
    (0u64..10_000_000_000, 0u32..=4).prop_map(|(mantissa, scale)| Decimal::new(mantissa as i64, scale))
}

proptest! {
    #[test]
    fn any_conversion_round_trips(
        amount in proptest::option::of(decimal_amount()),
        order in proptest::option::of("[!-~]{1,128}"),
        event in "[a-z_]{1,16}",
        quantity in 0u32..1000,
        millis in 0i64..4_102_444_800_000,
    ) {
        let conversion = Conversion {
            amount,
            order_id: order.map(|text| OrderId::new(text).unwrap()),
            event,
            items: vec![Item { sku: Sku::new("sku-1").unwrap(), amount: dec!(5), quantity }],
            received_at: model::Timestamp::from_millis(millis),
            ..conversion()
        };
        round_trip(&TrackingEvent::Conversion(conversion));
    }
}

/// `CLICKLEDGER_WIRE_VERSION=1` makes the stages write version 1 to `orders` and `ledger`, for
/// a rolling upgrade from a build that reads only version 1. The setting is read once per
/// process, so the test runs itself again with it set.
#[test]
fn version_1_is_written_on_request() {
    let cancel = OrderEvent::Cancel(cancel());
    let bytes = wire::encode_compact(&cancel);
    if std::env::var(wire::WIRE_VERSION_VARIABLE).as_deref() == Ok("1") {
        assert_eq!(bytes, wire::encode(&cancel), "version 1, as JSON");
        return;
    }
    assert_eq!(bytes[0], 0x82, "version 2 unless asked");
    assert_eq!(wire::check_version_setting(), Ok(()));
    let again = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "version_1_is_written_on_request", "--nocapture"])
        .env(wire::WIRE_VERSION_VARIABLE, "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{said}{}", String::from_utf8_lossy(&again.stderr));
    assert!(said.contains("1 passed"), "the test ran with the setting: {said}");
}
