//! An order's winner is its earliest conversion. When an earlier one arrives after a later one
//! won, the order stage withdraws the later one at its member's ledger and sends the new
//! winner to the new member's; the withdrawn conversion's lines pay nothing, and nothing brings
//! them back — not even a late repeat of its `Order` from a worker whose partition moved while
//! it was writing, which reaches the withdrawn member's ledger after the withdrawal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use clickledger_settler::commission::Ledger;
use common::Scenario;
use model::events::{AttributedConversion, LedgerEvent};
use model::program::{PayoutRule, Program, TierLine, Tiered};
use model::testkit::*;
use pipeline::StageState;
use rust_decimal_macros::dec;

/// Bob's conversions pay 1.00 each for his first, 5.00 from his second on.
fn program() -> Program {
    let volume = PayoutRule::Cpa {
        per_conversion: Tiered(vec![TierLine { from: 1, value: dec!(1.00) }, TierLine { from: 2, value: dec!(5.00) }]),
    };
    ProgramBuilder::new().offer(offer("volume", volume)).enrolled("volume", [member("ann"), member("bob")]).build()
}

fn sale_by(id: u128, order: &str, at: &str, member: &str) -> AttributedConversion {
    attributed(sale(id, order, dec!(200), ts(at)), "volume", member)
}

fn withdraw(conversion: &AttributedConversion) -> LedgerEvent {
    LedgerEvent::Withdraw { order_key: conversion.order_key.clone(), conversion: conversion.conversion.id }
}

/// (member, amount, status) of every line, sorted.
fn lines(scenario: &Scenario) -> Vec<(String, String, &'static str)> {
    let mut lines: Vec<_> = scenario
        .lines
        .values()
        .map(|line| (line.member.to_string(), line.amount.to_string(), line.status.as_str()))
        .collect();
    lines.sort();
    lines
}

fn line(member: &str, amount: &str, status: &'static str) -> (String, String, &'static str) {
    (member.to_string(), amount.to_string(), status)
}

/// Bob's ledger, where his sale won order A1 until ann's earlier one arrived (at her ledger),
/// and that sale.
fn bob_after_his_sale_was_withdrawn() -> (Scenario, AttributedConversion) {
    let mut bob = Scenario::new(program());
    let later = sale_by(2, "A1", "2026-03-01T10:05:00Z", "bob");
    bob.order(later.clone());
    bob.apply(withdraw(&later));
    (bob, later)
}

#[test]
fn a_withdrawn_conversion_pays_nothing_and_no_longer_counts_toward_its_members_volume() {
    let (mut bob, _) = bob_after_his_sale_was_withdrawn();
    bob.order(sale_by(3, "A2", "2026-03-01T11:00:00Z", "bob"));
    assert_eq!(lines(&bob), [line("bob", "0.00", "withdrawn"), line("bob", "1.00", "approved")]);
}

#[test]
fn a_late_repeat_of_a_withdrawn_conversion_changes_nothing() {
    let (mut bob, later) = bob_after_his_sale_was_withdrawn();
    let before = bob.ledger.clone();
    let outputs = bob.order(later);
    assert!(outputs.lines.is_empty(), "{:?}", outputs.lines);
    assert_eq!(bob.ledger, before);
    // So his next sale is still his first counted one.
    bob.order(sale_by(3, "A2", "2026-03-01T11:00:00Z", "bob"));
    assert_eq!(lines(&bob), [line("bob", "0.00", "withdrawn"), line("bob", "1.00", "approved")]);
}

#[test]
fn a_ledger_restored_from_its_snapshot_and_changes_still_knows_what_was_withdrawn() {
    let program = program();
    let later = sale_by(2, "A1", "2026-03-01T10:05:00Z", "bob");
    let mut ledger = Ledger::new();
    ledger.apply(&program, &LedgerEvent::Order(later.clone()));
    let snapshot = ledger.encode().unwrap();
    ledger.take_changes().unwrap();
    ledger.apply(&program, &withdraw(&later));
    let changes = ledger.take_changes().unwrap().unwrap();

    let mut restored = Ledger::decode(&snapshot).unwrap();
    restored.apply_changes(&changes).unwrap();
    assert_eq!(restored, ledger);
    restored.apply(&program, &LedgerEvent::Order(later.clone()));
    assert_eq!(restored, ledger, "restored from a snapshot and its changes");

    let mut whole = Ledger::decode(&ledger.encode().unwrap()).unwrap();
    whole.apply(&program, &LedgerEvent::Order(later));
    assert_eq!(whole, ledger, "restored whole");
}

/// A conversion over a cap (rejected) that is then withdrawn ends withdrawn, as when the
/// withdrawal comes first and the verdict finds no order: the caps stage and the order stage
/// reach the ledger in either order, and a restart can change which.
#[test]
fn a_conversion_rejected_by_a_cap_and_withdrawn_ends_the_same_whichever_comes_first() {
    let sale = sale_by(2, "A1", "2026-03-01T10:05:00Z", "bob");
    let verdict = LedgerEvent::CapVerdict(model::events::CapVerdict {
        order_key: sale.order_key.clone(),
        conversion: sale.conversion.id,
        within: false,
    });

    let mut cap_first = Scenario::new(program());
    cap_first.order(sale.clone());
    cap_first.apply(verdict.clone());
    assert_eq!(lines(&cap_first), [line("bob", "0.00", "rejected")], "over the cap");
    cap_first.apply(withdraw(&sale));

    let mut withdrawal_first = Scenario::new(program());
    withdrawal_first.order(sale.clone());
    withdrawal_first.apply(withdraw(&sale));
    withdrawal_first.apply(verdict);

    assert_eq!(lines(&cap_first), [line("bob", "0.00", "withdrawn")]);
    assert_eq!(lines(&withdrawal_first), lines(&cap_first));
}
