//! Saved ledgers stay readable across versions of the saved form: a ledger saved by the first
//! format (MessagePack maps of named fields, RFC 3339 timestamps, absent fields left out) reads
//! back as the same ledger, and the current format (arrays of fields in order, timestamps in
//! milliseconds) reads back too and is smaller.

use clickledger_settler::commission::Ledger;
use model::events::{LedgerEvent, SubscriptionCancel};
use model::ids::{DerivedId, EventId, OrderId};
use model::program::{PayoutOption, PayoutRule, Program, RecurringTerms, TierLine, Tiered};
use model::testkit::*;
use model::{Interval, Span, Timestamp};
use pipeline::StageState;
use rust_decimal_macros::dec;

/// [`ledger`] as the first format saved it: `Ledger::encode` at commit eac97e0, the last that
/// saved named fields and RFC 3339 timestamps.
const FIRST_FORMAT: &[u8] = include_bytes!("fixtures/ledger-format-1.msgpack");

fn program() -> Program {
    let tiers = |option: PayoutOption| PayoutOption { tier2: Some(dec!(0.5)), tier3: Some(dec!(0.25)), ..option };
    let cpc = PayoutRule::Cpc { per_click: Tiered(vec![TierLine { from: 1, value: dec!(0.10) }]) };
    let held = PayoutOption { pending: true, hold: Some(Span::days(30)), ..option("default", "held", cps(dec!(0.2))) };
    let hosting = PayoutOption {
        recurring: Some(RecurringTerms { name: "renewals".into(), rate: dec!(0.1), every: Interval::Days(10) }),
        ..tiers(option("default", "sale", cps(dec!(0.3))))
    };
    let members = || [member("grand"), child("parent", "grand"), child("kid", "parent")];
    ProgramBuilder::new()
        .offer(offer_with_options("store", vec![tiers(option("default", "sale", cps(dec!(0.10))))]))
        .offer(offer_with_options("clicks", vec![tiers(option("default", "click", cpc))]))
        .offer(offer_with_options("held", vec![held]))
        .offer(offer_with_options("hosting", vec![hosting]))
        .enrolled("store", members())
        .enrolled_existing("clicks", &["grand", "parent", "kid"])
        .enrolled_existing("held", &["grand", "parent", "kid"])
        .enrolled_existing("hosting", &["grand", "parent", "kid"])
        .build()
}

/// Every kind of entry a ledger holds, with optional fields both set and absent: click lines
/// (no order key), tiered sale lines, a held line, a refund, a subscription cancelled, a bill
/// paid and one not.
fn ledger() -> Ledger {
    let program = program();
    let at = |minutes: i64| Timestamp::from_millis(ts("2026-03-01T10:00:00Z").millis() + minutes * 60_000);
    let sale_of = |n: u128, order: &str, amount, offer: &str, minutes| {
        let mut conversion = sale(n, order, amount, at(minutes));
        if offer == "hosting" {
            conversion.recurring_amount = Some(dec!(29.95));
        }
        LedgerEvent::Order(attributed(conversion, offer, "kid"))
    };
    let mut ledger = Ledger::new();
    let events = [
        LedgerEvent::Click(click(1, "clicks", "kid", "v1", at(0))),
        LedgerEvent::Click(click(2, "clicks", "kid", "v2", at(1))),
        sale_of(3, "O1", dec!(120.00), "store", 2),
        sale_of(4, "O2", dec!(80.00), "held", 3),
        sale_of(5, "O3", dec!(49.90), "hosting", 4),
        LedgerEvent::Refund {
            order_key: order_key("O1"),
            refund: model::events::Refund {
                id: EventId::from_u128(6),
                received_at: at(5),
                advertiser: advertiser_id(),
                order_id: OrderId::new("O1").unwrap_or_else(|error| panic!("{error:?}")),
                amount: Some(dec!(20.00)),
            },
        },
        LedgerEvent::BillRun { id: EventId::from_u128(7), period_end: at(6), at: at(6), actor: "test".into() },
        LedgerEvent::Cancel {
            order_key: order_key("O3"),
            cancel: SubscriptionCancel {
                id: EventId::from_u128(8),
                received_at: at(7),
                advertiser: advertiser_id(),
                order_id: OrderId::new("O3").unwrap_or_else(|error| panic!("{error:?}")),
            },
        },
    ];
    for event in &events {
        ledger.apply(&program, event);
    }
    let bill = DerivedId::derive(&["bill", "kid", "USD", &at(6).to_string()]);
    ledger.apply(&program, &LedgerEvent::BillPaid { id: EventId::from_u128(9), bill, at: at(8), actor: "test".into() });
    ledger
}

#[test]
fn the_sample_ledger_holds_every_kind_of_entry() {
    let ledger = ledger();
    let lines: Vec<_> = ledger.lines().collect();
    let clicks = lines.iter().filter(|line| line.order_key.is_none()).count();
    let held = lines.iter().filter(|line| line.rule == "cps" && line.keyword == "Pending_held").count();
    assert_eq!((lines.len(), clicks), (13, 6), "3 tiers of 2 clicks and of 2 sales, the held sale's line");
    assert!(held <= 1);
    let bills: Vec<_> = ledger.bills().collect();
    assert_eq!(bills.iter().filter(|bill| bill.paid_at.is_some()).count(), 1);
    assert!(bills.len() > 1, "a bill paid and one not");
    let cancelled: Vec<_> = ledger.subscriptions().map(|account| account.cancelled_at.is_some()).collect();
    assert_eq!(cancelled, [true]);
}

#[test]
fn a_ledger_saved_in_the_first_format_reads_back_the_same() {
    let restored = Ledger::decode(FIRST_FORMAT).unwrap_or_else(|error| panic!("{error}"));
    assert!(restored == ledger(), "the ledger read from the first format differs");
}

#[test]
fn a_ledger_saved_now_reads_back_the_same_and_is_smaller() {
    let ledger = ledger();
    let saved = ledger.encode().unwrap_or_else(|error| panic!("{error}"));
    // An array of the ledger's fields in order, not a map of named ones.
    assert_eq!(saved[0], 0x90 | 9, "a fixed array of the 9 saved fields");
    assert!(Ledger::decode(&saved).unwrap_or_else(|error| panic!("{error}")) == ledger);
    assert!(saved.len() * 10 < FIRST_FORMAT.len() * 7, "{} bytes against {}", saved.len(), FIRST_FORMAT.len());
}
