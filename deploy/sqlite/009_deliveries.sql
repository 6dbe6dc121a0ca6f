-- The notifier's delivery log (docs/NOTIFICATIONS.md): one row per notice and destination,
-- each attempt a higher revision. `payload` holds the whole row as JSON for the API.

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    notice TEXT NOT NULL,
    kind TEXT NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    payload TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX deliveries_by_time ON deliveries (created_ms);
