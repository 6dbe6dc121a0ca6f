//! Decoding a poll's records and applying them, and what time made due, to their keys' states.

use std::collections::BTreeMap;
use std::time::Instant;

use model::program::Program;
use model::time::Timestamp;

use super::partitions::{KeyState, Partitions};
use crate::ports::log::{Delivered, PartitionId};
use crate::stage::{Context, OutputSizes, Stage, StageOutput};

/// A poll's records, decoded.
pub(super) struct Decoded<I> {
    pub(super) inputs: Vec<(Delivered, I)>,
    /// Records that did not decode: skipped, and committed past.
    pub(super) undecodable: Vec<(PartitionId, u64)>,
    /// The highest program version an input was made with.
    pub(super) needed_version: u64,
}

pub(super) fn decode<S: Stage>(stage: &S, records: Vec<Delivered>) -> Decoded<S::Input> {
    let name = stage.name();
    let mut decoded = Decoded { inputs: Vec::with_capacity(records.len()), undecodable: Vec::new(), needed_version: 0 };
    for record in records {
        match stage.decode(&record) {
            Ok(input) => {
                decoded.needed_version = decoded.needed_version.max(stage.program_version(&input));
                decoded.inputs.push((record, input));
            }
            Err(error) => {
                metrics::counter!(crate::metrics::UNDECODABLE, "stage" => name).increment(1);
                tracing::error!(stage = name, offset = record.offset, %error, "skipping an undecodable record");
                decoded.undecodable.push((record.partition_id(), record.offset));
            }
        }
    }
    decoded
}

/// What applying a batch produced.
pub(super) struct Applied {
    pub(super) out: StageOutput,
    /// Per input partition, the offset of the batch's last input (applied, skipped as already
    /// reflected, or undecodable).
    pub(super) processed: BTreeMap<PartitionId, u64>,
    /// When the edge received the inputs that want their lag measured.
    pub(super) received: Vec<Timestamp>,
    pub(super) applied: usize,
    pub(super) started: Instant,
}

/// Apply `decoded` to the states of `partitions`, then (with `tick_due`) what time made due.
/// An input at or below its key's offset is skipped: the state reflects it already.
pub(super) fn apply<S: Stage>(
    stage: &mut S,
    program: &Program,
    now: Timestamp,
    partitions: &mut Partitions<S::State>,
    decoded: Decoded<S::Input>,
    tick_due: bool,
    sized_like: &OutputSizes,
) -> Applied {
    let mut applied = Applied {
        out: StageOutput::sized_like(sized_like),
        processed: BTreeMap::new(),
        received: Vec::new(),
        applied: decoded.inputs.len(),
        started: Instant::now(),
    };
    for (record, input) in decoded.inputs {
        let partition_id = record.partition_id();
        let Some(partition) = partitions.get_mut(&partition_id) else {
            continue;
        };
        match applied.processed.get_mut(&partition_id) {
            Some(last) => *last = record.offset,
            None => {
                applied.processed.insert(partition_id, record.offset);
            }
        }
        if !partition.keys.contains_key(&record.key) {
            partition.keys.insert(record.key.clone(), KeyState::new());
        }
        let Some(entry) = partition.keys.get_mut(&record.key) else {
            continue;
        };
        if entry.offset.is_some_and(|offset| record.offset <= offset) {
            continue;
        }
        let context = Context { program, now, partition: record.partition, offset: record.offset };
        applied.received.extend(stage.received_at(&input));
        let known = entry.offset.is_some();
        if stage.apply(&context, &record.key, &mut entry.state, input, &mut applied.out) {
            entry.offset = Some(record.offset);
            if !entry.unsaved {
                entry.unsaved = true;
                partition.unsaved.push(record.key.clone());
            }
        } else if known {
            entry.offset = Some(record.offset);
        } else {
            // A key whose state never changed needs no memory (a code-only conversion).
            partition.keys.remove(&record.key);
        }
    }
    if tick_due {
        tick(stage, program, now, partitions, &mut applied.out);
    }
    // A skipped record is behind us too: commit past it, or its partition never catches up.
    for (partition_id, offset) in decoded.undecodable {
        if partitions.contains_key(&partition_id) {
            let last = applied.processed.entry(partition_id).or_insert(offset);
            *last = (*last).max(offset);
        }
    }
    applied
}

/// Give every key whose state wants it the chance to do what time made due.
fn tick<S: Stage>(
    stage: &mut S,
    program: &Program,
    now: Timestamp,
    partitions: &mut Partitions<S::State>,
    out: &mut StageOutput,
) {
    if !stage.begin_tick(now) {
        return;
    }
    for (partition_id, partition) in partitions.iter_mut() {
        for (key, entry) in &mut partition.keys {
            if !stage.wants_tick(&entry.state) {
                continue;
            }
            let context =
                Context { program, now, partition: partition_id.partition, offset: entry.offset.unwrap_or(0) };
            if stage.tick(&context, key, &mut entry.state, out) && !entry.unsaved {
                entry.unsaved = true;
                partition.unsaved.push(key.clone());
            }
        }
    }
}
