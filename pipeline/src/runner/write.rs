//! Writing a batch's outputs: log records, then store rows, retried while the log or the store
//! is unavailable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use model::time::Timestamp;

use super::StageError;
use crate::metrics;
use crate::ports::log::{EventLog, LogError, PartitionId, Record};
use crate::ports::store::{StageStore, StoreBatch, StoreError};

/// What one batch produced, to write.
pub(super) struct BatchOutputs {
    pub(super) stage: &'static str,
    pub(super) records: Vec<Record>,
    pub(super) store: StoreBatch,
    /// When the edge received the inputs that want their lag measured.
    pub(super) received: Vec<Timestamp>,
    pub(super) applied: usize,
    pub(super) started: Instant,
    /// Per input partition, the position after the batch's last input.
    pub(super) positions: Vec<(PartitionId, u64)>,
}

impl BatchOutputs {
    /// Log records, then store rows; then the batch counts as done in the metrics.
    pub(super) async fn write<L: EventLog, St: StageStore>(self, log: L, store: St) -> Result<(), StageError> {
        let stage = self.stage;
        let records = self.records.len();
        if !self.records.is_empty() {
            let started = Instant::now();
            let records = self.records;
            persist(stage, "append outputs", || log.append(records.clone())).await?;
            ::metrics::histogram!(metrics::WRITE_SECONDS, "stage" => stage, "target" => "log")
                .record(started.elapsed());
        }
        let batch = Arc::new(self.store);
        if !batch.is_empty() {
            let started = Instant::now();
            persist(stage, "write store", || store.write(batch.clone())).await?;
            ::metrics::histogram!(metrics::WRITE_SECONDS, "stage" => stage, "target" => "store")
                .record(started.elapsed());
        }
        metrics::written(stage, records, &batch);
        if !self.received.is_empty() {
            let durable = Timestamp::now();
            let lag = ::metrics::histogram!(metrics::LAG_SECONDS, "stage" => stage);
            for at in self.received {
                lag.record(Duration::from_millis(u64::try_from(durable.millis() - at.millis()).unwrap_or(0)));
            }
        }
        if self.applied > 0 {
            ::metrics::counter!(metrics::RECORDS, "stage" => stage).increment(self.applied as u64);
            ::metrics::histogram!(metrics::BATCH_SECONDS, "stage" => stage).record(self.started.elapsed());
        }
        // Where each partition's outputs are durable up to: with the log's end offsets, the
        // stage's lag in records. Inputs applied again after a rebalance move it back and
        // forward again, where `clickledger_stage_records_total` counts them twice.
        for (partition, next) in self.positions {
            let (topic, partition) = (partition.topic.to_string(), partition.partition.to_string());
            ::metrics::gauge!(metrics::POSITION, "stage" => stage, "topic" => topic, "partition" => partition)
                .set(next as f64);
        }
        Ok(())
    }
}

/// Retry a retriable failure with backoff (the log or store is down: wait, do not crash).
pub(super) async fn persist<T, E, Attempt>(
    stage: &'static str,
    operation: &'static str,
    mut attempt: impl FnMut() -> Attempt,
) -> Result<T, E>
where
    Attempt: Future<Output = Result<T, E>>,
    E: std::fmt::Display + Retriable,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(error) if error.retriable() => {
                tracing::warn!(stage, operation, %error, "retrying");
                metrics::retried(stage, operation);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

pub(super) trait Retriable {
    fn retriable(&self) -> bool;
}

impl Retriable for LogError {
    fn retriable(&self) -> bool {
        self.is_retriable()
    }
}

impl Retriable for StoreError {
    fn retriable(&self) -> bool {
        self.is_retriable()
    }
}
