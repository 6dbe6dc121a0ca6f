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
//!
//! - `stages`: the `stages` mode; `lag`: the `lag` mode; `plain`: the plain consumers and
//!   forwarders the stages are measured against, and the `fetch` mode; `cpu`: CPU time;
//!   `recorder`: the stage metrics the modes read.

mod cpu;
mod forget;
mod lag;
mod plain;
mod recorder;
mod stages;

use lag::lag;
use plain::{fetch, settings};
use recorder::RECORDED;
use stages::stages;

use std::path::PathBuf;

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use adapters::store::clickhouse::ClickHouseStore;
use adapters::store::sqlite::SqliteStore;
use clap::{Parser, ValueEnum};
use clickledger_benches::fixtures::{PIPELINE_MEMBERS, pipeline_member, pipeline_program};
use model::events::{ConversionSource, TrackingEvent, wire};
use model::testkit::{advertiser_id, click, sale, visitor};
use model::time::Timestamp;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Record, Topics};
use pipeline::ports::store::Store;
use rust_decimal::Decimal;

/// mimalloc, counting the bytes the process holds.
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

fn live() -> i64 {
    ALLOCATOR.allocated() as i64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    Stages,
    Lag,
    /// Kafka only: pre-fill `events`, then time plain consumers with each `--consumer`
    /// setting, `--rounds` times in turn.
    Fetch,
    /// What the per-key memories hold as days of cookie-less clicks go by (embedded only).
    Forget,
}

#[derive(Debug, Parser)]
pub(crate) struct Args {
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
    /// `forget`: cookie-less clicks a simulated day.
    #[arg(long, default_value_t = 5_000)]
    visitors_per_day: usize,
    /// `forget`: simulated days.
    #[arg(long, default_value_t = 120)]
    days: usize,
    /// `forget`: print every this many days.
    #[arg(long, default_value_t = 15)]
    report_every: usize,
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
        Mode::Forget => forget::forget(args, log, store, topics, program).await,
    }
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
