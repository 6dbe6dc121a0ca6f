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
//! Records of one append that go to the same partition of a topic listed in
//! [`KafkaConfig::bundled`] travel as one message, a bundle (`super::bundle`); record
//! positions, end offsets and commits are translated there.
//!
//! `linger.ms` (default 1 ms) is how long the producer waits to fill a batch. Against the
//! test broker a plain producer with the edge's settings reached 11.2k records/s at 0 ms,
//! 12.4k at 1 ms and 8.7k at 5 ms (docs/PERFORMANCE.md); a cluster with faster
//! acknowledgements may prefer a longer linger for larger batches (`CLICKLEDGER_KAFKA_LINGER_MS`).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use pipeline::ports::log::{
    Delivered, EventLog, LogConsumer, LogError, PartitionId, Polled, Record, TopicSpec, Topics, partition_for,
};
use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionListElem;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

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

/// A topic and one of its partitions.
type Place<'a> = (&'a Arc<str>, u32);

/// Whether any broker is up, as librdkafka last reported or a probe found.
#[derive(Debug)]
struct Health {
    brokers_up: AtomicBool,
    probing: AtomicBool,
}

#[derive(Debug)]
struct ProducerContext {
    health: Arc<Health>,
}

impl ClientContext for ProducerContext {
    /// Up when any broker is up; down only when every known broker is down. Brokers an idle
    /// producer never connected to (INIT) decide nothing.
    fn stats(&self, statistics: Statistics) {
        let brokers: Vec<_> = statistics.brokers.values().filter(|broker| broker.nodeid >= 0).collect();
        if brokers.iter().any(|broker| broker.state == "UP") {
            self.health.brokers_up.store(true, Ordering::Relaxed);
        } else if !brokers.is_empty() && brokers.iter().all(|broker| broker.state == "DOWN") {
            self.health.brokers_up.store(false, Ordering::Relaxed);
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.brokers_up.store(false, Ordering::Relaxed);
        }
        tracing::warn!(%error, reason, "kafka producer error");
    }
}

