//! Prometheus metrics of the edge: requests and latency by route and status, log
//! acknowledgement latency and queue depth, unacknowledged and rejected events by reason.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "clickledger_ingest_requests_total";
pub const REQUEST_SECONDS: &str = "clickledger_ingest_request_seconds";
pub const LOG_ACK_SECONDS: &str = "clickledger_ingest_log_ack_seconds";
pub const LOG_QUEUE_DEPTH: &str = "clickledger_ingest_log_queue_depth";
pub const REJECTED: &str = "clickledger_ingest_rejected_total";
pub const UNACKNOWLEDGED: &str = "clickledger_ingest_unacknowledged_total";
pub const LOST: &str = "clickledger_ingest_lost_total";
pub const EVENTS: &str = "clickledger_ingest_events_total";

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets. The recorder keeps raw samples
/// until then, so without it memory grows with every request between scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The process-wide Prometheus recorder, installed on first use, with a thread that folds
/// histogram samples every second.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), LATENCY_BUCKETS)
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

pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        302 => "302",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}
