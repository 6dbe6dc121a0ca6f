//! A stage partition's saved state. State is binary; ClickHouse 18.16 keeps it in a `String`
//! column as Base64, which every release reads the same.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clickhouse::Row;
use pipeline::ports::store::{StateRow, StoreError};
use serde::{Deserialize, Serialize};

use super::ClickHouseStore;
use super::sql::Read;

#[derive(Row, Serialize, Deserialize)]
pub(super) struct StateInsert {
    stage: String,
    partition: u32,
    key: String,
    log_offset: u64,
    state: String,
}

impl StateInsert {
    pub(super) fn from_row(row: &StateRow) -> Self {
        Self {
            stage: row.stage.clone(),
            partition: row.partition,
            key: row.key.clone(),
            log_offset: row.offset,
            state: STANDARD.encode(&row.state),
        }
    }
}

#[derive(Row, Deserialize)]
struct StateFetch {
    key: String,
    log_offset: u64,
    state: String,
}

pub(super) async fn load_state(
    store: &ClickHouseStore,
    stage: &str,
    partition: u32,
) -> Result<Vec<StateRow>, StoreError> {
    let rows: Vec<StateFetch> = store.fetch(Read::StageState { stage, partition }).await?;
    rows.into_iter()
        .map(|row| {
            Ok(StateRow {
                stage: stage.to_string(),
                partition,
                key: row.key,
                offset: row.log_offset,
                state: STANDARD.decode(row.state).map_err(|error| StoreError::Fatal(error.to_string()))?,
            })
        })
        .collect()
}
