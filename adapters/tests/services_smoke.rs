//! The real services work from Rust: Kafka (Tansu) through rdkafka with a consumer group,
//! and ClickHouse through the `clickhouse` crate. Both fail loudly when the service is
//! missing: run them with `deploy/test.sh`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use clickhouse::Row;
use clickledger_adapters::services;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::{Deserialize, Serialize};

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct SmokeRow {
    id: u64,
    member: String,
    cents: i64,
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn kafka_creates_a_topic_and_delivers_through_a_consumer_group() {
        let brokers = services::kafka_brokers().expect("Kafka is required");
        let topic = unique("smoke");
        let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
        let created = admin
            .create_topics([&NewTopic::new(&topic, 2, TopicReplication::Fixed(1))], &AdminOptions::new())
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{created:?}");

        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .create()
            .unwrap();
        let mut sent: BTreeMap<String, (String, i32)> = BTreeMap::new();
        for n in 0..20 {
            let key = format!("visitor-{}", n % 4);
            let payload = format!("event-{n}");
            let delivery = producer
                .send(FutureRecord::to(&topic).key(&key).payload(&payload), Duration::from_secs(10))
                .await
                .expect("the broker acknowledges every record");
            sent.insert(payload, (key, delivery.partition));
        }
        let partitions_of = |key: &str| {
            sent.values().filter(|(sent_key, _)| sent_key == key).map(|(_, partition)| *partition).collect::<Vec<_>>()
        };
        for n in 0..4 {
            let partitions = partitions_of(&format!("visitor-{n}"));
            assert!(partitions.windows(2).all(|pair| pair[0] == pair[1]), "one key, one partition: {partitions:?}");
        }

        let group = unique("smoke_group");
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let mut received: BTreeMap<String, (String, i32)> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while received.len() < sent.len() {
            let message = tokio::time::timeout_at(deadline, consumer.recv())
                .await
                .unwrap_or_else(|_| panic!("received {} of {} records in 60s", received.len(), sent.len()))
                .unwrap();
            let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            received.insert(payload, (key, message.partition()));
            consumer.commit_message(&message, CommitMode::Sync).unwrap();
        }
        assert_eq!(received, sent);

        let committed = consumer.committed(Duration::from_secs(10)).unwrap();
        for partition in 0..2 {
            let records = sent.values().filter(|(_, sent_partition)| *sent_partition == partition).count() as i64;
            let offset = committed.find_partition(&topic, partition).and_then(|element| element.offset().to_raw());
            let expected = if records == 0 { None } else { Some(records) };
            assert_eq!(
                offset.filter(|offset| *offset >= 0),
                expected,
                "partition {partition}: the committed offset follows every record"
            );
        }
    }

    #[tokio::test]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn clickhouse_creates_a_table_inserts_and_selects() {
        let url = services::clickhouse_url().expect("ClickHouse is required");
        let database = unique("smoke");
        let client = clickhouse::Client::default().with_url(url).with_validation(false);
        client.query(&format!("CREATE DATABASE {database}")).execute().await.unwrap();
        let client = client.with_database(&database);
        client
            .query("CREATE TABLE rows (id UInt64, member String, cents Int64) ENGINE = MergeTree ORDER BY id")
            .execute()
            .await
            .unwrap();

        let rows: Vec<SmokeRow> =
            (0..1000).map(|id| SmokeRow { id, member: format!("member-{}", id % 7), cents: id as i64 * 25 }).collect();
        let mut insert = client.insert::<SmokeRow>("rows").await.unwrap();
        for row in &rows {
            insert.write(row).await.unwrap();
        }
        insert.end().await.unwrap();

        let back = client.query("SELECT ?fields FROM rows ORDER BY id").fetch_all::<SmokeRow>().await.unwrap();
        assert_eq!(back, rows);
        let total = client
            .query("SELECT sum(cents) FROM rows WHERE member = ?")
            .bind("member-3")
            .fetch_one::<i64>()
            .await
            .unwrap();
        let expected: i64 = rows.iter().filter(|row| row.member == "member-3").map(|row| row.cents).sum();
        assert_eq!(total, expected);
        client.query(&format!("DROP DATABASE {database}")).execute().await.unwrap();
    }
}
