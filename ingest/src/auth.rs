//! Postback authentication, per advertiser: a `token` equal to one of the advertiser's
//! secrets, or `X-Signature: sha256=<hex>` — the HMAC-SHA256 of the raw body (POST) or raw
//! query string (GET) under a secret — with `X-Timestamp` (Unix seconds) within the tolerance
//! of now. Every comparison is constant-time.

use hmac::{Hmac, Mac};
use model::AdvertiserId;
use model::program::{Advertiser, Program};
use model::time::Timestamp;
use sha2::Sha256;

use crate::codes::Code;
use crate::rejection::Rejection;

/// What the request offers as proof.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    Token(&'a str),
    Signature { signature: &'a str, timestamp: Option<&'a str>, signed: &'a [u8] },
    Missing,
}

/// Constant-time equality of two byte strings (the length is not secret).
fn same(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

/// The advertiser a bare token belongs to, for requests that name no advertiser, offer,
/// click id or code. Every secret of every advertiser is compared.
pub fn advertiser_by_token(program: &Program, token: &str, now: Timestamp) -> Option<AdvertiserId> {
    let mut found = None;
    for advertiser in program.advertisers() {
        for secret in advertiser.secrets_at(now) {
            if same(secret.as_bytes(), token.as_bytes()) && found.is_none() {
                found = Some(advertiser.id.clone());
            }
        }
    }
    found
}

pub fn authenticate(
    advertiser: &Advertiser,
    credentials: Credentials<'_>,
    now: Timestamp,
    tolerance_seconds: i64,
) -> Result<(), Rejection> {
    match credentials {
        Credentials::Missing => {
            Err(Rejection::unauthorized(Code::MissingCredentials, "send token=<secret> or X-Signature and X-Timestamp"))
        }
        Credentials::Token(token) => {
            let mut matched = false;
            for secret in advertiser.secrets_at(now) {
                matched |= same(secret.as_bytes(), token.as_bytes());
            }
            if matched {
                Ok(())
            } else {
                Err(Rejection::unauthorized(Code::BadToken, "the token is not valid for this advertiser"))
            }
        }
        Credentials::Signature { signature, timestamp, signed } => {
            let Some(timestamp) = timestamp else {
                return Err(Rejection::unauthorized(
                    Code::MissingTimestamp,
                    "X-Signature needs X-Timestamp (Unix seconds)",
                ));
            };
            let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
                return Err(Rejection::unauthorized(Code::BadTimestamp, "X-Timestamp must be Unix seconds"));
            };
            if (now.millis() / 1000 - sent_at).abs() > tolerance_seconds {
                return Err(Rejection::unauthorized(
                    Code::StaleTimestamp,
                    "X-Timestamp is more than 5 minutes from now",
                ));
            }
            let Some(tag) = signature.strip_prefix("sha256=").and_then(|hex_tag| hex::decode(hex_tag).ok()) else {
                return Err(Rejection::unauthorized(Code::BadSignature, "X-Signature must be sha256=<hex>"));
            };
            let mut matched = false;
            for secret in advertiser.secrets_at(now) {
                if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
                    mac.update(signed);
                    matched |= mac.verify_slice(&tag).is_ok();
                }
            }
            if matched {
                Ok(())
            } else {
                Err(Rejection::unauthorized(Code::BadSignature, "X-Signature does not match the request"))
            }
        }
    }
}

/// `sha256=<hex>` of `signed` under `secret`: what an advertiser sends (docs, tests).
pub fn sign(secret: &str, signed: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(signed);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use model::program::PostbackSecret;

    use super::*;

    fn acme() -> Advertiser {
        Advertiser {
            id: AdvertiserId::new("acme").unwrap(),
            name: "Acme".into(),
            secrets: vec![
                PostbackSecret { secret: "current-secret-0001".into(), valid_until: None },
                PostbackSecret {
                    secret: "previous-secret-001".into(),
                    valid_until: Some(Timestamp::parse("2026-06-01T00:00:00Z").unwrap()),
                },
            ],
        }
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn tokens_match_current_and_unexpired_previous_secrets() {
        let now = at("2026-05-01T00:00:00Z");
        assert!(authenticate(&acme(), Credentials::Token("current-secret-0001"), now, 300).is_ok());
        assert!(authenticate(&acme(), Credentials::Token("previous-secret-001"), now, 300).is_ok());
        let later = at("2026-06-02T00:00:00Z");
        let expired = authenticate(&acme(), Credentials::Token("previous-secret-001"), later, 300);
        assert_eq!(expired.unwrap_err().reason(), "bad_token");
        assert_eq!(authenticate(&acme(), Credentials::Missing, now, 300).unwrap_err().reason(), "missing_credentials");
    }

    #[test]
    fn signatures_cover_the_raw_request_and_a_fresh_timestamp() {
        let now = at("2026-05-01T00:00:00Z");
        let body = br#"{"order_id":"A-1","amount":"12.50"}"#;
        let signature = sign("current-secret-0001", body);
        let stamp = (now.millis() / 1000).to_string();
        let credentials = |signature, timestamp, signed| Credentials::Signature { signature, timestamp, signed };
        assert!(authenticate(&acme(), credentials(&signature, Some(&stamp), body), now, 300).is_ok());
        let tampered = br#"{"order_id":"A-1","amount":"99.50"}"#;
        let reason = |result: Result<(), Rejection>| result.unwrap_err().reason();
        assert_eq!(
            reason(authenticate(&acme(), credentials(&signature, Some(&stamp), tampered), now, 300)),
            "bad_signature"
        );
        let old = (now.millis() / 1000 - 301).to_string();
        assert_eq!(
            reason(authenticate(&acme(), credentials(&signature, Some(&old), body), now, 300)),
            "stale_timestamp"
        );
        assert_eq!(reason(authenticate(&acme(), credentials(&signature, None, body), now, 300)), "missing_timestamp");
        assert_eq!(reason(authenticate(&acme(), credentials("md5=00", Some(&stamp), body), now, 300)), "bad_signature");
    }
}
