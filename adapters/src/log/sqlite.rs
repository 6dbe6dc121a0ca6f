//! The embedded event log: a SQLite file (WAL) that behaves like a small Kafka.
//!
//! Every write — appends, topic creation, offset commits — goes through one writer thread fed
//! by a bounded queue. The thread takes everything waiting (up to `max_batch` records) and
//! writes it in one transaction: many concurrent requests share one commit (group commit), and
//! each request is acknowledged only after that commit returned. With `synchronous = FULL`
//! the commit is on disk when it returns. A full queue is an explicit
//! [`LogError::Overloaded`], never unbounded memory.
//!
//! Records land in the partition their key hashes to (`partition_for`, as Kafka's default
//! partitioner) and get consecutive offsets per partition. Consumer groups are coordinated in
//! process: the members of a group share its partitions round-robin, and a change of members
//! shows up at their next poll as assigned / revoked partitions. One process owns the file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::ports::log::{
    Delivered, EventLog, LogConsumer, LogError, PartitionId, Polled, Record, TopicSpec, partition_for,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

/// How durable a commit is when it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: on disk (fsync) before the acknowledgement. The default.
    Full,
    /// `synchronous = NORMAL`: survives a crash of the process, not of the machine.
    Normal,
}

#[derive(Clone, Debug)]
pub struct SqliteLogConfig {
    pub path: PathBuf,
    /// Append requests waiting for the writer; beyond it appends fail with `Overloaded`.
    pub queue_capacity: usize,
    /// Records written in one transaction at most.
    pub max_batch: usize,
    pub durability: Durability,
}

impl SqliteLogConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), queue_capacity: 16_384, max_batch: 8_192, durability: Durability::Full }
    }
}

enum Job {
    Append { records: Vec<Record>, done: oneshot::Sender<Result<(), LogError>> },
    CreateTopics { specs: Vec<TopicSpec>, done: oneshot::Sender<Result<(), LogError>> },
    Commit { group: Arc<str>, offsets: Vec<(PartitionId, u64)>, done: oneshot::Sender<Result<(), LogError>> },
    Flush { done: oneshot::Sender<Result<(), LogError>> },
}

impl Job {
    fn record_count(&self) -> usize {
        match self {
            Job::Append { records, .. } => records.len(),
            _ => 1,
        }
    }
}

#[derive(Default)]
struct GroupState {
    /// member id → subscribed topics
    members: BTreeMap<u64, Vec<Arc<str>>>,
    generation: u64,
}

struct Inner {
    path: PathBuf,
    jobs: SyncSender<Job>,
    queued_records: AtomicUsize,
    writer_alive: AtomicBool,
    /// Partitions per topic, as created.
    topics: Mutex<HashMap<Arc<str>, TopicInfo>>,
    /// The next offset of every written partition.
    high_watermarks: Mutex<HashMap<(Arc<str>, u32), u64>>,
    /// Bumped after every commit, so waiting consumers wake up.
    appended: watch::Sender<u64>,
    groups: Mutex<HashMap<Arc<str>, GroupState>>,
    next_member: AtomicU64,
    transactions: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct TopicInfo {
    id: i64,
    partitions: u32,
}

/// A handle to the embedded log; clones share the writer.
#[derive(Clone)]
pub struct SqliteLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLog").field("path", &self.inner.path).finish()
    }
}

fn fatal(error: impl std::fmt::Display) -> LogError {
    LogError::Fatal(error.to_string())
}

/// Records are stored under one integer, `topic << 52 | partition << 40 | offset`: the rowid
/// of a plain table, so each partition is a contiguous range that grows at its end. Rows are
/// a few hundred bytes, which SQLite stores better in a rowid table than in a WITHOUT ROWID
/// one (measured in docs/PERFORMANCE.md). Limits: 2,048 topics, 4,096 partitions, 2^40
/// records per partition.
const OFFSET_BITS: u32 = 40;
const PARTITION_BITS: u32 = 12;

fn position(topic: i64, partition: u32, offset: u64) -> i64 {
    (topic << (OFFSET_BITS + PARTITION_BITS)) | (i64::from(partition) << OFFSET_BITS) | (offset as i64)
}

fn partition_start(topic: i64, partition: u32) -> i64 {
    position(topic, partition, 0)
}

fn partition_end(topic: i64, partition: u32) -> i64 {
    position(topic, partition, 0) + (1i64 << OFFSET_BITS)
}

