//! The real services the test command starts (Kafka, ClickHouse), and the embedded log and
//! store in a temporary directory. A test that needs a service fails, naming the variable to
//! set, when it is missing.

use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::StageStore;

use crate::setup::unique;

/// Log to the test's output, filtered by RUST_LOG.
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A Kafka log (Tansu from the test command) with fresh topics of `partitions` partitions.
pub async fn kafka(partitions: u32) -> (adapters::log::kafka::KafkaLog, Topics) {
    trace();
    let brokers = adapters::services::kafka_brokers().expect("Kafka is required: run the README's test command");
    let topics = Topics::with_prefix(&unique("e2e-"));
    let config = adapters::log::kafka::KafkaConfig::new(brokers).bundling(&topics);
    let log = adapters::log::kafka::KafkaLog::connect(config).unwrap();
    log.create_topics(&topics.specs(partitions)).await.unwrap();
    (log, topics)
}

/// A fresh ClickHouse database (from the test command) with the schema applied.
pub async fn clickhouse() -> adapters::store::clickhouse::ClickHouseStore {
    clickhouse_database(&unique("e2e_")).await
}

pub async fn clickhouse_database(database: &str) -> adapters::store::clickhouse::ClickHouseStore {
    let url = adapters::services::clickhouse_url().expect("ClickHouse is required: run the README's test command");
    let store = adapters::store::clickhouse::ClickHouseStore::connect(&url, database).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// An embedded log and store in a temporary directory, with topics of `partitions` partitions.
pub async fn embedded(
    partitions: u32,
) -> (adapters::log::sqlite::SqliteLog, adapters::store::sqlite::SqliteStore, Topics, tempfile::TempDir) {
    trace();
    let dir = tempfile::tempdir().unwrap();
    let log =
        adapters::log::sqlite::SqliteLog::open(adapters::log::sqlite::SqliteLogConfig::new(dir.path().join("log.db")))
            .unwrap();
    let topics = Topics::with_prefix("clickledger.");
    log.create_topics(&topics.specs(partitions)).await.unwrap();
    let store = adapters::store::sqlite::SqliteStore::open(dir.path().join("store.db")).unwrap();
    store.migrate().await.unwrap();
    (log, store, topics, dir)
}
