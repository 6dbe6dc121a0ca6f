//! Conversions and order changes.
//!
//! - `GET /px`: the browser pixel. Always a 1×1 GIF with `Cache-Control: no-store`; a request
//!   that cannot be recorded says why in `X-Clickledger-Rejected` and writes nothing.
//! - `GET|POST /pb`: the server-to-server postback, authenticated per advertiser, answered
//!   `200 {"status":"accepted","event_id":...}` only after the log acknowledged it.
//! - `POST /pb/refund`, `POST /pb/cancel`: order changes, authenticated the same way.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header, request};
use http_body_util::Full;
use hyper::body::Incoming;
use model::clickid::ClickClaims;
use model::events::{
    Client, Conversion, ConversionSource, OrderEvent, Reason, Refund, SubscriptionCancel, TrackingEvent, wire,
};
use model::ids::{AdvertiserId, EventId, OfferId, OrderId, OrderKey, PromoCode};
use model::program::Program;
use model::time::Timestamp;
use pipeline::ports::log::{EventLog, Record};
use sha2::{Digest, Sha256};

use crate::auth::{Credentials, Verified, verify};
use crate::click::visitor_cookie;
use crate::codes::Code;
use crate::edge::{Edge, HttpResponse};
use crate::fields;
use crate::params::{Params, parse_json, parse_urlencoded};
use crate::rejection::{Rejection, json_response};

/// The smallest transparent GIF (1×1, 43 bytes).
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub const REJECTED_HEADER: &str = "x-clickledger-rejected";

fn param_error(error: crate::params::ParamError) -> Rejection {
    Rejection::bad_request(error.code(), error.to_string())
}

pub(crate) async fn pixel<L: EventLog>(edge: &Edge<L>, parts: &request::Parts, peer: SocketAddr) -> HttpResponse {
    match pixel_records(edge, parts, peer) {
        Ok(records) => {
            edge.record_browser("pixel", records).await;
            gif(None)
        }
        Err(rejection) => {
            metrics::counter!(crate::metrics::REJECTED, "reason" => rejection.reason()).increment(1);
            gif(Some(rejection.reason()))
        }
    }
}

fn gif(rejected: Option<&'static str>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(PIXEL_GIF)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(reason) = rejected {
        headers.insert(REJECTED_HEADER, HeaderValue::from_static(reason));
    }
    response
}

/// A click id sent back, checked against this edge's keys.
fn click_claims<L: EventLog>(edge: &Edge<L>, params: &Params) -> Result<Option<ClickClaims>, Rejection> {
    params
        .get("click_id")
        .map(|click_id| {
            edge.config
                .click_keys
                .verify(click_id)
                .map_err(|error| Rejection::bad_request(Code::BadClickId, error.to_string()))
        })
        .transpose()
}

