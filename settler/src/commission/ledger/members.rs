//! Members: the recruiting commission a parent earns when a recruited member is approved
//! (seed 004, "Recruiting").

use model::Timestamp;
use model::events::{LineKind, LineStatus};
use model::ids::{DerivedId, EventId, MemberId};
use model::program::Program;

use super::Ledger;
use super::Outputs;
use super::lines::NewLine;

impl Ledger {
    pub(super) fn on_member_approved(
        &mut self,
        program: &Program,
        id: EventId,
        member: &MemberId,
        at: Timestamp,
        out: &mut Outputs,
    ) {
        let Some(recruiting) = program.settings().recruiting.as_ref() else {
            return;
        };
        let Some(parent) =
            program.member(member).and_then(|child| child.parent.as_ref()).and_then(|parent| program.member(parent))
        else {
            return;
        };
        if !parent.is_approved() {
            return;
        }
        let first = NewLine {
            id: DerivedId::derive(&["recruit", member.as_str()]),
            member: parent.id.clone(),
            offer: None,
            order_key: None,
            source: id,
            kind: LineKind::Recruiting,
            rule: "recruiting".to_string(),
            keyword: "recruiting".to_string(),
            exact: recruiting.amount,
            currency: program.settings().currency,
            status: LineStatus::Approved,
            description: format!("Recruiting: {member} approved"),
            earned_at: at,
            approve_at: None,
        };
        self.credit(program, first, recruiting.tier2, recruiting.tier3, out);
    }
}
