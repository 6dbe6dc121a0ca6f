//! Events: what the edge records, what the attributor decides, what the settler computes.
//!
//! Each log topic carries one enum, encoded by [`wire`]:
//! - `events`  ([`TrackingEvent`], keyed by visitor): clicks and conversions, in visitor order;
//! - `orders`  ([`OrderEvent`], keyed by order key): attributed and rejected conversions,
//!   refunds, cancels, approve / reject decisions;
//! - `ledger`  ([`LedgerEvent`], keyed by the member's family root): everything that moves
//!   money for a member, so one partition owns a member's tiers, lines and bills.
//!
//! The settler's outputs ([`CommissionLine`], [`Bill`], [`SubscriptionAccount`]) have
//! deterministic ids (docs/DECISIONS.md, "At-least-once, idempotent effects").

mod ledger;
mod notice;
mod outputs;
pub mod wire;

use std::net::{IpAddr, Ipv6Addr};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use ledger::{
    Bill, BillStatus, CommissionLine, LedgerEvent, LineKind, LineStatus, ManualLine, SubscriptionAccount,
    SubscriptionStatus,
};
pub use notice::{ClickTrace, DeliveryRow, DeliveryStatus, Notice, NoticeConversion, NoticeEvent, NoticeKind};
pub use outputs::{ClickRow, ConversionRow, ConversionStatus};

use crate::ids::{AdvertiserId, EventId, LinkCode, MemberId, OfferId, OrderId, OrderKey, PromoCode, Sku, VisitorId};
use crate::money::Currency;
use crate::time::Timestamp;

/// Why a click or conversion earns nothing (docs/DECISIONS.md, "Rejections are data"). Stored
/// with the row, so "why was I not paid" has an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NoClickInWindow,
    UnknownCode,
    CodeInactive,
    UnknownOffer,
    UnknownMember,
    MemberNotApproved,
    NotEnrolled,
    EnrolmentInactive,
    LinkInactive,
    OfferExpired,
    OfferPaused,
    DuplicateOrder,
    BadSignature,
    Bot,
    CurrencyMismatch,
    EventNotPaid,
    WrongAdvertiser,
    /// More clicks from the client's address than the program's rate limit allows.
    RateLimited,
    /// The client's address is in the program's deny list.
    BlockedAddress,
    /// The only evidence is a promo code on an unauthenticated pixel, and the offer ignores those.
    UnverifiedCode,
    /// Over a conversion or payout cap of the offer or the enrolment.
    CapExceeded,
    /// The advertiser's authenticated postback for the same order replaced this pixel
    /// conversion.
    SupersededByPostback,
    /// A program manager rejected or reversed it.
    Adjusted,
}

impl Reason {
    /// Every reason, in the order they are declared.
    pub const ALL: [Reason; 23] = [
        Reason::NoClickInWindow,
        Reason::UnknownCode,
        Reason::CodeInactive,
        Reason::UnknownOffer,
        Reason::UnknownMember,
        Reason::MemberNotApproved,
        Reason::NotEnrolled,
        Reason::EnrolmentInactive,
        Reason::LinkInactive,
        Reason::OfferExpired,
        Reason::OfferPaused,
        Reason::DuplicateOrder,
        Reason::BadSignature,
        Reason::Bot,
        Reason::CurrencyMismatch,
        Reason::EventNotPaid,
        Reason::WrongAdvertiser,
        Reason::RateLimited,
        Reason::BlockedAddress,
        Reason::UnverifiedCode,
        Reason::CapExceeded,
        Reason::SupersededByPostback,
        Reason::Adjusted,
    ];

    /// The reason named `text` (`no_click_in_window`, ...).
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoClickInWindow => "no_click_in_window",
            Reason::UnknownCode => "unknown_code",
            Reason::CodeInactive => "code_inactive",
            Reason::UnknownOffer => "unknown_offer",
            Reason::UnknownMember => "unknown_member",
            Reason::MemberNotApproved => "member_not_approved",
            Reason::NotEnrolled => "not_enrolled",
            Reason::EnrolmentInactive => "enrolment_inactive",
            Reason::LinkInactive => "link_inactive",
            Reason::OfferExpired => "offer_expired",
            Reason::OfferPaused => "offer_paused",
            Reason::DuplicateOrder => "duplicate_order",
            Reason::BadSignature => "bad_signature",
            Reason::Bot => "bot",
            Reason::CurrencyMismatch => "currency_mismatch",
            Reason::EventNotPaid => "event_not_paid",
            Reason::WrongAdvertiser => "wrong_advertiser",
            Reason::RateLimited => "rate_limited",
            Reason::BlockedAddress => "blocked_address",
            Reason::UnverifiedCode => "unverified_code",
            Reason::CapExceeded => "cap_exceeded",
            Reason::SupersededByPostback => "superseded_by_postback",
            Reason::Adjusted => "adjusted",
        }
    }
}

/// `sub1`..`sub5`: free-form values the member passes on the click link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub3: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub5: Option<String>,
}

