//! Invariants of the engine over random sequences of clicks, sales, refunds, decisions,
//! cancels, credits and bill runs on a 3-tier family.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use clickledger_settler::commission::{Ledger, Outputs};
use model::events::{BillStatus, CommissionLine, Decision, LedgerEvent, LineKind, Refund, SubscriptionCancel, Verdict};
use model::ids::{DerivedId, EventId, OrderId};
use model::program::{MonthlyThreshold, PayoutOption, PayoutRule, Program, RecurringTerms, TierLine, Tiered};
use model::testkit::*;
use model::{Interval, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const MEMBERS: [&str; 4] = ["grand", "parent", "kid", "solo"];
const OFFERS: [&str; 6] = ["store", "pend", "clicks", "hosting", "accu", "volume"];

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
    let accumulated = tiers(option(
        "default",
        "accu_sale",
        PayoutRule::Accumulated {
            thresholds: vec![
                MonthlyThreshold { from: dec!(0), rate: dec!(0.10) },
                MonthlyThreshold { from: dec!(50), rate: dec!(0.20) },
            ],
        },
    ));
    let volume = tiers(option(
        "default",
        "sale",
        PayoutRule::Cpa {
            per_conversion: Tiered(vec![
                TierLine { from: 1, value: dec!(1.00) },
                TierLine { from: 3, value: dec!(2.00) },
            ]),
        },
    ));
    let mut kid = child("kid", "parent");
    kid.minimum_payout = dec!(20);
    let members = || [member("grand"), child("parent", "grand"), kid.clone(), member("solo")];
    ProgramBuilder::new()
        .offer(offer_with_options("store", vec![store]))
        .offer(offer_with_options("pend", vec![pend]))
        .offer(offer_with_options("clicks", vec![clicks]))
        .offer(offer_with_options("hosting", vec![hosting]))
        .offer(offer_with_options("accu", vec![accumulated]))
        .offer(offer_with_options("volume", vec![volume]))
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
        .enrolled_existing("accu", &["grand", "parent", "kid", "solo"])
        .enrolled_existing("volume", &["grand", "parent", "kid", "solo"])
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
        4 => (0..4usize, 0..6usize, 0..12u8, 0..20_000u32, any::<bool>())
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

    /// Every revision of a line names the same source event: the embedded store keys lines by
    /// (source, id), so a line whose source changed would be stored twice.
    #[test]
    fn a_line_keeps_its_source(ops in ops()) {
        let program = program();
        let (outputs, _) = run(&program, &events(&ops));
        let mut sources: BTreeMap<DerivedId, EventId> = BTreeMap::new();
        for line in outputs.iter().flat_map(|output| &output.lines) {
            let first = *sources.entry(line.id.clone()).or_insert(line.source);
            prop_assert_eq!(first, line.source, "line {} changed its source", line.id);
        }
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
    fn a_ledger_restored_from_a_snapshot_and_its_changes_is_the_ledger(
        ops in ops(),
        snapshot_after in 0..120usize,
        save_every in 1..10usize,
    ) {
        use pipeline::StageState;
        let program = program();
        let events = events(&ops);
        let mut ledger = Ledger::new();
        let apply = |ledger: &mut Ledger, (event, at): &(Option<LedgerEvent>, Timestamp)| match event {
            Some(event) => ledger.apply(&program, event),
            None => ledger.advance(&program, *at),
        };
        let split = snapshot_after.min(events.len());
        for event in &events[..split] {
            apply(&mut ledger, event);
        }
        StageState::take_changes(&mut ledger).unwrap();
        let snapshot = ledger.encode().unwrap();
        let mut changes = Vec::new();
        for (n, event) in events[split..].iter().enumerate() {
            apply(&mut ledger, event);
            if n % save_every == 0 {
                changes.extend(StageState::take_changes(&mut ledger).unwrap());
            }
        }
        changes.extend(StageState::take_changes(&mut ledger).unwrap());
        let mut restored = Ledger::decode(&snapshot).unwrap();
        for saved in &changes {
            restored.apply_changes(saved).unwrap();
        }
        // Equal in what is saved and in what is rebuilt on restore (holds, the tallies of
        // repriceable orders); the unique-click windows are hash maps, so compare values, not bytes.
        prop_assert!(restored == ledger, "the restored ledger differs");
        prop_assert!(Ledger::decode(&ledger.encode().unwrap()).unwrap() == ledger, "the ledger does not read back");
        // Holds are rebuilt: both approve the same lines when their time comes.
        let later = Timestamp::from_millis(i64::from(u32::MAX) * 1_000);
        prop_assert_eq!(restored.advance(&program, later), ledger.advance(&program, later));
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

/// Ops for the arrival-order property: every sale has its own order; refunds, decisions and
/// cancels name an order made earlier. No time-driven work (credits, bills).
fn chained_events(ops: &[(Op, u32)]) -> Vec<(String, LedgerEvent)> {
    let mut now = ts("2026-01-01T00:00:00Z").millis();
    let mut orders: Vec<String> = Vec::new();
    let mut events = Vec::new();
    for (index, (op, step_minutes)) in ops.iter().enumerate() {
        now += i64::from(*step_minutes) * 60_000;
        let at = Timestamp::from_millis(now);
        let id = EventId::from_u128(index as u128 + 1);
        let existing = |order: u8| (!orders.is_empty()).then(|| orders[usize::from(order) % orders.len()].clone());
        match op {
            Op::Click { member, visitor } => {
                let mut click = click(index as u128 + 1, "clicks", MEMBERS[*member], &format!("v{visitor}"), at);
                click.id = id;
                events.push((format!("visitor:v{visitor}"), LedgerEvent::Click(click)));
            }
            Op::Sale { member, offer, cents, recurring, .. } => {
                let order = format!("S{index}");
                let mut conversion = sale(index as u128 + 1, &order, Decimal::new(i64::from(*cents), 2), at);
                if *recurring {
                    conversion.recurring_amount = Some(dec!(29.95));
                }
                orders.push(order.clone());
                events.push((
                    format!("order:{order}"),
                    LedgerEvent::Order(attributed(conversion, OFFERS[*offer], MEMBERS[*member])),
                ));
            }
            Op::Refund { order, cents } => {
                if let Some(order) = existing(*order) {
                    let refund = Refund {
                        id,
                        received_at: at,
                        advertiser: advertiser_id(),
                        order_id: OrderId::new(order.clone()).unwrap(),
                        amount: cents.map(|cents| Decimal::new(i64::from(cents), 2)),
                    };
                    events
                        .push((format!("order:{order}"), LedgerEvent::Refund { order_key: order_key(&order), refund }));
                }
            }
            Op::Decide { order, approve } => {
                if let Some(order) = existing(*order) {
                    let decision = Decision {
                        id,
                        received_at: at,
                        order_key: order_key(&order),
                        verdict: if *approve { Verdict::Approve } else { Verdict::Reject },
                        actor: "test".into(),
                        note: None,
                    };
                    events.push((format!("order:{order}"), LedgerEvent::Decision(decision)));
                }
            }
            Op::Cancel { order } | Op::Pay { bill: order } => {
                if let Some(order) = existing(*order) {
                    let cancel = SubscriptionCancel {
                        id,
                        received_at: at,
                        advertiser: advertiser_id(),
                        order_id: OrderId::new(order.clone()).unwrap(),
                    };
                    events
                        .push((format!("order:{order}"), LedgerEvent::Cancel { order_key: order_key(&order), cancel }));
                }
            }
            Op::Advance | Op::BillRun => {}
        }
    }
    events
}

fn event_time(event: &LedgerEvent) -> Timestamp {
    match event {
        LedgerEvent::Click(click) => click.received_at,
        LedgerEvent::Order(order) => order.conversion.event_time(),
        LedgerEvent::Refund { refund, .. } => refund.received_at,
        LedgerEvent::Cancel { cancel, .. } => cancel.received_at,
        LedgerEvent::Decision(decision) => decision.received_at,
        _ => Timestamp::from_millis(0),
    }
}

/// Another arrival order the pipeline can produce: the chains (a visitor's clicks, an order's
/// events) keep their own order and are interleaved at random, no event arriving more than the
/// settle horizon of event time behind one that arrived before it (upstream partitions lag
/// each other by seconds, not days).
fn interleave(events: &[(String, LedgerEvent)], picks: &[u32]) -> Vec<LedgerEvent> {
    let horizon = clickledger_settler::commission::sequence::SETTLED_AFTER;
    let mut chains: BTreeMap<String, std::collections::VecDeque<LedgerEvent>> = BTreeMap::new();
    for (chain, event) in events {
        chains.entry(chain.clone()).or_default().push_back(event.clone());
    }
    let mut arrival = Vec::with_capacity(events.len());
    let mut pick = picks.iter().cycle();
    while !chains.is_empty() {
        let oldest_head = chains
            .values()
            .filter_map(|chain| chain.front())
            .map(event_time)
            .min()
            .unwrap_or(Timestamp::from_millis(0));
        let names: Vec<String> = chains
            .iter()
            .filter(|(_, chain)| {
                chain.front().is_some_and(|head| event_time(head) < oldest_head.saturating_add(horizon))
            })
            .map(|(name, _)| name.clone())
            .collect();
        let chosen = names[*pick.next().unwrap_or(&0) as usize % names.len()].clone();
        let chain = chains.get_mut(&chosen).unwrap();
        arrival.extend(chain.pop_front());
        if chain.is_empty() {
            chains.remove(&chosen);
        }
    }
    arrival
}

/// What each line finally pays, whatever revision that took.
fn settled_lines(outputs: &[Outputs]) -> BTreeMap<DerivedId, (String, u8, Decimal, &'static str)> {
    latest(outputs)
        .into_iter()
        .map(|(id, line)| (id, (line.member.to_string(), line.tier, line.amount, line.status.as_str())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn the_lines_depend_on_the_events_not_on_their_arrival_order(
        ops in proptest::collection::vec((op(), 0..90u32), 1..120),
        picks in proptest::collection::vec(any::<u32>(), 1..64),
    ) {
        let program = program();
        let events = chained_events(&ops);
        let mut ledger = Ledger::new();
        let in_order: Vec<Outputs> = events.iter().map(|(_, event)| ledger.apply(&program, event)).collect();
        let mut ledger = Ledger::new();
        let shuffled: Vec<Outputs> = interleave(&events, &picks).iter().map(|event| ledger.apply(&program, event)).collect();
        let (expected, actual) = (settled_lines(&in_order), settled_lines(&shuffled));
        let differences: Vec<_> = expected
            .keys()
            .chain(actual.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|id| expected.get(*id) != actual.get(*id))
            .map(|id| (id.clone(), expected.get(id).cloned(), actual.get(id).cloned()))
            .collect();
        prop_assert!(differences.is_empty(), "lines that differ (in order, shuffled): {:?}", differences);
    }
}
