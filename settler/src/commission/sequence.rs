//! Canonical order for the rules that count what came before: volume tiers by instance and
//! accumulated monthly tiers.
//!
//! A member's clicks and conversions reach the ledger through different partitions upstream,
//! so their arrival order depends on timing. The rules are therefore defined on a canonical
//! order — event time, then event id — and the ledger keeps, per member and offer, the recent
//! items in that order. An item that arrives out of order is inserted where it belongs, and the
//! ledger re-prices the items after it; the result depends on the set of events, not on the
//! order they arrived in.
//!
//! Items older than [`SETTLED_AFTER`] behind the newest are settled: only their count is kept.
//! An item arriving even later than that is counted as if it came first among the recent ones.

use model::ids::EventId;
use model::time::{Span, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::tracked::{Change, Tracked};

/// How far behind the newest item an item is still re-ordered.
pub const SETTLED_AFTER: Span = Span::days(2);

/// Where an event stands in the canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeqKey {
    pub at: Timestamp,
    pub id: EventId,
}

/// The items of one member in one offer (unique clicks, or accepted orders), in canonical
/// order. Each item remembers what it is (a click id or an order key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    settled: u64,
    recent: Tracked<SeqKey, String>,
}

/// What changed in a [`Sequence`] since the last save.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SequenceChanges {
    settled: u64,
    recent: Vec<Change<SeqKey, String>>,
}

impl Sequence {
    /// Insert an item; returns its 1-based instance number and the items after it (which each
    /// moved one instance up), with their new instance numbers.
    pub fn insert(&mut self, key: SeqKey, item: String) -> (u64, Vec<(u64, String)>) {
        let instance = self.instance_for(&key);
        self.recent.insert(key, item);
        let later = self
            .recent
            .range(key..)
            .skip(1)
            .enumerate()
            .map(|(offset, (_, item))| (instance + 1 + offset as u64, item.clone()))
            .collect();
        self.settle();
        (instance, later)
    }

    /// Remove an item; returns the items after it with their new (one lower) instance numbers.
    /// An item that already settled leaves the count, and every recent item moves down.
    /// [`Sequence::insert`] when nothing after the item needs to know: its instance only.
    pub fn place(&mut self, key: SeqKey, item: String) -> u64 {
        let instance = self.instance_for(&key);
        self.recent.insert(key, item);
        self.settle();
        instance
    }

    /// The instance an item inserted now at `key` takes. Items arrive nearly in order: count
    /// the few after the key, not the many before it.
    fn instance_for(&self, key: &SeqKey) -> u64 {
        let after = self.recent.range(*key..).count() as u64;
        self.settled + self.recent.len() as u64 - after + 1
    }

    pub fn remove(&mut self, key: &SeqKey) -> Vec<(u64, String)> {
        if self.recent.remove(key).is_none() {
            let settled_before_recent = self.recent.keys().next().is_none_or(|oldest| key < oldest);
            if !settled_before_recent || self.settled == 0 {
                return Vec::new();
            }
            self.settled -= 1;
            return self
                .recent
                .values()
                .enumerate()
                .map(|(offset, item)| (self.settled + 1 + offset as u64, item.clone()))
                .collect();
        }
        let after = self.recent.range(*key..).count() as u64;
        let before = self.settled + self.recent.len() as u64 - after;
        self.recent
            .range(*key..)
            .enumerate()
            .map(|(offset, (_, item))| (before + 1 + offset as u64, item.clone()))
            .collect()
    }

    /// The instance number of an item still in the recent part.
    pub fn instance_of(&self, key: &SeqKey) -> Option<u64> {
        let after = self.recent.range(*key..).count() as u64;
        self.recent.contains_key(key).then(|| self.settled + self.recent.len() as u64 - after + 1)
    }

    pub fn len(&self) -> u64 {
        self.settled + self.recent.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn take_changes(&mut self) -> SequenceChanges {
        SequenceChanges { settled: self.settled, recent: self.recent.take_changes() }
    }

    pub fn apply_changes(&mut self, changes: SequenceChanges) {
        self.settled = changes.settled;
        self.recent.apply_changes(changes.recent);
    }

    fn settle(&mut self) {
        let Some(newest) = self.recent.keys().next_back().map(|key| key.at) else {
            return;
        };
        let horizon = newest.saturating_sub(SETTLED_AFTER);
        while let Some(oldest) = self.recent.keys().next().copied() {
            if oldest.at >= horizon {
                break;
            }
            self.recent.remove(&oldest);
            self.settled += 1;
        }
    }
}

/// The sales of one member in one offer in one calendar month, in canonical order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonthSales {
    sales: Tracked<SeqKey, (String, Decimal)>,
}

