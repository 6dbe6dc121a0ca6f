//! The ClickHouse store (scale deployment), through the `clickhouse` crate over HTTP with
//! RowBinary. Validation is off: ClickHouse 18.16 cannot describe columns the way the crate's
//! validation needs, and the row structs mirror `deploy/clickhouse/*.sql` column by column.
//!
//! - [`sql`]: every statement the store sends, in one place.
//! - `write`: a batch inserted table by table, outputs first and stage state last.
//! - `state`: a stage partition's saved state read back.
//! - `reports`: the report queries.
//! - `migrate`: the schema, one migration at a time.
//!
//! Inserts are idempotent (ReplacingMergeTree on deterministic ids), so a failed insert is
//! simply retried: [`classify`] is the one place that decides what is worth retrying, and
//! [`retrying`] backs off.

mod migrate;
mod reports;
pub mod sql;
mod state;
mod write;

use std::sync::Arc;
use std::time::Duration;

use clickhouse::Row;
use pipeline::ports::store::{StageStore, StateRow, StoreBatch, StoreError};
use serde::{Deserialize, Serialize};

use sql::{Bind, Read, Statement};

#[derive(Clone)]
pub struct ClickHouseStore {
    client: clickhouse::Client,
    database: String,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").field("database", &self.database).finish()
    }
}

/// The one place that decides whether a ClickHouse error is worth retrying: the network, time
/// outs, and the server's own transient refusals (too many parts or queries, memory).
pub fn classify(error: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error;
    const TRANSIENT_CODES: &[&str] =
        &["Code: 159", "Code: 202", "Code: 209", "Code: 210", "Code: 241", "Code: 252", "Code: 425"];
    match &error {
        Error::Network(_) | Error::TimedOut => StoreError::Retriable(error.to_string()),
        Error::BadResponse(text) if TRANSIENT_CODES.iter().any(|code| text.contains(code)) => {
            StoreError::Retriable(error.to_string())
        }
        _ => StoreError::Fatal(error.to_string()),
    }
}

/// Run `operation` until it succeeds, fails for good, or six tries passed, backing off from
/// 100 ms to 3.2 s between tries.
pub async fn retrying<T, Operation, Attempt>(what: &str, mut operation: Operation) -> Result<T, StoreError>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        match operation().await {
            Err(StoreError::Retriable(message)) if attempt < 6 => {
                tracing::warn!(what, attempt, %message, "ClickHouse is unavailable, retrying");
                metrics::counter!(super::RETRIES, "operation" => what.to_string()).increment(1);
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            result => return result,
        }
    }
    Err(StoreError::Retriable(format!("{what}: gave up")))
}

impl ClickHouseStore {
    /// Connect to `url`, creating `database` if needed.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        Self::connect_with(clickhouse::Client::default().with_url(url), database).await
    }

    /// Connect with a client of the caller's (compression, headers), creating `database` if
    /// needed.
    pub async fn connect_with(client: clickhouse::Client, database: &str) -> Result<Self, StoreError> {
        let valid = !database.is_empty() && database.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !valid {
            return Err(StoreError::Fatal(format!("database name {database:?} must be [A-Za-z0-9_]")));
        }
        let server = client.with_validation(false);
        let statement = sql::create_database(database);
        retrying("create database", || async { server.query(&statement).execute().await.map_err(classify) }).await?;
        Ok(Self { client: server.with_database(database), database: database.to_string() })
    }

    async fn execute(&self, what: &str, statement: &str) -> Result<(), StoreError> {
        retrying(what, || async { self.client.query(statement).execute().await.map_err(classify) }).await
    }

    async fn insert<T: Row + Serialize + Sync + Send + 'static>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError>
    where
        for<'a> T: Row<Value<'a> = T>,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let inserted = retrying(table, || async {
            let mut insert = self.client.insert::<T>(table).await.map_err(classify)?;
            for row in rows {
                insert.write(row).await.map_err(classify)?;
            }
            insert.end().await.map_err(classify)
        })
        .await;
        metrics::histogram!(super::INSERT_SECONDS, "table" => table.to_string()).record(started.elapsed());
        inserted
    }

    /// `statement` with its values bound.
    fn query(&self, statement: &Statement) -> clickhouse::query::Query {
        let mut query = self.client.query(&statement.sql);
        for bind in &statement.binds {
            query = match bind {
                Bind::Text(value) => query.bind(value.as_str()),
                Bind::Int(value) => query.bind(*value),
            };
        }
        query
    }

    /// Every row of `read`.
    async fn fetch<T>(&self, read: Read<'_>) -> Result<Vec<T>, StoreError>
    where
        T: Row + for<'b> Deserialize<'b> + Send + 'static,
        for<'a> T: Row<Value<'a> = T>,
    {
        let statement = read.statement();
        retrying("query", || async { self.query(&statement).fetch_all::<T>().await.map_err(classify) }).await
    }
}

impl ClickHouseStore {
    /// The answer to `read` as the server sends it in `format`: for comparing what two
    /// ClickHouse versions answer to the same statement.
    pub async fn read_bytes(&self, read: Read<'_>, format: &str) -> Result<Vec<u8>, StoreError> {
        let mut cursor = self.query(&read.statement()).fetch_bytes(format).map_err(classify)?;
        Ok(cursor.collect().await.map_err(classify)?.to_vec())
    }
}

impl StageStore for ClickHouseStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        migrate::migrate(self).await
    }

    async fn write(&self, batch: Arc<StoreBatch>) -> Result<(), StoreError> {
        write::write_batch(self, &batch).await
    }

    async fn load_state(&self, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
        state::load_state(self, stage, partition).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_errors_are_retried() {
        use clickhouse::error::Error;
        assert!(classify(Error::TimedOut).is_retriable());
        assert!(
            classify(Error::BadResponse("Code: 252, e.displayText() = DB::Exception: Too many parts".into()))
                .is_retriable()
        );
        assert!(
            !classify(Error::BadResponse("Code: 62, e.displayText() = DB::Exception: Syntax error".into()))
                .is_retriable()
        );
        assert!(!classify(Error::RowNotFound).is_retriable());
    }
}
