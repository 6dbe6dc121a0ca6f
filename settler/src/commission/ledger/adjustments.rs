//! A program manager's corrections: reversing an order that should not pay (fraud, a mistake),
//! and bonus or clawback lines (docs/RULES.md, "Adjustments").

use model::events::{LineKind, LineStatus, ManualLine, Reversal};
use model::ids::DerivedId;
use model::program::Program;
use model::round_commission;
use rust_decimal::Decimal;

use super::Ledger;
use super::Outputs;
use super::lines::NewLine;

pub(super) fn manual_line_id(line: &ManualLine) -> DerivedId {
    DerivedId::derive(&["manual", &line.id.to_string()])
}

impl Ledger {
    /// Every line of the order earns nothing: unbilled lines are reversed in place, billed
    /// ones get a correction in the next bill. The order no longer counts for the instances
    /// of the orders after it (like a rejected one); the sale itself stands.
    pub(super) fn on_reversal(&mut self, program: &Program, reversal: &Reversal, out: &mut Outputs) {
        let Some(book) = self.orders.get_mut(&reversal.order_key) else {
            return;
        };
        if book.applied.contains(&reversal.id) || book.rejected {
            return;
        }
        book.applied.push(reversal.id);
        self.uncount_order(program, &reversal.order_key, reversal.id, out);
        let Some(book) = self.orders.get_mut(&reversal.order_key) else {
            return;
        };
        book.rejected = true;
        let lines = book.lines.clone();
        let firsts: Vec<(DerivedId, Decimal)> = lines
            .iter()
            .filter_map(|id| {
                let state = self.lines.get(id)?;
                state.follows.is_none().then(|| (id.clone(), state.exact))
            })
            .collect();
        for (id, exact) in firsts {
            self.reprice(&id, exact, Decimal::ZERO, true, reversal.id, out);
        }
        let note = format!("reversed by {} at {}: {}", reversal.actor, reversal.received_at, reversal.reason);
        for id in &lines {
            let reversed = self.lines.get(id).is_some_and(|state| state.line.status == LineStatus::Reversed);
            if reversed {
                self.update_line(id, out, |state| {
                    state.line.description = format!("{} ({note})", state.line.description);
                });
            }
        }
        self.close_subscription(&reversal.order_key, out);
    }

    /// A bonus or clawback: one approved line for the member, billed with the next bill, with
    /// who asked for it, when and why in its description. No tier lines follow it.
    pub(super) fn on_manual(&mut self, program: &Program, manual: &ManualLine, out: &mut Outputs) {
        let (kind, word) = if manual.amount.is_sign_negative() {
            (LineKind::Clawback, "Clawback")
        } else {
            (LineKind::Bonus, "Bonus")
        };
        let line = NewLine {
            id: manual_line_id(manual),
            member: manual.member.clone(),
            offer: manual.offer.clone(),
            order_key: None,
            source: manual.id,
            kind,
            rule: kind.as_str().to_string(),
            keyword: kind.as_str().to_string(),
            exact: round_commission(manual.amount),
            currency: manual.currency,
            status: LineStatus::Approved,
            description: format!("{word} by {} at {}: {}", manual.actor, manual.at, manual.reason),
            earned_at: manual.at,
            approve_at: None,
        };
        self.credit(program, line, None, None, out);
    }
}
