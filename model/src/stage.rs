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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::wire::WireError;
use crate::follow::SharedProgram;
use crate::journal::{self, Journal};
use crate::ports::log::{Delivered, EventLog, LogConsumer, LogError, PartitionId, Record};
use crate::ports::store::{Store, StoreBatch, StoreError};
use crate::program::Program;
use crate::time::Timestamp;

/// What applying inputs produced: records for the log and rows for the store.
#[derive(Debug, Default)]
pub struct StageOutput {
    pub records: Vec<Record>,
    pub store: StoreBatch,
}

impl StageOutput {
    /// Empty, with room for as much as `previous` held: a batch's outputs are about the size
    /// of the last one's, and vectors grown by doubling from nothing every batch were 2–3% of
    /// the settler's time.
    fn sized_like(previous: &OutputSizes) -> Self {
        let store = StoreBatch {
            clicks: Vec::with_capacity(previous.clicks),
            conversions: Vec::with_capacity(previous.conversions),
            lines: Vec::with_capacity(previous.lines),
            ..StoreBatch::default()
        };
        Self { records: Vec::with_capacity(previous.records), store }
    }

    fn sizes(&self) -> OutputSizes {
        OutputSizes {
            records: self.records.len(),
            clicks: self.store.clicks.len(),
            conversions: self.store.conversions.len(),
            lines: self.store.lines.len(),
        }
    }
}

/// How many outputs of each kind a batch produced.
#[derive(Debug, Default, Clone, Copy)]
struct OutputSizes {
    records: usize,
    clicks: usize,
    conversions: usize,
    lines: usize,
}

/// What a stage sees while applying an input.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub program: &'a Program,
    pub now: Timestamp,
    pub partition: u32,
    pub offset: u64,
}

/// How the state of one key is saved and restored.
///
/// A state is saved whole at every checkpoint that follows a change ([`WholeState`]: small
/// states), or journaled: a state that grows large and changes a little at a time (the
/// settler's ledger of a family) reports what changed since the last save
/// ([`StageState::take_changes`]), and the runner saves that as a change row chained to the
/// previous one. Once the changes add up to twice the size of the last snapshot, the next save
/// is a snapshot again and the rows it replaces are deleted; so saving costs in proportion to
/// what changed, and a restore reads at most about three times the state (`journal`).
pub trait StageState: Default + Send + 'static {
    /// The whole state.
    fn encode(&self) -> Vec<u8>;

    fn decode(bytes: &[u8]) -> Result<Self, String>;

    /// What changed since the last call, encoded; `None` for a state saved whole. The runner
    /// calls it at every save, so a state journals only between saves.
    fn take_changes(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// Apply changes taken by [`StageState::take_changes`] to the state they were taken from.
    fn apply_changes(&mut self, _changes: &[u8]) -> Result<(), String> {
        Err("this state is saved whole".to_string())
    }
}

/// A state saved whole (MessagePack, named fields) at every checkpoint after it changed.
pub trait WholeState: Serialize + DeserializeOwned + Default + Send + 'static {}

impl<T: WholeState> StageState for T {
    fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        rmp_serde::from_slice(bytes).map_err(|error| error.to_string())
    }
}

/// The logic of one stage; the runner does the rest.
pub trait Stage: Send + 'static {
    type Input: Send;
    type State: StageState;

    /// The stage's name, in the state table.
    fn name(&self) -> &'static str;

    fn decode(&self, record: &Delivered) -> Result<Self::Input, WireError>;

    /// The program version the input was made with (0: any).
    fn program_version(&self, _input: &Self::Input) -> u64 {
        0
    }

    /// When the edge received the event behind the input, if the stage wants its lag measured:
    /// the runner records `clickledger_stage_lag_seconds` from then until the outputs the input
    /// produced are durable.
    fn received_at(&self, _input: &Self::Input) -> Option<Timestamp> {
        None
    }

    /// Apply one input to its key's state; true if the state changed.
    fn apply(
        &mut self,
        context: &Context<'_>,
        key: &str,
        state: &mut Self::State,
        input: Self::Input,
        out: &mut StageOutput,
    ) -> bool;

    /// Whether a key's state has work that time alone makes due.
    fn wants_tick(&self, _state: &Self::State) -> bool {
        false
    }

    /// Do what time made due for one key; true if the state changed.
    fn tick(&mut self, _context: &Context<'_>, _key: &str, _state: &mut Self::State, _out: &mut StageOutput) -> bool {
        false
    }
}