/// A browser's pixel: unauthenticated, so it is bounded (no subscriptions, amounts up to the
/// offer's `pixel_max_amount`) and the advertiser's own postback for the order replaces it.
fn pixel_records<L: EventLog>(
    edge: &Edge<L>,
    parts: &request::Parts,
    peer: SocketAddr,
) -> Result<Vec<Record>, Rejection> {
    edge.ensure_ready()?;
    let params = parse_urlencoded(parts.uri.query().unwrap_or_default().as_bytes()).map_err(param_error)?;
    let now = Timestamp::now();
    let offer_id =
        fields::offer(&params)?.ok_or_else(|| Rejection::bad_request(Code::MissingOffer, "offer is required"))?;
    let offer = edge
        .program
        .read(|program| program.offer(&offer_id).map(|offer| (offer.advertiser.clone(), offer.pixel_max_amount)));
    let (advertiser, max_amount) =
        offer.ok_or_else(|| Rejection::bad_request(Code::UnknownOffer, format!("no offer {offer_id}")))?;
    let claims = click_claims(edge, &params)?;
    if let Some(claims) = claims.as_ref().filter(|claims| claims.offer != offer_id) {
        return Err(Rejection::bad_request(Code::OfferMismatch, format!("the click id is for offer {}", claims.offer)));
    }
    if params.get("recurring_amount").is_some() {
        return Err(Rejection::bad_request(
            Code::RecurringNeedsPostback,
            "recurring_amount opens a subscription: send it by postback",
        ));
    }
    let client = edge.client(peer, &parts.headers);
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|agent| agent.to_str().ok());
    let conversion = Conversion {
        id: EventId::new(),
        received_at: now,
        occurred_at: None,
        source: ConversionSource::Pixel,
        advertiser: Some(advertiser),
        offer: Some(offer_id),
        event: fields::event(&params)?,
        order_id: fields::order_id(&params)?,
        amount: fields::amount(&params, "amount")?,
        currency: fields::currency(&params)?,
        items: fields::items(&params)?,
        code: fields::code(&params)?,
        recurring_amount: None,
        visitor: visitor_cookie(&parts.headers).or_else(|| claims.as_ref().map(|claims| claims.visitor.clone())),
        click_id: params.get("click_id").map(str::to_string),
        bot: edge.bots.is_bot(user_agent),
        refused: edge
            .program
            .read(|program| program.settings().is_blocked(client.address))
            .then_some(Reason::BlockedAddress),
        client: Some(client),
        program: edge.program.version(),
    };
    if conversion.sale_amount() > max_amount {
        return Err(Rejection::bad_request(
            Code::AmountOverPixelLimit,
            format!("a pixel reports at most {max_amount} for this offer; send larger sales by postback"),
        ));
    }
    Ok(vec![conversion_record(edge, conversion)])
}

/// A conversion goes to `events` under its visitor, so it follows the visitor's clicks; one
/// without a visitor (a code-only postback) under its order key.
fn conversion_record<L: EventLog>(edge: &Edge<L>, conversion: Conversion) -> Record {
    let key = match (&conversion.visitor, &conversion.advertiser) {
        (Some(visitor), _) => visitor.to_string(),
        (None, Some(advertiser)) => conversion.order_key(advertiser).to_string(),
        (None, None) => conversion.id.to_string(),
    };
    Record {
        topic: edge.config.topics.events.clone(),
        key,
        payload: wire::encode(&TrackingEvent::Conversion(conversion)),
    }
}

/// A server-to-server request: its parameters from the query and the body (form or JSON),
/// and the bytes a signature covers — the raw body when there is one, else the raw query
/// string.
struct ServerRequest {
    parts: request::Parts,
    params: Params,
    signed: Bytes,
    /// Parameters arrived in the query of a request whose body is what is signed.
    query_beside_body: bool,
}

async fn read_params<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> Result<ServerRequest, Rejection> {
    let (parts, body) = request.into_parts();
    let body = edge.read_body(body).await?;
    let query = parts.uri.query().unwrap_or_default().as_bytes();
    let mut params = parse_urlencoded(query).map_err(param_error)?;
    let query_beside_body = !body.is_empty() && !params.is_empty();
    if !body.is_empty() {
        let content_type =
            parts.headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let body_params = match media_type.as_str() {
            "application/json" => parse_json(&body),
            "application/x-www-form-urlencoded" | "" => parse_urlencoded(&body),
            other => {
                return Err(Rejection::bad_request(
                    Code::UnsupportedContentType,
                    format!("{other} is not application/json or application/x-www-form-urlencoded"),
                ));
            }
        }
        .map_err(param_error)?;
        params.merge(body_params).map_err(param_error)?;
    }
    let signed = if body.is_empty() { Bytes::copy_from_slice(query) } else { body };
    Ok(ServerRequest { parts, params, signed, query_beside_body })
}

