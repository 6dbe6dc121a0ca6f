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

use std::collections::{BTreeSet, HashMap};

use model::events::{
    AttributedConversion, Bill, Click, CommissionLine, Decision, Item, LedgerEvent, LineKind, LineStatus, Refund,
    SubscriptionAccount, SubscriptionCancel, SubscriptionStatus, Verdict,
};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey, VisitorId};
use model::program::{PayoutRule, Program, RecurringTerms};
use model::time::YearMonth;
use model::{Currency, NO_COMMISSION, Span, Timestamp, round_commission};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rules::{self, SaleFacts};
use super::sequence::{MonthSales, MonthSalesChanges, SeqKey, Sequence, SequenceChanges};
use super::tiers::tier_shares;
use super::tracked::{Change, Tracked};
use super::windows::{ClickWindows, WindowChanges};

/// Counts of a member in an offer, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub unique_clicks: u64,
    pub conversions: u64,
}

/// How an order is priced, fixed when it is accepted, so later re-pricing uses the same terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    pub rule: PayoutRule,
    pub keyword: String,
    pub pending: bool,
    pub hold: Option<Span>,
    pub tier2: Option<Decimal>,
    pub tier3: Option<Decimal>,
}

/// What the ledger remembers of an order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderBook {
    pub conversion: EventId,
    pub key: SeqKey,
    pub member: MemberId,
    pub offer: OfferId,
    pub currency: Currency,
    pub sale_amount: Decimal,
    pub items: Vec<Item>,
    pub month: YearMonth,
    /// `None` when the member's option pays nothing for this conversion.
    pub pricing: Option<Pricing>,
    pub refunded: Decimal,
    pub fully_refunded: bool,
    pub rejected: bool,
    pub lines: Vec<DerivedId>,
    pub applied: Vec<EventId>,
}

impl OrderBook {
    /// The share of the order not refunded.
    fn remaining_fraction(&self) -> Decimal {
        if self.fully_refunded {
            Decimal::ZERO
        } else if self.sale_amount.is_zero() || self.refunded.is_zero() {
            Decimal::ONE
        } else {
            (self.sale_amount - self.refunded) / self.sale_amount
        }
    }

    fn counts(&self) -> bool {
        self.pricing.is_some() && !self.rejected
    }

    /// Whether the order counts and its price moves with the orders before it.
    fn repriceable(&self) -> bool {
        self.counts() && self.pricing.as_ref().is_some_and(|pricing| pricing.rule.depends_on_earlier())
    }
}

/// Count a repriceable order in or out of its member's and offer's tally.
fn tally(repriceable: &mut HashMap<(MemberId, OfferId), u64>, book: &OrderBook, counted: bool) {
    if !book.repriceable() {
        return;
    }
    let key = (book.member.clone(), book.offer.clone());
    if counted {
        *repriceable.entry(key).or_default() += 1;
    } else if let Some(count) = repriceable.get_mut(&key) {
        *count -= 1;
        if *count == 0 {
            repriceable.remove(&key);
        }
    }
}

/// A line and the bookkeeping its later changes need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineState {
    pub line: CommissionLine,
    /// 1st-tier lines: the exact amount before rounding and refunds.
    pub exact: Decimal,
    /// Tier lines: the 1st-tier line they follow and their tier value.
    pub follows: Option<(DerivedId, Decimal)>,
    /// 1st-tier lines: the tier lines that follow them.
    #[serde(default)]
    pub followers: Vec<(DerivedId, Decimal)>,
    /// What the member has been credited for this line once billed: the billed amount plus
    /// adjustments since.
    pub accounted: Decimal,
    /// Pending lines of an option with a hold period approve themselves at this time.
    pub approve_at: Option<Timestamp>,
}

/// Everything one call changed, as snapshots with raised revisions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outputs {
    pub lines: Vec<CommissionLine>,
    pub bills: Vec<Bill>,
    pub subscriptions: Vec<SubscriptionAccount>,
    /// Clicks with whether they counted as unique (the click report's `unique` column).
    pub clicks: Vec<(EventId, bool)>,
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

