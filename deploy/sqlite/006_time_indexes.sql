-- Clicks, conversions and commission lines are indexed by time instead of by offer and member
-- (docs/PERFORMANCE.md, "The embedded store's layout"). An index led by offer and member
-- puts each batch's rows on a page per member: with 200 members an index entry cost more than
-- the row itself, and the cost grew with every member the program enrolled. Rows arrive in
-- about the order of their time, so an index by time is written at its end. Every report is
-- bounded by time or reads the whole table, and filters by offer and member as it reads.
DROP INDEX clicks_by_offer_member;
CREATE INDEX clicks_by_time ON clicks (received_ms);
DROP INDEX conversions_by_offer_member;
CREATE INDEX conversions_by_time ON conversions (event_ms);
DROP INDEX lines_by_member;
DROP INDEX lines_by_offer;
CREATE INDEX lines_by_time ON commission_lines (earned_ms);

-- The conversion report is grouped by the conversion's time, offer and member as well as its
-- id (one group per conversion, as before), so a report's bounds on time, offer and member
-- reach the conversions table and its time index instead of filtering every conversion's
-- group after the join.
DROP VIEW conversion_report;
CREATE VIEW conversion_report AS
SELECT c.id AS conversion, c.event_ms AS order_ms, c.offer, c.member, c.order_id, c.amount AS sale_amount,
       c.currency, COALESCE(SUM(l.amount), 0) AS commission, COALESCE(MIN(l.status), 'none') AS status, c.via
FROM conversions c
LEFT JOIN commission_lines l ON l.source = c.id AND l.tier = 1 AND l.kind = 'conversion' AND l.status != 'withdrawn'
WHERE c.status = 'attributed'
GROUP BY c.event_ms, c.id, c.offer, c.member;

-- Rejected conversions name their member and order id, as in ClickHouse: the rejections
-- report filtered by member failed here with "no such column: member".
DROP VIEW rejected_conversions;
CREATE VIEW rejected_conversions AS
SELECT CASE WHEN status = 'duplicate' THEN 'duplicate_order' ELSE reason END AS reason, offer, member, event_ms, id,
       order_id
FROM conversions WHERE status IN ('rejected', 'duplicate');
