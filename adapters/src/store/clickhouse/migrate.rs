//! The schema: `deploy/clickhouse/` migrations, each applied once and recorded.

use clickhouse::Row;
use model::time::Timestamp;
use pipeline::ports::store::StoreError;
use serde::{Deserialize, Serialize};

use super::ClickHouseStore;
use super::sql::{self, MIGRATIONS, Read};

#[derive(Row, Deserialize)]
struct MigrationRow {
    version: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct MigrationInsert {
    version: u32,
    applied_ms: i64,
}

pub(super) async fn migrate(store: &ClickHouseStore) -> Result<(), StoreError> {
    store.execute("schema_migrations", sql::CREATE_MIGRATIONS_TABLE).await?;
    let applied: Vec<MigrationRow> = store.fetch(Read::Migrations).await?;
    for (version, migration) in MIGRATIONS {
        if applied.iter().any(|row| row.version == *version) {
            continue;
        }
        for statement in sql::statements(migration) {
            store.execute("migration", &statement).await?;
        }
        let applied = MigrationInsert { version: *version, applied_ms: Timestamp::now().millis() };
        store.insert(sql::SCHEMA_MIGRATIONS, &[applied]).await?;
        tracing::info!(version, database = %store.database, "applied ClickHouse migration");
    }
    Ok(())
}
