//! Running a stage of the pipeline: consume a topic as a member of a consumer group, keep
//! state per key, and write outputs — exactly, under restarts and rebalances.
//!
//! The guarantees, and how they hold:
//! - **Nothing is lost.** Every batch's outputs (log records, then store rows) are written
//!   while the next batch is applied, one batch in flight at a time and in order. Changed
//!   states and input offsets are saved together at a checkpoint (every
//!   [`RunnerConfig::checkpoint_every`], and at a clean stop): first every applied batch's
//!   outputs are durable, then the states, each with the offset of the last input it
//!   reflects, then the offsets. An input offset is never committed before the state that
//!   reflects it is saved, and a state is never saved before the outputs of the inputs it
//!   reflects.
//! - **Nothing is counted twice.** After a crash (or when a partition moves to another
//!   worker) the state is loaded from the last checkpoint, and an input at or below its key's
//!   offset is skipped: its effects are in the state already. An input above it is applied
//!   again, to the state as it was before it; outputs are deterministic (ids and revisions
//!   derived from inputs and state), so a repeated output collapses into the one written
//!   before the crash.
//! - **The program is current.** An event carries the program version the edge had; the
//!   runner waits until its own copy of the program has that version before applying it.

mod apply;
mod checkpoint;
mod partitions;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::follow::SharedProgram;
use crate::lifecycle::{Clock, wall_clock};
use crate::metrics;
use crate::ports::log::{EventLog, LogConsumer, LogError, Polled};
use crate::ports::store::{StageStore, StoreError};
use crate::stage::{OutputSizes, Stage};
use crate::state::StateError;
use apply::{Applied, Decoded};
use checkpoint::Checkpoint;
use partitions::{Partition, Partitions};
use write::{BatchOutputs, persist};

#[derive(Clone)]
pub struct RunnerConfig {
    pub group: String,
    pub topics: Vec<Arc<str>>,
    /// Records per poll, and so per output transaction, at most. A poll returns what is there,
    /// so at a steady rate batches stay small; a stage that is behind takes large ones, and
    /// the store's indexes on hashed ids (commission lines) are written once per transaction
    /// for many rows rather than page by page (docs/PERFORMANCE.md).
    pub batch: usize,
    pub poll_wait: Duration,
    /// How often time-driven work runs.
    pub tick_every: Duration,
    /// How long to wait for the program version an event needs.
    pub program_patience: Duration,
    /// How often changed states are saved and input offsets committed (a checkpoint), at
    /// least; a save that takes long spaces the next one out (at most a tenth of the time goes
    /// to saving). Outputs are written with every batch; after a crash the inputs since the
    /// last checkpoint are applied again and produce the same outputs.
    pub checkpoint_every: Duration,
    pub clock: Clock,
    /// Instances of one group started together in one process: each registers its consumer,
    /// then waits here for the others before its first poll, so the group's first assignment
    /// includes them all. Otherwise the first to start takes every partition, applies a
    /// batch, and hands half of them over when the next one joins; the new owner applies those
    /// inputs again from the last checkpoint (docs/PERFORMANCE.md, "Stage runner and state").
    pub start_together: Option<Arc<tokio::sync::Barrier>>,
}

impl std::fmt::Debug for RunnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerConfig").field("group", &self.group).field("topics", &self.topics).finish()
    }
}

