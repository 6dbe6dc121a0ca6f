//! The partitions a runner holds and each key's state in them; restoring a partition's states
//! from the store when it is assigned.

use std::collections::{BTreeMap, HashMap};

use crate::journal::{self, Journal};
use crate::ports::log::PartitionId;
use crate::ports::store::StateRow;
use crate::state::{StageState, StateError};

pub(super) struct KeyState<T> {
    /// The offset of the last input this state reflects.
    pub(super) offset: Option<u64>,
    pub(super) state: T,
    pub(super) journal: Journal,
    /// Changed since the last checkpoint (and listed in [`Partition::unsaved`]).
    pub(super) unsaved: bool,
}

impl<T: Default> KeyState<T> {
    pub(super) fn new() -> Self {
        Self { offset: None, state: T::default(), journal: Journal::default(), unsaved: false }
    }
}

/// A partition's keys. They come from the edge's inputs (visitor ids from cookies, order ids
/// from pixels), so the map keeps std's SipHash (docs/PERFORMANCE.md, "Measured and not
/// kept").
pub(super) struct Partition<T> {
    pub(super) keys: HashMap<String, KeyState<T>>,
    /// The keys changed since the last checkpoint, each once.
    pub(super) unsaved: Vec<String>,
}

impl<T> Default for Partition<T> {
    fn default() -> Self {
        Self { keys: HashMap::new(), unsaved: Vec::new() }
    }
}

impl<T: StageState> Partition<T> {
    /// The partition as its saved rows left it; the first key whose rows cannot be read, with
    /// why, if any.
    pub(super) fn restore(rows: Vec<StateRow>) -> Result<Self, (String, StateError)> {
        let (states, unreadable) = journal::restore::<T>(rows);
        if let Some(first) = unreadable.into_iter().next() {
            return Err(first);
        }
        let mut restored = Self::default();
        for state in states {
            let entry =
                KeyState { offset: Some(state.offset), state: state.state, journal: state.journal, unsaved: false };
            restored.keys.insert(state.key, entry);
        }
        Ok(restored)
    }
}

/// Every partition the runner holds.
pub(super) type Partitions<T> = BTreeMap<PartitionId, Partition<T>>;
