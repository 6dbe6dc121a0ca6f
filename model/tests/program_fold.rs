//! The program fold: every refused change has its typed error and leaves the program as it was.

use clickledger_model as model;

use model::ids::{LinkCode, PayoutOptionId, PromoCode};
use model::program::{
    MemberStatus, OrderBand, PayoutRule, Program, ProgramChange, ProgramError, ProgramFile, PromoCodeGrant,
    RecurringOverride, TierLine, Tiered, TrackingLink,
};
use model::testkit::*;
use model::{Interval, Span};
use rust_decimal_macros::dec;

fn base() -> ProgramBuilder {
    ProgramBuilder::new().offer(offer("summer", cps(dec!(0.10)))).enrolled("summer", [member("jane"), member("tom")])
}

fn refused(program: &mut Program, change: ProgramChange) -> ProgramError {
    let before = format!("{program:?}");
    let error = program.apply(change).expect_err("change must be refused");
    assert_eq!(format!("{program:?}"), before, "a refused change must leave the program unchanged");
    error
}

#[test]
fn an_enrolment_naming_an_unknown_payout_option_is_refused() {
    let mut program = base().build();
    let mut enrolment = enrol("summer", "jane");
    enrolment.payout_option = Some(PayoutOptionId::new("vip").unwrap());
    let error = refused(&mut program, ProgramChange::Enrolment(enrolment));
    assert_eq!(error.code(), "unknown_payout_option");
}

#[test]
fn an_offer_whose_default_option_does_not_exist_is_refused() {
    let mut program = base().build();
    let mut summer = offer("summer", cps(dec!(0.10)));
    summer.default_payout = PayoutOptionId::new("missing").unwrap();
    assert_eq!(refused(&mut program, ProgramChange::Offer(summer)).code(), "unknown_payout_option");
}

#[test]
fn negative_and_overlapping_tiers_are_refused() {
    let mut program = base().build();
    let negative = PayoutRule::Cpc { per_click: Tiered(vec![TierLine { from: 1, value: dec!(-0.10) }]) };
    assert_eq!(refused(&mut program, ProgramChange::Offer(offer("clicks", negative))).code(), "negative_value");

    let overlapping = PayoutRule::Cpc {
        per_click: Tiered(vec![TierLine { from: 1, value: dec!(0.10) }, TierLine { from: 1, value: dec!(0.20) }]),
    };
    assert_eq!(refused(&mut program, ProgramChange::Offer(offer("clicks", overlapping))).code(), "invalid_tiers");

    let late_start = PayoutRule::Cpc { per_click: Tiered(vec![TierLine { from: 2, value: dec!(0.10) }]) };
    assert_eq!(refused(&mut program, ProgramChange::Offer(offer("clicks", late_start))).code(), "invalid_tiers");

    let unordered_bands = PayoutRule::OrderBands {
        bands: vec![
            OrderBand { up_to: Some(dec!(300)), rate: dec!(0.10) },
            OrderBand { up_to: Some(dec!(100)), rate: dec!(0.20) },
            OrderBand { up_to: None, rate: dec!(0.30) },
        ],
    };
    assert_eq!(refused(&mut program, ProgramChange::Offer(offer("bands", unordered_bands))).code(), "invalid_tiers");

    let over_100_percent = cps(dec!(1.5));
    assert_eq!(refused(&mut program, ProgramChange::Offer(offer("greedy", over_100_percent))).code(), "invalid");
}

#[test]
fn a_promo_code_already_used_by_another_member_is_refused() {
    let mut program = base().build();
    let grant = |member: &str| PromoCodeGrant {
        code: PromoCode::new("jane20").unwrap(),
        offer: offer_id("summer"),
        member: member_id(member),
        active: true,
        starts_at: None,
        ends_at: None,
    };
    program.apply(ProgramChange::Code(grant("jane"))).unwrap();
    let error = refused(&mut program, ProgramChange::Code(grant("tom")));
    assert_eq!(error.code(), "code_taken");
    assert_eq!(error.to_string(), "promo code JANE20 already belongs to member jane in offer summer");

    // The owner may change its own code (deactivate it, move its dates).
    let mut inactive = grant("jane");
    inactive.active = false;
    program.apply(ProgramChange::Code(inactive)).unwrap();
    assert!(!program.code(&PromoCode::new("JANE20").unwrap()).unwrap().active);
}

#[test]
fn a_link_code_already_used_is_refused_and_deep_links_must_be_allowed() {
    let mut program = base().build();
    let link = |member: &str, deep_url: Option<&str>| TrackingLink {
        code: LinkCode::new("jane-summer").unwrap(),
        offer: offer_id("summer"),
        member: member_id(member),
        deep_url: deep_url.map(str::to_string),
        active: true,
    };
    program.apply(ProgramChange::Link(link("jane", Some("https://shop.example.com/p/1")))).unwrap();
    assert_eq!(refused(&mut program, ProgramChange::Link(link("tom", None))).code(), "link_code_taken");
    assert_eq!(
        refused(&mut program, ProgramChange::Link(link("jane", Some("https://evil.example.net/")))).code(),
        "deep_link_not_allowed"
    );
}

