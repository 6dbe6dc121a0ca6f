//! `clickledger`: everything in one process on embedded SQLite files. With no arguments it
//! keeps its data under `./data`, loads the sample program, prints the URLs to try, and runs
//! until Ctrl-C.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use clickledger::{AppConfig, start};

#[derive(Debug, Parser)]
#[command(about = "clickledger: affiliate tracking and commissions in one process")]
struct Args {
    /// Where the log, the store and the generated keys live.
    #[arg(long, env = "CLICKLEDGER_DATA", default_value = "data")]
    data: PathBuf,
    /// The tracking edge (clicks, pixels, postbacks).
    #[arg(long, env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The program and report API.
    #[arg(long, env = "CLICKLEDGER_API_LISTEN", default_value = "127.0.0.1:8081")]
    api_listen: SocketAddr,
    /// A program file (TOML) to load; without it the sample program is loaded into a new data
    /// directory.
    #[arg(long, env = "CLICKLEDGER_PROGRAM")]
    program: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::memory::small_pages();
    model::events::wire::check_version_setting().map_err(anyhow::Error::msg)?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = AppConfig {
        data: args.data.clone(),
        listen: args.listen,
        api_listen: args.api_listen,
        program: args.program,
        click_keys: std::env::var("CLICKLEDGER_CLICK_KEYS").ok(),
        admin_key: std::env::var("CLICKLEDGER_ADMIN_KEY").ok(),
        clock: pipeline::wall_clock(),
    };
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
    adapters::deployment::shutdown_signal().await;
    println!("stopping...");
    running.stop().await
}
