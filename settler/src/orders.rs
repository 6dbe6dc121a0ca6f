//! The order stage: one commission per order (docs/RULES.md, "One commission per order").
//!
//! It consumes `orders`, keyed by order, so every conversion, refund, cancel and decision of an
//! order meets here. The winner of an order is the advertiser's authenticated postback over
//! any pixel (docs/ARCHITECTURE.md, "Trust and threats"), then the earliest attributed
//! conversion by event time, then event id — not the first to arrive, which would depend on
//! which upstream partition was faster. When an earlier conversion arrives after a later one already won, the
//! ledger is told to withdraw the old winner's lines and the new winner is sent with every
//! refund, cancel and decision of the order. Every conversion is stored with its status:
//! attributed, duplicate, or rejected with its reason.

use std::collections::BTreeMap;

use model::events::{
    AttributedConversion, LedgerEvent, Notice, NoticeConversion, NoticeEvent, NoticeKind, OrderEvent, Reason,
    RejectedConversion, wire,
};
use model::events::{ConversionRow, ConversionStatus};
use model::ids::EventId;
use model::program::{OverCap, Program};
use model::time::Timestamp;
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};
use serde::{Deserialize, Serialize};

use crate::commission::sequence::SeqKey;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The order's attributed conversions in canonical order; the first is the winner.
    candidates: Candidates,
    /// The winner the ledger has.
    winner: Option<SeqKey>,
    /// Refunds, cancels and decisions, in arrival order.
    changes: Vec<OrderEvent>,
    /// Raised with every change of a conversion's status (the store keeps the highest).
    revision: u64,
    /// The caps' last verdict on the winner: its conversion and whether it is within them.
    #[serde(default)]
    cap_verdict: Option<(EventId, bool)>,
}

impl pipeline::WholeState for OrderState {}

/// An order's attributed conversions by canonical order, in a vector: almost every order has
/// one, and a B-tree's first node has room for eleven (about 7 KB for a single conversion,
/// which was most of the settler's heap). Saved as the map it was, so saved states read the
/// same.
#[derive(Clone, Debug, Default, PartialEq)]
struct Candidates(Vec<(SeqKey, AttributedConversion)>);

impl Candidates {
    fn position(&self, key: &SeqKey) -> Result<usize, usize> {
        self.0.binary_search_by(|(known, _)| known.cmp(key))
    }

    fn contains_key(&self, key: &SeqKey) -> bool {
        self.position(key).is_ok()
    }

    fn get(&self, key: &SeqKey) -> Option<&AttributedConversion> {
        self.position(key).ok().map(|at| &self.0[at].1)
    }

    fn insert(&mut self, key: SeqKey, conversion: AttributedConversion) {
        match self.position(&key) {
            Ok(at) => self.0[at].1 = conversion,
            Err(at) => self.0.insert(at, (key, conversion)),
        }
    }

    fn has_conversion(&self, id: EventId) -> bool {
        self.0.iter().any(|(_, known)| known.conversion.id == id)
    }

    /// The winner: the advertiser's own word first (an authenticated postback over a pixel),
    /// then the earliest by event time, then event id.
    fn winner_key(&self) -> Option<SeqKey> {
        self.0
            .iter()
            .min_by_key(|(key, conversion)| (!conversion.conversion.is_authenticated(), *key))
            .map(|(key, _)| *key)
    }
}

/// The status of an order's winning conversion: attributed; rejected `adjusted` once a program
/// manager reversed the order; rejected `cap_exceeded` over a cap of an offer that rejects what
/// is over (one that holds it pending keeps it attributed, its lines pending).
fn winner_status(
    program: &Program,
    state: &OrderState,
    winner: &AttributedConversion,
) -> (ConversionStatus, Option<Reason>) {
    if state.changes.iter().any(|change| matches!(change, OrderEvent::Reversal(_))) {
        return (ConversionStatus::Rejected, Some(Reason::Adjusted));
    }
    let over = state.cap_verdict == Some((winner.conversion.id, false));
    let rejects = program.offer(&winner.offer).is_none_or(|offer| offer.over_cap == OverCap::Reject);
    if over && rejects {
        return (ConversionStatus::Rejected, Some(Reason::CapExceeded));
    }
    (ConversionStatus::Attributed, None)
}

