//! The wire format of every log record, in two versions of one object, `{"v":…,"event":{...}}`:
//!
//! - version 1, JSON: what the edge writes to `events` and the program API to `program`;
//! - version 2, the same object in MessagePack with the same field names: what is written to
//!   `orders` and `ledger` ([`encode_compact`]; by the stages, and by the edge and the API
//!   where they write there), which only the stages read. A sale's ledger record decodes in
//!   0.63 of the time of its JSON (`engine/wire_decode_compact`), and the settler decodes
//!   every record it applies.
//!
//! Both are documented in `docs/EVENTS.md`. [`decode`] reads either, told apart by the first
//! byte (a JSON object opens with `{`, a MessagePack map with `0x80`–`0x8f`, `0xde` or `0xdf`),
//! and refuses a version it does not know with [`WireError::UnsupportedVersion`] instead of
//! guessing.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The JSON version.
pub const WIRE_VERSION: u16 = 1;
/// The MessagePack version.
pub const COMPACT_WIRE_VERSION: u16 = 2;

/// Set to `1`, [`encode_compact`] writes version 1: for an upgrade from a build that reads
/// only version 1, until every reader of `orders` and `ledger` runs this one. `2` or unset:
/// version 2. Every binary checks it at its start ([`check_version_setting`]).
pub const WIRE_VERSION_VARIABLE: &str = "CLICKLEDGER_WIRE_VERSION";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("record is not a version {WIRE_VERSION} or {COMPACT_WIRE_VERSION} event: {0}")]
    Malformed(String),
    #[error("record has wire version {0}; this build reads versions {WIRE_VERSION} and {COMPACT_WIRE_VERSION}")]
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

/// Encode one record as version 1 (JSON).
pub fn encode<T: Serialize>(event: &T) -> Vec<u8> {
    // Serializing these types to a Vec cannot fail: every map key is a string and no
    // Serialize impl returns an error.
    serde_json::to_vec(&Outgoing { v: WIRE_VERSION, event }).unwrap_or_default()
}

/// Encode one record for `orders` or `ledger`: version 2 (MessagePack, fields named), or
/// version 1 where [`WIRE_VERSION_VARIABLE`] asks for it.
pub fn encode_compact<T: Serialize>(event: &T) -> Vec<u8> {
    if writes_version_1() {
        return encode(event);
    }
    // As above: these types serialize without error.
    rmp_serde::to_vec_named(&Outgoing { v: COMPACT_WIRE_VERSION, event }).unwrap_or_default()
}

/// The version [`encode_compact`] writes in this process.
pub fn compact_version_written() -> u16 {
    if writes_version_1() { WIRE_VERSION } else { COMPACT_WIRE_VERSION }
}

fn writes_version_1() -> bool {
    static VERSION_1: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VERSION_1.get_or_init(|| std::env::var(WIRE_VERSION_VARIABLE).is_ok_and(|version| version.trim() == "1"))
}

/// Refuse a value of [`WIRE_VERSION_VARIABLE`] other than `1` or `2`, which would otherwise
/// be read as "version 2" without a word.
pub fn check_version_setting() -> Result<(), String> {
    match std::env::var(WIRE_VERSION_VARIABLE) {
        Err(std::env::VarError::NotPresent) => Ok(()),
        Ok(version) if matches!(version.trim(), "1" | "2") => Ok(()),
        Ok(version) => {
            Err(format!("{WIRE_VERSION_VARIABLE}={version}: the wire versions this build writes are 1 and 2"))
        }
        Err(error) => Err(format!("{WIRE_VERSION_VARIABLE}: {error}")),
    }
}

/// Decode one record of either version, refusing unknown versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    match bytes.first() {
        Some(0x80..=0x8f | 0xde | 0xdf) => decode_compact(bytes),
        _ => decode_json(bytes),
    }
}

fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    checked(
        serde_json::from_slice(bytes).map_err(|error| error.to_string()),
        || serde_json::from_slice::<VersionOnly>(bytes).ok(),
        WIRE_VERSION,
        "JSON",
    )
}

fn decode_compact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    checked(
        rmp_serde::from_slice(bytes).map_err(|error| error.to_string()),
        || rmp_serde::from_slice::<VersionOnly>(bytes).ok(),
        COMPACT_WIRE_VERSION,
        "MessagePack",
    )
}

/// The event of a record decoded as `version`; if it did not decode, the version its header
/// names, when that is another.
fn checked<T>(
    decoded: Result<Incoming<T>, String>,
    header: impl FnOnce() -> Option<VersionOnly>,
    version: u16,
    encoding: &str,
) -> Result<T, WireError> {
    match decoded {
        Ok(incoming) if incoming.v == version => Ok(incoming.event),
        Ok(incoming) => Err(refused(incoming.v, encoding)),
        Err(error) => match header() {
            Some(header) if header.v != version => Err(refused(header.v, encoding)),
            _ => Err(WireError::Malformed(error)),
        },
    }
}

/// A version this build knows in the other encoding is malformed; any other is unknown.
fn refused(version: u16, encoding: &str) -> WireError {
    if version == WIRE_VERSION || version == COMPACT_WIRE_VERSION {
        WireError::Malformed(format!("version {version} in {encoding}"))
    } else {
        WireError::UnsupportedVersion(version)
    }
}
