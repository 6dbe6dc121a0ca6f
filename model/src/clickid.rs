//! Click ids (docs/DECISIONS.md, "Click ids are self-verifying"): opaque, unique, and
//! self-verifying.
//!
//! A click id carries what attribution needs — the click's event id (which holds its time),
//! the offer, the member and the visitor — and an HMAC-SHA256 tag over them, so a postback can
//! be attributed without a global lookup and a forged or altered id is refused. Keys rotate:
//! one key signs, every key in the ring is accepted, and the key id travels in the click id.
//!
//! Layout before base64url (no padding):
//! `[version = 1][key id][event id: 16 bytes][len][offer][len][member][len][visitor][tag: 16 bytes]`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::{EventId, MemberId, OfferId, VisitorId};
use crate::time::Timestamp;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// The longest click id this build produces is about 290 characters; anything longer is junk.
pub const MAX_CLICK_ID_LEN: usize = 320;

type HmacSha256 = Hmac<Sha256>;

/// What a valid click id says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickClaims {
    pub click: EventId,
    pub offer: OfferId,
    pub member: MemberId,
    pub visitor: VisitorId,
}

impl ClickClaims {
    /// When the click happened: the time inside its ULID.
    pub fn clicked_at(&self) -> Timestamp {
        Timestamp::from_millis(i64::try_from(self.click.0.timestamp_ms()).unwrap_or(i64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClickIdError {
    #[error("the click id is not one this service issued")]
    Malformed,
    #[error("the click id was signed with a key that is no longer accepted")]
    UnknownKey,
    #[error("the click id's signature does not match")]
    BadSignature,
}

impl ClickIdError {
    pub fn reason(&self) -> &'static str {
        "bad_click_id"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("click key ring: {0}")]
pub struct KeyRingError(String);

/// One HMAC key with its id. The keyed state is computed once and cloned per use.
#[derive(Clone)]
struct ClickKey {
    id: u8,
    mac: HmacSha256,
}

impl std::fmt::Debug for ClickKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClickKey({})", self.id)
    }
}

/// The signing key and every accepted key.
#[derive(Clone, Debug)]
pub struct ClickKeyRing {
    signing: ClickKey,
    accepted: Vec<ClickKey>,
}

impl ClickKeyRing {
    /// From `id:secret` pairs separated by commas; the first pair signs, all are accepted.
    /// Secrets are at least 32 characters. Example: `2:new-secret...,1:old-secret...`.
    pub fn parse(spec: &str) -> Result<Self, KeyRingError> {
        let mut keys = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (id, secret) =
                pair.split_once(':').ok_or_else(|| KeyRingError(format!("{pair:?} is not id:secret")))?;
            let id: u8 = id.parse().map_err(|_| KeyRingError(format!("key id {id:?} is not 0-255")))?;
            keys.push((id, secret.as_bytes().to_vec()));
        }
        Self::from_keys(&keys)
    }

    /// The first key signs; all are accepted.
    pub fn from_keys(keys: &[(u8, Vec<u8>)]) -> Result<Self, KeyRingError> {
        let mut accepted: Vec<ClickKey> = Vec::with_capacity(keys.len());
        for (id, secret) in keys {
            if secret.len() < 32 {
                return Err(KeyRingError(format!("key {id} is shorter than 32 bytes")));
            }
            if accepted.iter().any(|key| key.id == *id) {
                return Err(KeyRingError(format!("key id {id} appears twice")));
            }
            let mac = HmacSha256::new_from_slice(secret).map_err(|error| KeyRingError(error.to_string()))?;
            accepted.push(ClickKey { id: *id, mac });
        }
        let signing = accepted.first().cloned().ok_or_else(|| KeyRingError("no keys".into()))?;
        Ok(Self { signing, accepted })
    }

    pub fn sign(&self, claims: &ClickClaims) -> String {
        let mut bytes = Vec::with_capacity(24 + claims.offer.as_str().len() + claims.member.as_str().len() + 64);
        bytes.push(VERSION);
        bytes.push(self.signing.id);
        bytes.extend_from_slice(&claims.click.0.0.to_be_bytes());
        for part in [claims.offer.as_str(), claims.member.as_str(), claims.visitor.as_str()] {
            // Ids are at most 64 bytes (see `ids`), so one length byte is enough.
            bytes.push(u8::try_from(part.len()).unwrap_or(u8::MAX));
            bytes.extend_from_slice(part.as_bytes());
        }
        let mut mac = self.signing.mac.clone();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Check the tag in constant time and return the claims.
    pub fn verify(&self, click_id: &str) -> Result<ClickClaims, ClickIdError> {
        if click_id.len() > MAX_CLICK_ID_LEN {
            return Err(ClickIdError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD.decode(click_id).map_err(|_| ClickIdError::Malformed)?;
        if bytes.len() < 2 + 16 + 3 + TAG_LEN || bytes[0] != VERSION {
            return Err(ClickIdError::Malformed);
        }
        let (signed, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let key = self.accepted.iter().find(|key| key.id == signed[1]).ok_or(ClickIdError::UnknownKey)?;
        let mut mac = key.mac.clone();
        mac.update(signed);
        mac.verify_truncated_left(tag).map_err(|_| ClickIdError::BadSignature)?;
        decode_claims(signed).ok_or(ClickIdError::Malformed)
    }
}

fn decode_claims(signed: &[u8]) -> Option<ClickClaims> {
    let event: [u8; 16] = signed.get(2..18)?.try_into().ok()?;
    let mut rest = &signed[18..];
    let mut parts: [&str; 3] = [""; 3];
    for part in &mut parts {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len);
        *part = std::str::from_utf8(tail.get(..len)?).ok()?;
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return None;
    }
    Some(ClickClaims {
        click: EventId::from_u128(u128::from_be_bytes(event)),
        offer: OfferId::new(parts[0]).ok()?,
        member: MemberId::new(parts[1]).ok()?,
        visitor: VisitorId::new(parts[2]).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(spec: &str) -> ClickKeyRing {
        ClickKeyRing::parse(spec).unwrap()
    }

    fn claims() -> ClickClaims {
        ClickClaims {
            click: EventId::new(),
            offer: OfferId::new("summer-sale").unwrap(),
            member: MemberId::new("jane").unwrap(),
            visitor: VisitorId::new("v01JD8Z0Q8K8ZJ3W6Y2T9R5M4N").unwrap(),
        }
    }

    const OLD: &str = "1:old-secret-old-secret-old-secret-0001";
    const NEW: &str = "2:new-secret-new-secret-new-secret-0002";

    #[test]
    fn a_signed_click_id_verifies_to_its_claims() {
        let ring = ring(NEW);
        let claims = claims();
        let id = ring.sign(&claims);
        assert!(id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'));
        assert_eq!(ring.verify(&id), Ok(claims.clone()));
        assert_eq!(ring.verify(&id).unwrap().clicked_at(), claims.clicked_at());
        assert_ne!(ring.sign(&ClickClaims { click: EventId::new(), ..claims.clone() }), id, "ids are unique per click");
    }

    #[test]
    fn altered_or_forged_ids_are_refused() {
        let ring = ring(NEW);
        let id = ring.sign(&claims());
        let mut bytes = URL_SAFE_NO_PAD.decode(&id).unwrap();
        let last_member_byte = 2 + 16 + 1 + "summer-sale".len() + 1;
        bytes[last_member_byte] = b'J';
        assert_eq!(ring.verify(&URL_SAFE_NO_PAD.encode(&bytes)), Err(ClickIdError::BadSignature));
        let forged = ClickKeyRing::parse("2:attacker-secret-attacker-secret-99").unwrap().sign(&claims());
        assert_eq!(ring.verify(&forged), Err(ClickIdError::BadSignature));
        assert_eq!(ring.verify("not a click id"), Err(ClickIdError::Malformed));
        assert_eq!(ring.verify(""), Err(ClickIdError::Malformed));
        assert_eq!(ring.verify(&"A".repeat(400)), Err(ClickIdError::Malformed));
    }

    #[test]
    fn rotation_accepts_old_keys_until_they_are_dropped() {
        let old_id = ring(OLD).sign(&claims());
        let rotated = ring(&format!("{NEW},{OLD}"));
        assert!(rotated.verify(&old_id).is_ok(), "the old key is still accepted");
        let new_id = rotated.sign(&claims());
        assert_eq!(URL_SAFE_NO_PAD.decode(&new_id).unwrap()[1], 2, "the first key signs");
        assert_eq!(ring(NEW).verify(&old_id), Err(ClickIdError::UnknownKey));
    }

    #[test]
    fn weak_or_duplicate_keys_are_refused() {
        assert!(ClickKeyRing::parse("1:short").is_err());
        assert!(ClickKeyRing::parse(&format!("{OLD},{OLD}")).is_err());
        assert!(ClickKeyRing::parse("").is_err());
        assert!(ClickKeyRing::parse("x:old-secret-old-secret-old-secret-0001").is_err());
    }
}
