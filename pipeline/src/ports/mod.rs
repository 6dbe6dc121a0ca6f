//! The two ports of the pipeline (docs/DECISIONS.md, "Two ports, two adapters each").
//! Pipeline code is written against these traits and never names an adapter;
//! `clickledger-adapters` provides Kafka and SQLite logs, ClickHouse and SQLite stores.

pub mod log;
pub mod store;

pub use log::{
    Delivered, EventLog, LogConsumer, LogError, PartitionId, Polled, Record, TopicSpec, Topics, partition_for,
};
pub use store::{HistoryRow, ReportStore, StageStore, StateRow, Store, StoreBatch, StoreError};
