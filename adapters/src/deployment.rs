//! Wiring a process to its deployment: the log (Kafka or the embedded file), the store
//! (ClickHouse or the embedded file), the topics, the schema, and the program followed from
//! the log. Every binary takes the same [`LogArgs`] (the edge, which needs no store) or
//! [`DeploymentArgs`] (the log and the store); its work is a [`Job`] (or a [`LogJob`]), run
//! against whichever adapters were chosen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use pipeline::follow::{SharedProgram, follow_program};
pub use pipeline::lifecycle::Shutdown;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::{StageStore, Store};

use crate::log::kafka::{KafkaConfig, KafkaLog};
use crate::log::sqlite::{Durability, SqliteLog, SqliteLogConfig};
use crate::store::clickhouse::ClickHouseStore;
use crate::store::sqlite::SqliteStore;

/// Where the event log is.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Kafka bootstrap servers; without them the log is the embedded file.
    #[arg(long, env = "CLICKLEDGER_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// The embedded log file.
    #[arg(long, env = "CLICKLEDGER_LOG_FILE", default_value = "data/log.db")]
    pub log_file: PathBuf,
    /// `full` (fsync before acknowledging) or `normal` (survives a process crash only).
    #[arg(long, env = "CLICKLEDGER_LOG_DURABILITY", value_enum, default_value_t = Durability::Full)]
    pub log_durability: Durability,
    /// Replicas of each pipeline topic, when this process creates them (Kafka). Above 1,
    /// topics are created with `min.insync.replicas` one less, so an acknowledged record is on
    /// at least two brokers.
    #[arg(long, env = "CLICKLEDGER_KAFKA_REPLICATION", default_value_t = 1)]
    pub kafka_replication: u16,
    /// `linger.ms` of the Kafka producer.
    #[arg(long, env = "CLICKLEDGER_KAFKA_LINGER_MS", default_value_t = 1)]
    pub kafka_linger_ms: u64,
    /// Extra librdkafka settings as `key=value` (security.protocol, sasl.*, debug, ...);
    /// repeat the flag, or separate them with commas in the variable.
    #[arg(long = "kafka-option", env = "CLICKLEDGER_KAFKA_OPTIONS", value_delimiter = ',', value_parser = key_value)]
    pub kafka_options: Vec<(String, String)>,
    /// Prefix of the topic names.
    #[arg(long, env = "CLICKLEDGER_TOPIC_PREFIX", default_value = "clickledger.")]
    pub topic_prefix: String,
    /// Partitions of the pipeline topics, when this process creates them.
    #[arg(long, env = "CLICKLEDGER_PARTITIONS", default_value_t = 4)]
    pub partitions: u32,
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// ClickHouse HTTP URL; without it the store is the embedded file.
    #[arg(long, env = "CLICKLEDGER_CLICKHOUSE_URL")]
    pub clickhouse_url: Option<String>,
    /// The ClickHouse database (created if missing).
    #[arg(long, env = "CLICKLEDGER_CLICKHOUSE_DATABASE", default_value = "clickledger")]
    pub clickhouse_database: String,
    /// The ClickHouse user (the server's `default` when not given).
    #[arg(long, env = "CLICKLEDGER_CLICKHOUSE_USER")]
    pub clickhouse_user: Option<String>,
    /// The ClickHouse user's password.
    #[arg(long, env = "CLICKLEDGER_CLICKHOUSE_PASSWORD", hide_env_values = true)]
    pub clickhouse_password: Option<String>,
    /// The embedded store file.
    #[arg(long, env = "CLICKLEDGER_STORE_FILE", default_value = "data/store.db")]
    pub store_file: PathBuf,
}

/// Where the log and the store are.
#[derive(Debug, Clone, Args)]
pub struct DeploymentArgs {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Parses `key=value` (a librdkafka setting).
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

impl LogArgs {
    /// The embedded log under `dir`.
    pub fn embedded(dir: &Path) -> Self {
        Self {
            kafka_brokers: None,
            log_file: dir.join("log.db"),
            log_durability: Durability::Full,
            kafka_replication: 1,
            kafka_linger_ms: 1,
            kafka_options: Vec::new(),
            topic_prefix: "clickledger.".into(),
            partitions: 4,
        }
    }

    pub fn topics(&self) -> Topics {
        Topics::with_prefix(&self.topic_prefix)
    }

    /// Open the log and create its topics.
    pub async fn connect(&self) -> anyhow::Result<Log> {
        let topics = self.topics();
        let log = match &self.kafka_brokers {
            Some(brokers) => {
                let mut config = KafkaConfig::new(brokers).bundling(&topics);
                config.linger = std::time::Duration::from_millis(self.kafka_linger_ms);
                config.replication = i32::from(self.kafka_replication.max(1));
                config.extra = self.kafka_options.clone();
                Log::Kafka(KafkaLog::connect(config)?)
            }
            None => {
                parent_dir(&self.log_file)?;
                let mut config = SqliteLogConfig::new(&self.log_file);
                config.durability = self.log_durability;
                Log::Sqlite(SqliteLog::open(config)?)
            }
        };
        let specs = topics.specs(self.partitions);
        match &log {
            Log::Kafka(log) => log.create_topics(&specs).await?,
            Log::Sqlite(log) => log.create_topics(&specs).await?,
        }
        Ok(log)
    }
}

impl StoreArgs {
    /// The embedded store under `dir`.
    pub fn embedded(dir: &Path) -> Self {
        Self {
            clickhouse_url: None,
            clickhouse_database: "clickledger".into(),
            clickhouse_user: None,
            clickhouse_password: None,
            store_file: dir.join("store.db"),
        }
    }

