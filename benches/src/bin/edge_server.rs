//! The real edge for load tests: `clickledger_ingest::run` on the embedded log or Kafka, with
//! the benchmark program (offer `summer`, member `jane`, code `JANE20`) already in memory.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use clap::Parser;
use clickledger_benches::fixtures::edge_program;
use ingest::{Edge, EdgeConfig, run, shutdown_signal};
use model::clickid::ClickKeyRing;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    #[arg(long)]
    kafka_brokers: Option<String>,
    #[arg(long, default_value = "bench-data/log.db")]
    log_file: PathBuf,
    #[arg(long, default_value = "bench.")]
    topic_prefix: String,
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// `full` (fsync before every acknowledgement) or `normal` for the embedded log.
    #[arg(long, default_value = "full")]
    durability: String,
    /// How often the embedded log checkpoints its WAL, in milliseconds.
    #[arg(long)]
    checkpoint_ms: Option<u64>,
    /// `linger.ms` of the Kafka producer.
    #[arg(long, default_value_t = 1)]
    linger_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::memory::small_pages();
    let args = Args::parse();
    if args.durability == "none" {
        return serve(NullLog, &args).await;
    }
    match &args.kafka_brokers {
        Some(brokers) => {
            let mut config = KafkaConfig::new(brokers);
            config.linger = std::time::Duration::from_millis(args.linger_ms);
            serve(KafkaLog::connect(config)?, &args).await
        }
        None => {
            if let Some(parent) = args.log_file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut config = SqliteLogConfig::new(&args.log_file);
            if let Some(millis) = args.checkpoint_ms {
                config.checkpoint_interval = std::time::Duration::from_millis(millis);
            }
            if args.durability == "normal" {
                config.durability = adapters::log::sqlite::Durability::Normal;
            }
            serve(SqliteLog::open(config)?, &args).await
        }
    }
}

async fn serve<L: EventLog>(log: L, args: &Args) -> anyhow::Result<()> {
    let topics = Topics::with_prefix(&args.topic_prefix);
    log.create_topics(&topics.specs(args.partitions)).await?;
    let keys = ClickKeyRing::parse("1:benchmark-click-key-benchmark-click-key")?;
    let edge = Edge::new(EdgeConfig::new(topics, keys), log, SharedProgram::loaded(edge_program()));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    run(listener, edge, shutdown_signal()).await?;
    Ok(())
}

/// Experiment only: acknowledges everything at once and keeps nothing.
#[derive(Clone, Debug)]
struct NullLog;

struct NullConsumer;

impl pipeline::ports::log::LogConsumer for NullConsumer {
    async fn poll(
        &mut self,
        _: usize,
        _: std::time::Duration,
    ) -> Result<pipeline::ports::log::Polled, pipeline::ports::log::LogError> {
        Ok(Default::default())
    }
    async fn commit(
        &mut self,
        _: &[(pipeline::ports::log::PartitionId, u64)],
    ) -> Result<(), pipeline::ports::log::LogError> {
        Ok(())
    }
}

impl EventLog for NullLog {
    type Consumer = NullConsumer;
    fn create_topics(
        &self,
        _: &[pipeline::ports::log::TopicSpec],
    ) -> impl Future<Output = Result<(), pipeline::ports::log::LogError>> + Send + 'static {
        async { Ok(()) }
    }
    fn append(
        &self,
        _: Vec<pipeline::ports::log::Record>,
    ) -> impl Future<Output = Result<(), pipeline::ports::log::LogError>> + Send + 'static {
        async { Ok(()) }
    }
    fn queue_depth(&self) -> usize {
        0
    }
    fn delivery_timeout(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    fn check(&self) -> impl Future<Output = Result<(), pipeline::ports::log::LogError>> + Send + 'static {
        async { Ok(()) }
    }
    fn end_offset(
        &self,
        _: &pipeline::ports::log::PartitionId,
    ) -> impl Future<Output = Result<u64, pipeline::ports::log::LogError>> + Send + 'static {
        async { Ok(0) }
    }
    fn flush(
        &self,
        _: std::time::Duration,
    ) -> impl Future<Output = Result<(), pipeline::ports::log::LogError>> + Send + 'static {
        async { Ok(()) }
    }
    fn consumer(&self, _: &str, _: &[std::sync::Arc<str>]) -> Result<NullConsumer, pipeline::ports::log::LogError> {
        Ok(NullConsumer)
    }
}
