-- clickledger tables. Runs on ClickHouse 18.16 and current releases (docs/DECISIONS.md,
-- "ClickHouse compatibility"): MergeTree family, Decimal, MATERIALIZED columns; no
-- LowCardinality, TTL, DateTime64 or insert_deduplication_token. Times are Unix milliseconds
-- (Int64) with a DateTime column computed from them; amounts are Decimal(18, 4). Every table
-- collapses repeats of its deterministic id with ReplacingMergeTree, keeping the highest
-- revision; reads that must be right before merges use FINAL (see the views in 002_views.sql).

CREATE TABLE IF NOT EXISTS clicks (
    id String,
    received_ms Int64,
    received_at DateTime MATERIALIZED toDateTime(intDiv(received_ms, 1000)),
    offer String,
    member String,
    link String,
    visitor String,
    click_id String,
    deep_link String,
    sub1 String,
    sub2 String,
    sub3 String,
    sub4 String,
    sub5 String,
    bot UInt8,
    rejected String,
    unique_click UInt8
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (offer, member, id);

CREATE TABLE IF NOT EXISTS conversions (
    id String,
    revision UInt64,
    event_ms Int64,
    event_at DateTime MATERIALIZED toDateTime(intDiv(event_ms, 1000)),
    received_ms Int64,
    source String,
    advertiser String,
    offer String,
    member String,
    order_id String,
    order_key String,
    event String,
    amount Decimal(18, 4),
    currency String,
    code String,
    recurring_amount Decimal(18, 4),
    visitor String,
    click_id String,
    bot UInt8,
    status String,
    reason String,
    via String,
    payload String
) ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(event_at)
ORDER BY id;

CREATE TABLE IF NOT EXISTS commission_lines (
    id String,
    revision UInt32,
    member String,
    tier UInt8,
    earned_by String,
    offer String,
    order_key String,
    source String,
    kind String,
    rule String,
    keyword String,
    amount Decimal(18, 4),
    currency String,
    status String,
    description String,
    earned_ms Int64,
    earned_at DateTime MATERIALIZED toDateTime(intDiv(earned_ms, 1000)),
    bill String
) ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(earned_at)
ORDER BY (member, id);

CREATE TABLE IF NOT EXISTS bills (
    id String,
    revision UInt32,
    member String,
    currency String,
    period_end_ms Int64,
    period_end DateTime MATERIALIZED toDateTime(intDiv(period_end_ms, 1000)),
    total Decimal(18, 4),
    lines UInt32,
    status String,
    issued_ms Int64,
    paid_ms Int64,
    payload String
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (member, id);

CREATE TABLE IF NOT EXISTS subscriptions (
    conversion String,
    revision UInt32,
    order_key String,
    member String,
    offer String,
    status String,
    payload String
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (member, conversion);

CREATE TABLE IF NOT EXISTS program_history (
    log_offset UInt64,
    at_ms Int64,
    at DateTime MATERIALIZED toDateTime(intDiv(at_ms, 1000)),
    actor String,
    entity String,
    entity_key String,
    offer String,
    payload String
) ENGINE = ReplacingMergeTree()
ORDER BY log_offset;

CREATE TABLE IF NOT EXISTS stage_state (
    stage String,
    partition UInt32,
    key String,
    log_offset UInt64,
    state String
) ENGINE = ReplacingMergeTree(log_offset)
ORDER BY (stage, partition, key);
