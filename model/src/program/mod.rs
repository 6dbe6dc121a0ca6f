//! The program: offers, members, enrolments, links, codes and advertisers, built by folding
//! program change events (docs/DECISIONS.md, "Program configuration is a log too").
//!
//! Every change is a full snapshot of one entity under its own key ([`ProgramChange::key`]),
//! so a compacted log that keeps only the latest record per key still rebuilds the program.
//! [`Program::apply`] is the strict fold used by writers: it refuses a change that breaks a
//! rule and leaves the program untouched. [`Program::follow`] is the fold used by readers of
//! the log: records there were checked when written, and compaction may reorder entities, so
//! only checks that depend on the record alone are repeated.

mod access;
mod caps;
mod change;
mod file;
mod member;
mod notify;
mod offer;
mod tracking;

use std::collections::BTreeMap;

use ipnet::IpNet;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use access::{ApiKeyGrant, KeyScope};
pub use caps::{Cap, CapPeriod, OverCap, PeriodKey};
pub use change::{ProgramChange, ProgramError, ProgramRecord};
pub use file::ProgramFile;
pub use member::{Advertiser, Enrolment, Member, MemberStatus, PostbackSecret, RecurringOverride};
pub use notify::{MACROS, Postback, TemplateError, Webhook, check_template, render};
pub use offer::{
    AttributionModel, CodePixel, CodePrecedence, DEFAULT_COOKIE_WINDOW, DEFAULT_PIXEL_MAX_AMOUNT,
    DEFAULT_UNIQUE_CLICK_WINDOW, MonthlyThreshold, Offer, OrderBand, PayoutOption, PayoutRule, ProductPay, ProductRule,
    RecurringTerms, TierLine, Tiered, is_valid_host, validate_http_url,
};
pub use tracking::{PromoCodeGrant, TrackingLink};

use crate::events::NoticeKind;
use crate::ids::{AdvertiserId, LinkCode, MemberId, OfferId, PromoCode, WebhookId};
use crate::money::Currency;

/// Program-wide settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSettings {
    pub name: String,
    /// Currency of program-level commissions (recruiting).
    pub currency: Currency,
    /// IANA time zone whose calendar months the accumulated tiers and bills use.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Paid to the parent when a recruited member is approved (seed 004, "AIDReferrals").
    #[serde(default)]
    pub recruiting: Option<RecruitingRule>,
    /// Address ranges (CIDR) whose clicks and pixels are recorded rejected `blocked_address`.
    #[serde(default)]
    pub blocked_addresses: Vec<IpNet>,
    /// Clicks one client network may send per minute before the rest are `rate_limited`
    /// (0: no limit). Counted by each edge process.
    #[serde(default = "default_click_rate_limit")]
    pub click_rate_limit: u32,
    /// Partner postbacks called on the events of every conversion (docs/NOTIFICATIONS.md).
    #[serde(default)]
    pub postbacks: Vec<Postback>,
}

/// The default [`ProgramSettings::click_rate_limit`]: clicks per minute per client network.
pub const DEFAULT_CLICK_RATE_LIMIT: u32 = 60;

fn default_click_rate_limit() -> u32 {
    DEFAULT_CLICK_RATE_LIMIT
}

