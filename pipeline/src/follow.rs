//! Following the program log (docs/DECISIONS.md, "Program configuration is a log too"): every
//! service keeps the current program in memory and applies changes as they arrive, so nothing
//! on a request path reads a database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use model::events::wire;
use model::ids::EventId;
use model::program::{Program, ProgramChange, ProgramError, ProgramFile, ProgramRecord};
use model::time::Timestamp;

use crate::ports::log::{EventLog, LogConsumer, LogError, PartitionId, Record, Topics};

/// The program as this process knows it. Readers take a short read lock and never hold it
/// across an await; the follower takes the write lock once per batch of changes.
#[derive(Debug, Default)]
pub struct SharedProgram {
    program: RwLock<Program>,
    loaded: AtomicBool,
    applied: AtomicU64,
    /// The next program-log offset: every record before it is applied.
    version: AtomicU64,
}

impl SharedProgram {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A program that is already complete (tests, benchmarks).
    pub fn loaded(program: Program) -> Arc<Self> {
        let shared = Self { program: RwLock::new(program), ..Self::default() };
        shared.loaded.store(true, Ordering::Release);
        Arc::new(shared)
    }

    pub fn read<R>(&self, read: impl FnOnce(&Program) -> R) -> R {
        match self.program.read() {
            Ok(program) => read(&program),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    /// A copy of the current program.
    pub fn snapshot(&self) -> Program {
        self.read(Program::clone)
    }

    /// Whether the log was read up to where it ended when following started.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Wait until this copy has read the program log to where it ended when following started.
    pub async fn until_loaded(&self) {
        while !self.is_loaded() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Program records applied so far.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Relaxed)
    }

    /// The program version: the next program-log offset to apply.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Wait (up to `patience`) until this copy has applied `version`; false if it has not.
    pub async fn wait_for(&self, version: u64, patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        while self.version() < version {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Apply records as a reader of the log does ([`Program::follow`]); a record that fails
    /// its own checks is logged and skipped.
    pub fn apply(&self, records: impl IntoIterator<Item = ProgramRecord>) {
        let mut program = match self.program.write() {
            Ok(program) => program,
            Err(poisoned) => poisoned.into_inner(),
        };
        for record in records {
            let key = record.change.key();
            match program.follow(record.change) {
                Ok(()) => {
                    self.applied.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(%key, %error, "skipping an invalid program record"),
            }
        }
    }

    fn mark_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }
}

/// Read the program topic from the beginning and keep following it until `shutdown` resolves.
/// The program counts as loaded once the records that were in the topic at the start are
/// applied.
pub async fn follow_program<L: EventLog>(
    log: L,
    topic: Arc<str>,
    shared: Arc<SharedProgram>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LogError> {
    let partition = PartitionId { topic: topic.clone(), partition: 0 };
    let end_at_start = log.end_offset(&partition).await?;
    if end_at_start == 0 {
        shared.mark_loaded();
    }
    let group = format!("program-follower-{}", EventId::new());
    let mut consumer = log.consumer(&group, &[topic])?;
    tokio::pin!(shutdown);
    loop {
        let polled = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            polled = consumer.poll(1000, Duration::from_millis(200)) => polled,
        };
        let polled = match polled {
            Ok(polled) => polled,
            Err(error) if error.is_retriable() => {
                tracing::warn!(%error, "program follower: the log is unavailable, retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        let mut next_offset = None;
        let records: Vec<ProgramRecord> = polled
            .records
            .iter()
            .filter_map(|record| {
                next_offset = Some(record.offset + 1);
                wire::decode::<ProgramRecord>(&record.payload)
                    .inspect_err(|error| tracing::warn!(%error, offset = record.offset, "undecodable program record"))
                    .ok()
            })
            .collect();
        if !records.is_empty() {
            shared.apply(records);
        }
        if let Some(next) = next_offset {
            shared.version.fetch_max(next, Ordering::AcqRel);
        }
        if next_offset.is_some_and(|next| next >= end_at_start) {
            shared.mark_loaded();
        }
    }
}

/// Why a program file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A change of the file fails the program's checks; nothing was appended.
    #[error("the program file is refused: {0}")]
    Refused(#[from] ProgramError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the program log did not catch up with the loaded file")]
    NotApplied,
}

/// Append the changes of `file` that differ from the program (checked as the strict fold
/// does) as `actor`, and wait until this process's copy has them. Returns how many were
/// appended.
pub async fn load_program_file<L: EventLog>(
    log: &L,
    topics: &Topics,
    program: &SharedProgram,
    file: ProgramFile,
    actor: &str,
) -> Result<usize, LoadError> {
    let planned: Vec<ProgramChange> = program.read(|current| current.plan(file.into_changes()))?;
    if planned.is_empty() {
        return Ok(0);
    }
    let at = Timestamp::now();
    let records: Vec<Record> = planned
        .iter()
        .map(|change| {
            let record = ProgramRecord { at, actor: actor.to_string(), change: change.clone() };
            Record { topic: topics.program.clone(), key: change.key(), payload: wire::encode(&record) }
        })
        .collect();
    let count = records.len();
    let target = program.version() + count as u64;
    log.append(records).await?;
    if !program.wait_for(target, Duration::from_secs(30)).await {
        return Err(LoadError::NotApplied);
    }
    Ok(count)
}
