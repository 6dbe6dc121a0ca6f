//! What every handler reaches: the log and the store behind one object-safe [`Backend`] (so
//! handlers are plain functions the OpenAPI document can name), the program this process
//! follows, and the one place program changes are written ([`ApiState::commit`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use model::events::{Bill, CommissionLine, LedgerEvent, OrderEvent, SubscriptionAccount, wire};
use model::events::{ConversionRow, DeliveryRow};
use model::ids::{MemberId, OfferId};
use model::program::{Program, ProgramChange, ProgramRecord};
use model::reports::{ConversionReportRow, RejectedConversionRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};
use model::time::Timestamp;
use pipeline::Clock;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogError, PartitionId, Record, Topics};
use pipeline::ports::store::{DeliveryQuery, HistoryRow, ReportStore, StoreError};

use crate::credentials::KeyRing;
use crate::error::ApiError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The log and store calls the API makes, without their adapters' types.
pub trait Backend: Send + Sync + 'static {
    fn append(&self, records: Vec<Record>) -> BoxFuture<'static, Result<(), LogError>>;
    fn end_offset(&self, partition: PartitionId) -> BoxFuture<'static, Result<u64, LogError>>;
    fn conversion_report(&self, query: ReportQuery)
    -> BoxFuture<'static, Result<Vec<ConversionReportRow>, StoreError>>;
    fn summary(&self, query: ReportQuery, by: SummaryBy) -> BoxFuture<'static, Result<Vec<SummaryRow>, StoreError>>;
    fn rejections(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<RejectionRow>, StoreError>>;
    fn rejected_conversions(
        &self,
        query: ReportQuery,
    ) -> BoxFuture<'static, Result<Vec<RejectedConversionRow>, StoreError>>;
    fn history(&self, offer: Option<OfferId>) -> BoxFuture<'static, Result<Vec<HistoryRow>, StoreError>>;
    fn lines(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<CommissionLine>, StoreError>>;
    fn bills(&self, member: Option<MemberId>) -> BoxFuture<'static, Result<Vec<Bill>, StoreError>>;
    fn subscriptions(
        &self,
        member: Option<MemberId>,
    ) -> BoxFuture<'static, Result<Vec<SubscriptionAccount>, StoreError>>;
    fn conversions(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<ConversionRow>, StoreError>>;
    fn deliveries(&self, query: DeliveryQuery) -> BoxFuture<'static, Result<Vec<DeliveryRow>, StoreError>>;
}

struct Deployed<L, St> {
    log: L,
    store: St,
}

impl<L: EventLog, St: ReportStore> Backend for Deployed<L, St> {
    fn append(&self, records: Vec<Record>) -> BoxFuture<'static, Result<(), LogError>> {
        Box::pin(self.log.append(records))
    }

    fn end_offset(&self, partition: PartitionId) -> BoxFuture<'static, Result<u64, LogError>> {
        Box::pin(self.log.end_offset(&partition))
    }

    fn conversion_report(
        &self,
        query: ReportQuery,
    ) -> BoxFuture<'static, Result<Vec<ConversionReportRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.conversion_report(&query).await })
    }

    fn summary(&self, query: ReportQuery, by: SummaryBy) -> BoxFuture<'static, Result<Vec<SummaryRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.summary(&query, by).await })
    }

    fn rejections(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<RejectionRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.rejections(&query).await })
    }

    fn rejected_conversions(
        &self,
        query: ReportQuery,
    ) -> BoxFuture<'static, Result<Vec<RejectedConversionRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.rejected_conversions(&query).await })
    }

    fn history(&self, offer: Option<OfferId>) -> BoxFuture<'static, Result<Vec<HistoryRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.history(offer.as_ref()).await })
    }

    fn lines(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<CommissionLine>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.lines(&query).await })
    }

    fn bills(&self, member: Option<MemberId>) -> BoxFuture<'static, Result<Vec<Bill>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.bills(member.as_ref()).await })
    }

    fn subscriptions(
        &self,
        member: Option<MemberId>,
    ) -> BoxFuture<'static, Result<Vec<SubscriptionAccount>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.subscriptions(member.as_ref()).await })
    }

    fn conversions(&self, query: ReportQuery) -> BoxFuture<'static, Result<Vec<ConversionRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.conversions(&query).await })
    }

    fn deliveries(&self, query: DeliveryQuery) -> BoxFuture<'static, Result<Vec<DeliveryRow>, StoreError>> {
        let store = self.store.clone();
        Box::pin(async move { store.deliveries(&query).await })
    }
}

