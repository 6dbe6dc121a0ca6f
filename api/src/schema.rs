//! OpenAPI schemas of the model's types. The model crate knows nothing of OpenAPI, so these
//! types describe its JSON shapes for the document only; handlers serialise the model types
//! themselves. `tests/openapi.rs` checks that real values of each type use exactly the
//! properties described here, so the two cannot drift apart unnoticed.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// A timestamp: RFC 3339 UTC with milliseconds (`2026-11-21T10:00:00.250Z`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = String, format = DateTime, example = "2026-11-21T10:00:00.000Z")]
pub struct Timestamp(String);

/// A decimal as a string (`"129.90"`); money is never a JSON number.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = String, example = "0.10")]
pub struct Decimal(String);

/// A length of time: a number and a unit, `30d`, `24h`, `15m` or `90s`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = String, example = "30d")]
pub struct Span(String);

/// Calendar months or days between subscription credits: `{"months": 1}` or `{"days": 14}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Months(u32),
    Days(u32),
}

/// "Instance N onwards, Payout = x": instance N is paid by the line with the largest `from`
/// not above N. The first line starts at 1.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierLine {
    pub from: u64,
    pub value: Decimal,
}

/// Pays `rate` for orders above the previous band's `up_to` up to and including this one's;
/// the last band has no `up_to`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBand {
    pub up_to: Option<Decimal>,
    pub rate: Decimal,
}

/// `{"rate": "0.10"}` (a fraction of the item amount) or `{"per_unit": "5"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductPay {
    Rate(Decimal),
    PerUnit(Decimal),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductRule {
    pub sku: String,
    pub pays: ProductPay,
}

/// From this much in the member's sales of the calendar month on, pay `rate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthlyThreshold {
    pub from: Decimal,
    pub rate: Decimal,
}

/// How a commission is computed, by `type`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayoutRule {
    /// A flat amount per unique click, by instance.
    Cpc { per_click: Vec<TierLine> },
    /// A flat amount per conversion, by instance.
    Cpa { per_conversion: Vec<TierLine> },
    /// A fraction of the sale amount, by instance.
    Cps { rate: Vec<TierLine> },
    /// A flat amount plus a fraction of the sale amount.
    CpaCps { amount: Decimal, rate: Decimal },
    /// A fraction chosen by the order amount; bands are upper-inclusive.
    OrderBands { bands: Vec<OrderBand> },
    /// Only selected products pay.
    Products { products: Vec<ProductRule> },
    /// A fraction chosen by the member's sales earlier in the same calendar month.
    Accumulated { thresholds: Vec<MonthlyThreshold> },
}

/// The recurring part of a payout option: `rate` of the recurring amount every `every`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecurringTerms {
    pub name: String,
    pub rate: Decimal,
    pub every: Interval,
}

/// One way of paying the members of an offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PayoutOption {
    pub id: String,
    /// The keyword on commission lines (`sale`, `click`, `Pending_sale`).
    pub name: String,
    pub rule: PayoutRule,
    /// Commissions start `pending` and wait for approve / reject.
    #[schema(default = false)]
    pub pending: Option<bool>,
    /// With `pending`: approve automatically this long after the conversion.
    pub hold: Option<Span>,
    pub recurring: Option<RecurringTerms>,
    /// Tier2Tracking: the parent earns this multiple of the 1st-tier amount.
    pub tier2: Option<Decimal>,
    /// Tier3Tracking: the grandparent earns this multiple of the 1st-tier amount.
    pub tier3: Option<Decimal>,
    /// Conversion events this option pays for; empty: every event.
    pub events: Option<Vec<String>>,
}

/// An offer: a promotion members drive traffic to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Offer {
    pub id: String,
    pub advertiser: String,
    pub name: String,
    /// Where a click is redirected unless an allowed deep link is given.
    pub url: String,
    #[schema(example = "USD")]
    pub currency: String,
    pub expires_at: Option<Timestamp>,
    #[schema(default = false)]
    pub paused: Option<bool>,
    #[schema(default = "30d")]
    pub cookie_window: Option<Span>,
    /// `last_click` (default) or `first_click`.
    pub attribution: Option<String>,
    /// `code` (default: a promo code beats a cookie click) or `link`.
    pub code_precedence: Option<String>,
    #[schema(default = "click_id")]
    pub click_id_param: Option<String>,
    /// Hosts a deep link may point to.
    pub deep_link_hosts: Option<Vec<String>>,
    #[schema(default = "24h")]
    pub unique_click_window: Option<Span>,
    pub payout_options: Vec<PayoutOption>,
    /// The payout option of members enrolled without one.
    pub default_payout: String,
}

/// A member's own recurring rate and interval for future credits.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecurringOverride {
    pub rate: Decimal,
    pub every: Interval,
}

