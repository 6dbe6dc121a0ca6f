//! Event log adapters: [`kafka::KafkaLog`] (rdkafka) for the scale deployment and
//! [`sqlite::SqliteLog`] for the embedded one. Both implement `pipeline::ports::EventLog` with the
//! same behaviour, checked by the shared suite in `adapters/tests/log_contract.rs`.

pub mod bundle;
pub mod kafka;
pub mod sqlite;
