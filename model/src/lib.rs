//! The clickledger model, shared by every stage.
//!
//! - [`ids`]: validated identifiers (offer, member, order, visitor, ...) and derived ids.
//! - [`money`]: currencies, strict amount parsing, commission rounding.
//! - [`time`]: event time (`Timestamp`), spans and recurring intervals.
//! - [`program`]: offers, payout options, members, enrolments, links, codes, advertisers, and
//!   the fold of program change events that builds them.
//! - [`events`]: clicks, conversions, refunds, decisions, attribution results, commission
//!   lines and bills, with the versioned wire format in [`events::wire`].
//! - [`clickid`]: self-verifying click ids (what attribution needs, under an HMAC).
//! - [`reports`]: the report queries and their rows.
//! - `openapi` (feature `openapi`): OpenAPI schemas of the types written as one string; the
//!   other types the program API documents derive `utoipa::ToSchema` where they are defined.
//!
//! Pure: no I/O and no async runtime; rules take `now` as an argument. How the stages run —
//! the log and store ports, the runner, following the program log — is `clickledger-pipeline`.

pub mod clickid;
pub mod events;
pub mod ids;
pub mod money;
#[cfg(feature = "openapi")]
mod openapi;
pub mod program;
pub mod reports;
pub mod time;

pub use ids::{
    AdvertiserId, DerivedId, EventId, LinkCode, MemberId, OfferId, OrderId, OrderKey, PayoutOptionId, PromoCode, Sku,
    VisitorId,
};
pub use money::{Currency, NO_COMMISSION, round_commission};
pub use time::{Interval, Span, Timestamp};

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
