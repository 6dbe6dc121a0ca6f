//! Subscriptions (seed 004, "Recurring Commission (Subscriptions) Tracking"): accounts opened by
//! a first sale, credited every interval, cancelled, and their terms changed.
//!
//! The first sale opens an account keyed by its order; every interval after the sale the
//! member is credited `rate × recurring amount` until the account is cancelled. Credits are
//! the one clock-driven output (docs/DECISIONS.md, "Event time, never wall time, in rules"):
//! they fall due by `now`, and their ids are derived from the order and the credit number so
//! that crediting twice is harmless.

use model::events::{
    AttributedConversion, LineKind, LineStatus, SubscriptionAccount, SubscriptionCancel, SubscriptionStatus,
};
use model::ids::{DerivedId, OrderKey};
use model::program::{Program, RecurringTerms};
use model::{Currency, Interval, Timestamp, round_commission};
use rust_decimal::Decimal;

use super::lines::NewLine;
use super::{Ledger, Outputs};

impl Ledger {
    pub(super) fn credit_subscriptions(&mut self, program: &Program, now: Timestamp, out: &mut Outputs) {
        let due: Vec<OrderKey> = self
            .subscriptions
            .iter()
            .filter(|(_, account)| account.status != SubscriptionStatus::Closed && account.next_credit_at() <= now)
            .map(|(order_key, _)| order_key.clone())
            .collect();
        for order_key in due {
            self.credit_account(program, &order_key, now, out);
        }
    }

    fn credit_account(&mut self, program: &Program, order_key: &OrderKey, now: Timestamp, out: &mut Outputs) {
        loop {
            let Some(account) = self.subscriptions.get_mut(order_key) else {
                return;
            };
            let due_at = account.next_credit_at();
            let cancelled_before = account.cancelled_at.is_some_and(|cancelled_at| due_at > cancelled_at);
            if account.status == SubscriptionStatus::Closed || due_at > now || cancelled_before {
                return;
            }
            account.credits_since_anchor += 1;
            account.credits += 1;
            account.revision += 1;
            let account = account.clone();
            out.subscriptions.push(account.clone());

            // Only approved members earn; a stopped member's account keeps counting without paying.
            let earner_approved = program.member(&account.member).is_some_and(|member| member.is_approved());
            let Some(payout) = program.payout(&account.offer, &account.member).filter(|_| earner_approved) else {
                continue;
            };
            let exact = account.rate * account.recurring_amount;
            let amount = round_commission(exact);
            let credit_number = account.credits.to_string();
            let first = NewLine {
                id: DerivedId::derive(&["recurring", &account.conversion.to_string(), &credit_number]),
                member: account.member.clone(),
                offer: Some(account.offer.clone()),
                order_key: Some(order_key.clone()),
                source: account.conversion,
                kind: LineKind::Recurring,
                rule: "recurring".to_string(),
                keyword: account.name.clone(),
                exact,
                currency: account.currency,
                status: LineStatus::Approved,
                description: format!("Subscription => {} Commission => {amount}", account.name),
                earned_at: due_at,
                approve_at: None,
            };
            self.credit(program, first, payout.option.tier2, payout.option.tier3, out);
        }
    }

    /// A rejected or fully refunded first sale ends its subscription.
    pub(super) fn close_subscription(&mut self, order_key: &OrderKey, out: &mut Outputs) {
        if let Some(account) = self.subscriptions.get_mut(order_key) {
            if account.status != SubscriptionStatus::Closed {
                account.status = SubscriptionStatus::Closed;
                account.revision += 1;
                out.subscriptions.push(account.clone());
            }
        }
    }

    /// New terms for future credits: the next credit falls due one new interval after the
    /// last one (or after the sale when none was made yet).
    pub(super) fn change_terms(
        &mut self,
        order_key: &OrderKey,
        rate: Decimal,
        every: Interval,
        _at: Timestamp,
        out: &mut Outputs,
    ) {
        let Some(account) = self.subscriptions.get_mut(order_key) else {
            return;
        };
        if (account.rate, account.every) == (rate, every) {
            return;
        }
        account.anchor_at = account.anchor_at.add_interval(account.every, account.credits_since_anchor);
        account.credits_since_anchor = 0;
        account.rate = rate;
        account.every = every;
        account.revision += 1;
        out.subscriptions.push(account.clone());
    }
}

impl Ledger {
    pub(super) fn on_cancel(&mut self, order_key: &OrderKey, cancel: &SubscriptionCancel, out: &mut Outputs) {
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

    pub(super) fn open_subscription(
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
}
