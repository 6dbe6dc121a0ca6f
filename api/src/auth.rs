//! API keys. A key is `Authorization: Bearer <key>`; keys are kept as SHA-256 hashes and
//! compared in constant time. Scopes: `admin` changes the program and reads everything;
//! `analyst` reads reports.

use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Admin,
    Analyst,
}

/// A known key: its hash, scope and name (the actor recorded on changes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    pub scope: Scope,
    pub hash: String,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    /// The actor recorded on the changes it makes.
    pub fn actor(&self) -> String {
        format!("key:{}", self.name)
    }

    pub fn require(&self, scope: Scope, action: &'static str) -> Result<(), ApiError> {
        match (self.scope, scope) {
            (Scope::Admin, _) | (Scope::Analyst, Scope::Analyst) => Ok(()),
            (Scope::Analyst, Scope::Admin) => Err(ApiError::Forbidden(action)),
        }
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn same(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Arc<RwLock<Vec<ApiKey>>>,
}

impl KeyRing {
    /// A ring with the bootstrap key from configuration, as `admin` named `bootstrap`.
    pub fn with_bootstrap(key: &str) -> Self {
        let ring = Self::default();
        ring.add(ApiKey { name: "bootstrap".into(), scope: Scope::Admin, hash: hash_key(key) });
        ring
    }

    pub fn add(&self, key: ApiKey) {
        if let Ok(mut keys) = self.keys.write() {
            keys.retain(|known| known.name != key.name);
            keys.push(key);
        }
    }

    pub fn remove(&self, name: &str) -> bool {
        self.keys
            .write()
            .map(|mut keys| {
                let before = keys.len();
                keys.retain(|known| known.name != name);
                keys.len() != before
            })
            .unwrap_or(false)
    }

    pub fn list(&self) -> Vec<ApiKey> {
        self.keys.read().map(|keys| keys.clone()).unwrap_or_default()
    }

    /// The caller behind the request's bearer key.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated)?;
        let hash = hash_key(presented.trim());
        let keys = self.keys.read().map_err(|_| ApiError::Internal("key ring poisoned".into()))?;
        let mut found = None;
        for key in keys.iter() {
            if same(key.hash.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(Caller { name: key.name.clone(), scope: key.scope });
            }
        }
        found.ok_or(ApiError::Unauthenticated)
    }
}
