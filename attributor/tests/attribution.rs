//! Attribution rules, each with the outcome a user would see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clickledger_attributor::attribution::{Outcome, RecentClick, attribute};
use model::clickid::{ClickClaims, ClickKeyRing};
use model::events::{Conversion, ConversionSource, Reason, Via};
use model::ids::{EventId, PromoCode};
use model::program::{AttributionModel, CodePrecedence, MemberStatus, Program, ProgramChange, PromoCodeGrant};
use model::testkit::*;
use model::{Currency, Span, Timestamp};
use rust_decimal_macros::dec;

const KEYS: &str = "1:attribution-test-key-attribution-test";

fn keys() -> ClickKeyRing {
    ClickKeyRing::parse(KEYS).unwrap()
}

fn program_with(configure: impl FnOnce(&mut model::program::Offer)) -> Program {
    let mut summer = offer("summer", cps(dec!(0.1)));
    summer.cookie_window = Span::days(30);
    configure(&mut summer);
    let mut short = member("short");
    short.cookie_window = Some(Span::days(1));
    let mut pending = member("pending");
    pending.status = MemberStatus::Pending;
    ProgramBuilder::new()
        .offer(summer)
        .offer(offer("winter", cps(dec!(0.1))))
        .enrolled("summer", [member("jane"), member("tom"), short, pending])
        .member(member("loner"))
        .change(ProgramChange::Code(PromoCodeGrant {
            code: PromoCode::new("JANE20").unwrap(),
            offer: offer_id("summer"),
            member: member_id("jane"),
            active: true,
            starts_at: Some(ts("2026-01-01T00:00:00Z")),
            ends_at: Some(ts("2026-12-31T00:00:00Z")),
        }))
        .change(ProgramChange::Code(PromoCodeGrant {
            code: PromoCode::new("OLD10").unwrap(),
            offer: offer_id("summer"),
            member: member_id("jane"),
            active: false,
            starts_at: None,
            ends_at: None,
        }))
        .build()
}

fn program() -> Program {
    program_with(|_| {})
}

fn recent(id: u128, member: &str, at: &str) -> RecentClick {
    RecentClick { id: event_id(id), at: ts(at), offer: offer_id("summer"), member: member_id(member), trace: None }
}

fn pixel(at: &str) -> Conversion {
    Conversion {
        source: ConversionSource::Pixel,
        offer: Some(offer_id("summer")),
        visitor: Some(visitor("v1")),
        ..sale(100, "A-1", dec!(50), ts(at))
    }
}

fn member_of(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Attributed { member, .. } => Some(member.as_str()),
        Outcome::Rejected { .. } => None,
    }
}

fn reason_of(outcome: &Outcome) -> Option<Reason> {
    match outcome {
        Outcome::Rejected { reason, .. } => Some(*reason),
        Outcome::Attributed { .. } => None,
    }
}

#[test]
fn the_last_click_in_the_window_wins_across_members() {
    let clicks = [recent(1, "jane", "2026-03-01T10:00:00Z"), recent(2, "tom", "2026-03-05T10:00:00Z")];
    let outcome = attribute(&program(), &keys(), &pixel("2026-03-10T10:00:00Z"), &clicks);
    assert_eq!(member_of(&outcome), Some("tom"));
    assert!(matches!(outcome, Outcome::Attributed { via: Via::Cookie { click, .. }, .. } if click == event_id(2)));
}

#[test]
fn the_first_click_wins_when_the_offer_says_so() {
    let program = program_with(|offer| offer.attribution = AttributionModel::FirstClick);
    let clicks = [recent(1, "jane", "2026-03-01T10:00:00Z"), recent(2, "tom", "2026-03-05T10:00:00Z")];
    assert_eq!(member_of(&attribute(&program, &keys(), &pixel("2026-03-10T10:00:00Z"), &clicks)), Some("jane"));
}

#[test]
fn clicks_outside_the_cookie_window_do_not_count() {
    let clicks = [recent(1, "jane", "2026-03-01T10:00:00Z")];
    let inside = attribute(&program(), &keys(), &pixel("2026-03-31T10:00:00Z"), &clicks);
    assert_eq!(member_of(&inside), Some("jane"), "30 days to the millisecond is inside");
    let outside = attribute(&program(), &keys(), &pixel("2026-03-31T10:00:00.001Z"), &clicks);
    assert_eq!(reason_of(&outside), Some(Reason::NoClickInWindow));
    let clicked_later = attribute(&program(), &keys(), &pixel("2026-02-28T10:00:00Z"), &clicks);
    assert_eq!(reason_of(&clicked_later), Some(Reason::NoClickInWindow), "a click after the conversion does not count");
}

#[test]
fn a_members_own_cookie_window_overrides_the_offers() {
    let clicks = [recent(1, "jane", "2026-03-01T10:00:00Z"), recent(2, "short", "2026-03-05T10:00:00Z")];
    let outcome = attribute(&program(), &keys(), &pixel("2026-03-07T10:00:00Z"), &clicks);
    assert_eq!(member_of(&outcome), Some("jane"), "short's 1-day window ended; jane's 30 days did not");
}

