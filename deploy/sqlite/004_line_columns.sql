-- Commission lines keep every field in columns, as in ClickHouse, instead of a JSON copy:
-- encoding 600,000 copies per million events was a large part of the store's writes
-- (docs/PERFORMANCE.md).
ALTER TABLE commission_lines ADD COLUMN keyword TEXT NOT NULL DEFAULT '';
ALTER TABLE commission_lines ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE commission_lines ADD COLUMN bill TEXT NOT NULL DEFAULT '';
UPDATE commission_lines SET
    keyword = COALESCE(json_extract(payload, '$.keyword'), ''),
    description = COALESCE(json_extract(payload, '$.description'), ''),
    bill = COALESCE(json_extract(payload, '$.bill'), '');
ALTER TABLE commission_lines DROP COLUMN payload;
