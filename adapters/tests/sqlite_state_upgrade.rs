//! A store made before stage state moved to its own file keeps its state across the upgrade:
//! migration 2 copies the rows from the main file before dropping the table there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clickledger_adapters::store::sqlite::SqliteStore;
use model::ports::store::Store;

#[tokio::test]
async fn state_kept_in_the_main_file_moves_to_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        // A store at schema version 1, with state in its main file.
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection.execute_batch(include_str!("../../deploy/sqlite/001_store.sql")).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 0);
                 INSERT INTO stage_state VALUES ('ledger', 2, 'jane', 41, x'0102');",
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.migrate().await.unwrap();
    let rows = store.load_state("ledger", 2).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key.as_str(), rows[0].offset, rows[0].state.as_slice()), ("jane", 41, &[1u8, 2][..]));
    let main = rusqlite::Connection::open(&path).unwrap();
    let left: i64 =
        main.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'stage_state'", [], |row| row.get(0)).unwrap();
    assert_eq!(left, 0, "the main file no longer has the table");
}
