//! The attributor: gives each conversion to the member who earned it, or records why nobody
//! did (docs/DECISIONS.md, "Rejections are data").
//!
//! - [`attribution`]: the rules, pure (cookie window, first / last click, click ids, promo
//!   codes and their precedence, offer and member checks).
//! - [`stage`]: the stage on the `events` topic: visitor state, clicks passed on to the
//!   ledger, attributed and rejected conversions to `orders`. The runner (`pipeline::runner`) makes
//!   it exact under restarts and rebalances.
//! - [`cli`]: the `attributor` binary's settings and start.

pub mod attribution;
pub mod cli;
pub mod stage;

pub use stage::{AttributorStage, VisitorState};

use std::sync::Arc;

use model::clickid::ClickKeyRing;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::StageStore;
use pipeline::{RunnerConfig, StageError, run_stage};

/// Consumer group of the attributor, under the topic prefix (`clickledger.attributor`).
pub const GROUP: &str = "attributor";

/// Run the attributor stage until `shutdown`.
pub async fn run_attributor<L: EventLog, St: StageStore>(
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    topics: Topics,
    keys: ClickKeyRing,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StageError> {
    let config = RunnerConfig::new(topics.group(GROUP), vec![topics.events.clone()]);
    run_stage(AttributorStage::new(topics, keys), log, store, program, config, shutdown).await
}
