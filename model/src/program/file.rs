//! The program file: a TOML description of a whole program, loaded at start or through the
//! program API so a deployment can be set up reproducibly.

use serde::{Deserialize, Serialize};

use super::member::{Advertiser, Enrolment, Member};
use super::notify::Webhook;
use super::offer::Offer;
use super::tracking::{PromoCodeGrant, TrackingLink};
use super::{ProgramChange, ProgramSettings};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramFile {
    #[serde(default)]
    pub settings: Option<ProgramSettings>,
    #[serde(default, rename = "advertiser")]
    pub advertisers: Vec<Advertiser>,
    #[serde(default, rename = "offer")]
    pub offers: Vec<Offer>,
    #[serde(default, rename = "member")]
    pub members: Vec<Member>,
    #[serde(default, rename = "enrolment")]
    pub enrolments: Vec<Enrolment>,
    #[serde(default, rename = "link")]
    pub links: Vec<TrackingLink>,
    #[serde(default, rename = "code")]
    pub codes: Vec<PromoCodeGrant>,
    /// Webhook endpoints, with their signing secrets.
    #[serde(default, rename = "webhook")]
    pub webhooks: Vec<Webhook>,
}

impl ProgramFile {
    /// Parse a program file; unknown keys are errors, so a typo never goes unnoticed.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    /// The file as change events, in an order the strict fold accepts: settings, advertisers,
    /// offers, members (parents before children), enrolments, links, codes, webhooks.
    pub fn into_changes(self) -> Vec<ProgramChange> {
        let mut changes = Vec::new();
        changes.extend(self.settings.map(ProgramChange::Settings));
        changes.extend(self.advertisers.into_iter().map(ProgramChange::Advertiser));
        changes.extend(self.offers.into_iter().map(ProgramChange::Offer));
        changes.extend(parents_first(self.members).into_iter().map(ProgramChange::Member));
        changes.extend(self.enrolments.into_iter().map(ProgramChange::Enrolment));
        changes.extend(self.links.into_iter().map(ProgramChange::Link));
        changes.extend(self.codes.into_iter().map(ProgramChange::Code));
        changes.extend(self.webhooks.into_iter().map(ProgramChange::Webhook));
        changes
    }
}

/// Orders members so each parent comes before its children. Members whose parent is not in
/// the file keep their place; a cycle is left for the fold to refuse.
fn parents_first(mut pending: Vec<Member>) -> Vec<Member> {
    let mut ordered: Vec<Member> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let before = pending.len();
        let mut index = 0;
        while index < pending.len() {
            let parent_ready = match &pending[index].parent {
                None => true,
                Some(parent) => !pending.iter().any(|member| &member.id == parent),
            };
            if parent_ready {
                ordered.push(pending.remove(index));
            } else {
                index += 1;
            }
        }
        if pending.len() == before {
            ordered.append(&mut pending);
        }
    }
    ordered
}
