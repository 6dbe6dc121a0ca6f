//! The attributor: gives each conversion to the member who earned it, or records why nobody
//! did (DESIGN decision 10).
//!
//! - [`attribution`]: the rules, pure (cookie window, first / last click, click ids, promo
//!   codes and their precedence, offer and member checks).
//! - [`stage`]: the stage on the `events` topic: visitor state, clicks passed on to the
//!   ledger, attributed and rejected conversions to `orders`. The runner (`model::stage`) makes
//!   it exact under restarts and rebalances.

pub mod attribution;
pub mod stage;

pub use stage::{AttributorStage, VisitorState};