/// An affiliate, influencer or publisher.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    pub id: String,
    pub name: String,
    /// `pending`, `approved`, `denied`, `stopped`, `disabled` or `deleted`.
    pub status: Option<String>,
    /// The member who recruited this one; set at sign-up only.
    pub parent: Option<String>,
    /// Social handle (`@jane`), used to name promo codes.
    pub handle: Option<String>,
    /// Overrides the offers' cookie windows for this member's clicks.
    pub cookie_window: Option<Span>,
    /// Bills below this total carry over.
    pub minimum_payout: Option<Decimal>,
    pub joined_at: Timestamp,
}

/// A member's place in an offer, with their own overrides.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolment {
    pub offer: String,
    pub member: String,
    /// Absent: the offer's default payout option.
    pub payout_option: Option<String>,
    /// Replaces the option's rule for this member.
    pub payout_override: Option<PayoutRule>,
    pub recurring_override: Option<RecurringOverride>,
    #[schema(default = true)]
    pub active: Option<bool>,
}

/// A tracking link: `GET /c/{code}` on the tracking edge.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingLink {
    pub code: String,
    pub offer: String,
    pub member: String,
    /// A deep link on one of the offer's allowed hosts.
    pub deep_url: Option<String>,
    #[schema(default = true)]
    pub active: Option<bool>,
}

/// A promo code of a member in an offer; usable while active and inside its dates.
#[derive(Debug, Serialize, ToSchema)]
pub struct PromoCodeGrant {
    pub code: String,
    pub offer: String,
    pub member: String,
    #[schema(default = true)]
    pub active: Option<bool>,
    pub starts_at: Option<Timestamp>,
    /// Exclusive.
    pub ends_at: Option<Timestamp>,
}

/// Program-wide settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramSettings {
    pub name: String,
    pub currency: String,
    pub time_zone: Option<String>,
    pub recruiting: Option<RecruitingRule>,
}

/// Paid to the parent when a recruited member is approved.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecruitingRule {
    pub amount: Decimal,
    pub tier2: Option<Decimal>,
    pub tier3: Option<Decimal>,
}

/// One commission earned by one member.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommissionLine {
    pub id: String,
    pub member: String,
    /// 1 for the member who earned it, 2 for the parent, 3 for the grandparent.
    pub tier: u8,
    pub earned_by: String,
    pub offer: Option<String>,
    pub order_key: Option<String>,
    pub source: String,
    /// `click`, `conversion`, `recurring`, `recruiting` or `adjustment`.
    pub kind: String,
    pub rule: String,
    pub keyword: String,
    pub amount: Decimal,
    pub currency: String,
    /// `pending`, `approved`, `billed`, `paid`, `rejected`, `reversed` or `withdrawn`.
    pub status: String,
    pub description: String,
    pub earned_at: Timestamp,
    pub revision: u32,
    pub bill: Option<String>,
}

/// A member's commission bill for a period, in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bill {
    pub id: String,
    pub member: String,
    pub currency: String,
    pub period_end: Timestamp,
    pub total: Decimal,
    pub lines: u32,
    /// `unpaid`, `paid` or `carried_over`.
    pub status: String,
    pub issued_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    pub revision: u32,
}

/// A subscription account, opened by the first sale of a recurring payout option.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionAccount {
    /// `{advertiser}:{order_id}`.
    pub order_key: String,
    pub conversion: String,
    pub member: String,
    pub offer: String,
    pub name: String,
    pub recurring_amount: Decimal,
    pub currency: String,
    pub rate: Decimal,
    pub every: Interval,
    pub started_at: Timestamp,
    pub anchor_at: Timestamp,
    pub credits_since_anchor: u32,
    pub credits: u32,
    pub cancelled_at: Option<Timestamp>,
    /// `active`, `cancelled` or `closed`.
    pub status: String,
    pub revision: u32,
}

/// One attributed conversion: order date, sale amount, commission, order id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversionReportRow {
    pub conversion: String,
    pub order_date: Timestamp,
    pub offer: String,
    pub member: String,
    pub order_id: String,
    pub sale_amount: Decimal,
    pub currency: String,
    pub commission: Decimal,
    pub status: String,
    pub via: String,
}

/// Totals of one offer or member.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryRow {
    pub key: String,
    pub clicks: u64,
    pub unique_clicks: u64,
    pub conversions: u64,
    pub revenue: Decimal,
    pub commission: Decimal,
    /// Commission per click.
    pub epc: Decimal,
    /// Conversions per unique click.
    pub conversion_rate: Decimal,
}

/// Conversions that earn nothing, counted by reason and offer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionRow {
    pub reason: String,
    pub offer: String,
    pub conversions: u64,
}