    /// Open the store and migrate its schema.
    pub async fn connect(&self) -> anyhow::Result<StoreKind> {
        let store = match &self.clickhouse_url {
            Some(url) => {
                let mut client = clickhouse::Client::default().with_url(url);
                if let Some(user) = &self.clickhouse_user {
                    client = client.with_user(user);
                }
                if let Some(password) = &self.clickhouse_password {
                    client = client.with_password(password);
                }
                StoreKind::ClickHouse(ClickHouseStore::connect_with(client, &self.clickhouse_database).await?)
            }
            None => {
                parent_dir(&self.store_file)?;
                StoreKind::Sqlite(SqliteStore::open(&self.store_file)?)
            }
        };
        match &store {
            StoreKind::ClickHouse(store) => store.migrate().await?,
            StoreKind::Sqlite(store) => store.migrate().await?,
        }
        Ok(store)
    }
}

impl DeploymentArgs {
    /// Everything embedded under `dir`.
    pub fn embedded(dir: &Path) -> Self {
        Self { log: LogArgs::embedded(dir), store: StoreArgs::embedded(dir) }
    }
}

/// The work of a process that needs the log and the store, generic over the adapters.
pub trait Job: Send + 'static {
    fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The work of a process that needs only the log (the edge).
pub trait LogJob: Send + 'static {
    fn run<L: EventLog>(
        self,
        log: L,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// The log chosen by [`LogArgs`].
#[derive(Debug)]
pub enum Log {
    Kafka(KafkaLog),
    Sqlite(SqliteLog),
}

/// The store chosen by [`StoreArgs`].
#[derive(Debug)]
pub enum StoreKind {
    ClickHouse(ClickHouseStore),
    Sqlite(SqliteStore),
}

impl Log {
    /// Follow the program and run `job` until `shutdown`.
    pub async fn run_until(self, topics: Topics, job: impl LogJob, shutdown: Shutdown) -> anyhow::Result<()> {
        match self {
            Log::Kafka(log) => start_log_job(job, log, topics, shutdown).await,
            Log::Sqlite(log) => start_log_job(job, log, topics, shutdown).await,
        }
    }
}

pub struct Deployment {
    log: Log,
    store: StoreKind,
    topics: Topics,
}

impl std::fmt::Debug for Deployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployment").field("topics", &self.topics).finish()
    }
}

fn parent_dir(file: &Path) -> anyhow::Result<()> {
    if let Some(parent) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    Ok(())
}

impl Deployment {
    /// Connect the log and the store, create the topics and migrate the schema.
    pub async fn connect(args: &DeploymentArgs) -> anyhow::Result<Self> {
        let log = args.log.connect().await?;
        let store = args.store.connect().await?;
        tracing::info!(
            log = if args.log.kafka_brokers.is_some() { "kafka" } else { "embedded" },
            store = if args.store.clickhouse_url.is_some() { "clickhouse" } else { "embedded" },
            prefix = %args.log.topic_prefix,
            "log and store ready"
        );
        Ok(Self { log, store, topics: args.log.topics() })
    }

    pub fn topics(&self) -> Topics {
        self.topics.clone()
    }

    /// Follow the program and run `job` until Ctrl-C or SIGTERM.
    pub async fn run(self, job: impl Job) -> anyhow::Result<()> {
        self.run_until(job, signalled()).await
    }

    /// Follow the program and run `job` until `shutdown`.
    pub async fn run_until(self, job: impl Job, shutdown: Shutdown) -> anyhow::Result<()> {
        let topics = self.topics;
        match (self.log, self.store) {
            (Log::Kafka(log), StoreKind::ClickHouse(store)) => start(job, log, store, topics, shutdown).await,
            (Log::Kafka(log), StoreKind::Sqlite(store)) => start(job, log, store, topics, shutdown).await,
            (Log::Sqlite(log), StoreKind::ClickHouse(store)) => start(job, log, store, topics, shutdown).await,
            (Log::Sqlite(log), StoreKind::Sqlite(store)) => start(job, log, store, topics, shutdown).await,
        }
    }
}

/// A shutdown that Ctrl-C or SIGTERM triggers.
pub fn signalled() -> Shutdown {
    let (stop, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    shutdown
}

/// The program followed from the log until `shutdown`, and the task following it.
fn follow<L: EventLog>(
    log: &L,
    topics: &Topics,
    shutdown: &Shutdown,
) -> (Arc<SharedProgram>, tokio::task::JoinHandle<Result<(), pipeline::ports::log::LogError>>) {
    let program = SharedProgram::new();
    let follower =
        tokio::spawn(follow_program(log.clone(), topics.program.clone(), program.clone(), shutdown.clone().wait()));
    (program, follower)
}

async fn start<L: EventLog, St: Store>(
    job: impl Job,
    log: L,
    store: St,
    topics: Topics,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (program, follower) = follow(&log, &topics, &shutdown);
    let result = job.run(log, store, program, shutdown).await;
    follower.abort();
    result
}

async fn start_log_job<L: EventLog>(
    job: impl LogJob,
    log: L,
    topics: Topics,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (program, follower) = follow(&log, &topics, &shutdown);
    let result = job.run(log, program, shutdown).await;
    follower.abort();
    result
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = interrupt.await;
            return;
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
