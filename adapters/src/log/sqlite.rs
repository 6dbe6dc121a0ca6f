//! The embedded event log: a SQLite file (WAL) that behaves like a small Kafka.
//!
//! Every write — appends, topic creation, offset commits — goes through one writer thread fed
//! by a bounded queue. The thread takes everything waiting (up to `max_batch` records) and
//! writes it in one transaction: many concurrent requests share one commit (group commit), and
//! each request is answered only after that commit returned. With `synchronous = FULL` the
//! commit is on disk when it returns. A full queue is an explicit [`LogError::Overloaded`],
//! never unbounded memory, and a write that fails is never acknowledged.
//!
//! Storage: one append-only table per topic whose rowid is the record's offset, with the
//! partition (chosen by key hash, as Kafka's default partitioner) in a column. Every commit
//! appends at one place per topic, so the WAL carries little more than the records themselves
//! (a table per partition range rewrote the tail page of every partition at every commit:
//! 13× write amplification, measured in docs/PERFORMANCE.md). Offsets increase within a
//! partition but are numbered per topic, so they may skip numbers — as Kafka's may after
//! compaction or transactions; consumers commit "the next offset", never a count.
//!
//! Consumer groups are coordinated in process: the members of a group share its partitions
//! round-robin, and a change of members shows up at their next poll as assigned / revoked
//! partitions. One process owns the file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeline::ports::log::{
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
    /// How often the WAL is copied back into the database file.
    pub checkpoint_interval: Duration,
}

impl SqliteLogConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            queue_capacity: 16_384,
            max_batch: 8_192,
            durability: Durability::Full,
            checkpoint_interval: Duration::from_millis(250),
        }
    }
}

/// One request to the writer thread and where its answer goes.
struct Job {
    work: Work,
    done: oneshot::Sender<Result<(), LogError>>,
}

enum Work {
    Append(Vec<Record>),
    CreateTopics(Vec<TopicSpec>),
    Commit { group: Arc<str>, offsets: Vec<(PartitionId, u64)> },
    Flush,
}

