//! `ingest`: the tracking edge on its own, against Kafka or an embedded log file.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use clickledger_ingest::cli::{IngestArgs, start};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    adapters::process::init_process()?;
    start(IngestArgs::parse()).await
}
