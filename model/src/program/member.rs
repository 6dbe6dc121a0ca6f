//! Members, their enrolments in offers, and the advertisers who send postbacks.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::offer::{PayoutRule, RecurringTerms};
use crate::ids::{AdvertiserId, MemberId, OfferId, PayoutOptionId};
use crate::time::{Interval, Span, Timestamp};

/// A member's cooperation status (seed 003). Only `approved` members promote and earn;
/// `stopped` members keep what they earned and billed. `disabled` and `deleted` are seed 004's
/// "Disabled or Deleted affiliate": no tier lines for them or for anyone above them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    #[default]
    Pending,
    Approved,
    Denied,
    Stopped,
    Deleted,
    Disabled,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Approved => "approved",
            MemberStatus::Denied => "denied",
            MemberStatus::Stopped => "stopped",
            MemberStatus::Deleted => "deleted",
            MemberStatus::Disabled => "disabled",
        }
    }
}

/// An affiliate, influencer or publisher (seed 000, "Member").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = MemberStatus::default))]
    pub status: MemberStatus,
    /// The member who recruited this one (seed 004, `affsignup?AID=`). Set at sign-up only.
    #[serde(default)]
    pub parent: Option<MemberId>,
    /// Social handle, used to name promo codes (`@jane` gives `JANE20`).
    #[serde(default)]
    pub handle: Option<String>,
    /// Overrides the offer's cookie window for this member's clicks.
    #[serde(default)]
    pub cookie_window: Option<Span>,
    /// Bills below this total carry over to the next period.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = Decimal::default))]
    pub minimum_payout: Decimal,
    pub joined_at: Timestamp,
    /// Partner postbacks called on the events of its conversions (docs/NOTIFICATIONS.md).
    #[serde(default)]
    pub postbacks: Vec<super::notify::Postback>,
}

impl Member {
    pub fn is_approved(&self) -> bool {
        self.status == MemberStatus::Approved
    }
}

/// A member's place in an offer: which payout option pays them, and their own overrides
/// (seed 001, "Edit Offers For Members").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    pub offer: OfferId,
    pub member: MemberId,
    /// `None` follows the offer's default payout option, including later changes of the default.
    #[serde(default)]
    pub payout_option: Option<PayoutOptionId>,
    /// Replaces the option's rule for this member (10% → 15%, CPC → percentage of sales).
    #[serde(default)]
    pub payout_override: Option<PayoutRule>,
    /// Replaces the recurring rate and interval for this member's future credits.
    #[serde(default)]
    pub recurring_override: Option<RecurringOverride>,
    #[serde(default = "active_by_default")]
    #[cfg_attr(feature = "openapi", schema(default = active_by_default))]
    pub active: bool,
    /// Limits on this member's conversions or payout in the offer per day or month.
    #[serde(default)]
    pub caps: Vec<super::caps::Cap>,
    /// Partner postbacks called on the events of its conversions (docs/NOTIFICATIONS.md).
    #[serde(default)]
    pub postbacks: Vec<super::notify::Postback>,
}

fn active_by_default() -> bool {
    true
}

/// A member's own recurring rate and interval (seed 004, "Modifying future Residual Commission").
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecurringOverride {
    pub rate: Decimal,
    pub every: Interval,
}

impl RecurringOverride {
    pub fn apply_to(&self, terms: &RecurringTerms) -> RecurringTerms {
        RecurringTerms { name: terms.name.clone(), rate: self.rate, every: self.every }
    }
}

/// The party that owns offers and order ids and authenticates postbacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advertiser {
    pub id: AdvertiserId,
    pub name: String,
    /// Secrets accepted as `token` or as the `X-Signature` HMAC key. The first signs;
    /// after a rotation the previous one stays valid until its `valid_until`.
    pub secrets: Vec<PostbackSecret>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostbackSecret {
    pub secret: String,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
}

impl Advertiser {
    /// Secrets valid at `now`, current one first.
    pub fn secrets_at(&self, now: Timestamp) -> impl Iterator<Item = &str> {
        self.secrets
            .iter()
            .filter(move |secret| secret.valid_until.is_none_or(|until| now < until))
            .map(|secret| secret.secret.as_str())
    }
}