#[derive(Clone)]
pub struct KafkaLog {
    config: Arc<KafkaConfig>,
    producer: FutureProducer<ProducerContext>,
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
        let health = Arc::new(Health { brokers_up: AtomicBool::new(true), probing: AtomicBool::new(false) });
        let producer = config
            .client()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", config.linger.as_millis().to_string())
            .set("queue.buffering.max.messages", config.queue_max_messages.to_string())
            .set("message.timeout.ms", config.delivery_timeout.as_millis().to_string())
            .set("statistics.interval.ms", "500")
            .create_with_context(ProducerContext { health: health.clone() })
            .map_err(fatal)?;
        let admin = config.client().create().map_err(fatal)?;
        let metadata = config.client().create().map_err(fatal)?;
        Ok(Self {
            config: Arc::new(config),
            producer,
            admin: Arc::new(admin),
            metadata: Arc::new(metadata),
            health,
            partitions: Arc::default(),
        })
    }

    fn bundled(&self, topic: &str) -> bool {
        self.config.bundled.iter().any(|bundled| bundled.as_ref() == topic)
    }

    /// The partition counts of the bundled topics among `records`, if all are known.
    fn cached_counts(&self, records: &[Record]) -> Option<HashMap<Arc<str>, u32>> {
        if !records.iter().any(|record| self.bundled(&record.topic)) {
            return Some(HashMap::new());
        }
        let cache = self.partitions.lock().ok()?;
        let mut counts = HashMap::new();
        for record in records.iter().filter(|record| self.bundled(&record.topic)) {
            counts.insert(record.topic.clone(), *cache.get(&record.topic)?);
        }
        Some(counts)
    }

    /// Look up the partition counts of the bundled topics among `records` that are not in the
    /// cache yet (blocking: call off the async threads).
    fn learn_partition_counts(&self, records: &[Record]) -> Result<(), LogError> {
        for record in records.iter().filter(|record| self.bundled(&record.topic)) {
            let known = self.partitions.lock().map(|cache| cache.contains_key(&record.topic)).unwrap_or(false);
            if known {
                continue;
            }
            let metadata = self
                .metadata
                .fetch_metadata(Some(&record.topic), Duration::from_secs(10))
                .map_err(|error| classify(&error))?;
            let count = metadata.topics().first().map_or(0, |topic| topic.partitions().len() as u32);
            if count == 0 {
                return Err(LogError::Fatal(format!("unknown topic {}", record.topic)));
            }
            if let Ok(mut cache) = self.partitions.lock() {
                cache.insert(record.topic.clone(), count);
            }
        }
        Ok(())
    }

    /// Hand `records` to the producer: bundled topics a message per partition (or more, at
    /// the bundle limits), the others a message per record. Stops at the first refusal.
    fn send(
        &self,
        records: &[Record],
        counts: &HashMap<Arc<str>, u32>,
    ) -> (Vec<rdkafka::producer::DeliveryFuture>, Option<LogError>) {
        let mut deliveries = Vec::with_capacity(records.len());
        // The records of each (topic, partition), in the order of their first record.
        let mut groups: Vec<(Place<'_>, Vec<&Record>)> = Vec::new();
        for record in records {
            let Some(partitions) = counts.get(&record.topic) else {
                let future_record = FutureRecord::to(&record.topic).key(&record.key).payload(&record.payload);
                match self.producer.send_result(future_record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _)) => return (deliveries, Some(classify(&error))),
                }
                continue;
            };
            let place = (&record.topic, partition_for(&record.key, *partitions));
            match groups.iter_mut().find(|(group, _)| *group == place) {
                Some((_, group)) => group.push(record),
                None => groups.push((place, vec![record])),
            }
        }
        for ((topic, partition), group) in groups {
            for payload in bundle::encode(&group) {
                let future_record =
                    FutureRecord::to(topic).partition(partition as i32).key(bundle::KEY).payload(&payload);
                match self.producer.send_result(future_record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _)) => return (deliveries, Some(classify(&error))),
                }
            }
        }
        (deliveries, None)
    }

    /// Whether a broker is up. While none is, one probe at a time asks for metadata every
    /// 250 ms: an idle producer does not reconnect by itself, and appends are refused (not
    /// queued) while brokers are down, so without the probe it would never notice they are
    /// back.
    fn brokers_up(&self) -> bool {
        let up = self.health.brokers_up.load(Ordering::Relaxed);
        if !up && !self.health.probing.swap(true, Ordering::AcqRel) {
            let producer = self.producer.clone();
            let health = self.health.clone();
            tokio::task::spawn_blocking(move || {
                let reachable = producer.client().fetch_metadata(None, Duration::from_millis(1000)).is_ok();
                if reachable {
                    health.brokers_up.store(true, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_millis(250));
                }
                health.probing.store(false, Ordering::Release);
            });
        }
        up
    }
}

impl EventLog for KafkaLog {
    type Consumer = KafkaConsumer;