/// Who sent a click or conversion: the client's address (the socket peer, or the
/// `X-Forwarded-For` entry a trusted proxy added) and a hash of its `User-Agent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Client {
    pub address: IpAddr,
    /// The first 8 bytes of SHA-256 of the `User-Agent` header, big-endian (0: none sent).
    pub agent: u64,
}

impl Client {
    pub fn new(address: IpAddr, user_agent: Option<&str>) -> Self {
        let agent = user_agent.map_or(0, |agent| {
            let digest = Sha256::digest(agent.as_bytes());
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(bytes)
        });
        Self { address, agent }
    }

    /// The network a client is counted by: its IPv4 address, or the /64 of its IPv6 address
    /// (one subscriber's devices share a /64 and may rotate through it).
    pub fn network(&self) -> IpAddr {
        match self.address {
            IpAddr::V4(address) => IpAddr::V4(address),
            IpAddr::V6(address) => match address.to_ipv4_mapped() {
                Some(address) => IpAddr::V4(address),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(address) & !((1u128 << 64) - 1))),
            },
        }
    }

    /// A key for this (network, user agent) pair and a link (offer and member): 16 bytes of
    /// SHA-256, what the edge's unique-client memory holds.
    pub fn link_key(&self, offer: &OfferId, member: &MemberId) -> [u8; 16] {
        let mut hasher = Sha256::new();
        for part in [self.network().to_string().as_str(), offer.as_str(), member.as_str()] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(self.agent.to_be_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&hasher.finalize()[..16]);
        key
    }

    /// The user-agent hash as text (16 hex digits), as reports show it.
    pub fn agent_hex(&self) -> String {
        format!("{:016x}", self.agent)
    }
}

/// A click on a member's link, as the edge recorded it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub id: EventId,
    pub received_at: Timestamp,
    pub offer: OfferId,
    pub member: MemberId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkCode>,
    pub visitor: VisitorId,
    /// The signed click id appended to the redirect.
    pub click_id: String,
    /// The deep link the shopper was sent to, when not the offer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_link: Option<String>,
    #[serde(default)]
    pub subs: Subs,
    /// A known bot user agent: recorded, never counted.
    #[serde(default)]
    pub bot: bool,
    /// Set when the click still redirected but earns nothing (inactive link, unapproved
    /// member, expired offer, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// The client (network and user agent) clicked this member's link for the offer within the
    /// offer's unique-click window, as the edge that took the click remembers: not unique,
    /// whatever its cookie says. Decided once, at the edge, so every replay agrees.
    #[serde(default, skip_serializing_if = "is_false")]
    pub client_repeat: bool,
    /// The program version (next program-log offset) the edge had: readers wait until they
    /// have it before acting on the event.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub program: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Click {
    /// Counts for unique clicks and CPC: not a bot, not rejected at the edge.
    pub fn is_countable(&self) -> bool {
        !self.bot && self.rejected.is_none()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionSource {
    Pixel,
    Postback,
}

/// One cart line: `sku:amount:quantity`, where `amount` is the unit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: Sku,
    pub amount: Decimal,
    pub quantity: u32,
}

impl Item {
    /// Price × quantity.
    pub fn total(&self) -> Decimal {
        self.amount * Decimal::from(self.quantity)
    }
}

/// A conversion reported by a pixel or a postback, before attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversion {
    pub id: EventId,
    pub received_at: Timestamp,
    /// When the advertiser says it happened (postbacks only; bounded by the edge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    pub source: ConversionSource,
    /// The authenticated advertiser of a postback, or the advertiser of the pixel's offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertiser: Option<AdvertiserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OfferId>,
    /// `sale`, `lead`, `signup`, `download` or another configured name.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<OrderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<PromoCode>,
    /// Opens a subscription account credited every interval (seed 004, "Recurring").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring_amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<VisitorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
    #[serde(default)]
    pub bot: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// Refused at the edge (a blocked address): recorded, never attributed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Reason>,
    /// The program version the edge had (see [`Click::program`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub program: u64,
}

impl Conversion {
    /// The time rules use: the advertiser's `occurred_at` when given, else arrival.
    pub fn event_time(&self) -> Timestamp {
        self.occurred_at.unwrap_or(self.received_at)
    }

    /// The sale amount: `amount`, or the item totals when only items were sent.
    pub fn sale_amount(&self) -> Decimal {
        match self.amount {
            Some(amount) => amount,
            None => self.items.iter().map(Item::total).sum(),
        }
    }

    /// Reported by the advertiser itself (a postback, authenticated by its secret), not by a
    /// browser: its word wins for its own order (docs/ARCHITECTURE.md, "Trust and threats").
    pub fn is_authenticated(&self) -> bool {
        self.source == ConversionSource::Postback
    }

    /// The order key once the advertiser is known.
    pub fn order_key(&self, advertiser: &AdvertiserId) -> OrderKey {
        match &self.order_id {
            Some(order_id) => OrderKey::new(advertiser, order_id),
            None => OrderKey::for_event(advertiser, self.id),
        }
    }
}

