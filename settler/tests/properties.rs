//! Invariants of the engine over random sequences of clicks, sales, refunds, decisions,
//! cancels, credits and bill runs on a 3-tier family.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use clickledger_settler::commission::{Ledger, Outputs};
use model::events::{BillStatus, CommissionLine, Decision, LedgerEvent, LineKind, Refund, SubscriptionCancel, Verdict};
use model::ids::{DerivedId, EventId, OrderId};
use model::program::{PayoutOption, PayoutRule, Program, RecurringTerms, TierLine, Tiered};
use model::testkit::*;
use model::{Interval, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const MEMBERS: [&str; 4] = ["grand", "parent", "kid", "solo"];
const OFFERS: [&str; 4] = ["store", "pend", "clicks", "hosting"];

fn program() -> Program {
    let tiers = |option: PayoutOption| PayoutOption { tier2: Some(dec!(0.5)), tier3: Some(dec!(0.25)), ..option };
    let store = tiers(option("default", "sale", cps(dec!(0.10))));
    let pend =
        PayoutOption { pending: true, tier2: Some(dec!(0.667)), ..option("default", "Pending_sale", cps(dec!(0.20))) };
    let cpc = PayoutRule::Cpc {
        per_click: Tiered(vec![TierLine { from: 1, value: dec!(0.10) }, TierLine { from: 3, value: dec!(0.20) }]),
    };
    let clicks = tiers(option("default", "click", cpc));
    let hosting = PayoutOption {
        recurring: Some(RecurringTerms {
            name: "subscriptionsales".into(),
            rate: dec!(0.1),
            every: Interval::Days(10),
        }),
        ..tiers(option("default", "sale", cps(dec!(0.30))))
    };
    let mut kid = child("kid", "parent");
    kid.minimum_payout = dec!(20);
    let members = || [member("grand"), child("parent", "grand"), kid.clone(), member("solo")];
    ProgramBuilder::new()
        .offer(offer_with_options("store", vec![store]))
        .offer(offer_with_options("pend", vec![pend]))
        .offer(offer_with_options("clicks", vec![clicks]))
        .offer(offer_with_options("hosting", vec![hosting]))
        .enrolled("store", members())
        .enrolled("pend", members().into_iter().skip(4))
        .change(model::program::ProgramChange::Enrolment(enrol("pend", "grand")))
        .change(model::program::ProgramChange::Enrolment(enrol("pend", "parent")))
        .change(model::program::ProgramChange::Enrolment(enrol("pend", "kid")))
        .change(model::program::ProgramChange::Enrolment(enrol("pend", "solo")))
        .change(model::program::ProgramChange::Enrolment(enrol("clicks", "kid")))
        .change(model::program::ProgramChange::Enrolment(enrol("clicks", "solo")))
        .change(model::program::ProgramChange::Enrolment(enrol("hosting", "kid")))
        .change(model::program::ProgramChange::Enrolment(enrol("hosting", "solo")))
        .build()
}

#[derive(Clone, Debug)]
enum Op {
    Click { member: usize, visitor: u8 },
    Sale { member: usize, offer: usize, order: u8, cents: u32, recurring: bool },
    Refund { order: u8, cents: Option<u32> },
    Decide { order: u8, approve: bool },
    Cancel { order: u8 },
    Advance,
    BillRun,
    Pay { bill: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..4usize, 0..6u8).prop_map(|(member, visitor)| Op::Click { member, visitor }),
        4 => (0..4usize, 0..4usize, 0..12u8, 0..20_000u32, any::<bool>())
            .prop_map(|(member, offer, order, cents, recurring)| Op::Sale { member, offer, order, cents, recurring }),
        3 => (0..12u8, proptest::option::of(0..60_000u32)).prop_map(|(order, cents)| Op::Refund { order, cents }),
        2 => (0..12u8, any::<bool>()).prop_map(|(order, approve)| Op::Decide { order, approve }),
        1 => (0..12u8).prop_map(|order| Op::Cancel { order }),
        1 => Just(Op::Advance),
        2 => Just(Op::BillRun),
        1 => (0..8u8).prop_map(|bill| Op::Pay { bill }),
    ]
}

