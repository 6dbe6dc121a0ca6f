//! Addresses of the real services, read from the environment. `deploy/test.sh` starts
//! ClickHouse and Tansu on free loopback ports and exports these for the tests.

/// Comma-separated Kafka bootstrap servers (`127.0.0.1:9092`).
pub const KAFKA_BROKERS_ENV: &str = "CLICKLEDGER_KAFKA_BROKERS";
/// ClickHouse HTTP endpoint (`http://127.0.0.1:8123`).
pub const CLICKHOUSE_URL_ENV: &str = "CLICKLEDGER_CLICKHOUSE_URL";
/// A current ClickHouse release over HTTP (`deploy/chdb/server.py`), for the test that runs
/// every statement on both versions.
pub const CURRENT_CLICKHOUSE_URL_ENV: &str = "CLICKLEDGER_CURRENT_CLICKHOUSE_URL";

#[derive(Debug, thiserror::Error)]
#[error("{variable} is not set: start the services with deploy/test.sh (tests) or set it to the service address")]
pub struct MissingService {
    pub variable: &'static str,
}

fn required(variable: &'static str) -> Result<String, MissingService> {
    std::env::var(variable).ok().filter(|value| !value.is_empty()).ok_or(MissingService { variable })
}

pub fn kafka_brokers() -> Result<String, MissingService> {
    required(KAFKA_BROKERS_ENV)
}

pub fn clickhouse_url() -> Result<String, MissingService> {
    required(CLICKHOUSE_URL_ENV)
}

pub fn current_clickhouse_url() -> Result<String, MissingService> {
    required(CURRENT_CLICKHOUSE_URL_ENV)
}
