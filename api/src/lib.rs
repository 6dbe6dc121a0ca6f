//! The program and report API: authenticated JSON over HTTP on its own listener, so admin
//! traffic never competes with clicks.
//!
//! - [`auth`]: API keys (hashed, constant-time) and scopes.
//! - [`reports`]: the reports, read from the store.
//! - [`error`]: errors as `{"error": "<code>", "message": ...}`.

pub mod auth;
pub mod error;
pub mod reports;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use model::follow::SharedProgram;
use model::ports::log::{EventLog, Topics};
use model::ports::store::Store;

/// What every handler can reach.
pub struct ApiState<L: EventLog, St: Store> {
    pub log: L,
    pub store: St,
    pub program: Arc<SharedProgram>,
    pub topics: Topics,
    pub keys: auth::KeyRing,
}

impl<L: EventLog, St: Store> std::fmt::Debug for ApiState<L, St> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("topics", &self.topics).finish()
    }
}

impl<L: EventLog, St: Store> Clone for ApiState<L, St> {
    fn clone(&self) -> Self {
        Self {
            log: self.log.clone(),
            store: self.store.clone(),
            program: self.program.clone(),
            topics: self.topics.clone(),
            keys: self.keys.clone(),
        }
    }
}

pub fn router<L: EventLog, St: Store>(state: ApiState<L, St>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/v1/reports/conversions", get(reports::conversions::<L, St>))
        .route("/v1/reports/summary", get(reports::summary::<L, St>))
        .route("/v1/reports/rejections", get(reports::rejections::<L, St>))
        .route("/v1/reports/history", get(reports::history::<L, St>))
        .route("/v1/lines", get(reports::lines::<L, St>))
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown`.
pub async fn serve<L: EventLog, St: Store>(
    listener: tokio::net::TcpListener,
    state: ApiState<L, St>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
