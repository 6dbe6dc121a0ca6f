//! The attributor stage: consumes `events` (keyed by visitor), keeps each visitor's recent
//! clicks, passes every click on to `ledger` (keyed by the member's family) and turns every
//! conversion into an attributed or rejected one on `orders` (keyed by order).

use std::collections::HashMap;

use model::clickid::ClickKeyRing;
use model::events::{
    AttributedConversion, Click, ClickTrace, Conversion, LedgerEvent, OrderEvent, RejectedConversion, Subs,
    TrackingEvent, Via, wire,
};
use model::program::Program;
use model::{Span, Timestamp};
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};
use serde::{Deserialize, Serialize};

use crate::attribution::{Outcome, RecentClick, attribute};

/// Clicks kept per visitor at most; older ones give way.
pub const MAX_CLICKS_PER_VISITOR: usize = 32;
/// No cookie window is longer than this, so older clicks are dropped.
pub const LONGEST_WINDOW: Span = Span::days(365);
/// A click is forgotten this long after its cookie window ended, by the event time of its
/// partition: late conversions (an `occurred_at` in the past, a backlog) still find it.
pub const FORGET_AFTER: Span = Span::days(1);
/// How often (wall clock) the attributor looks for visitors to forget.
pub const FORGET_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What the attributor remembers of a visitor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VisitorState {
    pub clicks: Vec<RecentClick>,
}

impl pipeline::WholeState for VisitorState {}

impl VisitorState {
    /// Remember a click; with its `sub1`..`sub5` when it has any (the sub breakdown of the
    /// reports), and its click id too when `notifying` (partner postbacks send it back).
    fn remember(&mut self, click: &Click, notifying: bool) {
        let has_subs = click.subs != Subs::default();
        let trace = (notifying || has_subs).then(|| {
            let click_id = if notifying { click.click_id.clone() } else { String::new() };
            Box::new(ClickTrace { click_id, subs: click.subs.clone() })
        });
        let recent = RecentClick {
            id: click.id,
            at: click.received_at,
            offer: click.offer.clone(),
            member: click.member.clone(),
            trace,
        };
        let position = self.clicks.partition_point(|known| (known.at, known.id) < (recent.at, recent.id));
        if self.clicks.get(position).is_some_and(|known| known.id == recent.id) {
            return;
        }
        self.clicks.insert(position, recent);
        let newest = self.clicks.last().map_or(Timestamp::from_millis(0), |click| click.at);
        self.clicks.retain(|known| known.at.saturating_add(LONGEST_WINDOW) >= newest);
        let excess = self.clicks.len().saturating_sub(MAX_CLICKS_PER_VISITOR);
        self.clicks.drain(..excess);
    }
}

#[derive(Debug)]
pub struct AttributorStage {
    topics: Topics,
    keys: ClickKeyRing,
    /// The newest event time seen per input partition: the clock clicks expire by.
    event_time: HashMap<u32, Timestamp>,
    /// When the last look for visitors to forget began, whether one is going on, and how often
    /// one is due.
    swept_at: Option<std::time::Instant>,
    sweeping: bool,
    forget_every: std::time::Duration,
}

impl AttributorStage {
    pub fn new(topics: Topics, keys: ClickKeyRing) -> Self {
        Self { topics, keys, event_time: HashMap::new(), swept_at: None, sweeping: false, forget_every: FORGET_EVERY }
    }

    /// Look for visitors to forget this often instead (benchmarks, tests).
    pub fn forgetting_every(mut self, every: std::time::Duration) -> Self {
        self.forget_every = every;
        self
    }

    fn saw(&mut self, partition: u32, at: Timestamp) {
        let newest = self.event_time.entry(partition).or_insert(at);
        *newest = (*newest).max(at);
    }
}

/// Forget the clicks whose cookie window (the offer's, or the member's override) ended more
/// than [`FORGET_AFTER`] before `event_time`; true if any went.
fn forget_expired(program: &Program, state: &mut VisitorState, event_time: Timestamp) -> bool {
    let before = state.clicks.len();
    state.clicks.retain(|click| {
        let window = program
            .member(&click.member)
            .and_then(|member| member.cookie_window)
            .or_else(|| program.offer(&click.offer).map(|offer| offer.cookie_window))
            .unwrap_or(LONGEST_WINDOW);
        click.at.saturating_add(window).saturating_add(FORGET_AFTER) >= event_time
    });
    state.clicks.len() < before
}