/// Why `loser` does not win against `winner`.
fn lost_because(winner: Option<&AttributedConversion>, loser: &AttributedConversion) -> Reason {
    let superseded =
        winner.is_some_and(|winner| winner.conversion.is_authenticated()) && !loser.conversion.is_authenticated();
    if superseded { Reason::SupersededByPostback } else { Reason::DuplicateOrder }
}

impl Serialize for Candidates {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, conversion)| (key, conversion)))
    }
}

impl<'de> Deserialize<'de> for Candidates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<SeqKey, AttributedConversion>::deserialize(deserializer)?;
        Ok(Self(map.into_iter().collect()))
    }
}

#[derive(Debug)]
pub struct OrderStage {
    topics: Topics,
}

impl OrderStage {
    pub fn new(topics: Topics) -> Self {
        Self { topics }
    }

    fn to_ledger(&self, program: &Program, member: &model::MemberId, event: &LedgerEvent, out: &mut StageOutput) {
        let family = program.family_of(member).to_string();
        out.records.push(Record {
            topic: self.topics.ledger.clone(),
            key: family,
            payload: wire::encode_compact(event),
        });
    }
}

fn change_id(event: &OrderEvent) -> Option<EventId> {
    match event {
        OrderEvent::Refund(refund) => Some(refund.id),
        OrderEvent::Cancel(cancel) => Some(cancel.id),
        OrderEvent::Decision(decision) => Some(decision.id),
        OrderEvent::Reversal(reversal) => Some(reversal.id),
        OrderEvent::Attributed(_) | OrderEvent::Rejected(_) | OrderEvent::CapVerdict(_) => None,
    }
}

/// The ledger event that applies an order change to the winner.
fn ledger_change(order_key: &model::OrderKey, event: &OrderEvent) -> Option<LedgerEvent> {
    match event {
        OrderEvent::Refund(refund) => {
            Some(LedgerEvent::Refund { order_key: order_key.clone(), refund: refund.clone() })
        }
        OrderEvent::Cancel(cancel) => {
            Some(LedgerEvent::Cancel { order_key: order_key.clone(), cancel: cancel.clone() })
        }
        OrderEvent::Decision(decision) => Some(LedgerEvent::Decision(decision.clone())),
        OrderEvent::Reversal(reversal) => Some(LedgerEvent::Reversal(reversal.clone())),
        OrderEvent::Attributed(_) | OrderEvent::Rejected(_) | OrderEvent::CapVerdict(_) => None,
    }
}

/// A conversion row; a conversion sent without a currency is in its offer's. A duplicate or
/// rejected one says why.
fn row(
    program: &Program,
    attributed: &AttributedConversion,
    status: ConversionStatus,
    lost: Option<Reason>,
    revision: u64,
) -> ConversionRow {
    let mut conversion = attributed.conversion.clone();
    if conversion.currency.is_none() {
        conversion.currency = program.offer(&attributed.offer).map(|offer| offer.currency);
    }
    ConversionRow {
        conversion,
        status,
        reason: lost.filter(|_| status != ConversionStatus::Attributed),
        advertiser: Some(attributed.advertiser.clone()),
        order_key: Some(attributed.order_key.clone()),
        offer: Some(attributed.offer.clone()),
        member: Some(attributed.member.clone()),
        via: attributed.via.as_str().to_string(),
        revision,
        subs: attributed.click.as_ref().map(|click| click.subs.clone()).unwrap_or_default(),
    }
}

