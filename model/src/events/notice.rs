//! Notices: what the settler tells the notifier happened (a conversion attributed or
//! rejected, a commission created or changed, a bill created or paid), and the deliveries the
//! notifier makes of them (docs/NOTIFICATIONS.md).
//!
//! A notice's id is derived from what happened (`kind` and the line, bill or conversion), so a
//! stage that applies an input again after a crash sends the same notice, and the notifier
//! delivers it once. A delivery's id is derived from the notice and the destination: every
//! attempt of one delivery carries the same id, for the receiver to drop repeats.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Bill, CommissionLine, ConversionStatus, Reason, Subs};
use crate::ids::{AdvertiserId, DerivedId, EventId, MemberId, OfferId};
use crate::money::Currency;
use crate::time::Timestamp;

/// The event types a webhook subscribes to; postbacks fire on the conversion ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum NoticeKind {
    #[serde(rename = "conversion.attributed")]
    ConversionAttributed,
    #[serde(rename = "conversion.rejected")]
    ConversionRejected,
    #[serde(rename = "commission.created")]
    CommissionCreated,
    #[serde(rename = "commission.approved")]
    CommissionApproved,
    #[serde(rename = "commission.rejected")]
    CommissionRejected,
    #[serde(rename = "commission.reversed")]
    CommissionReversed,
    #[serde(rename = "bill.created")]
    BillCreated,
    #[serde(rename = "bill.paid")]
    BillPaid,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 8] = [
        NoticeKind::ConversionAttributed,
        NoticeKind::ConversionRejected,
        NoticeKind::CommissionCreated,
        NoticeKind::CommissionApproved,
        NoticeKind::CommissionRejected,
        NoticeKind::CommissionReversed,
        NoticeKind::BillCreated,
        NoticeKind::BillPaid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::ConversionAttributed => "conversion.attributed",
            NoticeKind::ConversionRejected => "conversion.rejected",
            NoticeKind::CommissionCreated => "commission.created",
            NoticeKind::CommissionApproved => "commission.approved",
            NoticeKind::CommissionRejected => "commission.rejected",
            NoticeKind::CommissionReversed => "commission.reversed",
            NoticeKind::BillCreated => "bill.created",
            NoticeKind::BillPaid => "bill.paid",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// One bit per kind, for the set of kinds a program listens to.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Whether a partner postback may fire on it: the kinds about one conversion and the
    /// commission its member earned.
    pub fn is_postback_event(self) -> bool {
        matches!(
            self,
            NoticeKind::ConversionAttributed
                | NoticeKind::CommissionCreated
                | NoticeKind::CommissionApproved
                | NoticeKind::CommissionRejected
                | NoticeKind::CommissionReversed
        )
    }
}

/// The click a conversion was attributed through, as the partner who sent it knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickTrace {
    /// The signed click id of the click (what `{click_id}` gives).
    pub click_id: String,
    #[serde(default)]
    pub subs: Subs,
}

/// A conversion as a notice describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoticeConversion {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: EventId,
    /// `sale`, `lead`, ...
    pub event: String,
    pub order_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub advertiser: Option<AdvertiserId>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub offer: Option<OfferId>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub member: Option<MemberId>,
    /// The sale amount.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub amount: Decimal,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub currency: Option<Currency>,
    /// `attributed`, `duplicate` or `rejected`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: ConversionStatus,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub reason: Option<Reason>,
    /// `cookie`, `click_id`, `code`, or empty.
    pub via: String,
    /// The click id of the click it was attributed through (or that the postback sent back).
    pub click_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub subs: Subs,
    /// When it happened (the advertiser's time, else arrival).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub occurred_at: Timestamp,
}

/// What happened, for the notifier: one record of the `notices` topic, keyed by its id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub id: DerivedId,
    pub kind: NoticeKind,
    /// When the stage recorded it.
    pub at: Timestamp,
    /// The conversion it is about (conversion notices; commission notices of a conversion).
    #[serde(default)]
    pub conversion: Option<NoticeConversion>,
    /// The commission line (commission notices) or, on `conversion.attributed`, the
    /// 1st-tier line that pays for it.
    #[serde(default)]
    pub commission: Option<CommissionLine>,
    #[serde(default)]
    pub bill: Option<Bill>,
}

impl Notice {
    /// The id of the notice of `kind` about `subject` (a line, bill or conversion id).
    pub fn id_for(kind: NoticeKind, subject: &str) -> DerivedId {
        DerivedId::derive(&["notice", kind.as_str(), subject])
    }

    /// The 1st-tier commission that pays for the conversion (`{payout}`), if any.
    pub fn payout(&self) -> Option<Decimal> {
        self.commission.as_ref().filter(|line| line.tier == 1).map(|line| line.amount)
    }
}

/// The `notices` topic: what happened, or a program manager's request to send a delivery
/// again.
// One is decoded at a time; the usual one, a notice, is the large one.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeEvent {
    Notice(Notice),
    Resend { delivery: Box<DeliveryRow>, actor: String, at: Timestamp },
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or for a retry.
    Pending,
    /// The destination answered 2xx.
    Delivered,
    /// Refused for good: a 4xx other than 408, 425 and 429, a redirect, or a destination the
    /// deployment does not allow.
    Failed,
    /// Retried until its retry period ran out (the dead letter).
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed, DeliveryStatus::Dead]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    pub fn is_final(self) -> bool {
        self != DeliveryStatus::Pending
    }
}

/// One notice to one destination: the delivery log's row. Every attempt raises `revision`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryRow {
    /// The same on every attempt (the `Clickledger-Delivery` header).
    pub id: String,
    /// The notice (event) id.
    pub notice: String,
    pub kind: NoticeKind,
    /// `webhook:{id}`, or `postback:program`, `postback:offer:{offer}`,
    /// `postback:member:{member}`, `postback:enrolment:{offer}:{member}`, each with `#{n}`.
    pub destination: String,
    /// `GET` (postbacks) or `POST` (webhooks).
    pub method: String,
    pub url: String,
    /// The JSON body of a webhook; empty for a postback.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// The HTTP status of the last attempt, 0 when none came back.
    pub last_status: u16,
    /// Why the last attempt did not deliver (`timeout`, `connect: ...`, `http 500`, ...).
    pub last_error: String,
    pub last_latency_ms: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// When the next attempt is due (pending deliveries).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub next_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
    pub revision: u32,
}

impl DeliveryRow {
    /// The id of the delivery of `notice` to `destination`.
    pub fn id_for(notice: &DerivedId, destination: &str) -> String {
        DerivedId::derive(&["delivery", notice.as_str(), destination]).to_string()
    }
}