/// The ops as ledger events at non-decreasing times, `Advance` as `None` with its time.
fn events(ops: &[(Op, u32)]) -> Vec<(Option<LedgerEvent>, Timestamp)> {
    let mut now = ts("2026-01-01T00:00:00Z").millis();
    let mut bills_seen: Vec<DerivedId> = Vec::new();
    let mut events = Vec::new();
    for (index, (op, step_minutes)) in ops.iter().enumerate() {
        now += i64::from(*step_minutes) * 60_000;
        let at = Timestamp::from_millis(now);
        let id = EventId::from_u128(index as u128 + 1);
        let order_name = |order: u8| format!("O{order}");
        let event = match op {
            Op::Click { member, visitor } => {
                let mut click = click(index as u128 + 1, "clicks", MEMBERS[*member], &format!("v{visitor}"), at);
                click.id = id;
                Some(LedgerEvent::Click(click))
            }
            Op::Sale { member, offer, order, cents, recurring } => {
                let mut conversion =
                    sale(index as u128 + 1, &order_name(*order), Decimal::new(i64::from(*cents), 2), at);
                if *recurring {
                    conversion.recurring_amount = Some(dec!(29.95));
                }
                Some(LedgerEvent::Order(attributed(conversion, OFFERS[*offer], MEMBERS[*member])))
            }
            Op::Refund { order, cents } => Some(LedgerEvent::Refund {
                order_key: order_key(&order_name(*order)),
                refund: Refund {
                    id,
                    received_at: at,
                    advertiser: advertiser_id(),
                    order_id: OrderId::new(order_name(*order)).unwrap(),
                    amount: cents.map(|cents| Decimal::new(i64::from(cents), 2)),
                },
            }),
            Op::Decide { order, approve } => Some(LedgerEvent::Decision(Decision {
                id,
                received_at: at,
                order_key: order_key(&order_name(*order)),
                verdict: if *approve { Verdict::Approve } else { Verdict::Reject },
                actor: "test".into(),
                note: None,
            })),
            Op::Cancel { order } => Some(LedgerEvent::Cancel {
                order_key: order_key(&order_name(*order)),
                cancel: SubscriptionCancel {
                    id,
                    received_at: at,
                    advertiser: advertiser_id(),
                    order_id: OrderId::new(order_name(*order)).unwrap(),
                },
            }),
            Op::Advance => None,
            Op::BillRun => {
                let event = LedgerEvent::BillRun { id, period_end: at, at, actor: "test".into() };
                // Remember which bills this run could have made, for Pay ops.
                for member in MEMBERS {
                    bills_seen.push(DerivedId::derive(&["bill", member, "USD", &at.to_string()]));
                }
                Some(event)
            }
            Op::Pay { bill } => bills_seen
                .get(usize::from(*bill) % bills_seen.len().max(1))
                .map(|bill| LedgerEvent::BillPaid { id, bill: bill.clone(), at, actor: "test".into() }),
        };
        events.push((event, at));
    }
    events
}

fn run(program: &Program, events: &[(Option<LedgerEvent>, Timestamp)]) -> (Vec<Outputs>, Ledger) {
    let mut ledger = Ledger::new();
    let outputs = events
        .iter()
        .map(|(event, at)| match event {
            Some(event) => ledger.apply(program, event),
            None => ledger.advance(program, *at),
        })
        .collect();
    (outputs, ledger)
}

/// The latest revision of each line, as a store keeps it.
fn latest(outputs: &[Outputs]) -> BTreeMap<DerivedId, CommissionLine> {
    let mut lines: BTreeMap<DerivedId, CommissionLine> = BTreeMap::new();
    for line in outputs.iter().flat_map(|output| &output.lines) {
        if lines.get(&line.id).is_none_or(|kept| kept.revision < line.revision) {
            lines.insert(line.id.clone(), line.clone());
        }
    }
    lines
}

fn ops() -> impl Strategy<Value = Vec<(Op, u32)>> {
    proptest::collection::vec((op(), 0..20_000u32), 1..120)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_same_inputs_gives_the_same_lines(ops in ops()) {
        let program = program();
        let events = events(&ops);
        let (first, _) = run(&program, &events);
        let (second, _) = run(&program, &events);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn line_ids_are_unique(ops in ops()) {
        let program = program();
        let (outputs, _) = run(&program, &events(&ops));
        let mut created = BTreeSet::new();
        for line in outputs.iter().flat_map(|output| &output.lines).filter(|line| line.revision == 0) {
            prop_assert!(created.insert(line.id.clone()), "line {} created twice", line.id);
        }
        let mut revisions: BTreeMap<DerivedId, u32> = BTreeMap::new();
        for line in outputs.iter().flat_map(|output| &output.lines) {
            let previous = revisions.insert(line.id.clone(), line.revision);
            prop_assert!(previous.is_none_or(|previous| previous < line.revision), "revisions of {} go up", line.id);
        }
    }

    #[test]
    fn a_full_refund_brings_an_orders_total_to_zero(ops in ops(), order in 0..12u8) {
        let program = program();
        let mut with_refund = ops.clone();
        with_refund.push((Op::Refund { order, cents: None }, 1));
        let (outputs, _) = run(&program, &events(&with_refund));
        let key = order_key(&format!("O{order}"));
        let total: Decimal = latest(&outputs)
            .values()
            .filter(|line| line.order_key.as_ref() == Some(&key))
            .filter(|line| matches!(line.kind, LineKind::Conversion | LineKind::Adjustment))
            .map(|line| line.amount)
            .sum();
        prop_assert_eq!(total, Decimal::ZERO);
    }

    #[test]
    fn no_bill_below_zero_or_under_the_minimum_is_paid_out(ops in ops()) {
        let program = program();
        let (_, ledger) = run(&program, &events(&ops));
        for bill in ledger.bills().filter(|bill| bill.status != BillStatus::CarriedOver) {
            let minimum = program.member(&bill.member).map_or(Decimal::ZERO, |member| member.minimum_payout);
            prop_assert!(bill.total > Decimal::ZERO, "bill {} pays {}", bill.id, bill.total);
            prop_assert!(bill.total >= minimum, "bill {} pays {} under the minimum {}", bill.id, bill.total, minimum);
        }
    }

    #[test]
    fn a_redelivered_event_changes_nothing(ops in ops()) {
        let program = program();
        let mut ledger = Ledger::new();
        for (event, at) in events(&ops) {
            match event {
                Some(LedgerEvent::BillRun { .. }) | None => {
                    let outputs = match &event { Some(event) => ledger.apply(&program, event), None => ledger.advance(&program, at) };
                    drop(outputs);
                }
                Some(event) => {
                    ledger.apply(&program, &event);
                    let again = ledger.apply(&program, &event);
                    prop_assert!(again.is_empty(), "redelivering {:?} produced {:?}", event, again);
                }
            }
        }
    }
}
