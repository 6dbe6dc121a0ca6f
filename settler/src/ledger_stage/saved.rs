//! How the ledger stage saves a family's ledger: its changes between saves, and whole now and
//! then (the runner decides when, `pipeline::journal`).
//!
//! A ledger is saved as MessagePack with its structs as arrays of their fields in order
//! (`rmp_serde::to_vec`), not maps of named fields: a ledger holds every line and order of a
//! family, and the names were 38% of its bytes and of the time to write it
//! (`benches/benches/state.rs`). Ledgers saved with named fields read the same. So a saved
//! ledger stays readable, the types it holds only ever gain fields at the end, with
//! `#[serde(default)]`, and never skip a field when serializing (`skip_serializing_if` would
//! shift the fields after it).

use pipeline::{StageState, StateError};

use crate::commission::Ledger;
use crate::commission::ledger::LedgerChanges;

fn encode_error(error: rmp_serde::encode::Error) -> StateError {
    StateError::Encode(error.to_string())
}

fn decode_error(error: rmp_serde::decode::Error) -> StateError {
    StateError::Decode(error.to_string())
}

impl StageState for Ledger {
    fn encode(&self) -> Result<Vec<u8>, StateError> {
        rmp_serde::to_vec(self).map_err(encode_error)
    }

    fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let mut ledger: Ledger = rmp_serde::from_slice(bytes).map_err(decode_error)?;
        ledger.rebuild_after_restore();
        Ok(ledger)
    }

    fn take_changes(&mut self) -> Result<Option<Vec<u8>>, StateError> {
        rmp_serde::to_vec(&self.changes_since_last_save()).map(Some).map_err(encode_error)
    }

    fn apply_changes(&mut self, changes: &[u8]) -> Result<(), StateError> {
        let changes: LedgerChanges = rmp_serde::from_slice(changes).map_err(decode_error)?;
        self.apply_saved_changes(changes);
        Ok(())
    }
}
