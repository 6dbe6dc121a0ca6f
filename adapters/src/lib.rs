//! Adapters for the two ports of the pipeline (docs/DECISIONS.md, "Two ports, two adapters
//! each"): the event log (Kafka
//! through rdkafka, or SQLite) and the store (ClickHouse, or SQLite).
//!
//! - [`log`]: the Kafka and embedded event logs; [`store`]: the ClickHouse and embedded
//!   stores.
//! - [`deployment`]: the deployment settings every binary takes, and a process wired to the
//!   log and store they name.
//! - [`process`]: what every binary does at start, and its Prometheus metrics.
//! - [`memory`]: how the long-running processes use memory.
//! - [`services`]: where the real services are, from the environment that
//!   `deploy/test.sh` (tests) or the operator (deployments) sets.

pub mod deployment;
pub mod log;
pub mod memory;
pub mod process;
pub mod services;
pub mod store;
mod wal;
