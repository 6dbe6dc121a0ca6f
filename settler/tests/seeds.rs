//! Every worked example of the seed documents, and the rules docs/RULES.md decides, with exact
//! amounts. The seed and section are named on each test.

mod common;

use common::Scenario;
use model::events::{BillStatus, LedgerEvent, LineKind, LineStatus, SubscriptionStatus, Verdict};
use model::ids::{EventId, PayoutOptionId};
use model::program::{
    MemberStatus, MonthlyThreshold, OrderBand, PayoutOption, PayoutRule, ProductPay, ProductRule, ProgramChange,
    ProgramSettings, RecruitingRule, RecurringTerms, TierLine, Tiered,
};
use model::testkit::*;
use model::{Interval, Span};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn with_tiers(rule: PayoutRule, tier2: Option<Decimal>, tier3: Option<Decimal>) -> PayoutOption {
    PayoutOption { tier2, tier3, ..option("default", "sale", rule) }
}

/// AID1 recruited AID2 and AID4; AID4 recruited AID3 and AID5 (seed 004's tree).
fn seed_tree(sale: PayoutOption, aid4_status: MemberStatus) -> Scenario {
    let mut aid4 = child("aid4", "aid1");
    aid4.status = aid4_status;
    let program = ProgramBuilder::new()
        .offer(offer_with_options("store", vec![sale]))
        .enrolled(
            "store",
            [
                member("aid1"),
                child("aid2", "aid1"),
                child("aid4", "aid1"),
                child("aid3", "aid4"),
                child("aid5", "aid4"),
            ],
        )
        .member(aid4)
        .build();
    Scenario::new(program)
}

/// A parent and a child, both approved and enrolled in `store` with `sale`.
fn parent_and_child(sale: PayoutOption) -> Scenario {
    let program = ProgramBuilder::new()
        .offer(offer_with_options("store", vec![sale]))
        .enrolled("store", [member("grand"), child("parent", "grand"), child("kid", "parent")])
        .build();
    Scenario::new(program)
}

fn amounts(scenario: &Scenario, order: &str) -> Vec<(String, u8, Decimal)> {
    scenario.tier_amounts(order).into_iter().map(|(member, tier, amount)| (member.to_string(), tier, amount)).collect()
}

const DAY: &str = "2026-03-10T12:00:00Z";

#[test]
fn seed_004_tier_example_1_twenty_percent_and_half_for_the_parent() {
    let mut scenario = parent_and_child(with_tiers(cps(dec!(0.20)), Some(dec!(0.50)), None));
    scenario.sale("store", "kid", "A1", dec!(10), ts(DAY));
    assert_eq!(amounts(&scenario, "A1"), [("kid".into(), 1, dec!(2.00)), ("parent".into(), 2, dec!(1.00))]);
}

#[test]
fn seed_004_tier_example_2_five_dollars_and_three_for_the_parent() {
    let flat = PayoutRule::Cpa { per_conversion: Tiered::flat(dec!(5)) };
    let mut scenario = parent_and_child(with_tiers(flat, Some(dec!(0.60)), None));
    scenario.sale("store", "kid", "A1", dec!(10), ts(DAY));
    assert_eq!(amounts(&scenario, "A1"), [("kid".into(), 1, dec!(5.00)), ("parent".into(), 2, dec!(3.00))]);
}

#[test]
fn seed_004_tier_example_3_ten_percent_and_twenty_for_both_upper_tiers() {
    let mut scenario = parent_and_child(with_tiers(cps(dec!(0.10)), Some(dec!(2)), Some(dec!(2))));
    scenario.sale("store", "kid", "A1", dec!(10), ts(DAY));
    assert_eq!(
        amounts(&scenario, "A1"),
        [("kid".into(), 1, dec!(1.00)), ("parent".into(), 2, dec!(2.00)), ("grand".into(), 3, dec!(2.00))]
    );
}

#[test]
fn seed_004_tier_example_4_thirty_twenty_ten_with_rounded_tier_values() {
    // 0.667 x 3.00 = 2.001 -> 2.00; 0.333 x 3.00 = 0.999 -> 1.00 (docs/RULES.md, "Rounding").
    let mut scenario = parent_and_child(with_tiers(cps(dec!(0.30)), Some(dec!(0.667)), Some(dec!(0.333))));
    scenario.sale("store", "kid", "A1", dec!(10), ts(DAY));
    assert_eq!(
        amounts(&scenario, "A1"),
        [("kid".into(), 1, dec!(3.00)), ("parent".into(), 2, dec!(2.00)), ("grand".into(), 3, dec!(1.00))]
    );
}

