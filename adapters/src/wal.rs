//! WAL checkpoints of the embedded SQLite files (the log, the store), off the writers' path.

use std::sync::Weak;
use std::time::Duration;

use rusqlite::Connection;

/// Checkpoints run here, on their own connection, instead of inside a commit (SQLite's
/// automatic checkpoint is off on the writer's connection: `PRAGMA wal_autocheckpoint = 0`). A PASSIVE checkpoint copies most
/// of the WAL without blocking the writer; the RESTART right after only has the frames written
/// meanwhile left to copy, and the WAL starts over instead of growing. A RESTART holds the
/// write lock while it waits for readers on older snapshots, so it waits at most
/// [`RESTART_PATIENCE`] and is tried again next time: with a longer wait, consumers that kept
/// reading stopped every writer for seconds (measured: a 6 s stall of the whole pipeline
/// under 10,000 events/s). Stops when what `alive` points to (the log, the store) is dropped.
pub(crate) fn checkpoint_now_and_then<T>(connection: Connection, every: Duration, alive: Weak<T>) {
    let mut missed = 0u32;
    while alive.strong_count() > 0 {
        std::thread::sleep(every);
        // After many restarts in a row that readers kept from finishing, wait longer once, so
        // the WAL cannot grow without end.
        let patience = if missed >= RESTARTS_BEFORE_WAITING_LONGER { Duration::from_secs(1) } else { RESTART_PATIENCE };
        let _ = connection.busy_timeout(patience);
        for mode in ["PASSIVE", "RESTART"] {
            let busy = connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(0));
            match busy {
                Ok(busy) if mode == "RESTART" => missed = if busy == 0 { 0 } else { missed + 1 },
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, mode, "SQLite checkpoint failed"),
            }
        }
    }
}

/// Restarts that may miss in a row before one waits longer (at 4 a second: 5 s).
const RESTARTS_BEFORE_WAITING_LONGER: u32 = 20;

/// How long a WAL restart may wait for readers (and so hold up writers).
const RESTART_PATIENCE: Duration = Duration::from_millis(20);
