//! The two ports of the pipeline (DESIGN decision 2). Pipeline code is written against these
//! traits and never names an adapter; `clickledger-adapters` provides Kafka and SQLite logs,
//! ClickHouse and SQLite stores.

pub mod log;

pub use log::{
    Delivered, EventLog, LogConsumer, LogError, PartitionId, Polled, Record, TopicSpec, Topics, partition_for,
};
