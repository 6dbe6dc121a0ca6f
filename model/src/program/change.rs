//! Program change events and the rules a change must pass.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::access::ApiKeyGrant;
use super::member::{Advertiser, Enrolment, Member, MemberStatus};
use super::notify::{Webhook, postback_bits, validate_postbacks};
use super::offer::{Offer, validate_http_url};
use super::tracking::{PromoCodeGrant, TrackingLink};
use super::{Program, ProgramSettings};
use crate::ids::{AdvertiserId, LinkCode, MemberId, OfferId, PayoutOptionId, PromoCode};
use crate::time::{Span, Timestamp};

/// One change to the program: the full new state of one entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entity", content = "state", rename_all = "snake_case")]
pub enum ProgramChange {
    Settings(ProgramSettings),
    Advertiser(Advertiser),
    Offer(Offer),
    Member(Member),
    Enrolment(Enrolment),
    Link(TrackingLink),
    Code(PromoCodeGrant),
    /// An API key of the program API (made, or revoked).
    ApiKey(ApiKeyGrant),
    /// A webhook endpoint (made, changed or switched off).
    Webhook(Webhook),
}

/// A change as it is written to the program log: who made it and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramRecord {
    pub at: Timestamp,
    pub actor: String,
    pub change: ProgramChange,
}

/// Why a change was refused. `code()` is the stable reason code of API error bodies.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    #[error("unknown offer {0}")]
    UnknownOffer(OfferId),
    #[error("unknown member {0}")]
    UnknownMember(MemberId),
    #[error("unknown advertiser {0}")]
    UnknownAdvertiser(AdvertiserId),
    #[error("offer {offer} has no payout option {option}")]
    UnknownPayoutOption { offer: OfferId, option: PayoutOptionId },
    #[error("offer {offer} lists payout option {option} twice")]
    DuplicatePayoutOption { offer: OfferId, option: PayoutOptionId },
    #[error("payout option {option} of offer {offer} is still used by member {member}")]
    PayoutOptionInUse { offer: OfferId, option: PayoutOptionId, member: MemberId },
    #[error("{context}: {why}")]
    InvalidTiers { context: String, why: String },
    #[error("{context}: {what} is negative ({value})")]
    NegativeValue { context: String, what: String, value: Decimal },
    #[error("promo code {code} already belongs to member {member} in offer {offer}")]
    CodeTaken { code: PromoCode, offer: OfferId, member: MemberId },
    #[error("link code {code} already belongs to member {member} in offer {offer}")]
    LinkCodeTaken { code: LinkCode, offer: OfferId, member: MemberId },
    #[error("member {0} would be its own ancestor")]
    ParentCycle(MemberId),
    #[error("member {0} already has a parent; parents are set at sign-up only")]
    ParentImmutable(MemberId),
    #[error("member {0} is deleted")]
    MemberDeleted(MemberId),
    #[error("member {member} is not enrolled in offer {offer}")]
    NotEnrolled { offer: OfferId, member: MemberId },
    #[error("deep link host {host} is not allowed by offer {offer}")]
    DeepLinkNotAllowed { offer: OfferId, host: String },
    #[error("key {0} is revoked; a revoked key name is not reused")]
    KeyRevoked(String),
    #[error("{context}: unknown macro {{{name}}}; known: {known}", known = super::notify::MACROS.join(", "))]
    UnknownMacro { context: String, name: String },
    #[error("{context}: url {why}")]
    BadUrl { context: String, why: String },
    #[error("{0}")]
    Invalid(String),
}

impl ProgramError {
    pub(crate) fn invalid(message: String) -> Self {
        Self::Invalid(message)
    }

    /// Every code [`ProgramError::code`] answers.
    pub const CODES: [&'static str; 19] = [
        "unknown_offer",
        "unknown_member",
        "unknown_advertiser",
        "unknown_payout_option",
        "duplicate_payout_option",
        "payout_option_in_use",
        "invalid_tiers",
        "negative_value",
        "code_taken",
        "link_code_taken",
        "parent_cycle",
        "parent_immutable",
        "member_deleted",
        "not_enrolled",
        "deep_link_not_allowed",
        "key_revoked",
        "unknown_macro",
        "bad_url",
        "invalid",
    ];

