//! Strict request parameters. The same parameters may come in the query string, a form body
//! or a JSON body (the tracking contract); whatever the source, a parameter is decoded once
//! and refused with a reason when it is malformed: broken percent-encoding, invalid UTF-8,
//! NUL or other control characters, a name given twice, too many or too long parameters.

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::codes::Code;

/// At most this many parameters per request.
pub const MAX_PARAMS: usize = 64;
/// At most this many bytes per decoded value (a deep link URL is the longest).
pub const MAX_VALUE_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("parameter {0:?} has broken percent-encoding")]
    BadEncoding(String),
    #[error("parameter {0:?} is not valid UTF-8")]
    InvalidUtf8(String),
    #[error("parameter {0:?} contains a NUL byte")]
    NulByte(String),
    #[error("parameter {0:?} contains a control character")]
    ControlCharacter(String),
    #[error("parameter {0:?} is given more than once")]
    Duplicate(String),
    #[error("parameter {0:?} is longer than {MAX_VALUE_LEN} bytes")]
    TooLong(String),
    #[error("more than {MAX_PARAMS} parameters")]
    TooMany,
    #[error("the JSON body is not an object of string values: {0}")]
    BadJson(String),
}

impl ParamError {
    pub fn code(&self) -> Code {
        match self {
            ParamError::BadEncoding(_) => Code::BadEncoding,
            ParamError::InvalidUtf8(_) => Code::InvalidUtf8,
            ParamError::NulByte(_) => Code::NulByte,
            ParamError::ControlCharacter(_) => Code::ControlCharacter,
            ParamError::Duplicate(_) => Code::DuplicateParameter,
            ParamError::TooLong(_) => Code::ParameterTooLong,
            ParamError::TooMany => Code::TooManyParameters,
            ParamError::BadJson(_) => Code::BadJson,
        }
    }

    pub fn reason(&self) -> &'static str {
        self.code().as_str()
    }
}

/// Decoded parameters, in arrival order, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The value, or `None` when absent or empty (`amount=` means no amount).
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// The first name not in `allowed`.
    pub fn first_unknown(&self, allowed: &[&str]) -> Option<&str> {
        self.pairs.iter().map(|(name, _)| name.as_str()).find(|name| !allowed.contains(name))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn push(&mut self, name: String, value: String) -> Result<(), ParamError> {
        if self.pairs.len() >= MAX_PARAMS {
            return Err(ParamError::TooMany);
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(ParamError::TooLong(name));
        }
        if self.get(&name).is_some() {
            return Err(ParamError::Duplicate(name));
        }
        self.pairs.push((name, value));
        Ok(())
    }

    /// Add everything from `other`; a name present in both is a duplicate.
    pub fn merge(&mut self, other: Params) -> Result<(), ParamError> {
        for (name, value) in other.pairs {
            self.push(name, value)?;
        }
        Ok(())
    }
}

/// `application/x-www-form-urlencoded`, from a query string or a form body.
pub fn parse_urlencoded(raw: &[u8]) -> Result<Params, ParamError> {
    let mut params = Params::default();
    for segment in raw.split(|byte| *byte == b'&').filter(|segment| !segment.is_empty()) {
        let (name, value) = match segment.iter().position(|byte| *byte == b'=') {
            Some(split) => (&segment[..split], &segment[split + 1..]),
            None => (segment, &segment[segment.len()..]),
        };
        let name = decode(name, None)?;
        let value = decode(value, Some(&name))?;
        params.push(name, value)?;
    }
    Ok(params)
}

/// Percent-decode one name or value (`+` is a space) and check what it decodes to.
fn decode(raw: &[u8], name: Option<&str>) -> Result<String, ParamError> {
    let label = |fallback: &[u8]| name.map_or_else(|| String::from_utf8_lossy(fallback).into_owned(), str::to_string);
    let mut bytes = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        match raw[index] {
            b'%' => {
                let high = raw.get(index + 1).and_then(|digit| (*digit as char).to_digit(16));
                let low = raw.get(index + 2).and_then(|digit| (*digit as char).to_digit(16));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(ParamError::BadEncoding(label(raw)));
                };
                bytes.push((high * 16 + low) as u8);
                index += 3;
            }
            b'+' => {
                bytes.push(b' ');
                index += 1;
            }
            byte => {
                bytes.push(byte);
                index += 1;
            }
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| ParamError::InvalidUtf8(label(raw)))?;
    check_text(text, name)
}

