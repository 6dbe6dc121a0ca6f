//! The `settler` binary: its settings and its start.

use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use adapters::process::ProcessArgs;
use clap::Parser;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use pipeline::wall_clock;

use crate::{instances_per_process, run_settler};

#[derive(Debug, Parser)]
#[command(name = "settler", about = "The clickledger settler")]
pub struct SettlerArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Members of the order and ledger stages' consumer groups in this process, each on its
    /// own task (default: one per core). More than the topics' partitions stay idle.
    #[arg(long, env = "CLICKLEDGER_SETTLER_INSTANCES")]
    pub instances: Option<usize>,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// Run the settler on the deployment `args` name until Ctrl-C or SIGTERM.
pub async fn start(args: SettlerArgs) -> anyhow::Result<()> {
    let deployment = Deployment::connect(&args.deployment).await?;
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let topics = deployment.topics();
    let instances = args.instances.unwrap_or_else(instances_per_process);
    deployment.run_until(Settler { topics, instances }, shutdown).await
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
