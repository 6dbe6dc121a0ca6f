-- The conversion report and the rejected conversions gain the order key, the evidence a
-- rejected conversion named its member by, and the conversion itself, so a report can find
-- an order and list each rejected conversion with why (docs/REPORTS.md). Views are replaced
-- with DROP TABLE, which every release takes for a view (18.16 has no DROP VIEW).

DROP TABLE IF EXISTS conversion_report;

CREATE VIEW conversion_report AS
SELECT id AS conversion, event_ms AS order_ms, toDateTime(intDiv(event_ms, 1000)) AS order_date, offer, member,
       order_id, order_key, amount AS sale_amount, currency, commission,
       if(line_status = '', 'none', line_status) AS status, via
FROM (
    SELECT id, event_ms, offer, member, order_id, order_key, amount, currency, via
    FROM conversions FINAL
    WHERE status = 'attributed'
) AS attributed
ANY LEFT JOIN (
    SELECT source AS id, sum(amount) AS commission, min(status) AS line_status
    FROM commission_lines FINAL
    WHERE tier = 1 AND kind = 'conversion' AND status != 'withdrawn'
    GROUP BY source
) AS first_tier USING id;

DROP TABLE IF EXISTS rejected_conversions;

CREATE VIEW rejected_conversions AS
SELECT if(status = 'duplicate', 'duplicate_order', reason) AS reason, offer, member, event_ms, id, order_id,
       order_key, via, payload
FROM conversions FINAL
WHERE status IN ('rejected', 'duplicate');
