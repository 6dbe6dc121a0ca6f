//! One behaviour behind one trait: the same checks run against the embedded SQLite log and
//! against Kafka (Tansu, started by deploy/test.sh).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use clickledger_adapters::log::bundle::KEY_V1;
use clickledger_adapters::log::kafka::{KafkaConfig, KafkaLog};
use clickledger_adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use clickledger_adapters::services;
use pipeline::ports::log::{EventLog, LogConsumer, LogError, PartitionId, Record, TopicSpec, partition_for};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn sqlite() -> (SqliteLog, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteLog::open(SqliteLogConfig::new(dir.path().join("log.db"))).unwrap(), dir)
}

fn kafka() -> KafkaLog {
    KafkaLog::connect(KafkaConfig::new(brokers())).unwrap()
}

fn brokers() -> String {
    services::kafka_brokers().expect("Kafka is required")
}

/// A Kafka log that writes `topic` in bundles.
fn kafka_bundling(topic: &Arc<str>) -> KafkaLog {
    let mut config = KafkaConfig::new(brokers());
    config.bundled = vec![topic.clone()];
    KafkaLog::connect(config).unwrap()
}

fn records(topic: &Arc<str>, count: usize) -> Vec<Record> {
    (0..count)
        .map(|n| Record {
            topic: topic.clone(),
            key: format!("visitor-{}", n % 7),
            payload: format!("event-{n}").into_bytes(),
        })
        .collect()
}

/// Read until `count` records arrived (or a minute passed), committing as it goes.
async fn drain<C: LogConsumer>(consumer: &mut C, count: usize) -> Vec<(PartitionId, u64, String, String)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < count && tokio::time::Instant::now() < deadline {
        let polled = consumer.poll(500, Duration::from_millis(200)).await.unwrap();
        let mut commits: BTreeMap<PartitionId, u64> = BTreeMap::new();
        for record in polled.records {
            commits.insert(record.partition_id(), record.offset + 1);
            seen.push((record.partition_id(), record.offset, record.key, String::from_utf8(record.payload).unwrap()));
        }
        if !commits.is_empty() {
            consumer.commit(&commits.into_iter().collect::<Vec<_>>()).await.unwrap();
        }
    }
    seen
}

/// `bundled`: the log writes the topic's records in bundles (a message holds several).
async fn appended_records_reach_a_group_once_in_key_order<L: EventLog>(log: L, topic: Arc<str>, bundled: bool) {
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 3, compacted: false }]).await.unwrap();
    let sent = records(&topic, 60);
    // Appends of one request are acknowledged together; requests in parallel share commits.
    let appends: Vec<_> = sent.chunks(6).map(|chunk| log.append(chunk.to_vec())).collect();
    for append in appends {
        append.await.unwrap();
    }

    let mut consumer = log.consumer(&unique("group"), &[topic.clone()]).unwrap();
    let seen = drain(&mut consumer, sent.len()).await;
    assert_eq!(seen.len(), 60, "every record once");
    let payloads: BTreeSet<&str> = seen.iter().map(|(_, _, _, payload)| payload.as_str()).collect();
    assert_eq!(payloads.len(), 60);
    for (partition, _, key, _) in &seen {
        assert_eq!(partition.partition, partition_for(key, 3), "{key} is in its hash partition");
    }
    // Within a key, records keep their append order; offsets rise within a partition (Kafka
    // allows gaps, and the embedded log numbers offsets per topic), and the end offset is the
    // one after the partition's last record.
    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (partition, offset, key, payload) in &seen {
        by_partition.entry(partition.partition).or_default().push(*offset);
        let n: usize = payload.trim_start_matches("event-").parse().unwrap();
        assert_eq!(key, &format!("visitor-{}", n % 7));
    }
    for (partition, offsets) in &by_partition {
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "partition {partition}: {offsets:?}");
        let id = PartitionId { topic: topic.clone(), partition: *partition };
        let end = log.end_offset(&id).await.unwrap();
        assert_eq!(end, offsets.last().unwrap() + 1);
        // The consumer lag: every message from the first record, none from the end; a
        // message per record unless the topic is bundled.
        let from_start = log.messages_behind(&id, offsets[0]).await.unwrap();
        if bundled {
            assert!(
                (1..=offsets.len() as u64).contains(&from_start),
                "{from_start} bundles of {} records",
                offsets.len()
            );
        } else {
            assert_eq!(from_start, offsets.len() as u64);
            assert_eq!(log.messages_behind(&id, offsets[offsets.len() - 2]).await.unwrap(), 2);
        }
        assert_eq!(log.messages_behind(&id, end).await.unwrap(), 0);
    }
    for key in 0..7 {
        let order: Vec<usize> = seen
            .iter()
            .filter(|(_, _, seen_key, _)| seen_key == &format!("visitor-{key}"))
            .map(|(_, _, _, payload)| payload.trim_start_matches("event-").parse().unwrap())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "visitor-{key} keeps its order");
    }
}

