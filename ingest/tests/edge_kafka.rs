//! The edge on Kafka (Tansu, started by deploy/test.sh): every event lands on its topic, in
//! the partition of its key, and decodes to what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::services;
use common::*;
use model::events::{OrderEvent, TrackingEvent, wire};
use model::testkit::SECRET;
use pipeline::ports::log::{EventLog, Topics, partition_for};
use rust_decimal_macros::dec;

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn events_land_on_their_topics_with_their_keys() {
        let log = KafkaLog::connect(KafkaConfig::new(services::kafka_brokers().expect("Kafka is required"))).unwrap();
        let topics = Topics::with_prefix(&format!("edge-{}.", model::EventId::new().to_string().to_lowercase()));
        log.create_topics(&topics.specs(PARTITIONS)).await.unwrap();
        let edge = TestEdge::start_on(log, topics, program(), |_| {}).await;

        let click = edge.get("/c?offer=summer&member=kid", &[]).await;
        assert_eq!(click.status, 302);
        let visitor = visitor_of(&click);
        let click_id = location_param(&click, "click_id").unwrap();
        let pixel =
            edge.get("/px?offer=summer&order_id=P-1&amount=10.00", &[("Cookie", &format!("clk_v={visitor}"))]).await;
        assert_eq!(pixel.header("x-clickledger-rejected"), None);
        let postback =
            edge.get(&format!("/pb?click_id={click_id}&order_id=K-1&amount=25.50&token={SECRET}"), &[]).await;
        assert_eq!(postback.status, 200, "{}", postback.body);
        let refund = edge
            .post(
                "/pb/refund",
                "application/x-www-form-urlencoded",
                format!("order_id=K-1&amount=5&refund_id=rf-1&token={SECRET}").as_bytes(),
                &[],
            )
            .await;
        assert_eq!(refund.status, 200);

        let events = edge.records(&edge.topics.events).await;
        assert_eq!(events.len(), 3, "click, pixel, postback");
        for record in &events {
            assert_eq!(record.key, visitor, "all three follow the visitor");
            assert_eq!(
                record.partition,
                partition_for(&visitor, PARTITIONS),
                "librdkafka and the embedded log agree on partitions"
            );
        }
        let decoded: Vec<TrackingEvent> = events.iter().map(|record| wire::decode(&record.payload).unwrap()).collect();
        assert!(
            matches!(&decoded[0], TrackingEvent::Click(click) if click.member.as_str() == "kid" && click.click_id == click_id)
        );
        assert!(matches!(&decoded[1], TrackingEvent::Conversion(pixel) if pixel.amount == Some(dec!(10.00))));
        assert!(
            matches!(&decoded[2], TrackingEvent::Conversion(postback) if postback.amount == Some(dec!(25.50)) && postback.click_id.as_deref() == Some(click_id.as_str()))
        );

        let orders = edge.records(&edge.topics.orders).await;
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].key, "acme:K-1");
        assert!(
            matches!(wire::decode::<OrderEvent>(&orders[0].payload).unwrap(), OrderEvent::Refund(refund) if refund.amount == Some(dec!(5)))
        );
    }
}
