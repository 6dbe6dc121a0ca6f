//! Adapters for the two ports of the pipeline (DESIGN decision 2): the event log (Kafka
//! through rdkafka, or SQLite) and the store (ClickHouse, or SQLite).
//!
//! - [`services`]: where the real services are, from the environment that
//!   `deploy/test.sh` (tests) or the operator (deployments) sets.

pub mod deployment;
pub mod log;
pub mod memory;
pub mod services;
pub mod store;
mod wal;
