//! The store port, in two halves: what the stages need ([`StageStore`]: idempotent batched
//! writes of everything the pipeline produces, and the stages' saved state) and what reports
//! need ([`ReportStore`]: the queries analysts and the program API read). The API depends on
//! the report half only.
//!
//! Every row has a deterministic id; writing a row again (a replay) leaves one row, the one
//! with the highest revision. Reports read the latest revision of each row.

use std::future::Future;
use std::sync::Arc;

use model::events::{Bill, ClickRow, CommissionLine, ConversionRow, DeliveryRow, SubscriptionAccount};
use model::ids::{MemberId, OfferId};
use model::program::ProgramRecord;
use model::reports::{ConversionReportRow, RejectedConversionRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};

/// A stage's state for one key (or one part of it, [`crate::journal`]), as of the input offset
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
    /// The notifier's delivery log.
    pub deliveries: Vec<DeliveryRow>,
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
            && self.deliveries.is_empty()
            && self.state.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.clicks.len()
            + self.conversions.len()
            + self.lines.len()
            + self.bills.len()
            + self.subscriptions.len()
            + self.history.len()
            + self.deliveries.len()
            + self.state.len()
    }

    pub fn append(&mut self, other: StoreBatch) {
        self.clicks.extend(other.clicks);
        self.conversions.extend(other.conversions);
        self.lines.extend(other.lines);
        self.bills.extend(other.bills);
        self.subscriptions.extend(other.subscriptions);
        self.history.extend(other.history);
        self.deliveries.extend(other.deliveries);
        self.state.extend(other.state);
    }
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

/// Where the stages write their results and keep their state.
pub trait StageStore: Clone + Send + Sync + 'static {
    /// Create or upgrade the schema (ordered migrations, each applied once).
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Write a batch; outputs are durable before any state row of the batch. The batch is
    /// shared, so a retry after a retriable error sends the same rows without copying them.
    fn write(&self, batch: Arc<StoreBatch>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest state rows of a stage's partition.
    fn load_state(&self, stage: &str, partition: u32)
    -> impl Future<Output = Result<Vec<StateRow>, StoreError>> + Send;
}

/// The reports read from what the stages wrote.
pub trait ReportStore: Clone + Send + Sync + 'static {
    fn conversion_report(
        &self,
        query: &ReportQuery,
    ) -> impl Future<Output = Result<Vec<ConversionReportRow>, StoreError>> + Send;

    fn summary(
        &self,
        query: &ReportQuery,
        by: SummaryBy,
    ) -> impl Future<Output = Result<Vec<SummaryRow>, StoreError>> + Send;

    /// Conversions that earn nothing, counted by reason and offer.
    fn rejections(&self, query: &ReportQuery) -> impl Future<Output = Result<Vec<RejectionRow>, StoreError>> + Send;

    /// Conversions that earn nothing, one row each, oldest first.
    fn rejected_conversions(
        &self,
        query: &ReportQuery,
    ) -> impl Future<Output = Result<Vec<RejectedConversionRow>, StoreError>> + Send;

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

    /// The latest revision of the deliveries matching the filters, newest first.
    fn deliveries(&self, query: &DeliveryQuery) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;
}

/// Filters of the delivery log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    pub id: Option<String>,
    pub status: Option<model::events::DeliveryStatus>,
    pub destination: Option<String>,
    pub notice: Option<String>,
    pub kind: Option<model::events::NoticeKind>,
    /// At most this many rows (the newest).
    pub limit: usize,
}

/// A store with both halves, as every adapter is.
pub trait Store: StageStore + ReportStore {}

impl<T: StageStore + ReportStore> Store for T {}
