//! The `attributor` binary: its settings and its start.

use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use adapters::process::ProcessArgs;
use clap::Parser;
use model::clickid::ClickKeyRing;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;

use crate::run_attributor;

#[derive(Debug, Parser)]
#[command(name = "attributor", about = "The clickledger attributor")]
pub struct AttributorArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// The edge's click-id keys (`id:secret,...`), to verify click ids sent on postbacks.
    #[arg(long, env = "CLICKLEDGER_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: String,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// Run the attributor on the deployment `args` name until Ctrl-C or SIGTERM.
pub async fn start(args: AttributorArgs) -> anyhow::Result<()> {
    let keys = ClickKeyRing::parse(&args.click_keys)?;
    let deployment = Deployment::connect(&args.deployment).await?;
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let topics = deployment.topics();
    deployment.run_until(Attributor { topics, keys }, shutdown).await
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