impl ServerRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|value| value.to_str().ok())
    }

    fn credentials(&self) -> Credentials<'_> {
        match (self.header("x-signature"), self.params.non_empty("token")) {
            (Some(signature), _) => {
                Credentials::Signature { signature, timestamp: self.header("x-timestamp"), signed: &self.signed }
            }
            (None, Some(token)) => Credentials::Token(token),
            (None, None) => Credentials::Missing,
        }
    }

    /// The advertiser the credentials prove. A signature covers the body or the query, not
    /// both: a signed request with a body and query parameters is refused. A signed request
    /// takes only its endpoint's parameters (`allowed`), so that what was signed for one
    /// endpoint means nothing to another.
    fn verify(
        &self,
        program: &Program,
        allowed: &[&str],
        edge_tolerance_seconds: i64,
        now: Timestamp,
    ) -> Result<Verified, Rejection> {
        let credentials = self.credentials();
        if matches!(credentials, Credentials::Signature { .. }) {
            if self.query_beside_body {
                return Err(Rejection::bad_request(
                    Code::UnsignedQuery,
                    "the signature covers the body: send every parameter in it, none in the query",
                ));
            }
            if let Some(unknown) = self.params.first_unknown(allowed) {
                return Err(Rejection::bad_request(
                    Code::UnknownParameter,
                    format!("{unknown} is not a parameter of this endpoint"),
                ));
            }
        }
        let named = fields::advertiser(&self.params)?;
        verify(program, named.as_ref(), credentials, now, edge_tolerance_seconds)
    }

    /// `Idempotency-Key`, when sent: 1 to 128 visible ASCII characters. A signed request's
    /// identity comes from what is signed, never from this unsigned header.
    fn idempotency_key(&self) -> Result<Option<&str>, Rejection> {
        match self.parts.headers.get("idempotency-key") {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .filter(|key| !key.is_empty() && key.len() <= 128 && key.bytes().all(|byte| byte.is_ascii_graphic()))
                .map(Some)
                .ok_or_else(|| {
                    Rejection::bad_request(
                        Code::BadIdempotencyKey,
                        "Idempotency-Key must be 1 to 128 visible ASCII characters",
                    )
                }),
        }
    }
}

/// The id of an event made from a request: a signed request's from its signature (the same
/// signed request on two edges is one event, whatever unsigned headers are added to it); an
/// unsigned one's from its `Idempotency-Key` when sent (a retry carries it, so the retry is the
/// same event); else new.
fn request_event_id(kind: &str, verified: &Verified, idempotency_key: Option<&str>) -> EventId {
    match (verified.signature, idempotency_key) {
        (None, Some(key)) => derived_event_id(&[kind, "key", verified.advertiser.as_str(), key]),
        (Some((seen, sent_at)), _) => {
            let hashed = derived_event_id(&[kind, "signature", verified.advertiser.as_str(), &hex::encode(seen)]);
            // The signed timestamp as the ULID's time, so these ids still sort by time.
            let millis = u128::from(sent_at.clamp(0, (1 << 48) / 1000 - 1).unsigned_abs()) * 1000;
            EventId::from_u128((millis << 80) | (hashed.0.0 & ((1u128 << 80) - 1)))
        }
        (None, None) => EventId::new(),
    }
}

/// The first 128 bits of SHA-256 over length-prefixed parts.
fn derived_event_id(parts: &[&str]) -> EventId {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    EventId::from_u128(u128::from_be_bytes(bytes))
}

fn accepted(event: EventId) -> HttpResponse {
    json_response(StatusCode::OK, &serde_json::json!({"status": "accepted", "event_id": event.to_string()}))
}

/// Write `records` for a verified request: a signature is accepted once (409 `replayed`
/// after), and forgotten again when the log did not take the records, so the advertiser's
/// retry of the same request is not a replay.
async fn record_verified<L: EventLog>(
    edge: &Edge<L>,
    route: &'static str,
    verified: &Verified,
    now: Timestamp,
    records: Vec<Record>,
) -> Result<(), Rejection> {
    if let Some((seen, sent_at)) = verified.signature {
        edge.remember_signature(seen, sent_at, now)?;
    }
    let written = edge.record_durable(route, records).await;
    if let (Err(_), Some((seen, _))) = (&written, verified.signature) {
        edge.replays.forget(&seen);
    }
    written
}

