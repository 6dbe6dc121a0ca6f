-- Conversions keep the sub1..sub5 of the click they were attributed through, and the
-- activity_subs view gives the activity of clicks, conversions and commission lines with those
-- subs, for the breakdown by sub (docs/REPORTS.md). A line's subs are its conversion's.

ALTER TABLE conversions ADD COLUMN sub1 String DEFAULT '', ADD COLUMN sub2 String DEFAULT '',
    ADD COLUMN sub3 String DEFAULT '', ADD COLUMN sub4 String DEFAULT '', ADD COLUMN sub5 String DEFAULT '';

CREATE VIEW IF NOT EXISTS activity_subs AS
SELECT received_ms AS at_ms, offer, member, sub1, sub2, sub3, sub4, sub5, toUInt64(bot = 0 AND rejected = '') AS clicks,
       toUInt64(unique_click) AS unique_clicks, toUInt64(0) AS conversions, toDecimal64(0, 4) AS revenue,
       toDecimal64(0, 4) AS commission
FROM clicks FINAL
UNION ALL
SELECT event_ms, offer, member, sub1, sub2, sub3, sub4, sub5, toUInt64(0), toUInt64(0), toUInt64(1), amount,
       toDecimal64(0, 4)
FROM conversions FINAL
WHERE status = 'attributed'
UNION ALL
SELECT earned_ms, offer, member, sub1, sub2, sub3, sub4, sub5, toUInt64(0), toUInt64(0), toUInt64(0),
       toDecimal64(0, 4), amount
FROM (
    SELECT source, earned_ms, offer, member, amount
    FROM commission_lines FINAL
    WHERE status NOT IN ('rejected', 'reversed', 'withdrawn')
) AS line
ANY LEFT JOIN (
    SELECT id AS source, sub1, sub2, sub3, sub4, sub5
    FROM conversions FINAL
) AS conversion USING source;
