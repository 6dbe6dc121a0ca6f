//! The event log port: Kafka's semantics — topics, partitions chosen by key hash, offsets, and
//! consumer groups with committed offsets.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The topic names of one deployment. A prefix keeps deployments (and tests) apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Clicks and conversions, keyed by visitor.
    pub events: Arc<str>,
    /// Attribution results, refunds, cancels and decisions, keyed by order.
    pub orders: Arc<str>,
    /// Everything that moves a family's money, keyed by the family root.
    pub ledger: Arc<str>,
    /// Program changes, keyed by entity; compacted.
    pub program: Arc<str>,
    /// What orders claim of their offer's caps, keyed by offer.
    pub caps: Arc<str>,
    /// What happened, for the notifier's postbacks and webhooks, keyed by notice id.
    pub notices: Arc<str>,
    /// The prefix of the names, also given to consumer groups.
    pub prefix: Arc<str>,
}

impl Topics {
    pub fn with_prefix(prefix: &str) -> Self {
        let name = |topic: &str| Arc::<str>::from(format!("{prefix}{topic}"));
        Self {
            events: name("events"),
            orders: name("orders"),
            ledger: name("ledger"),
            program: name("program"),
            caps: name("caps"),
            notices: name("notices"),
            prefix: Arc::from(prefix),
        }
    }

    /// A consumer group of this deployment: deployments that share a Kafka cluster under
    /// different prefixes never share a group.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The topics to create: the pipeline topics with `partitions` each, the program topic
    /// with one partition (it is small and read whole by every service).
    pub fn specs(&self, partitions: u32) -> Vec<TopicSpec> {
        vec![
            TopicSpec { name: self.events.clone(), partitions, compacted: false },
            TopicSpec { name: self.orders.clone(), partitions, compacted: false },
            TopicSpec { name: self.ledger.clone(), partitions, compacted: false },
            TopicSpec { name: self.caps.clone(), partitions, compacted: false },
            TopicSpec { name: self.notices.clone(), partitions, compacted: false },
            TopicSpec { name: self.program.clone(), partitions: 1, compacted: true },
        ]
    }
}

impl Default for Topics {
    fn default() -> Self {
        Self::with_prefix("clickledger.")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: Arc<str>,
    pub partitions: u32,
    /// Keep only the latest record per key (Kafka `cleanup.policy=compact`).
    pub compacted: bool,
}

/// One record to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: Arc<str>,
    pub key: String,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId {
    pub topic: Arc<str>,
    pub partition: u32,
}

/// One record read back, with its place in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub key: String,
    pub payload: Vec<u8>,
}

impl Delivered {
    pub fn partition_id(&self) -> PartitionId {
        PartitionId { topic: self.topic.clone(), partition: self.partition }
    }
}

/// What one poll brought: records, and changes of this consumer's partitions since the last
/// poll. A stage restores its state for `assigned` partitions before their records and
/// forgets the state of `revoked` ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    pub records: Vec<Delivered>,
    pub assigned: Vec<PartitionId>,
    pub revoked: Vec<PartitionId>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The bounded queue in front of the log is full: shed load (503 with `Retry-After`).
    #[error("the event log is overloaded: {0}")]
    Overloaded(String),
    /// The log cannot be reached or did not acknowledge in time; retrying later may work.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// A bug or misconfiguration (unknown topic, bad settings): retrying will not help.
    #[error("event log error: {0}")]
    Fatal(String),
}

impl LogError {
    pub fn is_retriable(&self) -> bool {
        !matches!(self, LogError::Fatal(_))
    }
}

/// An append-only, partitioned log.
pub trait EventLog: Clone + Send + Sync + 'static {
    type Consumer: LogConsumer;

    /// Create topics that do not exist yet; existing topics are left alone.
    fn create_topics(&self, specs: &[TopicSpec]) -> impl Future<Output = Result<(), LogError>> + Send + 'static;

    /// Append records, each to the partition its key hashes to ([`partition_for`]).
    /// Resolves `Ok` only when every record is durable (Kafka: `acks=all`; SQLite: committed).
    /// On error some records may have been written: callers retry, and consumers tolerate
    /// repeats (at-least-once).
    fn append(&self, records: Vec<Record>) -> impl Future<Output = Result<(), LogError>> + Send + 'static;

    /// Records accepted by `append` and not yet acknowledged.
    fn queue_depth(&self) -> usize;

    /// How long an `append` may take to resolve: by then it has its final answer (Kafka: the
    /// producer's delivery timeout). A caller that waits this long never answers "not
    /// written" for records that are then written after all.
    fn delivery_timeout(&self) -> Duration;

    /// Whether the log answers now (for readiness).
    fn check(&self) -> impl Future<Output = Result<(), LogError>> + Send + 'static;

    /// The offset after the last record of a partition (its high watermark).
    fn end_offset(&self, partition: &PartitionId) -> impl Future<Output = Result<u64, LogError>> + Send + 'static;

    /// How many messages of `partition` a consumer whose next position is `next` has not
    /// read yet (the consumer lag). A message is a record, or on a log that bundles records
    /// (Kafka's `orders` and `ledger`) a bundle.
    fn messages_behind(
        &self,
        partition: &PartitionId,
        next: u64,
    ) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let end = self.end_offset(partition);
        async move { Ok(end.await?.saturating_sub(next)) }
    }

    /// Wait until everything appended so far is acknowledged or `timeout` passes.
    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), LogError>> + Send + 'static;

    /// Join consumer group `group` on `topics`. Partitions are shared among the group's
    /// members; a member starts each partition at the group's committed offset, or at the
    /// beginning when none is committed.
    fn consumer(&self, group: &str, topics: &[Arc<str>]) -> Result<Self::Consumer, LogError>;
}

/// A member of a consumer group.
pub trait LogConsumer: Send + 'static {
    /// Up to `max_records` records, waiting at most `wait` for the first one.
    fn poll(&mut self, max_records: usize, wait: Duration) -> impl Future<Output = Result<Polled, LogError>> + Send;

    /// Record that every record before `next_offset` of each partition is processed.
    fn commit(&mut self, offsets: &[(PartitionId, u64)]) -> impl Future<Output = Result<(), LogError>> + Send;
}

/// The partition of `key` among `partitions`: Kafka's default (Java) partitioner,
/// `murmur2(key) & 0x7fffffff % partitions`, so both adapters place a key alike.
pub fn partition_for(key: &str, partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions
}

/// Kafka's `Utils.murmur2`.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data) as i32, expected, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keys_spread_over_partitions_and_stay_put() {
        assert_eq!(partition_for("anything", 1), 0);
        let first = partition_for("visitor-1", 4);
        assert_eq!(first, partition_for("visitor-1", 4));
        let used: std::collections::BTreeSet<u32> = (0..100).map(|n| partition_for(&format!("v{n}"), 4)).collect();
        assert_eq!(used.len(), 4);
    }
}
