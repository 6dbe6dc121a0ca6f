//! The `ledger` topic and the settler's outputs: commission lines, bills and subscription
//! accounts.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{AttributedConversion, CapVerdict, Click, Decision, Refund, Reversal, SubscriptionCancel};
use crate::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey};
use crate::money::Currency;
use crate::time::{Interval, Timestamp};

/// Everything that moves money for the members of one family (keyed by the family root).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerEvent {
    /// A click, for unique-click counting, CPC and the click report.
    Click(Click),
    /// The conversion that wins its order (the earliest by event time, then event id).
    Order(AttributedConversion),
    /// An earlier conversion of the same order arrived: this one no longer wins, and its lines
    /// are withdrawn.
    Withdraw {
        order_key: OrderKey,
        conversion: EventId,
    },
    Refund {
        order_key: OrderKey,
        refund: Refund,
    },
    Cancel {
        order_key: OrderKey,
        cancel: SubscriptionCancel,
    },
    Decision(Decision),
    /// A recruited member was approved: the parent earns the recruiting commission.
    MemberApproved {
        id: EventId,
        member: MemberId,
        at: Timestamp,
    },
    /// Bill the family's approved, unbilled lines earned before `period_end`.
    BillRun {
        id: EventId,
        period_end: Timestamp,
        at: Timestamp,
        actor: String,
    },
    BillPaid {
        id: EventId,
        bill: DerivedId,
        at: Timestamp,
        actor: String,
    },
    /// A program manager reversed an order: its lines earn nothing, billed ones are corrected
    /// in the next bill.
    Reversal(Reversal),
    /// A program manager's bonus (positive `amount`) or clawback (negative) for a member.
    Manual(ManualLine),
    /// The caps decided on an order: over a cap, its lines earn nothing (or wait, per the
    /// offer's `over_cap`); within again, they earn.
    CapVerdict(CapVerdict),
    /// New rate and interval for the future credits of one subscription account.
    SubscriptionTerms {
        id: EventId,
        order_key: OrderKey,
        rate: Decimal,
        every: Interval,
        at: Timestamp,
        actor: String,
    },
}

/// A bonus or clawback line a program manager asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManualLine {
    pub id: EventId,
    pub member: MemberId,
    /// The offer it is for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OfferId>,
    /// Positive: a bonus; negative: a clawback.
    pub amount: Decimal,
    pub currency: Currency,
    pub reason: String,
    pub actor: String,
    pub at: Timestamp,
}

/// What earned a commission line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Click,
    Conversion,
    Recurring,
    Recruiting,
    /// A correction after billing (a refund or reversal of a billed line).
    Adjustment,
    /// A manual commission a program manager added, with a reason.
    Bonus,
    /// A manual deduction a program manager made, with a reason.
    Clawback,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Click => "click",
            LineKind::Conversion => "conversion",
            LineKind::Recurring => "recurring",
            LineKind::Recruiting => "recruiting",
            LineKind::Adjustment => "adjustment",
            LineKind::Bonus => "bonus",
            LineKind::Clawback => "clawback",
        }
    }
}

/// pending → approved → billed → paid; pending → rejected; refunded in full → reversed;
/// replaced by an earlier conversion of the same order → withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    Pending,
    Approved,
    Billed,
    Paid,
    Rejected,
    Reversed,
    Withdrawn,
}

impl LineStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LineStatus::Pending => "pending",
            LineStatus::Approved => "approved",
            LineStatus::Billed => "billed",
            LineStatus::Paid => "paid",
            LineStatus::Rejected => "rejected",
            LineStatus::Reversed => "reversed",
            LineStatus::Withdrawn => "withdrawn",
        }
    }

    /// Billed or paid: the amount is frozen, corrections become adjustment lines.
    pub fn is_billed(self) -> bool {
        matches!(self, LineStatus::Billed | LineStatus::Paid)
    }

    /// Rejected, reversed or withdrawn: pays nothing and changes no more.
    pub fn is_void(self) -> bool {
        matches!(self, LineStatus::Rejected | LineStatus::Reversed | LineStatus::Withdrawn)
    }
}

/// One commission earned by one member. Lines change (status, refunds); each change raises
/// `revision`, and the store keeps the highest revision of each id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommissionLine {
    pub id: DerivedId,
    pub member: MemberId,
    /// 1 for the member who earned it, 2 for the parent, 3 for the grandparent.
    pub tier: u8,
    /// The 1st-tier member whose activity produced this line.
    pub earned_by: MemberId,
    #[serde(default)]
    pub offer: Option<OfferId>,
    #[serde(default)]
    pub order_key: Option<OrderKey>,
    /// The event that produced the line (click, conversion, recruit, refund, ...).
    pub source: EventId,
    pub kind: LineKind,
    /// The rule that computed it (`cpc`, `cps`, `order_bands`, `products`, `tier2`, ...).
    pub rule: String,
    /// The payout option keyword (`sale`, `Pending_sale`, `subscriptionsales`).
    pub keyword: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub status: LineStatus,
    pub description: String,
    /// Event time of what earned it.
    pub earned_at: Timestamp,
    pub revision: u32,
    #[serde(default)]
    pub bill: Option<DerivedId>,
}

/// unpaid → paid, or carried over to the next bill.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BillStatus {
    Unpaid,
    Paid,
    /// Under the member's minimum payout (or not positive): the lines wait for the next bill.
    CarriedOver,
}

impl BillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillStatus::Unpaid => "unpaid",
            BillStatus::Paid => "paid",
            BillStatus::CarriedOver => "carried_over",
        }
    }
}

/// A member's commission bill for a period, in one currency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bill {
    pub id: DerivedId,
    pub member: MemberId,
    pub currency: Currency,
    pub period_end: Timestamp,
    pub total: Decimal,
    pub lines: u32,
    pub status: BillStatus,
    pub issued_at: Timestamp,
    #[serde(default)]
    pub paid_at: Option<Timestamp>,
    pub revision: u32,
}

/// Whether a subscription account still earns credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Cancelled,
    /// The first sale was rejected or refunded in full.
    Closed,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Closed => "closed",
        }
    }
}

/// A subscription account, opened by the first sale of a recurring payout option and keyed
/// by its order (seed 004, "Subscription Accounts").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubscriptionAccount {
    pub order_key: OrderKey,
    /// The conversion that opened it.
    pub conversion: EventId,
    pub member: MemberId,
    pub offer: OfferId,
    /// The subscription keyword (`subscriptionsales`).
    pub name: String,
    pub recurring_amount: Decimal,
    pub currency: Currency,
    pub rate: Decimal,
    pub every: Interval,
    pub started_at: Timestamp,
    /// Credits fall due at `anchor_at + n × every`; the anchor moves when the terms change.
    pub anchor_at: Timestamp,
    pub credits_since_anchor: u32,
    pub credits: u32,
    #[serde(default)]
    pub cancelled_at: Option<Timestamp>,
    pub status: SubscriptionStatus,
    pub revision: u32,
}

impl SubscriptionAccount {
    /// When the next credit falls due.
    pub fn next_credit_at(&self) -> Timestamp {
        self.anchor_at.add_interval(self.every, self.credits_since_anchor + 1)
    }
}