fn open(path: &Path, durability: Durability) -> Result<Connection, LogError> {
    let connection = Connection::open(path).map_err(fatal)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection
        .execute_batch(&format!(
            "PRAGMA page_size = 16384;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA busy_timeout = 10000;
             CREATE TABLE IF NOT EXISTS topics (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 partitions INTEGER NOT NULL,
                 compacted INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS records (
                 position INTEGER PRIMARY KEY,
                 key TEXT NOT NULL,
                 payload BLOB NOT NULL,
                 appended_at INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS group_offsets (
                 grp TEXT NOT NULL,
                 topic INTEGER NOT NULL,
                 partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL,
                 PRIMARY KEY (grp, topic, partition)) WITHOUT ROWID;"
        ))
        .map_err(fatal)?;
    Ok(connection)
}

fn open_reader(path: &Path) -> Result<Connection, LogError> {
    let connection =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(fatal)?;
    connection.busy_timeout(Duration::from_secs(10)).map_err(fatal)?;
    Ok(connection)
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

impl SqliteLog {
    /// Open (or create) the log file and start its writer thread.
    pub fn open(config: SqliteLogConfig) -> Result<Self, LogError> {
        let connection = open(&config.path, config.durability)?;
        let topics = load_topics(&connection)?;
        let (jobs, receiver) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let (appended, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            path: config.path.clone(),
            jobs,
            queued_records: AtomicUsize::new(0),
            writer_alive: AtomicBool::new(true),
            topics: Mutex::new(topics),
            high_watermarks: Mutex::new(HashMap::new()),
            appended,
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            transactions: AtomicU64::new(0),
        });
        let writer_inner = Arc::downgrade(&inner);
        let max_batch = config.max_batch;
        std::thread::Builder::new()
            .name("sqlite-log-writer".into())
            .spawn(move || Writer { connection, max_batch, inner: writer_inner }.run(receiver))
            .map_err(fatal)?;
        Ok(Self { inner })
    }

    fn submit(&self, job: Job) -> Result<(), LogError> {
        let count = job.record_count();
        self.inner.queued_records.fetch_add(count, Ordering::Relaxed);
        match self.inner.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.inner.queued_records.fetch_sub(count, Ordering::Relaxed);
                Err(LogError::Overloaded("the embedded log's write queue is full".into()))
            }
            Err(TrySendError::Disconnected(_)) => {
                self.inner.queued_records.fetch_sub(count, Ordering::Relaxed);
                Err(LogError::Unavailable("the embedded log's writer has stopped".into()))
            }
        }
    }

    /// Transactions committed so far: with group commit, far fewer than appends under load.
    pub fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::Relaxed)
    }

    fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.inner.topics.lock().ok()?.get(name).copied()
    }
}

fn load_topics(connection: &Connection) -> Result<HashMap<Arc<str>, TopicInfo>, LogError> {
    let mut statement = connection.prepare("SELECT id, name, partitions FROM topics").map_err(fatal)?;
    let rows = statement
        .query_map([], |row| {
            let name: String = row.get(1)?;
            Ok((Arc::<str>::from(name), TopicInfo { id: row.get(0)?, partitions: row.get(2)? }))
        })
        .map_err(fatal)?;
    rows.collect::<Result<HashMap<_, _>, _>>().map_err(fatal)
}

async fn wait(done: oneshot::Receiver<Result<(), LogError>>) -> Result<(), LogError> {
    done.await.unwrap_or_else(|_| Err(LogError::Unavailable("the embedded log's writer has stopped".into())))
}

impl EventLog for SqliteLog {
    type Consumer = SqliteConsumer;