impl ProgramSettings {
    /// Whether `address` is in the deny list.
    pub fn is_blocked(&self, address: std::net::IpAddr) -> bool {
        let address = match address {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.blocked_addresses.iter().any(|network| network.contains(&address))
    }
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

impl Default for ProgramSettings {
    fn default() -> Self {
        Self {
            name: "clickledger".to_string(),
            currency: Currency::USD,
            time_zone: default_time_zone(),
            recruiting: None,
            blocked_addresses: Vec::new(),
            click_rate_limit: DEFAULT_CLICK_RATE_LIMIT,
            postbacks: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecruitingRule {
    pub amount: Decimal,
    #[serde(default)]
    pub tier2: Option<Decimal>,
    #[serde(default)]
    pub tier3: Option<Decimal>,
}

/// What pays a member in an offer, once enrolment overrides are applied.
#[derive(Clone, Copy, Debug)]
pub struct Payout<'a> {
    pub option: &'a PayoutOption,
    pub rule: &'a PayoutRule,
    pub recurring_override: Option<&'a RecurringOverride>,
}

impl Payout<'_> {
    /// The recurring terms for new credits: the option's, with the member's override.
    pub fn recurring(&self) -> Option<RecurringTerms> {
        let terms = self.option.recurring.as_ref()?;
        Some(match self.recurring_override {
            Some(member_terms) => member_terms.apply_to(terms),
            None => terms.clone(),
        })
    }
}

/// The current program, folded from change events.
#[derive(Clone, Debug, Default)]
pub struct Program {
    settings: ProgramSettings,
    zone: chrono_tz::Tz,
    advertisers: BTreeMap<AdvertiserId, Advertiser>,
    offers: BTreeMap<OfferId, Offer>,
    members: BTreeMap<MemberId, Member>,
    enrolments: BTreeMap<OfferId, BTreeMap<MemberId, Enrolment>>,
    links: BTreeMap<LinkCode, TrackingLink>,
    codes: BTreeMap<PromoCode, PromoCodeGrant>,
    api_keys: BTreeMap<String, ApiKeyGrant>,
    webhooks: BTreeMap<WebhookId, Webhook>,
    /// The notice kinds some postback or webhook fires on, as bits ([`NoticeKind::bit`]); a
    /// kind stays once it was listened to (the settler only skips notices nobody can want).
    notice_kinds: u16,
}

impl Program {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold a whole sequence strictly, stopping at the first refused change.
    pub fn from_changes(changes: impl IntoIterator<Item = ProgramChange>) -> Result<Self, ProgramError> {
        let mut program = Self::new();
        for change in changes {
            program.apply(change)?;
        }
        Ok(program)
    }

    /// The strict fold: validate `change` against the current program, then apply it.
    /// On error the program is unchanged.
    pub fn apply(&mut self, change: ProgramChange) -> Result<(), ProgramError> {
        change.validate_alone()?;
        self.validate_against_program(&change)?;
        self.insert(change);
        Ok(())
    }

    /// The changes of `changes` that would change something, checked in order against this
    /// program as the strict fold does. Loading the same file twice plans nothing the second
    /// time. On a refused change nothing is planned.
    pub fn plan(&self, changes: impl IntoIterator<Item = ProgramChange>) -> Result<Vec<ProgramChange>, ProgramError> {
        let mut scratch = self.clone();
        let mut planned = Vec::new();
        for change in changes {
            if scratch.current(&change).as_ref() == Some(&change) {
                continue;
            }
            scratch.apply(change.clone())?;
            planned.push(change);
        }
        Ok(planned)
    }

    /// The current state of the entity `change` is about, as a change.
    pub fn current(&self, change: &ProgramChange) -> Option<ProgramChange> {
        match change {
            ProgramChange::Settings(_) => Some(ProgramChange::Settings(self.settings.clone())),
            ProgramChange::Advertiser(advertiser) => {
                self.advertiser(&advertiser.id).cloned().map(ProgramChange::Advertiser)
            }
            ProgramChange::Offer(offer) => self.offer(&offer.id).cloned().map(ProgramChange::Offer),
            ProgramChange::Member(member) => self.member(&member.id).cloned().map(ProgramChange::Member),
            ProgramChange::Enrolment(enrolment) => {
                self.enrolment(&enrolment.offer, &enrolment.member).cloned().map(ProgramChange::Enrolment)
            }
            ProgramChange::Link(link) => self.link(&link.code).cloned().map(ProgramChange::Link),
            ProgramChange::Code(grant) => self.code(&grant.code).cloned().map(ProgramChange::Code),
            ProgramChange::ApiKey(key) => self.api_key(&key.name).cloned().map(ProgramChange::ApiKey),
            ProgramChange::Webhook(webhook) => self.webhook(&webhook.id).cloned().map(ProgramChange::Webhook),
        }
    }

    /// The reader's fold: only the checks that need no other entity (see the module docs).
    pub fn follow(&mut self, change: ProgramChange) -> Result<(), ProgramError> {
        change.validate_alone()?;
        self.insert(change);
        Ok(())
    }

    fn insert(&mut self, change: ProgramChange) {
        self.notice_kinds |= change.notice_bits();
        match change {
            ProgramChange::Settings(settings) => {
                self.zone = settings.time_zone.parse().unwrap_or(chrono_tz::UTC);
                self.settings = settings;
            }
            ProgramChange::Advertiser(advertiser) => {
                self.advertisers.insert(advertiser.id.clone(), advertiser);
            }
            ProgramChange::Offer(offer) => {
                self.offers.insert(offer.id.clone(), offer);
            }
            ProgramChange::Member(member) => {
                self.members.insert(member.id.clone(), member);
            }
            ProgramChange::Enrolment(enrolment) => {
                self.enrolments.entry(enrolment.offer.clone()).or_default().insert(enrolment.member.clone(), enrolment);
            }
            ProgramChange::Link(link) => {
                self.links.insert(link.code.clone(), link);
            }
            ProgramChange::Code(grant) => {
                self.codes.insert(grant.code.clone(), grant);
            }
            ProgramChange::ApiKey(key) => {
                self.api_keys.insert(key.name.clone(), key);
            }
            ProgramChange::Webhook(webhook) => {
                self.webhooks.insert(webhook.id.clone(), webhook);
            }
        }
    }

    pub fn webhook(&self, id: &WebhookId) -> Option<&Webhook> {
        self.webhooks.get(id)
    }

    /// Every webhook endpoint, inactive ones included.
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values()
    }

    /// Whether some postback or webhook may fire on anything.
    pub fn notifies_anything(&self) -> bool {
        self.notice_kinds != 0
    }

    /// Whether some postback or webhook may fire on `kind`.
    pub fn notifies(&self, kind: NoticeKind) -> bool {
        self.notice_kinds & kind.bit() != 0
    }

    pub fn settings(&self) -> &ProgramSettings {
        &self.settings
    }

    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.zone
    }

    /// Whether conversions of `member` in `offer` are subject to caps (the offer's or the
    /// enrolment's).
    pub fn is_capped(&self, offer: &OfferId, member: &MemberId) -> bool {
        self.offer(offer).is_some_and(|offer| !offer.caps.is_empty())
            || self.enrolment(offer, member).is_some_and(|enrolment| !enrolment.caps.is_empty())
    }

    pub fn advertiser(&self, id: &AdvertiserId) -> Option<&Advertiser> {
        self.advertisers.get(id)
    }

    pub fn offer(&self, id: &OfferId) -> Option<&Offer> {
        self.offers.get(id)
    }

    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.members.get(id)
    }

