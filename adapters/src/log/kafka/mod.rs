//! The Kafka event log (rdkafka).
//!
//! The producer is idempotent with `acks=all`, so a retried send never duplicates a record,
//! and `append` resolves only when every record's delivery report says it is written. The
//! producer's queue is bounded (`queue.buffering.max.messages`); a full queue is an immediate
//! [`LogError::Overloaded`]. Broker health comes from librdkafka's statistics and its
//! all-brokers-down error: while no broker is up, `append` fails at once with
//! [`LogError::Unavailable`] and produces nothing, so a 503 never hides a write that lands
//! later.
//!
//! - `producer`: appends, bundling, broker health.
//! - `consumer`: consumer group members, rebalances, unbundling.
//! - `watchdog`: rejoining a consumer group that stopped making progress.
//!
//! Records of one append that go to the same partition of a topic listed in
//! [`KafkaConfig::bundled`] travel as one message, a bundle (`super::bundle`); record
//! positions, end offsets and commits are translated there.
//!
//! `linger.ms` (default 1 ms) is how long the producer waits to fill a batch. Against the
//! test broker a plain producer with the edge's settings reached 11.2k records/s at 0 ms,
//! 12.4k at 1 ms and 8.7k at 5 ms (docs/PERFORMANCE.md); a cluster with faster
//! acknowledgements may prefer a longer linger for larger batches (`CLICKLEDGER_KAFKA_LINGER_MS`).

mod consumer;
mod producer;
pub use producer::PRODUCERS_RENEWED;
mod watchdog;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pipeline::ports::log::{EventLog, LogError, PartitionId, Record, TopicSpec, Topics};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, Producer};

pub use consumer::KafkaConsumer;
use producer::{Health, ProducerContext};

use super::bundle;

#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `bootstrap.servers`
    pub brokers: String,
    /// `linger.ms`
    pub linger: Duration,
    /// `queue.buffering.max.messages`: records waiting in the producer at most.
    pub queue_max_messages: usize,
    /// `message.timeout.ms`: how long the producer keeps retrying a record.
    pub delivery_timeout: Duration,
    /// Replication factor of created topics.
    pub replication: i32,
    /// Extra librdkafka settings, applied last.
    pub extra: Vec<(String, String)>,
    /// Topics whose records are written in bundles, one message per partition and append
    /// (`super::bundle`). Never a compacted topic: compaction keeps one message per key.
    pub bundled: Vec<Arc<str>>,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            linger: Duration::from_millis(1),
            queue_max_messages: 100_000,
            delivery_timeout: Duration::from_secs(30),
            replication: 1,
            extra: Vec::new(),
            bundled: Vec::new(),
        }
    }

    /// Bundle the pipeline's own topics of `topics` (`orders` and `ledger`), which stages
    /// write a batch at a time. `events` is written by the edge a record at a time, and
    /// `program` is compacted.
    pub fn bundling(mut self, topics: &Topics) -> Self {
        self.bundled = vec![topics.orders.clone(), topics.ledger.clone()];
        self
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }
}

#[derive(Clone)]
pub struct KafkaLog {
    config: Arc<KafkaConfig>,
    /// The idempotent producer, renewed (a new producer id) when a broker answers a produce
    /// with an error the producer cannot recover from by itself (`producer::renews`).
    producer: Arc<std::sync::RwLock<FutureProducer<ProducerContext>>>,
    /// When the producer was last renewed.
    renewed_at: Arc<Mutex<Option<std::time::Instant>>>,
    admin: Arc<AdminClient<DefaultClientContext>>,
    metadata: Arc<BaseConsumer>,
    health: Arc<Health>,
    /// Partition counts of the bundled topics, looked up once.
    partitions: Arc<Mutex<HashMap<Arc<str>, u32>>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("brokers", &self.config.brokers).finish()
    }
}

fn fatal(error: impl std::fmt::Display) -> LogError {
    LogError::Fatal(error.to_string())
}