    fn create_topics(&self, specs: &[TopicSpec]) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        let submitted = self.submit(Job::CreateTopics { specs: specs.to_vec(), done });
        async move {
            submitted?;
            wait(receiver).await
        }
    }

    fn append(&self, records: Vec<Record>) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        let submitted = if records.is_empty() { Ok(()) } else { self.submit(Job::Append { records, done }) };
        async move {
            submitted?;
            match receiver.await {
                Ok(result) => result,
                // Nothing was submitted for an empty append.
                Err(_) => Ok(()),
            }
        }
    }

    fn queue_depth(&self) -> usize {
        self.inner.queued_records.load(Ordering::Relaxed)
    }

    fn check(&self) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let alive = self.inner.writer_alive.load(Ordering::Relaxed);
        async move {
            if alive { Ok(()) } else { Err(LogError::Unavailable("the embedded log's writer has stopped".into())) }
        }
    }

    fn end_offset(&self, partition: &PartitionId) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let inner = self.inner.clone();
        let topic = self.topic(&partition.topic);
        let partition = partition.clone();
        async move {
            let Some(topic) = topic else {
                return Err(LogError::Fatal(format!("unknown topic {}", partition.topic)));
            };
            let known = inner
                .high_watermarks
                .lock()
                .ok()
                .and_then(|marks| marks.get(&(partition.topic.clone(), partition.partition)).copied());
            if let Some(next) = known {
                return Ok(next);
            }
            let path = inner.path.clone();
            tokio::task::spawn_blocking(move || {
                let connection = open_reader(&path)?;
                next_offset(&connection, topic.id, partition.partition)
            })
            .await
            .map_err(fatal)?
        }
    }

    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        let submitted = self.submit(Job::Flush { done });
        async move {
            submitted?;
            tokio::time::timeout(timeout, wait(receiver))
                .await
                .unwrap_or_else(|_| Err(LogError::Unavailable("flush timed out".into())))
        }
    }

    fn consumer(&self, group: &str, topics: &[Arc<str>]) -> Result<SqliteConsumer, LogError> {
        for topic in topics {
            if self.topic(topic).is_none() {
                return Err(LogError::Fatal(format!("unknown topic {topic}")));
            }
        }
        let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let group: Arc<str> = Arc::from(group);
        {
            let mut groups = self.inner.groups.lock().map_err(fatal)?;
            let state = groups.entry(group.clone()).or_default();
            state.members.insert(member, topics.to_vec());
            state.generation += 1;
        }
        Ok(SqliteConsumer {
            log: self.clone(),
            group,
            member,
            reader: Some(open_reader(&self.inner.path)?),
            positions: BTreeMap::new(),
            generation: 0,
            appended: self.inner.appended.subscribe(),
            cursor: 0,
        })
    }
}

fn next_offset(connection: &Connection, topic: i64, partition: u32) -> Result<u64, LogError> {
    let max: Option<i64> = connection
        .query_row(
            "SELECT MAX(offset) FROM records WHERE topic = ?1 AND partition = ?2",
            params![topic, partition],
            |row| row.get(0),
        )
        .map_err(fatal)?;
    Ok(max.map_or(0, |max| u64::try_from(max + 1).unwrap_or(0)))
}

