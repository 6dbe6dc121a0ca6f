//! API keys of the program API. A key is kept as a program change like everything else the
//! API manages (docs/DECISIONS.md, "Program configuration is a log too"), so keys survive
//! restarts and every service of a deployment knows them. Only the SHA-256 of a key is kept;
//! the key itself is shown once, when made.

use serde::{Deserialize, Serialize};

use crate::ids::{AdvertiserId, MemberId};
use crate::time::Timestamp;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Changes the program and reads everything.
    Admin,
    /// Reads reports.
    Analyst,
    /// An advertiser's postback key: valid at the tracking edge for that advertiser's offers
    /// only, and for nothing on the program API.
    Advertiser,
    /// A member's own key: reads that member's reports, commission lines, bills and
    /// subscriptions, and nothing else.
    Member,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Admin => "admin",
            KeyScope::Analyst => "analyst",
            KeyScope::Advertiser => "advertiser",
            KeyScope::Member => "member",
        }
    }
}

/// One API key: its name (the actor recorded on the changes it makes), scope and hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyGrant {
    /// `[A-Za-z0-9._-]`, 1 to 64 characters; unique for good (a revoked name is not reused).
    pub name: String,
    pub scope: KeyScope,
    /// The advertiser of an `advertiser` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertiser: Option<AdvertiserId>,
    /// The member of a `member` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<MemberId>,
    /// Lower-case hex SHA-256 of the key.
    pub hash: String,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl ApiKeyGrant {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }

    pub(super) fn validate(&self) -> Result<(), super::ProgramError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
        if !name_ok {
            return Err(super::ProgramError::Invalid(format!(
                "key name {:?} must be 1 to 64 of [A-Za-z0-9._-]",
                self.name
            )));
        }
        let hash_ok = self.hash.len() == 64 && self.hash.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        if !hash_ok {
            return Err(super::ProgramError::Invalid(format!(
                "key {}: hash must be 64 lower-case hex digits",
                self.name
            )));
        }
        if (self.scope == KeyScope::Advertiser) != self.advertiser.is_some() {
            return Err(super::ProgramError::Invalid(format!(
                "key {}: an advertiser is given exactly for advertiser keys",
                self.name
            )));
        }
        if (self.scope == KeyScope::Member) != self.member.is_some() {
            return Err(super::ProgramError::Invalid(format!(
                "key {}: a member is given exactly for member keys",
                self.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{Program, ProgramChange};

    fn key(name: &str, scope: KeyScope, advertiser: Option<&str>) -> ApiKeyGrant {
        ApiKeyGrant {
            name: name.into(),
            scope,
            advertiser: advertiser.map(|id| AdvertiserId::new(id).unwrap_or_else(|_| panic!("{id}"))),
            member: None,
            hash: "ab".repeat(32),
            created_at: Timestamp::from_millis(0),
            revoked_at: None,
        }
    }

    fn code(program: &mut Program, grant: ApiKeyGrant) -> &'static str {
        program.apply(ProgramChange::ApiKey(grant)).map_or_else(|error| error.code(), |()| "ok")
    }

    #[test]
    fn keys_are_checked_and_a_revoked_name_is_never_reused() {
        let mut program = Program::new();
        assert_eq!(code(&mut program, key("bad name", KeyScope::Admin, None)), "invalid");
        assert_eq!(
            code(&mut program, ApiKeyGrant { hash: "AB".repeat(32), ..key("ops", KeyScope::Admin, None) }),
            "invalid"
        );
        assert_eq!(code(&mut program, key("acme", KeyScope::Advertiser, None)), "invalid");
        assert_eq!(code(&mut program, key("acme", KeyScope::Advertiser, Some("acme"))), "unknown_advertiser");
        assert_eq!(code(&mut program, key("ops", KeyScope::Admin, None)), "ok");
        let revoked = ApiKeyGrant { revoked_at: Some(Timestamp::from_millis(1)), ..key("ops", KeyScope::Admin, None) };
        assert_eq!(code(&mut program, revoked), "ok");
        assert_eq!(code(&mut program, key("ops", KeyScope::Analyst, None)), "key_revoked");
        assert_eq!(ProgramChange::ApiKey(key("ops", KeyScope::Admin, None)).key(), "api_key:ops");
        assert!(program.api_keys().all(|grant| !grant.is_active()));
    }
}
