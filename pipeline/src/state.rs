//! How a stage's state of one key is saved and restored.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A state that could not be encoded or read back. Either stops the stage: saving an empty
/// state in place of one that did not encode, or going on with an empty state in place of one
/// that did not decode, would apply what follows to the wrong state (a duplicate paid, a
/// decision waiting for a conversion already forwarded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state cannot be encoded: {0}")]
    Encode(String),
    #[error("the saved state cannot be read: {0}")]
    Decode(String),
}

/// How the state of one key is saved and restored.
///
/// A state is saved whole at every checkpoint that follows a change ([`WholeState`]: small
/// states), or journaled: a state that grows large and changes a little at a time (the
/// settler's ledger of a family) reports what changed since the last save
/// ([`StageState::take_changes`]), and the runner saves that as a change row chained to the
/// previous one. Once the changes add up to twice the size of the last snapshot, the next save
/// is a snapshot again and the rows it replaces are deleted; so saving costs in proportion to
/// what changed, and a restore reads at most about three times the state ([`crate::journal`]).
pub trait StageState: Default + Send + 'static {
    /// The whole state.
    fn encode(&self) -> Result<Vec<u8>, StateError>;

    fn decode(bytes: &[u8]) -> Result<Self, StateError>;

    /// What changed since the last call, encoded; `None` for a state saved whole. The runner
    /// calls it at every save, so a state journals only between saves.
    fn take_changes(&mut self) -> Result<Option<Vec<u8>>, StateError> {
        Ok(None)
    }

    /// Apply changes taken by [`StageState::take_changes`] to the state they were taken from.
    fn apply_changes(&mut self, _changes: &[u8]) -> Result<(), StateError> {
        Err(StateError::Decode("changes saved for a state that is saved whole".to_string()))
    }
}

/// A state saved whole (MessagePack, named fields) at every checkpoint after it changed.
pub trait WholeState: Serialize + DeserializeOwned + Default + Send + 'static {}

impl<T: WholeState> StageState for T {
    fn encode(&self) -> Result<Vec<u8>, StateError> {
        rmp_serde::to_vec_named(self).map_err(|error| StateError::Encode(error.to_string()))
    }

    fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        rmp_serde::from_slice(bytes).map_err(|error| StateError::Decode(error.to_string()))
    }
}
