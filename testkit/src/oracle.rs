//! The oracle: the pipeline computed in memory from the records it consumed — one partition,
//! no log, no store, no restarts — with the same stage logic. Tests compare what the deployed
//! pipeline stored with what this computes from the same inputs.

use std::collections::{BTreeMap, HashMap};

use attributor::AttributorStage;
use model::clickid::ClickKeyRing;
use model::events::ConversionRow;
use model::events::{CommissionLine, wire};
use model::ids::DerivedId;
use model::program::Program;
use model::time::Timestamp;
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};
use settler::caps::CapsStage;
use settler::ledger_stage::LedgerStage;
use settler::orders::OrderStage;
use settler::program_stage::ProgramStage;

/// What the pipeline should end with.
#[derive(Debug, Default)]
pub struct Expected {
    /// The latest revision of every commission line.
    pub lines: BTreeMap<DerivedId, CommissionLine>,
    /// The latest version of every conversion row, by conversion id.
    pub conversions: BTreeMap<String, ConversionRow>,
}

/// The records the pipeline consumed from outside itself: `events` (written by the edge), the
/// order changes on `orders` that the edge or the API wrote (refunds, cancels, decisions) and
/// the `program` topic.
#[derive(Debug, Default)]
pub struct Inputs {
    pub events: Vec<Delivered>,
    pub order_changes: Vec<Delivered>,
    pub program: Vec<Delivered>,
}

fn apply_all<S: Stage>(
    stage: &mut S,
    states: &mut HashMap<String, S::State>,
    program: &Program,
    now: Timestamp,
    records: impl IntoIterator<Item = (String, u64, Vec<u8>)>,
    out: &mut StageOutput,
) {
    for (key, offset, payload) in records {
        let delivered = Delivered { topic: "oracle".into(), partition: 0, offset, key: key.clone(), payload };
        let Ok(input) = stage.decode(&delivered) else {
            continue;
        };
        let context = Context { program, now, partition: 0, offset };
        let state = states.entry(key.clone()).or_default();
        stage.apply(&context, &key, state, input, out);
    }
}

fn own(records: &[Delivered]) -> Vec<(String, u64, Vec<u8>)> {
    records.iter().map(|record| (record.key.clone(), record.offset, record.payload.clone())).collect()
}

fn routed(records: &[Record], topic: &str) -> Vec<(String, u64, Vec<u8>)> {
    records
        .iter()
        .filter(|record| record.topic.as_ref() == topic)
        .enumerate()
        .map(|(index, record)| (record.key.clone(), index as u64, record.payload.clone()))
        .collect()
}

/// Compute what the pipeline should store for `inputs`, with time advanced to `now`.
pub fn expected(program: &Program, keys: &ClickKeyRing, topics: &Topics, inputs: &Inputs, now: Timestamp) -> Expected {
    let mut attributor = AttributorStage::new(topics.clone(), keys.clone());
    let mut visitors = HashMap::new();
    let mut attributed = StageOutput::default();
    apply_all(&mut attributor, &mut visitors, program, now, own(&inputs.events), &mut attributed);

    let mut program_stage = ProgramStage::new(topics.clone());
    let mut seen = HashMap::new();
    let mut recruited = StageOutput::default();
    apply_all(&mut program_stage, &mut seen, program, now, own(&inputs.program), &mut recruited);

    // Orders, ledgers and caps feed each other (a capped order's claim goes to its offer's
    // caps, whose verdict comes back through the order to the ledger): apply what each wrote
    // until nothing is left.
    let mut orders = OrderStage::new(topics.clone());
    let mut order_states = HashMap::new();
    let mut ledger = LedgerStage::new(topics.clone());
    let mut families = HashMap::new();
    let mut caps = CapsStage::new(topics.clone());
    let mut books = HashMap::new();
    let mut ordered = StageOutput::default();
    let mut settled = StageOutput::default();
    let mut order_records = routed(&attributed.records, &topics.orders);
    order_records.extend(own(&inputs.order_changes));
    let mut ledger_records = routed(&attributed.records, &topics.ledger);
    ledger_records.extend(routed(&recruited.records, &topics.ledger));
    let mut cap_records = Vec::new();
    while !(order_records.is_empty() && ledger_records.is_empty() && cap_records.is_empty()) {
        let mut out = StageOutput::default();
        apply_all(&mut orders, &mut order_states, program, now, std::mem::take(&mut order_records), &mut out);
        ledger_records.extend(routed(&out.records, &topics.ledger));
        ordered.store.conversions.extend(out.store.conversions);

        let mut out = StageOutput::default();
        apply_all(&mut ledger, &mut families, program, now, std::mem::take(&mut ledger_records), &mut out);
        cap_records.extend(routed(&out.records, &topics.caps));
        settled.store.lines.extend(out.store.lines);

        let mut out = StageOutput::default();
        apply_all(&mut caps, &mut books, program, now, std::mem::take(&mut cap_records), &mut out);
        order_records.extend(routed(&out.records, &topics.orders));
    }
    for (family, state) in &mut families {
        let context = Context { program, now, partition: 0, offset: 0 };
        ledger.tick(&context, family, state, &mut settled);
    }

    let mut expected = Expected::default();
    for line in settled.store.lines {
        let newer = expected.lines.get(&line.id).is_none_or(|kept| kept.revision <= line.revision);
        if newer {
            expected.lines.insert(line.id.clone(), line);
        }
    }
    for row in ordered.store.conversions {
        let id = row.conversion.id.to_string();
        let newer = expected.conversions.get(&id).is_none_or(|kept| kept.revision <= row.revision);
        if newer {
            expected.conversions.insert(id, row);
        }
    }
    expected
}

/// Decode helper for tests reading topics.
pub fn decode<T: serde::de::DeserializeOwned>(record: &Delivered) -> Option<T> {
    wire::decode(&record.payload).ok()
}
