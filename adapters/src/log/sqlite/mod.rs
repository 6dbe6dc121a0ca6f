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
//!
//! - `writer`: the writer thread and its transactions (appends, topics, commits).
//! - `consumer`: members of consumer groups, coordinated in the process.

mod consumer;
mod writer;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipeline::ports::log::{EventLog, LogError, PartitionId, Record, TopicSpec};
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{oneshot, watch};

use consumer::GroupState;
pub use consumer::SqliteConsumer;
use writer::{Job, Work, Writer};

/// How durable a commit is when it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous = FULL`: on disk (fsync) before the acknowledgement. The default.
    #[default]
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
        locked(&self.inner.topics).get(name).copied()
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

/// What [`EventLog::delivery_timeout`] says for the embedded log.
pub const EMBEDDED_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

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

    /// The writer answers every append after its transaction; only a disk that stalls longer
    /// than this leaves one unanswered.
    fn delivery_timeout(&self) -> Duration {
        EMBEDDED_DELIVERY_TIMEOUT
    }

    fn check(&self) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let alive = self.inner.writer_alive.load(Ordering::Relaxed);
        async move {
            if alive { Ok(()) } else { Err(LogError::Unavailable("the embedded log's writer has stopped".into())) }
        }
    }

    fn end_offset(&self, partition: &PartitionId) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let known = self.topic(&partition.topic).is_some();
        let end = Ok(locked(&self.inner.partition_ends)
            .get(&(partition.topic.clone(), partition.partition))
            .copied()
            .unwrap_or(0));
        let topic = partition.topic.clone();
        async move {
            if !known {
                return Err(LogError::Fatal(format!("unknown topic {topic}")));
            }
            end
        }
    }

    /// Offsets are numbered per topic, not per partition: the records of the partition at or
    /// after `next` are counted.
    fn messages_behind(
        &self,
        partition: &PartitionId,
        next: u64,
    ) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let topic = self.topic(&partition.topic);
        let (path, name, number) = (self.inner.path.clone(), partition.topic.clone(), partition.partition);
        async move {
            let Some(topic) = topic else {
                return Err(LogError::Fatal(format!("unknown topic {name}")));
            };
            tokio::task::spawn_blocking(move || {
                let connection = open_reader(&path)?;
                let sql = format!("SELECT COUNT(*) FROM {} WHERE offset >= ?1 AND partition = ?2", topic.table());
                let next = i64::try_from(next).unwrap_or(i64::MAX);
                let count: i64 = connection.query_row(&sql, (next, number), |row| row.get(0)).map_err(fatal)?;
                Ok(u64::try_from(count).unwrap_or(0))
            })
            .await
            .map_err(fatal)?
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
        SqliteConsumer::join(self, group, topics)
    }
}

/// A lock on shared bookkeeping. A panic elsewhere while it was held leaves the map whole
/// (each change to it is one insert or remove), so it is used as it is rather than lost.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
