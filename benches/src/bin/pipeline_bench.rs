//! Throughput and lag of the pipeline's workers (docs/PERFORMANCE.md, "Attributor and
//! settler").
//!
//! `stages`: pre-fill the `events` topic with N tracking events (per visitor: four clicks on
//! members of offer `store`, then a sale pixel), then measure, one after the other,
//! - the baseline: a plain consumer reading the same topic and doing nothing (the log adapter's
//!   own consumer for the embedded log; a bare rdkafka `BaseConsumer` for Kafka),
//! - the attributor alone, from the first poll until every event's outputs are durable, and
//!   the heap it holds per tracked visitor; then the baseline again,
//! - the log port's consumer reading the settler's input topics,
//! - the settler alone, over what the attributor wrote, until every click and order has its
//!   rows in the store,
//! - last, a plain consumer writing every record it reads to another topic.
//!
//! `lag`: the edge, the attributor and the settler in one process; `oha` sends clicks and code
//! postbacks at a fixed rate over loopback; the runner's `clickledger_stage_lag_seconds`
//! (from the edge receiving an event to its rows being durable in the store) gives p50/p99.
//!
//! Everything runs on 127.0.0.1 and stops by itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use adapters::store::clickhouse::ClickHouseStore;
use adapters::store::sqlite::SqliteStore;
use clap::{Parser, ValueEnum};
use clickledger_benches::fixtures::{PIPELINE_MEMBERS, pipeline_member, pipeline_program};
use model::clickid::ClickKeyRing;
use model::events::{ConversionSource, TrackingEvent, wire};
use model::testkit::{advertiser_id, click, sale, visitor};
use model::time::Timestamp;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogConsumer, PartitionId, Record, Topics};
use pipeline::ports::store::Store;
use pipeline::{Shutdown, wall_clock};
use rust_decimal::Decimal;

/// mimalloc, counting the bytes the process holds.
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

fn live() -> i64 {
    ALLOCATOR.allocated() as i64
}

/// CPU time this process has used and time the machine's CPUs were taken by the host
/// (`steal`), in seconds, from `/proc` (Linux; zero elsewhere). A run's CPU time is the work
/// it did, which varies less than its duration on a shared machine.
#[derive(Clone, Copy, Debug, Default)]
struct CpuTimes {
    process: f64,
    steal: f64,
}

fn cpu_times() -> CpuTimes {
    const TICKS: f64 = 100.0;
    let process = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces): utime and stime are the
            // 12th and 13th of them.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .unwrap_or(0.0);
    let steal = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| stat.lines().next()?.split_whitespace().nth(8)?.parse::<f64>().ok())
        .unwrap_or(0.0);
    CpuTimes { process: process / TICKS, steal: steal / TICKS }
}

fn report_cpu(what: &str, (before, after): (CpuTimes, CpuTimes), events: u64, elapsed: Duration) {
    let used = after.process - before.process;
    println!(
        "  {what} CPU: {used:.1} s ({:.1} µs per event, {:.2} cores busy); host steal {:.1} s",
        used * 1e6 / events as f64,
        used / elapsed.as_secs_f64(),
        after.steal - before.steal
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Stages,
    Lag,
    /// Kafka only: pre-fill `events`, then time plain consumers with each `--consumer`
    /// setting, `--rounds` times in turn.
    Fetch,
}

#[derive(Debug, Parser)]
struct Args {
    #[arg(value_enum)]
    mode: Mode,
    /// Events pre-filled (`stages`).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Events per second offered (`lag`): 90% clicks, 10% code postbacks.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Seconds of traffic (`lag`).
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Instances of the settler's order and ledger stages (default: one per core, as the
    /// binaries run them).
    #[arg(long, default_value_t = settler::instances_per_process())]
    instances: usize,
    /// Kafka bootstrap servers; without them the embedded log.
    #[arg(long, env = "CLICKLEDGER_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// ClickHouse URL; without it the embedded store.
    #[arg(long, env = "CLICKLEDGER_CLICKHOUSE_URL")]
    clickhouse_url: Option<String>,
    /// `fetch`: extra consumer settings to compare, `key=value,key=value` (empty: defaults).
    #[arg(long = "consumer")]
    consumers: Vec<String>,
    /// `fetch`: rounds over the settings.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Where the embedded files go (emptied first).
    #[arg(long, default_value = "bench-data/pipeline")]
    dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::memory::small_pages();
    let args = Args::parse();
    metrics::set_global_recorder(&*RECORDED).map_err(|_| anyhow::anyhow!("a metrics recorder is already set"))?;
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let topics = Topics::with_prefix(&format!("bench-{run}."));
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir)?;
    let store_name = match &args.clickhouse_url {
        Some(_) => "ClickHouse",
        None => "SQLite",
    };
    match (&args.kafka_brokers, &args.clickhouse_url) {
        (Some(brokers), Some(url)) => {
            let mut config = KafkaConfig::new(brokers).bundling(&topics);
            if let Ok(extra) = std::env::var("BENCH_KAFKA_EXTRA") {
                config.extra.extend(settings(&extra));
            }
            let log = KafkaLog::connect(config)?;
            let store = ClickHouseStore::connect(url, &format!("bench_{run}")).await?;
            bench(&args, log, store, topics, "Kafka", store_name).await
        }
        (None, None) => {
            let log = SqliteLog::open(SqliteLogConfig::new(args.dir.join("log.db")))?;
            let store = SqliteStore::open(args.dir.join("store.db"))?;
            bench(&args, log, store, topics, "embedded", store_name).await
        }
        _ => anyhow::bail!("give both --kafka-brokers and --clickhouse-url, or neither"),
    }
}

