//! `settler`: the order, ledger and program stages against Kafka and ClickHouse (or the
//! embedded files).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use clap::Parser;
use clickledger_settler::{self as settler, run_settler};
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use pipeline::wall_clock;

#[derive(Debug, Parser)]
#[command(about = "The clickledger settler")]
struct Args {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Members of the order and ledger stages' consumer groups in this process, each on its
    /// own task (default: one per core). More than the topics' partitions stay idle.
    #[arg(long, env = "CLICKLEDGER_SETTLER_INSTANCES")]
    instances: Option<usize>,
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
    let deployment = Deployment::connect(&args.deployment).await?;
    let topics = deployment.topics();
    let instances = args.instances.unwrap_or_else(settler::instances_per_process);
    deployment.run(Settler { topics, instances }).await
}

struct Settler {
    topics: Topics,
    instances: usize,
}

impl Job for Settler {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        run_settler(log, store, program, self.topics, wall_clock(), self.instances, shutdown).await?;
        Ok(())
    }
}
