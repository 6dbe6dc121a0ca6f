//! What members promote with: tracking links and promo codes.

use serde::{Deserialize, Serialize};

use crate::ids::{LinkCode, MemberId, OfferId, PromoCode};
use crate::time::Timestamp;

/// A link issued to a member: `/c/{code}` redirects to the offer (or to `deep_url`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrackingLink {
    pub code: LinkCode,
    pub offer: OfferId,
    pub member: MemberId,
    /// A deep link (seed 000): must be on one of the offer's allowed hosts.
    #[serde(default)]
    pub deep_url: Option<String>,
    #[serde(default = "active_by_default")]
    #[cfg_attr(feature = "openapi", schema(default = active_by_default))]
    pub active: bool,
}

/// A promo code that attributes a conversion to its member without a click (seed 003).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PromoCodeGrant {
    pub code: PromoCode,
    pub offer: OfferId,
    pub member: MemberId,
    #[serde(default = "active_by_default")]
    #[cfg_attr(feature = "openapi", schema(default = active_by_default))]
    pub active: bool,
    /// Usable from this instant on (inclusive); absent: no start.
    #[serde(default)]
    pub starts_at: Option<Timestamp>,
    /// Usable until this instant (exclusive); absent: no end.
    #[serde(default)]
    pub ends_at: Option<Timestamp>,
}

impl PromoCodeGrant {
    /// Active and inside its dates at `now` (start inclusive, end exclusive).
    pub fn is_usable_at(&self, now: Timestamp) -> bool {
        self.active && self.starts_at.is_none_or(|start| now >= start) && self.ends_at.is_none_or(|end| now < end)
    }
}

fn active_by_default() -> bool {
    true
}
