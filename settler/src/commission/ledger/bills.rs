//! Commission bills (seed 003, "Commission bill"; docs/RULES.md, "Bills").
//!
//! A bill run turns each member's approved, unbilled lines earned before the period end into
//! one bill per currency. A total under the member's minimum payout, or not above zero,
//! carries over: the bill is recorded as `carried_over` and its lines wait for the next run.
//! Refunds after billing arrive as negative adjustment lines and are billed the same way.

use std::collections::BTreeMap;

use model::events::{Bill, BillStatus, LineStatus, NoticeKind};
use model::ids::{DerivedId, MemberId};
use model::program::Program;
use model::{Currency, Timestamp};
use rust_decimal::Decimal;

use super::{Ledger, LedgerNotice, Outputs};

impl Ledger {
    pub(super) fn run_bills(
        &mut self,
        program: &Program,
        period_end: Timestamp,
        issued_at: Timestamp,
        out: &mut Outputs,
    ) {
        let mut groups: BTreeMap<(MemberId, Currency), (Decimal, Vec<DerivedId>)> = BTreeMap::new();
        for (id, state) in self.lines.iter() {
            let line = &state.line;
            if line.status == LineStatus::Approved && line.bill.is_none() && line.earned_at < period_end {
                let group = groups.entry((line.member.clone(), line.currency)).or_default();
                group.0 += line.amount;
                group.1.push(id.clone());
            }
        }
        let period_key = period_end.to_string();
        for ((member_id, currency), (total, line_ids)) in groups {
            let id = DerivedId::derive(&["bill", member_id.as_str(), currency.as_str(), &period_key]);
            let previous = self.bills.get(&id);
            if previous.is_some_and(|bill| bill.status != BillStatus::CarriedOver) {
                continue;
            }
            let minimum = program.member(&member_id).map_or(Decimal::ZERO, |member| member.minimum_payout);
            let payable = total > Decimal::ZERO && total >= minimum;
            let bill = Bill {
                id: id.clone(),
                member: member_id,
                currency,
                period_end,
                total,
                lines: u32::try_from(line_ids.len()).unwrap_or(u32::MAX),
                status: if payable { BillStatus::Unpaid } else { BillStatus::CarriedOver },
                issued_at,
                paid_at: None,
                revision: previous.map_or(0, |bill| bill.revision + 1),
            };
            if payable {
                for line_id in &line_ids {
                    self.update_line(line_id, out, |state| {
                        state.line.status = LineStatus::Billed;
                        state.line.bill = Some(id.clone());
                        state.accounted = state.line.amount;
                    });
                }
            }
            if payable {
                out.notice(|| LedgerNotice::Bill { kind: NoticeKind::BillCreated, bill: id.clone() });
            }
            out.bills.push(bill.clone());
            self.bills.insert(id, bill);
        }
    }

    pub(super) fn mark_paid(&mut self, bill_id: &DerivedId, paid_at: Timestamp, out: &mut Outputs) {
        let Some(bill) = self.bills.get_mut(bill_id) else {
            return;
        };
        if bill.status != BillStatus::Unpaid {
            return;
        }
        bill.status = BillStatus::Paid;
        bill.paid_at = Some(paid_at);
        bill.revision += 1;
        out.bills.push(bill.clone());
        out.notice(|| LedgerNotice::Bill { kind: NoticeKind::BillPaid, bill: bill_id.clone() });
        let line_ids: Vec<DerivedId> = self
            .lines
            .iter()
            .filter(|(_, state)| state.line.bill.as_ref() == Some(bill_id))
            .map(|(id, _)| id.clone())
            .collect();
        for line_id in line_ids {
            self.update_line(&line_id, out, |state| state.line.status = LineStatus::Paid);
        }
    }
}