    pub fn enrolment(&self, offer: &OfferId, member: &MemberId) -> Option<&Enrolment> {
        self.enrolments.get(offer)?.get(member)
    }

    pub fn link(&self, code: &LinkCode) -> Option<&TrackingLink> {
        self.links.get(code)
    }

    pub fn code(&self, code: &PromoCode) -> Option<&PromoCodeGrant> {
        self.codes.get(code)
    }

    pub fn api_key(&self, name: &str) -> Option<&ApiKeyGrant> {
        self.api_keys.get(name)
    }

    /// Every API key made through the program API, revoked ones included.
    pub fn api_keys(&self) -> impl Iterator<Item = &ApiKeyGrant> {
        self.api_keys.values()
    }

    pub fn advertisers(&self) -> impl Iterator<Item = &Advertiser> {
        self.advertisers.values()
    }

    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn enrolments(&self) -> impl Iterator<Item = &Enrolment> {
        self.enrolments.values().flat_map(BTreeMap::values)
    }

    pub fn links(&self) -> impl Iterator<Item = &TrackingLink> {
        self.links.values()
    }

    pub fn codes(&self) -> impl Iterator<Item = &PromoCodeGrant> {
        self.codes.values()
    }

    /// What pays `member` in `offer`: the enrolment's payout option (or the offer's default)
    /// with the enrolment's overrides. `None` when the member is not enrolled or the
    /// enrolment names an option the offer no longer has.
    pub fn payout(&self, offer_id: &OfferId, member_id: &MemberId) -> Option<Payout<'_>> {
        let offer = self.offer(offer_id)?;
        let enrolment = self.enrolment(offer_id, member_id)?;
        let option_id = enrolment.payout_option.as_ref().unwrap_or(&offer.default_payout);
        let option = offer.payout_option(option_id)?;
        Some(Payout {
            option,
            rule: enrolment.payout_override.as_ref().unwrap_or(&option.rule),
            recurring_override: enrolment.recurring_override.as_ref(),
        })
    }

    /// The ancestors that take part in tier commissions for an amount earned by `member`:
    /// the parent (2nd tier) and grandparent (3rd tier). A member who is not approved earns
    /// no tier lines for anyone, and a disabled or deleted ancestor cuts off itself and every
    /// ancestor above it (seed 004, "A Deleted or Disabled affiliate ...").
    pub fn tier_ancestors(&self, member_id: &MemberId) -> Vec<&Member> {
        let mut ancestors = Vec::with_capacity(2);
        let Some(member) = self.member(member_id).filter(|member| member.is_approved()) else {
            return ancestors;
        };
        let mut next = member.parent.as_ref();
        while let Some(parent_id) = next {
            if ancestors.len() == 2 {
                break;
            }
            match self.member(parent_id) {
                Some(parent) if parent.is_approved() => {
                    ancestors.push(parent);
                    next = parent.parent.as_ref();
                }
                _ => break,
            }
        }
        ancestors
    }

    /// The root of the member's recruiting tree. A member's commissions, tier lines and
    /// bills are owned by the partition of this key, so one worker sees a whole family.
    pub fn family_of<'a>(&'a self, member_id: &'a MemberId) -> &'a MemberId {
        let mut current = member_id;
        // Parents are set at sign-up only and must exist then, so the chain is finite;
        // the bound guards against a log written by something else.
        for _ in 0..self.members.len() {
            match self.member(current).and_then(|member| member.parent.as_ref()) {
                Some(parent) => current = parent,
                None => break,
            }
        }
        current
    }
}
