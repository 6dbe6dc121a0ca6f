-- The notifier's delivery log (docs/NOTIFICATIONS.md): one row per notice and destination,
-- each attempt a higher revision. `payload` holds the whole row as JSON for the API.

CREATE TABLE IF NOT EXISTS deliveries (
    id String,
    revision UInt32,
    notice String,
    kind String,
    destination String,
    method String,
    url String,
    status String,
    attempts UInt32,
    last_status UInt16,
    last_error String,
    last_latency_ms UInt32,
    created_ms Int64,
    created_at DateTime MATERIALIZED toDateTime(intDiv(created_ms, 1000)),
    updated_ms Int64,
    payload String
) ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(created_at)
ORDER BY id;
