//! `settler`: the order, ledger and program stages against Kafka and ClickHouse (or the
//! embedded files).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clickledger_settler::cli::{SettlerArgs, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    start(SettlerArgs::parse()).await
}
