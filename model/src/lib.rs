//! The clickledger model, shared by every stage.
//!
//! - [`ids`]: validated identifiers (offer, member, order, visitor, ...) and derived ids.
//! - [`money`]: currencies, strict amount parsing, commission rounding.
//! - [`time`]: event time (`Timestamp`), spans and recurring intervals.
//! - [`program`]: offers, payout options, members, enrolments, links, codes, advertisers, and
//!   the fold of program change events that builds them.
//! - [`events`]: clicks, conversions, refunds, decisions, attribution results, commission
//!   lines and bills, with the versioned wire format in [`events::wire`].

pub mod clickid;
pub mod events;
pub mod follow;
pub mod ids;
pub mod journal;
pub mod money;
pub mod ports;
pub mod program;
pub mod stage;
pub mod time;

pub use ids::{
    AdvertiserId, DerivedId, EventId, LinkCode, MemberId, OfferId, OrderId, OrderKey, PayoutOptionId, PromoCode, Sku,
    VisitorId,
};
pub use money::{Currency, NO_COMMISSION, round_commission};
pub use time::{Interval, Span, Timestamp};

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