async fn bench<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    log_name: &str,
    store_name: &str,
) -> anyhow::Result<()> {
    log.create_topics(&topics.specs(args.partitions)).await?;
    store.migrate().await?;
    let program = SharedProgram::loaded(pipeline_program());
    println!("log: {log_name}, store: {store_name}, {} partitions", args.partitions);
    match args.mode {
        Mode::Stages => stages(args, log, store, topics, program).await,
        Mode::Lag => lag(args, log, store, topics, program).await,
        Mode::Fetch => fetch(args, log, topics).await,
    }
}

fn spawn_attributor<L: EventLog, St: Store>(
    log: &L,
    store: &St,
    program: &Arc<SharedProgram>,
    topics: &Topics,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<Result<(), pipeline::StageError>> {
    tokio::spawn(attributor::run_attributor(
        log.clone(),
        store.clone(),
        program.clone(),
        topics.clone(),
        keys(),
        shutdown.clone().wait(),
    ))
}

fn keys() -> ClickKeyRing {
    ClickKeyRing::parse("1:benchmark-click-key-benchmark-click-key").unwrap_or_else(|_| unreachable!())
}

/// Four clicks and a sale pixel per visitor, visitors 5 ms apart.
fn events(count: usize, topics: &Topics) -> Vec<Record> {
    let start = Timestamp::now().millis() - 3_600_000;
    (0..count)
        .map(|n| {
            let visitor_n = n / 5;
            let step = n % 5;
            let at = Timestamp::from_millis(start + visitor_n as i64 * 5 + step as i64);
            let visitor_id = format!("v{visitor_n:08}");
            let event = if step < 4 {
                let member = pipeline_member((visitor_n * 7 + step * 13) % PIPELINE_MEMBERS);
                TrackingEvent::Click(click(n as u128 + 1, "store", &member, &visitor_id, at))
            } else {
                let mut conversion =
                    sale(n as u128 + 1, &format!("O{visitor_n}"), Decimal::from(50 + visitor_n % 100), at);
                conversion.source = ConversionSource::Pixel;
                conversion.advertiser = Some(advertiser_id());
                conversion.offer = Some(model::testkit::offer_id("store"));
                conversion.visitor = Some(visitor(&visitor_id));
                TrackingEvent::Conversion(conversion)
            };
            Record { topic: topics.events.clone(), key: visitor_id, payload: wire::encode(&event) }
        })
        .collect()
}

async fn stages<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    program: Arc<SharedProgram>,
) -> anyhow::Result<()> {
    let total = args.events;
    let conversions = total / 5;
    let clicks = total - conversions;

    let started = Instant::now();
    for chunk in events(total, &topics).chunks(20_000) {
        log.append(chunk.to_vec()).await?;
    }
    log.flush(Duration::from_secs(60)).await?;
    let prefill = started.elapsed();
    println!("pre-filled {total} events ({clicks} clicks, {conversions} sales) in {prefill:.1?}");

    // Baseline: read the topic, do nothing. Measured before and after the attributor: a
    // broker whose store grows serves later reads slower (Tansu: twice as slow after a few
    // million records), so the stage is compared with both.
    let baseline = plain_read(args, &log, &topics, "baseline-before", total).await?;
    report("baseline: plain consumer", total as u64, baseline, None);

    // The attributor alone.
    let before = live();
    let (stop, shutdown) = Shutdown::new();
    let cpu = cpu_times();
    let started = Instant::now();
    let attributor = spawn_attributor(&log, &store, &program, &topics, &shutdown);
    let done = wait_for(&[("attributor", total as u64)], Duration::from_secs(900)).await;
    wait_for_end(&log, &[("attributor", &topics.events)], args.partitions, Duration::from_secs(900)).await;
    let elapsed = started.elapsed();
    let attributor_cpu = (cpu, cpu_times());
    // The heap once the last checkpoint's buffers are gone: what the visitors' states hold.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = live() - before;
    let _ = stop.send(true);
    attributor.await??;
    let after = plain_read(args, &log, &topics, "baseline-after", total).await?;
    report("baseline: plain consumer, after the attributor", total as u64, after, None);
    report("attributor", done, elapsed, Some(baseline));
    report_cpu("attributor", attributor_cpu, done, elapsed);
    let batches = RECORDED.samples("batch:attributor");
    println!("  batches: {} taking {:.2} s in all", batches.len(), batches.iter().sum::<f64>());
    println!("  {:.2}x the plain consumer's time after it", elapsed.as_secs_f64() / after.as_secs_f64());
    let visitors = total / 5;
    println!(
        "  heap held with {visitors} visitors tracked: {:.1} MiB, {} bytes per visitor (4 clicks each)",
        held as f64 / 1_048_576.0,
        held / visitors as i64
    );

    // Baseline of the settler: the log port's own consumer reading its input topics as the
    // attributor wrote them (on Kafka: in bundles, unpacked by the adapter).
    let inputs = [topics.orders.clone(), topics.ledger.clone()];
    let mut consumer = log.consumer(&topics.group("baseline-settler"), &inputs)?;
    let started = Instant::now();
    let read = drain(&mut consumer, total).await?;
    let settler_baseline = started.elapsed();
    drop(consumer);
    report("baseline: the log port's consumer reading the settler's inputs", read, settler_baseline, None);

    // The settler alone, over the attributor's outputs.
    let before = live();
    let (stop, shutdown) = Shutdown::new();
    let cpu = cpu_times();
    let started = Instant::now();
    let settler = tokio::spawn(settler::run_settler(
        log.clone(),
        store.clone(),
        program,
        topics.clone(),
        wall_clock(),
        args.instances,
        shutdown,
    ));
    let done = wait_for(&[("orders", conversions as u64), ("ledger", total as u64)], Duration::from_secs(1800)).await;
    let inputs = [("orders", &topics.orders), ("ledger", &topics.ledger)];
    wait_for_end(&log, &inputs, args.partitions, Duration::from_secs(1800)).await;
    let elapsed = started.elapsed();
    let settler_cpu = (cpu, cpu_times());
    // Inputs applied again after a rebalance count twice, so the count above is exact only
    // if no partition moved; after a pause, what the stages applied in all shows it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = live() - before;
    let _ = stop.send(true);
    settler.await??;
    report(
        "settler (orders + ledger stages; events = clicks + sales settled)",
        done.min(total as u64),
        elapsed,
        Some(after),
    );
    report_cpu("settler", settler_cpu, done.min(total as u64), elapsed);
    println!(
        "  {:.2}x the time of the log port's consumer reading its inputs",
        elapsed.as_secs_f64() / settler_baseline.as_secs_f64()
    );
    println!(
        "  heap held with {conversions} orders settled: {:.1} MiB, {} bytes per order",
        held as f64 / 1_048_576.0,
        held / (conversions as i64).max(1)
    );
    // Each partition once, unless a rebalance moved some (their inputs are applied again).
    println!(
        "  partitions assigned: orders {}, ledger {} ({} each); inputs applied in all: orders {}, ledger {}",
        RECORDED.counter("assigned:orders"),
        RECORDED.counter("assigned:ledger"),
        args.partitions,
        RECORDED.counter("orders"),
        RECORDED.counter("ledger"),
    );

    // Last (what it writes makes the broker slower): read the topic and write every record
    // to another one, a record per record with the stages' producer settings — what a stage
    // writing unbundled outputs would do at the least.
    let forward: Arc<str> = Arc::from(format!("{}forward", topics.prefix));
    let spec = pipeline::ports::log::TopicSpec { name: forward.clone(), partitions: args.partitions, compacted: false };
    log.create_topics(&[spec]).await?;
    let started = Instant::now();
    let forwarded = match &args.kafka_brokers {
        Some(brokers) => plain_rdkafka_forward(brokers, &topics.events, &forward, total).await?,
        None => plain_log_forward(&log, &topics, &forward, total).await?,
    };
    report(
        "baseline: plain consumer forwarding every record to another topic",
        forwarded,
        started.elapsed(),
        Some(after),
    );
    let lines = store
        .lines(&model::reports::ReportQuery { limit: 1, ..Default::default() })
        .await
        .map(|page| page.len())
        .unwrap_or(0);
    anyhow::ensure!(lines == 1, "the settler wrote no commission lines");
    Ok(())
}

