-- The conversion report and the rejected conversions gain the order key, the evidence a
-- rejected conversion named its member by, and the conversion itself, so a report can find
-- an order and list each rejected conversion with why (docs/REPORTS.md).

DROP VIEW conversion_report;
CREATE VIEW conversion_report AS
SELECT c.id AS conversion, c.event_ms AS order_ms, c.offer, c.member, c.order_id, c.order_key,
       c.amount AS sale_amount, c.currency, COALESCE(SUM(l.amount), 0) AS commission,
       COALESCE(MIN(l.status), 'none') AS status, c.via
FROM conversions c
LEFT JOIN commission_lines l ON l.source = c.id AND l.tier = 1 AND l.kind = 'conversion' AND l.status != 'withdrawn'
WHERE c.status = 'attributed'
GROUP BY c.event_ms, c.id, c.offer, c.member;

DROP VIEW rejected_conversions;
CREATE VIEW rejected_conversions AS
SELECT CASE WHEN status = 'duplicate' THEN 'duplicate_order' ELSE reason END AS reason, offer, member, event_ms, id,
       order_id, order_key, via, payload
FROM conversions WHERE status IN ('rejected', 'duplicate');
