//! The ledger: the money state of one family of members and the rules that change it.
//!
//! [`Ledger::apply`] takes one [`LedgerEvent`] and returns every line, bill and subscription
//! account it created or changed, as snapshots. It does no I/O and reads no clock: time comes
//! from the events and from the `now` given to [`Ledger::advance`]. Line ids are derived from
//! the inputs, so applying the same events to a fresh ledger gives the same lines, and a
//! repeated event changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use model::events::{
    AttributedConversion, Bill, Click, CommissionLine, Decision, LedgerEvent, LineKind, LineStatus, Refund,
    SubscriptionAccount, SubscriptionCancel, Verdict,
};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey, VisitorId};
use model::program::Program;
use model::time::YearMonth;
use model::{Currency, Timestamp, round_commission};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rules::{self, SaleFacts};
use super::tiers::tier_shares;

/// Per member and offer: instance counters for volume tiers, and the month's sales for
/// accumulated tiers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub unique_clicks: u64,
    pub conversions: u64,
    pub month: Option<YearMonth>,
    pub month_sales: Decimal,
}

/// What the ledger remembers of an order: its lines, and the refunds and decisions applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderBook {
    pub conversion: EventId,
    pub member: MemberId,
    pub offer: OfferId,
    pub sale_amount: Decimal,
    pub refunded: Decimal,
    pub month: YearMonth,
    pub lines: Vec<DerivedId>,
    pub applied: Vec<EventId>,
}

/// A line and the bookkeeping its later changes need.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineState {
    pub line: CommissionLine,
    /// 1st-tier lines: the exact amount before rounding, which refunds scale.
    pub exact: Decimal,
    /// Tier lines: the 1st-tier line they follow and their tier value.
    pub follows: Option<(DerivedId, Decimal)>,
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
}

impl Outputs {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.bills.is_empty() && self.subscriptions.is_empty()
    }

    pub fn extend(&mut self, other: Outputs) {
        self.lines.extend(other.lines);
        self.bills.extend(other.bills);
        self.subscriptions.extend(other.subscriptions);
    }
}