/// [`LedgerChanges`] as written: the same fields, values borrowed from the ledger.
#[derive(Serialize)]
struct ChangesToSave<'a> {
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

/// A line about to be created.
pub(super) struct NewLine {
    pub id: DerivedId,
    pub member: MemberId,
    pub offer: Option<OfferId>,
    pub order_key: Option<OrderKey>,
    pub source: EventId,
    pub kind: LineKind,
    pub rule: String,
    pub keyword: String,
    pub exact: Decimal,
    pub currency: Currency,
    pub status: LineStatus,
    pub description: String,
    pub earned_at: Timestamp,
    pub approve_at: Option<Timestamp>,
}

pub(super) fn click_line_id(click: &str) -> DerivedId {
    DerivedId::derive(&["click", click])
}

fn order_line_id(conversion: EventId, part: &str) -> DerivedId {
    DerivedId::derive(&["order", &conversion.to_string(), part])
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one ledger event.
    pub fn apply(&mut self, program: &Program, event: &LedgerEvent) -> Outputs {
        let mut out = Outputs::default();
        match event {
            LedgerEvent::Click(click) => self.on_click(program, click, &mut out),
            LedgerEvent::Order(order) => self.on_order(program, order, &mut out),
            LedgerEvent::Withdraw { order_key, conversion } => {
                self.on_withdraw(program, order_key, *conversion, &mut out)
            }
            LedgerEvent::Refund { order_key, refund } => self.on_refund(order_key, refund, &mut out),
            LedgerEvent::Cancel { order_key, cancel } => self.on_cancel(order_key, cancel, &mut out),
            LedgerEvent::Decision(decision) => self.on_decision(program, decision, &mut out),
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
        out
    }

    /// What changed since the last call (or since the ledger was restored), encoded as
    /// [`LedgerChanges`].
    fn take_ledger_changes(&mut self) -> Vec<u8> {
        let changes = ChangesToSave {
            unique_clicks: self.unique_clicks.take_changes(),
            click_sequences: self.click_sequences.take_nested_changes(Sequence::take_changes),
            order_sequences: self.order_sequences.take_nested_changes(Sequence::take_changes),
            month_sales: self.month_sales.take_nested_changes(MonthSales::take_changes),
            orders: self.orders.take_changes_borrowed(),
            lines: self.lines.take_changes_borrowed(),
            subscriptions: self.subscriptions.take_changes_borrowed(),
            bills: self.bills.take_changes_borrowed(),
            withdrawn: self.withdrawn.take_changes_borrowed(),
        };
        rmp_serde::to_vec(&changes).unwrap_or_default()
    }

    /// Apply changes taken from a ledger equal to this one.
    fn apply_ledger_changes(&mut self, changes: LedgerChanges) {
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

    /// The holds and tallies of a ledger read back without them.
    fn rebuild_skipped(&mut self) {
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

    /// Everything that falls due by `now`: subscription credits and approvals after a hold.
    pub fn advance(&mut self, program: &Program, now: Timestamp) -> Outputs {
        let mut out = Outputs::default();
        self.credit_subscriptions(program, now, &mut out);
        self.approve_held(now, &mut out);
        out
    }

    /// Whether [`Ledger::advance`] may have work at some point: subscriptions or holds exist.
    pub fn has_timed_work(&self) -> bool {
        !self.holds.is_empty()
            || self.subscriptions.values().any(|account| account.status != SubscriptionStatus::Closed)
    }

    /// Whether unique-click windows are remembered (to forget as they end).
    pub fn has_click_windows(&self) -> bool {
        !self.unique_clicks.is_empty()
    }

    /// Forget the unique-click windows that ended more than `margin` before the newest click
    /// the ledger counted; true if any were. Time here is the clicks' own, so a backlog of old
    /// clicks still meets the windows it needs; a click later than `margin` behind the newest
    /// may find its window forgotten and count as unique.
    pub fn forget_click_windows(&mut self, program: &Program, margin: Span) -> bool {
        let Some(newest) = self.unique_clicks.newest() else {
            return false;
        };
        let horizon = newest.saturating_sub(margin);
        self.unique_clicks.retain(|offer_id, counted_at| {
            let window = program
                .offer(offer_id)
                .map_or(model::program::DEFAULT_UNIQUE_CLICK_WINDOW, |offer| offer.unique_click_window);
            counted_at.saturating_add(window) > horizon
        })
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

    fn on_click(&mut self, program: &Program, click: &Click, out: &mut Outputs) {
        let unique = self.count_click(program, click, out);
        out.clicks.push((click.id, unique));
    }

    /// Count a click if it is unique and its member's option pays clicks; true if unique.
    fn count_click(&mut self, program: &Program, click: &Click, out: &mut Outputs) -> bool {
        if !click.is_countable() {
            return false;
        }
        let Some(offer) = program.offer(&click.offer) else {
            return false;
        };
        let window_open =
            |counted_at: Timestamp| click.received_at < counted_at.saturating_add(offer.unique_click_window);
        if !self.unique_clicks.count(&click.offer, &click.member, &click.visitor, click.received_at, window_open) {
            return false;
        }
        let Some(payout) = program.payout(&click.offer, &click.member).filter(|payout| payout.rule.pays_clicks())
        else {
            return true;
        };
        let key = SeqKey { at: click.received_at, id: click.id };
        let click_id = click.id.to_string();
        let sequence = self.click_sequences.get_or_default((click.member.clone(), click.offer.clone()));
        let (instance, later) = sequence.insert(key, click_id.clone());
        let Some(amount) = rules::click_amount(payout.rule, instance) else {
            return true;
        };
        let option = payout.option;
        let first = NewLine {
            id: click_line_id(&click_id),
            member: click.member.clone(),
            offer: Some(click.offer.clone()),
            order_key: None,
            source: click.id,
            kind: LineKind::Click,
            rule: amount.part.rule().to_string(),
            keyword: option.name.clone(),
            exact: amount.exact,
            currency: offer.currency,
            status: initial_status(option.pending),
            description: amount.part.describe(),
            earned_at: click.received_at,
            approve_at: hold_until(option.pending, option.hold, click.received_at),
        };
        self.credit(program, first, option.tier2, option.tier3, out);
        // A click that arrived late moved every later click one instance up.
        for (later_instance, later_click) in later {
            if let Some(repriced) = rules::click_amount(payout.rule, later_instance) {
                self.reprice(&click_line_id(&later_click), repriced.exact, Decimal::ONE, false, click.id, out);
            }
        }
        true
    }

    fn on_order(&mut self, program: &Program, order: &AttributedConversion, out: &mut Outputs) {
        let withdrawn = || self.withdrawn.get(&order.order_key).is_some_and(|ids| ids.contains(&order.conversion.id));
        if self.orders.contains_key(&order.order_key) || withdrawn() {
            // The order's winner is already here (a repeat of this event; a new winner comes
            // only after a Withdraw of the old one), or this conversion lost the order.
            return;
        }
        let conversion = &order.conversion;
        let earned_at = conversion.event_time();
        let payout = program
            .payout(&order.offer, &order.member)
            .filter(|payout| payout.option.pays_for_event(&conversion.event));
        let offer_currency = program.offer(&order.offer).map(|offer| offer.currency);
        let book = OrderBook {
            conversion: conversion.id,
            key: SeqKey { at: earned_at, id: conversion.id },
            member: order.member.clone(),
            offer: order.offer.clone(),
            currency: offer_currency.or(conversion.currency).unwrap_or(Currency::USD),
            sale_amount: conversion.sale_amount(),
            items: conversion.items.clone(),
            month: earned_at.month_in(program.time_zone()),
            pricing: payout.map(|payout| Pricing {
                rule: payout.rule.clone(),
                keyword: payout.option.name.clone(),
                pending: payout.option.pending,
                hold: payout.option.hold,
                tier2: payout.option.tier2,
                tier3: payout.option.tier3,
            }),
            refunded: Decimal::ZERO,
            fully_refunded: false,
            rejected: false,
            lines: Vec::new(),
            applied: Vec::new(),
        };
        let order_key = order.order_key.clone();
        let counts = book.counts();
        let (member, offer, key, month, sale_amount) =
            (book.member.clone(), book.offer.clone(), book.key, book.month, book.sale_amount);
        // Whether any order this one could come before is priced by what came before it.
        let any_repriceable = self.repriceable.contains_key(&(member.clone(), offer.clone()));
        tally(&mut self.repriceable, &book, true);
        self.orders.insert(order_key.clone(), book);
        if counts {
            let sequence = self.order_sequences.get_or_default((member.clone(), offer.clone()));
            let month_sales = self.month_sales.get_or_default((member, offer, month));
            let (instance, affected) = if any_repriceable {
                let (instance, later) = sequence.insert(key, order_key.to_string());
                let mut affected: BTreeSet<String> = later.into_iter().map(|(_, later_order)| later_order).collect();
                affected.extend(month_sales.insert(key, order_key.to_string(), sale_amount));
                (instance, affected)
            } else {
                // Nothing after it moves: no need to know what is after it.
                let instance = sequence.place(key, order_key.to_string());
                month_sales.add(key, order_key.to_string(), sale_amount);
                (instance, BTreeSet::new())
            };
            self.price_order(program, &order_key, Some(instance), conversion.id, out);
            for later_order in affected {
                let later_order = OrderKey::from_string(later_order);
                if self.priced_by_earlier(&later_order) {
                    self.price_order(program, &later_order, None, conversion.id, out);
                }
            }
        }
        if let (Some(terms), Some(recurring_amount)) =
            (payout.and_then(|payout| payout.recurring()), conversion.recurring_amount)
        {
            self.open_subscription(order, terms, recurring_amount, earned_at, out);
        }
    }

    /// Whether the order's lines change when an earlier order comes or goes.
    fn priced_by_earlier(&self, order_key: &OrderKey) -> bool {
        self.orders
            .get(order_key)
            .and_then(|book| book.pricing.as_ref())
            .is_some_and(|pricing| pricing.rule.depends_on_earlier())
    }

    /// (Re)compute the lines of an order from its place in the canonical order: `instance` when
    /// the caller just inserted it, else its place now. `cause` is the event that made the price
    /// change (for adjustment ids after billing).
    fn price_order(
        &mut self,
        program: &Program,
        order_key: &OrderKey,
        instance: Option<u64>,
        cause: EventId,
        out: &mut Outputs,
    ) {
        let Some(book) = self.orders.get(order_key) else {
            return;
        };
        let Some(pricing) = book.pricing.clone().filter(|_| !book.rejected) else {
            return;
        };
        let sequence_key = (book.member.clone(), book.offer.clone());
        let instance = instance
            .or_else(|| self.order_sequences.get(&sequence_key).and_then(|sequence| sequence.instance_of(&book.key)));
        let instance = match (instance, &pricing.rule) {
            (Some(instance), _) => instance,
            // The month's sales are kept whole, so an accumulated price moves with them however
            // old the order is; it reads no instance.
            (None, PayoutRule::Accumulated { .. }) => 0,
            // Settled long ago: its instance, and so its price, no longer moves.
            (None, _) => return,
        };
        // Only accumulated monthly tiers read the month's earlier sales (a sum over them).
        let month_before = match pricing.rule {
            PayoutRule::Accumulated { .. } => self
                .month_sales
                .get(&(book.member.clone(), book.offer.clone(), book.month))
                .map_or(Decimal::ZERO, |month| month.before(&book.key)),
            _ => Decimal::ZERO,
        };
        let facts =
            SaleFacts { amount: book.sale_amount, items: &book.items, instance, month_sales_before: month_before };
        let amounts: Vec<(String, Decimal, String, &'static str)> = rules::conversion_amounts(&pricing.rule, &facts)
            .into_iter()
            .map(|amount| (amount.part.key(), amount.exact, amount.part.describe(), amount.part.rule()))
            .collect();
        let (conversion, fraction, fully_refunded) = (book.conversion, book.remaining_fraction(), book.fully_refunded);
        for (part, exact, description, rule) in amounts {
            let id = order_line_id(conversion, &part);
            if self.lines.contains_key(&id) {
                self.reprice(&id, exact, fraction, fully_refunded, cause, out);
                continue;
            }
            let Some(book) = self.orders.get(order_key) else {
                return;
            };
            let first = NewLine {
                id,
                member: book.member.clone(),
                offer: Some(book.offer.clone()),
                order_key: Some(order_key.clone()),
                source: book.conversion,
                kind: LineKind::Conversion,
                rule: rule.to_string(),
                keyword: pricing.keyword.clone(),
                exact,
                currency: book.currency,
                status: initial_status(pricing.pending),
                description: describe_pending(pricing.pending, description),
                earned_at: book.key.at,
                approve_at: hold_until(pricing.pending, pricing.hold, book.key.at),
            };
            let created = self.credit(program, first, pricing.tier2, pricing.tier3, out);
            if let Some(book) = self.orders.get_mut(order_key) {
                book.lines.extend(created);
            }
        }
    }

    /// Create a 1st-tier line and its tier lines; returns their ids. An id that exists
    /// already is left alone, so replays create nothing.
    pub(super) fn credit(
        &mut self,
        program: &Program,
        first: NewLine,
        tier2: Option<Decimal>,
        tier3: Option<Decimal>,
        out: &mut Outputs,
    ) -> Vec<DerivedId> {
        if self.lines.contains_key(&first.id) {
            return Vec::new();
        }
        let first_amount = round_commission(first.exact);
        let tier_lines: Vec<(NewLine, u8, Decimal)> = tier_shares(program, &first.member, tier2, tier3)
            .map(|share| {
                let level = share.level.to_string();
                let line = NewLine {
                    id: DerivedId::derive(&[first.id.as_str(), "tier", &level]),
                    member: share.member.id.clone(),
                    offer: first.offer.clone(),
                    order_key: first.order_key.clone(),
                    source: first.source,
                    kind: first.kind,
                    rule: format!("tier{level}"),
                    keyword: first.keyword.clone(),
                    exact: share.amount_of(first_amount),
                    currency: first.currency,
                    status: first.status,
                    description: format!("Tier {level}: {} x {first_amount} earned by {}", share.rate, first.member),
                    earned_at: first.earned_at,
                    approve_at: first.approve_at,
                };
                (line, share.level, share.rate)
            })
            .collect();
        let earner = first.member.clone();
        let first_id = self.insert_line(first, 1, &earner, None, out);
        let mut created = vec![first_id.clone()];
        let mut followers = Vec::with_capacity(tier_lines.len());
        for (line, level, rate) in tier_lines {
            let tier_id = self.insert_line(line, level, &earner, Some((first_id.clone(), rate)), out);
            followers.push((tier_id.clone(), rate));
            created.push(tier_id);
        }
        if let Some(state) = self.lines.get_mut(&first_id) {
            state.followers = followers;
        }
        created
    }

    pub(super) fn insert_line(
        &mut self,
        new: NewLine,
        tier: u8,
        earned_by: &MemberId,
        follows: Option<(DerivedId, Decimal)>,
        out: &mut Outputs,
    ) -> DerivedId {
        let line = CommissionLine {
            id: new.id.clone(),
            member: new.member,
            tier,
            earned_by: earned_by.clone(),
            offer: new.offer,
            order_key: new.order_key,
            source: new.source,
            kind: new.kind,
            rule: new.rule,
            keyword: new.keyword,
            amount: round_commission(new.exact),
            currency: new.currency,
            status: new.status,
            description: new.description,
            earned_at: new.earned_at,
            revision: 0,
            bill: None,
        };
        if let Some(approve_at) = new.approve_at {
            self.holds.insert((approve_at, new.id.clone()));
        }
        out.lines.push(line.clone());
        let state = LineState {
            line,
            exact: new.exact,
            follows,
            followers: Vec::new(),
            accounted: Decimal::ZERO,
            approve_at: new.approve_at,
        };
        self.lines.insert(new.id.clone(), state);
        new.id
    }

    /// Change a line and emit its new revision.
    pub(super) fn update_line(&mut self, id: &DerivedId, out: &mut Outputs, change: impl FnOnce(&mut LineState)) {
        if let Some(state) = self.lines.get_mut(id) {
            change(state);
            state.line.revision += 1;
            out.lines.push(state.line.clone());
        }
    }

    /// Give a 1st-tier line a new exact amount and bring it, and the tier lines that follow it,
    /// to what it now pays: `exact × remaining` rounded (0 and `reversed` when `fully_refunded`).
    fn reprice(
        &mut self,
        first_id: &DerivedId,
        exact: Decimal,
        remaining: Decimal,
        fully_refunded: bool,
        cause: EventId,
        out: &mut Outputs,
    ) {
        let Some(state) = self.lines.get_mut(first_id) else {
            return;
        };
        state.exact = exact;
        let target = if fully_refunded { NO_COMMISSION } else { round_commission(exact * remaining) };
        let reversed = fully_refunded.then_some(LineStatus::Reversed);
        self.settle_line(first_id, target, reversed, cause, out);
        let followers = self.lines.get(first_id).map(|state| state.followers.clone()).unwrap_or_default();
        for (tier_id, rate) in followers {
            self.settle_line(&tier_id, round_commission(rate * target), reversed, cause, out);
        }
    }

    /// Bring a line to `target`: in place before billing (with `status` if given), as an
    /// adjustment line after. Void lines stay as they are.
    fn settle_line(
        &mut self,
        id: &DerivedId,
        target: Decimal,
        status: Option<LineStatus>,
        cause: EventId,
        out: &mut Outputs,
    ) {
        let Some(state) = self.lines.get(id) else {
            return;
        };
        let line = &state.line;
        if line.status.is_void() {
            return;
        }
        if line.status.is_billed() {
            let adjustment = target - state.accounted;
            if adjustment.is_zero() {
                return;
            }
            let new = NewLine {
                id: DerivedId::derive(&["adjust", id.as_str(), &cause.to_string(), &line.revision.to_string()]),
                member: line.member.clone(),
                offer: line.offer.clone(),
                order_key: line.order_key.clone(),
                source: cause,
                kind: LineKind::Adjustment,
                rule: "adjustment".to_string(),
                keyword: line.keyword.clone(),
                exact: adjustment,
                currency: line.currency,
                status: LineStatus::Approved,
                description: format!(
                    "Correction after billing of line {}: {adjustment}",
                    line.order_key.as_ref().map_or_else(|| id.to_string(), OrderKey::to_string)
                ),
                earned_at: line.earned_at,
                approve_at: None,
            };
            let (tier, earned_by) = (line.tier, line.earned_by.clone());
            self.insert_line(new, tier, &earned_by, None, out);
            // The billed line's revision moves too, so the next correction has its own id.
            self.update_line(id, out, |state| state.accounted = target);
            return;
        }
        if line.amount == target && status.is_none_or(|status| status == line.status) {
            return;
        }
        self.update_line(id, out, |state| {
            state.line.amount = target;
            if let Some(status) = status {
                state.line.status = status;
                state.approve_at = None;
            }
        });
    }

    /// Take an order out of the canonical sequences and re-price the orders after it.
    fn uncount_order(&mut self, program: &Program, order_key: &OrderKey, cause: EventId, out: &mut Outputs) {
        let Some(book) = self.orders.get(order_key) else {
            return;
        };
        let (member, offer, key, month) = (book.member.clone(), book.offer.clone(), book.key, book.month);
        tally(&mut self.repriceable, book, false);
        let mut affected = BTreeSet::new();
        if let Some(sequence) = self.order_sequences.get_mut(&(member.clone(), offer.clone())) {
            affected.extend(sequence.remove(&key).into_iter().map(|(_, later)| later));
        }
        if let Some(sales) = self.month_sales.get_mut(&(member, offer, month)) {
            affected.extend(sales.remove(&key));
        }
        for later in affected {
            let later = OrderKey::from_string(later);
            if self.priced_by_earlier(&later) {
                self.price_order(program, &later, None, cause, out);
            }
        }
    }

    fn on_withdraw(&mut self, program: &Program, order_key: &OrderKey, conversion: EventId, out: &mut Outputs) {
        if self.orders.get(order_key).is_none_or(|book| book.conversion != conversion) {
            return;
        }
        self.uncount_order(program, order_key, conversion, out);
        let Some(book) = self.orders.remove(order_key) else {
            return;
        };
        self.withdrawn.get_or_default(order_key.clone()).push(conversion);
        let credits: Vec<DerivedId> = self
            .lines
            .iter()
            .filter(|(_, state)| state.line.kind == LineKind::Recurring && state.line.source == conversion)
            .map(|(id, _)| id.clone())
            .collect();
        for id in book.lines.iter().chain(&credits) {
            self.settle_line(id, NO_COMMISSION, Some(LineStatus::Withdrawn), conversion, out);
        }
        if self.subscriptions.get(order_key).is_some_and(|account| account.conversion == conversion) {
            self.close_subscription(order_key, out);
            self.subscriptions.remove(order_key);
        }
    }

    fn on_refund(&mut self, order_key: &OrderKey, refund: &Refund, out: &mut Outputs) {
        let Some(book) = self.orders.get_mut(order_key) else {
            return;
        };
        if book.applied.contains(&refund.id) {
            return;
        }
        book.applied.push(refund.id);
        let remaining_sale = book.sale_amount - book.refunded;
        let refunded_now = match refund.amount {
            Some(amount) => amount.min(remaining_sale).max(Decimal::ZERO),
            None => remaining_sale,
        };
        book.refunded += refunded_now;
        book.fully_refunded |= refund.amount.is_none() || book.refunded >= book.sale_amount;
        let (fraction, fully_refunded) = (book.remaining_fraction(), book.fully_refunded);
        let firsts: Vec<(DerivedId, Decimal)> = book
            .lines
            .iter()
            .filter_map(|id| {
                let state = self.lines.get(id)?;
                state.follows.is_none().then(|| (id.clone(), state.exact))
            })
            .collect();
        for (id, exact) in firsts {
            self.reprice(&id, exact, fraction, fully_refunded, refund.id, out);
        }
        if fully_refunded {
            self.close_subscription(order_key, out);
        }
    }

    fn on_decision(&mut self, program: &Program, decision: &Decision, out: &mut Outputs) {
        let Some(book) = self.orders.get_mut(&decision.order_key) else {
            return;
        };
        if book.applied.contains(&decision.id) {
            return;
        }
        book.applied.push(decision.id);
        let lines = book.lines.clone();
        match decision.verdict {
            Verdict::Approve => {
                for id in &lines {
                    if self.lines.get(id).is_some_and(|state| state.line.status == LineStatus::Pending) {
                        self.update_line(id, out, |state| {
                            state.line.status = LineStatus::Approved;
                            state.approve_at = None;
                        });
                    }
                }
            }
            Verdict::Reject => {
                if book.rejected {
                    return;
                }
                // A rejected order never happened for the counts: the ones after it move down.
                self.uncount_order(program, &decision.order_key, decision.id, out);
                if let Some(book) = self.orders.get_mut(&decision.order_key) {
                    book.rejected = true;
                }
                for id in &lines {
                    let rejectable = self
                        .lines
                        .get(id)
                        .is_some_and(|state| matches!(state.line.status, LineStatus::Pending | LineStatus::Approved));
                    if rejectable {
                        self.update_line(id, out, |state| {
                            state.line.status = LineStatus::Rejected;
                            state.line.amount = NO_COMMISSION;
                            state.approve_at = None;
                        });
                    }
                }
                self.close_subscription(&decision.order_key, out);
            }
        }
    }

    fn on_cancel(&mut self, order_key: &OrderKey, cancel: &SubscriptionCancel, out: &mut Outputs) {
        let Some(account) = self.subscriptions.get_mut(order_key) else {
            return;
        };
        if account.status != SubscriptionStatus::Active {
            return;
        }
        account.status = SubscriptionStatus::Cancelled;
        account.cancelled_at = Some(cancel.received_at);
        account.revision += 1;
        out.subscriptions.push(account.clone());
    }

    fn open_subscription(
        &mut self,
        order: &AttributedConversion,
        terms: RecurringTerms,
        recurring_amount: Decimal,
        started_at: Timestamp,
        out: &mut Outputs,
    ) {
        let currency = self.orders.get(&order.order_key).map_or(Currency::USD, |book| book.currency);
        let account = SubscriptionAccount {
            order_key: order.order_key.clone(),
            conversion: order.conversion.id,
            member: order.member.clone(),
            offer: order.offer.clone(),
            name: terms.name,
            recurring_amount,
            currency,
            rate: terms.rate,
            every: terms.every,
            started_at,
            anchor_at: started_at,
            credits_since_anchor: 0,
            credits: 0,
            cancelled_at: None,
            status: SubscriptionStatus::Active,
            revision: 0,
        };
        out.subscriptions.push(account.clone());
        self.subscriptions.insert(order.order_key.clone(), account);
    }

    fn on_member_approved(
        &mut self,
        program: &Program,
        id: EventId,
        member: &MemberId,
        at: Timestamp,
        out: &mut Outputs,
    ) {
        let Some(recruiting) = program.settings().recruiting.as_ref() else {
            return;
        };
        let Some(parent) =
            program.member(member).and_then(|child| child.parent.as_ref()).and_then(|parent| program.member(parent))
        else {
            return;
        };
        if !parent.is_approved() {
            return;
        }
        let first = NewLine {
            id: DerivedId::derive(&["recruit", member.as_str()]),
            member: parent.id.clone(),
            offer: None,
            order_key: None,
            source: id,
            kind: LineKind::Recruiting,
            rule: "recruiting".to_string(),
            keyword: "recruiting".to_string(),
            exact: recruiting.amount,
            currency: program.settings().currency,
            status: LineStatus::Approved,
            description: format!("Recruiting: {member} approved"),
            earned_at: at,
            approve_at: None,
        };
        self.credit(program, first, recruiting.tier2, recruiting.tier3, out);
    }

    fn approve_held(&mut self, now: Timestamp, out: &mut Outputs) {
        while let Some((approve_at, id)) = self.holds.first().cloned() {
            if approve_at > now {
                break;
            }
            self.holds.remove(&(approve_at, id.clone()));
            let still_waiting = self
                .lines
                .get(&id)
                .is_some_and(|state| state.line.status == LineStatus::Pending && state.approve_at == Some(approve_at));
            if still_waiting {
                self.update_line(&id, out, |state| {
                    state.line.status = LineStatus::Approved;
                    state.approve_at = None;
                });
            }
        }
    }
}

/// A family's ledger is saved as its changes between saves, and whole (MessagePack, named
/// fields) now and then.
/// A ledger is saved as MessagePack with its structs as arrays of their fields in order
/// (`rmp_serde::to_vec`), not maps of named fields: a ledger holds every line and order of a
/// family, and the names were 38% of its bytes and of the time to write it
/// (`benches/benches/state.rs`). Ledgers saved with named fields read the same. So a saved
/// ledger stays readable, the types it holds only ever gain fields at the end, with
/// `#[serde(default)]`, and never skip a field when serializing (`skip_serializing_if` would
/// shift the fields after it).
impl model::stage::StageState for Ledger {
    fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut ledger: Ledger = rmp_serde::from_slice(bytes).map_err(|error| error.to_string())?;
        ledger.rebuild_skipped();
        Ok(ledger)
    }

    fn take_changes(&mut self) -> Option<Vec<u8>> {
        Some(self.take_ledger_changes())
    }

    fn apply_changes(&mut self, changes: &[u8]) -> Result<(), String> {
        let changes: LedgerChanges = rmp_serde::from_slice(changes).map_err(|error| error.to_string())?;
        self.apply_ledger_changes(changes);
        Ok(())
    }
}

fn initial_status(pending: bool) -> LineStatus {
    if pending { LineStatus::Pending } else { LineStatus::Approved }
}

fn hold_until(pending: bool, hold: Option<Span>, earned_at: Timestamp) -> Option<Timestamp> {
    hold.filter(|_| pending).map(|hold| earned_at.saturating_add(hold))
}

fn describe_pending(pending: bool, description: String) -> String {
    if pending { format!("Pending: {description}") } else { description }
}