struct Writer {
    connection: Connection,
    max_batch: usize,
    inner: std::sync::Weak<Inner>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Job>) {
        let mut offsets: HashMap<(i64, u32), u64> = HashMap::new();
        while let Ok(first) = receiver.recv() {
            let mut jobs = vec![first];
            let mut records = jobs[0].record_count();
            while records < self.max_batch {
                match receiver.try_recv() {
                    Ok(job) => {
                        records += job.record_count();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let Some(inner) = self.inner.upgrade() else {
                break;
            };
            self.write(&inner, jobs, &mut offsets);
            inner.queued_records.fetch_sub(records, Ordering::Relaxed);
            inner.appended.send_modify(|generation| *generation += 1);
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.writer_alive.store(false, Ordering::Relaxed);
        }
    }

    /// Write every job in one transaction and answer each. A job that cannot be written
    /// (unknown topic) fails alone; a failed commit fails them all and forgets the offsets it
    /// would have used.
    fn write(&mut self, inner: &Inner, jobs: Vec<Job>, offsets: &mut HashMap<(i64, u32), u64>) {
        let topics = inner.topics.lock().map(|topics| topics.clone()).unwrap_or_default();
        let mut answers: Vec<(oneshot::Sender<Result<(), LogError>>, Result<(), LogError>)> =
            Vec::with_capacity(jobs.len());
        let mut written: Vec<(Arc<str>, u32, u64)> = Vec::new();
        let mut created: Vec<(Arc<str>, TopicInfo)> = Vec::new();
        let result = (|| -> Result<(), LogError> {
            let transaction = self.connection.transaction().map_err(fatal)?;
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT INTO records (position, key, payload, appended_at) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(fatal)?;
                let now = now_millis();
                for job in jobs {
                    match job {
                        Job::Append { records, done } => {
                            let unknown = records.iter().find(|record| !topics.contains_key(&record.topic));
                            if let Some(record) = unknown {
                                let error = LogError::Fatal(format!("unknown topic {}", record.topic));
                                answers.push((done, Err(error)));
                                continue;
                            }
                            for record in &records {
                                let topic = topics[&record.topic];
                                let partition = partition_for(&record.key, topic.partitions);
                                let next = match offsets.get(&(topic.id, partition)) {
                                    Some(next) => *next,
                                    None => next_offset(&transaction, topic.id, partition)?,
                                };
                                insert
                                    .execute(params![position(topic.id, partition, next), record.key, record.payload, now])
                                    .map_err(fatal)?;
                                offsets.insert((topic.id, partition), next + 1);
                                written.push((record.topic.clone(), partition, next + 1));
                            }
                            answers.push((done, Ok(())));
                        }
                        Job::CreateTopics { specs, done } => {
                            for spec in specs {
                                if topics.contains_key(&spec.name) || created.iter().any(|(name, _)| name == &spec.name)
                                {
                                    continue;
                                }
                                transaction
                                    .execute(
                                        "INSERT INTO topics (name, partitions, compacted) VALUES (?1, ?2, ?3)",
                                        params![spec.name.as_ref(), spec.partitions.max(1), spec.compacted],
                                    )
                                    .map_err(fatal)?;
                                let id = transaction.last_insert_rowid();
                                created.push((spec.name.clone(), TopicInfo { id, partitions: spec.partitions.max(1) }));
                            }
                            answers.push((done, Ok(())));
                        }
                        Job::Commit { group, offsets: commits, done } => {
                            for (partition, next) in commits {
                                let Some(topic) = topics.get(&partition.topic) else {
                                    continue;
                                };
                                transaction
                                    .execute(
                                        "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                                         ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                                        params![group.as_ref(), topic.id, partition.partition, next as i64],
                                    )
                                    .map_err(fatal)?;
                            }
                            answers.push((done, Ok(())));
                        }
                        Job::Flush { done } => answers.push((done, Ok(()))),
                    }
                }
            }
            transaction.commit().map_err(fatal)
        })();
        match result {
            Ok(()) => {
                inner.transactions.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut known) = inner.topics.lock() {
                    known.extend(created);
                }
                if let Ok(mut marks) = inner.high_watermarks.lock() {
                    for (topic, partition, next) in written {
                        marks.insert((topic, partition), next);
                    }
                }
                for (done, answer) in answers {
                    let _ = done.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(%error, "embedded log commit failed");
                offsets.clear();
                for (done, _) in answers {
                    let _ = done.send(Err(LogError::Unavailable(error.to_string())));
                }
            }
        }
    }
}

/// A member of a consumer group of the embedded log.
pub struct SqliteConsumer {
    log: SqliteLog,
    group: Arc<str>,
    member: u64,
    reader: Option<Connection>,
    /// The next offset to read of each assigned partition.
    positions: BTreeMap<PartitionId, u64>,
    generation: u64,
    appended: watch::Receiver<u64>,
    /// Which partition a poll starts reading at, so every partition gets its turn.
    cursor: usize,
}

impl std::fmt::Debug for SqliteConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConsumer").field("group", &self.group).field("member", &self.member).finish()
    }
}

impl Drop for SqliteConsumer {
    fn drop(&mut self) {
        if let Ok(mut groups) = self.log.inner.groups.lock() {
            if let Some(state) = groups.get_mut(&self.group) {
                state.members.remove(&self.member);
                state.generation += 1;
            }
        }
    }
}

impl SqliteConsumer {
    /// This member's share of the group's partitions: all partitions of the subscribed topics,
    /// in order, dealt round-robin to the members in id order.
    fn assignment(&self) -> Result<(u64, BTreeSet<PartitionId>), LogError> {
        let groups = self.log.inner.groups.lock().map_err(fatal)?;
        let Some(state) = groups.get(&self.group) else {
            return Ok((0, BTreeSet::new()));
        };
        let topics = self.log.inner.topics.lock().map_err(fatal)?;
        let members: Vec<u64> = state.members.keys().copied().collect();
        let Some(index) = members.iter().position(|member| *member == self.member) else {
            return Ok((state.generation, BTreeSet::new()));
        };
        let subscribed: BTreeSet<&Arc<str>> = state.members.values().flatten().collect();
        let mut all = Vec::new();
        for topic in subscribed {
            let partitions = topics.get(topic).map_or(0, |info| info.partitions);
            all.extend((0..partitions).map(|partition| PartitionId { topic: topic.clone(), partition }));
        }
        let mine = all
            .into_iter()
            .enumerate()
            .filter(|(position, partition)| {
                position % members.len() == index
                    && state.members.get(&self.member).is_some_and(|topics| topics.contains(&partition.topic))
            })
            .map(|(_, partition)| partition)
            .collect();
        Ok((state.generation, mine))
    }