/// The money state of a set of members (the settler keeps one per family).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub(super) counters: BTreeMap<(MemberId, OfferId), Counter>,
    /// When each visitor's last counted unique click for (offer, member) happened.
    pub(super) unique_clicks: BTreeMap<(OfferId, MemberId, VisitorId), Timestamp>,
    pub(super) orders: BTreeMap<OrderKey, OrderBook>,
    pub(super) lines: BTreeMap<DerivedId, LineState>,
    /// Pending lines waiting for their hold period, by approval time.
    pub(super) holds: BTreeSet<(Timestamp, DerivedId)>,
    pub(super) subscriptions: BTreeMap<OrderKey, SubscriptionAccount>,
    pub(super) bills: BTreeMap<DerivedId, Bill>,
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
            LedgerEvent::Refund { order_key, refund } => self.on_refund(order_key, refund, &mut out),
            LedgerEvent::Cancel { order_key, cancel } => self.on_cancel(order_key, cancel, &mut out),
            LedgerEvent::Decision(decision) => self.on_decision(decision, &mut out),
            LedgerEvent::MemberApproved { id, member, at } => {
                self.on_member_approved(program, *id, member, *at, &mut out)
            }
            LedgerEvent::BillRun { period_end, at, .. } => self.run_bills(program, *period_end, *at, &mut out),
            LedgerEvent::BillPaid { bill, at, .. } => self.mark_paid(bill, *at, &mut out),
            LedgerEvent::SubscriptionTerms { order_key, rate, every, at, .. } => {
                self.change_terms(order_key, *rate, *every, *at, &mut out)
            }
        }
        out
    }

    /// Everything that falls due by `now`: subscription credits and approvals after a hold.
    pub fn advance(&mut self, program: &Program, now: Timestamp) -> Outputs {
        let mut out = Outputs::default();
        self.credit_subscriptions(program, now, &mut out);
        self.approve_held(now, &mut out);
        out
    }

    /// Forget unique-click windows that ended before `horizon`; they can no longer block a click.
    pub fn forget_unique_clicks_before(&mut self, program: &Program, horizon: Timestamp) {
        self.unique_clicks.retain(|(offer_id, _, _), counted_at| {
            let window = program
                .offer(offer_id)
                .map_or(model::program::DEFAULT_UNIQUE_CLICK_WINDOW, |offer| offer.unique_click_window);
            counted_at.saturating_add(window) > horizon
        });
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

    pub fn counter(&self, member: &MemberId, offer: &OfferId) -> Option<&Counter> {
        self.counters.get(&(member.clone(), offer.clone()))
    }

    fn on_click(&mut self, program: &Program, click: &Click, out: &mut Outputs) {
        if !click.is_countable() {
            return;
        }
        let (Some(offer), Some(payout)) = (program.offer(&click.offer), program.payout(&click.offer, &click.member))
        else {
            return;
        };
        let visitor_key = (click.offer.clone(), click.member.clone(), click.visitor.clone());
        if let Some(counted_at) = self.unique_clicks.get(&visitor_key) {
            if click.received_at < counted_at.saturating_add(offer.unique_click_window) {
                return;
            }
        }
        self.unique_clicks.insert(visitor_key, click.received_at);
        let counter = self.counters.entry((click.member.clone(), click.offer.clone())).or_default();
        counter.unique_clicks += 1;
        let Some(amount) = rules::click_amount(payout.rule, counter.unique_clicks) else {
            return;
        };
        let option = payout.option;
        let first = NewLine {
            id: DerivedId::derive(&["click", &click.id.to_string()]),
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
    }

    fn on_order(&mut self, program: &Program, order: &AttributedConversion, out: &mut Outputs) {
        if self.orders.contains_key(&order.order_key) {
            // The same order again: a replay of this event, or a duplicate the order stage
            // should have stopped. Either way the first one stands.
            return;
        }
        let conversion = &order.conversion;
        let earned_at = conversion.event_time();
        let sale_amount = conversion.sale_amount();
        let month = earned_at.month_in(program.time_zone());
        let mut book = OrderBook {
            conversion: conversion.id,
            member: order.member.clone(),
            offer: order.offer.clone(),
            sale_amount,
            refunded: Decimal::ZERO,
            month,
            lines: Vec::new(),
            applied: Vec::new(),
        };
        let (Some(offer), Some(payout)) = (program.offer(&order.offer), program.payout(&order.offer, &order.member))
        else {
            self.orders.insert(order.order_key.clone(), book);
            return;
        };
        let option = payout.option;
        if !option.pays_for_event(&conversion.event) {
            self.orders.insert(order.order_key.clone(), book);
            return;
        }

        let counter = self.counters.entry((order.member.clone(), order.offer.clone())).or_default();
        if counter.month != Some(month) {
            counter.month = Some(month);
            counter.month_sales = Decimal::ZERO;
        }
        counter.conversions += 1;
        let facts = SaleFacts {
            amount: sale_amount,
            items: &conversion.items,
            instance: counter.conversions,
            month_sales_before: counter.month_sales,
        };
        counter.month_sales += sale_amount;

        let order_key = order.order_key.as_str();
        for amount in rules::conversion_amounts(payout.rule, &facts) {
            let first = NewLine {
                id: DerivedId::derive(&["order", order_key, &amount.part.key()]),
                member: order.member.clone(),
                offer: Some(order.offer.clone()),
                order_key: Some(order.order_key.clone()),
                source: conversion.id,
                kind: LineKind::Conversion,
                rule: amount.part.rule().to_string(),
                keyword: option.name.clone(),
                exact: amount.exact,
                currency: offer.currency,
                status: initial_status(option.pending),
                description: describe_pending(option.pending, amount.part.describe()),
                earned_at,
                approve_at: hold_until(option.pending, option.hold, earned_at),
            };
            book.lines.extend(self.credit(program, first, option.tier2, option.tier3, out));
        }

        if let (Some(terms), Some(recurring_amount)) = (payout.recurring(), conversion.recurring_amount) {
            let account = SubscriptionAccount {
                order_key: order.order_key.clone(),
                member: order.member.clone(),
                offer: order.offer.clone(),
                name: terms.name,
                recurring_amount,
                currency: offer.currency,
                rate: terms.rate,
                every: terms.every,
                started_at: earned_at,
                anchor_at: earned_at,
                credits_since_anchor: 0,
                credits: 0,
                cancelled_at: None,
                status: model::events::SubscriptionStatus::Active,
                revision: 0,
            };
            out.subscriptions.push(account.clone());
            self.subscriptions.insert(order.order_key.clone(), account);
        }
        self.orders.insert(order.order_key.clone(), book);
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
        for (line, level, rate) in tier_lines {
            created.push(self.insert_line(line, level, &earner, Some((first_id.clone(), rate)), out));
        }
        created
    }

    fn insert_line(
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
        let state = LineState { line, exact: new.exact, follows, accounted: Decimal::ZERO, approve_at: new.approve_at };
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
        let full = refund.amount.is_none() || book.refunded >= book.sale_amount;
        let remaining_fraction = if full || book.sale_amount.is_zero() {
            Decimal::ZERO
        } else {
            (book.sale_amount - book.refunded) / book.sale_amount
        };
        let lines = book.lines.clone();
        let (member, offer, month) = (book.member.clone(), book.offer.clone(), book.month);

        if let Some(counter) = self.counters.get_mut(&(member, offer)) {
            if counter.month == Some(month) {
                counter.month_sales = (counter.month_sales - refunded_now).max(Decimal::ZERO);
            }
        }
        // Each 1st-tier line with the tier lines that follow it.
        let plan: Vec<(DerivedId, Decimal, Vec<(DerivedId, Decimal)>)> = lines
            .iter()
            .filter_map(|first_id| {
                let first = self.lines.get(first_id).filter(|state| state.follows.is_none())?;
                let followers = lines
                    .iter()
                    .filter_map(|id| {
                        let (leader, rate) = self.lines.get(id)?.follows.clone()?;
                        (&leader == first_id).then(|| (id.clone(), rate))
                    })
                    .collect();
                Some((first_id.clone(), first.exact, followers))
            })
            .collect();
        for (first_id, exact, followers) in plan {
            let first_target = round_commission(exact * remaining_fraction);
            self.refund_line(&first_id, first_target, full, refund, out);
            for (tier_id, rate) in followers {
                self.refund_line(&tier_id, round_commission(rate * first_target), full, refund, out);
            }
        }
        if full {
            self.close_subscription(order_key, out);
        }
    }

    /// Bring a line to `target` after a refund: in place before billing, as an adjustment
    /// line after.
    fn refund_line(&mut self, id: &DerivedId, target: Decimal, full: bool, refund: &Refund, out: &mut Outputs) {
        let Some(state) = self.lines.get(id) else {
            return;
        };
        match state.line.status {
            LineStatus::Rejected | LineStatus::Reversed => {}
            status if status.is_billed() => {
                let adjustment = target - state.accounted;
                if adjustment.is_zero() {
                    return;
                }
                let line = &state.line;
                let new = NewLine {
                    id: DerivedId::derive(&["adjust", id.as_str(), &refund.id.to_string()]),
                    member: line.member.clone(),
                    offer: line.offer.clone(),
                    order_key: line.order_key.clone(),
                    source: refund.id,
                    kind: LineKind::Adjustment,
                    rule: "refund".to_string(),
                    keyword: line.keyword.clone(),
                    exact: adjustment,
                    currency: line.currency,
                    status: LineStatus::Approved,
                    description: format!(
                        "Refund after billing of {}: {adjustment}",
                        line.order_key.as_ref().map_or("", |key| key.as_str())
                    ),
                    earned_at: refund.received_at,
                    approve_at: None,
                };
                let (tier, earned_by) = (line.tier, line.earned_by.clone());
                self.insert_line(new, tier, &earned_by, None, out);
                if let Some(state) = self.lines.get_mut(id) {
                    state.accounted = target;
                }
            }
            _ => self.update_line(id, out, |state| {
                state.line.amount = target;
                if full {
                    state.line.status = LineStatus::Reversed;
                }
            }),
        }
    }

    fn on_decision(&mut self, decision: &Decision, out: &mut Outputs) {
        let Some(book) = self.orders.get_mut(&decision.order_key) else {
            return;
        };
        if book.applied.contains(&decision.id) {
            return;
        }
        book.applied.push(decision.id);
        let lines = book.lines.clone();
        for id in &lines {
            let Some(status) = self.lines.get(id).map(|state| state.line.status) else {
                continue;
            };
            match (decision.verdict, status) {
                (Verdict::Approve, LineStatus::Pending) => {
                    self.update_line(id, out, |state| {
                        state.line.status = LineStatus::Approved;
                        state.approve_at = None;
                    });
                }
                (Verdict::Reject, LineStatus::Pending | LineStatus::Approved) => {
                    self.update_line(id, out, |state| {
                        state.line.status = LineStatus::Rejected;
                        state.line.amount = Decimal::ZERO;
                        state.approve_at = None;
                    });
                }
                _ => {}
            }
        }
        if decision.verdict == Verdict::Reject {
            self.close_subscription(&decision.order_key, out);
        }
    }

    fn on_cancel(&mut self, order_key: &OrderKey, cancel: &SubscriptionCancel, out: &mut Outputs) {
        let Some(account) = self.subscriptions.get_mut(order_key) else {
            return;
        };
        if account.status != model::events::SubscriptionStatus::Active {
            return;
        }
        account.status = model::events::SubscriptionStatus::Cancelled;
        account.cancelled_at = Some(cancel.received_at);
        account.revision += 1;
        out.subscriptions.push(account.clone());
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

fn initial_status(pending: bool) -> LineStatus {
    if pending { LineStatus::Pending } else { LineStatus::Approved }
}

fn hold_until(pending: bool, hold: Option<model::Span>, earned_at: Timestamp) -> Option<Timestamp> {
    hold.filter(|_| pending).map(|hold| earned_at.saturating_add(hold))
}

fn describe_pending(pending: bool, description: String) -> String {
    if pending { format!("Pending: {description}") } else { description }
}