/// A refund of an order, in full (`amount` absent) or in part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: EventId,
    pub received_at: Timestamp,
    pub advertiser: AdvertiserId,
    pub order_id: OrderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
}

/// The end of a subscription: no credits fall due after `received_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionCancel {
    pub id: EventId,
    pub received_at: Timestamp,
    pub advertiser: AdvertiserId,
    pub order_id: OrderId,
}

/// A program manager's answer to a pending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// A program manager's approve or reject of a pending order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub id: EventId,
    pub received_at: Timestamp,
    pub order_key: OrderKey,
    pub verdict: Verdict,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A program manager's reversal of an order that should not pay: confirmed fraud, a mistake.
/// Unlike a refund it leaves the sale as it was; unlike a reject it applies to any order,
/// pending or approved, billed or not (billed lines are corrected in the next bill).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reversal {
    pub id: EventId,
    pub received_at: Timestamp,
    pub order_key: OrderKey,
    pub actor: String,
    pub reason: String,
}

/// What an order asks of its offer's caps (the `caps` topic, keyed by offer): its place in
/// canonical order, its member and the 1st-tier commission it would pay. The ledger that
/// prices the order sends it, again whenever that commission changes; `active: false` when the
/// order no longer pays (withdrawn, reversed, rejected, refunded in full).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapClaim {
    pub order_key: OrderKey,
    pub conversion: EventId,
    pub offer: OfferId,
    pub member: MemberId,
    pub at: Timestamp,
    pub payout: Decimal,
    pub active: bool,
}

/// The caps' answer for an order's conversion: within every cap, or over one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapVerdict {
    pub order_key: OrderKey,
    pub conversion: EventId,
    pub within: bool,
}

/// How a conversion found its member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Via {
    /// The visitor's cookie click inside the window.
    Cookie {
        click: EventId,
        #[serde(with = "crate::time::text_form")]
        clicked_at: Timestamp,
    },
    /// A click id sent back on a postback.
    ClickId {
        click: EventId,
        #[serde(with = "crate::time::text_form")]
        clicked_at: Timestamp,
    },
    /// A promo code.
    Code { code: PromoCode },
}

impl Via {
    pub fn as_str(&self) -> &'static str {
        match self {
            Via::Cookie { .. } => "cookie",
            Via::ClickId { .. } => "click_id",
            Via::Code { .. } => "code",
        }
    }
}

/// A conversion the attributor gave to a member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributedConversion {
    pub conversion: Conversion,
    pub order_key: OrderKey,
    pub advertiser: AdvertiserId,
    pub offer: OfferId,
    pub member: MemberId,
    pub via: Via,
    /// Only a promo code on an unauthenticated pixel named the member: its lines wait for a
    /// program manager's approval, or for the advertiser's postback to replace it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unverified: bool,
    /// The click it was attributed through, with its click id and `sub1`..`sub5`, for the
    /// partner postbacks of the conversion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click: Option<ClickTrace>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A conversion that earns nothing, with the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectedConversion {
    pub conversion: Conversion,
    pub reason: Reason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_key: Option<OrderKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberId>,
    /// The evidence that named `member` (a cookie click, a click id, a promo code) when a
    /// member was found and then refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Via>,
}

/// The `events` topic, keyed by visitor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingEvent {
    Click(Click),
    Conversion(Conversion),
}

/// The `orders` topic, keyed by order key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEvent {
    Attributed(AttributedConversion),
    Rejected(RejectedConversion),
    Refund(Refund),
    Cancel(SubscriptionCancel),
    Decision(Decision),
    Reversal(Reversal),
    CapVerdict(CapVerdict),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod client_tests {
    use super::*;

    fn client(address: &str, agent: Option<&str>) -> Client {
        Client::new(address.parse().unwrap(), agent)
    }

    #[test]
    fn a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64_and_its_user_agent() {
        assert_eq!(client("2001:db8:1:2:aaaa::1", None).network().to_string(), "2001:db8:1:2::");
        assert_eq!(client("::ffff:192.0.2.1", None).network().to_string(), "192.0.2.1");
        let (summer, jane) = (OfferId::new("summer").unwrap(), MemberId::new("jane").unwrap());
        let key = |client: Client| client.link_key(&summer, &jane);
        let phone = client("2001:db8:1:2::5", Some("Phone"));
        assert_eq!(key(phone), key(client("2001:db8:1:2:ffff::9", Some("Phone"))));
        assert_ne!(key(phone), key(client("2001:db8:1:2::5", Some("Laptop"))));
        assert_ne!(key(phone), key(client("2001:db8:1:3::5", Some("Phone"))));
        assert_ne!(key(phone), phone.link_key(&summer, &MemberId::new("tom").unwrap()));
        assert_eq!(client("192.0.2.1", None).agent, 0);
        assert_eq!(client("192.0.2.1", Some("Phone")).agent_hex().len(), 16);
    }
}
