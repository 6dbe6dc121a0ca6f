//! The wire format of every log record: versioned JSON, `{"v":1,"event":{...}}`.
//!
//! Version 1 is documented field by field in `docs/EVENTS.md`. A reader refuses a version it
//! does not know with [`WireError::UnsupportedVersion`] instead of guessing; a new version
//! adds a new number, and readers learn it before writers send it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version this build writes and reads.
pub const WIRE_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("record is not a version {WIRE_VERSION} event: {0}")]
    Malformed(String),
    #[error("record has wire version {0}; this build reads version {WIRE_VERSION}")]
    UnsupportedVersion(u16),
}

#[derive(Serialize)]
struct Outgoing<'a, T> {
    v: u16,
    event: &'a T,
}

#[derive(Deserialize)]
struct Incoming<T> {
    v: u16,
    event: T,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u16,
}

/// Encode one record.
pub fn encode<T: Serialize>(event: &T) -> Vec<u8> {
    // Serializing these types to a Vec cannot fail: every map key is a string and no
    // Serialize impl returns an error.
    serde_json::to_vec(&Outgoing { v: WIRE_VERSION, event }).unwrap_or_default()
}

/// Decode one record, refusing unknown versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    match serde_json::from_slice::<Incoming<T>>(bytes) {
        Ok(incoming) if incoming.v == WIRE_VERSION => Ok(incoming.event),
        Ok(incoming) => Err(WireError::UnsupportedVersion(incoming.v)),
        Err(error) => match serde_json::from_slice::<VersionOnly>(bytes) {
            Ok(header) if header.v != WIRE_VERSION => Err(WireError::UnsupportedVersion(header.v)),
            _ => Err(WireError::Malformed(error.to_string())),
        },
    }
}