/// The `conversion.rejected` notice of a conversion that earns nothing.
fn rejected_notice(program: &Program, rejected: &RejectedConversion, now: Timestamp) -> Notice {
    let conversion = &rejected.conversion;
    let offer = rejected.offer.clone().or_else(|| conversion.offer.clone());
    let offer_currency = offer.as_ref().and_then(|offer| program.offer(offer)).map(|offer| offer.currency);
    let kind = NoticeKind::ConversionRejected;
    Notice {
        id: Notice::id_for(kind, &conversion.id.to_string()),
        kind,
        at: now,
        conversion: Some(NoticeConversion {
            id: conversion.id,
            event: conversion.event.clone(),
            order_id: conversion.order_id.as_ref().map(ToString::to_string),
            advertiser: conversion.advertiser.clone(),
            offer,
            member: rejected.member.clone(),
            amount: conversion.sale_amount(),
            currency: conversion.currency.or(offer_currency),
            status: ConversionStatus::Rejected,
            reason: Some(rejected.reason),
            via: rejected.via.as_ref().map_or_else(String::new, |via| via.as_str().to_string()),
            click_id: conversion.click_id.clone(),
            subs: Default::default(),
            occurred_at: conversion.event_time(),
        }),
        commission: None,
        bill: None,
    }
}

impl Stage for OrderStage {
    type Input = OrderEvent;
    type State = OrderState;

