//! A liveness guard for consumer groups (docs/ARCHITECTURE.md, "A stalled group
//! rejoins").

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::consumer::{ConsumerEvents, KafkaConsumer};

/// How often a member looks at the partitions it does not hold.
const STALLED_GROUP: Duration = Duration::from_secs(20);

/// A liveness guard for consumer groups. Every [`STALLED_GROUP`] a member looks at the
/// partitions it does not hold: a partition with unread records whose committed offset has not
/// moved since the last look is read by nobody. On a healthy group that does not happen — the
/// member holding it reads and commits. It happened with the Tansu broker of the tests after a
/// member was killed during a rebalance (docs/ARCHITECTURE.md, "A stalled group rejoins"): the
/// coordinator formed generations that gave some partitions to nobody, or to the dead member,
/// and never formed another. Leaving and joining again starts a new generation.
#[derive(Debug)]
pub(super) struct Watchdog {
    last_look: tokio::time::Instant,
    /// Unheld partitions with unread records, and their committed offsets, at the last look.
    waiting: Option<Vec<((Arc<str>, i32), i64)>>,
}

impl Watchdog {
    pub(super) fn new() -> Self {
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

impl KafkaConsumer {
    /// Every [`STALLED_GROUP`]: rejoin if a partition this member does not hold has records
    /// to read and its committed offset did not move since the last look.
    pub(super) async fn watch(&mut self) {
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
}
