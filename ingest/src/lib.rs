//! The tracking edge: a lean hyper server for the public tracking contract (docs/TRACKING.md).
//! Nothing it acknowledges is anywhere but in the event log first.
//!
//! - [`server`]: accept loop, graceful shutdown (`run` is what `main` and the tests call).
//! - [`routes`]: every request to its handler, with its metrics.
//! - [`edge`]: shared state, and how events are recorded (bounded wait for browser traffic,
//!   acknowledged-only for postbacks).
//! - [`config`]: the edge's settings, as flags and environment variables too.
//! - [`cli`]: the standalone `ingest` binary's settings and start.
//! - [`click`]: `/c` and `/c/{link_code}`: redirect, visitor cookie, click id.
//! - [`conversion`]: `/px`, `/pb`, `/pb/refund`, `/pb/cancel`.
//! - [`params`], [`fields`]: strict parameter decoding and typed fields with reason codes.
//! - [`deep_link`]: which deep links are allowed (no open redirects).
//! - [`auth`]: postback tokens and `X-Signature` HMACs; [`replay`]: signatures accepted once.
//! - [`client`]: the client's address (trusted proxies' `X-Forwarded-For`) and the click rate
//!   limit.
//! - [`bots`]: known bot user agents.
//! - [`rejection`]: the one mapping from errors to HTTP answers; [`codes`]: every code, and
//!   which endpoint answers which (the contract `docs/TRACKING.md` lists).
//! - [`metrics`]: Prometheus metric names.

pub mod auth;
pub mod bots;
pub mod cli;
pub mod click;
pub mod client;
pub mod codes;
pub mod config;
pub mod conversion;
pub mod deep_link;
pub mod edge;
pub mod fields;
pub mod metrics;
pub mod params;
pub mod rejection;
pub mod replay;
pub mod routes;
pub mod server;

pub use adapters::deployment::shutdown_signal;
pub use config::{EdgeArgs, EdgeConfig};
pub use edge::Edge;
pub use server::run;