    async fn rebalance(&mut self, polled: &mut Polled) -> Result<(), LogError> {
        let (generation, wanted) = self.assignment()?;
        if generation == self.generation {
            return Ok(());
        }
        self.generation = generation;
        let current: BTreeSet<PartitionId> = self.positions.keys().cloned().collect();
        polled.revoked = current.difference(&wanted).cloned().collect();
        polled.assigned = wanted.difference(&current).cloned().collect();
        for partition in &polled.revoked {
            self.positions.remove(partition);
        }
        let assigned = polled.assigned.clone();
        let committed =
            self.read(move |connection, log, group| polled_committed(connection, log, group, &assigned)).await?;
        for (partition, next) in committed {
            self.positions.insert(partition, next);
        }
        Ok(())
    }

    /// Run a read on the consumer's own connection, off the async runtime.
    async fn read<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&Connection, &SqliteLog, &str) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let connection = match self.reader.take() {
            Some(connection) => connection,
            None => open_reader(&self.log.inner.path)?,
        };
        let log = self.log.clone();
        let group = self.group.clone();
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = work(&connection, &log, &group);
            (connection, result)
        })
        .await
        .map_err(fatal)?;
        self.reader = Some(connection);
        result
    }

    async fn fetch(&mut self, max_records: usize) -> Result<Vec<Delivered>, LogError> {
        if self.positions.is_empty() {
            return Ok(Vec::new());
        }
        let mut order: Vec<(PartitionId, u64)> = self.positions.iter().map(|(id, next)| (id.clone(), *next)).collect();
        let start = self.cursor % order.len();
        order.rotate_left(start);
        self.cursor = self.cursor.wrapping_add(1);
        let records = self
            .read(move |connection, log, _| {
                let mut records = Vec::new();
                let mut statement = connection
                    .prepare_cached(
                        "SELECT position, key, payload FROM records
                         WHERE position >= ?1 AND position < ?2 ORDER BY position LIMIT ?3",
                    )
                    .map_err(fatal)?;
                for (partition, next) in order {
                    let remaining = max_records - records.len();
                    if remaining == 0 {
                        break;
                    }
                    let Some(topic) = log.topic(&partition.topic) else {
                        continue;
                    };
                    let start = partition_start(topic.id, partition.partition);
                    let from = position(topic.id, partition.partition, next);
                    let end = partition_end(topic.id, partition.partition);
                    let rows = statement
                        .query_map(params![from, end, remaining as i64], |row| {
                            let position: i64 = row.get(0)?;
                            Ok(Delivered {
                                topic: partition.topic.clone(),
                                partition: partition.partition,
                                offset: u64::try_from(position - start).unwrap_or(0),
                                key: row.get(1)?,
                                payload: row.get(2)?,
                            })
                        })
                        .map_err(fatal)?;
                    for row in rows {
                        records.push(row.map_err(fatal)?);
                    }
                }
                Ok(records)
            })
            .await?;
        for record in &records {
            self.positions.insert(record.partition_id(), record.offset + 1);
        }
        Ok(records)
    }
}

fn polled_committed(
    connection: &Connection,
    log: &SqliteLog,
    group: &str,
    partitions: &[PartitionId],
) -> Result<Vec<(PartitionId, u64)>, LogError> {
    let mut statement = connection
        .prepare_cached("SELECT next_offset FROM group_offsets WHERE grp = ?1 AND topic = ?2 AND partition = ?3")
        .map_err(fatal)?;
    partitions
        .iter()
        .map(|partition| {
            let topic = log.topic(&partition.topic).map_or(-1, |topic| topic.id);
            let next: Option<i64> = statement
                .query_row(params![group, topic, partition.partition], |row| row.get(0))
                .optional()
                .map_err(fatal)?;
            Ok((partition.clone(), next.map_or(0, |next| u64::try_from(next).unwrap_or(0))))
        })
        .collect()
}

impl LogConsumer for SqliteConsumer {
    async fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Polled, LogError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut polled = Polled::default();
        loop {
            self.appended.borrow_and_update();
            self.rebalance(&mut polled).await?;
            polled.records = self.fetch(max_records.max(1)).await?;
            let changed = !polled.assigned.is_empty() || !polled.revoked.is_empty();
            if !polled.records.is_empty() || changed {
                return Ok(polled);
            }
            // Wake on the next commit, or now and then to notice group changes.
            let nap = deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_millis(100));
            if nap.is_zero() {
                return Ok(polled);
            }
            let _ = tokio::time::timeout(nap, self.appended.changed()).await;
        }
    }

    async fn commit(&mut self, offsets: &[(PartitionId, u64)]) -> Result<(), LogError> {
        let (done, receiver) = oneshot::channel();
        self.log.submit(Job::Commit { group: self.group.clone(), offsets: offsets.to_vec(), done })?;
        wait(receiver).await
    }
}
