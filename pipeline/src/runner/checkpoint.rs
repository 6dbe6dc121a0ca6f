//! Checkpoints: the changed states saved (each with the offset of the last input it
//! reflects), then the input offsets committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::StageError;
use super::partitions::Partitions;
use super::write::persist;
use crate::journal;
use crate::metrics;
use crate::ports::log::{LogConsumer, PartitionId};
use crate::ports::store::{StageStore, StoreBatch, StoreError};
use crate::state::StageState;

/// What changed since the last checkpoint: the last input offset applied per partition (the
/// keys whose state is not saved are listed by their partitions); and the save under way, if
/// any.
pub(super) struct Checkpoint {
    pub(super) uncommitted: BTreeMap<PartitionId, u64>,
    saving: Option<Saving>,
    last: Instant,
    /// How long the last save took.
    took: Duration,
    /// Per partition held, the position committed last (the next input to read); shared with
    /// the task that measures the lag.
    pub(super) committed: Arc<std::sync::Mutex<BTreeMap<PartitionId, u64>>>,
}

/// States being written in the background, and the offsets to commit once they are.
struct Saving {
    /// Resolves to how long the write took.
    task: tokio::task::JoinHandle<Result<Duration, StoreError>>,
    offsets: BTreeMap<PartitionId, u64>,
}

/// A checkpoint is due after `checkpoint_every`, or after this many times as long as the last
/// save took, whichever is later: saving large states never takes more than about a tenth
/// of the time.
const CHECKPOINT_SHARE: u32 = 10;

impl Default for Checkpoint {
    fn default() -> Self {
        Self {
            uncommitted: BTreeMap::new(),
            saving: None,
            last: Instant::now(),
            took: Duration::ZERO,
            committed: Arc::default(),
        }
    }
}

impl Checkpoint {
    pub(super) fn due(&self, every: Duration) -> bool {
        self.saving.is_none() && self.last.elapsed() >= every.max(self.took * CHECKPOINT_SHARE)
    }

    pub(super) fn forget(&mut self, partition: &PartitionId) {
        self.uncommitted.remove(partition);
        self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(partition);
        if let Some(saving) = &mut self.saving {
            saving.offsets.remove(partition);
        }
    }

    /// Encode the changed states (each with the offset of the last input it reflects) and
    /// write them in the background, so the stage goes on while a large state is saved. The
    /// input offsets are committed by [`Checkpoint::settle`] once the states are durable. A
    /// state that does not encode stops the stage: nothing of this checkpoint is saved or
    /// committed, so the inputs since the last one are applied again after the cause is fixed.
    ///
    /// A changed state that `forgettable` says holds nothing worth keeping has its rows
    /// deleted instead, and its key leaves memory.
    pub(super) fn start<T: StageState, St: StageStore>(
        &mut self,
        stage: &'static str,
        partitions: &mut Partitions<T>,
        store: &St,
        forgettable: impl Fn(&T) -> bool,
    ) -> Result<(), StageError> {
        let mut batch = StoreBatch::default();
        let mut forgotten = 0u64;
        for (partition_id, partition) in partitions.iter_mut() {
            for key in std::mem::take(&mut partition.unsaved) {
                if partition.keys.get(&key).is_some_and(|entry| forgettable(&entry.state)) {
                    if let Some(entry) = partition.keys.remove(&key) {
                        let offset = entry.offset.unwrap_or(0);
                        batch.state.extend(journal::forget(
                            stage,
                            partition_id.partition,
                            &key,
                            offset,
                            &entry.journal,
                        ));
                        forgotten += 1;
                    }
                    continue;
                }
                if let Some(entry) = partition.keys.get_mut(&key) {
                    entry.unsaved = false;
                    let offset = entry.offset.unwrap_or(0);
                    let saved = journal::save(
                        stage,
                        partition_id.partition,
                        &key,
                        offset,
                        &mut entry.state,
                        &mut entry.journal,
                    );
                    let rows = saved.map_err(|error| StageError::UnsavableState {
                        stage,
                        partition: partition_id.partition,
                        key: key.clone(),
                        error,
                    })?;
                    batch.state.extend(rows);
                }
            }
        }
        if forgotten > 0 {
            // A hash map keeps its capacity when keys leave: give back what a burst of keys,
            // since forgotten, made it grow to.
            for (_, partition) in partitions.iter_mut() {
                if partition.keys.capacity() > 4 * partition.keys.len().max(1024) {
                    partition.keys.shrink_to(partition.keys.len() * 2);
                }
            }
            ::metrics::counter!(metrics::KEYS_FORGOTTEN, "stage" => stage).increment(forgotten);
        }
        for (partition_id, partition) in partitions.iter() {
            metrics::state_keys(stage, partition_id, partition.keys.len());
        }
        let store = store.clone();
        let batch = Arc::new(batch);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            if !batch.is_empty() {
                persist(stage, "save state", || store.write(batch.clone())).await?;
            }
            Ok(started.elapsed())
        });
        let offsets = std::mem::take(&mut self.uncommitted);
        self.saving = Some(Saving { task, offsets });
        Ok(())
    }

    /// If a save finished (or, with `wait`, once it has): commit the offsets its states
    /// reflect.
    pub(super) async fn settle<C: LogConsumer>(
        &mut self,
        stage: &'static str,
        consumer: &mut C,
        wait: bool,
    ) -> Result<(), StageError> {
        if !self.saving.as_ref().is_some_and(|saving| wait || saving.task.is_finished()) {
            return Ok(());
        }
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        self.took = saving.task.await.map_err(|error| StoreError::Fatal(format!("state save failed: {error}")))??;
        self.last = Instant::now();
        ::metrics::histogram!(metrics::CHECKPOINT_SECONDS, "stage" => stage).record(self.took);
        let offsets: Vec<(PartitionId, u64)> =
            saving.offsets.into_iter().map(|(partition, last)| (partition, last + 1)).collect();
        if offsets.is_empty() {
            return Ok(());
        }
        match consumer.commit(&offsets).await {
            Ok(()) => self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(offsets),
            // States carry their own offsets; a lost commit only means some inputs are read
            // again and skipped.
            Err(error) => tracing::warn!(stage, %error, "offset commit failed"),
        }
        Ok(())
    }
}
