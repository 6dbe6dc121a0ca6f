//! The commission engine: pure, no I/O, no clock.
//!
//! - [`rules`]: what one payout rule pays for a click or a conversion (CPC / CPA / CPS with
//!   volume tiers, CPA + CPS, order-amount bands, product rules, accumulated monthly tiers).
//! - [`tiers`]: 2nd and 3rd tier shares of a 1st-tier amount.
//! - [`ledger`]: the state machine over ledger events, split by what happens to it: clicks,
//!   orders and pricing, refunds and decisions, subscriptions, members, bills.
//! - `windows`: unique-click windows, nested by offer and member in memory.
//! - [`evaluate`]: pricing a conversion for a member without touching any state, the unit
//!   the engine benchmark measures.

pub mod evaluate;
pub mod ledger;
pub mod rules;
pub mod sequence;
pub mod tiers;
mod tracked;
mod windows;

pub use evaluate::{PricedLine, evaluate_conversion};
pub use ledger::{Counter, Ledger, LedgerNotice, LineState, OrderBook, Outputs, Pricing};