fn report(what: &str, records: u64, elapsed: Duration, baseline: Option<Duration>) {
    let rate = records as f64 / elapsed.as_secs_f64();
    match baseline {
        Some(baseline) => println!(
            "{what}: {records} events in {elapsed:.2?} = {rate:.0} events/s ({:.2}x the baseline's time)",
            elapsed.as_secs_f64() / baseline.as_secs_f64()
        ),
        None => println!("{what}: {records} events in {elapsed:.2?} = {rate:.0} events/s"),
    }
}

/// Wait until `stage`'s outputs are durable for every input of `topics` written so far: its
/// position in each partition has reached the partition's end. Unlike the records counter,
/// this does not count inputs applied again after a rebalance.
async fn wait_for_end<L: EventLog>(log: &L, stages: &[(&str, &Arc<str>)], partitions: u32, patience: Duration) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let mut behind = false;
        for (stage, topic) in stages {
            for partition in 0..partitions {
                let id = PartitionId { topic: (*topic).clone(), partition };
                let end = log.end_offset(&id).await.unwrap_or(u64::MAX);
                behind |= RECORDED.counter(&format!("position:{stage}:{topic}:{partition}")) < end && end > 0;
            }
        }
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("gave up waiting for {stages:?} to reach the end of their inputs");
}