    pub fn code(&self) -> &'static str {
        match self {
            ProgramError::UnknownOffer(_) => "unknown_offer",
            ProgramError::UnknownMember(_) => "unknown_member",
            ProgramError::UnknownAdvertiser(_) => "unknown_advertiser",
            ProgramError::UnknownPayoutOption { .. } => "unknown_payout_option",
            ProgramError::DuplicatePayoutOption { .. } => "duplicate_payout_option",
            ProgramError::PayoutOptionInUse { .. } => "payout_option_in_use",
            ProgramError::InvalidTiers { .. } => "invalid_tiers",
            ProgramError::NegativeValue { .. } => "negative_value",
            ProgramError::CodeTaken { .. } => "code_taken",
            ProgramError::LinkCodeTaken { .. } => "link_code_taken",
            ProgramError::ParentCycle(_) => "parent_cycle",
            ProgramError::ParentImmutable(_) => "parent_immutable",
            ProgramError::MemberDeleted(_) => "member_deleted",
            ProgramError::NotEnrolled { .. } => "not_enrolled",
            ProgramError::DeepLinkNotAllowed { .. } => "deep_link_not_allowed",
            ProgramError::KeyRevoked(_) => "key_revoked",
            ProgramError::UnknownMacro { .. } => "unknown_macro",
            ProgramError::BadUrl { .. } => "bad_url",
            ProgramError::Invalid(_) => "invalid",
        }
    }
}

impl ProgramChange {
    /// The change as it may be stored and shown outside the program log: postback secrets and
    /// API key hashes replaced by a fingerprint (`fp:` and 12 hex digits of their SHA-256), so
    /// a reader can tell which secret changed without learning it.
    pub fn redacted(&self) -> ProgramChange {
        let fingerprint = |secret: &str| {
            use sha2::Digest;
            format!("fp:{}", &hex::encode(sha2::Sha256::digest(secret.as_bytes()))[..12])
        };
        match self {
            ProgramChange::Advertiser(advertiser) => {
                let mut advertiser = advertiser.clone();
                for secret in &mut advertiser.secrets {
                    secret.secret = fingerprint(&secret.secret);
                }
                ProgramChange::Advertiser(advertiser)
            }
            ProgramChange::ApiKey(key) => {
                let mut key = key.clone();
                key.hash = fingerprint(&key.hash);
                ProgramChange::ApiKey(key)
            }
            ProgramChange::Webhook(webhook) => {
                let mut webhook = webhook.clone();
                webhook.secret = fingerprint(&webhook.secret);
                ProgramChange::Webhook(webhook)
            }
            other => other.clone(),
        }
    }

    /// The key of the entity this change replaces: the Kafka key of the compacted
    /// `program` topic and the primary key of the embedded program table.
    pub fn key(&self) -> String {
        match self {
            ProgramChange::Settings(_) => "settings".to_string(),
            ProgramChange::Advertiser(advertiser) => format!("advertiser:{}", advertiser.id),
            ProgramChange::Offer(offer) => format!("offer:{}", offer.id),
            ProgramChange::Member(member) => format!("member:{}", member.id),
            ProgramChange::Enrolment(enrolment) => {
                format!("enrolment:{}:{}", enrolment.offer, enrolment.member)
            }
            ProgramChange::Link(link) => format!("link:{}", link.code),
            ProgramChange::Code(grant) => format!("code:{}", grant.code),
            ProgramChange::ApiKey(key) => format!("api_key:{}", key.name),
            ProgramChange::Webhook(webhook) => format!("webhook:{}", webhook.id),
        }
    }