/// How long a change may take to come back from the log into this process's program before
/// the API answers 503: the change is on the log then, and will still apply.
const APPLY_PATIENCE: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct ApiState {
    pub backend: Arc<dyn Backend>,
    pub program: Arc<SharedProgram>,
    pub topics: Topics,
    pub keys: KeyRing,
    pub clock: Clock,
    /// The dashboard's signed-in sessions (`crate::ui`).
    pub sessions: Arc<crate::ui::Sessions>,
    /// One program writer at a time in this process, so a change is checked against the
    /// program that includes every earlier change. Held across the append and the wait for
    /// the change to come back, which is what it serialises.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("topics", &self.topics).finish()
    }
}

impl ApiState {
    pub fn new<L: EventLog, St: ReportStore>(
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        topics: Topics,
        keys: KeyRing,
    ) -> Self {
        Self {
            backend: Arc::new(Deployed { log, store }),
            program,
            topics,
            keys,
            clock: pipeline::wall_clock(),
            sessions: crate::ui::sessions(),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The same state with another clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Build changes from the current program and write them: checked in order by the strict
    /// fold, appended to the program log as one batch by `actor`, and applied to this
    /// process's program before this returns — so the next request, and the tracking edge
    /// sharing this program, see them. Changes that change nothing are left out. Returns the
    /// records written.
    pub async fn commit<T>(
        &self,
        actor: &str,
        build: impl FnOnce(&Program) -> Result<(Vec<ProgramChange>, T), ApiError>,
    ) -> Result<(Vec<ProgramRecord>, T), ApiError> {
        let _writer = self.writer.lock().await;
        let (changes, value) = self.program.read(build)?;
        let planned = self.program.read(|program| program.plan(changes))?;
        if planned.is_empty() {
            return Ok((Vec::new(), value));
        }
        let at = self.now();
        let records: Vec<ProgramRecord> =
            planned.into_iter().map(|change| ProgramRecord { at, actor: actor.to_string(), change }).collect();
        let appended = records
            .iter()
            .map(|record| Record {
                topic: self.topics.program.clone(),
                key: record.change.key(),
                payload: wire::encode(record),
            })
            .collect();
        self.backend.append(appended).await.map_err(log_error)?;
        let end = self
            .backend
            .end_offset(PartitionId { topic: self.topics.program.clone(), partition: 0 })
            .await
            .map_err(log_error)?;
        if !self.program.wait_for(end, APPLY_PATIENCE).await {
            return Err(ApiError::Unavailable(
                "the change is on the program log but this process has not applied it yet".into(),
            ));
        }
        Ok((records, value))
    }

    /// Append order changes (decisions, refunds, cancels), keyed by order.
    pub async fn send_orders(&self, events: Vec<(String, OrderEvent)>) -> Result<(), ApiError> {
        let records = events
            .into_iter()
            .map(|(key, event)| Record {
                topic: self.topics.orders.clone(),
                key,
                payload: wire::encode_compact(&event),
            })
            .collect();
        self.backend.append(records).await.map_err(log_error)
    }

    /// Append ledger events, each keyed by the family root of the member it is about.
    pub async fn send_ledger(&self, events: Vec<(String, LedgerEvent)>) -> Result<(), ApiError> {
        let records = events
            .into_iter()
            .map(|(key, event)| Record {
                topic: self.topics.ledger.clone(),
                key,
                payload: wire::encode_compact(&event),
            })
            .collect();
        self.backend.append(records).await.map_err(log_error)
    }
}

pub fn log_error(error: LogError) -> ApiError {
    match error {
        LogError::Overloaded(message) | LogError::Unavailable(message) => ApiError::Unavailable(message),
        LogError::Fatal(message) => ApiError::Internal(message),
    }
}