#[test]
fn seed_004_aid5_aid4_aid1_chain_pays_fifty_twenty_five_and_tier3_times_fifty() {
    let mut scenario = seed_tree(with_tiers(cps(dec!(0.1)), Some(dec!(0.5)), Some(dec!(0.2))), MemberStatus::Approved);
    scenario.sale("store", "aid5", "A1", dec!(500), ts(DAY));
    assert_eq!(
        amounts(&scenario, "A1"),
        [("aid5".into(), 1, dec!(50.00)), ("aid4".into(), 2, dec!(25.00)), ("aid1".into(), 3, dec!(10.00))]
    );
    assert_eq!(scenario.earned("aid2"), dec!(0));
    assert_eq!(scenario.earned("aid3"), dec!(0));
    let tier2 = scenario.lines_of("aid4")[0];
    assert_eq!(tier2.earned_by.as_str(), "aid5");
    assert_eq!(tier2.description, "Tier 2: 0.5 x 50.00 earned by aid5");
}

#[test]
fn seed_004_a_disabled_or_deleted_middle_ancestor_cuts_off_itself_and_everyone_above() {
    for status in [MemberStatus::Stopped, MemberStatus::Deleted] {
        let mut scenario = seed_tree(with_tiers(cps(dec!(0.1)), Some(dec!(0.5)), Some(dec!(0.2))), status);
        scenario.sale("store", "aid5", "A1", dec!(500), ts(DAY));
        assert_eq!(amounts(&scenario, "A1"), [("aid5".into(), 1, dec!(50.00))], "{status:?}");
        assert_eq!(scenario.earned("aid4"), dec!(0));
        assert_eq!(scenario.earned("aid1"), dec!(0));
    }
}

#[test]
fn seed_004_tiers_apply_to_clicks_too() {
    let cpc = PayoutRule::Cpc { per_click: Tiered::flat(dec!(0.10)) };
    let mut scenario = parent_and_child(with_tiers(cpc, Some(dec!(0.667)), Some(dec!(0.5))));
    scenario.click("store", "kid", "visitor-1", ts(DAY));
    assert_eq!(scenario.earned("kid"), dec!(0.10));
    assert_eq!(scenario.earned("parent"), dec!(0.07), "0.667 x 0.10 = 0.0667 -> 0.07");
    assert_eq!(scenario.earned("grand"), dec!(0.05));
}

fn click_tiers() -> PayoutRule {
    PayoutRule::Cpc {
        per_click: Tiered(vec![
            TierLine { from: 1, value: dec!(0.10) },
            TierLine { from: 1001, value: dec!(0.20) },
            TierLine { from: 5001, value: dec!(0.25) },
        ]),
    }
}

