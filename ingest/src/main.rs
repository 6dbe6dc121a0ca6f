//! `ingest`: the tracking edge on its own, against Kafka or an embedded log file.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use anyhow::Context;
use clap::Parser;
use clickledger_ingest::{Edge, EdgeConfig, run, shutdown_signal};
use pipeline::follow::{SharedProgram, follow_program};
use pipeline::ports::log::{EventLog, Topics};

#[derive(Debug, Parser)]
#[command(about = "The clickledger tracking edge")]
struct Args {
    /// Address of the tracking edge.
    #[arg(long, env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Kafka bootstrap servers (scale deployment).
    #[arg(long, env = "CLICKLEDGER_KAFKA_BROKERS", conflicts_with = "log_file")]
    kafka_brokers: Option<String>,
    /// Embedded log file (when not using Kafka).
    #[arg(long, env = "CLICKLEDGER_LOG_FILE", default_value = "data/log.db")]
    log_file: PathBuf,
    /// Prefix of the topic names.
    #[arg(long, env = "CLICKLEDGER_TOPIC_PREFIX", default_value = "clickledger.")]
    topic_prefix: String,
    /// Embedded log durability: `full` (fsync before every acknowledgement) or `normal`
    /// (survives a crash of the process, not of the machine).
    #[arg(long, env = "CLICKLEDGER_LOG_DURABILITY", default_value = "full", value_parser = ["full", "normal"])]
    log_durability: String,
    /// `linger.ms` of the Kafka producer.
    #[arg(long, env = "CLICKLEDGER_KAFKA_LINGER_MS", default_value_t = 1)]
    kafka_linger_ms: u64,
    /// Extra librdkafka settings as `key=value`; repeat the flag, or separate them with
    /// commas in the variable.
    #[arg(long = "kafka-option", env = "CLICKLEDGER_KAFKA_OPTIONS", value_delimiter = ',', value_parser = adapters::deployment::key_value)]
    kafka_options: Vec<(String, String)>,
    /// Partitions of the pipeline topics, when this process creates them.
    #[arg(long, env = "CLICKLEDGER_PARTITIONS", default_value_t = 4)]
    partitions: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::memory::small_pages();
    model::events::wire::check_version_setting().map_err(anyhow::Error::msg)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let topics = Topics::with_prefix(&args.topic_prefix);
    let config = EdgeConfig::from_env(&vars, topics.clone())?;
    match &args.kafka_brokers {
        Some(brokers) => {
            let mut kafka = KafkaConfig::new(brokers);
            kafka.linger = std::time::Duration::from_millis(args.kafka_linger_ms);
            kafka.extra = args.kafka_options.clone();
            serve(KafkaLog::connect(kafka)?, config, &args).await
        }
        None => {
            if let Some(parent) = args.log_file.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut log = SqliteLogConfig::new(&args.log_file);
            if args.log_durability == "normal" {
                log.durability = adapters::log::sqlite::Durability::Normal;
            }
            serve(SqliteLog::open(log)?, config, &args).await
        }
    }
}

async fn serve<L: EventLog>(log: L, config: EdgeConfig, args: &Args) -> anyhow::Result<()> {
    log.create_topics(&config.topics.specs(args.partitions)).await?;
    let program = SharedProgram::new();
    let follower =
        tokio::spawn(follow_program(log.clone(), config.topics.program.clone(), program.clone(), shutdown_signal()));
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "tracking edge listening");
    run(listener, Edge::new(config, log, program), shutdown_signal()).await?;
    follower.abort();
    Ok(())
}
