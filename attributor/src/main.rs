//! `attributor`: the attributor stage against Kafka and ClickHouse (or the embedded files).

use std::collections::BTreeMap;

use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use clap::Parser;
use clickledger_attributor::AttributorStage;
use model::clickid::ClickKeyRing;
use model::follow::SharedProgram;
use model::ports::log::{EventLog, Topics};
use model::ports::store::Store;
use model::stage::{RunnerConfig, run_stage};

#[derive(Debug, Parser)]
#[command(about = "The clickledger attributor")]
struct Args {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Consumer group of the attributor instances.
    #[arg(long, env = "CLICKLEDGER_ATTRIBUTOR_GROUP", default_value = "attributor")]
    group: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let keys = vars
        .get("CLICKLEDGER_CLICK_KEYS")
        .ok_or_else(|| anyhow::anyhow!("CLICKLEDGER_CLICK_KEYS is required (the edge's click keys)"))?;
    let keys = ClickKeyRing::parse(keys)?;
    let deployment = Deployment::connect(&args.deployment).await?;
    let topics = deployment.topics();
    deployment.run(Attributor { group: args.group, topics, keys }).await
}

struct Attributor {
    group: String,
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
        let config = RunnerConfig::new(self.group, vec![self.topics.events.clone()]);
        run_stage(AttributorStage::new(self.topics, self.keys), log, store, program, config, shutdown.wait()).await?;
        Ok(())
    }
}