/// Resolves when the process should stop; clones resolve together.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown and the sender that triggers it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        (sender, Self(receiver))
    }

    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// The clock a stage reads for time-driven work (tests drive their own).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(Timestamp::now)
}

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
    /// inputs again from the last checkpoint (docs/PERFORMANCE.md, "Attributor and settler").
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
    UnreadableState { stage: &'static str, partition: u32, key: String, error: String },
}

struct KeyState<T> {
    /// The offset of the last input this state reflects.
    offset: Option<u64>,
    state: T,
    journal: Journal,
    /// Changed since the last checkpoint (and listed in [`Partition::unsaved`]).
    unsaved: bool,
}

impl<T: Default> KeyState<T> {
    fn new() -> Self {
        Self { offset: None, state: T::default(), journal: Journal::default(), unsaved: false }
    }
}

/// A partition's keys. They come from the edge's inputs (visitor ids from cookies, order ids
/// from pixels), so the map keeps std's SipHash (PERFORMANCE, "a faster hasher").
#[derive(Default)]
struct Partition<T> {
    keys: HashMap<String, KeyState<T>>,
    /// The keys changed since the last checkpoint, each once.
    unsaved: Vec<String>,
}

/// Retry a retriable failure with backoff (the log or store is down: wait, do not crash).
async fn persist<T, E, Attempt>(what: &str, mut attempt: impl FnMut() -> Attempt) -> Result<T, E>
where
    Attempt: Future<Output = Result<T, E>>,
    E: std::fmt::Display + Retriable,
{
    let mut delay = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(error) if error.retriable() => {
                tracing::warn!(what, %error, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            result => return result,
        }
    }
}

trait Retriable {
    fn retriable(&self) -> bool;
}

impl Retriable for LogError {
    fn retriable(&self) -> bool {
        self.is_retriable()
    }
}

impl Retriable for StoreError {
    fn retriable(&self) -> bool {
        self.is_retriable()
    }
}

