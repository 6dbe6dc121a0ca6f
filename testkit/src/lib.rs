//! What the end-to-end tests and the benchmarks share: the pipeline's parts in one process on
//! any log and store, the oracle they are checked against, traffic through the edge, and a raw
//! HTTP client.
//!
//! - [`setup`]: the test program, its keys, fresh names, a clock the test moves.
//! - [`services`]: Kafka and ClickHouse from the test command, the embedded log and store.
//! - [`stages`]: the program followed and loaded, the edge, attributors, settlers, decisions.
//! - [`topics`]: reading topics back, replaying them into another deployment.
//! - [`oracle`]: the pipeline computed in memory from the same inputs; [`compare`]: the store
//!   against it.
//! - [`traffic`]: a scripted day and a seeded busy day through the edge; [`http`]: the client.
//! - [`browser`]: headless Chromium through chromedriver, for pages and the tracking script.
//! - [`receiver`]: a partner's endpoint on loopback, scripted, for postbacks and webhooks.
//!
//! A helper that fails panics with what it was doing: these run inside tests and benchmarks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod compare;
pub mod http;
pub mod oracle;
pub mod processes;
pub mod receiver;
pub mod services;
pub mod setup;
pub mod stages;
pub mod topics;
pub mod traffic;

pub use compare::*;
pub use http::*;
pub use services::*;
pub use setup::*;
pub use stages::*;
pub use topics::*;
pub use traffic::*;
