//! What a stage is: how it decodes an input, which state it touches, what it outputs. The
//! runner ([`crate::runner`]) does the rest: consuming, restoring and saving state, writing
//! outputs, committing offsets.

use model::events::wire::WireError;
use model::program::Program;
use model::time::Timestamp;

use crate::ports::log::{Delivered, Record};
use crate::ports::store::StoreBatch;
use crate::state::StageState;

/// What applying inputs produced: records for the log and rows for the store.
#[derive(Debug, Default)]
pub struct StageOutput {
    pub records: Vec<Record>,
    pub store: StoreBatch,
}

impl StageOutput {
    /// Empty, with room for as much as `previous` held: a batch's outputs are about the size
    /// of the last one's, and vectors grown by doubling from nothing every batch were 2–3% of
    /// the settler's time.
    pub(crate) fn sized_like(previous: &OutputSizes) -> Self {
        let store = StoreBatch {
            clicks: Vec::with_capacity(previous.clicks),
            conversions: Vec::with_capacity(previous.conversions),
            lines: Vec::with_capacity(previous.lines),
            ..StoreBatch::default()
        };
        Self { records: Vec::with_capacity(previous.records), store }
    }

    pub(crate) fn sizes(&self) -> OutputSizes {
        OutputSizes {
            records: self.records.len(),
            clicks: self.store.clicks.len(),
            conversions: self.store.conversions.len(),
            lines: self.store.lines.len(),
        }
    }
}

/// How many outputs of each kind a batch produced.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OutputSizes {
    records: usize,
    clicks: usize,
    conversions: usize,
    lines: usize,
}

/// What a stage sees while applying an input.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub program: &'a Program,
    pub now: Timestamp,
    pub partition: u32,
    pub offset: u64,
}

/// The logic of one stage; the runner does the rest.
pub trait Stage: Send + 'static {
    type Input: Send;
    type State: StageState;

    /// The stage's name, in the state table.
    fn name(&self) -> &'static str;

    fn decode(&self, record: &Delivered) -> Result<Self::Input, WireError>;

    /// The program version the input was made with (0: any).
    fn program_version(&self, _input: &Self::Input) -> u64 {
        0
    }

    /// When the edge received the event behind the input, if the stage wants its lag measured:
    /// the runner records `clickledger_stage_lag_seconds` from then until the outputs the input
    /// produced are durable.
    fn received_at(&self, _input: &Self::Input) -> Option<Timestamp> {
        None
    }

    /// Apply one input to its key's state; true if the state changed.
    fn apply(
        &mut self,
        context: &Context<'_>,
        key: &str,
        state: &mut Self::State,
        input: Self::Input,
        out: &mut StageOutput,
    ) -> bool;

    /// Called before a tick goes over the keys: false skips the keys this time (a stage whose
    /// time-driven work is rare need not be asked about every key every second).
    fn begin_tick(&mut self, _now: Timestamp) -> bool {
        true
    }

    /// Whether a key's state has work that time alone makes due.
    fn wants_tick(&self, _state: &Self::State) -> bool {
        false
    }

    /// Whether a key's state holds nothing worth keeping: at the next checkpoint its saved rows
    /// are deleted and the runner forgets the key, so memory and the store hold only keys that
    /// can still matter. An input for the key later starts from an empty state.
    fn is_forgettable(&self, _state: &Self::State) -> bool {
        false
    }

    /// Do what time made due for one key; true if the state changed.
    fn tick(&mut self, _context: &Context<'_>, _key: &str, _state: &mut Self::State, _out: &mut StageOutput) -> bool {
        false
    }
}