/// What changed in a [`MonthSales`] since the last save.
pub type MonthSalesChanges = Vec<Change<SeqKey, (String, Decimal)>>;

impl MonthSales {
    /// The month's sales before `key`.
    pub fn before(&self, key: &SeqKey) -> Decimal {
        self.sales.range(..*key).map(|(_, (_, amount))| *amount).sum()
    }

    /// Insert a sale; returns the later sales, whose totals before them changed.
    pub fn insert(&mut self, key: SeqKey, order: String, amount: Decimal) -> Vec<String> {
        self.sales.insert(key, (order, amount));
        self.sales.range(key..).skip(1).map(|(_, (order, _))| order.clone()).collect()
    }

    /// [`MonthSales::insert`] when nothing after the sale needs to know.
    pub fn add(&mut self, key: SeqKey, order: String, amount: Decimal) {
        self.sales.insert(key, (order, amount));
    }

    pub fn take_changes(&mut self) -> MonthSalesChanges {
        self.sales.take_changes()
    }

    pub fn apply_changes(&mut self, changes: MonthSalesChanges) {
        self.sales.apply_changes(changes);
    }

    /// Remove a sale; returns the later sales.
    pub fn remove(&mut self, key: &SeqKey) -> Vec<String> {
        if self.sales.remove(key).is_none() {
            return Vec::new();
        }
        self.sales.range(*key..).map(|(_, (order, _))| order.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seconds: i64, id: u128) -> SeqKey {
        SeqKey { at: Timestamp::from_millis(seconds * 1000), id: EventId::from_u128(id) }
    }

    #[test]
    fn in_order_items_take_the_next_instance() {
        let mut sequence = Sequence::default();
        assert_eq!(sequence.insert(key(1, 1), "a".into()), (1, vec![]));
        assert_eq!(sequence.insert(key(2, 2), "b".into()), (2, vec![]));
        assert_eq!(sequence.len(), 2);
    }

    #[test]
    fn a_late_item_takes_its_place_and_pushes_the_later_ones_up() {
        let mut sequence = Sequence::default();
        sequence.insert(key(1, 1), "a".into());
        sequence.insert(key(3, 3), "c".into());
        sequence.insert(key(4, 4), "d".into());
        assert_eq!(sequence.insert(key(2, 2), "b".into()), (2, vec![(3, "c".into()), (4, "d".into())]));
        assert_eq!(sequence.remove(&key(1, 1)), vec![(1, "b".into()), (2, "c".into()), (3, "d".into())]);
    }

    #[test]
    fn equal_times_are_ordered_by_event_id() {
        let mut sequence = Sequence::default();
        sequence.insert(key(5, 9), "late id".into());
        assert_eq!(sequence.insert(key(5, 1), "early id".into()), (1, vec![(2, "late id".into())]));
    }

    #[test]
    fn old_items_settle_into_a_count() {
        let mut sequence = Sequence::default();
        sequence.insert(key(0, 1), "a".into());
        sequence.insert(key(3 * 86_400, 2), "b".into());
        assert_eq!(sequence.len(), 2);
        assert_eq!(sequence.recent.len(), 1, "a is settled");
        assert_eq!(sequence.insert(key(3 * 86_400 + 1, 3), "c".into()), (3, vec![]));
    }

    #[test]
    fn removing_a_settled_item_moves_every_recent_item_down() {
        let mut sequence = Sequence::default();
        sequence.insert(key(0, 1), "a".into());
        sequence.insert(key(3 * 86_400, 2), "b".into());
        sequence.insert(key(3 * 86_400 + 5, 3), "c".into());
        assert_eq!(sequence.remove(&key(0, 1)), vec![(1, "b".into()), (2, "c".into())]);
        assert_eq!(sequence.len(), 2);
    }

    #[test]
    fn month_sales_sum_what_came_before() {
        let mut month = MonthSales::default();
        month.insert(key(1, 1), "o1".into(), Decimal::new(200, 0));
        month.insert(key(3, 3), "o3".into(), Decimal::new(100, 0));
        assert_eq!(month.insert(key(2, 2), "o2".into(), Decimal::new(50, 0)), vec!["o3".to_string()]);
        assert_eq!(month.before(&key(3, 3)), Decimal::new(250, 0));
        assert_eq!(month.remove(&key(1, 1)), vec!["o2".to_string(), "o3".to_string()]);
        assert_eq!(month.before(&key(3, 3)), Decimal::new(50, 0));
    }
}
