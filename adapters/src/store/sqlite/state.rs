//! A stage partition's saved state, read from the state file.

use pipeline::ports::store::{StateRow, StoreError};
use rusqlite::{Connection, params};

use super::classify;

pub(super) fn load_state(connection: &Connection, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
    let mut statement = connection
        .prepare("SELECT key, log_offset, state FROM stage_state WHERE stage = ?1 AND partition = ?2")
        .map_err(classify)?;
    let rows = statement
        .query_map(params![stage, partition], |row| {
            Ok(StateRow {
                stage: stage.to_string(),
                partition,
                key: row.get(0)?,
                offset: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                state: row.get(2)?,
            })
        })
        .map_err(classify)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(classify)
}
