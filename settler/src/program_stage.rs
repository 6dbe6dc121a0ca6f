//! The program stage: keeps the full history of program changes in the store (the offer update
//! history of seed 001), and pays recruiting commissions: when a member who signed up under a
//! parent becomes approved, it tells the parent's family ledger.

use model::events::{LedgerEvent, wire};
use model::ids::{EventId, MemberId};
use model::program::{MemberStatus, ProgramChange, ProgramRecord};
use pipeline::ports::log::{Delivered, Record, Topics};
use pipeline::ports::store::HistoryRow;
use pipeline::{Context, Stage, StageOutput};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeenMember {
    status: Option<MemberStatus>,
}

impl pipeline::WholeState for SeenMember {}

#[derive(Debug)]
pub struct ProgramStage {
    topics: Topics,
}

impl ProgramStage {
    pub fn new(topics: Topics) -> Self {
        Self { topics }
    }
}

/// A deterministic id for the approval seen at a program-log offset.
fn approval_id(member: &MemberId, offset: u64) -> EventId {
    let digest = model::DerivedId::derive(&["approved", member.as_str(), &offset.to_string()]);
    EventId::from_u128(u128::from_str_radix(digest.as_str(), 16).unwrap_or_default())
}

impl Stage for ProgramStage {
    /// The record and its offset in the program log.
    type Input = (u64, ProgramRecord);
    type State = SeenMember;

    fn name(&self) -> &'static str {
        "program"
    }

    fn decode(&self, record: &Delivered) -> Result<(u64, ProgramRecord), wire::WireError> {
        wire::decode(&record.payload).map(|decoded| (record.offset, decoded))
    }

    /// The family of a member comes from the program, which must have this record applied.
    fn program_version(&self, input: &(u64, ProgramRecord)) -> u64 {
        input.0 + 1
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        _key: &str,
        seen: &mut SeenMember,
        input: (u64, ProgramRecord),
        out: &mut StageOutput,
    ) -> bool {
        let (offset, record) = input;
        let approved_now = match &record.change {
            ProgramChange::Member(member) => {
                let before = seen.status.replace(member.status);
                (member.status == MemberStatus::Approved
                    && before != Some(MemberStatus::Approved)
                    && member.parent.is_some())
                .then(|| member.id.clone())
            }
            _ => None,
        };
        if let Some(member) = approved_now {
            let family = context.program.family_of(&member).to_string();
            let event = LedgerEvent::MemberApproved { id: approval_id(&member, offset), member, at: record.at };
            out.records.push(Record {
                topic: self.topics.ledger.clone(),
                key: family,
                payload: wire::encode_compact(&event),
            });
        }
        let is_member = matches!(record.change, ProgramChange::Member(_));
        // Secrets stay in the program log; the store, which analysts read, gets fingerprints.
        let record = ProgramRecord { change: record.change.redacted(), ..record };
        out.store.history.push(HistoryRow { offset, record });
        is_member
    }
}