    fn create_topics(&self, specs: &[TopicSpec]) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let admin = self.admin.clone();
        let replication = self.config.replication;
        let specs = specs.to_vec();
        async move {
            let topics: Vec<NewTopic<'_>> = specs
                .iter()
                .map(|spec| {
                    let topic =
                        NewTopic::new(&spec.name, spec.partitions.max(1) as i32, TopicReplication::Fixed(replication));
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
        let up = self.brokers_up();
        // Once the partition counts are known the messages are queued before this returns,
        // so appends made one after the other keep their order.
        let queued = up.then(|| self.cached_counts(&records)).flatten().map(|counts| self.send(&records, &counts));
        // Otherwise they are looked up first, off the async threads.
        let lookup = (up && queued.is_none()).then(|| (self.clone(), records));
        async move {
            let (deliveries, refused) = match (queued, lookup) {
                (Some(queued), _) => queued,
                (None, Some((log, records))) => {
                    let (learner, batch) = (log.clone(), records.clone());
                    tokio::task::spawn_blocking(move || learner.learn_partition_counts(&batch))
                        .await
                        .map_err(fatal)??;
                    let counts = log
                        .cached_counts(&records)
                        .ok_or_else(|| LogError::Unavailable("partition counts unknown".into()))?;
                    log.send(&records, &counts)
                }
                (None, None) => return Err(LogError::Unavailable("no Kafka broker is up".into())),
            };
            let mut result = refused.map_or(Ok(()), Err);
            for delivery in deliveries {
                let outcome = match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(classify(&error)),
                    Err(_) => Err(LogError::Unavailable("the producer was dropped".into())),
                };
                if result.is_ok() {
                    result = outcome;
                }
            }
            result
        }
    }

    fn queue_depth(&self) -> usize {
        usize::try_from(self.producer.in_flight_count()).unwrap_or(0)
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

    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let producer = self.producer.clone();
        async move {
            tokio::task::spawn_blocking(move || producer.flush(timeout).map_err(|error| classify(&error)))
                .await
                .map_err(fatal)?
        }
    }

    fn consumer(&self, group: &str, topics: &[Arc<str>]) -> Result<KafkaConsumer, LogError> {
        let context = ConsumerEvents::default();
        let consumer: StreamConsumer<ConsumerEvents> = self
            .config
            .client()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.wait.max.ms", "50")
            // librdkafka stops fetching while its queue holds `queued.min.messages` (for a
            // consumer: all its partitions together) and looks again after this backoff,
            // 1 s by default. A stage that takes a 100,000-record batch and then waits for a
            // checkpoint's writes fills that queue, and the broker then sat idle for a second
            // (docs/PERFORMANCE.md, "Kafka consumer settings").
            .set("fetch.queue.backoff.ms", "20")
            .create_with_context(context)
            .map_err(fatal)?;
        let names: Vec<&str> = topics.iter().map(|topic| topic.as_ref()).collect();
        consumer.subscribe(&names).map_err(|error| classify(&error))?;
        Ok(KafkaConsumer {
            consumer: Arc::new(consumer),
            topics: topics.to_vec(),
            group: group.to_string(),
            held: BTreeSet::new(),
            watchdog: Watchdog::new(),
            unpacked: VecDeque::new(),
        })
    }
}

/// Rebalances as librdkafka reports them, for the next poll to hand out.
#[derive(Default)]
struct ConsumerEvents {
    changes: Mutex<Vec<(bool, Vec<(String, u32)>)>>,
}

impl ClientContext for ConsumerEvents {}

impl ConsumerContext for ConsumerEvents {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |list: &TopicPartitionList| {
            list.elements()
                .iter()
                .map(|element: &TopicPartitionListElem<'_>| (element.topic().to_string(), element.partition() as u32))
                .collect::<Vec<_>>()
        };
        let change = match rebalance {
            Rebalance::Assign(list) => (true, partitions(list)),
            Rebalance::Revoke(list) => (false, partitions(list)),
            Rebalance::Error(error) => {
                tracing::warn!(%error, "kafka rebalance error");
                return;
            }
        };
        if let Ok(mut changes) = self.changes.lock() {
            changes.push(change);
        }
    }
}

pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<ConsumerEvents>>,
    topics: Vec<Arc<str>>,
    group: String,
    /// Partitions this member holds.
    held: BTreeSet<(Arc<str>, i32)>,
    watchdog: Watchdog,
    /// Records of a bundle beyond what the last poll could take.
    unpacked: VecDeque<Delivered>,
}

/// How often a member looks at the partitions it does not hold.
const STALLED_GROUP: Duration = Duration::from_secs(20);

