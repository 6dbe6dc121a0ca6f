//! Every code the edge refuses a request with, and which endpoint answers which code with
//! which status: the contract `docs/TRACKING.md` lists next to each endpoint, generated from
//! here ([`markdown`]) and checked against the document by `ingest/tests/contract_docs.rs`.

macro_rules! codes {
    ($($variant:ident = $text:literal: $meaning:literal,)*) => {
        /// A reason code of a refusal: the `error` of the JSON body, or the
        /// `X-Clickledger-Rejected` header of a pixel.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in the order they are declared.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// The code named `text`.
            pub fn parse(text: &str) -> Option<Code> {
                Code::ALL.iter().copied().find(|code| code.as_str() == text)
            }

            /// What the code means, for a person reading the contract.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

codes! {
    BadEncoding = "bad_encoding": "a parameter has broken percent-encoding",
    InvalidUtf8 = "invalid_utf8": "a parameter is not valid UTF-8",
    NulByte = "nul_byte": "a parameter contains a NUL byte",
    ControlCharacter = "control_character": "a parameter contains a control character",
    DuplicateParameter = "duplicate_parameter": "a parameter is given twice (in one source, or in the query and the body)",
    ParameterTooLong = "parameter_too_long": "a parameter is longer than 2,048 bytes",
    TooManyParameters = "too_many_parameters": "more than 64 parameters",
    BadJson = "bad_json": "the JSON body is not an object of strings and numbers",
    UnsupportedContentType = "unsupported_content_type": "the body is neither `application/json` nor `application/x-www-form-urlencoded`",
    BadBody = "bad_body": "the body could not be read",
    BodyTooLarge = "body_too_large": "the body is larger than the limit (16 KiB by default)",
    BodyTimeout = "body_timeout": "the body did not arrive within the body timeout",
    MissingOffer = "missing_offer": "`offer` is required",
    MissingMember = "missing_member": "`member` is required",
    MissingOrderId = "missing_order_id": "`order_id` is required",
    MissingClickIdOrCode = "missing_click_id_or_code": "send `click_id`, `code` or both",
    MissingAmount = "missing_amount": "an amount parameter is present but empty",
    BadOffer = "bad_offer": "`offer` is not a valid offer id",
    BadMember = "bad_member": "`member` is not a valid member id",
    BadAdvertiser = "bad_advertiser": "`advertiser` is not a valid advertiser id",
    BadOrderId = "bad_order_id": "`order_id` is not 1 to 128 of `[A-Za-z0-9._:-]`",
    BadCode = "bad_code": "`code` is not a valid promo code",
    BadCurrency = "bad_currency": "`currency` is not an upper-case ISO 4217 code",
    BadAmount = "bad_amount": "an amount is not a plain decimal such as `12.50` (digits, one `.`, at most 4 decimals)",
    AmountOutOfRange = "amount_out_of_range": "an amount is above the largest accepted (9,999,999,999.9999)",
    BadEvent = "bad_event": "`event` is not 1 to 32 of `[a-z0-9_]`",
    BadItems = "bad_items": "`items` is not `sku:amount:quantity` lines joined by commas (at most 100 lines, quantities 1 to 100,000)",
    BadOccurredAt = "bad_occurred_at": "`occurred_at` is not an RFC 3339 timestamp",
    OccurredAtOutOfRange = "occurred_at_out_of_range": "`occurred_at` is more than 90 days before now or more than 5 minutes after it",
    BadRefundId = "bad_refund_id": "`refund_id` is not 1 to 128 characters",
    MissingRefundId = "missing_refund_id": "a signed refund needs `refund_id`; an unsigned partial refund (with `amount`) needs `refund_id` or an `Idempotency-Key` header; so that a retry is applied once",
    BadIdempotencyKey = "bad_idempotency_key": "`Idempotency-Key` is not 1 to 128 visible ASCII characters",
    ItemsOutOfRange = "items_out_of_range": "an item line's total (price × quantity) or the sum of the items is above the largest accepted amount",
    RecurringNeedsPostback = "recurring_needs_postback": "`recurring_amount` opens a subscription: only an authenticated postback may send it",
    AmountOverPixelLimit = "amount_over_pixel_limit": "the amount or item total is above the offer's `pixel_max_amount` (10,000.00 unless set); larger sales come by postback",
    BadClickId = "bad_click_id": "the click id was not issued by this edge, was altered, or was signed with a key no longer accepted",
    SubTooLong = "sub_too_long": "a `sub1`..`sub5` value is longer than 256 bytes",
    OfferMismatch = "offer_mismatch": "`offer` names another offer than the click id's",
    UnknownOffer = "unknown_offer": "no such offer",
    UnknownLink = "unknown_link": "no such tracking link",
    WrongAdvertiser = "wrong_advertiser": "the click id is for an offer of another advertiser than the one the credentials prove",
    MissingCredentials = "missing_credentials": "send `token` or `X-Signature` and `X-Timestamp`",
    BadToken = "bad_token": "the token is not a current secret of the advertiser",
    MissingTimestamp = "missing_timestamp": "`X-Signature` needs `X-Timestamp` (Unix seconds)",
    BadTimestamp = "bad_timestamp": "`X-Timestamp` is not Unix seconds",
    StaleTimestamp = "stale_timestamp": "`X-Timestamp` is more than 5 minutes from now",
    BadSignature = "bad_signature": "`X-Signature` is not `sha256=<hex>` of `{X-Timestamp}.{request}` under a current secret",
    UnknownParameter = "unknown_parameter": "a signed request has a parameter its endpoint does not take: a signed body names exactly what it is, so it cannot be replayed to another endpoint",
    UnsignedQuery = "unsigned_query": "a signed request with a body also has query parameters, which the signature does not cover",
    Replayed = "replayed": "this `X-Signature` was accepted before; each request is signed anew",
    ReplayCacheFull = "replay_cache_full": "more signed requests within the timestamp tolerance than the edge can remember; retry after `Retry-After`",
    NotReady = "not_ready": "the edge has not loaded the program yet; retry after `Retry-After`",
    LogOverloaded = "log_overloaded": "the event log's queue is full; retry after `Retry-After`",
    LogUnavailable = "log_unavailable": "the event log cannot be reached; retry after `Retry-After`",
    LogTimeout = "log_timeout": "the event log did not acknowledge in time; retry after `Retry-After`",
    Internal = "internal": "a fault of the edge or its log; nothing was acknowledged",
    NotFound = "not_found": "no such route",
    MethodNotAllowed = "method_not_allowed": "the route does not take this method",
}

/// An endpoint of the tracking contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Click,
    Pixel,
    Postback,
    Refund,
    Cancel,
    /// Every route.
    Any,
}

impl Endpoint {
    pub const ALL: [Endpoint; 6] =
        [Endpoint::Click, Endpoint::Pixel, Endpoint::Postback, Endpoint::Refund, Endpoint::Cancel, Endpoint::Any];

    /// The endpoint a request to `path` reaches.
    pub fn of_path(path: &str) -> Endpoint {
        match path.split('?').next().unwrap_or_default() {
            "/c" => Endpoint::Click,
            link if link.starts_with("/c/") => Endpoint::Click,
            "/px" => Endpoint::Pixel,
            "/pb" => Endpoint::Postback,
            "/pb/refund" => Endpoint::Refund,
            "/pb/cancel" => Endpoint::Cancel,
            _ => Endpoint::Any,
        }
    }

    /// Its name in `docs/TRACKING.md`'s generated lists.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Click => "click",
            Endpoint::Pixel => "pixel",
            Endpoint::Postback => "postback",
            Endpoint::Refund => "refund",
            Endpoint::Cancel => "cancel",
            Endpoint::Any => "any",
        }
    }

    /// Every refusal of this endpoint: its code and its status. A pixel always answers 200
    /// with the GIF; its refusals are in `X-Clickledger-Rejected`, and its status here is 200.
    pub fn refusals(self) -> Vec<(Code, u16)> {
        use Code::*;
        let parameters = [
            BadEncoding,
            InvalidUtf8,
            NulByte,
            ControlCharacter,
            DuplicateParameter,
            ParameterTooLong,
            TooManyParameters,
        ];
        let body =
            [(BadJson, 400), (UnsupportedContentType, 400), (BadBody, 400), (BodyTooLarge, 413), (BodyTimeout, 408)];
        let conversion_fields = [
            BadOrderId,
            BadCode,
            BadCurrency,
            BadAmount,
            MissingAmount,
            AmountOutOfRange,
            BadEvent,
            BadItems,
            ItemsOutOfRange,
            BadOffer,
            BadClickId,
            OfferMismatch,
        ];
        let authentication = [
            (MissingCredentials, 401),
            (BadToken, 401),
            (MissingTimestamp, 401),
            (BadTimestamp, 401),
            (StaleTimestamp, 401),
            (BadSignature, 401),
            (BadAdvertiser, 400),
            (UnsignedQuery, 400),
            (UnknownParameter, 400),
            (BadIdempotencyKey, 400),
            (Replayed, 409),
            (ReplayCacheFull, 503),
        ];
        let log = [(LogOverloaded, 503), (LogUnavailable, 503), (LogTimeout, 503), (Internal, 500), (NotReady, 503)];
        let with = |status: u16, codes: &[Code]| codes.iter().map(|code| (*code, status)).collect::<Vec<_>>();
        let mut refusals = match self {
            Endpoint::Click => {
                let mut refusals = with(400, &parameters);
                refusals.extend(with(400, &[MissingOffer, MissingMember, BadOffer, BadMember, SubTooLong]));
                refusals.extend([(UnknownOffer, 404), (UnknownLink, 404), (NotReady, 503)]);
                refusals
            }
            Endpoint::Pixel => {
                let mut refusals = with(200, &parameters);
                refusals.extend(with(200, &conversion_fields));
                refusals.extend(with(
                    200,
                    &[MissingOffer, UnknownOffer, RecurringNeedsPostback, AmountOverPixelLimit, NotReady],
                ));
                refusals
            }
            Endpoint::Postback => {
                let mut refusals = with(400, &parameters);
                refusals.extend(body);
                refusals.extend(with(400, &conversion_fields));
                refusals.extend(with(400, &[MissingClickIdOrCode, UnknownOffer, BadOccurredAt, OccurredAtOutOfRange]));
                refusals.push((WrongAdvertiser, 403));
                refusals.extend(authentication);
                refusals.extend(log);
                refusals
            }
            Endpoint::Refund | Endpoint::Cancel => {
                let mut refusals = with(400, &parameters);
                refusals.extend(body);
                refusals.extend(with(400, &[MissingOrderId, BadOrderId, BadOffer, UnknownOffer]));
                if self == Endpoint::Refund {
                    refusals
                        .extend(with(400, &[BadAmount, MissingAmount, AmountOutOfRange, BadRefundId, MissingRefundId]));
                }
                refusals.extend(authentication);
                refusals.extend(log);
                refusals
            }
            Endpoint::Any => vec![(NotFound, 404), (MethodNotAllowed, 405)],
        };
        refusals.sort_by_key(|(code, status)| (*status, code.as_str()));
        refusals
    }
}

/// The list of an endpoint's refusals as `docs/TRACKING.md` shows it.
pub fn markdown(endpoint: Endpoint) -> String {
    let mut table = String::from("| status | code | when |\n|---|---|---|\n");
    for (code, status) in endpoint.refusals() {
        table.push_str(&format!("| {status} | `{}` | {} |\n", code.as_str(), code.meaning()));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_answered_by_some_endpoint_and_none_twice_by_one() {
        for code in Code::ALL {
            assert!(
                Endpoint::ALL.iter().any(|endpoint| endpoint.refusals().iter().any(|(answered, _)| answered == code)),
                "{} is in no endpoint's refusals",
                code.as_str()
            );
        }
        for endpoint in Endpoint::ALL {
            let refusals = endpoint.refusals();
            let mut codes: Vec<&str> = refusals.iter().map(|(code, _)| code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            assert_eq!(codes.len(), refusals.len(), "{} lists a code twice", endpoint.name());
        }
    }
}
