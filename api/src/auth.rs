//! Who may call: a key sent as `Authorization: Bearer <key>`, found among the program's keys
//! (`crate::credentials`), and its scope checked by the extractors [`Admin`] and [`Analyst`].
//!
//! Scopes: `admin` changes the program and reads everything; `analyst` reads reports;
//! `member` reads its own member's reports, lines, bills and subscriptions ([`Reader`]);
//! `advertiser` keys are postback keys for the tracking edge and may do nothing here.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use model::program::KeyScope;

pub use crate::credentials::{Caller, KeyRing, hash_key, new_key};

use crate::error::ApiError;
use crate::state::ApiState;

impl Caller {
    /// The actor recorded on the changes it makes.
    pub fn actor(&self) -> String {
        format!("key:{}", self.name)
    }

    /// `admin` may do everything; `analyst` may read; `advertiser` nothing on this API.
    pub fn require(&self, needed: KeyScope, action: &'static str) -> Result<(), ApiError> {
        match (self.scope, needed) {
            (KeyScope::Admin, _) | (KeyScope::Analyst, KeyScope::Analyst) => Ok(()),
            _ => Err(ApiError::Forbidden(action)),
        }
    }
}

/// A caller with the `admin` scope.
#[derive(Clone, Debug)]
pub struct Admin(pub Caller);

/// A caller with the `analyst` scope (or `admin`).
#[derive(Clone, Debug)]
pub struct Analyst(pub Caller);

/// A caller that reads member data: `admin` and `analyst` any member's, a `member` key its
/// own member's only ([`Reader::member`]).
#[derive(Clone, Debug)]
pub struct Reader(pub Caller);

impl Reader {
    /// The member filter a read runs with: the one asked for, or, for a member key, its own
    /// member (asking for another member's is `403 forbidden`).
    pub fn member(&self, asked: Option<&str>) -> Result<Option<String>, ApiError> {
        match (&self.0.member, asked) {
            (None, asked) => Ok(asked.map(str::to_string)),
            (Some(own), None) => Ok(Some(own.to_string())),
            (Some(own), Some(asked)) if asked == own.as_str() => Ok(Some(own.to_string())),
            (Some(_), Some(_)) => Err(ApiError::Forbidden("read another member's data")),
        }
    }
}

impl FromRequestParts<ApiState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.scope != KeyScope::Member || caller.member.is_none() {
            caller.require(KeyScope::Analyst, "read reports (needs an analyst, admin or member key)")?;
        }
        Ok(Self(caller))
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let Some(authorization) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            // The dashboard's session cookie, in place of a key.
            return crate::ui::session_caller(parts, state);
        };
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        let hash = hash_key(presented);
        state.program.read(|program| state.keys.find(program, &hash)).ok_or(ApiError::Unauthenticated)
    }
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Admin, "change the program (needs an admin key)")?;
        Ok(Self(caller))
    }
}

impl FromRequestParts<ApiState> for Analyst {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(KeyScope::Analyst, "read reports (needs an analyst or admin key)")?;
        Ok(Self(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keys_are_long_and_different() {
        let (first, second) = (new_key(), new_key());
        assert_eq!(first.len(), 64);
        assert_ne!(first, second);
        assert_eq!(hash_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn only_admin_changes_the_program_and_advertisers_read_nothing() {
        let caller = |scope| Caller { name: "k".into(), scope, member: None };
        assert!(caller(KeyScope::Admin).require(KeyScope::Admin, "x").is_ok());
        assert!(caller(KeyScope::Admin).require(KeyScope::Analyst, "x").is_ok());
        assert!(caller(KeyScope::Analyst).require(KeyScope::Analyst, "x").is_ok());
        assert!(caller(KeyScope::Analyst).require(KeyScope::Admin, "x").is_err());
        assert!(caller(KeyScope::Advertiser).require(KeyScope::Analyst, "x").is_err());
    }
}
