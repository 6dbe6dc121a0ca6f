//! The standalone `ingest` binary: its settings and its start.

use std::net::SocketAddr;
use std::sync::Arc;

use adapters::deployment::{LogArgs, LogJob, Shutdown, signalled};
use adapters::process::ProcessArgs;
use anyhow::Context;
use clap::Parser;
use model::clickid::ClickKeyRing;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::EventLog;

use crate::{Edge, EdgeArgs, EdgeConfig, run};

#[derive(Debug, Parser)]
#[command(name = "ingest", about = "The clickledger tracking edge")]
pub struct IngestArgs {
    /// Address of the tracking edge.
    #[arg(long, env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Click-id keys, `id:secret,...` (secrets of 32 bytes or more): the first signs new click
    /// ids, all are accepted (rotation).
    #[arg(long, env = "CLICKLEDGER_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: String,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// Serve the edge on the log `args` name until Ctrl-C or SIGTERM.
pub async fn start(args: IngestArgs) -> anyhow::Result<()> {
    let keys = ClickKeyRing::parse(&args.click_keys)?;
    let topics = args.log.topics();
    let config = args.edge.config(topics.clone(), keys);
    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let shutdown = signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let log = args.log.connect().await?;
    log.run_until(topics, Serve { listener, config }, shutdown).await
}

struct Serve {
    listener: tokio::net::TcpListener,
    config: EdgeConfig,
}

impl LogJob for Serve {
    async fn run<L: EventLog>(self, log: L, program: Arc<SharedProgram>, shutdown: Shutdown) -> anyhow::Result<()> {
        tracing::info!(address = %self.listener.local_addr()?, "tracking edge listening");
        run(self.listener, Edge::new(self.config, log, program), shutdown.wait()).await?;
        Ok(())
    }
}