fn check_text(text: String, name: Option<&str>) -> Result<String, ParamError> {
    let label = || name.map_or_else(|| text.clone(), str::to_string);
    if text.contains('\0') {
        return Err(ParamError::NulByte(label()));
    }
    if text.chars().any(char::is_control) {
        return Err(ParamError::ControlCharacter(label()));
    }
    Ok(text)
}

/// A JSON object whose values are strings (numbers and booleans are taken as their literal
/// text, so `12.50` stays exactly `12.50`; `null` means absent). Duplicate keys are refused.
pub fn parse_json(body: &[u8]) -> Result<Params, ParamError> {
    let pairs: JsonPairs = serde_json::from_slice(body).map_err(|error| ParamError::BadJson(error.to_string()))?;
    let mut params = Params::default();
    for (name, raw) in pairs.0 {
        let name = check_text(name, None)?;
        let text = raw.get();
        let value = if text == "null" {
            continue;
        } else if text.starts_with('"') {
            let value: String =
                serde_json::from_str(text).map_err(|error| ParamError::BadJson(format!("{name}: {error}")))?;
            check_text(value, Some(&name))?
        } else if text.starts_with(['{', '[']) {
            return Err(ParamError::BadJson(format!("{name} must be a string, not an object or array")));
        } else {
            text.to_string()
        };
        params.push(name, value)?;
    }
    Ok(params)
}

/// The pairs of a JSON object, duplicates kept (serde_json's maps would silently keep one).
struct JsonPairs(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = JsonPairs;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<JsonPairs, M::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Box<RawValue>>()? {
                    if pairs.len() > MAX_PARAMS {
                        return Err(serde::de::Error::custom("too many fields"));
                    }
                    pairs.push(pair);
                }
                Ok(JsonPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str) -> Result<Params, &'static str> {
        parse_urlencoded(raw.as_bytes()).map_err(|error| error.reason())
    }

    #[test]
    fn query_strings_decode_once() {
        let params =
            query("offer=summer&member=jane&url=https%3A%2F%2Fshop.example.com%2Fp%3Fa%3D1&sub1=a+b&empty=&flag")
                .unwrap();
        assert_eq!(params.get("url"), Some("https://shop.example.com/p?a=1"));
        assert_eq!(params.get("sub1"), Some("a b"));
        assert_eq!(params.get("empty"), Some(""));
        assert_eq!(params.non_empty("empty"), None);
        assert_eq!(params.get("flag"), Some(""));
        assert_eq!(params.get("missing"), None);
        assert_eq!(query("").unwrap().len(), 0);
    }

    #[test]
    fn malformed_queries_are_refused_with_a_reason() {
        assert_eq!(query("offer=a&offer=b"), Err("duplicate_parameter"));
        assert_eq!(query("offer=%zz"), Err("bad_encoding"));
        assert_eq!(query("offer=%4"), Err("bad_encoding"));
        assert_eq!(query("offer=%ff%fe"), Err("invalid_utf8"));
        assert_eq!(query("offer=a%00b"), Err("nul_byte"));
        assert_eq!(query("offer=a%0Ab"), Err("control_character"));
        assert_eq!(query(&format!("url={}", "a".repeat(MAX_VALUE_LEN + 1))), Err("parameter_too_long"));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|n| format!("p{n}=1")).collect();
        assert_eq!(query(&many.join("&")), Err("too_many_parameters"));
    }

    #[test]
    fn json_bodies_keep_amounts_exact_and_refuse_duplicates() {
        let params =
            parse_json(br#"{"order_id":"A-1","amount":12.50,"event":"sale","code":null,"bot":false}"#).unwrap();
        assert_eq!(params.get("amount"), Some("12.50"));
        assert_eq!(params.get("bot"), Some("false"));
        assert_eq!(params.get("code"), None);
        let reason = |body: &[u8]| parse_json(body).map_err(|error| error.reason());
        assert_eq!(reason(br#"{"amount":"1","amount":"2"}"#), Err("duplicate_parameter"));
        assert_eq!(reason(br#"{"items":[1,2]}"#), Err("bad_json"));
        assert_eq!(reason(br#"["not","an","object"]"#), Err("bad_json"));
        assert_eq!(reason(b"{"), Err("bad_json"));
        assert_eq!(reason(br#"{"order_id":"a\u0000b"}"#), Err("nul_byte"));
    }

    #[test]
    fn merging_sources_refuses_a_name_given_twice() {
        let mut query = parse_urlencoded(b"token=t&order_id=1").unwrap();
        let body = parse_json(br#"{"order_id":"2"}"#).unwrap();
        assert_eq!(query.merge(body).map_err(|error| error.reason()), Err("duplicate_parameter"));
    }
}
