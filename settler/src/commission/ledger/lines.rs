//! Commission lines: created with the tier lines that follow them, changed with a raised
//! revision, brought to a new amount in place before billing and by an adjustment line after.

use model::events::{CommissionLine, LineKind, LineStatus, NoticeKind};
use model::ids::{DerivedId, EventId, MemberId, OfferId, OrderKey};
use model::program::Program;
use model::{Currency, NO_COMMISSION, Span, Timestamp, round_commission};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerNotice, Outputs};
use crate::commission::tiers::tier_shares;

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
        out.notice(|| LedgerNotice::Line { kind: NoticeKind::CommissionCreated, line: new.id.clone() });
        if let Some(kind) = status_notice(line.status) {
            out.notice(|| LedgerNotice::Line { kind, line: new.id.clone() });
        }
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
            let before = state.line.status;
            change(state);
            state.line.revision += 1;
            out.lines.push(state.line.clone());
            if state.line.status != before
                && let Some(kind) = status_notice(state.line.status)
            {
                out.notice(|| LedgerNotice::Line { kind, line: id.clone() });
            }
        }
    }

    /// Give a 1st-tier line a new exact amount and bring it, and the tier lines that follow it,
    /// to what it now pays: `exact × remaining` rounded (0 and `reversed` when `fully_refunded`).
    pub(super) fn reprice(
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
    pub(super) fn settle_line(
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
}

/// The notice a line reaching `status` gives, if any (billed and paid lines are told of by
/// their bill's notices).
fn status_notice(status: LineStatus) -> Option<NoticeKind> {
    match status {
        LineStatus::Approved => Some(NoticeKind::CommissionApproved),
        LineStatus::Rejected => Some(NoticeKind::CommissionRejected),
        LineStatus::Reversed => Some(NoticeKind::CommissionReversed),
        LineStatus::Pending | LineStatus::Billed | LineStatus::Paid | LineStatus::Withdrawn => None,
    }
}

pub(super) fn initial_status(pending: bool) -> LineStatus {
    if pending { LineStatus::Pending } else { LineStatus::Approved }
}

pub(super) fn hold_until(pending: bool, hold: Option<Span>, earned_at: Timestamp) -> Option<Timestamp> {
    hold.filter(|_| pending).map(|hold| earned_at.saturating_add(hold))
}

pub(super) fn describe_pending(pending: bool, description: String) -> String {
    if pending { format!("Pending: {description}") } else { description }
}
