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
        clock: pipeline::wall_clock(),
    };
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let running = start(config).await?;
    let edge = running.edge;
    let api = running.api;
    let key = &running.admin_key;
    println!(
        "clickledger is running (data in {data}).

Try it:
  click     curl -i 'http://{edge}/c?offer=summer&member=tom'
  pixel     curl -i -b 'clk_v=<visitor from the click>' 'http://{edge}/px?offer=summer&order_id=A-1&amount=129.90'
  postback  curl -s 'http://{edge}/pb?code=JANE20&order_id=A-2&amount=80.00&token=acme-postback-secret-change-me'
  report    curl -s -H 'Authorization: Bearer {key}' 'http://{api}/v1/reports/conversions'
  summary   curl -s -H 'Authorization: Bearer {key}' 'http://{api}/v1/reports/summary?by=member'

Edge http://{edge}  API http://{api}  (admin key in {data}/admin-key). Ctrl-C stops.",
        data = args.data.display()
    );
    shutdown.wait().await;
    println!("stopping...");
    running.stop().await
}
