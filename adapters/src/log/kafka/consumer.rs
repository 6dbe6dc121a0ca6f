//! A member of a consumer group: records handed out (bundles unpacked), partitions assigned
//! and revoked as librdkafka reports them, offsets committed.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use pipeline::ports::log::{Delivered, LogConsumer, LogError, PartitionId, Polled};
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::TopicPartitionListElem;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::watchdog::Watchdog;
use super::{KafkaConfig, bundle, classify, fatal};

/// Rebalances as librdkafka reports them, for the next poll to hand out.
#[derive(Default)]
pub(super) struct ConsumerEvents {
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
        // A panic elsewhere while the list was held leaves it whole: a rebalance is never lost.
        self.changes.lock().unwrap_or_else(PoisonError::into_inner).push(change);
    }
}

pub struct KafkaConsumer {
    pub(super) consumer: Arc<StreamConsumer<ConsumerEvents>>,
    pub(super) topics: Vec<Arc<str>>,
    pub(super) group: String,
    /// Partitions this member holds.
    pub(super) held: BTreeSet<(Arc<str>, i32)>,
    pub(super) watchdog: Watchdog,
    /// Records of a bundle beyond what the last poll could take.
    unpacked: VecDeque<Delivered>,
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

    fn take_rebalances(&mut self, polled: &mut Polled) {
        let changes =
            std::mem::take(&mut *self.consumer.context().changes.lock().unwrap_or_else(PoisonError::into_inner));
        for (assigned, partitions) in changes {
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

    /// Join consumer group `group` on `topics` (`EventLog::consumer`).
    pub(super) fn join(config: &KafkaConfig, group: &str, topics: &[Arc<str>]) -> Result<Self, LogError> {
        let context = ConsumerEvents::default();
        let consumer: StreamConsumer<ConsumerEvents> = config
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
        Ok(Self {
            consumer: Arc::new(consumer),
            topics: topics.to_vec(),
            group: group.to_string(),
            held: BTreeSet::new(),
            watchdog: Watchdog::new(),
            unpacked: VecDeque::new(),
        })
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
            if !self.consumer.context().changes.lock().unwrap_or_else(PoisonError::into_inner).is_empty() {
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
