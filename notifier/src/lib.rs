//! The notifier: tells partners and systems what the pipeline recorded. Partner postbacks (URL
//! templates with macros) and signed webhooks, delivered at least once with retries, a
//! per-destination concurrency limit and a dead letter (docs/NOTIFICATIONS.md).
//!
//! - [`address`]: which destinations may be called (no loopback, private, link-local or
//!   metadata addresses unless the deployment allows them);
//! - [`send`]: one HTTP attempt, with timeouts, a small response limit and the outcome
//!   classified;
//! - [`resolve`]: a notice's deliveries: the webhooks and postbacks that fire on it;
//! - [`dispatch`]: attempts in the background, with a concurrency limit per destination host;
//! - [`stage`]: the stage on `notices`: the delivery log, retries, the dead letter;
//! - [`cli`]: the `notifier` binary's settings and start.

pub mod address;
pub mod cli;
pub mod dispatch;
pub mod metrics;
pub mod resolve;
pub mod send;
pub mod stage;

use std::sync::Arc;
use std::time::Duration;

use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::StageStore;
use pipeline::{RunnerConfig, StageError, run_stage};

pub use cli::NotifyArgs;
pub use stage::{NotifierStage, RetryPolicy};

/// Consumer group of the notifier, under the topic prefix (`clickledger.notifier`).
pub const GROUP: &str = "notifier";

/// Run the notifier stage until `shutdown`.
pub async fn run_notifier<L: EventLog, St: StageStore>(
    log: L,
    store: St,
    program: Arc<SharedProgram>,
    topics: Topics,
    settings: &NotifyArgs,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StageError> {
    metrics::register();
    let sender = send::Sender::new(settings.send_settings())
        .map_err(|error| pipeline::ports::store::StoreError::Fatal(format!("the notifier's HTTP client: {error}")))?;
    let dispatcher = dispatch::Dispatcher::new(sender, settings.concurrency);
    let mut config = RunnerConfig::new(topics.group(GROUP), vec![topics.notices.clone()]);
    // Finished attempts are recorded, and retries sent, at each tick.
    config.tick_every = Duration::from_millis(200);
    let stage = NotifierStage::new(dispatcher, settings.policy());
    run_stage(stage, log, store, program, config, shutdown).await
}