    /// The offer this change belongs to, for the offer update history.
    pub fn offer(&self) -> Option<&OfferId> {
        match self {
            ProgramChange::Offer(offer) => Some(&offer.id),
            ProgramChange::Enrolment(enrolment) => Some(&enrolment.offer),
            ProgramChange::Link(link) => Some(&link.offer),
            ProgramChange::Code(grant) => Some(&grant.offer),
            ProgramChange::Settings(_)
            | ProgramChange::Advertiser(_)
            | ProgramChange::Member(_)
            | ProgramChange::ApiKey(_)
            | ProgramChange::Webhook(_) => None,
        }
    }

    /// Checks that need nothing but the change itself.
    pub(super) fn validate_alone(&self) -> Result<(), ProgramError> {
        match self {
            ProgramChange::Settings(settings) => validate_settings(settings),
            ProgramChange::Advertiser(advertiser) => validate_advertiser(advertiser),
            ProgramChange::Offer(offer) => offer.validate(),
            ProgramChange::Member(member) => validate_member(member),
            ProgramChange::Enrolment(enrolment) => validate_enrolment(enrolment),
            ProgramChange::Link(link) => match &link.deep_url {
                Some(url) => validate_http_url(url)
                    .map_err(|why| ProgramError::invalid(format!("link {}: deep url {why}", link.code))),
                None => Ok(()),
            },
            ProgramChange::Code(grant) => match (grant.starts_at, grant.ends_at) {
                (Some(start), Some(end)) if end <= start => {
                    Err(ProgramError::invalid(format!("code {}: ends_at must be after starts_at", grant.code)))
                }
                _ => Ok(()),
            },
            ProgramChange::ApiKey(key) => key.validate(),
            ProgramChange::Webhook(webhook) => webhook.validate(),
        }
    }

    /// The notice kinds the postbacks or webhook of this change fire on ([`NoticeKind::bit`]).
    pub(super) fn notice_bits(&self) -> u16 {
        match self {
            ProgramChange::Settings(settings) => postback_bits(&settings.postbacks),
            ProgramChange::Offer(offer) => postback_bits(&offer.postbacks),
            ProgramChange::Member(member) => postback_bits(&member.postbacks),
            ProgramChange::Enrolment(enrolment) => postback_bits(&enrolment.postbacks),
            ProgramChange::Webhook(webhook) if webhook.active => {
                webhook.events.iter().fold(0, |bits, kind| bits | kind.bit())
            }
            _ => 0,
        }
    }
}

impl Program {
    /// Checks that need the rest of the program.
    pub(super) fn validate_against_program(&self, change: &ProgramChange) -> Result<(), ProgramError> {
        match change {
            ProgramChange::Settings(_) | ProgramChange::Advertiser(_) | ProgramChange::Webhook(_) => Ok(()),
            ProgramChange::Offer(offer) => self.check_offer(offer),
            ProgramChange::Member(member) => self.check_member(member),
            ProgramChange::Enrolment(enrolment) => self.check_enrolment(enrolment),
            ProgramChange::Link(link) => self.check_link(link),
            ProgramChange::Code(grant) => self.check_code(grant),
            ProgramChange::ApiKey(key) => self.check_api_key(key),
        }
    }

    fn check_api_key(&self, key: &ApiKeyGrant) -> Result<(), ProgramError> {
        if self.api_key(&key.name).is_some_and(|existing| !existing.is_active()) {
            return Err(ProgramError::KeyRevoked(key.name.clone()));
        }
        if let Some(advertiser) = &key.advertiser
            && self.advertiser(advertiser).is_none()
        {
            return Err(ProgramError::UnknownAdvertiser(advertiser.clone()));
        }
        if let Some(member) = &key.member
            && self.member(member).is_none()
        {
            return Err(ProgramError::UnknownMember(member.clone()));
        }
        Ok(())
    }

