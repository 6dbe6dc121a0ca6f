//! The Prometheus metrics every stage exports (the attributor's and the settler's stages),
//! labelled by `stage` (the consumer group's name). The recorder and the
//! `/metrics` listener are the process's (`adapters::process`); `deploy/grafana/` charts
//! these. Names follow Prometheus' conventions: counters end in `_total`, durations are
//! `_seconds`, sizes count records or keys.

use std::time::Duration;

use crate::ports::log::PartitionId;
use crate::ports::store::StoreBatch;

/// Inputs applied (a repeat after a rebalance counts again).
pub const RECORDS: &str = "clickledger_stage_records_total";
/// Inputs per batch.
pub const BATCH_RECORDS: &str = "clickledger_stage_batch_records";
/// Decoding and applying one batch to the states, in memory.
pub const APPLY_SECONDS: &str = "clickledger_stage_apply_seconds";
/// From a batch's poll until its outputs are durable.
pub const BATCH_SECONDS: &str = "clickledger_stage_batch_seconds";
/// Writing one batch's outputs, by `target` (`log`, `store`), retries included.
pub const WRITE_SECONDS: &str = "clickledger_stage_write_seconds";
/// Saving a checkpoint's changed states, retries included.
pub const CHECKPOINT_SECONDS: &str = "clickledger_stage_checkpoint_seconds";
/// Retried writes and reads, by `operation` (`append outputs`, `write store`, `save state`,
/// `load state`).
pub const RETRIES: &str = "clickledger_stage_retries_total";
/// Outputs written, by `kind` (`records` to the log; `clicks`, `conversions`, `lines`,
/// `bills`, `subscriptions`, `history` rows to the store).
pub const OUTPUTS: &str = "clickledger_stage_outputs_total";
/// Conversions written as rejected or duplicate, by `reason`.
pub const REJECTIONS: &str = "clickledger_stage_rejections_total";
/// Keys held in memory, per `partition`.
pub const STATE_KEYS: &str = "clickledger_stage_state_keys";
/// Keys whose state held nothing worth keeping and left memory and the store.
pub const KEYS_FORGOTTEN: &str = "clickledger_stage_keys_forgotten_total";
/// Messages of a `topic`'s `partition` after the group's committed position (the consumer
/// lag; on Kafka's bundled topics a message is a bundle), measured every second.
pub const LAG_MESSAGES: &str = "clickledger_stage_lag_messages";
/// From the edge receiving an input until the stage's outputs of it are durable.
pub const LAG_SECONDS: &str = "clickledger_stage_lag_seconds";
/// The offset after the last input whose outputs are durable, per `topic` and `partition`.
pub const POSITION: &str = "clickledger_stage_position";
/// Partitions the group assigned to this instance.
pub const PARTITIONS_ASSIGNED: &str = "clickledger_stage_partitions_assigned_total";
/// Records that did not decode and were skipped.
pub const UNDECODABLE: &str = "clickledger_stage_undecodable_total";

/// Every stage metric, for the dashboard's test.
pub const ALL: &[&str] = &[
    RECORDS,
    BATCH_RECORDS,
    APPLY_SECONDS,
    BATCH_SECONDS,
    WRITE_SECONDS,
    CHECKPOINT_SECONDS,
    RETRIES,
    OUTPUTS,
    REJECTIONS,
    STATE_KEYS,
    KEYS_FORGOTTEN,
    LAG_MESSAGES,
    LAG_SECONDS,
    POSITION,
    PARTITIONS_ASSIGNED,
    UNDECODABLE,
];

/// What retries: the operations [`RETRIES`] counts.
pub const OPERATIONS: &[&str] = &["append outputs", "write store", "save state", "load state"];

/// The stage's series, at zero, as it joins its group: a dashboard shows a stage that has done
/// nothing yet, and a rate over a counter starts from its first value.
pub fn register(stage: &'static str) {
    metrics::counter!(RECORDS, "stage" => stage).absolute(0);
    for operation in OPERATIONS {
        metrics::counter!(RETRIES, "stage" => stage, "operation" => *operation).absolute(0);
    }
    metrics::counter!(KEYS_FORGOTTEN, "stage" => stage).absolute(0);
    metrics::counter!(UNDECODABLE, "stage" => stage).absolute(0);
    metrics::counter!(OUTPUTS, "stage" => stage, "kind" => "records").absolute(0);
}

pub fn retried(stage: &'static str, operation: &'static str) {
    metrics::counter!(RETRIES, "stage" => stage, "operation" => operation).increment(1);
}

pub fn applied(stage: &'static str, records: usize, took: Duration) {
    if records > 0 {
        metrics::histogram!(BATCH_RECORDS, "stage" => stage).record(records as f64);
        metrics::histogram!(APPLY_SECONDS, "stage" => stage).record(took);
    }
}

/// A batch's outputs, counted as they became durable.
pub fn written(stage: &'static str, records: usize, store: &StoreBatch) {
    let kinds = [
        ("records", records),
        ("clicks", store.clicks.len()),
        ("conversions", store.conversions.len()),
        ("lines", store.lines.len()),
        ("bills", store.bills.len()),
        ("subscriptions", store.subscriptions.len()),
        ("history", store.history.len()),
        ("deliveries", store.deliveries.len()),
    ];
    for (kind, count) in kinds {
        if count > 0 {
            metrics::counter!(OUTPUTS, "stage" => stage, "kind" => kind).increment(count as u64);
        }
    }
    for row in &store.conversions {
        let reason = match (row.status, row.reason) {
            (model::events::ConversionStatus::Attributed, _) => continue,
            (_, Some(reason)) => reason.as_str(),
            (model::events::ConversionStatus::Duplicate, None) => "duplicate_order",
            (model::events::ConversionStatus::Rejected, None) => "unknown",
        };
        metrics::counter!(REJECTIONS, "stage" => stage, "reason" => reason).increment(1);
    }
}

pub fn state_keys(stage: &'static str, partition: &PartitionId, keys: usize) {
    metrics::gauge!(STATE_KEYS, "stage" => stage, "partition" => partition.partition.to_string()).set(keys as f64);
}

pub fn lag(stage: &'static str, partition: &PartitionId, behind: u64) {
    let (topic, number) = (partition.topic.to_string(), partition.partition.to_string());
    metrics::gauge!(LAG_MESSAGES, "stage" => stage, "topic" => topic, "partition" => number).set(behind as f64);
}

/// A partition this instance no longer holds: its gauges here go to zero (the instance that
/// holds it now reports it).
pub fn released(stage: &'static str, partition: &PartitionId) {
    let (topic, number) = (partition.topic.to_string(), partition.partition.to_string());
    metrics::gauge!(LAG_MESSAGES, "stage" => stage, "topic" => topic.clone(), "partition" => number.clone()).set(0.0);
    metrics::gauge!(POSITION, "stage" => stage, "topic" => topic, "partition" => number.clone()).set(0.0);
    metrics::gauge!(STATE_KEYS, "stage" => stage, "partition" => number).set(0.0);
}