#[test]
fn seed_004_six_thousand_unique_clicks_on_volume_tiers_pay_1150() {
    let program =
        ProgramBuilder::new().offer(offer("clicks", click_tiers())).enrolled("clicks", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    let start = ts("2026-03-01T00:00:00Z").millis();
    for n in 0..6000 {
        scenario.click("clicks", "jane", &format!("visitor-{n}"), model::Timestamp::from_millis(start + n * 1000));
    }
    assert_eq!(scenario.earned("jane"), dec!(1150.00), "100 + 800 + 250");
    let mut lines = scenario.lines_of("jane");
    lines.sort_by_key(|line| line.earned_at);
    let at = |instance: usize| lines[instance - 1].amount;
    assert_eq!(
        [at(1), at(1000), at(1001), at(5000), at(5001), at(6000)],
        [dec!(0.10), dec!(0.10), dec!(0.20), dec!(0.20), dec!(0.25), dec!(0.25)]
    );
    assert_eq!(lines[1000].description, "CPC: unique click #1001 at 0.20");
    assert_eq!(scenario.ledger.counter(&member_id("jane"), &offer_id("clicks")).unique_clicks, 6000);
}

#[test]
fn a_visitor_counts_once_per_unique_click_window_and_bots_never() {
    let program =
        ProgramBuilder::new().offer(offer("clicks", click_tiers())).enrolled("clicks", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    scenario.click("clicks", "jane", "same", ts("2026-03-01T10:00:00Z"));
    scenario.click("clicks", "jane", "same", ts("2026-03-01T22:00:00Z"));
    scenario.click("clicks", "jane", "same", ts("2026-03-02T09:59:59.999Z"));
    assert_eq!(scenario.earned("jane"), dec!(0.10), "repeats inside 24 hours are not unique");
    scenario.click("clicks", "jane", "same", ts("2026-03-02T10:00:00Z"));
    assert_eq!(scenario.earned("jane"), dec!(0.20), "24 hours after the counted click it is unique again");

    let mut bot = click(77, "clicks", "jane", "crawler", ts("2026-03-02T11:00:00Z"));
    bot.bot = true;
    scenario.apply(LedgerEvent::Click(bot));
    let mut rejected = click(78, "clicks", "jane", "someone", ts("2026-03-02T11:00:00Z"));
    rejected.rejected = Some(model::events::Reason::LinkInactive);
    scenario.apply(LedgerEvent::Click(rejected));
    assert_eq!(scenario.earned("jane"), dec!(0.20));
    assert_eq!(scenario.ledger.counter(&member_id("jane"), &offer_id("clicks")).unique_clicks, 2);
}

#[test]
fn a_click_the_edge_saw_its_client_repeat_is_not_unique_whatever_its_cookie() {
    let program =
        ProgramBuilder::new().offer(offer("clicks", click_tiers())).enrolled("clicks", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    scenario.click("clicks", "jane", "first", ts("2026-03-01T10:00:00Z"));
    for n in 0..99u32 {
        // A new cookie every time, but the edge knows the client: a repeat.
        let mut again =
            click(1000 + u128::from(n), "clicks", "jane", &format!("fresh-{n}"), ts("2026-03-01T10:01:00Z"));
        again.client_repeat = true;
        scenario.apply(LedgerEvent::Click(again));
    }
    assert_eq!(scenario.earned("jane"), dec!(0.10), "100 clicks of one client pay once");
    assert_eq!(scenario.ledger.counter(&member_id("jane"), &offer_id("clicks")).unique_clicks, 1);
}

#[test]
fn seed_004_order_bands_are_upper_inclusive() {
    let bands = PayoutRule::OrderBands {
        bands: vec![
            OrderBand { up_to: Some(dec!(100)), rate: dec!(0.10) },
            OrderBand { up_to: Some(dec!(300)), rate: dec!(0.20) },
            OrderBand { up_to: None, rate: dec!(0.30) },
        ],
    };
    let program = ProgramBuilder::new().offer(offer("store", bands)).enrolled("store", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    for (order, amount) in [("A", dec!(100.00)), ("B", dec!(100.01)), ("C", dec!(300.00)), ("D", dec!(300.01))] {
        scenario.sale("store", "jane", order, amount, ts(DAY));
    }
    let paid: Vec<Decimal> = ["A", "B", "C", "D"].iter().map(|order| scenario.order_total(order)).collect();
    assert_eq!(paid, [dec!(10.00), dec!(20.00), dec!(60.00), dec!(90.00)]);
}

fn product_offer() -> PayoutRule {
    PayoutRule::Products {
        products: vec![
            ProductRule { sku: model::Sku::new("product1id").unwrap(), pays: ProductPay::Rate(dec!(0.10)) },
            ProductRule { sku: model::Sku::new("product2id").unwrap(), pays: ProductPay::PerUnit(dec!(5)) },
        ],
    }
}

#[test]
fn seed_004_product_rules_pay_a_share_of_the_item_or_per_unit() {
    let program =
        ProgramBuilder::new().offer(offer("store", product_offer())).enrolled("store", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    let order = |scenario: &mut Scenario, id: u128, order: &str, cart: &[(&str, Decimal, u32)]| {
        let mut conversion = sale(id, order, Decimal::ZERO, ts(DAY));
        conversion.amount = None;
        conversion.items = items(cart);
        scenario.order(attributed(conversion, "store", "jane"));
    };
    order(&mut scenario, 1, "P1", &[("product1id", dec!(100), 1)]);
    assert_eq!(scenario.order_total("P1"), dec!(10.00), "product1id=100 at 10%");
    order(&mut scenario, 2, "P2", &[("product2id", dec!(19.99), 5)]);
    assert_eq!(scenario.order_total("P2"), dec!(25.00), "5 units at $5");
    order(&mut scenario, 3, "P3", &[("other", dec!(80), 1)]);
    assert_eq!(scenario.order_total("P3"), dec!(0), "no selected product, no commission");
    assert!(scenario.tier_amounts("P3").is_empty());
    order(&mut scenario, 4, "P4", &[("product1id", dec!(40), 2), ("other", dec!(5), 1), ("product2id", dec!(1), 3)]);
    assert_eq!(scenario.order_total("P4"), dec!(23.00), "10% of 80 + 3 x $5");
    assert_eq!(scenario.tier_amounts("P4").len(), 2, "one line per product rule");
}

fn hosting() -> PayoutOption {
    PayoutOption {
        recurring: Some(RecurringTerms {
            name: "subscriptionsales".into(),
            rate: dec!(0.1),
            every: Interval::Months(1),
        }),
        ..option("default", "sale", cps(dec!(0.30)))
    }
}

fn hosting_sale(scenario: &mut Scenario, order: &str, at: &str) {
    let mut conversion = sale(900, order, dec!(50), ts(at));
    conversion.recurring_amount = Some(dec!(29.95));
    scenario.order(attributed(conversion, "hosting", "tom"));
}

#[test]
fn seed_004_hosting_pays_thirty_percent_of_setup_then_ten_percent_monthly_until_cancelled() {
    let program = ProgramBuilder::new()
        .offer(offer_with_options("hosting", vec![hosting()]))
        .enrolled("hosting", [member("tom")])
        .build();
    let mut scenario = Scenario::new(program);
    hosting_sale(&mut scenario, "H1", "2026-01-15T09:00:00Z");
    assert_eq!(scenario.earned("tom"), dec!(15.00), "30% of the $50 setup fee");
    let account = &scenario.subscriptions[&order_key("H1")];
    assert_eq!(
        (account.name.as_str(), account.recurring_amount, account.status),
        ("subscriptionsales", dec!(29.95), SubscriptionStatus::Active)
    );

    assert!(scenario.advance(ts("2026-02-15T08:59:59Z")).lines.is_empty(), "not due before a month has passed");
    let credit = scenario.advance(ts("2026-02-15T09:00:00Z")).lines;
    assert_eq!(credit.len(), 1);
    assert_eq!(credit[0].amount, dec!(3.00), "10% of 29.95 = 2.995 -> 3.00");
    assert_eq!(credit[0].kind, LineKind::Recurring);
    assert_eq!(credit[0].description, "Subscription => subscriptionsales Commission => 3.00");
    assert_eq!(credit[0].earned_at, ts("2026-02-15T09:00:00Z"));

    scenario.advance(ts("2026-03-16T00:00:00Z"));
    assert_eq!(scenario.earned("tom"), dec!(21.00));
    scenario.cancel("H1", ts("2026-03-20T00:00:00Z"));
    scenario.advance(ts("2026-12-31T00:00:00Z"));
    assert_eq!(scenario.earned("tom"), dec!(21.00), "no credits after the cancel");
    assert_eq!(scenario.subscriptions[&order_key("H1")].credits, 2);
    assert_eq!(scenario.subscriptions[&order_key("H1")].status, SubscriptionStatus::Cancelled);
}

#[test]
fn credits_due_before_a_cancel_are_still_paid_when_processed_late() {
    let program = ProgramBuilder::new()
        .offer(offer_with_options("hosting", vec![hosting()]))
        .enrolled("hosting", [member("tom")])
        .build();
    let mut scenario = Scenario::new(program);
    hosting_sale(&mut scenario, "H1", "2026-01-15T09:00:00Z");
    scenario.cancel("H1", ts("2026-04-01T00:00:00Z"));
    scenario.advance(ts("2026-06-01T00:00:00Z"));
    assert_eq!(scenario.earned("tom"), dec!(21.00), "15.00 + Feb 15 and Mar 15 (2 x 3.00), not Apr 15");
    assert_eq!(scenario.subscriptions[&order_key("H1")].credits, 2);
}

#[test]
fn seed_004_a_members_future_rate_and_interval_can_change() {
    let program = ProgramBuilder::new()
        .offer(offer_with_options("hosting", vec![hosting()]))
        .enrolled("hosting", [member("tom")])
        .build();
    let mut scenario = Scenario::new(program);
    hosting_sale(&mut scenario, "H1", "2026-01-15T09:00:00Z");
    scenario.advance(ts("2026-02-15T09:00:00Z"));
    scenario.apply(LedgerEvent::SubscriptionTerms {
        id: EventId::from_u128(5),
        order_key: order_key("H1"),
        rate: dec!(0.2),
        every: Interval::Days(14),
        at: ts("2026-02-20T00:00:00Z"),
        actor: "test".into(),
    });
    assert!(scenario.advance(ts("2026-03-01T08:59:59Z")).lines.is_empty());
    let credit = scenario.advance(ts("2026-03-01T09:00:00Z")).lines;
    assert_eq!(credit[0].amount, dec!(5.99), "20% of 29.95, 14 days after the last credit");
    assert_eq!(credit[0].description, "Subscription => subscriptionsales Commission => 5.99");
}

#[test]
fn a_rejected_first_sale_closes_its_subscription() {
    let pending_hosting = PayoutOption { pending: true, ..hosting() };
    let program = ProgramBuilder::new()
        .offer(offer_with_options("hosting", vec![pending_hosting]))
        .enrolled("hosting", [member("tom")])
        .build();
    let mut scenario = Scenario::new(program);
    hosting_sale(&mut scenario, "H1", "2026-01-15T09:00:00Z");
    scenario.decide("H1", Verdict::Reject, ts("2026-01-20T00:00:00Z"));
    scenario.advance(ts("2026-06-01T00:00:00Z"));
    assert_eq!(scenario.earned("tom"), dec!(0));
    assert_eq!(scenario.subscriptions[&order_key("H1")].status, SubscriptionStatus::Closed);
}

fn accumulated() -> PayoutRule {
    PayoutRule::Accumulated {
        thresholds: vec![
            MonthlyThreshold { from: dec!(0), rate: dec!(0.10) },
            MonthlyThreshold { from: dec!(300), rate: dec!(0.20) },
            MonthlyThreshold { from: dec!(600), rate: dec!(0.30) },
        ],
    }
}

#[test]
fn seed_004_accumulated_monthly_tiers_step_up_at_300_and_600_and_reset_on_the_first() {
    let program =
        ProgramBuilder::new().offer(offer("store", accumulated())).enrolled("store", [member("jane")]).build();
    let mut scenario = Scenario::new(program);
    let sales = [
        ("M1", dec!(200), "2026-03-02T10:00:00Z", dec!(20.00)), // before 0: 10%
        ("M2", dec!(100), "2026-03-05T10:00:00Z", dec!(10.00)), // before 200: 10%
        ("M3", dec!(100), "2026-03-09T10:00:00Z", dec!(20.00)), // before 300: 20%
        ("M4", dec!(200), "2026-03-20T10:00:00Z", dec!(40.00)), // before 400: 20%
        ("M5", dec!(100), "2026-03-31T23:59:59Z", dec!(30.00)), // before 600: 30%
        ("M6", dec!(100), "2026-04-01T00:00:00Z", dec!(10.00)), // a new month: 10%
    ];
    for (order, amount, at, _) in &sales {
        scenario.sale("store", "jane", order, *amount, ts(at));
    }
    let paid: Vec<Decimal> = sales.iter().map(|(order, ..)| scenario.order_total(order)).collect();
    let expected: Vec<Decimal> = sales.iter().map(|(.., commission)| *commission).collect();
    assert_eq!(paid, expected);
}

/// The month's sales are kept whole: rejecting an early sale re-prices a later one of the month
/// even when that one is days old, so the result does not depend on which arrived first.
#[test]
fn rejecting_an_early_sale_reprices_the_month_however_old_the_later_sales_are() {
    let program =
        ProgramBuilder::new().offer(offer("store", accumulated())).enrolled("store", [member("jane")]).build();
    let mut rejected_last = Scenario::new(program.clone());
    rejected_last.sale("store", "jane", "M1", dec!(300), ts("2026-03-02T10:00:00Z"));
    rejected_last.sale("store", "jane", "M2", dec!(100), ts("2026-03-05T10:00:00Z")); // before 300: 20%
    rejected_last.sale("store", "jane", "M3", dec!(100), ts("2026-03-25T10:00:00Z")); // settles M2's place
    assert_eq!(rejected_last.order_total("M2"), dec!(20.00));
    rejected_last.decide("M1", Verdict::Reject, ts("2026-03-26T00:00:00Z"));
    // M1 never happened for the counts: M2 had 0 before it (10%), M3 100 (10%).
    assert_eq!([rejected_last.order_total("M2"), rejected_last.order_total("M3")], [dec!(10.00), dec!(10.00)]);

    let mut rejected_first = Scenario::new(program);
    rejected_first.sale("store", "jane", "M1", dec!(300), ts("2026-03-02T10:00:00Z"));
    rejected_first.decide("M1", Verdict::Reject, ts("2026-03-03T00:00:00Z"));
    rejected_first.sale("store", "jane", "M2", dec!(100), ts("2026-03-05T10:00:00Z"));
    rejected_first.sale("store", "jane", "M3", dec!(100), ts("2026-03-25T10:00:00Z"));
    assert_eq!([rejected_first.order_total("M2"), rejected_first.order_total("M3")], [dec!(10.00), dec!(10.00)]);
}

#[test]
fn accumulated_months_follow_the_program_time_zone() {
    let settings = ProgramSettings { time_zone: "America/New_York".into(), ..ProgramSettings::default() };
    let program = ProgramBuilder::new()
        .settings(settings)
        .offer(offer("store", accumulated()))
        .enrolled("store", [member("jane")])
        .build();
    let mut scenario = Scenario::new(program);
    scenario.sale("store", "jane", "M1", dec!(700), ts("2026-03-31T12:00:00Z"));
    // 02:00 UTC on April 1st is still March 31st in New York.
    scenario.sale("store", "jane", "M2", dec!(100), ts("2026-04-01T02:00:00Z"));
    scenario.sale("store", "jane", "M3", dec!(100), ts("2026-04-01T05:00:00Z"));
    assert_eq!([scenario.order_total("M2"), scenario.order_total("M3")], [dec!(30.00), dec!(10.00)]);
}

#[test]
fn seed_001_per_member_overrides_raise_a_rate_and_switch_cpc_to_sales() {
    let cpc = PayoutRule::Cpc { per_click: Tiered::flat(dec!(0.10)) };
    let mut program = ProgramBuilder::new()
        .offer(offer("store", cps(dec!(0.10))))
        .offer(offer("clicks", cpc))
        .enrolled("store", [member("jane"), member("tom")])
        .enrolled("clicks", [member("ann")])
        .build();
    let mut raise = enrol("store", "jane");
    raise.payout_override = Some(cps(dec!(0.15)));
    program.apply(ProgramChange::Enrolment(raise)).unwrap();
    let mut switch = enrol("clicks", "ann");
    switch.payout_override = Some(cps(dec!(0.05)));
    program.apply(ProgramChange::Enrolment(switch)).unwrap();

    let mut scenario = Scenario::new(program);
    scenario.sale("store", "jane", "J1", dec!(200), ts(DAY));
    scenario.sale("store", "tom", "T1", dec!(200), ts(DAY));
    scenario.click("clicks", "ann", "visitor-1", ts(DAY));
    scenario.sale("clicks", "ann", "A1", dec!(200), ts(DAY));
    assert_eq!(scenario.order_total("J1"), dec!(30.00), "jane moved from 10% to 15%");
    assert_eq!(scenario.order_total("T1"), dec!(20.00), "tom stays on the offer's 10%");
    assert_eq!(scenario.earned("ann"), dec!(10.00), "ann's clicks no longer pay; 5% of her sales do");
}

#[test]
fn seed_001_members_follow_their_payout_option_or_the_default() {
    let standard = option("standard", "sale", cps(dec!(0.10)));
    let vip = option("vip", "sale", cps(dec!(0.20)));
    let mut store = offer_with_options("store", vec![standard, vip]);
    let mut program =
        ProgramBuilder::new().offer(store.clone()).enrolled("store", [member("jane"), member("tom")]).build();
    let mut move_tom = enrol("store", "tom");
    move_tom.payout_option = Some(PayoutOptionId::new("vip").unwrap());
    program.apply(ProgramChange::Enrolment(move_tom)).unwrap();

    let mut scenario = Scenario::new(program.clone());
    scenario.sale("store", "jane", "J1", dec!(100), ts(DAY));
    scenario.sale("store", "tom", "T1", dec!(100), ts(DAY));
    assert_eq!([scenario.order_total("J1"), scenario.order_total("T1")], [dec!(10.00), dec!(20.00)]);

    store.default_payout = PayoutOptionId::new("vip").unwrap();
    program.apply(ProgramChange::Offer(store)).unwrap();
    scenario.program = program;
    scenario.sale("store", "jane", "J2", dec!(100), ts(DAY));
    assert_eq!(scenario.order_total("J2"), dec!(20.00), "jane follows the new default");
}

#[test]
fn seed_004_pending_sales_wait_for_approve_or_reject() {
    let pending = PayoutOption { pending: true, ..with_tiers(cps(dec!(0.10)), Some(dec!(0.5)), None) };
    let mut scenario = parent_and_child(PayoutOption { name: "Pending_sale".into(), ..pending });
    scenario.sale("store", "kid", "A1", dec!(500), ts(DAY));
    scenario.sale("store", "kid", "A2", dec!(300), ts(DAY));
    let line =
        scenario.lines_of("kid").into_iter().find(|line| line.order_key == Some(order_key("A1"))).unwrap().clone();
    assert_eq!((line.status, line.amount, line.keyword.as_str()), (LineStatus::Pending, dec!(50.00), "Pending_sale"));
    assert_eq!(line.description, "Pending: CPS: 10% of 500");

    scenario.decide("A1", Verdict::Approve, ts("2026-03-20T00:00:00Z"));
    scenario.decide("A2", Verdict::Reject, ts("2026-03-20T00:00:00Z"));
    let status_of = |scenario: &Scenario, member: &str, order: &str| {
        let line = scenario.lines_of(member).into_iter().find(|line| line.order_key == Some(order_key(order))).unwrap();
        (line.status, line.amount)
    };
    assert_eq!(status_of(&scenario, "kid", "A1"), (LineStatus::Approved, dec!(50.00)));
    assert_eq!(status_of(&scenario, "parent", "A1"), (LineStatus::Approved, dec!(25.00)));
    assert_eq!(status_of(&scenario, "kid", "A2"), (LineStatus::Rejected, dec!(0)), "a rejected sale pays 0");
    assert_eq!(status_of(&scenario, "parent", "A2"), (LineStatus::Rejected, dec!(0)));

    let again = scenario.decide("A1", Verdict::Reject, ts("2026-03-21T00:00:00Z"));
    assert!(again.lines.iter().all(|line| line.order_key == Some(order_key("A1"))));
}

#[test]
fn a_hold_period_approves_pending_lines_by_itself() {
    let held = PayoutOption { pending: true, hold: Some(Span::days(30)), ..option("default", "sale", cps(dec!(0.10))) };
    let program = ProgramBuilder::new()
        .offer(offer_with_options("store", vec![held]))
        .enrolled("store", [member("jane")])
        .build();
    let mut scenario = Scenario::new(program);
    scenario.sale("store", "jane", "A1", dec!(100), ts("2026-03-01T00:00:00Z"));
    scenario.advance(ts("2026-03-30T23:59:59Z"));
    assert_eq!(scenario.lines_of("jane")[0].status, LineStatus::Pending);
    scenario.advance(ts("2026-03-31T00:00:00Z"));
    assert_eq!(scenario.lines_of("jane")[0].status, LineStatus::Approved);
}

#[test]
fn refunds_before_billing_reduce_lines_in_proportion() {
    let mut scenario = parent_and_child(with_tiers(cps(dec!(0.10)), Some(dec!(0.5)), None));
    scenario.sale("store", "kid", "A1", dec!(200), ts(DAY));
    scenario.refund("A1", Some(dec!(50)), ts("2026-03-11T00:00:00Z"));
    assert_eq!(amounts(&scenario, "A1"), [("kid".into(), 1, dec!(15.00)), ("parent".into(), 2, dec!(7.50))]);
    scenario.refund("A1", None, ts("2026-03-12T00:00:00Z"));
    assert_eq!(scenario.order_total("A1"), dec!(0));
    assert!(scenario.lines.values().all(|line| line.status == LineStatus::Reversed));
}

#[test]
fn a_refund_after_billing_becomes_a_negative_adjustment_in_the_next_bill() {
    let mut scenario = parent_and_child(with_tiers(cps(dec!(0.10)), Some(dec!(0.5)), None));
    scenario.sale("store", "kid", "A1", dec!(100), ts("2026-03-10T00:00:00Z"));
    scenario.bill_run(ts("2026-04-01T00:00:00Z"));
    scenario.refund("A1", Some(dec!(40)), ts("2026-04-05T00:00:00Z"));

    let adjustments: Vec<_> = scenario.lines.values().filter(|line| line.kind == LineKind::Adjustment).collect();
    assert_eq!(adjustments.len(), 2);
    let mut kid_amounts: Vec<Decimal> = scenario.lines_of("kid").iter().map(|line| line.amount).collect();
    kid_amounts.sort();
    assert_eq!(kid_amounts, [dec!(-4.00), dec!(10.00)], "the billed line keeps 10.00; 40% of it comes back as -4.00");
    assert_eq!(scenario.order_total("A1"), dec!(9.00), "10.00 + 5.00 billed, -4.00 and -2.00 adjusted");

    scenario.sale("store", "kid", "A2", dec!(100), ts("2026-04-10T00:00:00Z"));
    scenario.bill_run(ts("2026-05-01T00:00:00Z"));
    let may = |member: &str| {
        scenario
            .bills
            .values()
            .find(|bill| bill.member.as_str() == member && bill.period_end == ts("2026-05-01T00:00:00Z"))
            .map(|bill| (bill.total, bill.lines, bill.status))
    };
    assert_eq!(may("kid"), Some((dec!(6.00), 2, BillStatus::Unpaid)), "10.00 - 4.00");
    assert_eq!(may("parent"), Some((dec!(3.00), 2, BillStatus::Unpaid)), "5.00 - 2.00");
}

#[test]
fn seed_003_bills_carry_over_under_the_minimum_payout_and_can_be_paid() {
    let mut jane = member("jane");
    jane.minimum_payout = dec!(50);
    let program = ProgramBuilder::new().offer(offer("store", cps(dec!(0.10)))).enrolled("store", [jane]).build();
    let mut scenario = Scenario::new(program);
    scenario.sale("store", "jane", "A1", dec!(300), ts("2026-01-10T00:00:00Z"));
    let january = scenario.bill_run(ts("2026-02-01T00:00:00Z"));
    assert_eq!(january.bills.len(), 1);
    assert_eq!((january.bills[0].total, january.bills[0].status), (dec!(30.00), BillStatus::CarriedOver));
    assert_eq!(scenario.lines_of("jane")[0].status, LineStatus::Approved, "carried-over lines stay unbilled");

    scenario.sale("store", "jane", "A2", dec!(250), ts("2026-02-10T00:00:00Z"));
    scenario.sale("store", "jane", "A3", dec!(100), ts("2026-03-02T00:00:00Z"));
    let february = scenario.bill_run(ts("2026-03-01T00:00:00Z"));
    let bill = february.bills[0].clone();
    assert_eq!((bill.total, bill.lines, bill.status), (dec!(55.00), 2, BillStatus::Unpaid), "30 + 25; March waits");
    assert!(scenario.bill_run(ts("2026-03-01T00:00:00Z")).bills.is_empty(), "a repeated run bills nothing twice");

    scenario.pay(&bill.id, ts("2026-03-05T00:00:00Z"));
    assert_eq!(scenario.bills[&bill.id].status, BillStatus::Paid);
    let statuses: Vec<LineStatus> = scenario.lines_of("jane").iter().map(|line| line.status).collect();
    assert_eq!(statuses.iter().filter(|status| **status == LineStatus::Paid).count(), 2);
    assert_eq!(statuses.iter().filter(|status| **status == LineStatus::Approved).count(), 1);
}

#[test]
fn seed_004_recruiting_pays_the_parent_and_its_tiers_when_a_child_is_approved() {
    let settings = ProgramSettings {
        recruiting: Some(RecruitingRule { amount: dec!(5), tier2: Some(dec!(0.5)), tier3: None }),
        ..ProgramSettings::default()
    };
    let program = ProgramBuilder::new()
        .settings(settings)
        .offer(offer("store", cps(dec!(0.1))))
        .member(member("grand"))
        .member(child("parent", "grand"))
        .member(child("kid", "parent"))
        .build();
    let mut scenario = Scenario::new(program);
    let approved = LedgerEvent::MemberApproved { id: EventId::from_u128(9), member: member_id("kid"), at: ts(DAY) };
    scenario.apply(approved.clone());
    assert_eq!(scenario.earned("parent"), dec!(5.00));
    assert_eq!(scenario.earned("grand"), dec!(2.50));
    assert_eq!(scenario.lines_of("parent")[0].kind, LineKind::Recruiting);
    assert!(scenario.apply(approved).lines.is_empty(), "recruiting pays once per child");
}

#[test]
fn only_the_first_conversion_of_an_order_earns() {
    let program = ProgramBuilder::new()
        .offer(offer("store", cps(dec!(0.10))))
        .enrolled("store", [member("jane"), member("tom")])
        .build();
    let mut scenario = Scenario::new(program);
    scenario.sale("store", "jane", "A1", dec!(100), ts(DAY));
    assert!(scenario.sale("store", "tom", "A1", dec!(100), ts(DAY)).is_empty());
    assert_eq!((scenario.earned("jane"), scenario.earned("tom")), (dec!(10.00), dec!(0)));
}
