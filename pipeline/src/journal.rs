//! Saving a stage's state per key as rows of the store: whole, or as a snapshot and a chain of
//! changes (see [`StageState`]).
//!
//! Row keys: a state saved whole is the stage key itself (so is a journaled state while it is
//! small: below [`JOURNAL_FROM`] bytes it is cheaper to rewrite it than to chain changes); a
//! snapshot is `key␟s:<id>`, a change `key␟c:<parent>:<id>`, where `<parent>` is the id of
//! the snapshot or change it follows. A row's offset is the offset of the last input the state
//! reflected when it was written. Rows a snapshot replaces are deleted by writing them empty.
//!
//! Two workers can briefly write the same key while a partition moves (the old owner's save
//! still in flight when the new owner loads). Each then extends its own chain from the same
//! row, with its own fresh ids, so the rows form a tree and no worker's row replaces
//! another's. A restore takes the snapshot and the chain of changes that reach the highest
//! offset — a state some worker really had — and ignores the rest; the next snapshot deletes
//! every row the restore saw.

use std::collections::BTreeMap;

use crate::ports::store::StateRow;
use crate::state::{StageState, StateError};

/// Separates a stage key from the part of its state a row holds.
const PART: char = '\u{1f}';

/// A journaled state smaller than this is saved whole, under its key.
pub const JOURNAL_FROM: usize = 64 * 1024;

/// Changes are journaled until they add up to twice the last snapshot's size, or this,
/// whichever is larger; then the state is saved whole again. A state that only grows is then
/// written whole about 1.5 times its final size in all, and a restore reads at most three
/// times the state.
const MIN_JOURNAL_BYTES: usize = 256 * 1024;
const CHANGES_PER_SNAPSHOT: usize = 2;

/// And at most this many changes follow a snapshot (a restore reads them all).
const MAX_CHANGES: usize = 100;

/// What the runner knows of how a key's state is saved.
#[derive(Debug, Default, Clone)]
pub struct Journal {
    /// The row the next change follows; `None` until the state is saved journaled.
    head: Option<u64>,
    snapshot_bytes: usize,
    change_bytes: usize,
    /// Every row of the key the next snapshot replaces.
    rows: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Key,
    Snapshot(u64),
    Change { parent: u64, id: u64 },
}

fn parse_part(part: &str) -> Option<Part> {
    if let Some(id) = part.strip_prefix("s:") {
        return u64::from_str_radix(id, 16).ok().map(Part::Snapshot);
    }
    let (parent, id) = part.strip_prefix("c:")?.split_once(':')?;
    Some(Part::Change { parent: u64::from_str_radix(parent, 16).ok()?, id: u64::from_str_radix(id, 16).ok()? })
}

/// The stage key and part of a row key.
fn split(row_key: &str) -> (&str, Part) {
    if let Some((key, part)) = row_key.rsplit_once(PART)
        && let Some(part) = parse_part(part)
    {
        return (key, part);
    }
    (row_key, Part::Key)
}

fn fresh_id() -> u64 {
    ulid::Ulid::new().random() as u64
}

fn row_key(key: &str, part: &Part) -> String {
    match part {
        Part::Key => key.to_string(),
        Part::Snapshot(id) => format!("{key}{PART}s:{id:016x}"),
        Part::Change { parent, id } => format!("{key}{PART}c:{parent:016x}:{id:016x}"),
    }
}

