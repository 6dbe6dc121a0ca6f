//! The Kafka baseline: a plain rdkafka producer with the edge's producer settings (acks=all,
//! idempotence, the same linger), sending records of the edge's size as fast as the broker
//! acknowledges them with `--in-flight` outstanding, for `--seconds`. Prints records/s.

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    brokers: String,
    #[arg(long, default_value = "bench.plain")]
    topic: String,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    #[arg(long, default_value_t = 600)]
    record_bytes: usize,
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 1)]
    linger_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &args.brokers).create()?;
    let topic = NewTopic::new(&args.topic, args.partitions, TopicReplication::Fixed(1));
    let _ = admin.create_topics([&topic], &AdminOptions::new()).await?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", args.linger_ms.to_string())
        .create()?;
    let payload = vec![b'x'; args.record_bytes];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut workers = Vec::new();
    for worker in 0..args.in_flight {
        let producer = producer.clone();
        let payload = payload.clone();
        let topic = args.topic.clone();
        workers.push(tokio::spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let key = format!("visitor-{worker}-{sent}");
                let record = FutureRecord::to(&topic).key(&key).payload(&payload);
                if matches!(producer.send(record, Duration::from_secs(10)).await, Ok(_)) {
                    sent += 1;
                }
            }
            sent
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{total} records in {elapsed:.2}s: {:.0} records/s", total as f64 / elapsed);
    Ok(())
}
