//! Reading topics back: every record up to the end, what the pipeline consumed from outside,
//! replaying it into another deployment, and what a mismatch's orders went through.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use model::events::{OrderEvent, wire};
use model::program::Program;
use pipeline::ports::log::{Delivered, EventLog, LogConsumer, PartitionId, Record, Topics};

use crate::oracle::Inputs;
use crate::setup::unique;

/// Every record of a topic up to each partition's end, by a fresh consumer group.
pub async fn read_topic<L: EventLog>(log: &L, topic: &Arc<str>, partitions: u32) -> Vec<Delivered> {
    let mut remaining: BTreeMap<u32, u64> = BTreeMap::new();
    for partition in 0..partitions {
        let end = log.end_offset(&PartitionId { topic: topic.clone(), partition }).await.unwrap();
        if end > 0 {
            remaining.insert(partition, end);
        }
    }
    let mut consumer = log.consumer(&unique("reader-"), &[topic.clone()]).unwrap();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "could not read {topic} to its end");
        for record in consumer.poll(2000, Duration::from_millis(100)).await.unwrap().records {
            if remaining.get(&record.partition).is_some_and(|end| record.offset + 1 >= *end) {
                remaining.remove(&record.partition);
            }
            records.push(record);
        }
    }
    records.sort_by_key(|record| (record.partition, record.offset));
    records
}

/// What the pipeline consumed from outside itself, read back from the log.
pub async fn inputs<L: EventLog>(log: &L, topics: &Topics, partitions: u32) -> Inputs {
    let events = read_topic(log, &topics.events, partitions).await;
    let order_changes = read_topic(log, &topics.orders, partitions)
        .await
        .into_iter()
        .filter(|record| {
            matches!(
                wire::decode::<OrderEvent>(&record.payload),
                Ok(OrderEvent::Refund(_) | OrderEvent::Cancel(_) | OrderEvent::Decision(_))
            )
        })
        .collect();
    let program = read_topic(log, &topics.program, 1).await;
    Inputs { events, order_changes, program }
}

/// Append `inputs` to another deployment's topics, key by key, as the edge and API did.
pub async fn replay<L: EventLog>(log: &L, topics: &Topics, inputs: &Inputs) {
    let records = |records: &[Delivered], topic: &Arc<str>| -> Vec<Record> {
        records
            .iter()
            .map(|record| Record { topic: topic.clone(), key: record.key.clone(), payload: record.payload.clone() })
            .collect()
    };
    log.append(records(&inputs.program, &topics.program)).await.unwrap();
    for chunk in records(&inputs.events, &topics.events).chunks(500) {
        log.append(chunk.to_vec()).await.unwrap();
    }
    log.append(records(&inputs.order_changes, &topics.orders)).await.unwrap();
}

/// The program the inputs build.
pub fn program_of(inputs: &Inputs) -> Program {
    let mut program = Program::new();
    for record in &inputs.program {
        let record: model::program::ProgramRecord = wire::decode(&record.payload).unwrap();
        program.follow(record.change).unwrap();
    }
    program
}

/// Every record of `orders` and `ledger` about these orders, in log order per partition: what
/// a mismatch's orders went through.
pub async fn order_history<L: EventLog>(
    log: &L,
    topics: &Topics,
    partitions: u32,
    order_keys: &std::collections::BTreeSet<String>,
) -> String {
    let mut history = String::new();
    for record in read_topic(log, &topics.orders, partitions).await {
        if order_keys.contains(&record.key) {
            let event = wire::decode::<OrderEvent>(&record.payload)
                .map(|event| describe_order_event(&event))
                .unwrap_or_else(|error| format!("undecodable: {error}"));
            history.push_str(&format!("\norders {}/{}: {event}", record.partition, record.offset));
        }
    }
    for record in read_topic(log, &topics.ledger, partitions).await {
        let Ok(event) = wire::decode::<model::events::LedgerEvent>(&record.payload) else {
            continue;
        };
        let about = match &event {
            model::events::LedgerEvent::Order(order) => Some(order.order_key.to_string()),
            model::events::LedgerEvent::Withdraw { order_key, .. }
            | model::events::LedgerEvent::Refund { order_key, .. }
            | model::events::LedgerEvent::Cancel { order_key, .. } => Some(order_key.to_string()),
            model::events::LedgerEvent::Decision(decision) => Some(decision.order_key.to_string()),
            _ => None,
        };
        if about.is_some_and(|key| order_keys.contains(&key)) {
            let summary = match &event {
                model::events::LedgerEvent::Order(order) => {
                    format!("Order {} by {} at {:?}", order.conversion.id, order.member, order.conversion.event_time())
                }
                other => format!("{other:?}"),
            };
            history.push_str(&format!("\nledger {}/{}: {summary}", record.partition, record.offset));
        }
    }
    history
}

fn describe_order_event(event: &OrderEvent) -> String {
    match event {
        OrderEvent::Attributed(attributed) => format!(
            "Attributed {} to {} via {} at {:?}",
            attributed.conversion.id,
            attributed.member,
            attributed.via.as_str(),
            attributed.conversion.event_time()
        ),
        OrderEvent::Rejected(rejected) => {
            format!(
                "Rejected {} ({:?}) at {:?}",
                rejected.conversion.id,
                rejected.reason,
                rejected.conversion.event_time()
            )
        }
        other => format!("{other:?}"),
    }
}