/// A liveness guard for consumer groups. Every [`STALLED_GROUP`] a member looks at the
/// partitions it does not hold: a partition with unread records whose committed offset has not
/// moved since the last look is read by nobody. On a healthy group that does not happen — the
/// member holding it reads and commits. It happened with the Tansu broker of the tests after a
/// member was killed during a rebalance (ARCHITECTURE.md, "A stalled group rejoins"): the
/// coordinator formed generations that gave some partitions to nobody, or to the dead member,
/// and never formed another. Leaving and joining again starts a new generation.
#[derive(Debug)]
struct Watchdog {
    last_look: tokio::time::Instant,
    /// Unheld partitions with unread records, and their committed offsets, at the last look.
    waiting: Option<Vec<((Arc<str>, i32), i64)>>,
}

impl Watchdog {
    fn new() -> Self {
        Self { last_look: tokio::time::Instant::now(), waiting: None }
    }
}

/// Every partition of `topics`: its committed offset in the group and how many records that
/// leaves unread.
fn group_progress(
    consumer: &StreamConsumer<ConsumerEvents>,
    topics: &[Arc<str>],
) -> Result<Vec<((Arc<str>, i32), i64, i64)>, KafkaError> {
    let timeout = Duration::from_secs(5);
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        for partition in metadata.topics().iter().flat_map(|topic| topic.partitions()) {
            list.add_partition(topic, partition.id());
        }
    }
    let committed = consumer.committed_offsets(list, timeout)?;
    let mut progress = Vec::new();
    for element in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(element.topic(), element.partition(), timeout)?;
        let position = match element.offset() {
            Offset::Offset(offset) => offset,
            _ => low,
        };
        let topic = topics.iter().find(|topic| topic.as_ref() == element.topic()).cloned();
        let topic = topic.unwrap_or_else(|| Arc::from(element.topic()));
        progress.push(((topic, element.partition()), position, (high - position).max(0)));
    }
    Ok(progress)
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer").field("topics", &self.topics).finish()
    }
}

impl KafkaConsumer {
    fn topic(&self, name: &str) -> Arc<str> {
        self.topics.iter().find(|topic| topic.as_ref() == name).cloned().unwrap_or_else(|| Arc::from(name))
    }

    /// Every [`STALLED_GROUP`]: rejoin if a partition this member does not hold has records
    /// to read and its committed offset did not move since the last look.
    async fn watch(&mut self) {
        if self.watchdog.last_look.elapsed() < STALLED_GROUP {
            return;
        }
        self.watchdog.last_look = tokio::time::Instant::now();
        let (consumer, topics) = (self.consumer.clone(), self.topics.clone());
        let progress = tokio::task::spawn_blocking(move || group_progress(&consumer, &topics)).await;
        let Ok(Ok(progress)) = progress else {
            return;
        };
        let waiting: Vec<((Arc<str>, i32), i64)> = progress
            .into_iter()
            .filter(|(partition, _, unread)| *unread > 0 && !self.held.contains(partition))
            .map(|(partition, committed, _)| (partition, committed))
            .collect();
        let stalled = !waiting.is_empty() && self.watchdog.waiting.as_ref() == Some(&waiting);
        self.watchdog.waiting = Some(waiting);
        if stalled {
            tracing::warn!(group = %self.group, "partitions with records to read make no progress; rejoining the consumer group");
            self.watchdog.waiting = None;
            let names: Vec<&str> = self.topics.iter().map(|topic| topic.as_ref()).collect();
            self.consumer.unsubscribe();
            if let Err(error) = self.consumer.subscribe(&names) {
                tracing::warn!(group = %self.group, %error, "rejoining the consumer group failed");
            }
        }
    }

