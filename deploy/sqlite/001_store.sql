-- The embedded store (SQLite). Amounts are integers in ten-thousandths of the currency unit;
-- times are Unix milliseconds. Every table is keyed by the deterministic id of its rows, and a
-- write keeps the highest revision.

CREATE TABLE clicks (
    id TEXT PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    offer TEXT NOT NULL,
    member TEXT NOT NULL,
    link TEXT NOT NULL,
    visitor TEXT NOT NULL,
    bot INTEGER NOT NULL,
    rejected TEXT NOT NULL,
    unique_click INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX clicks_by_offer_member ON clicks (offer, member, received_ms);

CREATE TABLE conversions (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    event_ms INTEGER NOT NULL,
    advertiser TEXT NOT NULL,
    offer TEXT NOT NULL,
    member TEXT NOT NULL,
    order_id TEXT NOT NULL,
    order_key TEXT NOT NULL,
    event TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    via TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX conversions_by_offer_member ON conversions (offer, member, event_ms);

CREATE TABLE commission_lines (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    member TEXT NOT NULL,
    tier INTEGER NOT NULL,
    earned_by TEXT NOT NULL,
    offer TEXT NOT NULL,
    order_key TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    earned_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX lines_by_member ON commission_lines (member, earned_ms);
CREATE INDEX lines_by_offer ON commission_lines (offer, earned_ms);
CREATE INDEX lines_by_source ON commission_lines (source);

CREATE TABLE bills (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    member TEXT NOT NULL,
    period_end_ms INTEGER NOT NULL,
    total INTEGER NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE subscriptions (
    conversion TEXT PRIMARY KEY,
    order_key TEXT NOT NULL,
    revision INTEGER NOT NULL,
    member TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE program_history (
    log_offset INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    offer TEXT NOT NULL,
    payload TEXT NOT NULL
);

CREATE TABLE stage_state (
    stage TEXT NOT NULL,
    partition INTEGER NOT NULL,
    key TEXT NOT NULL,
    log_offset INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (stage, partition, key)
) WITHOUT ROWID;

-- The reports, as in ClickHouse (docs/REPORTS.md).
CREATE VIEW conversion_report AS
SELECT c.id AS conversion, c.event_ms AS order_ms, c.offer, c.member, c.order_id, c.amount AS sale_amount,
       c.currency, COALESCE(SUM(l.amount), 0) AS commission, COALESCE(MIN(l.status), 'none') AS status, c.via
FROM conversions c
LEFT JOIN commission_lines l ON l.source = c.id AND l.tier = 1 AND l.kind = 'conversion' AND l.status != 'withdrawn'
WHERE c.status = 'attributed'
GROUP BY c.id;

CREATE VIEW activity AS
SELECT received_ms AS at_ms, offer, member,
       CASE WHEN bot = 0 AND rejected = '' THEN 1 ELSE 0 END AS clicks, unique_click AS unique_clicks,
       0 AS conversions, 0 AS revenue, 0 AS commission
FROM clicks
UNION ALL
SELECT event_ms, offer, member, 0, 0, 1, amount, 0 FROM conversions WHERE status = 'attributed'
UNION ALL
SELECT earned_ms, offer, member, 0, 0, 0, 0, amount FROM commission_lines
WHERE status NOT IN ('rejected', 'reversed', 'withdrawn');

CREATE VIEW rejected_conversions AS
SELECT CASE WHEN status = 'duplicate' THEN 'duplicate_order' ELSE reason END AS reason, offer, event_ms, id
FROM conversions WHERE status IN ('rejected', 'duplicate');