#[test]
fn parent_cycles_and_parent_changes_are_refused() {
    let mut program = base().build();
    assert_eq!(refused(&mut program, ProgramChange::Member(child("ann", "ann"))).code(), "parent_cycle");
    assert_eq!(refused(&mut program, ProgramChange::Member(child("ann", "nobody"))).code(), "unknown_member");
    program.apply(ProgramChange::Member(child("ann", "jane"))).unwrap();
    assert_eq!(refused(&mut program, ProgramChange::Member(child("ann", "tom"))).code(), "parent_immutable");
    assert_eq!(refused(&mut program, ProgramChange::Member(child("jane", "ann"))).code(), "parent_immutable");
}

#[test]
fn links_and_codes_need_an_enrolment() {
    let mut program = base().member(member("solo")).build();
    let link = TrackingLink {
        code: LinkCode::new("solo-1").unwrap(),
        offer: offer_id("summer"),
        member: member_id("solo"),
        deep_url: None,
        active: true,
    };
    assert_eq!(refused(&mut program, ProgramChange::Link(link)).code(), "not_enrolled");
}

#[test]
fn a_deleted_member_cannot_change() {
    let mut program = base().build();
    let mut jane = member("jane");
    jane.status = MemberStatus::Deleted;
    program.apply(ProgramChange::Member(jane.clone())).unwrap();
    jane.status = MemberStatus::Approved;
    assert_eq!(refused(&mut program, ProgramChange::Member(jane)).code(), "member_deleted");
}

#[test]
fn removing_a_payout_option_still_in_use_is_refused() {
    let vip = option("vip", "sale", cps(dec!(0.15)));
    let both = offer_with_options("summer", vec![option("default", "sale", cps(dec!(0.10))), vip]);
    let mut program = base().offer(both).build();
    let mut enrolment = enrol("summer", "jane");
    enrolment.payout_option = Some(PayoutOptionId::new("vip").unwrap());
    program.apply(ProgramChange::Enrolment(enrolment)).unwrap();
    let error = refused(&mut program, ProgramChange::Offer(offer("summer", cps(dec!(0.10)))));
    assert_eq!(error.code(), "payout_option_in_use");
}

#[test]
fn per_member_overrides_replace_the_option_rule_seed_001() {
    // Seed 001: increase a member's commission from 10% to 15%, or move a member from cost per
    // click to a percentage of sales.
    let cpc = PayoutRule::Cpc { per_click: Tiered::flat(dec!(0.10)) };
    let mut program = base().offer(offer("clicks", cpc)).enrolled("clicks", [member("ann")]).build();
    let mut raise = enrol("summer", "jane");
    raise.payout_override = Some(cps(dec!(0.15)));
    program.apply(ProgramChange::Enrolment(raise)).unwrap();
    let mut switch = enrol("clicks", "ann");
    switch.payout_override = Some(cps(dec!(0.05)));
    program.apply(ProgramChange::Enrolment(switch)).unwrap();

    assert_eq!(program.payout(&offer_id("summer"), &member_id("jane")).unwrap().rule, &cps(dec!(0.15)));
    assert_eq!(program.payout(&offer_id("summer"), &member_id("tom")).unwrap().rule, &cps(dec!(0.10)));
    assert_eq!(program.payout(&offer_id("clicks"), &member_id("ann")).unwrap().rule, &cps(dec!(0.05)));
    assert!(program.payout(&offer_id("clicks"), &member_id("jane")).is_none(), "jane is not enrolled in clicks");
}

#[test]
fn recurring_overrides_change_rate_and_interval() {
    let mut hosting = option("default", "sale", cps(dec!(0.30)));
    hosting.recurring = Some(model::program::RecurringTerms {
        name: "subscriptionsales".into(),
        rate: dec!(0.10),
        every: Interval::Months(1),
    });
    let mut program =
        base().offer(offer_with_options("hosting", vec![hosting])).enrolled("hosting", [member("ann")]).build();
    let terms = program.payout(&offer_id("hosting"), &member_id("ann")).unwrap().recurring().unwrap();
    assert_eq!((terms.rate, terms.every), (dec!(0.10), Interval::Months(1)));

    let mut enrolment = enrol("hosting", "ann");
    enrolment.recurring_override = Some(RecurringOverride { rate: dec!(0.12), every: Interval::Days(14) });
    program.apply(ProgramChange::Enrolment(enrolment)).unwrap();
    let terms = program.payout(&offer_id("hosting"), &member_id("ann")).unwrap().recurring().unwrap();
    assert_eq!((terms.name.as_str(), terms.rate, terms.every), ("subscriptionsales", dec!(0.12), Interval::Days(14)));
}

