//! The settler: from attributed conversions and clicks to commission lines, bills and
//! reports.
//!
//! - [`commission`]: the commission engine, a pure module (no I/O, no clock) holding every
//!   rule of the seed documents and DESIGN's "Rules the seeds leave open".
//! - [`orders`]: the order stage on `orders`: the winning conversion of each order, duplicates,
//!   rejections, and refunds / cancels / decisions routed to the winner's family.
//! - [`ledger_stage`]: the ledger stage on `ledger`: the engine per family, writing lines,
//!   bills, subscription accounts and clicks to the store.
//! - [`program_stage`]: the program history in the store, and recruiting commissions.
//! - [`oracle`]: the whole pipeline computed in memory from a set of events, to check the
//!   deployed pipeline against.

pub mod commission;
pub mod ledger_stage;
pub mod orders;
pub mod program_stage;

use std::sync::Arc;

use model::follow::SharedProgram;
use model::ports::log::{EventLog, Topics};
use model::ports::store::Store;
use model::stage::{Clock, RunnerConfig, Shutdown, StageError, run_stage};

/// Consumer groups of the settler's stages, under the topic prefix.
pub const ORDERS_GROUP: &str = "settler-orders";
pub const LEDGER_GROUP: &str = "settler-ledger";
pub const PROGRAM_GROUP: &str = "settler-program";

/// Run the settler's three stages until `shutdown`. `clock` drives subscription credits and
/// hold periods (tests give their own).
pub async fn run_settler<L: EventLog, St: Store>(
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    topics: Topics,
    clock: Clock,
    shutdown: Shutdown,
) -> Result<(), StageError> {
    let config = |group: &str, topic: &Arc<str>| {
        let mut config = RunnerConfig::new(topics.group(group), vec![topic.clone()]);
        config.clock = clock.clone();
        config
    };
    let orders = run_stage(
        orders::OrderStage::new(topics.clone()),
        log.clone(),
        store.clone(),
        program.clone(),
        config(ORDERS_GROUP, &topics.orders),
        shutdown.clone().wait(),
    );
    let ledger = run_stage(
        ledger_stage::LedgerStage::default(),
        log.clone(),
        store.clone(),
        program.clone(),
        config(LEDGER_GROUP, &topics.ledger),
        shutdown.clone().wait(),
    );
    let history = run_stage(
        program_stage::ProgramStage::new(topics.clone()),
        log,
        store,
        program,
        config(PROGRAM_GROUP, &topics.program),
        shutdown.wait(),
    );
    tokio::try_join!(orders, ledger, history).map(|_| ())
}
