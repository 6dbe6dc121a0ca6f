-- Clicks record their client: the address and a hash of the user agent (docs/TRACKING.md,
-- "Clients and traffic rules"). A duplicate conversion keeps the reason it lost its order
-- (`duplicate_order`, or `superseded_by_postback` when the advertiser's postback replaced a
-- pixel); rows written before the reason was stored count as `duplicate_order`.

ALTER TABLE clicks ADD COLUMN client_address String DEFAULT '', ADD COLUMN client_agent String DEFAULT '';

DROP TABLE IF EXISTS rejected_conversions;

CREATE VIEW rejected_conversions AS
SELECT if(status = 'duplicate' AND reason = '', 'duplicate_order', reason) AS reason, offer, member, event_ms, id,
       order_id, order_key, via, payload
FROM conversions FINAL
WHERE status IN ('rejected', 'duplicate');
