//! The attributor stage: consumes `events` (keyed by visitor), keeps each visitor's recent
//! clicks, passes every click on to `ledger` (keyed by the member's family) and turns every
//! conversion into an attributed or rejected one on `orders` (keyed by order).

use model::clickid::ClickKeyRing;
use model::events::{AttributedConversion, Click, LedgerEvent, OrderEvent, RejectedConversion, TrackingEvent, wire};
use model::{Span, Timestamp};
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};
use serde::{Deserialize, Serialize};

use crate::attribution::{Outcome, RecentClick, attribute};

/// Clicks kept per visitor at most; older ones give way.
pub const MAX_CLICKS_PER_VISITOR: usize = 32;
/// No cookie window is longer than this, so older clicks are dropped.
pub const LONGEST_WINDOW: Span = Span::days(365);

/// What the attributor remembers of a visitor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VisitorState {
    pub clicks: Vec<RecentClick>,
}

impl pipeline::WholeState for VisitorState {}

impl VisitorState {
    fn remember(&mut self, click: &Click) {
        let recent = RecentClick {
            id: click.id,
            at: click.received_at,
            offer: click.offer.clone(),
            member: click.member.clone(),
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
}

impl AttributorStage {
    pub fn new(topics: Topics, keys: ClickKeyRing) -> Self {
        Self { topics, keys }
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

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        state: &mut VisitorState,
        input: TrackingEvent,
        out: &mut StageOutput,
    ) -> bool {
        match input {
            TrackingEvent::Click(click) => {
                let countable = click.is_countable();
                if countable {
                    state.remember(&click);
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
                    Outcome::Attributed { advertiser, offer, member, via } => {
                        let order_key = conversion.order_key(&advertiser);
                        let attributed = AttributedConversion {
                            order_key: order_key.clone(),
                            advertiser,
                            offer,
                            member,
                            via,
                            conversion,
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
