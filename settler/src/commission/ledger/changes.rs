//! What changed in a ledger since it was last saved. The ledger's maps record which entries
//! changed (`super::super::tracked`); the ledger stage saves these changes between snapshots
//! (`crate::ledger_stage`), so saving a busy family's ledger costs what changed, not its size.

use model::Timestamp;
use model::events::{Bill, SubscriptionAccount};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey, VisitorId};
use model::time::YearMonth;
use serde::{Deserialize, Serialize};

use super::Ledger;
use super::lines::LineState;
use super::orders::{OrderBook, tally};
use crate::commission::sequence::{MonthSales, MonthSalesChanges, Sequence, SequenceChanges};
use crate::commission::tracked::Change;
use crate::commission::windows::WindowChanges;

/// What changed in a [`Ledger`] between two saves: each changed entry's value after, `None`
/// for one removed; sequences and month sales by their own changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerChanges {
    unique_clicks: Vec<Change<(OfferId, MemberId, VisitorId), Timestamp>>,
    click_sequences: Vec<Change<(MemberId, OfferId), SequenceChanges>>,
    order_sequences: Vec<Change<(MemberId, OfferId), SequenceChanges>>,
    month_sales: Vec<Change<(MemberId, OfferId, YearMonth), MonthSalesChanges>>,
    orders: Vec<Change<OrderKey, OrderBook>>,
    lines: Vec<Change<DerivedId, LineState>>,
    subscriptions: Vec<Change<OrderKey, SubscriptionAccount>>,
    bills: Vec<Change<DerivedId, Bill>>,
    #[serde(default)]
    withdrawn: Vec<Change<OrderKey, Vec<EventId>>>,
}

/// [`LedgerChanges`] as they are saved: the same fields, values borrowed from the ledger.
#[derive(Debug, Serialize)]
pub struct LedgerChangesToSave<'a> {
    unique_clicks: WindowChanges<'a>,
    click_sequences: Vec<Change<(MemberId, OfferId), SequenceChanges>>,
    order_sequences: Vec<Change<(MemberId, OfferId), SequenceChanges>>,
    month_sales: Vec<Change<(MemberId, OfferId, YearMonth), MonthSalesChanges>>,
    orders: Vec<Change<OrderKey, &'a OrderBook>>,
    lines: Vec<Change<DerivedId, &'a LineState>>,
    subscriptions: Vec<Change<OrderKey, &'a SubscriptionAccount>>,
    bills: Vec<Change<DerivedId, &'a Bill>>,
    withdrawn: Vec<Change<OrderKey, &'a Vec<EventId>>>,
}

impl Ledger {
    /// What changed since the last call (or since the ledger was restored): what the ledger
    /// stage saves between snapshots, and reads back as [`LedgerChanges`].
    pub fn changes_since_last_save(&mut self) -> LedgerChangesToSave<'_> {
        LedgerChangesToSave {
            unique_clicks: self.unique_clicks.take_changes(),
            click_sequences: self.click_sequences.take_nested_changes(Sequence::take_changes),
            order_sequences: self.order_sequences.take_nested_changes(Sequence::take_changes),
            month_sales: self.month_sales.take_nested_changes(MonthSales::take_changes),
            orders: self.orders.take_changes_borrowed(),
            lines: self.lines.take_changes_borrowed(),
            subscriptions: self.subscriptions.take_changes_borrowed(),
            bills: self.bills.take_changes_borrowed(),
            withdrawn: self.withdrawn.take_changes_borrowed(),
        }
    }

    /// Apply changes taken from a ledger equal to this one.
    pub fn apply_saved_changes(&mut self, changes: LedgerChanges) {
        self.unique_clicks.apply_changes(changes.unique_clicks);
        self.click_sequences.apply_nested_changes(changes.click_sequences, Sequence::apply_changes);
        self.order_sequences.apply_nested_changes(changes.order_sequences, Sequence::apply_changes);
        self.month_sales.apply_nested_changes(changes.month_sales, MonthSales::apply_changes);
        for (key, book) in &changes.orders {
            if let Some(before) = self.orders.get(key) {
                tally(&mut self.repriceable, before, false);
            }
            if let Some(after) = book {
                tally(&mut self.repriceable, after, true);
            }
        }
        self.orders.apply_changes(changes.orders);
        for (id, line) in &changes.lines {
            if let Some(approve_at) = line.as_ref().and_then(|line| line.approve_at) {
                self.holds.insert((approve_at, id.clone()));
            }
        }
        self.lines.apply_changes(changes.lines);
        self.subscriptions.apply_changes(changes.subscriptions);
        self.bills.apply_changes(changes.bills);
        self.withdrawn.apply_changes(changes.withdrawn);
    }

    /// Rebuild what a ledger is saved without (its holds and tallies) after it is read back.
    pub fn rebuild_after_restore(&mut self) {
        self.holds = self
            .lines
            .iter()
            .filter_map(|(id, state)| state.approve_at.map(|approve_at| (approve_at, id.clone())))
            .collect();
        self.repriceable.clear();
        for book in self.orders.values() {
            tally(&mut self.repriceable, book, true);
        }
    }
}
