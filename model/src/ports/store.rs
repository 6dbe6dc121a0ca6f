//! The store port: idempotent batched writes of everything the pipeline produces, the state of
//! the stages, and the report queries analysts and the program API read.
//!
//! Every row has a deterministic id; writing a row again (a replay) leaves one row, the one
//! with the highest revision. Reports read the latest revision of each row.

use std::future::Future;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::events::{Bill, Click, CommissionLine, Conversion, Reason, SubscriptionAccount};
use crate::ids::{AdvertiserId, EventId, MemberId, OfferId, OrderKey};
use crate::program::ProgramRecord;
use crate::time::Timestamp;

/// A click and whether the ledger counted it as unique.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClickRow {
    pub click: Click,
    pub unique: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    /// It won its order and was priced.
    Attributed,
    /// Another conversion of the same order came first.
    Duplicate,
    /// It earns nothing; `reason` says why.
    Rejected,
}

impl ConversionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Attributed => "attributed",
            ConversionStatus::Duplicate => "duplicate",
            ConversionStatus::Rejected => "rejected",
        }
    }
}

/// A conversion with what became of it. A conversion can change from attributed to duplicate
/// when an earlier one of its order arrives; `revision` orders the versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversionRow {
    pub conversion: Conversion,
    pub status: ConversionStatus,
    pub reason: Option<Reason>,
    pub advertiser: Option<AdvertiserId>,
    pub order_key: Option<OrderKey>,
    pub offer: Option<OfferId>,
    pub member: Option<MemberId>,
    /// `cookie`, `click_id`, `code`, or empty.
    pub via: String,
    pub revision: u64,
}

/// A stage's state for one key (or one part of it, `model::journal`), as of the input offset
/// it reflects. An empty `state` deletes the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRow {
    pub stage: String,
    pub partition: u32,
    pub key: String,
    pub offset: u64,
    pub state: Vec<u8>,
}

/// A program change as kept in the history, with its place in the program log.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub offset: u64,
    pub record: ProgramRecord,
}

/// Everything one step of a stage writes. Adapters write outputs before state, so a state row
/// never claims an offset whose outputs are not stored (the embedded store writes all of it in
/// one transaction).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreBatch {
    pub clicks: Vec<ClickRow>,
    pub conversions: Vec<ConversionRow>,
    pub lines: Vec<CommissionLine>,
    pub bills: Vec<Bill>,
    pub subscriptions: Vec<SubscriptionAccount>,
    pub history: Vec<HistoryRow>,
    pub state: Vec<StateRow>,
}

impl StoreBatch {
    pub fn is_empty(&self) -> bool {
        self.clicks.is_empty()
            && self.conversions.is_empty()
            && self.lines.is_empty()
            && self.bills.is_empty()
            && self.subscriptions.is_empty()
            && self.history.is_empty()
            && self.state.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.clicks.len()
            + self.conversions.len()
            + self.lines.len()
            + self.bills.len()
            + self.subscriptions.len()
            + self.history.len()
            + self.state.len()
    }

    pub fn append(&mut self, other: StoreBatch) {
        self.clicks.extend(other.clicks);
        self.conversions.extend(other.conversions);
        self.lines.extend(other.lines);
        self.bills.extend(other.bills);
        self.subscriptions.extend(other.subscriptions);
        self.history.extend(other.history);
        self.state.extend(other.state);
    }
}

/// Filters of the report queries. Dates filter the order date (event time) of conversions
/// and the time of clicks; `to` is exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub offer: Option<OfferId>,
    pub member: Option<MemberId>,
    /// Line status of the conversion report (`pending`, `approved`, ...).
    pub status: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One attributed conversion in the conversion report (seed 001, "Conversion Reports": order
/// date, sale amount, commission earned, order id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
}

/// Totals per offer or per member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// Conversions that earn nothing, counted by reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRow {
    pub reason: String,
    pub offer: String,
    pub conversions: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store is unreachable or busy; retry later.
    #[error("store unavailable: {0}")]
    Retriable(String),
    /// The request can never succeed as sent (schema, data).
    #[error("store error: {0}")]
    Fatal(String),
}

impl StoreError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, StoreError::Retriable(_))
    }
}

/// Where the pipeline's results are kept.
pub trait Store: Clone + Send + Sync + 'static {
    /// Create or upgrade the schema (ordered migrations, each applied once).
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Write a batch; outputs are durable before any state row of the batch. The batch is
    /// shared, so a retry after a retriable error sends the same rows without copying them.
    fn write(&self, batch: Arc<StoreBatch>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest state rows of a stage's partition.
    fn load_state(&self, stage: &str, partition: u32)
    -> impl Future<Output = Result<Vec<StateRow>, StoreError>> + Send;

    fn conversion_report(
        &self,
        query: &ReportQuery,
    ) -> impl Future<Output = Result<Vec<ConversionReportRow>, StoreError>> + Send;

    fn summary(
        &self,
        query: &ReportQuery,
        by: SummaryBy,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    fn rejections(&self, query: &ReportQuery) -> impl Future<Output = Result<Vec<RejectionRow>, StoreError>> + Send;

    /// Changes of the program, oldest first; with an offer, those of that offer.
    fn history(&self, offer: Option<&OfferId>) -> impl Future<Output = Result<Vec<HistoryRow>, StoreError>> + Send;

    /// The latest revision of every commission line matching the filters (member, offer).
    fn lines(&self, query: &ReportQuery) -> impl Future<Output = Result<Vec<CommissionLine>, StoreError>> + Send;

    fn bills(&self, member: Option<&MemberId>) -> impl Future<Output = Result<Vec<Bill>, StoreError>> + Send;

    fn subscriptions(
        &self,
        member: Option<&MemberId>,
    ) -> impl Future<Output = Result<Vec<SubscriptionAccount>, StoreError>> + Send;

    /// The latest version of every conversion row matching the filters.
    fn conversions(&self, query: &ReportQuery) -> impl Future<Output = Result<Vec<ConversionRow>, StoreError>> + Send;
}