async fn a_group_resumes_after_its_committed_offsets<L: EventLog>(log: L, topic: Arc<str>) {
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 2, compacted: false }]).await.unwrap();
    log.append(records(&topic, 10)).await.unwrap();
    let group = unique("group");
    {
        let mut consumer = log.consumer(&group, &[topic.clone()]).unwrap();
        assert_eq!(drain(&mut consumer, 10).await.len(), 10);
    }
    let more: Vec<Record> = (10..14)
        .map(|n| Record {
            topic: topic.clone(),
            key: format!("visitor-{n}"),
            payload: format!("event-{n}").into_bytes(),
        })
        .collect();
    log.append(more).await.unwrap();
    let mut consumer = log.consumer(&group, &[topic.clone()]).unwrap();
    let seen = drain(&mut consumer, 4).await;
    let payloads: BTreeSet<String> = seen.into_iter().map(|(_, _, _, payload)| payload).collect();
    let expected: BTreeSet<String> = (10..14).map(|n| format!("event-{n}")).collect();
    assert_eq!(payloads, expected, "only what was not committed");
}

async fn appending_to_an_unknown_topic_is_fatal<L: EventLog>(log: L) {
    let error = log
        .append(vec![Record { topic: Arc::from(unique("missing")), key: "k".into(), payload: b"x".to_vec() }])
        .await
        .unwrap_err();
    assert!(matches!(error, LogError::Fatal(_) | LogError::Unavailable(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_reach_a_group_once_in_key_order() {
    let (log, _dir) = sqlite();
    appended_records_reach_a_group_once_in_key_order(log, Arc::from(unique("contract")), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_group_resumes_after_committed_offsets() {
    let (log, _dir) = sqlite();
    a_group_resumes_after_its_committed_offsets(log, Arc::from(unique("resume"))).await;
}

/// The messages the broker holds in `topic`'s partition 0.
fn broker_messages(topic: &str) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
    let (low, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    high - low
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unknown_topic_is_refused() {
    let (log, _dir) = sqlite();
    appending_to_an_unknown_topic_is_fatal(log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_members_of_a_group_share_partitions_and_take_over_when_one_leaves() {
    let (log, _dir) = sqlite();
    let topic: Arc<str> = Arc::from("shared");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 4, compacted: false }]).await.unwrap();
    let mut first = log.consumer("workers", &[topic.clone()]).unwrap();
    let mut second = log.consumer("workers", &[topic.clone()]).unwrap();
    let first_share = first.poll(10, Duration::from_millis(50)).await.unwrap().assigned;
    let second_share = second.poll(10, Duration::from_millis(50)).await.unwrap().assigned;
    assert_eq!((first_share.len(), second_share.len()), (2, 2));
    assert!(first_share.iter().all(|partition| !second_share.contains(partition)));
    drop(second);
    let taken_over = first.poll(10, Duration::from_millis(50)).await.unwrap();
    assert_eq!(taken_over.assigned.len(), 2, "the partitions of the member that left");
    assert!(taken_over.revoked.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_records_survive_a_reopen_and_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let topic: Arc<str> = Arc::from("durable");
    {
        let log = SqliteLog::open(SqliteLogConfig::new(&path)).unwrap();
        log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 2, compacted: false }]).await.unwrap();
        let before = log.transactions();
        let appends: Vec<_> = (0..200)
            .map(|n| {
                let log = log.clone();
                let record = Record { topic: topic.clone(), key: format!("k{n}"), payload: vec![1; 100] };
                tokio::spawn(async move { log.append(vec![record]).await })
            })
            .collect();
        for append in appends {
            append.await.unwrap().unwrap();
        }
        let commits = log.transactions() - before;
        assert!(commits < 200, "200 concurrent appends shared {commits} commits");
    }
    let reopened = SqliteLog::open(SqliteLogConfig::new(&path)).unwrap();
    let mut consumer = reopened.consumer("after-restart", &[topic.clone()]).unwrap();
    let before_restart = drain(&mut consumer, 200).await;
    assert_eq!(before_restart.len(), 200);
    for partition in 0..2 {
        let last =
            before_restart.iter().filter(|(id, ..)| id.partition == partition).map(|(_, offset, ..)| *offset).max();
        let end = reopened.end_offset(&PartitionId { topic: topic.clone(), partition }).await.unwrap();
        assert_eq!(Some(end), last.map(|last| last + 1), "partition ends are recovered after an unclean close");
    }
    // Offsets continue after a reopen.
    reopened.append(vec![Record { topic: topic.clone(), key: "k1".into(), payload: vec![2] }]).await.unwrap();
    let partition = PartitionId { topic: topic.clone(), partition: partition_for("k1", 2) };
    let seen = drain(&mut consumer, 1).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1 + 1, reopened.end_offset(&partition).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_full_queue_is_an_explicit_overload() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteLogConfig::new(dir.path().join("log.db"));
    config.queue_capacity = 2;
    let log = SqliteLog::open(config).unwrap();
    let topic: Arc<str> = Arc::from("tiny");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
    let payload = vec![7u8; 64 * 1024];
    let appends: Vec<_> = (0..500)
        .map(|n| log.append(vec![Record { topic: topic.clone(), key: format!("k{n}"), payload: payload.clone() }]))
        .collect();
    let mut overloaded = 0;
    let mut written = 0;
    for append in appends {
        match append.await {
            Ok(()) => written += 1,
            Err(LogError::Overloaded(_)) => overloaded += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(overloaded > 0, "a queue of 2 cannot take 500 appends at once");
    assert_eq!(written + overloaded, 500);
    assert_eq!(log.queue_depth(), 0);
    let mut consumer = log.consumer("count", &[topic.clone()]).unwrap();
    assert_eq!(drain(&mut consumer, written).await.len(), written, "exactly the acknowledged appends are in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_failed_write_is_never_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let log = SqliteLog::open(SqliteLogConfig::new(&path)).unwrap();
    let topic: Arc<str> = Arc::from("guarded");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
    // Make every insert of the key "poison" fail inside the writer's transaction.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON records_1 WHEN NEW.key = 'poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
    let record = |key: &str| Record { topic: topic.clone(), key: key.into(), payload: b"x".to_vec() };
    let failed = log.append(vec![record("fine-before"), record("poison")]).await;
    assert!(matches!(failed, Err(LogError::Unavailable(_))), "{failed:?}");
    log.append(vec![record("fine-after")]).await.unwrap();
    let mut consumer = log.consumer("check", &[topic.clone()]).unwrap();
    let seen = drain(&mut consumer, 1).await;
    let keys: Vec<&str> = seen.iter().map(|(_, _, key, _)| key.as_str()).collect();
    assert_eq!(keys, ["fine-after"], "nothing of the failed transaction is in the log");
    assert_eq!(seen[0].1, 0, "the failed transaction used no offsets");
    assert_eq!(log.end_offset(&PartitionId { topic: topic.clone(), partition: 0 }).await.unwrap(), 1);
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_records_reach_a_group_once_in_key_order() {
        appended_records_reach_a_group_once_in_key_order(kafka(), Arc::from(unique("contract")), false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_bundled_records_reach_a_group_once_in_key_order() {
        let topic = Arc::from(unique("bundled"));
        appended_records_reach_a_group_once_in_key_order(kafka_bundling(&topic), topic, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_group_resumes_after_committed_offsets() {
        a_group_resumes_after_its_committed_offsets(kafka(), Arc::from(unique("resume"))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_bundled_group_resumes_after_committed_offsets() {
        let topic = Arc::from(unique("bundled-resume"));
        a_group_resumes_after_its_committed_offsets(kafka_bundling(&topic), topic).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_a_bundle_is_one_message_handed_out_a_record_at_a_time() {
        let topic: Arc<str> = Arc::from(unique("bundle"));
        let log = kafka_bundling(&topic);
        log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
        let record = |n: usize| Record {
            topic: topic.clone(),
            key: format!("order-{n}"),
            payload: format!("event-{n}").into_bytes(),
        };
        log.append((0..10).map(record).collect()).await.unwrap();
        assert_eq!(broker_messages(&topic), 1, "ten records of one append and partition: one message");
        log.append(vec![record(10)]).await.unwrap();
        assert_eq!(broker_messages(&topic), 2);

        // A poll takes what it may; the rest of the bundle comes with the next poll.
        let group = unique("group");
        let mut consumer = log.consumer(&group, &[topic.clone()]).unwrap();
        let mut first = Vec::new();
        while first.is_empty() {
            first = consumer.poll(4, Duration::from_millis(500)).await.unwrap().records;
        }
        let keys = |records: &[pipeline::ports::log::Delivered]| {
            records.iter().map(|record| record.key.clone()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&first), ["order-0", "order-1", "order-2", "order-3"]);
        assert_eq!(first[3].payload, b"event-3");
        let rest = drain(&mut consumer, 7).await;
        let rest_keys: Vec<&str> = rest.iter().map(|(_, _, key, _)| key.as_str()).collect();
        assert_eq!(rest_keys, ["order-4", "order-5", "order-6", "order-7", "order-8", "order-9", "order-10"]);
        let offsets: Vec<u64> =
            first.iter().map(|record| record.offset).chain(rest.iter().map(|(_, offset, ..)| *offset)).collect();
        assert!(offsets.windows(2).all(|pair| pair[0] < pair[1]), "{offsets:?}");
        let partition = PartitionId { topic: topic.clone(), partition: 0 };
        assert_eq!(log.end_offset(&partition).await.unwrap(), offsets[10] + 1, "the end is after the last record");
        // The lag counts messages: two bundles from the start, both still from the middle of
        // the first (it is read again after a restart), one from the second.
        assert_eq!(log.messages_behind(&partition, offsets[0]).await.unwrap(), 2);
        assert_eq!(log.messages_behind(&partition, offsets[4]).await.unwrap(), 2);
        assert_eq!(log.messages_behind(&partition, offsets[10]).await.unwrap(), 1);
        assert_eq!(log.messages_behind(&partition, offsets[10] + 1).await.unwrap(), 0);
        drop(consumer);

        // Committed halfway through the bundle: a new member reads the bundle again from its
        // start (at-least-once), then what follows.
        let halfway = unique("group");
        let mut reader = log.consumer(&halfway, &[topic.clone()]).unwrap();
        let mut read = Vec::new();
        while read.is_empty() {
            read = reader.poll(4, Duration::from_millis(500)).await.unwrap().records;
        }
        reader.commit(&[(partition.clone(), read[3].offset + 1)]).await.unwrap();
        drop(reader);
        let mut resumed = log.consumer(&halfway, &[topic.clone()]).unwrap();
        let seen = drain(&mut resumed, 11).await;
        assert_eq!(seen.first().map(|(_, _, key, _)| key.as_str()), Some("order-0"), "the bundle again, whole");
        assert_eq!(seen.len(), 11);
    }

    /// A topic written before bundles were Zstandard (format 1, LZ4) stays readable: its bundle
    /// comes out as its records, between plain records and bundles of the current format.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_a_first_version_bundle_is_still_read() {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let topic: Arc<str> = Arc::from(unique("bundle-v1"));
        let log = kafka_bundling(&topic);
        log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
        let framed: Vec<u8> = [("order-1", "event-1"), ("order-2", "event-2")]
            .iter()
            .flat_map(|(key, payload)| [key.as_bytes(), payload.as_bytes()])
            .flat_map(|part| [(part.len() as u32).to_le_bytes().to_vec(), part.to_vec()])
            .flatten()
            .collect();
        let v1 = lz4_flex::block::compress_prepend_size(&framed);
        let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers()).create().unwrap();
        producer.send(BaseRecord::to(&topic).partition(0).key("order-0").payload("event-0")).unwrap();
        producer.send(BaseRecord::to(&topic).partition(0).key(KEY_V1).payload(&v1)).unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
        log.append(vec![Record { topic: topic.clone(), key: "order-3".into(), payload: b"event-3".to_vec() }])
            .await
            .unwrap();
        assert_eq!(broker_messages(&topic), 3);

        let mut consumer = log.consumer(&unique("group"), &[topic.clone()]).unwrap();
        let seen = drain(&mut consumer, 4).await;
        let read: Vec<(&str, &str)> =
            seen.iter().map(|(_, _, key, payload)| (key.as_str(), payload.as_str())).collect();
        assert_eq!(
            read,
            [("order-0", "event-0"), ("order-1", "event-1"), ("order-2", "event-2"), ("order-3", "event-3")]
        );
    }
}
