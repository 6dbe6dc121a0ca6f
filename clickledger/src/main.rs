//! `clickledger`: everything in one process on embedded SQLite files. With no arguments it
//! keeps its data under `./data`, loads the sample program, prints the URLs to try, and runs
//! until Ctrl-C.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clickledger::cli::AppArgs;
use clickledger::{AppConfig, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    let args = AppArgs::parse();
    let config = AppConfig {
        data: args.data.clone(),
        listen: args.listen,
        api_listen: args.api_listen,
        program: args.program,
        click_keys: args.click_keys,
        admin_key: args.admin_key,
        edge: args.edge,
        api_limits: args.api_limits.limits(),
        notify: args.notify,
        clock: pipeline::wall_clock(),
    };
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let running = start(config).await?;
    println!("{}", running.banner());
    shutdown.wait().await;
    println!("stopping...");
    running.stop().await
}
