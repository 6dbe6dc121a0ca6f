//! The store against the oracle: what each line pays, compared exactly, waiting for the
//! pipeline to catch up.

use std::collections::BTreeMap;
use std::time::Duration;

use model::events::CommissionLine;
use model::reports::ReportQuery;
use model::time::Timestamp;
use pipeline::ports::log::Topics;
use pipeline::ports::store::ReportStore;

use crate::oracle::{self, Expected, Inputs};
use crate::setup::keys;
use crate::topics::program_of;

/// What each line pays, comparable across runs (revisions may differ, results may not).
/// Withdrawn lines are left out: they are the lines of a conversion that won its order only
/// until an earlier one of the same order arrived, so whether they exist depends on arrival
/// order (docs/ARCHITECTURE.md, "Canonical order"); they pay nothing.
pub fn settled(
    lines: &BTreeMap<model::DerivedId, CommissionLine>,
) -> BTreeMap<String, (String, u8, String, String, String)> {
    lines
        .iter()
        .filter(|(_, line)| line.status != model::events::LineStatus::Withdrawn)
        .map(|(id, line)| {
            (
                id.to_string(),
                (
                    line.member.to_string(),
                    line.tier,
                    line.amount.to_string(),
                    line.status.as_str().to_string(),
                    line.kind.as_str().to_string(),
                ),
            )
        })
        .collect()
}

pub async fn stored_lines<St: ReportStore>(store: &St) -> BTreeMap<model::DerivedId, CommissionLine> {
    store.lines(&ReportQuery::default()).await.unwrap().into_iter().map(|line| (line.id.clone(), line)).collect()
}

/// Lines that differ from the oracle's after the wait: a report of each difference, with the
/// stored and the expected line in full, and the orders they belong to.
#[derive(Debug)]
pub struct Mismatch {
    pub report: String,
    pub order_keys: std::collections::BTreeSet<String>,
}

/// Wait until the store's lines are the oracle's; on timeout, the differences.
pub async fn wait_for_store<St: ReportStore>(
    store: &St,
    expected: &Expected,
    patience: Duration,
) -> Result<(), Mismatch> {
    let want = settled(&expected.lines);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let stored = stored_lines(store).await;
        let have = settled(&stored);
        if have == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let differing: Vec<&String> = want
                .keys()
                .chain(have.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|id| want.get(*id) != have.get(*id))
                .collect();
            let mut report = format!("{} lines differ from the oracle:", differing.len());
            let mut order_keys = std::collections::BTreeSet::new();
            for id in differing {
                report.push_str(&format!("\n{id}: expected {:?}, stored {:?}", want.get(id), have.get(id)));
                let full = |lines: &BTreeMap<model::DerivedId, CommissionLine>| {
                    lines.iter().find(|(key, _)| key.to_string() == *id).map(|(_, line)| line.clone())
                };
                for (side, line) in [("expected", full(&expected.lines)), ("stored", full(&stored))] {
                    if let Some(line) = line {
                        report.push_str(&format!("\n  {side}: {line:?}"));
                        order_keys.extend(line.order_key.map(|key| key.to_string()));
                    }
                }
            }
            return Err(Mismatch { report, order_keys });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the store's lines are the oracle's; on timeout, fail with the differences.
pub async fn assert_store_matches<St: ReportStore>(store: &St, expected: &Expected, patience: Duration) {
    if let Err(mismatch) = wait_for_store(store, expected, patience).await {
        panic!("{}", mismatch.report);
    }
}

/// The oracle for `inputs` at `now`.
pub fn oracle(inputs: &Inputs, topics: &Topics, now: Timestamp) -> Expected {
    oracle::expected(&program_of(inputs), &keys(), topics, inputs, now)
}