pub(crate) async fn postback<L: EventLog>(
    edge: &Edge<L>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Result<HttpResponse, Rejection> {
    edge.ensure_ready()?;
    let request = read_params(edge, request).await?;
    let now = Timestamp::now();
    let client = edge.client(peer, &request.parts.headers);
    let (verified, conversion) =
        edge.program.read(|program| postback_conversion(edge, program, &request, client, now))?;
    let id = conversion.id;
    record_verified(edge, "postback", &verified, now, vec![conversion_record(edge, conversion)]).await?;
    Ok(accepted(id))
}

/// The offer a postback is for, among the authenticated advertiser's own: named, the click
/// id's, or the promo code's. Another advertiser's offer is unknown; its codes are not looked
/// up at all.
fn postback_offer(
    program: &Program,
    advertiser: &AdvertiserId,
    named: Option<OfferId>,
    claims: Option<&ClickClaims>,
    code: Option<&PromoCode>,
) -> Result<Option<OfferId>, Rejection> {
    let owned = |offer: &OfferId| program.offer(offer).is_some_and(|offer| &offer.advertiser == advertiser);
    if let Some(named) = &named {
        if !owned(named) {
            return Err(Rejection::bad_request(Code::UnknownOffer, format!("no offer {named}")));
        }
        if let Some(claims) = claims.filter(|claims| &claims.offer != named) {
            return Err(Rejection::bad_request(
                Code::OfferMismatch,
                format!("the click id is for offer {}", claims.offer),
            ));
        }
        return Ok(Some(named.clone()));
    }
    if let Some(claims) = claims {
        if !owned(&claims.offer) {
            return Err(Rejection::Forbidden {
                code: Code::WrongAdvertiser,
                message: "the click id is for an offer of another advertiser".into(),
            });
        }
        return Ok(Some(claims.offer.clone()));
    }
    let code_offer = code.and_then(|code| program.code(code)).map(|grant| &grant.offer).filter(|offer| owned(offer));
    Ok(code_offer.cloned())
}

fn postback_conversion<L: EventLog>(
    edge: &Edge<L>,
    program: &Program,
    request: &ServerRequest,
    client: Client,
    now: Timestamp,
) -> Result<(Verified, Conversion), Rejection> {
    let verified = request.verify(program, POSTBACK_PARAMETERS, edge.config.signature_tolerance_seconds, now)?;
    let params = &request.params;
    let idempotency_key = request.idempotency_key()?;
    let claims = click_claims(edge, params)?;
    let code = fields::code(params)?;
    if claims.is_none() && code.is_none() {
        return Err(Rejection::bad_request(Code::MissingClickIdOrCode, "send click_id, code or both"));
    }
    let offer = postback_offer(program, &verified.advertiser, fields::offer(params)?, claims.as_ref(), code.as_ref())?;
    let conversion = Conversion {
        id: request_event_id("postback", &verified, idempotency_key),
        received_at: now,
        occurred_at: fields::occurred_at(params, now, edge.config.occurred_at_past, edge.config.occurred_at_future)?,
        source: ConversionSource::Postback,
        advertiser: Some(verified.advertiser.clone()),
        offer,
        event: fields::event(params)?,
        order_id: fields::order_id(params)?,
        amount: fields::amount(params, "amount")?,
        currency: fields::currency(params)?,
        items: fields::items(params)?,
        code,
        recurring_amount: fields::amount(params, "recurring_amount")?,
        visitor: claims.as_ref().map(|claims| claims.visitor.clone()),
        click_id: params.get("click_id").map(str::to_string),
        // The advertiser's server speaks for itself: no bot list, no deny list.
        bot: false,
        client: Some(client),
        refused: None,
        program: edge.program.version(),
    };
    Ok((verified, conversion))
}

/// What a signed postback, refund and cancel may send.
const POSTBACK_PARAMETERS: &[&str] = &[
    "click_id",
    "code",
    "offer",
    "advertiser",
    "order_id",
    "amount",
    "currency",
    "items",
    "event",
    "occurred_at",
    "recurring_amount",
];
const REFUND_PARAMETERS: &[&str] = &["order_id", "amount", "refund_id", "advertiser", "offer"];
const CANCEL_PARAMETERS: &[&str] = &["order_id", "advertiser", "offer"];

/// The authenticated advertiser and order of a refund or cancel.
fn order_change(
    program: &Program,
    request: &ServerRequest,
    allowed: &[&str],
    tolerance_seconds: i64,
    now: Timestamp,
) -> Result<(Verified, OrderId), Rejection> {
    let verified = request.verify(program, allowed, tolerance_seconds, now)?;
    let order_id = fields::order_id(&request.params)?
        .ok_or_else(|| Rejection::bad_request(Code::MissingOrderId, "order_id is required"))?;
    if let Some(offer) = fields::offer(&request.params)? {
        if program.offer(&offer).is_none_or(|offer| offer.advertiser != verified.advertiser) {
            return Err(Rejection::bad_request(Code::UnknownOffer, format!("no offer {offer}")));
        }
    }
    Ok((verified, order_id))
}

/// A refund's event id, so that a retry is one refund: from `refund_id`, else from
/// `Idempotency-Key`; a full refund (no `amount`) without either is the order's one full
/// refund; a partial refund without either is refused (`missing_refund_id`).
fn refund_event_id(
    advertiser: &AdvertiserId,
    order_id: &OrderId,
    refund_id: Option<&str>,
    idempotency_key: Option<&str>,
    partial: bool,
) -> Result<EventId, Rejection> {
    match (refund_id, idempotency_key) {
        (Some(refund_id), _) => Ok(derived_event_id(&["refund", advertiser.as_str(), order_id.as_str(), refund_id])),
        (None, Some(key)) => Ok(derived_event_id(&["refund", "key", advertiser.as_str(), key])),
        (None, None) if !partial => Ok(derived_event_id(&["refund", "full", advertiser.as_str(), order_id.as_str()])),
        (None, None) => Err(Rejection::bad_request(
            Code::MissingRefundId,
            "a partial refund needs refund_id or an Idempotency-Key header, so that a retry is applied once",
        )),
    }
}

pub(crate) async fn refund<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> Result<HttpResponse, Rejection> {
    edge.ensure_ready()?;
    let request = read_params(edge, request).await?;
    let now = Timestamp::now();
    let tolerance = edge.config.signature_tolerance_seconds;
    let (verified, order_id) =
        edge.program.read(|program| order_change(program, &request, REFUND_PARAMETERS, tolerance, now))?;
    let refund_id = request.params.get("refund_id");
    if refund_id.is_some_and(|id| id.is_empty() || id.len() > 128) {
        return Err(Rejection::bad_request(Code::BadRefundId, "refund_id must be 1 to 128 characters"));
    }
    let amount = fields::amount(&request.params, "amount")?;
    let idempotency_key = request.idempotency_key()?;
    if verified.signature.is_some() && refund_id.is_none() {
        // The header is not signed: a signed refund names itself in what is signed.
        return Err(Rejection::bad_request(Code::MissingRefundId, "a signed refund needs refund_id"));
    }
    let id = refund_event_id(&verified.advertiser, &order_id, refund_id, idempotency_key, amount.is_some())?;
    let refund = Refund { id, received_at: now, amount, order_id, advertiser: verified.advertiser.clone() };
    let key = OrderKey::new(&refund.advertiser, &refund.order_id);
    let record = Record {
        topic: edge.config.topics.orders.clone(),
        key: key.to_string(),
        payload: wire::encode_compact(&OrderEvent::Refund(refund)),
    };
    record_verified(edge, "refund", &verified, now, vec![record]).await?;
    Ok(accepted(id))
}

/// A cancel ends the order's subscription once: its id is the order's, so a retry or a second
/// cancel changes nothing.
pub(crate) async fn cancel<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> Result<HttpResponse, Rejection> {
    edge.ensure_ready()?;
    let request = read_params(edge, request).await?;
    let now = Timestamp::now();
    let tolerance = edge.config.signature_tolerance_seconds;
    let (verified, order_id) =
        edge.program.read(|program| order_change(program, &request, CANCEL_PARAMETERS, tolerance, now))?;
    request.idempotency_key()?;
    let id = derived_event_id(&["cancel", verified.advertiser.as_str(), order_id.as_str()]);
    let cancel = SubscriptionCancel { id, received_at: now, advertiser: verified.advertiser.clone(), order_id };
    let key = OrderKey::new(&cancel.advertiser, &cancel.order_id);
    let record = Record {
        topic: edge.config.topics.orders.clone(),
        key: key.to_string(),
        payload: wire::encode_compact(&OrderEvent::Cancel(cancel)),
    };
    record_verified(edge, "cancel", &verified, now, vec![record]).await?;
    Ok(accepted(id))
}
