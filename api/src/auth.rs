//! API keys. A key is sent as `Authorization: Bearer <key>`. Keys are kept as SHA-256
//! hashes — the bootstrap key from configuration in memory, every other key as an `api_key`
//! program change — and every known hash is compared in constant time.
//!
//! Scopes: `admin` changes the program and reads everything; `analyst` reads reports;
//! `advertiser` keys are postback keys for the tracking edge and may do nothing here.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use model::program::{KeyScope, Program};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::ApiState;

/// Who is calling: the key's name and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: KeyScope,
}

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

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
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

/// Lower-case hex SHA-256 of a key. Keys are long random strings, so an unsalted hash is
/// enough: there is nothing to guess from it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key: 240 random bits from the OS-seeded generator, as lower-case text.
pub fn new_key() -> String {
    let random = |ulid: ulid::Ulid| ulid.random();
    format!(
        "clk_{:020x}{:020x}{:020x}",
        random(ulid::Ulid::new()),
        random(ulid::Ulid::new()),
        random(ulid::Ulid::new())
    )
}

/// Constant-time equality (the length is not secret).
fn same(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The keys from configuration. Keys made through the API live in the program.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    bootstrap: Option<String>,
}

impl KeyRing {
    /// A ring with the bootstrap key from configuration: `admin`, named `bootstrap`.
    pub fn with_bootstrap(key: &str) -> Self {
        Self { bootstrap: Some(hash_key(key)) }
    }

    /// The caller whose key hashes to `hash`: the bootstrap key or an active program key.
    /// Every candidate is compared, so the time taken does not say which one matched.
    pub fn find(&self, program: &Program, hash: &str) -> Option<Caller> {
        let mut found = None;
        if let Some(bootstrap) = &self.bootstrap
            && same(bootstrap.as_bytes(), hash.as_bytes())
        {
            found = Some(Caller { name: "bootstrap".into(), scope: KeyScope::Admin });
        }
        for key in program.api_keys().filter(|key| key.is_active()) {
            if same(key.hash.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(Caller { name: key.name.clone(), scope: key.scope });
            }
        }
        found
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
        let caller = |scope| Caller { name: "k".into(), scope };
        assert!(caller(KeyScope::Admin).require(KeyScope::Admin, "x").is_ok());
        assert!(caller(KeyScope::Admin).require(KeyScope::Analyst, "x").is_ok());
        assert!(caller(KeyScope::Analyst).require(KeyScope::Analyst, "x").is_ok());
        assert!(caller(KeyScope::Analyst).require(KeyScope::Admin, "x").is_err());
        assert!(caller(KeyScope::Advertiser).require(KeyScope::Analyst, "x").is_err());
    }
}
