//! How the stages of clickledger run, whichever deployment they are in.
//!
//! - [`ports`]: the event log and the store, as traits (docs/DECISIONS.md, "Two ports, two
//!   adapters each"); `clickledger-adapters` implements them.
//! - [`stage`]: what a stage is — how it decodes an input, which key's state it changes, what
//!   it outputs; [`state`]: how that state is saved and restored.
//! - [`runner`]: runs a stage as a member of a consumer group, exactly under restarts and
//!   rebalances (poll / rebalance, decode, apply, write, checkpoint).
//! - [`journal`]: large states saved as a snapshot and a chain of changes.
//! - [`follow`]: the program log followed into memory by every process.
//! - [`lifecycle`]: shutdown and the clock, handed to every stage.

pub mod follow;
pub mod journal;
pub mod lifecycle;
pub mod metrics;
pub mod ports;
pub mod runner;
pub mod stage;
pub mod state;

pub use lifecycle::{Clock, Shutdown, wall_clock};
pub use runner::{RunnerConfig, StageError, run_stage};
pub use stage::{Context, Stage, StageOutput};
pub use state::{StageState, StateError, WholeState};
