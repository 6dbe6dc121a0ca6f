//! Clicks: unique clicks per visitor and window, and CPC lines by instance (seed 004,
//! "Commission per click").

use model::events::{Click, LineKind};
use model::ids::DerivedId;
use model::program::Program;
use model::{Span, Timestamp};
use rust_decimal::Decimal;

use super::Ledger;
use super::Outputs;
use super::lines::{NewLine, hold_until, initial_status};
use crate::commission::rules::{self};
use crate::commission::sequence::SeqKey;

pub(super) fn click_line_id(click: &str) -> DerivedId {
    DerivedId::derive(&["click", click])
}

impl Ledger {
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

    pub(super) fn on_click(&mut self, program: &Program, click: &Click, out: &mut Outputs) {
        let unique = self.count_click(program, click, out);
        out.clicks.push((click.id, unique));
    }

    /// Count a click if it is unique and its member's option pays clicks; true if unique.
    pub(super) fn count_click(&mut self, program: &Program, click: &Click, out: &mut Outputs) -> bool {
        if !click.is_countable() {
            return false;
        }
        let Some(offer) = program.offer(&click.offer) else {
            return false;
        };
        // Unique only if neither the client (the edge decided: `Click::client_repeat`) nor the
        // visitor cookie clicked this member's link within the window.
        if click.client_repeat {
            return false;
        }
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
}
