//! Kafka faults with rdkafka's MockCluster: while the broker is down postbacks get 503 with
//! Retry-After; when it is back they succeed again, and every postback that got 2xx is in the
//! topic exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use common::*;
use model::events::{TrackingEvent, wire};
use model::testkit::SECRET;
use pipeline::ports::log::Topics;
use rdkafka::mocking::MockCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_gives_503_and_loses_or_doubles_nothing_acknowledged() {
    let cluster = MockCluster::new(1).unwrap();
    let topics = Topics::with_prefix("fault.");
    for spec in topics.specs(PARTITIONS) {
        cluster.create_topic(&spec.name, spec.partitions as i32, 1).unwrap();
    }
    // The producer gives up on a record after 2 s, so the edge's answer (which waits for the
    // producer's own outcome) comes within 3 s.
    let mut kafka = KafkaConfig::new(cluster.bootstrap_servers());
    kafka.delivery_timeout = Duration::from_secs(2);
    let log = KafkaLog::connect(kafka).unwrap();
    let edge = TestEdge::start_on(log, topics, program(), |config| {
        config.postback_ack_timeout = Duration::from_secs(2);
    })
    .await;
    let click_id = location_param(&edge.get("/c?offer=summer&member=jane", &[]).await, "click_id").unwrap();
    let mut order = 0;
    let mut postback = async || {
        order += 1;
        let response =
            edge.get(&format!("/pb?click_id={click_id}&order_id=F-{order}&amount=1&token={SECRET}"), &[]).await;
        let event = (response.status == 200).then(|| response.json()["event_id"].as_str().unwrap().to_string());
        (response, event)
    };

    let mut acknowledged = Vec::new();
    for _ in 0..10 {
        let (response, event) = postback().await;
        assert_eq!(response.status, 200);
        acknowledged.extend(event);
    }

    cluster.broker_down(1).unwrap();
    let down_at = Instant::now();
    let mut refused = 0;
    while refused < 5 {
        assert!(down_at.elapsed() < Duration::from_secs(30), "postbacks are refused while the broker is down");
        let (response, event) = postback().await;
        match response.status {
            200 => acknowledged.extend(event),
            503 => {
                refused += 1;
                assert_eq!(response.header("retry-after"), Some("1"));
                assert!(
                    ["log_unavailable", "log_timeout"].contains(&response.reason().as_str()),
                    "{}",
                    response.reason()
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }

    cluster.broker_up(1).unwrap();
    let up_at = Instant::now();
    let mut accepted_again = 0;
    while accepted_again < 10 {
        assert!(up_at.elapsed() < Duration::from_secs(60), "postbacks succeed again once the broker is back");
        let (response, event) = postback().await;
        if response.status == 200 {
            accepted_again += 1;
            acknowledged.extend(event);
        } else {
            assert_eq!(response.status, 503);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let records = edge.records(&edge.topics.events).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        if let TrackingEvent::Conversion(conversion) = wire::decode(&record.payload).unwrap() {
            *seen.entry(conversion.id.to_string()).or_default() += 1;
        }
    }
    for event in &acknowledged {
        assert_eq!(seen.get(event), Some(&1), "acknowledged event {event} is in the topic exactly once");
    }
    assert!(acknowledged.len() >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_timeout_of_zero_waits_for_kafkas_own_delivery_outcome() {
    let cluster = MockCluster::new(1).unwrap();
    let topics = Topics::with_prefix("zero.");
    for spec in topics.specs(PARTITIONS) {
        cluster.create_topic(&spec.name, spec.partitions as i32, 1).unwrap();
    }
    let log = KafkaLog::connect(KafkaConfig::new(cluster.bootstrap_servers())).unwrap();
    let edge = TestEdge::start_on(log, topics, program(), |config| config.postback_ack_timeout = Duration::ZERO).await;
    let mut accepted = Vec::new();
    for order in 0..5 {
        let response = edge.get(&format!("/pb?code=JANE20&order_id=Z-{order}&amount=1&token={SECRET}"), &[]).await;
        assert_eq!(response.status, 200, "{}", response.body);
        accepted.push(response.json()["event_id"].as_str().unwrap().to_string());
    }
    let written: Vec<String> = edge
        .records(&edge.topics.events)
        .await
        .iter()
        .map(|record| conversion_event(&record.payload).id.to_string())
        .collect();
    let mut sorted = written.clone();
    sorted.sort();
    accepted.sort();
    assert_eq!(sorted, accepted, "each acknowledged postback is in the topic exactly once");
}
