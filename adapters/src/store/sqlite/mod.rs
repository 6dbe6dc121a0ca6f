//! The embedded store: one SQLite file (WAL), schema from `deploy/sqlite/` migrations, and
//! the stages' state in a file of its own next to it.
//!
//! - `write`: each batch of outputs in one transaction (every upsert keeps the highest
//!   revision of its row), state rows in the state file's.
//! - `state`: a stage partition's saved state read back.
//! - `reports`: the report queries, each through a reader connection of its own.
//! - `migrate`: the schema, one migration at a time.
//!
//! Writes go through one connection under a lock, so state never runs ahead of what is
//! stored.

mod migrate;
mod reports;
mod state;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use pipeline::ports::store::{StageStore, StateRow, StoreBatch, StoreError};
use rusqlite::{Connection, OpenFlags};

/// Stage state lives in its own file next to the store, with its own writer: saving a large
/// state (the settler's ledger of a busy family is megabytes) must not hold up the writes of
/// outputs, which every stage makes with every batch.
const STATE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS stage_state (
    stage TEXT NOT NULL,
    partition INTEGER NOT NULL,
    key TEXT NOT NULL,
    log_offset INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (stage, partition, key)
)";

const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA busy_timeout = 10000;
     PRAGMA wal_autocheckpoint = 0;";

/// The main file's pages, set when it is created (a file made with smaller pages keeps them):
/// every batch adds thousands of rows to a few trees, and larger pages mean fewer splits and
/// fewer pages to log, sync and checkpoint per row (docs/PERFORMANCE.md).
const STORE_PAGE_SIZE: &str = "PRAGMA page_size = 16384;";

/// The writer's page cache, in KiB. A batch touches pages all over the trees it adds to; with
/// SQLite's default of 2 MiB the writer spilled pages to the WAL in the middle of a batch
/// and read them back.
const WRITER_CACHE: &str = "PRAGMA cache_size = -131072;";

/// How often the WAL of the store and of the state file is checkpointed, by a thread of its
/// own rather than inside a writer's commit (`crate::wal`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// State rows are large (megabytes for a busy family's ledger): large pages mean fewer
/// overflow pages to read and free when one is replaced. Set before the file has tables.
const STATE_PAGE_SIZE: &str = "PRAGMA page_size = 65536;";

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    state_path: PathBuf,
    state_writer: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

/// The one place that decides whether a SQLite error is worth retrying.
fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull) =>
        {
            StoreError::Retriable(error.to_string())
        }
        _ => StoreError::Fatal(error.to_string()),
    }
}

impl SqliteStore {
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let writer = Connection::open(&path).map_err(classify)?;
        writer.execute_batch(STORE_PAGE_SIZE).map_err(classify)?;
        writer.execute_batch(PRAGMAS).map_err(classify)?;
        writer.execute_batch(WRITER_CACHE).map_err(classify)?;
        let state_path = path.with_extension("state.db");
        let state_writer = Connection::open(&state_path).map_err(classify)?;
        state_writer.execute_batch(STATE_PAGE_SIZE).map_err(classify)?;
        state_writer.execute_batch(PRAGMAS).map_err(classify)?;
        state_writer.execute_batch(STATE_SCHEMA).map_err(classify)?;
        let checkpointers =
            [Connection::open(&path).map_err(classify)?, Connection::open(&state_path).map_err(classify)?];
        let inner = Inner { path, writer: Mutex::new(writer), state_path, state_writer: Mutex::new(state_writer) };
        let inner = Arc::new(inner);
        for (n, checkpointer) in checkpointers.into_iter().enumerate() {
            let alive = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name(format!("sqlite-store-checkpoint-{n}"))
                .spawn(move || crate::wal::checkpoint_now_and_then(checkpointer, CHECKPOINT_EVERY, alive))
                .map_err(|error| StoreError::Fatal(error.to_string()))?;
        }
        Ok(Self { inner })
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.writer.lock().map_err(|_| StoreError::Fatal("store writer poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }

    async fn with_state_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.inner.state_path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = open_reader(&path)?;
            work(&connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = open_reader(&path)?;
            work(&connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(classify)?;
    connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(classify)?;
    Ok(connection)
}

impl StageStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let state_path = self.inner.state_path.clone();
        self.with_writer(move |connection| migrate::migrate(connection, &state_path)).await
    }

    async fn write(&self, batch: Arc<StoreBatch>) -> Result<(), StoreError> {
        if batch.rows() > batch.state.len() {
            let outputs = batch.clone();
            self.with_writer(move |connection| write::write_batch(connection, &outputs)).await?;
        }
        if !batch.state.is_empty() {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
                let mut connection =
                    inner.state_writer.lock().map_err(|_| StoreError::Fatal("state writer poisoned".into()))?;
                write::write_state(&mut connection, &batch.state)
            })
            .await
            .map_err(|error| StoreError::Fatal(error.to_string()))??;
        }
        Ok(())
    }

    async fn load_state(&self, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
        let stage = stage.to_string();
        self.with_state_reader(move |connection| state::load_state(connection, &stage, partition)).await
    }
}
