//! The ledger: the money state of one family of members and the rules that change it.
//!
//! [`Ledger::apply`] takes one [`LedgerEvent`] and returns every line, bill and subscription
//! account it created or changed, as snapshots. It does no I/O and reads no clock: time comes
//! from the events and from the `now` given to [`Ledger::advance`]. Line ids are derived from
//! the inputs, so a repeated event changes nothing.
//!
//! Rules that count what came before (volume tiers by instance, accumulated monthly tiers) use
//! the canonical order of [`super::sequence`], and an event that arrives out of that order
//! re-prices the ones after it; so the lines depend on which events arrived, not on the order
//! they arrived in.
//!
//! The rules, by what happens to the ledger:
//! - `clicks`: unique clicks and CPC;
//! - `orders`: an order's winning conversion priced, re-priced as earlier orders come and go,
//!   and withdrawn when an earlier conversion of the order wins;
//! - `refunds`: refunds, approve / reject decisions, and approvals after a hold;
//! - `subscriptions`: subscription accounts, their credits and terms;
//! - `members`: recruiting commissions;
//! - `bills`: bill runs and payments;
//! - `lines`: creating and changing commission lines and the tier lines that follow them;
//! - `changes`: what changed since the last save, for the ledger stage to save it.

mod adjustments;
mod bills;
mod caps;
mod changes;
mod clicks;
mod lines;
mod members;
mod orders;
mod refunds;
mod subscriptions;

use std::collections::{BTreeSet, HashMap};

use model::Timestamp;
use model::events::{Bill, CapClaim, CommissionLine, LedgerEvent, NoticeKind, SubscriptionAccount, SubscriptionStatus};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey};
use model::program::Program;
use model::time::YearMonth;
use serde::{Deserialize, Serialize};

pub use changes::{LedgerChanges, LedgerChangesToSave};
pub use lines::LineState;
pub use orders::{OrderBook, Pricing};

use super::sequence::{MonthSales, Sequence};
use super::tracked::Tracked;
use super::windows::ClickWindows;

/// Counts of a member in an offer, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub unique_clicks: u64,
    pub conversions: u64,
}

/// Everything one call changed, as snapshots with raised revisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outputs {
    pub lines: Vec<CommissionLine>,
    pub bills: Vec<Bill>,
    pub subscriptions: Vec<SubscriptionAccount>,
    /// Clicks with whether they counted as unique (the click report's `unique` column).
    pub clicks: Vec<(EventId, bool)>,
    /// What capped orders now claim of their offer's caps.
    pub claims: Vec<CapClaim>,
    /// What happened that a postback or webhook may want, when the program has any
    /// ([`Program::notifies_anything`]); the ledger stage turns them into notices.
    pub notices: Vec<LedgerNotice>,
    /// Whether to record `notices`.
    pub notify: bool,
}

/// Something a notice tells, named by what it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerNotice {
    /// A line was created or reached a status a notice tells of.
    Line {
        kind: NoticeKind,
        line: DerivedId,
    },
    /// An order's winning conversion was priced.
    Attributed {
        order_key: OrderKey,
    },
    Bill {
        kind: NoticeKind,
        bill: DerivedId,
    },
}

impl Outputs {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.bills.is_empty() && self.subscriptions.is_empty()
    }

    pub fn extend(&mut self, other: Outputs) {
        self.lines.extend(other.lines);
        self.bills.extend(other.bills);
        self.subscriptions.extend(other.subscriptions);
        self.clicks.extend(other.clicks);
        self.claims.extend(other.claims);
        self.notices.extend(other.notices);
    }

    /// Record a notice if anyone may want it.
    pub(super) fn notice(&mut self, notice: impl FnOnce() -> LedgerNotice) {
        if self.notify {
            self.notices.push(notice());
        }
    }
}