/// The rows that save `state` of `key` as of input `offset`: the whole state, a change, or a
/// snapshot with deletions (empty rows) of the rows it replaces.
pub fn save<T: StageState>(
    stage: &str,
    partition: u32,
    key: &str,
    offset: u64,
    state: &mut T,
    journal: &mut Journal,
) -> Result<Vec<StateRow>, StateError> {
    let row =
        |row_key: String, state: Vec<u8>| StateRow { stage: stage.to_string(), partition, key: row_key, offset, state };
    let Some(changes) = state.take_changes()? else {
        return Ok(vec![row(key.to_string(), state.encode()?)]);
    };
    if let Some(parent) = journal.head
        && journal.change_bytes + changes.len()
            <= (journal.snapshot_bytes * CHANGES_PER_SNAPSHOT).max(MIN_JOURNAL_BYTES)
        && journal.rows.len() <= MAX_CHANGES
    {
        let id = fresh_id();
        let name = row_key(key, &Part::Change { parent, id });
        journal.head = Some(id);
        journal.change_bytes += changes.len();
        journal.rows.push(name.clone());
        return Ok(vec![row(name, changes)]);
    }
    let snapshot = state.encode()?;
    if snapshot.len() < JOURNAL_FROM {
        // Small: rewritten in place; any journal rows go.
        let key_row = key.to_string();
        let mut rows: Vec<StateRow> =
            journal.rows.drain(..).filter(|old| *old != key_row).map(|old| row(old, Vec::new())).collect();
        *journal = Journal { rows: vec![key_row.clone()], ..Journal::default() };
        rows.push(row(key_row, snapshot));
        return Ok(rows);
    }
    let id = fresh_id();
    let name = row_key(key, &Part::Snapshot(id));
    let mut rows: Vec<StateRow> = journal.rows.drain(..).map(|old| row(old, Vec::new())).collect();
    *journal = Journal { head: Some(id), snapshot_bytes: snapshot.len(), change_bytes: 0, rows: vec![name.clone()] };
    rows.push(row(name, snapshot));
    Ok(rows)
}

/// The rows that delete every saved row of `key` (written empty, as a snapshot deletes what it
/// replaces).
pub fn forget(stage: &str, partition: u32, key: &str, offset: u64, journal: &Journal) -> Vec<StateRow> {
    let mut rows: Vec<&str> = journal.rows.iter().map(String::as_str).collect();
    if !rows.contains(&key) {
        rows.push(key);
    }
    rows.into_iter()
        .map(|row_key| StateRow {
            stage: stage.to_string(),
            partition,
            key: row_key.to_string(),
            offset,
            state: Vec::new(),
        })
        .collect()
}

/// A key's state as restored from its rows.
#[derive(Debug)]
pub struct Restored<T> {
    pub key: String,
    pub offset: u64,
    pub state: T,
    pub journal: Journal,
}

/// Rebuild the states of a partition from its rows; a key whose rows cannot be read is
/// reported (the runner stops rather than apply its inputs to an empty state).
pub fn restore<T: StageState>(rows: Vec<StateRow>) -> (Vec<Restored<T>>, Vec<(String, StateError)>) {
    let mut by_key: BTreeMap<String, Vec<(Part, StateRow)>> = BTreeMap::new();
    for row in rows {
        if row.state.is_empty() {
            continue;
        }
        let (key, part) = split(&row.key);
        by_key.entry(key.to_string()).or_default().push((part, row));
    }
    let mut restored = Vec::with_capacity(by_key.len());
    let mut unreadable = Vec::new();
    for (key, rows) in by_key {
        match restore_key::<T>(&rows) {
            Ok((offset, state, journal)) => restored.push(Restored { key, offset, state, journal }),
            Err(error) => unreadable.push((key, error)),
        }
    }
    (restored, unreadable)
}

fn restore_key<T: StageState>(rows: &[(Part, StateRow)]) -> Result<(u64, T, Journal), StateError> {
    // The whole state or snapshot, and chain of changes, reaching the highest offset (then
    // the longest).
    let mut best: Option<((u64, usize), Vec<usize>)> = None;
    for (index, (part, row)) in rows.iter().enumerate() {
        let (reach, chain) = match part {
            Part::Key => ((row.offset, 0), Vec::new()),
            Part::Snapshot(id) => longest_chain(rows, *id, row.offset, 0),
            Part::Change { .. } => continue,
        };
        if best.as_ref().is_none_or(|(best_reach, _)| reach > *best_reach) {
            best = Some((reach, std::iter::once(index).chain(chain).collect()));
        }
    }
    let (_, chain) = best.ok_or_else(|| StateError::Decode("changes without a snapshot".to_string()))?;
    let (part, snapshot) = &rows[chain[0]];
    let mut state = T::decode(&snapshot.state)?;
    let mut journal = Journal {
        head: match part {
            Part::Snapshot(id) => Some(*id),
            _ => None,
        },
        snapshot_bytes: snapshot.state.len(),
        change_bytes: 0,
        rows: rows.iter().map(|(_, row)| row.key.clone()).collect(),
    };
    let mut offset = snapshot.offset;
    for &index in &chain[1..] {
        let (part, row) = &rows[index];
        state.apply_changes(&row.state)?;
        journal.change_bytes += row.state.len();
        offset = row.offset;
        if let Part::Change { id, .. } = part {
            journal.head = Some(*id);
        }
    }
    Ok((offset, state, journal))
}

