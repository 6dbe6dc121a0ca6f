//! The schema: `deploy/sqlite/` migrations, each applied once in its own transaction and
//! recorded.

use std::path::Path;

use model::time::Timestamp;
use pipeline::ports::store::StoreError;
use rusqlite::{Connection, params};

use super::classify;

/// Ordered migrations; each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../../deploy/sqlite/001_store.sql")),
    (2, include_str!("../../../../deploy/sqlite/002_state_file.sql")),
    (3, include_str!("../../../../deploy/sqlite/003_click_columns.sql")),
    (4, include_str!("../../../../deploy/sqlite/004_line_columns.sql")),
    (5, include_str!("../../../../deploy/sqlite/005_clustered_lines.sql")),
    (6, include_str!("../../../../deploy/sqlite/006_time_indexes.sql")),
    (7, include_str!("../../../../deploy/sqlite/007_reports.sql")),
    (8, include_str!("../../../../deploy/sqlite/008_clients.sql")),
    (9, include_str!("../../../../deploy/sqlite/009_deliveries.sql")),
    (10, include_str!("../../../../deploy/sqlite/010_subs.sql")),
];

pub(super) fn migrate(connection: &mut Connection, state_path: &Path) -> Result<(), StoreError> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
        )
        .map_err(classify)?;
    for (version, sql) in MIGRATIONS {
        let applied: bool = connection
            .query_row("SELECT COUNT(*) > 0 FROM schema_migrations WHERE version = ?1", [version], |row| row.get(0))
            .map_err(classify)?;
        if applied {
            continue;
        }
        if *version == 2 {
            move_state_to_its_file(connection, state_path)?;
        }
        let transaction = connection.transaction().map_err(classify)?;
        transaction.execute_batch(sql).map_err(classify)?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
                params![version, Timestamp::now().millis()],
            )
            .map_err(classify)?;
        transaction.commit().map_err(classify)?;
    }
    Ok(())
}

/// Before migration 2: copy the stage state a store kept in its main file to the state file,
/// so an upgraded deployment resumes with its state.
fn move_state_to_its_file(connection: &Connection, state_path: &Path) -> Result<(), StoreError> {
    let exists: bool = connection
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'stage_state'", [], |row| {
            row.get(0)
        })
        .map_err(classify)?;
    if !exists {
        return Ok(());
    }
    let path = state_path.to_string_lossy().into_owned();
    connection.execute("ATTACH DATABASE ?1 AS state_file", [path]).map_err(classify)?;
    let copied = connection.execute_batch(
        "INSERT INTO state_file.stage_state (stage, partition, key, log_offset, state)
         SELECT stage, partition, key, log_offset, state FROM main.stage_state WHERE true
         ON CONFLICT (stage, partition, key) DO UPDATE SET log_offset = excluded.log_offset, state = excluded.state
         WHERE excluded.log_offset >= state_file.stage_state.log_offset",
    );
    let detached = connection.execute_batch("DETACH DATABASE state_file");
    copied.map_err(classify)?;
    detached.map_err(classify)
}
