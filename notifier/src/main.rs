//! `notifier`: partner postbacks and webhooks against Kafka and ClickHouse (or the embedded
//! files).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clickledger_notifier::cli::{NotifierArgs, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    start(NotifierArgs::parse()).await
}