    fn name(&self) -> &'static str {
        "orders"
    }

    fn decode(&self, record: &Delivered) -> Result<OrderEvent, wire::WireError> {
        wire::decode(&record.payload)
    }

    fn program_version(&self, input: &OrderEvent) -> u64 {
        match input {
            OrderEvent::Attributed(attributed) => attributed.conversion.program,
            OrderEvent::Rejected(rejected) => rejected.conversion.program,
            _ => 0,
        }
    }

    fn received_at(&self, input: &OrderEvent) -> Option<Timestamp> {
        match input {
            OrderEvent::Attributed(attributed) => Some(attributed.conversion.received_at),
            OrderEvent::Rejected(rejected) => Some(rejected.conversion.received_at),
            OrderEvent::Refund(refund) => Some(refund.received_at),
            OrderEvent::Cancel(cancel) => Some(cancel.received_at),
            OrderEvent::Decision(decision) => Some(decision.received_at),
            OrderEvent::Reversal(reversal) => Some(reversal.received_at),
            OrderEvent::CapVerdict(_) => None,
        }
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        state: &mut OrderState,
        input: OrderEvent,
        out: &mut StageOutput,
    ) -> bool {
        let program = context.program;
        match input {
            OrderEvent::Rejected(rejected) => {
                if program.notifies(NoticeKind::ConversionRejected) {
                    let notice = rejected_notice(program, &rejected, context.now);
                    out.records.push(Record {
                        topic: self.topics.notices.clone(),
                        key: notice.id.to_string(),
                        payload: wire::encode_compact(&NoticeEvent::Notice(notice)),
                    });
                }
                out.store.conversions.push(ConversionRow {
                    advertiser: rejected.conversion.advertiser.clone(),
                    order_key: rejected.order_key.clone(),
                    offer: rejected.offer.clone().or_else(|| rejected.conversion.offer.clone()),
                    member: rejected.member.clone(),
                    status: ConversionStatus::Rejected,
                    reason: Some(rejected.reason),
                    via: rejected.via.as_ref().map_or_else(String::new, |via| via.as_str().to_string()),
                    revision: 1,
                    subs: Default::default(),
                    conversion: rejected.conversion,
                });
                false
            }
            OrderEvent::Attributed(attributed) => {
                let key = SeqKey { at: attributed.conversion.event_time(), id: attributed.conversion.id };
                // The same event twice (a repeat, or one signed request taken by two edges at
                // different times): once.
                if state.candidates.contains_key(&key) || state.candidates.has_conversion(attributed.conversion.id) {
                    return false;
                }
                state.revision += 1;
                state.candidates.insert(key, attributed);
                let winner = state.candidates.winner_key();
                if winner != Some(key) {
                    let winner = winner.and_then(|winner| state.candidates.get(&winner));
                    if let Some(attributed) = state.candidates.get(&key) {
                        let lost = lost_because(winner, attributed);
                        out.store.conversions.push(row(
                            program,
                            attributed,
                            ConversionStatus::Duplicate,
                            Some(lost),
                            state.revision,
                        ));
                    }
                    return true;
                }
                if let Some(previous) = state.winner.and_then(|previous| state.candidates.get(&previous)) {
                    let withdraw = LedgerEvent::Withdraw {
                        order_key: previous.order_key.clone(),
                        conversion: previous.conversion.id,
                    };
                    self.to_ledger(program, &previous.member, &withdraw, out);
                    let lost = lost_because(state.candidates.get(&key), previous);
                    out.store.conversions.push(row(
                        program,
                        previous,
                        ConversionStatus::Duplicate,
                        Some(lost),
                        state.revision,
                    ));
                }
                state.winner = Some(key);
                let Some(attributed) = state.candidates.get(&key) else {
                    return true;
                };
                self.to_ledger(program, &attributed.member, &LedgerEvent::Order(attributed.clone()), out);
                for change in &state.changes {
                    if let Some(event) = ledger_change(&attributed.order_key, change) {
                        self.to_ledger(program, &attributed.member, &event, out);
                    }
                }
                let (status, reason) = winner_status(program, state, attributed);
                out.store.conversions.push(row(program, attributed, status, reason, state.revision));
                true
            }
            OrderEvent::CapVerdict(verdict) => {
                let Some(winner) = state.winner.and_then(|winner| state.candidates.get(&winner)) else {
                    return false;
                };
                let decided = (verdict.conversion, verdict.within);
                if winner.conversion.id != verdict.conversion || state.cap_verdict == Some(decided) {
                    return false;
                }
                self.to_ledger(program, &winner.member, &LedgerEvent::CapVerdict(verdict.clone()), out);
                let winner = winner.clone();
                state.cap_verdict = Some(decided);
                state.revision += 1;
                let (status, reason) = winner_status(program, state, &winner);
                out.store.conversions.push(row(program, &winner, status, reason, state.revision));
                true
            }
            change => {
                let Some(id) = change_id(&change) else {
                    return false;
                };
                if state.changes.iter().any(|known| change_id(known) == Some(id)) {
                    return false;
                }
                let reversal = matches!(change, OrderEvent::Reversal(_));
                state.changes.push(change);
                if let Some(winner) = state.winner.and_then(|winner| state.candidates.get(&winner)) {
                    if let Some(event) =
                        state.changes.last().and_then(|change| ledger_change(&winner.order_key, change))
                    {
                        self.to_ledger(program, &winner.member, &event, out);
                    }
                    if reversal {
                        // The reversed order's conversion is rejected for the reports too.
                        state.revision += 1;
                        let (status, reason) = winner_status(program, state, winner);
                        out.store.conversions.push(row(program, winner, status, reason, state.revision));
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use model::testkit::{attributed, sale, ts};
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn candidates_are_saved_as_the_map_they_were_and_read_back_in_canonical_order() {
        let late = attributed(sale(2, "A1", Decimal::from(80), ts("2026-03-02T10:00:00Z")), "store", "ann");
        let early = attributed(sale(9, "A1", Decimal::from(80), ts("2026-03-01T10:00:00Z")), "store", "bob");
        let key = |conversion: &AttributedConversion| SeqKey {
            at: conversion.conversion.event_time(),
            id: conversion.conversion.id,
        };
        let mut candidates = Candidates::default();
        candidates.insert(key(&late), late.clone());
        candidates.insert(key(&early), early.clone());
        assert_eq!(candidates.winner_key(), Some(key(&early)), "the earlier event wins, whatever came first");
        let map: BTreeMap<SeqKey, AttributedConversion> = [(key(&late), late), (key(&early), early)].into();

        let saved = rmp_serde::to_vec_named(&candidates).unwrap();
        assert_eq!(saved, rmp_serde::to_vec_named(&map).unwrap());
        assert_eq!(rmp_serde::from_slice::<Candidates>(&saved).unwrap(), candidates);
    }
}
