//! `clickledger-api`: the program and report API against Kafka and ClickHouse (or the
//! embedded files), for the scale deployment. With `--program FILE` it first appends what the
//! file changes to the program log, so a deployment is set up reproducibly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use anyhow::Context;
use api::ApiState;
use api::auth::KeyRing;
use clap::Parser;
use model::program::ProgramFile;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(about = "The clickledger program and report API")]
struct Args {
    #[command(flatten)]
    deployment: DeploymentArgs,
    /// Where the API listens.
    #[arg(long, env = "CLICKLEDGER_API_LISTEN", default_value = "127.0.0.1:8081")]
    api_listen: SocketAddr,
    /// The bootstrap admin key.
    #[arg(long, env = "CLICKLEDGER_ADMIN_KEY", hide_env_values = true)]
    admin_key: String,
    /// A program file (TOML) to load at start: only what differs is appended.
    #[arg(long, env = "CLICKLEDGER_PROGRAM")]
    program: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    model::events::wire::check_version_setting().map_err(anyhow::Error::msg)?;
    let args = Args::parse();
    let program_file = args.program.as_deref().map(clickledger::read_program_file).transpose()?;
    let listener = TcpListener::bind(args.api_listen).await.with_context(|| format!("binding {}", args.api_listen))?;
    let deployment = Deployment::connect(&args.deployment).await?;
    let topics = deployment.topics();
    deployment.run(ApiJob { topics, listener, keys: KeyRing::with_bootstrap(&args.admin_key), program_file }).await
}

struct ApiJob {
    topics: Topics,
    listener: TcpListener,
    keys: KeyRing,
    program_file: Option<ProgramFile>,
}

impl Job for ApiJob {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        clickledger::until_loaded(&program).await;
        if let Some(file) = self.program_file {
            let planned = clickledger::load_program(&log, &self.topics, &program, file, "program-file").await?;
            tracing::info!(changes = planned, "program file loaded");
        }
        let address = self.listener.local_addr()?;
        tracing::info!(%address, "serving the API");
        let state = ApiState::new(log, store, program, self.topics, self.keys);
        api::serve(self.listener, state, shutdown.wait()).await?;
        Ok(())
    }
}
