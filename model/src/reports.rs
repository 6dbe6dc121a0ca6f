//! The report queries analysts and the program API read, and their rows: the filters, the
//! conversion report (seed 001, "Conversion Reports"), summaries per offer or member, and
//! rejections by reason.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ids::{EventId, MemberId, OfferId};
use crate::time::Timestamp;

/// Filters of the report queries. Dates filter the order date (event time) of conversions
/// and the time of clicks; `to` is exclusive. A report applies the filters it has columns
/// for; the API offers each report only those.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub offer: Option<OfferId>,
    pub member: Option<MemberId>,
    /// Line status of the conversion report and the lines (`pending`, `approved`, ...).
    pub status: Option<String>,
    /// Why a rejected conversion earns nothing (`no_click_in_window`, `duplicate_order`, ...).
    pub reason: Option<String>,
    /// The advertiser's order id, of any advertiser.
    pub order_id: Option<String>,
    /// `{advertiser}:{order_id}`: one advertiser's order.
    pub order_key: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One attributed conversion in the conversion report (seed 001, "Conversion Reports": order
/// date, sale amount, commission earned, order id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversionReportRow {
    pub conversion: EventId,
    pub order_date: Timestamp,
    pub offer: OfferId,
    pub member: MemberId,
    pub order_id: String,
    pub sale_amount: Decimal,
    pub currency: String,
    /// The member's own (1st-tier) commission for the conversion.
    pub commission: Decimal,
    /// The status of that commission (`pending`, `approved`, `billed`, ..., or `none` when the
    /// conversion pays nothing).
    pub status: String,
    pub via: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryBy {
    Offer,
    Member,
    /// The UTC quarter hour (`at_ms / 900000`, as text): the grain time series are summed
    /// from, in any time zone (every zone's offset is a whole number of quarter hours).
    Quarter,
    /// The click's `sub1` (a conversion's and its lines' are those of the click it was
    /// attributed through); `sub2`..`sub5` likewise.
    Sub1,
    Sub2,
    Sub3,
    Sub4,
    Sub5,
}

impl SummaryBy {
    /// The column a summary groups by and the view it reads.
    pub fn column_and_view(self) -> (&'static str, &'static str) {
        match self {
            SummaryBy::Offer => ("offer", "activity"),
            SummaryBy::Member => ("member", "activity"),
            SummaryBy::Quarter => ("at_ms", "activity"),
            SummaryBy::Sub1 => ("sub1", "activity_subs"),
            SummaryBy::Sub2 => ("sub2", "activity_subs"),
            SummaryBy::Sub3 => ("sub3", "activity_subs"),
            SummaryBy::Sub4 => ("sub4", "activity_subs"),
            SummaryBy::Sub5 => ("sub5", "activity_subs"),
        }
    }
}

/// The length of a [`SummaryBy::Quarter`] in milliseconds.
pub const QUARTER_MS: i64 = 900_000;

/// Totals per offer or per member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SummaryRow {
    /// The offer or member id.
    pub key: String,
    /// Clicks that were not bots and not refused.
    pub clicks: u64,
    pub unique_clicks: u64,
    pub conversions: u64,
    pub revenue: Decimal,
    /// Every commission line of the offer, or every line the member earned (all tiers).
    pub commission: Decimal,
    /// Commission per click.
    pub epc: Decimal,
    /// Conversions per unique click.
    pub conversion_rate: Decimal,
}

impl SummaryRow {
    /// Totals with commission per click and conversions per unique click (4 places, half to
    /// even; 0 without clicks).
    pub fn new(
        key: String,
        clicks: u64,
        unique_clicks: u64,
        conversions: u64,
        revenue: Decimal,
        commission: Decimal,
    ) -> Self {
        let ratio = |numerator: Decimal, denominator: u64| {
            if denominator == 0 {
                Decimal::ZERO
            } else {
                (numerator / Decimal::from(denominator))
                    .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven)
            }
        };
        Self {
            key,
            clicks,
            unique_clicks,
            conversions,
            revenue,
            epc: ratio(commission, clicks),
            conversion_rate: ratio(Decimal::from(conversions), unique_clicks),
            commission,
        }
    }
}

/// One conversion that earns nothing, and why: "why was I not paid" for one order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedConversionRow {
    pub conversion: EventId,
    /// Event time: when the advertiser says it happened, or when the edge received it.
    pub at: Timestamp,
    pub received_at: Timestamp,
    /// Why it earns nothing (`no_click_in_window`, `member_not_approved`, `duplicate_order`, ...).
    pub reason: String,
    /// `pixel` or `postback`.
    pub source: String,
    pub event: String,
    pub order_id: Option<String>,
    pub order_key: Option<String>,
    pub offer: Option<String>,
    /// The member the evidence named, when it named one (the member refused, or the member of
    /// a duplicate).
    pub member: Option<String>,
    /// What named the member: `cookie` (a click in the visitor's cookie), `click_id` (a click
    /// id sent back), `code` (a promo code); `none` when the conversion carried none of them.
    pub evidence: String,
    pub amount: Decimal,
    pub currency: Option<String>,
    /// The promo code the conversion carried, if any.
    pub code: Option<String>,
}

/// Conversions that earn nothing, counted by reason and offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectionRow {
    pub reason: String,
    pub offer: String,
    pub conversions: u64,
}
