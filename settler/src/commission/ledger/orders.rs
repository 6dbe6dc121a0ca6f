//! Orders: the conversion that wins an order, priced by its member's payout option; the orders
//! after it re-priced when it comes late or goes; withdrawn when an earlier conversion wins.

use std::collections::{BTreeSet, HashMap};

use model::events::{AttributedConversion, ConversionStatus, Item, LineKind, LineStatus, NoticeConversion};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey};
use model::program::{PayoutRule, Program};
use model::time::YearMonth;
use model::{Currency, NO_COMMISSION, Span};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::lines::{NewLine, describe_pending, hold_until, initial_status};
use super::{Ledger, LedgerNotice, Outputs};
use crate::commission::rules::{self, SaleFacts};
use crate::commission::sequence::SeqKey;

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
    /// The order is subject to caps (its offer's or its enrolment's) and claims on them.
    #[serde(default)]
    pub capped: bool,
    /// What it claimed last: the 1st-tier commission it would pay, and whether it pays at all.
    #[serde(default)]
    pub claimed: Option<(Decimal, bool)>,
    /// The caps' last verdict: within (`true`) or over a cap.
    #[serde(default)]
    pub cap_within: Option<bool>,
    /// The conversion as notices describe it, kept while the program has postbacks or webhooks.
    #[serde(default)]
    pub notice: Option<Box<NoticeConversion>>,
}

impl OrderBook {
    /// The share of the order not refunded.
    pub(super) fn remaining_fraction(&self) -> Decimal {
        if self.fully_refunded {
            Decimal::ZERO
        } else if self.sale_amount.is_zero() || self.refunded.is_zero() {
            Decimal::ONE
        } else {
            (self.sale_amount - self.refunded) / self.sale_amount
        }
    }

    pub(super) fn counts(&self) -> bool {
        self.pricing.is_some() && !self.rejected
    }

    /// Whether the order counts and its price moves with the orders before it.
    pub(super) fn repriceable(&self) -> bool {
        self.counts() && self.pricing.as_ref().is_some_and(|pricing| pricing.rule.depends_on_earlier())
    }
}

/// Count a repriceable order in or out of its member's and offer's tally.
pub(super) fn tally(repriceable: &mut HashMap<(MemberId, OfferId), u64>, book: &OrderBook, counted: bool) {
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

/// An attributed conversion as notices describe it.
fn notice_conversion(order: &AttributedConversion, offer_currency: Option<Currency>) -> NoticeConversion {
    let conversion = &order.conversion;
    NoticeConversion {
        id: conversion.id,
        event: conversion.event.clone(),
        order_id: conversion.order_id.as_ref().map(ToString::to_string),
        advertiser: Some(order.advertiser.clone()),
        offer: Some(order.offer.clone()),
        member: Some(order.member.clone()),
        amount: conversion.sale_amount(),
        currency: conversion.currency.or(offer_currency),
        status: ConversionStatus::Attributed,
        reason: None,
        via: order.via.as_str().to_string(),
        click_id: order
            .click
            .as_ref()
            .map(|click| click.click_id.clone())
            .filter(|click_id| !click_id.is_empty())
            .or_else(|| conversion.click_id.clone()),
        subs: order.click.as_ref().map(|click| click.subs.clone()).unwrap_or_default(),
        occurred_at: conversion.event_time(),
    }
}

pub(super) fn order_line_id(conversion: EventId, part: &str) -> DerivedId {
    DerivedId::derive(&["order", &conversion.to_string(), part])
}

impl Ledger {
    pub(super) fn on_order(&mut self, program: &Program, order: &AttributedConversion, out: &mut Outputs) {
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
            // An unverified code pixel waits for a person, whatever the option's hold says.
            pricing: payout.map(|payout| Pricing {
                rule: payout.rule.clone(),
                keyword: payout.option.name.clone(),
                pending: payout.option.pending || order.unverified,
                hold: payout.option.hold.filter(|_| !order.unverified),
                tier2: payout.option.tier2,
                tier3: payout.option.tier3,
            }),
            refunded: Decimal::ZERO,
            fully_refunded: false,
            rejected: false,
            lines: Vec::new(),
            applied: Vec::new(),
            capped: program.is_capped(&order.offer, &order.member),
            claimed: None,
            cap_within: None,
            notice: out.notify.then(|| Box::new(notice_conversion(order, offer_currency))),
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
        out.notice(|| LedgerNotice::Attributed { order_key: order.order_key.clone() });
        if let (Some(terms), Some(recurring_amount)) =
            (payout.and_then(|payout| payout.recurring()), conversion.recurring_amount)
        {
            self.open_subscription(order, terms, recurring_amount, earned_at, out);
        }
    }

    /// Whether the order's lines change when an earlier order comes or goes.
    pub(super) fn priced_by_earlier(&self, order_key: &OrderKey) -> bool {
        self.orders
            .get(order_key)
            .and_then(|book| book.pricing.as_ref())
            .is_some_and(|pricing| pricing.rule.depends_on_earlier())
    }

    /// (Re)compute the lines of an order from its place in the canonical order: `instance` when
    /// the caller just inserted it, else its place now. `cause` is the event that made the price
    /// change (for adjustment ids after billing).
    pub(super) fn price_order(
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

    /// Take an order out of the canonical sequences and re-price the orders after it.
    pub(super) fn uncount_order(&mut self, program: &Program, order_key: &OrderKey, cause: EventId, out: &mut Outputs) {
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

    pub(super) fn on_withdraw(
        &mut self,
        program: &Program,
        order_key: &OrderKey,
        conversion: EventId,
        out: &mut Outputs,
    ) {
        if self.orders.get(order_key).is_none_or(|book| book.conversion != conversion) {
            return;
        }
        self.uncount_order(program, order_key, conversion, out);
        let Some(book) = self.orders.remove(order_key) else {
            return;
        };
        if book.capped {
            out.claims.push(super::caps::claim_of(order_key, &book, Decimal::ZERO, false));
        }
        self.withdrawn.get_or_default(order_key.clone()).push(conversion);
        let credits: Vec<DerivedId> = self
            .lines
            .iter()
            .filter(|(_, state)| state.line.kind == LineKind::Recurring && state.line.source == conversion)
            .map(|(id, _)| id.clone())
            .collect();
        for id in book.lines.iter().chain(&credits) {
            // A rejected line (by a person, or by a cap) of a withdrawn conversion is withdrawn
            // too, so whichever of the rejection and the withdrawal arrives first, the line
            // ends the same.
            if self.lines.get(id).is_some_and(|state| state.line.status == LineStatus::Rejected) {
                self.update_line(id, out, |state| {
                    state.line.status = LineStatus::Withdrawn;
                    state.line.amount = NO_COMMISSION;
                    state.approve_at = None;
                });
                continue;
            }
            self.settle_line(id, NO_COMMISSION, Some(LineStatus::Withdrawn), conversion, out);
        }
        if self.subscriptions.get(order_key).is_some_and(|account| account.conversion == conversion) {
            self.close_subscription(order_key, out);
            self.subscriptions.remove(order_key);
        }
    }
}
