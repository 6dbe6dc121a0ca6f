//! Postback authentication: who is asking is decided by the credentials alone, before anything
//! the request names (offer, click id, code) is looked up, so an unauthenticated caller learns
//! nothing about the program from the answers.
//!
//! - `token=<secret>`: one of an advertiser's current secrets.
//! - `X-Signature: sha256=<hex>` with `X-Timestamp: <Unix seconds>`: the HMAC-SHA256, under a
//!   current secret, of `"{timestamp}.{raw body}"` (or of the raw query string for a GET
//!   without a body). The timestamp must be within the tolerance of now, and each signature
//!   is accepted once ([`crate::replay`]).
//!
//! `advertiser=` narrows the secrets tried to one advertiser's; every comparison is
//! constant-time.

use hmac::{Hmac, Mac};
use model::AdvertiserId;
use model::program::{Advertiser, Program};
use model::time::Timestamp;
use sha2::Sha256;

use crate::codes::Code;
use crate::rejection::Rejection;
use crate::replay::Seen;

/// What the request offers as proof.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    Token(&'a str),
    Signature { signature: &'a str, timestamp: Option<&'a str>, signed: &'a [u8] },
    Missing,
}

/// Who a request proved to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub advertiser: AdvertiserId,
    /// For a signed request: its MAC's first bytes (a repeat is a replay) and its timestamp.
    pub signature: Option<(Seen, i64)>,
}

