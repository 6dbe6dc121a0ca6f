//! `attributor`: the attributor stage against Kafka and ClickHouse (or the embedded files).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use clap::Parser;
use clickledger_attributor::run_attributor;
use model::clickid::ClickKeyRing;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;

#[derive(Debug, Parser)]
#[command(about = "The clickledger attributor")]
struct Args {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// The edge's click-id keys (`id:secret,...`), to verify click ids sent on postbacks.
    #[arg(long, env = "CLICKLEDGER_CLICK_KEYS", hide_env_values = true)]
    click_keys: String,
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
    let keys = ClickKeyRing::parse(&args.click_keys)?;
    let deployment = Deployment::connect(&args.deployment).await?;
    let topics = deployment.topics();
    deployment.run(Attributor { topics, keys }).await
}

struct Attributor {
    topics: Topics,
    keys: ClickKeyRing,
}

impl Job for Attributor {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        run_attributor(log, store, program, self.topics, self.keys, shutdown.wait()).await?;
        Ok(())
    }
}
