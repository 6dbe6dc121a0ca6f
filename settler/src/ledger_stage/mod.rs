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
use model::events::{LedgerEvent, Notice, NoticeEvent, NoticeKind, wire};
use model::{Span, Timestamp};
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};

use crate::commission::{Ledger, LedgerNotice, Outputs};

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

    /// Rows for the store; claims on caps to `caps`, keyed by offer; notices to `notices`,
    /// keyed by their id.
    fn output(&self, context: &Context<'_>, ledger: &Ledger, outputs: Outputs, out: &mut StageOutput) {
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
        for notice in outputs.notices {
            if let Some(notice) = notice_of(context, ledger, notice) {
                out.records.push(Record {
                    topic: self.topics.notices.clone(),
                    key: notice.id.to_string(),
                    payload: wire::encode_compact(&NoticeEvent::Notice(notice)),
                });
            }
        }
    }
}

/// The notice of what the ledger recorded, with the line, bill and conversion it is about as
/// they are now; `None` when no postback or webhook fires on its kind.
fn notice_of(context: &Context<'_>, ledger: &Ledger, notice: LedgerNotice) -> Option<Notice> {
    let conversion_of = |order_key: Option<&model::OrderKey>| {
        order_key.and_then(|key| ledger.order(key)).and_then(|book| book.notice.as_deref()).cloned()
    };
    let (kind, subject, conversion, commission, bill) = match notice {
        LedgerNotice::Line { kind, line } => {
            let line = ledger.line(&line)?.clone();
            (kind, line.id.to_string(), conversion_of(line.order_key.as_ref()), Some(line), None)
        }
        LedgerNotice::Attributed { order_key } => {
            let book = ledger.order(&order_key)?;
            let conversion = book.notice.as_deref()?.clone();
            let first_tier = book.lines.iter().filter_map(|id| ledger.line(id)).find(|line| line.tier == 1).cloned();
            (NoticeKind::ConversionAttributed, conversion.id.to_string(), Some(conversion), first_tier, None)
        }
        LedgerNotice::Bill { kind, bill } => {
            let bill = ledger.bill(&bill)?.clone();
            (kind, bill.id.to_string(), None, None, Some(bill))
        }
    };
    if !context.program.notifies(kind) {
        return None;
    }
    Some(Notice { id: Notice::id_for(kind, &subject), kind, at: context.now, conversion, commission, bill })
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
        self.output(context, ledger, outputs, out);
        true
    }

    fn wants_tick(&self, ledger: &Ledger) -> bool {
        ledger.has_timed_work() || ledger.has_click_windows()
    }

    fn tick(&mut self, context: &Context<'_>, key: &str, ledger: &mut Ledger, out: &mut StageOutput) -> bool {
        let outputs = ledger.advance(context.program, context.now);
        let mut changed = !outputs.is_empty();
        self.output(context, ledger, outputs, out);
        let forget_due = self.forgot_at.get(key).is_none_or(|at| at.elapsed() >= FORGET_EVERY);
        if forget_due && ledger.has_click_windows() {
            self.forgot_at.insert(key.to_string(), Instant::now());
            changed |= ledger.forget_click_windows(context.program, FORGET_WINDOWS_AFTER);
        }
        changed
    }
}
