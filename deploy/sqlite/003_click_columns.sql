-- Clicks keep their fields in columns, as in ClickHouse, instead of a JSON copy of the event:
-- nothing read the copy, and writing 800,000 of them was a large part of the store's work
-- (docs/PERFORMANCE.md).
ALTER TABLE clicks ADD COLUMN click_id TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN deep_link TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN sub1 TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN sub2 TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN sub3 TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN sub4 TEXT NOT NULL DEFAULT '';
ALTER TABLE clicks ADD COLUMN sub5 TEXT NOT NULL DEFAULT '';
UPDATE clicks SET
    click_id = COALESCE(json_extract(payload, '$.click.click_id'), ''),
    deep_link = COALESCE(json_extract(payload, '$.click.deep_link'), ''),
    sub1 = COALESCE(json_extract(payload, '$.click.subs.sub1'), ''),
    sub2 = COALESCE(json_extract(payload, '$.click.subs.sub2'), ''),
    sub3 = COALESCE(json_extract(payload, '$.click.subs.sub3'), ''),
    sub4 = COALESCE(json_extract(payload, '$.click.subs.sub4'), ''),
    sub5 = COALESCE(json_extract(payload, '$.click.subs.sub5'), '');
ALTER TABLE clicks DROP COLUMN payload;
