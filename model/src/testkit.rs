//! Builders for tests: a program in a few lines, with the defaults a test does not care about.
#![allow(clippy::expect_used)]

use rust_decimal::Decimal;

use crate::ids::{AdvertiserId, EventId, MemberId, OfferId, PayoutOptionId};
use crate::money::Currency;
use crate::program::{
    Advertiser, AttributionModel, CodePixel, CodePrecedence, Enrolment, Member, MemberStatus, Offer, PayoutOption,
    PayoutRule, PostbackSecret, Program, ProgramChange, ProgramSettings, Tiered,
};
use crate::time::{Span, Timestamp};

pub const ADVERTISER: &str = "acme";
pub const SECRET: &str = "acme-postback-secret-0001";

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).expect("test timestamp")
}

pub fn offer_id(id: &str) -> OfferId {
    OfferId::new(id).expect("offer id")
}

pub fn member_id(id: &str) -> MemberId {
    MemberId::new(id).expect("member id")
}

pub fn event_id(n: u128) -> EventId {
    EventId::from_u128(n)
}

pub fn advertiser() -> Advertiser {
    Advertiser {
        id: AdvertiserId::new(ADVERTISER).expect("advertiser id"),
        name: "Acme".into(),
        secrets: vec![PostbackSecret { secret: SECRET.into(), valid_until: None }],
    }
}

/// A payout option named like an AffiliateShop keyword.
pub fn option(id: &str, keyword: &str, rule: PayoutRule) -> PayoutOption {
    PayoutOption {
        id: PayoutOptionId::new(id).expect("option id"),
        name: keyword.into(),
        rule,
        pending: false,
        hold: None,
        recurring: None,
        tier2: None,
        tier3: None,
        events: Vec::new(),
    }
}

/// An offer of `acme` in USD whose only (default) payout option is `default` with `rule`.
pub fn offer(id: &str, rule: PayoutRule) -> Offer {
    offer_with_options(id, vec![option("default", "sale", rule)])
}

pub fn offer_with_options(id: &str, options: Vec<PayoutOption>) -> Offer {
    let default_payout = options.first().map(|option| option.id.clone()).expect("at least one option");
    Offer {
        id: offer_id(id),
        advertiser: AdvertiserId::new(ADVERTISER).expect("advertiser id"),
        name: format!("Offer {id}"),
        url: "https://shop.example.com/landing".into(),
        currency: Currency::USD,
        expires_at: None,
        paused: false,
        cookie_window: Span::days(30),
        attribution: AttributionModel::LastClick,
        code_precedence: CodePrecedence::Code,
        click_id_param: "click_id".into(),
        deep_link_hosts: vec!["shop.example.com".into()],
        unique_click_window: Span::hours(24),
        payout_options: options,
        default_payout,
        // Tests of attribution and pricing send code pixels and expect them paid; the tests of
        // the policy itself set it.
        code_pixel: CodePixel::Trust,
        pixel_max_amount: crate::program::DEFAULT_PIXEL_MAX_AMOUNT,
        caps: Vec::new(),
        over_cap: crate::program::OverCap::Reject,
        postbacks: Vec::new(),
    }
}

pub fn member(id: &str) -> Member {
    Member {
        id: member_id(id),
        name: format!("Member {id}"),
        status: MemberStatus::Approved,
        parent: None,
        handle: None,
        cookie_window: None,
        minimum_payout: Decimal::ZERO,
        joined_at: ts("2026-01-01T00:00:00Z"),
        postbacks: Vec::new(),
    }
}

pub fn child(id: &str, parent: &str) -> Member {
    Member { parent: Some(member_id(parent)), ..member(id) }
}

pub fn enrol(offer: &str, member: &str) -> Enrolment {
    Enrolment {
        offer: offer_id(offer),
        member: member_id(member),
        payout_option: None,
        payout_override: None,
        recurring_override: None,
        active: true,
        caps: Vec::new(),
        postbacks: Vec::new(),
    }
}

pub fn cps(rate: Decimal) -> PayoutRule {
    PayoutRule::Cps { rate: Tiered::flat(rate) }
}