#[test]
fn a_click_id_postback_is_attributed_by_its_signature_and_window() {
    let keys = keys();
    let clicked = EventId::new();
    let claims =
        ClickClaims { click: clicked, offer: offer_id("summer"), member: member_id("tom"), visitor: visitor("v9") };
    let click_id = keys.sign(&claims);
    let at = Timestamp::from_millis(i64::try_from(clicked.0.timestamp_ms()).unwrap() + 3_600_000);
    let postback =
        Conversion { click_id: Some(click_id.clone()), occurred_at: Some(at), ..sale(101, "B-1", dec!(10), at) };
    let outcome = attribute(&program(), &keys, &postback, &[]);
    assert_eq!(member_of(&outcome), Some("tom"));
    assert!(matches!(outcome, Outcome::Attributed { via: Via::ClickId { click, .. }, .. } if click == clicked));

    let late = at.saturating_add(Span::days(31));
    let expired = Conversion { occurred_at: Some(late), ..postback.clone() };
    assert_eq!(reason_of(&attribute(&program(), &keys, &expired, &[])), Some(Reason::NoClickInWindow));

    let forged = ClickKeyRing::parse("1:someone-elses-key-someone-elses-key").unwrap().sign(&claims);
    let forged = Conversion { click_id: Some(forged), ..postback };
    assert_eq!(reason_of(&attribute(&program(), &keys, &forged, &[])), Some(Reason::BadSignature));
}

#[test]
fn a_code_beats_a_cookie_click_unless_the_offer_prefers_links() {
    let clicks = [recent(1, "tom", "2026-03-05T10:00:00Z")];
    let with_code = Conversion { code: Some(PromoCode::new("jane20").unwrap()), ..pixel("2026-03-10T10:00:00Z") };
    let outcome = attribute(&program(), &keys(), &with_code, &clicks);
    assert_eq!(member_of(&outcome), Some("jane"));
    assert!(matches!(outcome, Outcome::Attributed { via: Via::Code { .. }, .. }));
    let links_first = program_with(|offer| offer.code_precedence = CodePrecedence::Link);
    assert_eq!(member_of(&attribute(&links_first, &keys(), &with_code, &clicks)), Some("tom"));
    assert_eq!(member_of(&attribute(&links_first, &keys(), &with_code, &[])), Some("jane"), "no click: the code");
}

#[test]
fn codes_must_be_known_active_and_inside_their_dates() {
    let coded =
        |code: &str, at: &str| Conversion { code: Some(PromoCode::new(code).unwrap()), visitor: None, ..pixel(at) };
    let reason = |conversion: Conversion| reason_of(&attribute(&program(), &keys(), &conversion, &[]));
    assert_eq!(reason(coded("NOPE", "2026-03-10T10:00:00Z")), Some(Reason::UnknownCode));
    assert_eq!(reason(coded("OLD10", "2026-03-10T10:00:00Z")), Some(Reason::CodeInactive));
    assert_eq!(reason(coded("JANE20", "2025-12-31T23:59:59Z")), Some(Reason::CodeInactive), "before its start");
    assert_eq!(reason(coded("JANE20", "2026-12-31T00:00:00Z")), Some(Reason::CodeInactive), "its end is exclusive");
    assert_eq!(reason(coded("JANE20", "2026-06-01T00:00:00Z")), None);
    let clicks = [recent(1, "tom", "2026-03-05T10:00:00Z")];
    let stale_code_with_click =
        Conversion { code: Some(PromoCode::new("OLD10").unwrap()), ..pixel("2026-03-10T10:00:00Z") };
    assert_eq!(
        member_of(&attribute(&program(), &keys(), &stale_code_with_click, &clicks)),
        Some("tom"),
        "the click still counts"
    );
}

#[test]
fn the_winner_must_be_allowed_to_earn() {
    let click = |member: &str| [recent(1, member, "2026-03-05T10:00:00Z")];
    let at = "2026-03-10T10:00:00Z";
    let reason = |program: &Program, member: &str, conversion: Conversion| {
        reason_of(&attribute(program, &keys(), &conversion, &click(member)))
    };
    assert_eq!(reason(&program(), "pending", pixel(at)), Some(Reason::MemberNotApproved));
    assert_eq!(reason(&program(), "loner", pixel(at)), Some(Reason::NotEnrolled));
    assert_eq!(reason(&program(), "ghost", pixel(at)), Some(Reason::UnknownMember));
    let expired = program_with(|offer| offer.expires_at = Some(ts("2026-03-08T00:00:00Z")));
    assert_eq!(reason(&expired, "jane", pixel(at)), Some(Reason::OfferExpired));
    let paused = program_with(|offer| offer.paused = true);
    assert_eq!(reason(&paused, "jane", pixel(at)), Some(Reason::OfferPaused));
    let euros = Conversion { currency: Some(Currency::EUR), ..pixel(at) };
    assert_eq!(reason(&program(), "jane", euros), Some(Reason::CurrencyMismatch));
    let foreign = Conversion { advertiser: Some(model::AdvertiserId::new("globex").unwrap()), ..pixel(at) };
    assert_eq!(reason(&program(), "jane", foreign), Some(Reason::WrongAdvertiser));
    let bot = Conversion { bot: true, ..pixel(at) };
    assert_eq!(reason(&program(), "jane", bot), Some(Reason::Bot));
    assert_eq!(reason(&program(), "jane", pixel(at)), None);
}

#[test]
fn clicks_on_another_offer_do_not_count() {
    let clicks = [RecentClick {
        id: event_id(1),
        at: ts("2026-03-05T10:00:00Z"),
        offer: offer_id("winter"),
        member: member_id("jane"),
        trace: None,
    }];
    assert_eq!(
        reason_of(&attribute(&program(), &keys(), &pixel("2026-03-10T10:00:00Z"), &clicks)),
        Some(Reason::NoClickInWindow)
    );
}
