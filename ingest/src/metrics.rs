//! Prometheus metrics of the edge: requests and latency by route and status, log
//! acknowledgement latency and queue depth, unacknowledged and rejected events by reason. The
//! recorder is the process's (`adapters::process`).

pub const REQUESTS: &str = "clickledger_ingest_requests_total";
pub const REQUEST_SECONDS: &str = "clickledger_ingest_request_seconds";
pub const LOG_ACK_SECONDS: &str = "clickledger_ingest_log_ack_seconds";
pub const LOG_QUEUE_DEPTH: &str = "clickledger_ingest_log_queue_depth";
pub const REJECTED: &str = "clickledger_ingest_rejected_total";
pub const UNACKNOWLEDGED: &str = "clickledger_ingest_unacknowledged_total";
pub const LOST: &str = "clickledger_ingest_lost_total";
pub const EVENTS: &str = "clickledger_ingest_events_total";
/// Signatures remembered against replay now.
pub const REPLAY_CACHE_ENTRIES: &str = "clickledger_ingest_replay_cache_entries";
/// Client networks the click rate limit counts in the current minute, and clicks let
/// through uncounted because its table was full.
pub const RATE_LIMIT_NETWORKS: &str = "clickledger_ingest_rate_limit_networks";
pub const RATE_LIMIT_OVERFLOW: &str = "clickledger_ingest_rate_limit_overflow_total";

/// Every edge metric, for the dashboard's test.
pub const ALL: &[&str] = &[
    REQUESTS,
    REQUEST_SECONDS,
    LOG_ACK_SECONDS,
    LOG_QUEUE_DEPTH,
    REJECTED,
    UNACKNOWLEDGED,
    LOST,
    EVENTS,
    REPLAY_CACHE_ENTRIES,
    RATE_LIMIT_NETWORKS,
    RATE_LIMIT_OVERFLOW,
];

/// The routes that write events, as the `route` label of [`EVENTS`], [`UNACKNOWLEDGED`] and
/// [`LOST`].
pub const WRITING_ROUTES: &[&str] = &["click", "pixel", "postback", "refund", "cancel"];

/// The edge's event series, at zero, as it starts: a dashboard shows "none lost" rather
/// than no data.
pub fn register() {
    for route in WRITING_ROUTES {
        metrics::counter!(EVENTS, "route" => *route).absolute(0);
        metrics::counter!(UNACKNOWLEDGED, "route" => *route).absolute(0);
        metrics::counter!(LOST, "route" => *route).absolute(0);
    }
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
        409 => "409",
        413 => "413",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}
