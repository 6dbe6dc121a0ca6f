//! Appending: messages handed to the idempotent producer, bundled where the topic is, and
//! refused at once while no broker is up.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use pipeline::ports::log::{LogError, Record, partition_for};
use rdkafka::ClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;

use super::{KafkaLog, bundle, classify, fatal};

/// How often a producer may be renewed at most.
const RENEW_AT_MOST_EVERY: Duration = Duration::from_secs(5);

/// Producers replaced because the old one could not go on.
pub const PRODUCERS_RENEWED: &str = "clickledger_kafka_producers_renewed_total";

/// A topic and one of its partitions.
type Place<'a> = (&'a Arc<str>, u32);

/// Whether any broker is up, as librdkafka last reported or a probe found.
#[derive(Debug)]
pub(super) struct Health {
    brokers_up: AtomicBool,
    probing: AtomicBool,
}

#[derive(Debug)]
pub(super) struct ProducerContext {
    pub(super) health: Arc<Health>,
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

impl Default for Health {
    /// Up until librdkafka or a probe says otherwise.
    fn default() -> Self {
        Self { brokers_up: AtomicBool::new(true), probing: AtomicBool::new(false) }
    }
}

/// An idempotent producer of `config`, reporting broker health to `health`.
pub(super) fn create(
    config: &super::KafkaConfig,
    health: &Arc<Health>,
) -> Result<FutureProducer<ProducerContext>, LogError> {
    config
        .client()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", config.linger.as_millis().to_string())
        .set("queue.buffering.max.messages", config.queue_max_messages.to_string())
        .set("message.timeout.ms", config.delivery_timeout.as_millis().to_string())
        .set("statistics.interval.ms", "500")
        .create_with_context(ProducerContext { health: health.clone() })
        .map_err(fatal)
}

/// Whether a failed delivery leaves the producer unable to go on: a fatal idempotence error,
/// or a broker's unknown error (a broker that lost the producer's sequence state after a
/// restart answers every later message of the producer id with it). The caller's retry then
/// goes through a new producer, with a new producer id; its records are the same, so a
/// record the old producer did write collapses into it downstream (ids are derived).
fn renews(error: &KafkaError, producer: &FutureProducer<ProducerContext>) -> bool {
    producer.client().fatal_error().is_some()
        || matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Unknown
                    | RDKafkaErrorCode::OutOfOrderSequenceNumber
                    | RDKafkaErrorCode::UnknownProducerId
                    | RDKafkaErrorCode::InvalidProducerEpoch
            )
        )
}

