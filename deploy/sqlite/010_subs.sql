-- Conversions keep the sub1..sub5 of the click they were attributed through, and the
-- activity_subs view gives the activity of clicks, conversions and commission lines with those
-- subs, for the breakdown by sub (docs/REPORTS.md). A line's subs are its conversion's.

ALTER TABLE conversions ADD COLUMN sub1 TEXT NOT NULL DEFAULT '';
ALTER TABLE conversions ADD COLUMN sub2 TEXT NOT NULL DEFAULT '';
ALTER TABLE conversions ADD COLUMN sub3 TEXT NOT NULL DEFAULT '';
ALTER TABLE conversions ADD COLUMN sub4 TEXT NOT NULL DEFAULT '';
ALTER TABLE conversions ADD COLUMN sub5 TEXT NOT NULL DEFAULT '';

CREATE VIEW activity_subs AS
SELECT received_ms AS at_ms, offer, member, sub1, sub2, sub3, sub4, sub5,
       CASE WHEN bot = 0 AND rejected = '' THEN 1 ELSE 0 END AS clicks, unique_click AS unique_clicks,
       0 AS conversions, 0 AS revenue, 0 AS commission
FROM clicks
UNION ALL
SELECT event_ms, offer, member, sub1, sub2, sub3, sub4, sub5, 0, 0, 1, amount, 0
FROM conversions WHERE status = 'attributed'
UNION ALL
SELECT line.earned_ms, line.offer, line.member, COALESCE(conversion.sub1, ''), COALESCE(conversion.sub2, ''),
       COALESCE(conversion.sub3, ''), COALESCE(conversion.sub4, ''), COALESCE(conversion.sub5, ''), 0, 0, 0, 0,
       line.amount
FROM commission_lines AS line LEFT JOIN conversions AS conversion ON conversion.id = line.source
WHERE line.status NOT IN ('rejected', 'reversed', 'withdrawn');