    fn check_offer(&self, offer: &Offer) -> Result<(), ProgramError> {
        if self.advertiser(&offer.advertiser).is_none() {
            return Err(ProgramError::UnknownAdvertiser(offer.advertiser.clone()));
        }
        let enrolments = self.enrolments.get(&offer.id).into_iter().flat_map(|by_member| by_member.values());
        for enrolment in enrolments {
            if let Some(option) = &enrolment.payout_option {
                if offer.payout_option(option).is_none() {
                    return Err(ProgramError::PayoutOptionInUse {
                        offer: offer.id.clone(),
                        option: option.clone(),
                        member: enrolment.member.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_member(&self, member: &Member) -> Result<(), ProgramError> {
        let existing = self.member(&member.id);
        if existing.is_some_and(|existing| existing.status == MemberStatus::Deleted) {
            return Err(ProgramError::MemberDeleted(member.id.clone()));
        }
        if member.parent.as_ref() == Some(&member.id) {
            return Err(ProgramError::ParentCycle(member.id.clone()));
        }
        if let Some(existing) = existing {
            if existing.parent != member.parent {
                return Err(ProgramError::ParentImmutable(member.id.clone()));
            }
        }
        let mut ancestor = member.parent.clone();
        let mut steps = 0;
        while let Some(ancestor_id) = ancestor {
            if ancestor_id == member.id || steps > self.members.len() {
                return Err(ProgramError::ParentCycle(member.id.clone()));
            }
            let parent = self.member(&ancestor_id).ok_or_else(|| ProgramError::UnknownMember(ancestor_id.clone()))?;
            ancestor = parent.parent.clone();
            steps += 1;
        }
        Ok(())
    }

    fn check_enrolled(&self, offer_id: &OfferId, member_id: &MemberId) -> Result<&Offer, ProgramError> {
        let offer = self.offer(offer_id).ok_or_else(|| ProgramError::UnknownOffer(offer_id.clone()))?;
        if self.member(member_id).is_none() {
            return Err(ProgramError::UnknownMember(member_id.clone()));
        }
        if self.enrolment(offer_id, member_id).is_none() {
            return Err(ProgramError::NotEnrolled { offer: offer_id.clone(), member: member_id.clone() });
        }
        Ok(offer)
    }

    fn check_enrolment(&self, enrolment: &Enrolment) -> Result<(), ProgramError> {
        let offer = self.offer(&enrolment.offer).ok_or_else(|| ProgramError::UnknownOffer(enrolment.offer.clone()))?;
        let member =
            self.member(&enrolment.member).ok_or_else(|| ProgramError::UnknownMember(enrolment.member.clone()))?;
        if member.status == MemberStatus::Deleted {
            return Err(ProgramError::MemberDeleted(member.id.clone()));
        }
        if let Some(option) = &enrolment.payout_option {
            if offer.payout_option(option).is_none() {
                return Err(ProgramError::UnknownPayoutOption { offer: offer.id.clone(), option: option.clone() });
            }
        }
        Ok(())
    }

    fn check_link(&self, link: &TrackingLink) -> Result<(), ProgramError> {
        let offer = self.check_enrolled(&link.offer, &link.member)?;
        if let Some(existing) = self.link(&link.code) {
            if existing.offer != link.offer || existing.member != link.member {
                return Err(ProgramError::LinkCodeTaken {
                    code: link.code.clone(),
                    offer: existing.offer.clone(),
                    member: existing.member.clone(),
                });
            }
        }
        if let Some(url) = &link.deep_url {
            let host = url_host(url);
            if !offer.deep_link_hosts.iter().any(|allowed| allowed == &host) {
                return Err(ProgramError::DeepLinkNotAllowed { offer: offer.id.clone(), host });
            }
        }
        Ok(())
    }

    fn check_code(&self, grant: &PromoCodeGrant) -> Result<(), ProgramError> {
        self.check_enrolled(&grant.offer, &grant.member)?;
        if let Some(existing) = self.code(&grant.code) {
            if existing.offer != grant.offer || existing.member != grant.member {
                return Err(ProgramError::CodeTaken {
                    code: grant.code.clone(),
                    offer: existing.offer.clone(),
                    member: existing.member.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The lower-case host of an absolute URL already checked by [`validate_http_url`].
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(host, _port)| host);
    host.to_ascii_lowercase()
}

fn validate_settings(settings: &ProgramSettings) -> Result<(), ProgramError> {
    validate_postbacks("program settings", &settings.postbacks)?;
    if settings.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(ProgramError::invalid(format!("{:?} is not an IANA time zone", settings.time_zone)));
    }
    if let Some(recruiting) = &settings.recruiting {
        let context = "recruiting commission";
        for (what, value) in
            [("amount", Some(recruiting.amount)), ("tier2", recruiting.tier2), ("tier3", recruiting.tier3)]
        {
            if let Some(value) = value.filter(|value| value.is_sign_negative() && !value.is_zero()) {
                return Err(ProgramError::NegativeValue { context: context.into(), what: what.into(), value });
            }
        }
    }
    Ok(())
}

fn validate_advertiser(advertiser: &Advertiser) -> Result<(), ProgramError> {
    if advertiser.name.trim().is_empty() {
        return Err(ProgramError::invalid(format!("advertiser {}: name is empty", advertiser.id)));
    }
    if advertiser.secrets.is_empty() {
        return Err(ProgramError::invalid(format!("advertiser {}: needs a postback secret", advertiser.id)));
    }
    if advertiser.secrets.iter().any(|secret| secret.secret.len() < 16 || secret.secret.len() > 256) {
        return Err(ProgramError::invalid(format!(
            "advertiser {}: postback secrets must be 16 to 256 characters",
            advertiser.id
        )));
    }
    Ok(())
}

/// The longest cookie window a member override may set.
const MAX_MEMBER_COOKIE_WINDOW: Span = Span::days(365);

fn validate_member(member: &Member) -> Result<(), ProgramError> {
    validate_postbacks(&format!("member {}", member.id), &member.postbacks)?;
    if member.name.trim().is_empty() || member.name.len() > 200 {
        return Err(ProgramError::invalid(format!("member {}: name must be 1 to 200 characters", member.id)));
    }
    if member.minimum_payout.is_sign_negative() && !member.minimum_payout.is_zero() {
        return Err(ProgramError::NegativeValue {
            context: format!("member {}", member.id),
            what: "minimum payout".into(),
            value: member.minimum_payout,
        });
    }
    if let Some(window) = member.cookie_window {
        if window.millis() <= 0 || window > MAX_MEMBER_COOKIE_WINDOW {
            return Err(ProgramError::invalid(format!(
                "member {}: cookie window must be between 1s and 365d",
                member.id
            )));
        }
    }
    if let Some(handle) = &member.handle {
        let handle_ok = !handle.is_empty()
            && handle.len() <= 64
            && handle
                .trim_start_matches('@')
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
        if !handle_ok {
            return Err(ProgramError::invalid(format!(
                "member {}: handle {handle:?} is not a social handle",
                member.id
            )));
        }
    }
    Ok(())
}

fn validate_enrolment(enrolment: &Enrolment) -> Result<(), ProgramError> {
    validate_postbacks(&format!("enrolment {}:{}", enrolment.offer, enrolment.member), &enrolment.postbacks)?;
    super::caps::validate_caps(&format!("enrolment {}:{}", enrolment.offer, enrolment.member), &enrolment.caps)?;
    let context = format!("enrolment of {} in {}", enrolment.member, enrolment.offer);
    if let Some(rule) = &enrolment.payout_override {
        rule.validate(&context)?;
    }
    if let Some(terms) = &enrolment.recurring_override {
        if terms.rate.is_sign_negative() && !terms.rate.is_zero() {
            return Err(ProgramError::NegativeValue { context, what: "recurring rate".into(), value: terms.rate });
        }
        if terms.rate > Decimal::ONE || terms.every.is_empty() {
            return Err(ProgramError::invalid(format!(
                "{context}: recurring rate must be at most 1, interval at least 1"
            )));
        }
    }
    Ok(())
}
