//! Identifiers. Every id that crosses the public contract is validated once, when it is
//! built, so the rest of the code can rely on its shape (length, alphabet).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} contains a character outside {alphabet}")]
    BadCharacter { kind: &'static str, alphabet: &'static str },
}

impl IdError {
    /// The reason code used in 4xx responses and rejection records.
    pub fn reason(&self) -> &'static str {
        match self {
            IdError::Empty { .. } => "missing_id",
            IdError::TooLong { .. } => "id_too_long",
            IdError::BadCharacter { .. } => "bad_id",
        }
    }
}

fn check(
    kind: &'static str,
    value: &str,
    max: usize,
    alphabet: &'static str,
    allowed: fn(u8) -> bool,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if !value.bytes().all(allowed) {
        return Err(IdError::BadCharacter { kind, alphabet });
    }
    Ok(())
}

fn is_slug_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')
}

fn is_visible_ascii(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte)
}

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, kind = $kind:literal, max = $max:expr, alphabet = $alphabet:literal, allowed = $allowed:path $(, normalize = $normalize:path)?) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        /// As its string (not through `into = "String"`, which would copy it first).
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value: String = value.into();
                $(let value = $normalize(value);)?
                check($kind, &value, $max, $alphabet, $allowed)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, IdError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An offer, chosen by the program manager (`summer-sale`).
    OfferId, kind = "offer id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// A member (affiliate, influencer, publisher).
    MemberId, kind = "member id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// An advertiser: the party that sends postbacks and owns order ids.
    AdvertiserId, kind = "advertiser id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// One payout option of an offer (`default`, `vip`).
    PayoutOptionId, kind = "payout option id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// The code in a tracking link `/c/{code}`.
    LinkCode, kind = "link code", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// A promo code as shoppers type it; stored upper-case so `jane20` and `JANE20` are one code.
    PromoCode, kind = "promo code", max = 32, alphabet = "[A-Z0-9_-]", allowed = is_promo_byte, normalize = upper_case
);
string_id!(
    /// The advertiser's order id, as sent on the pixel or postback.
    OrderId, kind = "order id", max = 128, alphabet = "visible ASCII", allowed = is_visible_ascii
);
string_id!(
    /// The anonymous visitor behind the `clk_v` cookie.
    VisitorId, kind = "visitor id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// A webhook endpoint, chosen by the program manager (`finance`, `crm-sync`).
    WebhookId, kind = "webhook id", max = 64, alphabet = "[A-Za-z0-9._-]", allowed = is_slug_byte
);
string_id!(
    /// A product code in `items` (`sku:amount:quantity`).
    Sku, kind = "sku", max = 64, alphabet = "visible ASCII except ':' and ','", allowed = is_sku_byte
);

impl VisitorId {
    /// A new random visitor: a ULID, 26 characters of Crockford base32.
    pub fn generate() -> Self {
        Self(ulid::Ulid::new().to_string())
    }
}

fn is_promo_byte(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || matches!(byte, b'-' | b'_')
}

fn is_sku_byte(byte: u8) -> bool {
    is_visible_ascii(byte) && byte != b':' && byte != b','
}

fn upper_case(value: String) -> String {
    value.to_ascii_uppercase()
}

/// Orders are unique per advertiser: `{advertiser}:{order_id}`. Conversions without an
/// order id get `{advertiser}:event:{event_id}`, so they never collide and never dedupe.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderKey(String);

impl OrderKey {
    pub fn new(advertiser: &AdvertiserId, order_id: &OrderId) -> Self {
        Self(format!("{advertiser}:{order_id}"))
    }

    pub fn for_event(advertiser: &AdvertiserId, event: EventId) -> Self {
        Self(format!("{advertiser}:event:{event}"))
    }

    /// An order key as written by [`OrderKey::new`] (read back from state or the store).
    pub fn from_string(key: String) -> Self {
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderKey({:?})", self.0)
    }
}

/// Every event gets a unique id at the edge: a ULID, so ids sort by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub ulid::Ulid);

/// The length of an event id's text.
pub const EVENT_ID_LEN: usize = ulid::ULID_LEN;

impl EventId {
    pub fn new() -> Self {
        Self(ulid::Ulid::new())
    }

    /// The id's text in `buffer`, without allocating: for writers that copy it anyway.
    pub fn text_in<'buffer>(&self, buffer: &'buffer mut [u8; EVENT_ID_LEN]) -> &'buffer str {
        self.0.array_to_str(buffer)
    }

    /// A fixed id, for tests and deterministic replays.
    pub fn from_u128(value: u128) -> Self {
        Self(ulid::Ulid(value))
    }

    pub fn parse(text: &str) -> Option<Self> {
        ulid::Ulid::from_string(text).ok().map(Self)
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

/// A deterministic id derived from the inputs of an output row (docs/DECISIONS.md,
/// "At-least-once, idempotent effects"): the same inputs always give the same id, so every sink
/// can drop or collapse repeats.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DerivedId(String);

impl DerivedId {
    /// The first 128 bits of SHA-256 over the parts, each length-prefixed so that
    /// `("ab", "c")` and `("a", "bc")` differ.
    pub fn derive(parts: &[&str]) -> Self {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Self(hex::encode(&digest[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DerivedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DerivedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivedId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_ids_accept_the_documented_alphabet_and_reject_the_rest() {
        assert_eq!(OfferId::new("summer-sale_2.0").map(String::from), Ok("summer-sale_2.0".to_string()));
        assert_eq!(OfferId::new("").unwrap_err().reason(), "missing_id");
        assert_eq!(OfferId::new("a b").unwrap_err().reason(), "bad_id");
        assert_eq!(OfferId::new("x".repeat(65)).unwrap_err().reason(), "id_too_long");
        assert_eq!(MemberId::new("jané").unwrap_err().reason(), "bad_id");
    }

    #[test]
    fn promo_codes_are_case_insensitive() {
        assert_eq!(PromoCode::new("jane20"), PromoCode::new("JANE20"));
        assert_eq!(PromoCode::new("jane20").map(String::from), Ok("JANE20".to_string()));
        assert!(PromoCode::new("JANE 20").is_err());
    }

    #[test]
    fn order_ids_allow_visible_ascii_only() {
        assert!(OrderId::new("#1001/A").is_ok());
        assert!(OrderId::new("10 01").is_err());
        assert!(OrderId::new("a\0b").is_err());
        assert!(OrderId::new("x".repeat(129)).is_err());
    }

    #[test]
    fn derived_ids_are_stable_and_separate_their_parts() {
        let first = DerivedId::derive(&["ab", "c"]);
        assert_eq!(first, DerivedId::derive(&["ab", "c"]));
        assert_ne!(first, DerivedId::derive(&["a", "bc"]));
        assert_eq!(first.as_str().len(), 32);
    }
}
