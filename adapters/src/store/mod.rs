//! Store adapters: [`clickhouse::ClickHouseStore`] for the scale deployment and
//! [`sqlite::SqliteStore`] for the embedded one, with the same rows and reports. Each is split
//! the same way: `write` (a batch of outputs, then state), `state` (a partition's saved state),
//! `reports` (the queries), `migrate` (the schema); what both keep alike is in `rows`.

pub mod clickhouse;
mod rows;
pub mod sqlite;
