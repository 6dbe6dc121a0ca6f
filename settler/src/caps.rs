//! The caps stage: the one owner of an offer's cap counters (docs/ARCHITECTURE.md, "Caps").
//!
//! It consumes `caps`, keyed by offer, so every claim of an offer's orders — whichever family's
//! ledger priced them — meets here. Counting is in canonical order (event time, then conversion
//! id), not arrival order: a claim is within the caps if, counting only the claims before it
//! that were within, every cap of its period still has room for it — a conversion, and its
//! 1st-tier commission under a payout cap. Every claim recounts its month (days are inside
//! months), so a late claim that comes first moves the later ones, and the verdicts end the same
//! whatever the partitions and workers. A changed verdict goes to `orders`, keyed by order, where
//! the order stage marks the conversion and forwards it to the ledger.

use std::collections::HashMap;

use model::events::{CapClaim, CapVerdict, OrderEvent, wire};
use model::ids::{EventId, MemberId, OrderKey};
use model::program::{Cap, CapPeriod, PeriodKey, Program};
use model::time::Timestamp;
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::{Context, Stage, StageOutput};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An offer's claims: the months before the previous one of its newest claim are forgotten.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CapBook {
    /// In canonical order.
    claims: Vec<Held>,
}

impl pipeline::WholeState for CapBook {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Held {
    at: Timestamp,
    conversion: EventId,
    order_key: OrderKey,
    member: MemberId,
    payout: Decimal,
    active: bool,
    /// The verdict sent last.
    verdict: Option<bool>,
}

impl Held {
    fn canonical(&self) -> (Timestamp, EventId) {
        (self.at, self.conversion)
    }
}

#[derive(Debug)]
pub struct CapsStage {
    topics: Topics,
}

impl CapsStage {
    pub fn new(topics: Topics) -> Self {
        Self { topics }
    }
}

/// Room used in one cap's period: conversions and payout within.
#[derive(Default)]
struct Used {
    conversions: u32,
    payout: Decimal,
}

impl Used {
    fn has_room(&self, cap: &Cap, payout: Decimal) -> bool {
        cap.conversions.is_none_or(|limit| self.conversions < limit)
            && cap.payout.is_none_or(|limit| self.payout + payout <= limit)
    }
}

/// Recount the claims of `month` (a [`CapPeriod::Month`] key): set each active claim's verdict
/// and return the claims whose verdict changed.
fn recount(program: &Program, offer: &model::OfferId, book: &mut CapBook, month: PeriodKey) -> Vec<CapVerdict> {
    let zone = program.time_zone();
    let offer_caps: &[Cap] = program.offer(offer).map_or(&[], |offer| offer.caps.as_slice());
    // (member for an enrolment cap, None for the offer's), the cap's period, the period.
    let mut used: HashMap<(Option<MemberId>, PeriodKey), Used> = HashMap::new();
    let mut changed = Vec::new();
    for held in &mut book.claims {
        if CapPeriod::Month.key_of(held.at, zone) != month || !held.active {
            continue;
        }
        let enrolment_caps: &[Cap] =
            program.enrolment(offer, &held.member).map_or(&[], |enrolment| enrolment.caps.as_slice());
        let caps =
            offer_caps.iter().map(|cap| (None, cap)).chain(enrolment_caps.iter().map(|cap| (Some(&held.member), cap)));
        let keyed: Vec<((Option<MemberId>, PeriodKey), &Cap)> =
            caps.map(|(member, cap)| ((member.cloned(), cap.period.key_of(held.at, zone)), cap)).collect();
        let empty = Used::default();
        let within = keyed.iter().all(|(key, cap)| used.get(key).unwrap_or(&empty).has_room(cap, held.payout));
        if within {
            for (key, _) in keyed {
                let entry = used.entry(key).or_default();
                entry.conversions += 1;
                entry.payout += held.payout;
            }
        }
        if held.verdict != Some(within) {
            held.verdict = Some(within);
            changed.push(CapVerdict { order_key: held.order_key.clone(), conversion: held.conversion, within });
        }
    }
    changed
}

/// The month before `month`.
fn previous(month: PeriodKey) -> PeriodKey {
    let (period, year, number, day) = month;
    if number == 1 { (period, year - 1, 12, day) } else { (period, year, number - 1, day) }
}

impl Stage for CapsStage {
    type Input = CapClaim;
    type State = CapBook;

    fn name(&self) -> &'static str {
        "caps"
    }

