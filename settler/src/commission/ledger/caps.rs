//! Caps, from the ledger's side (docs/RULES.md, "Caps"): an order subject to caps claims on
//! them — the 1st-tier commission it would pay — whenever that changes, and applies the caps'
//! verdict to its lines. The counting itself has one owner per offer, the caps stage
//! (`crate::caps`), since an offer's orders are spread over every family's ledger.

use model::events::{CapClaim, CapVerdict, LineKind, LineStatus};
use model::ids::{DerivedId, OrderKey};
use model::program::{OverCap, Program};
use model::{NO_COMMISSION, round_commission};
use rust_decimal::Decimal;

use super::Ledger;
use super::Outputs;
use super::lines::initial_status;
use super::orders::OrderBook;

pub(super) fn claim_of(order_key: &OrderKey, book: &OrderBook, payout: Decimal, active: bool) -> CapClaim {
    CapClaim {
        order_key: order_key.clone(),
        conversion: book.conversion,
        offer: book.offer.clone(),
        member: book.member.clone(),
        at: book.key.at,
        payout,
        active,
    }
}

impl Ledger {
    /// The 1st-tier lines of an order with their exact amounts.
    fn first_lines(&self, book: &OrderBook) -> Vec<(DerivedId, Decimal)> {
        book.lines
            .iter()
            .filter_map(|id| {
                let state = self.lines.get(id)?;
                (state.follows.is_none() && state.line.kind == LineKind::Conversion).then(|| (id.clone(), state.exact))
            })
            .collect()
    }

    /// Claims of the capped orders whose claim changed: orders whose lines moved in `out`.
    pub(super) fn claim_changes(&mut self, out: &mut Outputs) {
        let mut touched: Vec<OrderKey> = out
            .lines
            .iter()
            .filter(|line| line.tier == 1 && line.kind == LineKind::Conversion)
            .filter_map(|line| line.order_key.clone())
            .collect();
        touched.sort();
        touched.dedup();
        for order_key in touched {
            let Some(book) = self.orders.get(&order_key).filter(|book| book.capped) else {
                continue;
            };
            let remaining = book.remaining_fraction();
            let payout: Decimal =
                self.first_lines(book).iter().map(|(_, exact)| round_commission(exact * remaining)).sum();
            let active = book.counts() && !book.fully_refunded;
            if book.claimed == Some((payout, active)) {
                continue;
            }
            out.claims.push(claim_of(&order_key, book, payout, active));
            if let Some(book) = self.orders.get_mut(&order_key) {
                book.claimed = Some((payout, active));
            }
        }
    }

    /// Over a cap, the order's lines earn nothing (or wait for a person, with `over_cap =
    /// "pending"`); within again, they earn what they are priced at. A billed line is corrected
    /// in the next bill. Verdicts for another conversion than the order's winner are stale.
    pub(super) fn on_cap_verdict(&mut self, program: &Program, verdict: &CapVerdict, out: &mut Outputs) {
        let Some(book) = self.orders.get_mut(&verdict.order_key) else {
            return;
        };
        if book.conversion != verdict.conversion || book.cap_within == Some(verdict.within) || book.rejected {
            return;
        }
        book.cap_within = Some(verdict.within);
        let over_cap = program.offer(&book.offer).map_or(OverCap::Reject, |offer| offer.over_cap);
        let remaining = book.remaining_fraction();
        let earning = initial_status(book.pricing.as_ref().is_some_and(|pricing| pricing.pending));
        let (status, pays) = match (verdict.within, over_cap) {
            (true, _) => (earning, true),
            (false, OverCap::Reject) => (LineStatus::Rejected, false),
            (false, OverCap::Pending) => (LineStatus::Pending, true),
        };
        let book = book.clone();
        for (first, exact) in self.first_lines(&book) {
            let target = if pays { round_commission(exact * remaining) } else { NO_COMMISSION };
            let followers = self.lines.get(&first).map(|state| state.followers.clone()).unwrap_or_default();
            self.cap_line(&first, target, status, verdict.conversion, out);
            for (tier, rate) in followers {
                self.cap_line(&tier, round_commission(rate * target), status, verdict.conversion, out);
            }
        }
    }

    /// Bring one line to `target` and `status` for a cap verdict: unbilled lines in place
    /// (including a line this made `rejected`, which a later verdict may revive), billed ones
    /// by a correction.
    fn cap_line(
        &mut self,
        id: &DerivedId,
        target: Decimal,
        status: LineStatus,
        cause: model::EventId,
        out: &mut Outputs,
    ) {
        let Some(state) = self.lines.get(id) else {
            return;
        };
        let line = &state.line;
        if matches!(line.status, LineStatus::Reversed | LineStatus::Withdrawn) {
            return;
        }
        if line.status.is_billed() {
            self.settle_line(id, target, None, cause, out);
            return;
        }
        if line.amount == target && line.status == status {
            return;
        }
        self.update_line(id, out, |state| {
            state.line.amount = target;
            state.line.status = status;
            if status != LineStatus::Pending {
                state.approve_at = None;
            }
        });
    }
}
