-- Commission lines and conversions are stored in the order of their source event instead of
-- in a rowid table with a separate index on their id (docs/PERFORMANCE.md, "The embedded
-- store's layout"):
-- - a line is keyed by (source, id): its source event (a ULID, so new lines land at the end
--   of the tree) and its derived id (random, so it made every insert a random write into an
--   index of its own). The conversion report joins lines on their source, which the key now
--   serves; the separate index on the source goes.
-- - a conversion is keyed by its id (a ULID) in the table itself.
-- Each line write now updates three trees instead of five, each conversion write two instead
-- of three. The views are dropped first and made again as they were.
DROP VIEW conversion_report;
DROP VIEW activity;
DROP VIEW rejected_conversions;

CREATE TABLE commission_lines_by_source (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    member TEXT NOT NULL,
    tier INTEGER NOT NULL,
    earned_by TEXT NOT NULL,
    offer TEXT NOT NULL,
    order_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    earned_ms INTEGER NOT NULL,
    keyword TEXT NOT NULL,
    description TEXT NOT NULL,
    bill TEXT NOT NULL,
    PRIMARY KEY (source, id)
) WITHOUT ROWID;
INSERT INTO commission_lines_by_source
SELECT source, id, revision, member, tier, earned_by, offer, order_key, kind, rule, amount, currency, status,
    earned_ms, keyword, description, bill
FROM commission_lines;
DROP TABLE commission_lines;
ALTER TABLE commission_lines_by_source RENAME TO commission_lines;
CREATE INDEX lines_by_member ON commission_lines (member, earned_ms);
CREATE INDEX lines_by_offer ON commission_lines (offer, earned_ms);

CREATE TABLE conversions_by_id (
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
) WITHOUT ROWID;
INSERT INTO conversions_by_id
SELECT id, revision, event_ms, advertiser, offer, member, order_id, order_key, event, amount, currency, status,
    reason, via, payload
FROM conversions;
DROP TABLE conversions;
ALTER TABLE conversions_by_id RENAME TO conversions;
CREATE INDEX conversions_by_offer_member ON conversions (offer, member, event_ms);

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