    fn decode(&self, record: &Delivered) -> Result<CapClaim, wire::WireError> {
        wire::decode(&record.payload)
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        book: &mut CapBook,
        claim: CapClaim,
        out: &mut StageOutput,
    ) -> bool {
        let zone = context.program.time_zone();
        let known = book.claims.iter().position(|held| held.conversion == claim.conversion);
        let mut months = vec![CapPeriod::Month.key_of(claim.at, zone)];
        match known {
            Some(at) => {
                let held = &book.claims[at];
                if (held.at, held.payout, held.active) == (claim.at, claim.payout, claim.active) {
                    return false;
                }
                months.push(CapPeriod::Month.key_of(held.at, zone));
                let mut held = book.claims.remove(at);
                held.at = claim.at;
                held.payout = claim.payout;
                held.active = claim.active;
                let position = book.claims.partition_point(|other| other.canonical() < held.canonical());
                book.claims.insert(position, held);
            }
            None => {
                let held = Held {
                    at: claim.at,
                    conversion: claim.conversion,
                    order_key: claim.order_key,
                    member: claim.member,
                    payout: claim.payout,
                    active: claim.active,
                    verdict: None,
                };
                let position = book.claims.partition_point(|other| other.canonical() < held.canonical());
                book.claims.insert(position, held);
            }
        }
        months.sort();
        months.dedup();
        for month in months {
            for verdict in recount(context.program, &claim.offer, book, month) {
                out.records.push(Record {
                    topic: self.topics.orders.clone(),
                    key: verdict.order_key.to_string(),
                    payload: wire::encode_compact(&OrderEvent::CapVerdict(verdict)),
                });
            }
        }
        // Months before the previous one of the newest claim are done.
        if let Some(newest) = book.claims.last().map(|held| CapPeriod::Month.key_of(held.at, zone)) {
            let oldest_kept = previous(newest);
            book.claims.retain(|held| CapPeriod::Month.key_of(held.at, zone) >= oldest_kept);
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use model::program::{Cap, ProgramChange};
    use model::testkit::*;
    use rust_decimal_macros::dec;

    use super::*;

    /// Offer `store`: 2 conversions a day; jane also at most 25.00 a month.
    fn program() -> Program {
        let capped = model::program::Offer {
            caps: vec![Cap { period: CapPeriod::Day, conversions: Some(2), payout: None }],
            ..offer("store", cps(dec!(0.10)))
        };
        let mut jane = enrol("store", "jane");
        jane.caps = vec![Cap { period: CapPeriod::Month, conversions: None, payout: Some(dec!(25.00)) }];
        ProgramBuilder::new()
            .offer(capped)
            .member(member("jane"))
            .member(member("tom"))
            .change(ProgramChange::Enrolment(jane))
            .enrolled_existing("store", &["tom"])
            .build()
    }

    fn claim(n: u128, member: &str, at: &str, payout: Decimal) -> CapClaim {
        CapClaim {
            order_key: order_key(&format!("O{n}")),
            conversion: event_id(n),
            offer: offer_id("store"),
            member: member_id(member),
            at: ts(at),
            payout,
            active: true,
        }
    }

    /// Apply claims in order; the last verdict of each order.
    fn verdicts(program: &Program, claims: &[CapClaim]) -> std::collections::BTreeMap<String, bool> {
        let mut stage = CapsStage::new(Topics::with_prefix("t."));
        let mut book = CapBook::default();
        let mut last = std::collections::BTreeMap::new();
        for (offset, claim) in claims.iter().enumerate() {
            let context = Context { program, now: ts("2026-03-31T00:00:00Z"), partition: 0, offset: offset as u64 };
            let mut out = StageOutput::default();
            stage.apply(&context, "store", &mut book, claim.clone(), &mut out);
            for record in out.records {
                if let OrderEvent::CapVerdict(verdict) = wire::decode(&record.payload).unwrap() {
                    last.insert(verdict.order_key.to_string(), verdict.within);
                }
            }
        }
        last
    }

    #[test]
    fn the_first_conversions_of_a_day_by_event_time_are_within_whatever_arrives_first() {
        let program = program();
        let day = [
            claim(1, "tom", "2026-03-02T09:00:00Z", dec!(1.00)),
            claim(2, "tom", "2026-03-02T10:00:00Z", dec!(1.00)),
            claim(3, "tom", "2026-03-02T11:00:00Z", dec!(1.00)),
            claim(4, "tom", "2026-03-03T08:00:00Z", dec!(1.00)),
        ];
        let expected: std::collections::BTreeMap<String, bool> =
            [("acme:O1", true), ("acme:O2", true), ("acme:O3", false), ("acme:O4", true)]
                .map(|(order, within)| (order.to_string(), within))
                .into();
        assert_eq!(verdicts(&program, &day), expected);
        // The 11:00 conversion first, then the earlier ones: the 11:00 one is over in the end.
        let late = [day[2].clone(), day[3].clone(), day[1].clone(), day[0].clone()];
        assert_eq!(verdicts(&program, &late), expected);
        // An earlier conversion withdrawn makes room for the next.
        let mut withdrawn = day.to_vec();
        withdrawn.push(CapClaim { active: false, ..day[0].clone() });
        let after = verdicts(&program, &withdrawn);
        assert_eq!((after.get("acme:O2"), after.get("acme:O3")), (Some(&true), Some(&true)));
    }

    #[test]
    fn an_enrolment_payout_cap_counts_the_member_alone_and_a_conversion_must_fit_whole() {
        let program = program();
        let month = [
            claim(1, "jane", "2026-03-02T09:00:00Z", dec!(20.00)),
            claim(2, "jane", "2026-03-05T09:00:00Z", dec!(10.00)),
            claim(3, "jane", "2026-03-06T09:00:00Z", dec!(5.00)),
            claim(4, "tom", "2026-03-06T10:00:00Z", dec!(50.00)),
        ];
        let decided = verdicts(&program, &month);
        // 20.00 fits; 10.00 would make 30.00 > 25.00; 5.00 fits (25.00); tom has no payout cap.
        assert_eq!(
            decided.into_iter().collect::<Vec<_>>(),
            [("acme:O1".into(), true), ("acme:O2".into(), false), ("acme:O3".into(), true), ("acme:O4".into(), true)]
        );
        // A re-priced claim recounts: at 4.00 the second fits.
        let mut repriced = month.to_vec();
        repriced.push(CapClaim { payout: dec!(4.00), ..month[1].clone() });
        assert_eq!(verdicts(&program, &repriced).get("acme:O2"), Some(&true));
    }
}
