//! The ledger stage: the commission engine run per family of members, on `ledger` (keyed by
//! the family root, so one worker owns a member's counts, lines and bills). Writes clicks (with
//! whether they counted as unique), commission lines, bills and subscription accounts, and
//! credits subscriptions and ends hold periods as time passes; sends what capped orders claim
//! of their offer's caps to `caps`.
//!
//! - `saved`: how a family's ledger is saved and read back.

mod saved;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use model::events::ClickRow;
use model::events::{LedgerEvent, wire};
use model::{Span, Timestamp};
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};

use crate::commission::{Ledger, Outputs};

/// Unique-click windows are forgotten this long after they end (by the newest click of the
/// family), so a click that arrives this late still meets them.
const FORGET_WINDOWS_AFTER: Span = Span::hours(1);

/// How often a family's ended windows are looked for (a pass reads all of them).
const FORGET_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct LedgerStage {
    topics: Topics,
    /// When each family's ended windows were last looked for.
    forgot_at: HashMap<String, Instant>,
}

impl LedgerStage {
    pub fn new(topics: Topics) -> Self {
        Self { topics, forgot_at: HashMap::new() }
    }

    /// Rows for the store; claims on caps to `caps`, keyed by offer.
    fn output(&self, outputs: Outputs, out: &mut StageOutput) {
        out.store.lines.extend(outputs.lines);
        out.store.bills.extend(outputs.bills);
        out.store.subscriptions.extend(outputs.subscriptions);
        for claim in outputs.claims {
            out.records.push(Record {
                topic: self.topics.caps.clone(),
                key: claim.offer.to_string(),
                payload: wire::encode_compact(&claim),
            });
        }
    }
}

impl Stage for LedgerStage {
    type Input = LedgerEvent;
    type State = Ledger;

    fn name(&self) -> &'static str {
        "ledger"
    }

    fn decode(&self, record: &Delivered) -> Result<LedgerEvent, wire::WireError> {
        wire::decode(&record.payload)
    }

    fn program_version(&self, input: &LedgerEvent) -> u64 {
        match input {
            LedgerEvent::Click(click) => click.program,
            LedgerEvent::Order(order) => order.conversion.program,
            _ => 0,
        }
    }

    fn received_at(&self, input: &LedgerEvent) -> Option<Timestamp> {
        match input {
            LedgerEvent::Click(click) => Some(click.received_at),
            LedgerEvent::Order(order) => Some(order.conversion.received_at),
            _ => None,
        }
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        ledger: &mut Ledger,
        event: LedgerEvent,
        out: &mut StageOutput,
    ) -> bool {
        let outputs = ledger.apply(context.program, &event);
        if let LedgerEvent::Click(click) = event {
            let unique = outputs.clicks.iter().any(|(id, unique)| *id == click.id && *unique);
            out.store.clicks.push(ClickRow { click, unique });
        }
        self.output(outputs, out);
        true
    }

    fn wants_tick(&self, ledger: &Ledger) -> bool {
        ledger.has_timed_work() || ledger.has_click_windows()
    }

    fn tick(&mut self, context: &Context<'_>, key: &str, ledger: &mut Ledger, out: &mut StageOutput) -> bool {
        let outputs = ledger.advance(context.program, context.now);
        let mut changed = !outputs.is_empty();
        self.output(outputs, out);
        let forget_due = self.forgot_at.get(key).is_none_or(|at| at.elapsed() >= FORGET_EVERY);
        if forget_due && ledger.has_click_windows() {
            self.forgot_at.insert(key.to_string(), Instant::now());
            changed |= ledger.forget_click_windows(context.program, FORGET_WINDOWS_AFTER);
        }
        changed
    }
}