/// Collects changes and folds them strictly.
#[derive(Debug, Default)]
pub struct ProgramBuilder {
    changes: Vec<ProgramChange>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self {
            changes: vec![ProgramChange::Settings(ProgramSettings::default()), ProgramChange::Advertiser(advertiser())],
        }
    }

    pub fn settings(mut self, settings: ProgramSettings) -> Self {
        self.changes.push(ProgramChange::Settings(settings));
        self
    }

    pub fn advertiser(mut self, advertiser: Advertiser) -> Self {
        self.changes.push(ProgramChange::Advertiser(advertiser));
        self
    }

    pub fn offer(mut self, offer: Offer) -> Self {
        self.changes.push(ProgramChange::Offer(offer));
        self
    }

    pub fn member(mut self, member: Member) -> Self {
        self.changes.push(ProgramChange::Member(member));
        self
    }

    /// Adds approved members and enrols each in `offer`.
    pub fn enrolled(mut self, offer: &str, members: impl IntoIterator<Item = Member>) -> Self {
        for member in members {
            let enrolment = enrol(offer, member.id.as_str());
            self.changes.push(ProgramChange::Member(member));
            self.changes.push(ProgramChange::Enrolment(enrolment));
        }
        self
    }

    /// Enrols members added earlier in `offer`.
    pub fn enrolled_existing(mut self, offer: &str, members: &[&str]) -> Self {
        for member in members {
            self.changes.push(ProgramChange::Enrolment(enrol(offer, member)));
        }
        self
    }

    pub fn change(mut self, change: ProgramChange) -> Self {
        self.changes.push(change);
        self
    }

    pub fn changes(&self) -> &[ProgramChange] {
        &self.changes
    }

    pub fn build(self) -> Program {
        Program::from_changes(self.changes).expect("test program is valid")
    }
}

use crate::events::{AttributedConversion, Click, Conversion, ConversionSource, Item, Subs, Via};
use crate::ids::{OrderId, OrderKey, PromoCode, Sku, VisitorId};

pub fn advertiser_id() -> AdvertiserId {
    AdvertiserId::new(ADVERTISER).expect("advertiser id")
}

pub fn order_key(order: &str) -> OrderKey {
    OrderKey::new(&advertiser_id(), &OrderId::new(order).expect("order id"))
}

pub fn visitor(id: &str) -> VisitorId {
    VisitorId::new(id).expect("visitor id")
}

/// An accepted click of `visitor` on `member`'s link for `offer`.
pub fn click(id: u128, offer: &str, member: &str, visitor_id: &str, at: Timestamp) -> Click {
    Click {
        id: event_id(id),
        received_at: at,
        offer: offer_id(offer),
        member: member_id(member),
        link: None,
        visitor: visitor(visitor_id),
        click_id: format!("click-{id}"),
        deep_link: None,
        subs: Subs::default(),
        bot: false,
        rejected: None,
        client: None,
        client_repeat: false,
        program: 0,
    }
}

/// A `sale` postback of `amount` for `order`, not yet attributed.
pub fn sale(id: u128, order: &str, amount: Decimal, at: Timestamp) -> Conversion {
    Conversion {
        id: event_id(id),
        received_at: at,
        occurred_at: None,
        source: ConversionSource::Postback,
        advertiser: Some(advertiser_id()),
        offer: None,
        event: "sale".into(),
        order_id: Some(OrderId::new(order).expect("order id")),
        amount: Some(amount),
        currency: Some(Currency::USD),
        items: Vec::new(),
        code: None,
        recurring_amount: None,
        visitor: None,
        click_id: None,
        bot: false,
        client: None,
        refused: None,
        program: 0,
    }
}

/// `sku:amount:quantity` items.
pub fn items(list: &[(&str, Decimal, u32)]) -> Vec<Item> {
    list.iter()
        .map(|(sku, amount, quantity)| Item { sku: Sku::new(*sku).expect("sku"), amount: *amount, quantity: *quantity })
        .collect()
}

/// `conversion` attributed to `member` in `offer` by a promo code.
pub fn attributed(conversion: Conversion, offer: &str, member: &str) -> AttributedConversion {
    let order_key = conversion.order_key(&advertiser_id());
    AttributedConversion {
        order_key,
        advertiser: advertiser_id(),
        offer: offer_id(offer),
        member: member_id(member),
        via: Via::Code { code: PromoCode::new("TEST").expect("code") },
        conversion,
        unverified: false,
        click: None,
    }
}
