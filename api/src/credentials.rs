//! API keys as the program keeps them: SHA-256 hashes — the bootstrap key from
//! configuration in memory ([`KeyRing`]), every other key as an `api_key` program change —
//! compared in constant time.

use model::program::{KeyScope, Program};
use sha2::{Digest, Sha256};

/// Who is calling: the key's name and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub scope: KeyScope,
    /// The member of a `member` key.
    pub member: Option<model::ids::MemberId>,
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
            found = Some(Caller { name: "bootstrap".into(), scope: KeyScope::Admin, member: None });
        }
        for key in program.api_keys().filter(|key| key.is_active()) {
            if same(key.hash.as_bytes(), hash.as_bytes()) && found.is_none() {
                found = Some(Caller { name: key.name.clone(), scope: key.scope, member: key.member.clone() });
            }
        }
        found
    }
}