/// Run `stage` until `shutdown` resolves. Returns on shutdown, or on an error that retrying
/// cannot fix.
pub async fn run_stage<S, L, St>(
    mut stage: S,
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    config: RunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StageError>
where
    S: Stage,
    L: EventLog,
    St: Store,
{
    tokio::pin!(shutdown);
    while !program.is_loaded() {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let name = stage.name();
    let mut consumer = log.consumer(&config.group, &config.topics)?;
    if let Some(others) = &config.start_together {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = others.wait() => {}
        }
    }
    let mut partitions: BTreeMap<PartitionId, Partition<S::State>> = BTreeMap::new();
    let mut last_tick = Instant::now();
    let mut checkpoint = Checkpoint::default();
    let mut writing: Option<tokio::task::JoinHandle<Result<(), StageError>>> = None;
    let mut last_sizes = OutputSizes::default();
    loop {
        let polled = tokio::select! {
            () = &mut shutdown => break,
            polled = consumer.poll(config.batch, config.poll_wait) => polled,
        };
        let polled = match polled {
            Ok(polled) => polled,
            Err(error) if error.is_retriable() => {
                tracing::warn!(stage = name, %error, "poll failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        for partition in &polled.revoked {
            // Its new owner starts from the last checkpoint and applies the rest again.
            partitions.remove(partition);
            checkpoint.forget(partition);
        }
        if !polled.assigned.is_empty() {
            metrics::counter!("clickledger_stage_partitions_assigned_total", "stage" => name)
                .increment(polled.assigned.len() as u64);
        }
        for partition in &polled.assigned {
            // The state is reloaded from the last save: whatever was not saved of it, and the
            // offsets of the inputs behind that, no longer stand.
            checkpoint.forget(partition);
            let rows = persist("load state", || store.load_state(name, partition.partition)).await?;
            let (states, unreadable) = journal::restore::<S::State>(rows);
            if let Some((key, error)) = unreadable.into_iter().next() {
                return Err(StageError::UnreadableState { stage: name, partition: partition.partition, key, error });
            }
            let mut restored = Partition::default();
            for state in states {
                let entry =
                    KeyState { offset: Some(state.offset), state: state.state, journal: state.journal, unsaved: false };
                restored.keys.insert(state.key, entry);
            }
            tracing::info!(stage = name, partition = %partition.partition, keys = restored.keys.len(), "partition assigned");
            partitions.insert(partition.clone(), restored);
        }

        let mut inputs = Vec::with_capacity(polled.records.len());
        let mut undecodable = Vec::new();
        let mut needed_version = 0;
        for record in polled.records {
            match stage.decode(&record) {
                Ok(input) => {
                    needed_version = needed_version.max(stage.program_version(&input));
                    inputs.push((record, input));
                }
                Err(error) => {
                    metrics::counter!("clickledger_stage_undecodable_total", "stage" => name).increment(1);
                    tracing::error!(stage = name, offset = record.offset, %error, "skipping an undecodable record");
                    undecodable.push((record.partition_id(), record.offset));
                }
            }
        }
        if needed_version > 0 && !program.wait_for(needed_version, config.program_patience).await {
            tracing::warn!(
                stage = name,
                needed_version,
                have = program.version(),
                "program version not reached; going on"
            );
        }

        let started = Instant::now();
        let now = (config.clock)();
        let tick_due = last_tick.elapsed() >= config.tick_every;
        let mut out = StageOutput::sized_like(&last_sizes);
        let mut processed: BTreeMap<PartitionId, u64> = BTreeMap::new();
        let applied = inputs.len();
        let mut received = Vec::new();
        program.read(|program| {
            for (record, input) in inputs {
                let partition_id = record.partition_id();
                let Some(partition) = partitions.get_mut(&partition_id) else {
                    continue;
                };
                match processed.get_mut(&partition_id) {
                    Some(last) => *last = record.offset,
                    None => {
                        processed.insert(partition_id, record.offset);
                    }
                }
                if !partition.keys.contains_key(&record.key) {
                    partition.keys.insert(record.key.clone(), KeyState::new());
                }
                let Some(entry) = partition.keys.get_mut(&record.key) else {
                    continue;
                };
                if entry.offset.is_some_and(|offset| record.offset <= offset) {
                    continue;
                }
                let context = Context { program, now, partition: record.partition, offset: record.offset };
                received.extend(stage.received_at(&input));
                let known = entry.offset.is_some();
                if stage.apply(&context, &record.key, &mut entry.state, input, &mut out) {
                    entry.offset = Some(record.offset);
                    if !entry.unsaved {
                        entry.unsaved = true;
                        partition.unsaved.push(record.key.clone());
                    }
                } else if known {
                    entry.offset = Some(record.offset);
                } else {
                    // A key whose state never changed needs no memory (a code-only conversion).
                    partition.keys.remove(&record.key);
                }
            }
            if tick_due {
                for (partition_id, partition) in &mut partitions {
                    for (key, entry) in &mut partition.keys {
                        if !stage.wants_tick(&entry.state) {
                            continue;
                        }
                        let context = Context {
                            program,
                            now,
                            partition: partition_id.partition,
                            offset: entry.offset.unwrap_or(0),
                        };
                        if stage.tick(&context, key, &mut entry.state, &mut out) && !entry.unsaved {
                            entry.unsaved = true;
                            partition.unsaved.push(key.clone());
                        }
                    }
                }
            }
        });
        if tick_due {
            last_tick = Instant::now();
        }
        // A skipped record is behind us too: commit past it, or its partition never catches up.
        for (partition_id, offset) in undecodable {
            if partitions.contains_key(&partition_id) {
                let last = processed.entry(partition_id).or_insert(offset);
                *last = (*last).max(offset);
            }
        }

        // Outputs with every batch, written while the next batch is applied (one batch in
        // flight, in order); states and offsets at checkpoints.
        last_sizes = out.sizes();
        let positions = processed.iter().map(|(partition, offset)| (partition.clone(), offset + 1)).collect();
        let outputs =
            BatchOutputs { stage: name, records: out.records, store: out.store, received, applied, started, positions };
        if let Some(previous) = writing.take() {
            finish(previous).await?;
        }
        checkpoint.uncommitted.extend(processed);
        checkpoint.settle(name, &mut consumer, false).await?;
        if checkpoint.due(config.checkpoint_every) {
            // The states saved reflect this batch: its outputs are durable first.
            outputs.write(log.clone(), store.clone()).await?;
            checkpoint.start(name, &mut partitions, &store);
        } else {
            writing = Some(tokio::spawn(outputs.write(log.clone(), store.clone())));
        }
    }
    if let Some(previous) = writing.take() {
        finish(previous).await?;
    }
    checkpoint.settle(name, &mut consumer, true).await?;
    checkpoint.start(name, &mut partitions, &store);
    checkpoint.settle(name, &mut consumer, true).await?;
    Ok(())
}

/// What one batch produced, to write.
struct BatchOutputs {
    stage: &'static str,
    records: Vec<Record>,
    store: StoreBatch,
    /// When the edge received the inputs that want their lag measured.
    received: Vec<Timestamp>,
    applied: usize,
    started: Instant,
    /// Per input partition, the position after the batch's last input.
    positions: Vec<(PartitionId, u64)>,
}

impl BatchOutputs {
    /// Log records, then store rows; then the batch counts as done in the metrics.
    async fn write<L: EventLog, St: Store>(self, log: L, store: St) -> Result<(), StageError> {
        let stage = self.stage;
        if !self.records.is_empty() {
            let records = self.records;
            persist("append outputs", || log.append(records.clone())).await?;
        }
        if !self.store.is_empty() {
            let batch = Arc::new(self.store);
            persist("write store", || store.write(batch.clone())).await?;
        }
        if !self.received.is_empty() {
            let durable = Timestamp::now();
            let lag = metrics::histogram!("clickledger_stage_lag_seconds", "stage" => stage);
            for at in self.received {
                lag.record(Duration::from_millis(u64::try_from(durable.millis() - at.millis()).unwrap_or(0)));
            }
        }
        if self.applied > 0 {
            metrics::counter!("clickledger_stage_records_total", "stage" => stage).increment(self.applied as u64);
            metrics::histogram!("clickledger_stage_batch_seconds", "stage" => stage).record(self.started.elapsed());
        }
        // Where each partition's outputs are durable up to: with the log's end offsets, the
        // stage's lag in records. Inputs applied again after a rebalance move it back and
        // forward again, where `clickledger_stage_records_total` counts them twice.
        for (partition, next) in self.positions {
            let (topic, partition) = (partition.topic.to_string(), partition.partition.to_string());
            metrics::gauge!("clickledger_stage_position", "stage" => stage, "topic" => topic, "partition" => partition)
                .set(next as f64);
        }
        Ok(())
    }
}

async fn finish(writing: tokio::task::JoinHandle<Result<(), StageError>>) -> Result<(), StageError> {
    writing.await.map_err(|error| StoreError::Fatal(format!("writing outputs failed: {error}")))?
}

/// What changed since the last checkpoint: the last input offset applied per partition (the
/// keys whose state is not saved are listed by their partitions); and the save under way, if
/// any.
struct Checkpoint {
    uncommitted: BTreeMap<PartitionId, u64>,
    saving: Option<Saving>,
    last: Instant,
    /// How long the last save took.
    took: Duration,
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
        Self { uncommitted: BTreeMap::new(), saving: None, last: Instant::now(), took: Duration::ZERO }
    }
}

impl Checkpoint {
    fn due(&self, every: Duration) -> bool {
        self.saving.is_none() && self.last.elapsed() >= every.max(self.took * CHECKPOINT_SHARE)
    }

    fn forget(&mut self, partition: &PartitionId) {
        self.uncommitted.remove(partition);
        if let Some(saving) = &mut self.saving {
            saving.offsets.remove(partition);
        }
    }

    /// Encode the changed states (each with the offset of the last input it reflects) and
    /// write them in the background, so the stage goes on while a large state is saved. The
    /// input offsets are committed by [`Checkpoint::settle`] once the states are durable.
    fn start<T: StageState, St: Store>(
        &mut self,
        stage: &str,
        partitions: &mut BTreeMap<PartitionId, Partition<T>>,
        store: &St,
    ) {
        let mut batch = StoreBatch::default();
        for (partition_id, partition) in partitions.iter_mut() {
            for key in std::mem::take(&mut partition.unsaved) {
                if let Some(entry) = partition.keys.get_mut(&key) {
                    entry.unsaved = false;
                    let offset = entry.offset.unwrap_or(0);
                    let rows = journal::save(
                        stage,
                        partition_id.partition,
                        &key,
                        offset,
                        &mut entry.state,
                        &mut entry.journal,
                    );
                    batch.state.extend(rows);
                }
            }
        }
        let store = store.clone();
        let batch = Arc::new(batch);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            if !batch.is_empty() {
                persist("save state", || store.write(batch.clone())).await?;
            }
            Ok(started.elapsed())
        });
        let offsets = std::mem::take(&mut self.uncommitted);
        self.saving = Some(Saving { task, offsets });
    }

    /// If a save finished (or, with `wait`, once it has): commit the offsets its states
    /// reflect.
    async fn settle<C: LogConsumer>(&mut self, stage: &str, consumer: &mut C, wait: bool) -> Result<(), StageError> {
        if !self.saving.as_ref().is_some_and(|saving| wait || saving.task.is_finished()) {
            return Ok(());
        }
        let Some(saving) = self.saving.take() else {
            return Ok(());
        };
        self.took = saving.task.await.map_err(|error| StoreError::Fatal(format!("state save failed: {error}")))??;
        self.last = Instant::now();
        let offsets: Vec<(PartitionId, u64)> =
            saving.offsets.into_iter().map(|(partition, last)| (partition, last + 1)).collect();
        if !offsets.is_empty()
            && let Err(error) = consumer.commit(&offsets).await
        {
            // States carry their own offsets; a lost commit only means some inputs are read
            // again and skipped.
            tracing::warn!(stage, %error, "offset commit failed");
        }
        Ok(())
    }
}
