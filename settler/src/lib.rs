//! The settler: from attributed conversions and clicks to commission lines, bills and
//! reports.
//!
//! - [`commission`]: the commission engine, a pure module (no I/O, no clock) holding every
//!   rule of the seed documents and those decided where they are silent (docs/RULES.md).
//! - [`orders`]: the order stage on `orders`: the winning conversion of each order, duplicates,
//!   rejections, and refunds / cancels / decisions routed to the winner's family.
//! - [`ledger_stage`]: the ledger stage on `ledger`: the engine per family, writing lines,
//!   bills, subscription accounts and clicks to the store.
//! - [`caps`]: the caps stage on `caps`: every offer's cap counters, one owner each.
//! - [`program_stage`]: the program history in the store, and recruiting commissions.
//! - [`cli`]: the `settler` binary's settings and start.

pub mod caps;
pub mod cli;
pub mod commission;
pub mod ledger_stage;
pub mod orders;
pub mod program_stage;

use std::sync::Arc;

use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::{StageStore, StoreError};
use pipeline::{Clock, RunnerConfig, Shutdown, StageError, run_stage};

/// Consumer groups of the settler's stages, under the topic prefix.
pub const ORDERS_GROUP: &str = "settler-orders";
pub const LEDGER_GROUP: &str = "settler-ledger";
pub const PROGRAM_GROUP: &str = "settler-program";
pub const CAPS_GROUP: &str = "settler-caps";

/// How many instances of the order and ledger stages a process runs by default: one per core.
pub fn instances_per_process() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Run the settler's stages until `shutdown`: `instances` members of the order, ledger and caps
/// stages' consumer groups (each on its own task, so a process uses as many cores as it has
/// partitions to give them) and the program stage. `clock` drives subscription credits and
/// hold periods (tests give their own).
pub async fn run_settler<L: EventLog, St: StageStore>(
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    topics: Topics,
    clock: Clock,
    instances: usize,
    shutdown: Shutdown,
) -> Result<(), StageError> {
    let instances = instances.max(1);
    // The instances of a group start polling together (`RunnerConfig::start_together`).
    let together = || Some(Arc::new(tokio::sync::Barrier::new(instances)));
    let (orders_start, ledger_start, caps_start) = (together(), together(), together());
    let config = |group: &str, topic: &Arc<str>, together: &Option<Arc<tokio::sync::Barrier>>| {
        let mut config = RunnerConfig::new(topics.group(group), vec![topic.clone()]);
        config.clock = clock.clone();
        config.start_together = together.clone();
        config
    };
    // Dropped on the first error, which stops the other stages as a crash would.
    let mut stages = tokio::task::JoinSet::new();
    for _ in 0..instances {
        stages.spawn(run_stage(
            orders::OrderStage::new(topics.clone()),
            log.clone(),
            store.clone(),
            program.clone(),
            config(ORDERS_GROUP, &topics.orders, &orders_start),
            shutdown.clone().wait(),
        ));
        stages.spawn(run_stage(
            ledger_stage::LedgerStage::new(topics.clone()),
            log.clone(),
            store.clone(),
            program.clone(),
            config(LEDGER_GROUP, &topics.ledger, &ledger_start),
            shutdown.clone().wait(),
        ));
        stages.spawn(run_stage(
            caps::CapsStage::new(topics.clone()),
            log.clone(),
            store.clone(),
            program.clone(),
            config(CAPS_GROUP, &topics.caps, &caps_start),
            shutdown.clone().wait(),
        ));
    }
    stages.spawn(run_stage(
        program_stage::ProgramStage::new(topics.clone()),
        log,
        store,
        program,
        config(PROGRAM_GROUP, &topics.program, &None),
        shutdown.wait(),
    ));
    while let Some(stage) = stages.join_next().await {
        stage.map_err(|error| StoreError::Fatal(format!("a settler stage failed: {error}")))??;
    }
    Ok(())
}
