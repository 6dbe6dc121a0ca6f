//! What every binary does when it starts ([`init_process`]), and the Prometheus metrics every
//! process exports: one recorder per process ([`metrics_handle`]), served on the edge's own
//! listener by the edge and, with `--metrics-listen`, on a listener of its own by every
//! binary ([`serve_metrics`]).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Settings every binary takes besides its deployment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProcessArgs {
    /// Where to serve Prometheus metrics (`GET /metrics`) and liveness (`GET /healthz`); by
    /// default they are not served on a listener of their own (the edge serves `/metrics` on
    /// its tracking listener too).
    #[arg(long, env = "CLICKLEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info`); transparent huge pages
/// off; the wire version setting checked; the metrics recorder installed. Every binary calls
/// it first.
pub fn init_process() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).init();
    crate::memory::small_pages();
    model::events::wire::check_version_setting().map_err(anyhow::Error::msg)?;
    metrics_handle();
    Ok(())
}

/// Buckets of the histograms of sizes (`_records`: records per batch).
const SIZE_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How often histogram samples are folded into their buckets. The recorder keeps raw samples
/// until then, so without it memory grows with every sample between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use, with a thread that folds
/// histogram samples every second. Every `_seconds` histogram has the same buckets.
pub fn metrics_handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), LATENCY_BUCKETS)
            .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_records".to_string()), SIZE_BUCKETS))
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (a test harness): render an empty one.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
        handle
    })
}

/// The metrics in Prometheus' text format, as `GET /metrics` answers.
pub fn render_metrics() -> String {
    let handle = metrics_handle();
    handle.run_upkeep();
    handle.render()
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics())
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"status":"ok"}"#)
}

/// What the metrics listener serves: Prometheus metrics and liveness.
pub const PATHS: [&str; 2] = ["/metrics", "/healthz"];

/// Serve `/metrics` and `/healthz` on `listener` until `shutdown`.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let [metrics_path, healthz_path] = PATHS;
    let router = Router::new().route(metrics_path, get(metrics)).route(healthz_path, get(healthz));
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

impl ProcessArgs {
    /// Bind the metrics listener, if one is configured, and serve it until `shutdown`.
    pub async fn start_metrics(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<Option<SocketAddr>> {
        let Some(address) = self.metrics_listen else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, "serving metrics");
        tokio::spawn(async move {
            if let Err(error) = serve_metrics(listener, shutdown).await {
                tracing::error!(%error, "the metrics listener failed");
            }
        });
        Ok(Some(bound))
    }
}
