-- Report views (docs/REPORTS.md). They read with FINAL, so they are right before merges.
-- Current ClickHouse releases need an alias on every subquery of a join; 18.16 takes them too.
-- Migration 3 replaces the conversion report and the rejected conversions.

-- One row per attributed conversion: order date, sale amount, the member's own commission and
-- its status ('none' when the conversion pays nothing).
CREATE VIEW IF NOT EXISTS conversion_report AS
SELECT id AS conversion, event_ms AS order_ms, toDateTime(intDiv(event_ms, 1000)) AS order_date, offer, member,
       order_id, amount AS sale_amount, currency, commission, if(line_status = '', 'none', line_status) AS status, via
FROM (
    SELECT id, event_ms, offer, member, order_id, amount, currency, via
    FROM conversions FINAL
    WHERE status = 'attributed'
) AS attributed
ANY LEFT JOIN (
    SELECT source AS id, sum(amount) AS commission, min(status) AS line_status
    FROM commission_lines FINAL
    WHERE tier = 1 AND kind = 'conversion' AND status != 'withdrawn'
    GROUP BY source
) AS first_tier USING id;

-- Clicks, conversions and commission on one time line, for summaries per offer and member.
CREATE VIEW IF NOT EXISTS activity AS
SELECT received_ms AS at_ms, offer, member, toUInt64(bot = 0 AND rejected = '') AS clicks,
       toUInt64(unique_click) AS unique_clicks, toUInt64(0) AS conversions, toDecimal64(0, 4) AS revenue,
       toDecimal64(0, 4) AS commission
FROM clicks FINAL
UNION ALL
SELECT event_ms, offer, member, toUInt64(0), toUInt64(0), toUInt64(1), amount, toDecimal64(0, 4)
FROM conversions FINAL
WHERE status = 'attributed'
UNION ALL
SELECT earned_ms, offer, member, toUInt64(0), toUInt64(0), toUInt64(0), toDecimal64(0, 4), amount
FROM commission_lines FINAL
WHERE status NOT IN ('rejected', 'reversed', 'withdrawn');

-- Conversions that earn nothing, with why.
CREATE VIEW IF NOT EXISTS rejected_conversions AS
SELECT if(status = 'duplicate', 'duplicate_order', reason) AS reason, offer, member, event_ms, id, order_id
FROM conversions FINAL
WHERE status IN ('rejected', 'duplicate');
