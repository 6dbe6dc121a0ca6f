//! What the stages are measured against: plain consumers and forwarders, through the log port
//! and through bare rdkafka; and the `fetch` mode comparing consumer settings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pipeline::ports::log::{EventLog, Topics};

use crate::{Args, events};

pub(crate) async fn plain_rdkafka_forward(brokers: &str, from: &str, to: &str, total: usize) -> anyhow::Result<u64> {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::message::Message;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let (brokers, from, to) = (brokers.to_string(), from.to_string(), to.to_string());
    Ok(tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("forward-{}", ulid::Ulid::new()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()?;
        // The settings of the stages' producer (adapters/src/log/kafka.rs).
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "1")
            .create()?;
        consumer.subscribe(&[&from])?;
        let mut read = 0u64;
        while read < total as u64 {
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                producer.poll(Duration::ZERO);
                continue;
            };
            let message = message?;
            let key = message.key().unwrap_or_default().to_vec();
            let payload = message.payload().unwrap_or_default().to_vec();
            loop {
                match producer.send(BaseRecord::to(&to).key(&key).payload(&payload)) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((error, _)) => return Err(error.into()),
                }
            }
            producer.poll(Duration::ZERO);
            read += 1;
        }
        producer.flush(Duration::from_secs(120))?;
        Ok(read)
    })
    .await??)
}

pub(crate) async fn plain_rdkafka_read(brokers: &str, topic: &str, total: usize) -> anyhow::Result<u64> {
    Ok(plain_rdkafka_read_with(brokers, topic, total, &[]).await?.0)
}

/// Fetch requests a consumer sent, from librdkafka's statistics.
#[derive(Default)]
pub(crate) struct FetchCount(AtomicU64);

impl rdkafka::ClientContext for FetchCount {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let fetches = statistics.brokers.values().filter_map(|broker| broker.req.get("Fetch")).sum::<i64>();
        self.0.store(fetches as u64, Ordering::Relaxed);
    }
}

impl rdkafka::consumer::ConsumerContext for FetchCount {}

/// A plain consumer with extra settings; returns the records read and the fetch requests sent.
pub(crate) async fn plain_rdkafka_read_with(
    brokers: &str,
    topic: &str,
    total: usize,
    settings: &[(String, String)],
) -> anyhow::Result<(u64, u64)> {
    use rdkafka::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    let brokers = brokers.to_string();
    let topic = topic.to_string();
    let settings = settings.to_vec();
    Ok(tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, u64)> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &brokers)
            .set("group.id", format!("baseline-{}", ulid::Ulid::new()))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("statistics.interval.ms", "200");
        for (key, value) in &settings {
            config.set(key, value);
        }
        let consumer: BaseConsumer<FetchCount> = config.create_with_context(FetchCount::default())?;
        consumer.subscribe(&[&topic])?;
        let mut read = 0u64;
        let mut bytes = 0usize;
        while read < total as u64 {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                bytes += message?.payload().map_or(0, <[u8]>::len);
                read += 1;
            }
        }
        std::hint::black_box(bytes);
        // One more statistics report, for the last fetches.
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            let _ = consumer.poll(Duration::from_millis(50));
        }
        Ok((read, consumer.context().0.load(Ordering::Relaxed)))
    })
    .await??)
}

/// librdkafka settings written `key=value,key=value`.
pub(crate) fn settings(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter(|setting| !setting.is_empty())
        .map(|setting| {
            let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// Pre-fill `events`, then time a plain consumer with each of the `--consumer` settings.
pub(crate) async fn fetch<L: EventLog>(args: &Args, log: L, topics: Topics) -> anyhow::Result<()> {
    let Some(brokers) = &args.kafka_brokers else {
        anyhow::bail!("`fetch` measures Kafka consumers: give --kafka-brokers")
    };
    let total = args.events;
    let started = Instant::now();
    for chunk in events(total, &topics).chunks(20_000) {
        log.append(chunk.to_vec()).await?;
    }
    log.flush(Duration::from_secs(60)).await?;
    println!("pre-filled {total} events in {:.1?}", started.elapsed());
    let consumers = if args.consumers.is_empty() { vec![String::new()] } else { args.consumers.clone() };
    for round in 1..=args.rounds {
        for consumer in &consumers {
            let started = Instant::now();
            let (read, fetches) = plain_rdkafka_read_with(brokers, &topics.events, total, &settings(consumer)).await?;
            let elapsed = started.elapsed();
            let shown = if consumer.is_empty() { "defaults" } else { consumer.as_str() };
            println!("round {round}, {shown}: {read} events in {elapsed:.2?}, {fetches} fetch requests");
        }
    }
    Ok(())
}