/// Poll the stage counters until each reaches its target; returns the first target's count.
async fn wait_for(targets: &[(&str, u64)], patience: Duration) -> u64 {
    let deadline = Instant::now() + patience;
    let started = Instant::now();
    let mut shown = Instant::now();
    loop {
        if std::env::var_os("BENCH_PROGRESS").is_some() && shown.elapsed() >= Duration::from_millis(500) {
            shown = Instant::now();
            let counts: Vec<(&str, u64)> = targets.iter().map(|(stage, _)| (*stage, RECORDED.counter(stage))).collect();
            eprintln!("{:>6.1?} {counts:?}", started.elapsed());
        }
        let counts: Vec<u64> = targets.iter().map(|(stage, _)| RECORDED.counter(stage)).collect();
        if targets.iter().zip(&counts).all(|((_, target), count)| count >= target) || Instant::now() > deadline {
            if Instant::now() > deadline {
                eprintln!("gave up waiting: {targets:?} reached {counts:?}");
            }
            return counts.last().copied().unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A plain consumer of the `events` topic, in a group of its own, until it read `total`.
async fn plain_read<L: EventLog>(
    args: &Args,
    log: &L,
    topics: &Topics,
    group: &str,
    total: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match &args.kafka_brokers {
        Some(brokers) => plain_rdkafka_read(brokers, &topics.events, total).await?,
        None => {
            let mut consumer = log.consumer(&topics.group(group), std::slice::from_ref(&topics.events))?;
            drain(&mut consumer, total).await?
        }
    };
    Ok(started.elapsed())
}

/// Poll until `total` records were read.
async fn drain<C: LogConsumer>(consumer: &mut C, total: usize) -> anyhow::Result<u64> {
    let mut read = 0u64;
    let mut bytes = 0usize;
    while read < total as u64 {
        let polled = consumer.poll(2_000, Duration::from_millis(100)).await?;
        read += polled.records.len() as u64;
        bytes += polled.records.iter().map(|record| record.payload.len()).sum::<usize>();
    }
    std::hint::black_box(bytes);
    Ok(read)
}

async fn plain_log_forward<L: EventLog>(
    log: &L,
    topics: &Topics,
    forward: &Arc<str>,
    total: usize,
) -> anyhow::Result<u64> {
    let mut consumer = log.consumer(&topics.group("forward"), std::slice::from_ref(&topics.events))?;
    let mut read = 0u64;
    while read < total as u64 {
        let polled = consumer.poll(10_000, Duration::from_millis(100)).await?;
        read += polled.records.len() as u64;
        let records: Vec<Record> = polled
            .records
            .into_iter()
            .map(|record| Record { topic: forward.clone(), key: record.key, payload: record.payload })
            .collect();
        if !records.is_empty() {
            log.append(records).await?;
        }
    }
    Ok(read)
}

async fn plain_rdkafka_forward(brokers: &str, from: &str, to: &str, total: usize) -> anyhow::Result<u64> {
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

async fn plain_rdkafka_read(brokers: &str, topic: &str, total: usize) -> anyhow::Result<u64> {
    Ok(plain_rdkafka_read_with(brokers, topic, total, &[]).await?.0)
}

/// Fetch requests a consumer sent, from librdkafka's statistics.
#[derive(Default)]
struct FetchCount(AtomicU64);

impl rdkafka::ClientContext for FetchCount {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let fetches = statistics.brokers.values().filter_map(|broker| broker.req.get("Fetch")).sum::<i64>();
        self.0.store(fetches as u64, Ordering::Relaxed);
    }
}

impl rdkafka::consumer::ConsumerContext for FetchCount {}

/// A plain consumer with extra settings; returns the records read and the fetch requests sent.
async fn plain_rdkafka_read_with(
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
fn settings(list: &str) -> Vec<(String, String)> {
    list.split(',')
        .filter(|setting| !setting.is_empty())
        .map(|setting| {
            let (key, value) = setting.split_once('=').unwrap_or((setting, ""));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// Pre-fill `events`, then time a plain consumer with each of the `--consumer` settings.
async fn fetch<L: EventLog>(args: &Args, log: L, topics: Topics) -> anyhow::Result<()> {
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

async fn lag<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    program: Arc<SharedProgram>,
) -> anyhow::Result<()> {
    let (stop, shutdown) = Shutdown::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let edge_address = listener.local_addr()?;
    let edge = ingest::Edge::new(ingest::EdgeConfig::new(topics.clone(), keys()), log.clone(), program.clone());
    let edge = tokio::spawn(ingest::run(listener, edge, shutdown.clone().wait()));
    let attributor = spawn_attributor(&log, &store, &program, &topics, &shutdown);
    let settler =
        tokio::spawn(settler::run_settler(log, store, program, topics, wall_clock(), args.instances, shutdown));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // One postback first: the traffic below must be accepted, not refused.
    let probe =
        probe(edge_address, &format!("/pb?code=BENCH&order_id=probe&amount=50.00&token={}", model::testkit::SECRET))
            .await?;
    anyhow::ensure!(probe.contains(" 200 "), "the benchmark postback was refused: {probe}");

    let clicks_rate = args.rate * 9 / 10;
    let postback_rate = args.rate - clicks_rate;
    let oha = |rate: u32, connections: u32, url: String| {
        tokio::process::Command::new("oha")
            .args(["--no-tui", "--output-format", "quiet", "--rand-regex-url"])
            .args(["-z", &format!("{}s", args.seconds), "-q", &rate.to_string(), "-c", &connections.to_string()])
            .arg(url)
            .stdout(std::process::Stdio::null())
            .status()
    };
    let started = Instant::now();
    let progress = std::env::var_os("BENCH_PROGRESS").map(|_| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let counts: Vec<u64> = ["attributor", "orders", "ledger"].map(|stage| RECORDED.counter(stage)).into();
                eprintln!("{:>6.1?} attributor, orders, ledger: {counts:?}", started.elapsed());
            }
        })
    });
    let (clicks, postbacks) = tokio::join!(
        oha(clicks_rate, 128, format!(r"http://{edge_address}/c\?offer=store&member=m1[0-9][0-9]")),
        oha(
            postback_rate,
            8,
            format!(
                r"http://{edge_address}/pb\?code=BENCH&order_id=[a-z0-9]{{20}}&amount=50&token={}",
                model::testkit::SECRET
            )
        ),
    );
    anyhow::ensure!(clicks?.success() && postbacks?.success(), "oha failed");
    let offered = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    // Let the pipeline drain: until the ledger stage has been idle for two seconds.
    let mut last = (RECORDED.counter("ledger"), Instant::now());
    while last.1.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = RECORDED.counter("ledger");
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let events = RECORDED.counter("attributor");
    println!(
        "offered {} events/s for {:.1?}: {events} events reached the attributor ({:.0}/s)",
        args.rate,
        offered,
        events as f64 / offered.as_secs_f64()
    );
    for stage in ["attributor", "orders", "ledger"] {
        let mut samples = RECORDED.samples(stage);
        samples.sort_by(f64::total_cmp);
        if samples.is_empty() {
            continue;
        }
        let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize] * 1000.0;
        println!(
            "lag to {stage} outputs durable: {} events, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
            samples.len(),
            at(0.5),
            at(0.99),
            at(0.999),
            at(1.0)
        );
    }
    let _ = stop.send(true);
    edge.await??;
    attributor.await??;
    settler.await??;
    Ok(())
}

/// One GET over a fresh connection; the response's head and body.
async fn probe(address: std::net::SocketAddr, target: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(format!("GET {target} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// The stage metrics this benchmark reads: record counters and lag samples, by stage.
#[derive(Default)]
struct Recorded {
    counters: Mutex<HashMap<String, Arc<StageCounter>>>,
    lags: Mutex<HashMap<String, Arc<LagSamples>>>,
}

static RECORDED: std::sync::LazyLock<Recorded> = std::sync::LazyLock::new(Recorded::default);

impl Recorded {
    fn counter(&self, stage: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.get(stage).map_or(0, |counter| counter.0.load(Ordering::Relaxed))
    }

    fn samples(&self, stage: &str) -> Vec<f64> {
        let lags = self.lags.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lags.get(stage).map_or_else(Vec::new, |lag| lag.0.lock().map(|samples| samples.clone()).unwrap_or_default())
    }
}

#[derive(Default)]
struct StageCounter(AtomicU64);

impl metrics::CounterFn for StageCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

/// A stage's position in one partition (`clickledger_stage_position`), kept as an integer.
impl metrics::GaugeFn for StageCounter {
    fn increment(&self, _: f64) {}

    fn decrement(&self, _: f64) {}

    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct LagSamples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for LagSamples {
    fn record(&self, value: f64) {
        if let Ok(mut samples) = self.0.lock() {
            samples.push(value);
        }
    }
}

fn stage_label(key: &metrics::Key) -> String {
    key.labels().find(|label| label.key() == "stage").map(|label| label.value().to_string()).unwrap_or_default()
}

impl metrics::Recorder for &'static Recorded {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let name = match key.name() {
            "clickledger_stage_records_total" => stage_label(key),
            "clickledger_stage_partitions_assigned_total" => format!("assigned:{}", stage_label(key)),
            _ => return metrics::Counter::noop(),
        };
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Counter::from_arc(counters.entry(name).or_default().clone())
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        if key.name() != "clickledger_stage_position" {
            return metrics::Gauge::noop();
        }
        let label = |name: &str| {
            key.labels().find(|label| label.key() == name).map(|label| label.value().to_string()).unwrap_or_default()
        };
        let at = format!("position:{}:{}:{}", label("stage"), label("topic"), label("partition"));
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Gauge::from_arc(counters.entry(at).or_default().clone())
    }

    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        let label = match key.name() {
            "clickledger_stage_lag_seconds" => stage_label(key),
            "clickledger_stage_batch_seconds" => format!("batch:{}", stage_label(key)),
            _ => return metrics::Histogram::noop(),
        };
        let mut lags = self.lags.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Histogram::from_arc(lags.entry(label).or_default().clone())
    }
}
