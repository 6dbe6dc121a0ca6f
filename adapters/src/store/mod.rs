//! Store adapters: [`clickhouse::ClickHouseStore`] for the scale deployment and
//! [`sqlite::SqliteStore`] for the embedded one, with the same rows and reports. Each is split
//! the same way: `write` (a batch of outputs, then state), `state` (a partition's saved state),
//! `reports` (the queries), `migrate` (the schema); what both keep alike is in `rows`.

pub mod clickhouse;
mod rows;
pub mod sqlite;

/// ClickHouse inserts, by `table`: one request of a batch's rows of that table, retries
/// included (the stages' own `clickledger_stage_write_seconds` times the whole batch).
pub const INSERT_SECONDS: &str = "clickledger_store_insert_seconds";
/// ClickHouse requests tried again after a transient failure, by `operation` (a table's
/// insert, `query`, `migration`).
pub const RETRIES: &str = "clickledger_store_retries_total";
/// Every store metric, for the dashboard's test.
pub const METRICS: &[&str] = &[INSERT_SECONDS, RETRIES];