    fn take_rebalances(&mut self, polled: &mut Polled) {
        let changes = self.consumer.context().changes.lock().map(|mut changes| std::mem::take(&mut *changes));
        for (assigned, partitions) in changes.unwrap_or_default() {
            for (topic, partition) in partitions {
                let id = PartitionId { topic: self.topic(&topic), partition };
                if assigned {
                    polled.revoked.retain(|revoked| revoked != &id);
                    self.held.insert((id.topic.clone(), id.partition as i32));
                    polled.assigned.push(id);
                } else {
                    polled.assigned.retain(|was_assigned| was_assigned != &id);
                    self.held.remove(&(id.topic.clone(), id.partition as i32));
                    self.unpacked.retain(|record| record.topic != id.topic || record.partition != id.partition);
                    polled.revoked.push(id);
                }
            }
            // A new assignment: look at the group afresh.
            self.watchdog = Watchdog::new();
        }
    }

    /// Move up to `max_records` unpacked records into `polled`.
    fn hand_out(&mut self, polled: &mut Polled, max_records: usize) {
        let take = self.unpacked.len().min(max_records.saturating_sub(polled.records.len()));
        polled.records.extend(self.unpacked.drain(..take));
    }
}

/// The records of a message: a bundle's, or the message itself.
fn unpack(topic: Arc<str>, message: &rdkafka::message::BorrowedMessage<'_>, into: &mut VecDeque<Delivered>) {
    let partition = message.partition() as u32;
    let payload = message.payload().unwrap_or_default();
    let format = bundle::Format::of(message.key());
    if format != bundle::Format::Plain {
        match bundle::decode(format, payload) {
            Ok(records) => {
                let count = records.len();
                into.extend(records.into_iter().enumerate().map(|(index, (key, payload))| Delivered {
                    topic: topic.clone(),
                    partition,
                    offset: bundle::position(message.offset(), index, count),
                    key,
                    payload,
                }));
                return;
            }
            // Handed on whole: the stage cannot decode it either, and skips it with an error.
            Err(error) => {
                tracing::error!(topic = %topic, partition, offset = message.offset(), %error, "a malformed bundle")
            }
        }
    }
    into.push_back(Delivered {
        topic,
        partition,
        offset: bundle::position(message.offset(), 0, 1),
        key: message.key().map(|key| String::from_utf8_lossy(key).into_owned()).unwrap_or_default(),
        payload: payload.to_vec(),
    });
}

impl LogConsumer for KafkaConsumer {
    async fn poll(&mut self, max_records: usize, wait: Duration) -> Result<Polled, LogError> {
        let max_records = max_records.max(1);
        let mut polled = Polled::default();
        self.take_rebalances(&mut polled);
        self.watch().await;
        self.hand_out(&mut polled, max_records);
        let deadline = tokio::time::Instant::now() + wait;
        while polled.records.len() < max_records {
            let next = if polled.records.is_empty() {
                match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            } else {
                match self.consumer.recv().now_or_never() {
                    Some(next) => next,
                    None => break,
                }
            };
            match next {
                Ok(message) => {
                    unpack(self.topic(message.topic()), &message, &mut self.unpacked);
                    self.hand_out(&mut polled, max_records);
                }
                Err(error) if polled.records.is_empty() => return Err(classify(&error)),
                Err(_) => break,
            }
            // A rebalance seen while fetching must reach the stage before these records.
            if !self.consumer.context().changes.lock().map(|changes| changes.is_empty()).unwrap_or(true) {
                break;
            }
        }
        self.take_rebalances(&mut polled);
        Ok(polled)
    }

    async fn commit(&mut self, offsets: &[(PartitionId, u64)]) -> Result<(), LogError> {
        let mut list = TopicPartitionList::new();
        for (partition, next) in offsets {
            let offset = Offset::Offset(bundle::commit_offset(*next));
            list.add_partition_offset(&partition.topic, partition.partition as i32, offset)
                .map_err(|error| classify(&error))?;
        }
        self.consumer.commit(&list, CommitMode::Async).map_err(|error| classify(&error))
    }
}
