//! `attributor`: the attributor stage against Kafka and ClickHouse (or the embedded files).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clickledger_attributor::cli::{AttributorArgs, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    start(AttributorArgs::parse()).await
}
