//! Refunds and decisions: a refund reduces an order's lines in proportion (docs/RULES.md,
//! "Refunds"), an approve or reject decides its pending lines, and a hold period approves them
//! by itself.

use model::events::{Decision, LineStatus, Refund, Verdict};
use model::ids::{DerivedId, OrderKey};
use model::program::Program;
use model::{NO_COMMISSION, Timestamp};
use rust_decimal::Decimal;

use super::Ledger;
use super::Outputs;

impl Ledger {
    pub(super) fn on_refund(&mut self, order_key: &OrderKey, refund: &Refund, out: &mut Outputs) {
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

    pub(super) fn on_decision(&mut self, program: &Program, decision: &Decision, out: &mut Outputs) {
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

    pub(super) fn approve_held(&mut self, now: Timestamp, out: &mut Outputs) {
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