/// Constant-time equality of two byte strings (the length is not secret).
fn same(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

fn mac(secret: &str, timestamp: &str, signed: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(signed);
    Some(mac)
}

/// The advertiser the credentials prove, among `named` (when the request names one) or every
/// advertiser of the program.
pub fn verify(
    program: &Program,
    named: Option<&AdvertiserId>,
    credentials: Credentials<'_>,
    now: Timestamp,
    tolerance_seconds: i64,
) -> Result<Verified, Rejection> {
    let candidates: Vec<&Advertiser> = match named {
        Some(named) => program.advertiser(named).into_iter().collect(),
        None => program.advertisers().collect(),
    };
    match credentials {
        Credentials::Missing => {
            Err(Rejection::unauthorized(Code::MissingCredentials, "send token=<secret> or X-Signature and X-Timestamp"))
        }
        Credentials::Token(token) => {
            let mut found = None;
            for advertiser in &candidates {
                for secret in advertiser.secrets_at(now) {
                    if same(secret.as_bytes(), token.as_bytes()) && found.is_none() {
                        found = Some(advertiser.id.clone());
                    }
                }
            }
            found
                .map(|advertiser| Verified { advertiser, signature: None })
                .ok_or_else(|| Rejection::unauthorized(Code::BadToken, "the token is not a current secret"))
        }
        Credentials::Signature { signature, timestamp, signed } => {
            let Some(timestamp) = timestamp.map(str::trim) else {
                return Err(Rejection::unauthorized(
                    Code::MissingTimestamp,
                    "X-Signature needs X-Timestamp (Unix seconds)",
                ));
            };
            let Ok(sent_at) = timestamp.parse::<i64>() else {
                return Err(Rejection::unauthorized(Code::BadTimestamp, "X-Timestamp must be Unix seconds"));
            };
            let skew = (now.millis() / 1000).checked_sub(sent_at).map(i64::unsigned_abs);
            if skew.is_none_or(|skew| skew > tolerance_seconds.unsigned_abs()) {
                return Err(Rejection::unauthorized(
                    Code::StaleTimestamp,
                    format!("X-Timestamp is more than {tolerance_seconds} seconds from now"),
                ));
            }
            let Some(tag) = signature.strip_prefix("sha256=").and_then(|hex_tag| hex::decode(hex_tag).ok()) else {
                return Err(Rejection::unauthorized(Code::BadSignature, "X-Signature must be sha256=<hex>"));
            };
            let mut found = None;
            for advertiser in &candidates {
                for secret in advertiser.secrets_at(now) {
                    let matched = mac(secret, timestamp, signed).is_some_and(|mac| mac.verify_slice(&tag).is_ok());
                    if matched && found.is_none() {
                        found = Some(advertiser.id.clone());
                    }
                }
            }
            let mut seen = [0u8; 16];
            if tag.len() >= 16 {
                seen.copy_from_slice(&tag[..16]);
            }
            found.map(|advertiser| Verified { advertiser, signature: Some((seen, sent_at)) }).ok_or_else(|| {
                Rejection::unauthorized(
                    Code::BadSignature,
                    "X-Signature is not sha256=<hex> of \"{X-Timestamp}.{request}\" under a current secret",
                )
            })
        }
    }
}

/// `sha256=<hex>` of `"{timestamp}.{signed}"` under `secret`: what an advertiser sends (docs,
/// tests).
pub fn sign(secret: &str, timestamp: i64, signed: &[u8]) -> String {
    match mac(secret, &timestamp.to_string(), signed) {
        Some(mac) => format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        None => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use model::program::PostbackSecret;
    use model::testkit::ProgramBuilder;

    use super::*;

    fn advertiser(id: &str, secrets: &[(&str, Option<&str>)]) -> Advertiser {
        Advertiser {
            id: AdvertiserId::new(id).unwrap(),
            name: id.to_string(),
            secrets: secrets
                .iter()
                .map(|(secret, until)| PostbackSecret {
                    secret: secret.to_string(),
                    valid_until: until.map(|until| Timestamp::parse(until).unwrap()),
                })
                .collect(),
        }
    }

    fn program() -> Program {
        ProgramBuilder::new()
            .advertiser(advertiser(
                "acme",
                &[("current-secret-0001", None), ("previous-secret-001", Some("2026-06-01T00:00:00Z"))],
            ))
            .advertiser(advertiser("globex", &[("globex-secret-0001", None)]))
            .build()
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn signed<'a>(signature: &'a str, timestamp: Option<&'a str>, signed: &'a [u8]) -> Credentials<'a> {
        Credentials::Signature { signature, timestamp, signed }
    }

    fn reason(result: Result<Verified, Rejection>) -> &'static str {
        result.unwrap_err().reason()
    }

    #[test]
    fn a_token_names_its_advertiser_among_all_or_the_one_named() {
        let program = program();
        let now = at("2026-05-01T00:00:00Z");
        let acme = AdvertiserId::new("acme").unwrap();
        let globex = AdvertiserId::new("globex").unwrap();
        let token = |token| Credentials::Token(token);
        assert_eq!(verify(&program, None, token("current-secret-0001"), now, 300).unwrap().advertiser, acme);
        assert_eq!(verify(&program, None, token("previous-secret-001"), now, 300).unwrap().advertiser, acme);
        assert_eq!(verify(&program, None, token("globex-secret-0001"), now, 300).unwrap().advertiser, globex);
        assert_eq!(reason(verify(&program, Some(&globex), token("current-secret-0001"), now, 300)), "bad_token");
        let later = at("2026-06-02T00:00:00Z");
        assert_eq!(reason(verify(&program, None, token("previous-secret-001"), later, 300)), "bad_token");
        let unknown = AdvertiserId::new("nobody").unwrap();
        assert_eq!(reason(verify(&program, Some(&unknown), token("current-secret-0001"), now, 300)), "bad_token");
        assert_eq!(reason(verify(&program, None, Credentials::Missing, now, 300)), "missing_credentials");
    }

    #[test]
    fn a_signature_covers_the_timestamp_and_the_raw_request() {
        let program = program();
        let now = at("2026-05-01T00:00:00Z");
        let stamp = now.millis() / 1000;
        let body = br#"{"order_id":"A-1","amount":"12.50"}"#;
        let signature = sign("current-secret-0001", stamp, body);
        let stamp_text = stamp.to_string();
        let verified = verify(&program, None, signed(&signature, Some(&stamp_text), body), now, 300).unwrap();
        assert_eq!(verified.advertiser.as_str(), "acme");
        assert_eq!(verified.signature.unwrap().1, stamp);

        let tampered = br#"{"order_id":"A-1","amount":"99.50"}"#;
        assert_eq!(
            reason(verify(&program, None, signed(&signature, Some(&stamp_text), tampered), now, 300)),
            "bad_signature"
        );
        // The same MAC with a fresher timestamp: the timestamp is signed, so it no longer matches.
        let fresher = (stamp + 60).to_string();
        assert_eq!(reason(verify(&program, None, signed(&signature, Some(&fresher), body), now, 300)), "bad_signature");
        let old = (stamp - 301).to_string();
        let old_signature = sign("current-secret-0001", stamp - 301, body);
        assert_eq!(
            reason(verify(&program, None, signed(&old_signature, Some(&old), body), now, 300)),
            "stale_timestamp"
        );
        for extreme in [i64::MIN, i64::MAX] {
            let text = extreme.to_string();
            assert_eq!(
                reason(verify(&program, None, signed(&signature, Some(&text), body), now, 300)),
                "stale_timestamp"
            );
        }
        assert_eq!(reason(verify(&program, None, signed(&signature, None, body), now, 300)), "missing_timestamp");
        assert_eq!(reason(verify(&program, None, signed(&signature, Some("soon"), body), now, 300)), "bad_timestamp");
        assert_eq!(
            reason(verify(&program, None, signed("md5=00", Some(&stamp_text), body), now, 300)),
            "bad_signature"
        );
    }
}