#[test]
fn tier_ancestors_stop_at_a_disabled_or_deleted_member() {
    // Seed 004 tree: AID1 (3rd tier) <- AID4 (2nd tier) <- AID5 (1st tier).
    let tree = || {
        ProgramBuilder::new()
            .offer(offer("summer", cps(dec!(0.10))))
            .member(member("aid1"))
            .member(child("aid4", "aid1"))
            .member(child("aid5", "aid4"))
    };
    let names = |program: &Program, id: &str| {
        program.tier_ancestors(&member_id(id)).iter().map(|member| member.id.to_string()).collect::<Vec<_>>()
    };
    let program = tree().build();
    assert_eq!(names(&program, "aid5"), ["aid4", "aid1"]);
    assert_eq!(names(&program, "aid4"), ["aid1"]);
    assert_eq!(program.family_of(&member_id("aid5")).as_str(), "aid1");

    for status in [MemberStatus::Stopped, MemberStatus::Deleted, MemberStatus::Denied] {
        let mut disabled = child("aid4", "aid1");
        disabled.status = status;
        let program = tree().member(disabled).build();
        assert!(names(&program, "aid5").is_empty(), "{status:?} aid4 cuts off itself and aid1");
    }

    let mut stopped_earner = child("aid5", "aid4");
    stopped_earner.status = MemberStatus::Stopped;
    let program = tree().member(stopped_earner).build();
    assert!(names(&program, "aid5").is_empty(), "a disabled earner gives no tier lines");
}

#[test]
fn follow_accepts_records_in_compacted_order() {
    // Compaction can put an enrolment before the latest version of its offer.
    let mut program = Program::new();
    program.follow(ProgramChange::Enrolment(enrol("summer", "jane"))).unwrap();
    program.follow(ProgramChange::Member(member("jane"))).unwrap();
    program.follow(ProgramChange::Offer(offer("summer", cps(dec!(0.10))))).unwrap();
    assert!(program.payout(&offer_id("summer"), &member_id("jane")).is_some());
    // Checks of the record alone still apply.
    assert_eq!(program.follow(ProgramChange::Offer(offer("bad", cps(dec!(-1))))).unwrap_err().code(), "negative_value");
}

#[test]
fn change_keys_name_one_entity_each() {
    assert_eq!(ProgramChange::Offer(offer("summer", cps(dec!(0.1)))).key(), "offer:summer");
    assert_eq!(ProgramChange::Enrolment(enrol("summer", "jane")).key(), "enrolment:summer:jane");
    assert_eq!(ProgramChange::Member(member("jane")).key(), "member:jane");
}

#[test]
fn a_program_file_loads_parents_before_children() {
    let text = r#"
        [settings]
        name = "Acme affiliates"
        currency = "USD"
        time_zone = "Europe/Berlin"

        [[advertiser]]
        id = "acme"
        name = "Acme"
        secrets = [{ secret = "acme-postback-secret-0001" }]

        [[offer]]
        id = "summer"
        advertiser = "acme"
        name = "Summer sale"
        url = "https://shop.example.com/summer"
        currency = "USD"
        cookie_window = "45d"
        default_payout = "standard"

        [[offer.payout_options]]
        id = "standard"
        name = "sale"
        tier2 = "0.5"
        rule = { type = "cps", rate = [{ from = 1, value = "0.10" }] }

        [[member]]
        id = "child"
        name = "Child"
        status = "approved"
        parent = "root"
        joined_at = "2026-01-02T00:00:00Z"

        [[member]]
        id = "root"
        name = "Root"
        status = "approved"
        joined_at = "2026-01-01T00:00:00Z"

        [[enrolment]]
        offer = "summer"
        member = "child"

        [[code]]
        code = "child10"
        offer = "summer"
        member = "child"
    "#;
    let file = ProgramFile::from_toml(text).unwrap();
    let program = Program::from_changes(file.into_changes()).unwrap();
    assert_eq!(program.time_zone(), chrono_tz::Europe::Berlin);
    assert_eq!(program.offer(&offer_id("summer")).unwrap().cookie_window, Span::days(45));
    assert_eq!(program.code(&PromoCode::new("CHILD10").unwrap()).unwrap().member, member_id("child"));
    assert_eq!(program.payout(&offer_id("summer"), &member_id("child")).unwrap().option.tier2, Some(dec!(0.5)));

    let typo = text.replace("cookie_window", "cookie_windw");
    assert!(ProgramFile::from_toml(&typo).unwrap_err().contains("cookie_windw"));
}