/// The click a conversion was attributed through, as its partner knows it: the remembered
/// click's id and subs, or the click id a postback sent back.
fn trace_of(via: &Via, conversion: &Conversion, recent: &[RecentClick]) -> Option<ClickTrace> {
    let click = match via {
        Via::Cookie { click, .. } | Via::ClickId { click, .. } => *click,
        Via::Code { .. } => return None,
    };
    match recent.iter().find(|recent| recent.id == click).and_then(|recent| recent.trace.as_deref()) {
        Some(trace) if trace.click_id.is_empty() => {
            Some(ClickTrace { click_id: conversion.click_id.clone().unwrap_or_default(), subs: trace.subs.clone() })
        }
        Some(trace) => Some(trace.clone()),
        None => conversion.click_id.clone().map(|click_id| ClickTrace { click_id, subs: Default::default() }),
    }
}

impl Stage for AttributorStage {
    type Input = TrackingEvent;
    type State = VisitorState;

    fn name(&self) -> &'static str {
        "attributor"
    }

    fn decode(&self, record: &Delivered) -> Result<TrackingEvent, wire::WireError> {
        wire::decode(&record.payload)
    }

    fn program_version(&self, input: &TrackingEvent) -> u64 {
        match input {
            TrackingEvent::Click(click) => click.program,
            TrackingEvent::Conversion(conversion) => conversion.program,
        }
    }

    fn received_at(&self, input: &TrackingEvent) -> Option<Timestamp> {
        Some(match input {
            TrackingEvent::Click(click) => click.received_at,
            TrackingEvent::Conversion(conversion) => conversion.received_at,
        })
    }

    /// Every [`FORGET_EVERY`], every visitor is checked for clicks no window can use.
    fn begin_tick(&mut self, _now: Timestamp) -> bool {
        self.sweeping = self.swept_at.is_none_or(|at| at.elapsed() >= self.forget_every);
        if self.sweeping {
            self.swept_at = Some(std::time::Instant::now());
        }
        self.sweeping
    }

    fn wants_tick(&self, state: &VisitorState) -> bool {
        self.sweeping && !state.clicks.is_empty()
    }

    fn tick(&mut self, context: &Context<'_>, _key: &str, state: &mut VisitorState, _out: &mut StageOutput) -> bool {
        match self.event_time.get(&context.partition) {
            Some(event_time) => forget_expired(context.program, state, *event_time),
            None => false,
        }
    }

    /// A visitor without clicks is remembered for nothing: its conversions find no cookie
    /// click either way.
    fn is_forgettable(&self, state: &VisitorState) -> bool {
        state.clicks.is_empty()
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        state: &mut VisitorState,
        input: TrackingEvent,
        out: &mut StageOutput,
    ) -> bool {
        let at = match &input {
            TrackingEvent::Click(click) => click.received_at,
            TrackingEvent::Conversion(conversion) => conversion.received_at,
        };
        self.saw(context.partition, at);
        match input {
            TrackingEvent::Click(click) => {
                let countable = click.is_countable();
                if countable {
                    state.remember(&click, context.program.notifies_anything());
                }
                let family = context.program.family_of(&click.member).to_string();
                out.records.push(Record {
                    topic: self.topics.ledger.clone(),
                    key: family,
                    payload: wire::encode_compact(&LedgerEvent::Click(click)),
                });
                countable
            }
            TrackingEvent::Conversion(conversion) => {
                let outcome = attribute(context.program, &self.keys, &conversion, &state.clicks);
                let (key, event) = match outcome {
                    Outcome::Attributed { advertiser, offer, member, via, unverified } => {
                        let order_key = conversion.order_key(&advertiser);
                        let click = trace_of(&via, &conversion, &state.clicks);
                        let attributed = AttributedConversion {
                            order_key: order_key.clone(),
                            advertiser,
                            offer,
                            member,
                            via,
                            conversion,
                            unverified,
                            click,
                        };
                        (order_key.to_string(), OrderEvent::Attributed(attributed))
                    }
                    Outcome::Rejected { reason, advertiser, offer, member, via } => {
                        let advertiser = advertiser.or_else(|| conversion.advertiser.clone());
                        let order_key = advertiser.as_ref().map(|advertiser| conversion.order_key(advertiser));
                        let key = order_key.as_ref().map_or_else(|| conversion.id.to_string(), ToString::to_string);
                        let rejected = RejectedConversion { conversion, reason, order_key, offer, member, via };
                        (key, OrderEvent::Rejected(rejected))
                    }
                };
                out.records.push(Record {
                    topic: self.topics.orders.clone(),
                    key,
                    payload: wire::encode_compact(&event),
                });
                false
            }
        }
    }
}