/// The money state of a set of members (the settler keeps one per family).
///
/// Its maps record what changed, so the settler saves a busy family's ledger as the changes
/// since the last save ([`LedgerChanges`]) rather than whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// When each visitor's last counted unique click for (offer, member) happened.
    pub(super) unique_clicks: ClickWindows,
    /// Unique clicks of each member and offer, in canonical order (CPC instances).
    pub(super) click_sequences: Tracked<(MemberId, OfferId), Sequence>,
    /// Accepted, priced orders of each member and offer, in canonical order (CPA/CPS instances).
    pub(super) order_sequences: Tracked<(MemberId, OfferId), Sequence>,
    /// Sales of each member and offer per calendar month, in canonical order.
    pub(super) month_sales: Tracked<(MemberId, OfferId, YearMonth), MonthSales>,
    pub(super) orders: Tracked<OrderKey, OrderBook>,
    pub(super) lines: Tracked<DerivedId, LineState>,
    /// Pending lines waiting for their hold period, by approval time; rebuilt from the lines
    /// when a ledger is restored.
    #[serde(skip)]
    pub(super) holds: BTreeSet<(Timestamp, DerivedId)>,
    /// How many counted orders of each member and offer are priced by the orders before them
    /// (`PayoutRule::depends_on_earlier`). Where there are none (a flat CPS, say) an order that
    /// arrives late re-prices nothing, and the orders after it are not even looked up. Rebuilt
    /// from the orders when a ledger is restored.
    #[serde(skip)]
    pub(super) repriceable: HashMap<(MemberId, OfferId), u64>,
    pub(super) subscriptions: Tracked<OrderKey, SubscriptionAccount>,
    pub(super) bills: Tracked<DerivedId, Bill>,
    /// The conversions withdrawn from each order. An earlier conversion of the order won, so
    /// these never win again: a late repeat of one's `Order` (from a worker whose partition
    /// moved while its outputs were being written) changes nothing.
    #[serde(default)]
    pub(super) withdrawn: Tracked<OrderKey, Vec<EventId>>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one ledger event.
    pub fn apply(&mut self, program: &Program, event: &LedgerEvent) -> Outputs {
        let mut out = Outputs { notify: program.notifies_anything(), ..Outputs::default() };
        match event {
            LedgerEvent::Click(click) => self.on_click(program, click, &mut out),
            LedgerEvent::Order(order) => self.on_order(program, order, &mut out),
            LedgerEvent::Withdraw { order_key, conversion } => {
                self.on_withdraw(program, order_key, *conversion, &mut out)
            }
            LedgerEvent::Refund { order_key, refund } => self.on_refund(order_key, refund, &mut out),
            LedgerEvent::Cancel { order_key, cancel } => self.on_cancel(order_key, cancel, &mut out),
            LedgerEvent::Decision(decision) => self.on_decision(program, decision, &mut out),
            LedgerEvent::Reversal(reversal) => self.on_reversal(program, reversal, &mut out),
            LedgerEvent::Manual(manual) => self.on_manual(program, manual, &mut out),
            LedgerEvent::CapVerdict(verdict) => self.on_cap_verdict(program, verdict, &mut out),
            LedgerEvent::MemberApproved { id, member, at } => {
                self.on_member_approved(program, *id, member, *at, &mut out)
            }
            LedgerEvent::BillRun { period_end, at, .. } => {
                // What time made due by the bill run comes first, whether or not a tick got to
                // it: a replay after a crash then bills exactly what the first run billed.
                out.extend(self.advance(program, *at));
                self.run_bills(program, *period_end, *at, &mut out)
            }
            LedgerEvent::BillPaid { bill, at, .. } => self.mark_paid(bill, *at, &mut out),
            LedgerEvent::SubscriptionTerms { order_key, rate, every, at, .. } => {
                self.change_terms(order_key, *rate, *every, *at, &mut out)
            }
        }
        self.claim_changes(&mut out);
        out
    }

    /// Everything that falls due by `now`: subscription credits and approvals after a hold.
    pub fn advance(&mut self, program: &Program, now: Timestamp) -> Outputs {
        let mut out = Outputs { notify: program.notifies_anything(), ..Outputs::default() };
        self.credit_subscriptions(program, now, &mut out);
        self.approve_held(now, &mut out);
        out
    }

    /// Whether [`Ledger::advance`] may have work at some point: subscriptions or holds exist.
    pub fn has_timed_work(&self) -> bool {
        !self.holds.is_empty()
            || self.subscriptions.values().any(|account| account.status != SubscriptionStatus::Closed)
    }

    pub fn order(&self, order_key: &OrderKey) -> Option<&OrderBook> {
        self.orders.get(order_key)
    }

    pub fn bill(&self, id: &DerivedId) -> Option<&Bill> {
        self.bills.get(id)
    }

    pub fn line(&self, id: &DerivedId) -> Option<&CommissionLine> {
        self.lines.get(id).map(|state| &state.line)
    }

    pub fn lines(&self) -> impl Iterator<Item = &CommissionLine> {
        self.lines.values().map(|state| &state.line)
    }

    pub fn bills(&self) -> impl Iterator<Item = &Bill> {
        self.bills.values()
    }

    pub fn subscription(&self, order_key: &OrderKey) -> Option<&SubscriptionAccount> {
        self.subscriptions.get(order_key)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &SubscriptionAccount> {
        self.subscriptions.values()
    }

    pub fn counter(&self, member: &MemberId, offer: &OfferId) -> Counter {
        let key = (member.clone(), offer.clone());
        Counter {
            unique_clicks: self.click_sequences.get(&key).map_or(0, Sequence::len),
            conversions: self.order_sequences.get(&key).map_or(0, Sequence::len),
        }
    }
}