/// One place that decides what a Kafka error means for the caller.
fn classify(error: &KafkaError) -> LogError {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => LogError::Overloaded(error.to_string()),
        Some(
            RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::InvalidConfig
            | RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::TopicAuthorizationFailed,
        ) => LogError::Fatal(error.to_string()),
        _ => LogError::Unavailable(error.to_string()),
    }
}

impl KafkaLog {
    pub fn connect(config: KafkaConfig) -> Result<Self, LogError> {
        let health = Arc::new(Health::default());
        let producer = producer::create(&config, &health)?;
        let admin = config.client().create().map_err(fatal)?;
        let metadata = config.client().create().map_err(fatal)?;
        Ok(Self {
            config: Arc::new(config),
            producer: Arc::new(std::sync::RwLock::new(producer)),
            renewed_at: Arc::default(),
            admin: Arc::new(admin),
            metadata: Arc::new(metadata),
            health,
            partitions: Arc::default(),
        })
    }
}

impl EventLog for KafkaLog {
    type Consumer = KafkaConsumer;

    fn create_topics(&self, specs: &[TopicSpec]) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let admin = self.admin.clone();
        let replication = self.config.replication;
        let min_in_sync = (replication - 1).max(1).to_string();
        let specs = specs.to_vec();
        async move {
            let topics: Vec<NewTopic<'_>> = specs
                .iter()
                .map(|spec| {
                    let mut topic =
                        NewTopic::new(&spec.name, spec.partitions.max(1) as i32, TopicReplication::Fixed(replication));
                    if replication > 1 {
                        topic = topic.set("min.insync.replicas", &min_in_sync);
                    }
                    if spec.compacted { topic.set("cleanup.policy", "compact") } else { topic }
                })
                .collect();
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            let results = admin.create_topics(topics.iter(), &options).await.map_err(|error| classify(&error))?;
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((topic, code)) => return Err(LogError::Fatal(format!("creating topic {topic}: {code}"))),
                }
            }
            Ok(())
        }
    }

    fn append(&self, records: Vec<Record>) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        self.append_records(records)
    }

    fn queue_depth(&self) -> usize {
        usize::try_from(self.producer().in_flight_count()).unwrap_or(0)
    }

    /// `message.timeout.ms`, plus a second for the delivery report to arrive.
    fn delivery_timeout(&self) -> Duration {
        self.config.delivery_timeout + Duration::from_secs(1)
    }

    fn check(&self) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let up = self.brokers_up();
        let metadata = self.metadata.clone();
        async move {
            if !up {
                return Err(LogError::Unavailable("no Kafka broker is up".into()));
            }
            tokio::task::spawn_blocking(move || {
                metadata.fetch_metadata(None, Duration::from_secs(2)).map(|_| ()).map_err(|error| classify(&error))
            })
            .await
            .map_err(fatal)?
        }
    }

    fn end_offset(&self, partition: &PartitionId) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let metadata = self.metadata.clone();
        let partition = partition.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                metadata
                    .fetch_watermarks(&partition.topic, partition.partition as i32, Duration::from_secs(10))
                    .map(|(_, high)| bundle::end_position(high))
                    .map_err(|error| classify(&error))
            })
            .await
            .map_err(fatal)?
        }
    }

    /// Positions hold a message's offset above a record's index in its bundle: the lag is in
    /// Kafka offsets (a bundle counts once, and a bundle read in part counts as unread).
    fn messages_behind(
        &self,
        partition: &PartitionId,
        next: u64,
    ) -> impl Future<Output = Result<u64, LogError>> + Send + 'static {
        let end = self.end_offset(partition);
        async move {
            let (end, next) = (bundle::commit_offset(end.await?), bundle::commit_offset(next));
            Ok(u64::try_from(end.saturating_sub(next)).unwrap_or(0))
        }
    }

    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let producer = self.producer();
        async move {
            tokio::task::spawn_blocking(move || producer.flush(timeout).map_err(|error| classify(&error)))
                .await
                .map_err(fatal)?
        }
    }

    fn consumer(&self, group: &str, topics: &[Arc<str>]) -> Result<KafkaConsumer, LogError> {
        KafkaConsumer::join(&self.config, group, topics)
    }
}