/// From the row `id` (at `offset`): the (offset, length) the best chain of changes reaches,
/// and the indexes of its rows.
fn longest_chain(rows: &[(Part, StateRow)], id: u64, offset: u64, depth: usize) -> ((u64, usize), Vec<usize>) {
    let mut best = ((offset, depth), Vec::new());
    if depth > rows.len() {
        return best;
    }
    for (index, (part, row)) in rows.iter().enumerate() {
        if let Part::Change { parent, id: child } = part
            && *parent == id
        {
            let (reach, chain) = longest_chain(rows, *child, row.offset, depth + 1);
            if reach > best.0 {
                best = (reach, std::iter::once(index).chain(chain).collect());
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state journaling the numbers added to it.
    #[derive(Debug, Default, Clone, PartialEq)]
    struct Numbers {
        all: Vec<u32>,
        new: Vec<u32>,
    }

    impl Numbers {
        fn add(&mut self, n: u32) {
            self.all.push(n);
            self.new.push(n);
        }
    }

    impl StageState for Numbers {
        fn encode(&self) -> Result<Vec<u8>, StateError> {
            Ok(rmp_serde::to_vec(&self.all).unwrap())
        }

        fn decode(bytes: &[u8]) -> Result<Self, StateError> {
            let all = rmp_serde::from_slice(bytes).map_err(|error| StateError::Decode(error.to_string()))?;
            Ok(Self { all, new: Vec::new() })
        }

        fn take_changes(&mut self) -> Result<Option<Vec<u8>>, StateError> {
            Ok(Some(rmp_serde::to_vec(&std::mem::take(&mut self.new)).unwrap()))
        }

        fn apply_changes(&mut self, changes: &[u8]) -> Result<(), StateError> {
            let added: Vec<u32> =
                rmp_serde::from_slice(changes).map_err(|error| StateError::Decode(error.to_string()))?;
            self.all.extend(added);
            Ok(())
        }
    }

    /// The store's view: rows by key, empty rows deleting.
    #[derive(Default)]
    struct Table(BTreeMap<String, StateRow>);

    impl Table {
        fn write(&mut self, rows: Vec<StateRow>) {
            for row in rows {
                if row.state.is_empty() {
                    self.0.remove(&row.key);
                } else {
                    self.0.insert(row.key.clone(), row);
                }
            }
        }

        fn rows(&self) -> Vec<StateRow> {
            self.0.values().cloned().collect()
        }
    }

    fn restore_one(table: &Table) -> Restored<Numbers> {
        let (mut restored, unreadable) = restore::<Numbers>(table.rows());
        assert!(unreadable.is_empty(), "{unreadable:?}");
        assert_eq!(restored.len(), 1);
        restored.remove(0)
    }

    #[test]
    fn a_journaled_state_saves_changes_then_a_snapshot_that_replaces_them() {
        let mut table = Table::default();
        let (mut state, mut journal) = (Numbers::default(), Journal::default());
        let mut offset = 0;
        let mut saves = Vec::new();
        for round in 0..200u32 {
            for n in 0..1_000 {
                state.add(round * 1_000 + n);
            }
            offset += 1_000;
            let rows = save("s", 0, "family", offset, &mut state, &mut journal).unwrap();
            saves.push(rows.iter().filter(|row| !row.state.is_empty()).count());
            table.write(rows);
            let restored = restore_one(&table);
            assert_eq!(restored.offset, offset);
            assert_eq!(restored.state.all, state.all, "after round {round}");
        }
        // Mostly single change rows; a snapshot now and then, and never many rows at once.
        let snapshots = table.0.keys().filter(|key| key.contains("\u{1f}s:")).count();
        assert_eq!(snapshots, 1, "one snapshot left: {:?}", table.0.keys().collect::<Vec<_>>());
        assert!(table.0.len() < 100, "{} rows", table.0.len());
        assert!(saves.iter().all(|rows| *rows == 1));
    }

    /// A state past the size where it is journaled.
    fn large() -> Numbers {
        Numbers { all: (0..JOURNAL_FROM as u32).collect(), new: Vec::new() }
    }

    #[test]
    fn a_restored_state_goes_on_journaling_from_where_it_was() {
        let mut table = Table::default();
        let (mut state, mut journal) = (large(), Journal::default());
        for n in 0..5 {
            state.add(n);
            table.write(save("s", 0, "k", u64::from(n), &mut state, &mut journal).unwrap());
        }
        let mut restored = restore_one(&table);
        restored.state.add(99);
        table.write(save("s", 0, "k", 7, &mut restored.state, &mut restored.journal).unwrap());
        assert_eq!(table.0.len(), 6, "a snapshot and five changes");
        let again = restore_one(&table);
        assert_eq!(again.state.all, state.all.iter().copied().chain([99]).collect::<Vec<_>>());
        assert_eq!(again.offset, 7);
    }

    #[test]
    fn a_state_saved_by_two_workers_restores_the_chain_that_got_furthest() {
        let mut table = Table::default();
        let (mut state, mut journal) = (large(), Journal::default());
        state.add(1);
        table.write(save("s", 0, "k", 1, &mut state, &mut journal).unwrap());
        // Both workers continue from the same rows.
        let (mut old, mut old_journal) = (state.clone(), journal.clone());
        state.add(2);
        table.write(save("s", 0, "k", 2, &mut state, &mut journal).unwrap());
        state.add(3);
        table.write(save("s", 0, "k", 3, &mut state, &mut journal).unwrap());
        old.add(20);
        table.write(save("s", 0, "k", 2, &mut old, &mut old_journal).unwrap());
        let restored = restore_one(&table);
        assert_eq!((restored.offset, &restored.state.all), (3, &state.all));
        assert_eq!(table.0.len(), 4, "the snapshot, both chains");
    }

    #[test]
    fn a_small_state_is_saved_whole_under_its_key_and_a_large_one_journaled() {
        let mut table = Table::default();
        // A state saved whole before it was journaled.
        let before = Numbers { all: vec![7, 8], new: Vec::new() };
        table.write(vec![StateRow {
            stage: "s".into(),
            partition: 0,
            key: "k".into(),
            offset: 10,
            state: before.encode().unwrap(),
        }]);
        let mut restored = restore_one(&table);
        assert_eq!(restored.state.all, vec![7, 8]);
        restored.state.add(9);
        table.write(save("s", 0, "k", 11, &mut restored.state, &mut restored.journal).unwrap());
        assert_eq!(table.0.keys().collect::<Vec<_>>(), vec!["k"], "still small: rewritten in place");
        assert_eq!(restore_one(&table).state.all, vec![7, 8, 9]);
        // Grown large: a snapshot replaces the key row, then changes follow it.
        let mut state = restore_one(&table);
        for n in 0..JOURNAL_FROM as u32 {
            state.state.add(n);
        }
        table.write(save("s", 0, "k", 12, &mut state.state, &mut state.journal).unwrap());
        state.state.add(1);
        table.write(save("s", 0, "k", 13, &mut state.state, &mut state.journal).unwrap());
        let keys: Vec<&String> = table.0.keys().collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.iter().all(|key| key.starts_with("k\u{1f}")), "{keys:?}");
        let again = restore_one(&table);
        assert_eq!((again.offset, &again.state.all), (13, &state.state.all));
    }

    #[test]
    fn keys_with_the_separator_but_no_part_are_plain_keys() {
        assert_eq!(split("a\u{1f}b"), ("a\u{1f}b", Part::Key));
        assert_eq!(split("a\u{1f}s:00000000000000ff"), ("a", Part::Snapshot(255)));
        assert_eq!(split("a\u{1f}c:0:1"), ("a", Part::Change { parent: 0, id: 1 }));
        assert_eq!(split("a\u{1f}c:0"), ("a\u{1f}c:0", Part::Key));
    }
}