impl RunnerConfig {
    pub fn new(group: impl Into<String>, topics: Vec<Arc<str>>) -> Self {
        Self {
            group: group.into(),
            topics,
            batch: 100_000,
            poll_wait: Duration::from_millis(100),
            tick_every: Duration::from_secs(1),
            program_patience: Duration::from_secs(10),
            checkpoint_every: Duration::from_secs(1),
            clock: wall_clock(),
            start_together: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A saved state that does not decode. The stage stops rather than apply what follows to
    /// an empty state in its place, which would pay the key's orders and clicks wrongly.
    #[error("stage {stage}, partition {partition}: the saved state of {key} cannot be read: {error}")]
    UnreadableState { stage: &'static str, partition: u32, key: String, error: StateError },
    /// A state that does not encode. The stage stops rather than save an empty state in its
    /// place; nothing of the checkpoint is saved or committed.
    #[error("stage {stage}, partition {partition}: the state of {key} cannot be saved: {error}")]
    UnsavableState { stage: &'static str, partition: u32, key: String, error: StateError },
}

/// Run `stage` until `shutdown` resolves. Returns on shutdown, or on an error that retrying
/// cannot fix.
pub async fn run_stage<S, L, St>(
    stage: S,
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    config: RunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StageError>
where
    S: Stage,
    L: EventLog,
    St: StageStore,
{
    tokio::pin!(shutdown);
    let Some(mut runner) = Runner::join(stage, log, store, program, config, &mut shutdown).await? else {
        return Ok(());
    };
    loop {
        let polled = tokio::select! {
            () = &mut shutdown => break,
            polled = runner.poll() => polled?,
        };
        let Some(polled) = polled else {
            continue;
        };
        runner.rebalance(&polled).await?;
        let decoded = apply::decode(&runner.stage, polled.records);
        runner.wait_for_program(decoded.needed_version).await;
        let applied = runner.apply(decoded);
        runner.write(applied).await?;
    }
    runner.stop().await
}

/// One member of a stage's consumer group: the partitions it holds, their keys' states, the
/// batch being written and the checkpoint under way.
struct Runner<S: Stage, L: EventLog, St: StageStore> {
    stage: S,
    name: &'static str,
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    config: RunnerConfig,
    consumer: L::Consumer,
    partitions: Partitions<S::State>,
    checkpoint: Checkpoint,
    /// The previous batch's outputs, being written while this one is applied.
    writing: Option<tokio::task::JoinHandle<Result<(), StageError>>>,
    last_tick: Instant,
    last_sizes: OutputSizes,
    /// Measures the lag of the partitions held, every second, whatever the stage is doing
    /// (waiting for a store that is down included); stopped with the runner.
    lag: tokio::task::JoinHandle<()>,
}

/// How often the lag of the partitions held is measured.
const MEASURE_LAG_EVERY: Duration = Duration::from_secs(1);

impl<S: Stage, L: EventLog, St: StageStore> Drop for Runner<S, L, St> {
    fn drop(&mut self) {
        self.lag.abort();
    }
}

/// Every [`MEASURE_LAG_EVERY`]: how many messages of each partition held lie after its
/// committed position.
fn measure_lag<L: EventLog>(
    stage: &'static str,
    log: L,
    committed: Arc<std::sync::Mutex<std::collections::BTreeMap<crate::ports::log::PartitionId, u64>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(MEASURE_LAG_EVERY).await;
            let held = committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            for (partition, next) in held {
                match log.messages_behind(&partition, next).await {
                    Ok(behind) => metrics::lag(stage, &partition, behind),
                    Err(error) => tracing::debug!(stage, %error, "the lag could not be measured"),
                }
            }
        }
    })
}

impl<S: Stage, L: EventLog, St: StageStore> Runner<S, L, St> {
    /// Once the program is loaded, join the consumer group (with the instances started
    /// together, if any). `None` if `shutdown` came first.
    async fn join(
        stage: S,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        config: RunnerConfig,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Option<Self>, StageError> {
        while !program.is_loaded() {
            tokio::select! {
                () = &mut *shutdown => return Ok(None),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        let consumer = log.consumer(&config.group, &config.topics)?;
        if let Some(others) = &config.start_together {
            tokio::select! {
                () = &mut *shutdown => return Ok(None),
                _ = others.wait() => {}
            }
        }
        metrics::register(stage.name());
        let checkpoint = Checkpoint::default();
        let lag = measure_lag(stage.name(), log.clone(), checkpoint.committed.clone());
        Ok(Some(Self {
            name: stage.name(),
            stage,
            log,
            store,
            program,
            config,
            consumer,
            partitions: Partitions::new(),
            checkpoint,
            writing: None,
            last_tick: Instant::now(),
            last_sizes: OutputSizes::default(),
            lag,
        }))
    }

    /// The next records and partition changes; `None` after a retriable failure (retried at
    /// the next call, after a pause).
    async fn poll(&mut self) -> Result<Option<Polled>, StageError> {
        match self.consumer.poll(self.config.batch, self.config.poll_wait).await {
            Ok(polled) => Ok(Some(polled)),
            Err(error) if error.is_retriable() => {
                tracing::warn!(stage = self.name, %error, "poll failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok(None)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Forget revoked partitions (their new owner starts from the last checkpoint and applies
    /// the rest again) and restore assigned ones from the last save: whatever was not saved of
    /// them, and the offsets of the inputs behind that, no longer stand.
    async fn rebalance(&mut self, polled: &Polled) -> Result<(), StageError> {
        for partition in &polled.revoked {
            self.partitions.remove(partition);
            self.checkpoint.forget(partition);
            metrics::released(self.name, partition);
        }
        if !polled.assigned.is_empty() {
            ::metrics::counter!(metrics::PARTITIONS_ASSIGNED, "stage" => self.name)
                .increment(polled.assigned.len() as u64);
        }
        for partition in &polled.assigned {
            self.checkpoint.forget(partition);
            let rows =
                persist(self.name, "load state", || self.store.load_state(self.name, partition.partition)).await?;
            let restored = Partition::restore(rows).map_err(|(key, error)| StageError::UnreadableState {
                stage: self.name,
                partition: partition.partition,
                key,
                error,
            })?;
            tracing::info!(stage = self.name, partition = %partition.partition, keys = restored.keys.len(), "partition assigned");
            self.partitions.insert(partition.clone(), restored);
        }
        Ok(())
    }

    /// Wait (a bounded time) until this process's program has the version the inputs need.
    async fn wait_for_program(&mut self, needed_version: u64) {
        if needed_version > 0 && !self.program.wait_for(needed_version, self.config.program_patience).await {
            tracing::warn!(
                stage = self.name,
                needed_version,
                have = self.program.version(),
                "program version not reached; going on"
            );
        }
    }

    /// Apply the batch, and what time made due if a tick is due, under one read of the program.
    fn apply(&mut self, decoded: Decoded<S::Input>) -> Applied {
        let now = (self.config.clock)();
        let tick_due = self.last_tick.elapsed() >= self.config.tick_every;
        let (stage, partitions, sizes) = (&mut self.stage, &mut self.partitions, &self.last_sizes);
        let inputs = decoded.inputs.len();
        let started = Instant::now();
        let applied =
            self.program.read(|program| apply::apply(stage, program, now, partitions, decoded, tick_due, sizes));
        metrics::applied(self.name, inputs, started.elapsed());
        if tick_due {
            self.last_tick = Instant::now();
        }
        applied
    }

    /// Hand the batch's outputs to the writer — in the background while the next batch is
    /// applied (one batch in flight, in order), or, when a checkpoint is due, written first so
    /// the states saved reflect only durable outputs.
    async fn write(&mut self, applied: Applied) -> Result<(), StageError> {
        self.last_sizes = applied.out.sizes();
        let positions = applied.processed.iter().map(|(partition, offset)| (partition.clone(), offset + 1)).collect();
        let outputs = BatchOutputs {
            stage: self.name,
            records: applied.out.records,
            store: applied.out.store,
            received: applied.received,
            applied: applied.applied,
            started: applied.started,
            positions,
        };
        self.finish_writing().await?;
        self.checkpoint.uncommitted.extend(applied.processed);
        self.checkpoint.settle(self.name, &mut self.consumer, false).await?;
        if self.checkpoint.due(self.config.checkpoint_every) {
            outputs.write(self.log.clone(), self.store.clone()).await?;
            self.checkpoint()
        } else {
            self.writing = Some(tokio::spawn(outputs.write(self.log.clone(), self.store.clone())));
            Ok(())
        }
    }

    /// Save the changed states in the background; their offsets are committed once saved.
    fn checkpoint(&mut self) -> Result<(), StageError> {
        let stage = &self.stage;
        self.checkpoint.start(self.name, &mut self.partitions, &self.store, |state| stage.is_forgettable(state))
    }

    async fn finish_writing(&mut self) -> Result<(), StageError> {
        match self.writing.take() {
            Some(writing) => {
                writing.await.map_err(|error| StoreError::Fatal(format!("writing outputs failed: {error}")))?
            }
            None => Ok(()),
        }
    }

    /// A clean stop: the last outputs, then a last checkpoint, committed.
    async fn stop(mut self) -> Result<(), StageError> {
        self.finish_writing().await?;
        self.checkpoint.settle(self.name, &mut self.consumer, true).await?;
        self.checkpoint()?;
        self.checkpoint.settle(self.name, &mut self.consumer, true).await
    }
}