impl KafkaLog {
    /// The current producer.
    pub(super) fn producer(&self) -> FutureProducer<ProducerContext> {
        self.producer.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replace `failed` with a new producer, unless another append replaced it already or
    /// one was made less than [`RENEW_AT_MOST_EVERY`] ago (a broker failing every message for
    /// another reason gets a new producer that often, not one per append). The new producer is
    /// made outside the lock; the old one, whose drop flushes and joins its threads, is dropped
    /// off the async threads.
    fn renew_producer(&self, failed: &FutureProducer<ProducerContext>) {
        {
            let mut last = self.renewed_at.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < RENEW_AT_MOST_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        let renewed = match create(&self.config, &self.health) {
            Ok(renewed) => renewed,
            Err(error) => {
                tracing::error!(%error, "a new Kafka producer could not be made");
                return;
            }
        };
        let old = {
            let mut current = self.producer.write().unwrap_or_else(PoisonError::into_inner);
            if !std::ptr::eq(current.client().native_ptr(), failed.client().native_ptr()) {
                return;
            }
            std::mem::replace(&mut *current, renewed)
        };
        tracing::warn!("the Kafka producer cannot go on; appending through a new one");
        metrics::counter!(PRODUCERS_RENEWED).increment(1);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(old))),
            Err(_) => drop(old),
        }
    }

    pub(super) fn bundled(&self, topic: &str) -> bool {
        self.config.bundled.iter().any(|bundled| bundled.as_ref() == topic)
    }

    /// The partition counts of the bundled topics among `records`, if all are known.
    fn cached_counts(&self, records: &[Record]) -> Option<HashMap<Arc<str>, u32>> {
        if !records.iter().any(|record| self.bundled(&record.topic)) {
            return Some(HashMap::new());
        }
        let cache = self.partitions.lock().unwrap_or_else(PoisonError::into_inner);
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
            let known = self.partitions.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&record.topic);
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
            self.partitions.lock().unwrap_or_else(PoisonError::into_inner).insert(record.topic.clone(), count);
        }
        Ok(())
    }

    /// Hand `records` to the producer: bundled topics a message per partition (or more, at
    /// the bundle limits), the others a message per record. Stops at the first refusal.
    fn send(
        &self,
        records: &[Record],
        counts: &HashMap<Arc<str>, u32>,
        producer: &FutureProducer<ProducerContext>,
    ) -> (Vec<rdkafka::producer::DeliveryFuture>, Option<LogError>) {
        let mut deliveries = Vec::with_capacity(records.len());
        // The records of each (topic, partition), in the order of their first record.
        let mut groups: Vec<(Place<'_>, Vec<&Record>)> = Vec::new();
        for record in records {
            let Some(partitions) = counts.get(&record.topic) else {
                let future_record = FutureRecord::to(&record.topic).key(&record.key).payload(&record.payload);
                match producer.send_result(future_record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _)) => return (deliveries, Some(self.refused(&error, producer))),
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
                match producer.send_result(future_record) {
                    Ok(delivery) => deliveries.push(delivery),
                    Err((error, _)) => return (deliveries, Some(self.refused(&error, producer))),
                }
            }
        }
        (deliveries, None)
    }

    /// What a refusal to queue a message means; a producer in a fatal state refuses every
    /// message at once, so it is renewed here too, not only on a failed delivery.
    fn refused(&self, error: &KafkaError, producer: &FutureProducer<ProducerContext>) -> LogError {
        if producer.client().fatal_error().is_some() {
            self.renew_producer(producer);
        }
        classify(error)
    }

    /// Whether a broker is up. While none is, one probe at a time asks for metadata every
    /// 250 ms: an idle producer does not reconnect by itself, and appends are refused (not
    /// queued) while brokers are down, so without the probe it would never notice they are
    /// back.
    pub(super) fn brokers_up(&self) -> bool {
        let up = self.health.brokers_up.load(Ordering::Relaxed);
        if !up && !self.health.probing.swap(true, Ordering::AcqRel) {
            let producer = self.producer();
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

    /// Append `records` (`EventLog::append`).
    pub(super) fn append_records(
        &self,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<(), LogError>> + Send + 'static {
        let up = self.brokers_up();
        let producer = self.producer();
        // Once the partition counts are known the messages are queued before this returns,
        // so appends made one after the other keep their order.
        let queued =
            up.then(|| self.cached_counts(&records)).flatten().map(|counts| self.send(&records, &counts, &producer));
        let log = self.clone();
        // Otherwise they are looked up first, off the async threads.
        let lookup = (up && queued.is_none()).then(|| records);
        async move {
            let (deliveries, refused) = match (queued, lookup) {
                (Some(queued), _) => queued,
                (None, Some(records)) => {
                    let (learner, batch) = (log.clone(), records.clone());
                    tokio::task::spawn_blocking(move || learner.learn_partition_counts(&batch))
                        .await
                        .map_err(fatal)??;
                    let counts = log
                        .cached_counts(&records)
                        .ok_or_else(|| LogError::Unavailable("partition counts unknown".into()))?;
                    log.send(&records, &counts, &producer)
                }
                (None, None) => return Err(LogError::Unavailable("no Kafka broker is up".into())),
            };
            let mut result = refused.map_or(Ok(()), Err);
            for delivery in deliveries {
                let outcome = match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => {
                        if renews(&error, &producer) {
                            log.renew_producer(&producer);
                        }
                        Err(classify(&error))
                    }
                    Err(_) => Err(LogError::Unavailable("the producer was dropped".into())),
                };
                if result.is_ok() {
                    result = outcome;
                }
            }
            result
        }
    }
}
