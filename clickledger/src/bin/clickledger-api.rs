//! `clickledger-api`: the program and report API against Kafka and ClickHouse (or the
//! embedded files), for the scale deployment. With `--program FILE` it first appends what the
//! file changes to the program log, so a deployment is set up reproducibly.

use std::sync::Arc;

use adapters::deployment::{Deployment, Job, Shutdown};
use anyhow::Context;
use api::ApiState;
use api::auth::KeyRing;
use clap::Parser;
use clickledger::cli::ApiArgs;
use model::program::ProgramFile;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    let args = ApiArgs::parse();
    let program_file = args.program.as_deref().map(clickledger::read_program_file).transpose()?;
    let listener = TcpListener::bind(args.api_listen).await.with_context(|| format!("binding {}", args.api_listen))?;
    let deployment = Deployment::connect(&args.deployment).await?;
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let topics = deployment.topics();
    let limits = args.api_limits.limits();
    let job = ApiJob { topics, listener, keys: KeyRing::with_bootstrap(&args.admin_key), program_file, limits };
    deployment.run_until(job, shutdown).await
}

struct ApiJob {
    topics: Topics,
    listener: TcpListener,
    keys: KeyRing,
    program_file: Option<ProgramFile>,
    limits: api::serve::ApiLimits,
}

impl Job for ApiJob {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        program.until_loaded().await;
        if let Some(file) = self.program_file {
            let planned =
                pipeline::follow::load_program_file(&log, &self.topics, &program, file, "program-file").await?;
            tracing::info!(changes = planned, "program file loaded");
        }
        let address = self.listener.local_addr()?;
        tracing::info!(%address, "serving the API");
        let state = ApiState::new(log, store, program, self.topics, self.keys);
        api::serve(self.listener, state, self.limits, shutdown.wait()).await?;
        Ok(())
    }
}