impl Job {
    fn record_count(&self) -> usize {
        match &self.work {
            Work::Append(records) => records.len(),
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
    topics: Mutex<HashMap<Arc<str>, TopicInfo>>,
    /// The offset after the last record of every partition written.
    partition_ends: Mutex<HashMap<(Arc<str>, u32), u64>>,
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

impl TopicInfo {
    fn table(&self) -> String {
        format!("records_{}", self.id)
    }
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

fn open(path: &Path, durability: Durability) -> Result<Connection, LogError> {
    let connection = Connection::open(path).map_err(fatal)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection
        .execute_batch(&format!(
            "PRAGMA page_size = 8192;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {synchronous};
             PRAGMA wal_autocheckpoint = 0;
             PRAGMA busy_timeout = 10000;
             CREATE TABLE IF NOT EXISTS topics (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 partitions INTEGER NOT NULL,
                 compacted INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS partition_ends (
                 topic INTEGER NOT NULL,
                 partition INTEGER NOT NULL,
                 next_offset INTEGER NOT NULL,
                 PRIMARY KEY (topic, partition)) WITHOUT ROWID;
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
        let partition_ends = load_partition_ends(&connection, &topics)?;
        let (jobs, receiver) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let (appended, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            path: config.path.clone(),
            jobs,
            queued_records: AtomicUsize::new(0),
            writer_alive: AtomicBool::new(true),
            topics: Mutex::new(topics),
            partition_ends: Mutex::new(partition_ends),
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
        let checkpointer = Connection::open(&config.path).map_err(fatal)?;
        let alive = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("sqlite-log-checkpoint".into())
            .spawn(move || crate::wal::checkpoint_now_and_then(checkpointer, config.checkpoint_interval, alive))
            .map_err(fatal)?;
        Ok(Self { inner })
    }

    /// Transactions committed so far: with group commit, far fewer than appends under load.
    pub fn transactions(&self) -> u64 {
        self.inner.transactions.load(Ordering::Relaxed)
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

fn load_partition_ends(
    connection: &Connection,
    topics: &HashMap<Arc<str>, TopicInfo>,
) -> Result<HashMap<(Arc<str>, u32), u64>, LogError> {
    let by_id: HashMap<i64, Arc<str>> = topics.iter().map(|(name, info)| (info.id, name.clone())).collect();
    let mut statement =
        connection.prepare("SELECT topic, partition, next_offset FROM partition_ends").map_err(fatal)?;
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, u32>(1)?, row.get::<_, i64>(2)?)))
        .map_err(fatal)?;
    let mut ends = HashMap::new();
    for row in rows {
        let (topic, partition, next) = row.map_err(fatal)?;
        if let Some(name) = by_id.get(&topic) {
            ends.insert((name.clone(), partition), u64::try_from(next).unwrap_or(0));
        }
    }
    // The snapshot is written now and then with the records; records after it are read here.
    for (name, info) in topics {
        let snapshot = ends.iter().filter(|((topic, _), _)| topic == name).map(|(_, next)| *next).max().unwrap_or(0);
        let mut tail = connection
            .prepare(&format!(
                "SELECT partition, MAX(offset) FROM {} WHERE offset >= ?1 GROUP BY partition",
                info.table()
            ))
            .map_err(fatal)?;
        let rows = tail
            .query_map(params![snapshot as i64], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, i64>(1)?)))
            .map_err(fatal)?;
        for row in rows {
            let (partition, last) = row.map_err(fatal)?;
            ends.insert((name.clone(), partition), u64::try_from(last + 1).unwrap_or(0));
        }
    }
    Ok(ends)
}

/// How often the writer saves partition ends with a commit; between saves they are kept in
/// memory and recovered at open from the records after the last save.
const SAVE_ENDS_EVERY: Duration = Duration::from_secs(1);

async fn wait(done: oneshot::Receiver<Result<(), LogError>>) -> Result<(), LogError> {
    // A reply channel dropped without an answer is never an acknowledgement.
    done.await.unwrap_or_else(|_| Err(LogError::Unavailable("the embedded log's writer has stopped".into())))
}

impl EventLog for SqliteLog {
    type Consumer = SqliteConsumer;

    fn create_topics(&self, specs: &[TopicSpec]) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        let submitted = self.submit(Job { work: Work::CreateTopics(specs.to_vec()), done });
        async move {
            submitted?;
            wait(receiver).await
        }
    }

    fn append(&self, records: Vec<Record>) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let empty = records.is_empty();
        let (done, receiver) = oneshot::channel();
        let submitted = if empty { Ok(()) } else { self.submit(Job { work: Work::Append(records), done }) };
        async move {
            submitted?;
            if empty {
                return Ok(());
            }
            wait(receiver).await
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
        let known = self.topic(&partition.topic).is_some();
        let end = self
            .inner
            .partition_ends
            .lock()
            .map(|ends| ends.get(&(partition.topic.clone(), partition.partition)).copied().unwrap_or(0))
            .map_err(fatal);
        let topic = partition.topic.clone();
        async move {
            if !known {
                return Err(LogError::Fatal(format!("unknown topic {topic}")));
            }
            end
        }
    }

    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let (done, receiver) = oneshot::channel();
        let submitted = self.submit(Job { work: Work::Flush, done });
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

struct Writer {
    connection: Connection,
    max_batch: usize,
    inner: std::sync::Weak<Inner>,
}

/// Partition ends not yet saved, and when they were last saved.
struct UnsavedEnds {
    ends: HashMap<(i64, u32), u64>,
    saved_at: std::time::Instant,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Job>) {
        // The next offset of each topic: its rowid sequence.
        let mut next_offsets: HashMap<i64, u64> = HashMap::new();
        let mut unsaved = UnsavedEnds { ends: HashMap::new(), saved_at: std::time::Instant::now() };
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
            self.write(&inner, jobs, records, &mut next_offsets, &mut unsaved);
            inner.appended.send_modify(|generation| *generation += 1);
        }
        if let Some(inner) = self.inner.upgrade() {
            inner.writer_alive.store(false, Ordering::Relaxed);
        }
    }

    /// Write every job in one transaction, then answer each. A job that cannot be written
    /// (unknown topic) fails alone; a failed transaction fails every job in it and forgets the
    /// offsets it would have used. Every job gets an answer.
    fn write(
        &mut self,
        inner: &Inner,
        jobs: Vec<Job>,
        records: usize,
        next_offsets: &mut HashMap<i64, u64>,
        unsaved: &mut UnsavedEnds,
    ) {
        let topics = inner.topics.lock().map(|topics| topics.clone()).unwrap_or_default();
        let (works, replies): (Vec<Work>, Vec<oneshot::Sender<Result<(), LogError>>>) =
            jobs.into_iter().map(|job| (job.work, job.done)).unzip();
        let mut answers: Vec<Result<(), LogError>> = vec![Ok(()); works.len()];
        let mut ends: HashMap<(Arc<str>, u32), (i64, u64)> = HashMap::new();
        let mut created: Vec<(Arc<str>, TopicInfo)> = Vec::new();
        let result = (|| -> Result<(), LogError> {
            let transaction = self.connection.transaction().map_err(fatal)?;
            let now = now_millis();
            for (work, answer) in works.iter().zip(answers.iter_mut()) {
                match work {
                    Work::Append(records) => {
                        if let Some(record) = records.iter().find(|record| !topics.contains_key(&record.topic)) {
                            *answer = Err(LogError::Fatal(format!("unknown topic {}", record.topic)));
                            continue;
                        }
                        for record in records {
                            let topic = topics[&record.topic];
                            let partition = partition_for(&record.key, topic.partitions);
                            let offset = match next_offsets.get(&topic.id) {
                                Some(next) => *next,
                                None => next_offset(&transaction, &topic)?,
                            };
                            let mut insert = transaction
                                .prepare_cached(&format!(
                                    "INSERT INTO {} (offset, partition, key, payload, appended_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                                    topic.table()
                                ))
                                .map_err(fatal)?;
                            insert
                                .execute(params![offset as i64, partition, record.key, record.payload, now])
                                .map_err(fatal)?;
                            next_offsets.insert(topic.id, offset + 1);
                            ends.insert((record.topic.clone(), partition), (topic.id, offset + 1));
                        }
                    }
                    Work::CreateTopics(specs) => {
                        for spec in specs {
                            if topics.contains_key(&spec.name) || created.iter().any(|(name, _)| name == &spec.name) {
                                continue;
                            }
                            transaction
                                .execute(
                                    "INSERT INTO topics (name, partitions, compacted) VALUES (?1, ?2, ?3)",
                                    params![spec.name.as_ref(), spec.partitions.max(1), spec.compacted],
                                )
                                .map_err(fatal)?;
                            let info =
                                TopicInfo { id: transaction.last_insert_rowid(), partitions: spec.partitions.max(1) };
                            transaction
                                .execute_batch(&format!(
                                    "CREATE TABLE {} (
                                         offset INTEGER PRIMARY KEY,
                                         partition INTEGER NOT NULL,
                                         key TEXT NOT NULL,
                                         payload BLOB NOT NULL,
                                         appended_at INTEGER NOT NULL)",
                                    info.table()
                                ))
                                .map_err(fatal)?;
                            created.push((spec.name.clone(), info));
                        }
                    }
                    Work::Commit { group, offsets: commits } => {
                        for (partition, next) in commits {
                            let Some(topic) = topics.get(&partition.topic) else {
                                continue;
                            };
                            transaction
                                .prepare_cached(
                                    "INSERT INTO group_offsets (grp, topic, partition, next_offset) VALUES (?1, ?2, ?3, ?4)
                                     ON CONFLICT (grp, topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                                )
                                .and_then(|mut upsert| {
                                    upsert.execute(params![group.as_ref(), topic.id, partition.partition, *next as i64])
                                })
                                .map_err(fatal)?;
                        }
                    }
                    Work::Flush => {}
                }
            }
            for ((_, partition), (topic_id, next)) in &ends {
                unsaved.ends.insert((*topic_id, *partition), *next);
            }
            let save =
                unsaved.saved_at.elapsed() >= SAVE_ENDS_EVERY || works.iter().any(|work| matches!(work, Work::Flush));
            if save {
                for ((topic_id, partition), next) in &unsaved.ends {
                    transaction
                        .prepare_cached(
                            "INSERT INTO partition_ends (topic, partition, next_offset) VALUES (?1, ?2, ?3)
                             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                        )
                        .and_then(|mut upsert| upsert.execute(params![topic_id, partition, *next as i64]))
                        .map_err(fatal)?;
                }
            }
            transaction.commit().map_err(fatal)?;
            if save {
                unsaved.ends.clear();
                unsaved.saved_at = std::time::Instant::now();
            }
            Ok(())
        })();
        inner.queued_records.fetch_sub(records, Ordering::Relaxed);
        match result {
            Ok(()) => {
                inner.transactions.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut known) = inner.topics.lock() {
                    known.extend(created);
                }
                if let Ok(mut partition_ends) = inner.partition_ends.lock() {
                    for (key, (_, next)) in ends {
                        partition_ends.insert(key, next);
                    }
                }
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                tracing::error!(%error, "embedded log commit failed");
                next_offsets.clear();
                for reply in replies {
                    let _ = reply.send(Err(LogError::Unavailable(error.to_string())));
                }
            }
        }
    }
}

fn next_offset(connection: &Connection, topic: &TopicInfo) -> Result<u64, LogError> {
    let max: Option<i64> = connection
        .query_row(&format!("SELECT MAX(offset) FROM {}", topic.table()), [], |row| row.get(0))
        .map_err(fatal)?;
    Ok(max.map_or(0, |max| u64::try_from(max + 1).unwrap_or(0)))
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
    /// Which topic a poll starts reading at, so every topic gets its turn.
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
        let committed = self.read(move |connection, log, group| committed(connection, log, group, &assigned)).await?;
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

    /// Read each topic from the lowest position among this member's partitions of it,
    /// keeping the records of those partitions at or after their positions. Everything read
    /// up to the last record examined has been seen, so every assigned partition's position
    /// moves past it.
    async fn fetch(&mut self, max_records: usize) -> Result<Vec<Delivered>, LogError> {
        let mut by_topic: BTreeMap<Arc<str>, BTreeMap<u32, u64>> = BTreeMap::new();
        for (partition, next) in &self.positions {
            by_topic.entry(partition.topic.clone()).or_default().insert(partition.partition, *next);
        }
        if by_topic.is_empty() {
            return Ok(Vec::new());
        }
        let mut order: Vec<(Arc<str>, BTreeMap<u32, u64>)> = by_topic.into_iter().collect();
        let start = self.cursor % order.len();
        order.rotate_left(start);
        self.cursor = self.cursor.wrapping_add(1);
        let (records, advanced) = self
            .read(move |connection, log, _| {
                let mut records = Vec::new();
                let mut advanced: Vec<(Arc<str>, u32, u64)> = Vec::new();
                for (topic_name, positions) in order {
                    let remaining = max_records - records.len();
                    if remaining == 0 {
                        break;
                    }
                    let Some(topic) = log.topic(&topic_name) else {
                        continue;
                    };
                    let from = positions.values().copied().min().unwrap_or(0);
                    // Other members' records are skipped here; bound how many are examined.
                    let examine = remaining.saturating_mul(4).max(256);
                    let mut statement = connection
                        .prepare_cached(&format!(
                            "SELECT offset, partition, key, payload FROM {} WHERE offset >= ?1 ORDER BY offset LIMIT ?2",
                            topic.table()
                        ))
                        .map_err(fatal)?;
                    let mut rows = statement.query(params![from as i64, examine as i64]).map_err(fatal)?;
                    let mut last_examined = None;
                    while let Some(row) = rows.next().map_err(fatal)? {
                        let offset = u64::try_from(row.get::<_, i64>(0).map_err(fatal)?).unwrap_or(0);
                        let partition: u32 = row.get(1).map_err(fatal)?;
                        last_examined = Some(offset);
                        if positions.get(&partition).is_some_and(|next| offset >= *next) {
                            records.push(Delivered {
                                topic: topic_name.clone(),
                                partition,
                                offset,
                                key: row.get(2).map_err(fatal)?,
                                payload: row.get(3).map_err(fatal)?,
                            });
                            if records.len() == max_records {
                                break;
                            }
                        }
                    }
                    if let Some(last) = last_examined {
                        for (partition, next) in &positions {
                            advanced.push((topic_name.clone(), *partition, (*next).max(last + 1)));
                        }
                    }
                }
                Ok((records, advanced))
            })
            .await?;
        for (topic, partition, next) in advanced {
            self.positions.insert(PartitionId { topic, partition }, next);
        }
        Ok(records)
    }
}

fn committed(
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
        self.log.submit(Job { work: Work::Commit { group: self.group.clone(), offsets: offsets.to_vec() }, done })?;
        wait(receiver).await
    }
}
