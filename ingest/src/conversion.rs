//! Conversions and order changes.
//!
//! - `GET /px`: the browser pixel. Always a 1×1 GIF with `Cache-Control: no-store`; a request
//!   that cannot be recorded says why in `X-Clickledger-Rejected` and writes nothing.
//! - `GET|POST /pb`: the server-to-server postback, authenticated per advertiser, answered
//!   `200 {"status":"accepted","event_id":...}` only after the log acknowledged it.
//! - `POST /pb/refund`, `POST /pb/cancel`: order changes, authenticated the same way.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header, request};
use http_body_util::Full;
use hyper::body::Incoming;
use model::clickid::ClickClaims;
use model::events::{Conversion, ConversionSource, OrderEvent, Refund, SubscriptionCancel, TrackingEvent, wire};
use model::ids::{AdvertiserId, EventId, OrderId, OrderKey};
use model::program::Program;
use model::time::Timestamp;
use pipeline::ports::log::{EventLog, Record};
use sha2::{Digest, Sha256};

use crate::auth::{Credentials, advertiser_by_token, authenticate};
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

pub(crate) async fn pixel<L: EventLog>(edge: &Edge<L>, parts: &request::Parts) -> HttpResponse {
    match pixel_records(edge, parts) {
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

fn pixel_records<L: EventLog>(edge: &Edge<L>, parts: &request::Parts) -> Result<Vec<Record>, Rejection> {
    let params = parse_urlencoded(parts.uri.query().unwrap_or_default().as_bytes()).map_err(param_error)?;
    let now = Timestamp::now();
    let offer_id =
        fields::offer(&params)?.ok_or_else(|| Rejection::bad_request(Code::MissingOffer, "offer is required"))?;
    let advertiser = edge.program.read(|program| program.offer(&offer_id).map(|offer| offer.advertiser.clone()));
    let advertiser =
        advertiser.ok_or_else(|| Rejection::bad_request(Code::UnknownOffer, format!("no offer {offer_id}")))?;
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
        recurring_amount: fields::amount(&params, "recurring_amount")?,
        visitor: visitor_cookie(&parts.headers),
        click_id: None,
        bot: edge.bots.is_bot(user_agent),
        program: edge.program.version(),
    };
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

/// Parameters from the query and the body (form or JSON), and the bytes a signature covers:
/// the raw body when there is one, else the raw query string.
async fn read_params<L: EventLog>(
    edge: &Edge<L>,
    request: Request<Incoming>,
) -> Result<(request::Parts, Params, Bytes), Rejection> {
    let (parts, body) = request.into_parts();
    let body = edge.read_body(body).await?;
    let query = parts.uri.query().unwrap_or_default().as_bytes();
    let mut params = parse_urlencoded(query).map_err(param_error)?;
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
    Ok((parts, params, signed))
}

fn credentials<'a>(headers: &'a HeaderMap, params: &'a Params, signed: &'a [u8]) -> Credentials<'a> {
    let header_text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match (header_text("x-signature"), params.non_empty("token")) {
        (Some(signature), _) => Credentials::Signature { signature, timestamp: header_text("x-timestamp"), signed },
        (None, Some(token)) => Credentials::Token(token),
        (None, None) => Credentials::Missing,
    }
}

/// The advertiser a request speaks for: named, or the owner of the offer, or found by token.
fn resolve_advertiser(
    program: &Program,
    named: Option<AdvertiserId>,
    offer_owner: Option<AdvertiserId>,
    credentials: Credentials<'_>,
    now: Timestamp,
) -> Result<AdvertiserId, Rejection> {
    if let (Some(named), Some(owner)) = (&named, &offer_owner) {
        if named != owner {
            return Err(Rejection::Forbidden {
                code: Code::WrongAdvertiser,
                message: format!("the offer belongs to {owner}, not {named}"),
            });
        }
    }
    let by_token = || match credentials {
        Credentials::Token(token) => advertiser_by_token(program, token, now),
        _ => None,
    };
    named.or(offer_owner).or_else(by_token).ok_or_else(|| {
        Rejection::unauthorized(
            Code::UnknownAdvertiser,
            "name the advertiser (advertiser=), the offer, a click id or a known code",
        )
    })
}

fn accepted(event: EventId) -> HttpResponse {
    json_response(StatusCode::OK, &serde_json::json!({"status": "accepted", "event_id": event.to_string()}))
}

pub(crate) async fn postback<L: EventLog>(
    edge: &Edge<L>,
    request: Request<Incoming>,
) -> Result<HttpResponse, Rejection> {
    let (parts, params, signed) = read_params(edge, request).await?;
    let now = Timestamp::now();
    let conversion =
        edge.program.read(|program| postback_conversion(edge, program, &parts.headers, &params, &signed, now))?;
    let id = conversion.id;
    edge.record_durable("postback", vec![conversion_record(edge, conversion)]).await?;
    Ok(accepted(id))
}

fn postback_conversion<L: EventLog>(
    edge: &Edge<L>,
    program: &Program,
    headers: &HeaderMap,
    params: &Params,
    signed: &[u8],
    now: Timestamp,
) -> Result<Conversion, Rejection> {
    let claims: Option<ClickClaims> = match params.get("click_id") {
        Some(click_id) => Some(
            edge.config
                .click_keys
                .verify(click_id)
                .map_err(|error| Rejection::bad_request(Code::BadClickId, error.to_string()))?,
        ),
        None => None,
    };
    let code = fields::code(params)?;
    if claims.is_none() && code.is_none() {
        return Err(Rejection::bad_request(Code::MissingClickIdOrCode, "send click_id, code or both"));
    }
    let named_offer = fields::offer(params)?;
    if let (Some(named), Some(claims)) = (&named_offer, &claims) {
        if named != &claims.offer {
            return Err(Rejection::bad_request(
                Code::OfferMismatch,
                format!("the click id is for offer {}", claims.offer),
            ));
        }
    }
    let code_offer = code.as_ref().and_then(|code| program.code(code)).map(|grant| grant.offer.clone());
    let offer_id = named_offer.or_else(|| claims.as_ref().map(|claims| claims.offer.clone())).or(code_offer);
    let offer_owner = match &offer_id {
        Some(offer_id) => Some(
            program
                .offer(offer_id)
                .map(|offer| offer.advertiser.clone())
                .ok_or_else(|| Rejection::bad_request(Code::UnknownOffer, format!("no offer {offer_id}")))?,
        ),
        None => None,
    };
    let credentials = credentials(headers, params, signed);
    let advertiser_id = resolve_advertiser(program, fields::advertiser(params)?, offer_owner, credentials, now)?;
    let advertiser = program
        .advertiser(&advertiser_id)
        .ok_or_else(|| Rejection::unauthorized(Code::UnknownAdvertiser, format!("no advertiser {advertiser_id}")))?;
    authenticate(advertiser, credentials, now, edge.config.signature_tolerance_seconds)?;

    let user_agent = headers.get(header::USER_AGENT).and_then(|agent| agent.to_str().ok());
    Ok(Conversion {
        id: EventId::new(),
        received_at: now,
        occurred_at: fields::occurred_at(params, now, edge.config.occurred_at_past, edge.config.occurred_at_future)?,
        source: ConversionSource::Postback,
        advertiser: Some(advertiser_id),
        offer: offer_id,
        event: fields::event(params)?,
        order_id: fields::order_id(params)?,
        amount: fields::amount(params, "amount")?,
        currency: fields::currency(params)?,
        items: fields::items(params)?,
        code,
        recurring_amount: fields::amount(params, "recurring_amount")?,
        visitor: claims.as_ref().map(|claims| claims.visitor.clone()),
        click_id: params.get("click_id").map(str::to_string),
        bot: edge.bots.is_bot(user_agent),
        program: edge.program.version(),
    })
}

/// The authenticated advertiser and order of a refund or cancel.
fn order_change<L: EventLog>(
    edge: &Edge<L>,
    program: &Program,
    headers: &HeaderMap,
    params: &Params,
    signed: &[u8],
    now: Timestamp,
) -> Result<(AdvertiserId, OrderId), Rejection> {
    let order_id = fields::order_id(params)?
        .ok_or_else(|| Rejection::bad_request(Code::MissingOrderId, "order_id is required"))?;
    let credentials = credentials(headers, params, signed);
    let offer_owner = match fields::offer(params)? {
        Some(offer_id) => Some(
            program
                .offer(&offer_id)
                .map(|offer| offer.advertiser.clone())
                .ok_or_else(|| Rejection::bad_request(Code::UnknownOffer, format!("no offer {offer_id}")))?,
        ),
        None => None,
    };
    let advertiser_id = resolve_advertiser(program, fields::advertiser(params)?, offer_owner, credentials, now)?;
    let advertiser = program
        .advertiser(&advertiser_id)
        .ok_or_else(|| Rejection::unauthorized(Code::UnknownAdvertiser, format!("no advertiser {advertiser_id}")))?;
    authenticate(advertiser, credentials, now, edge.config.signature_tolerance_seconds)?;
    Ok((advertiser_id, order_id))
}

/// With `refund_id`, a refund's event id is derived from it, so a retried refund is one
/// refund; without it, every request is a new refund.
fn refund_event_id(advertiser: &AdvertiserId, order_id: &OrderId, refund_id: Option<&str>) -> EventId {
    match refund_id {
        Some(refund_id) => {
            let mut hasher = Sha256::new();
            for part in ["refund", advertiser.as_str(), order_id.as_str(), refund_id] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
            let digest = hasher.finalize();
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            EventId::from_u128(u128::from_be_bytes(bytes))
        }
        None => EventId::new(),
    }
}

pub(crate) async fn refund<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> Result<HttpResponse, Rejection> {
    let (parts, params, signed) = read_params(edge, request).await?;
    let now = Timestamp::now();
    let (advertiser, order_id) =
        edge.program.read(|program| order_change(edge, program, &parts.headers, &params, &signed, now))?;
    let refund_id = params.get("refund_id");
    if refund_id.is_some_and(|id| id.is_empty() || id.len() > 128) {
        return Err(Rejection::bad_request(Code::BadRefundId, "refund_id must be 1 to 128 characters"));
    }
    let refund = Refund {
        id: refund_event_id(&advertiser, &order_id, refund_id),
        received_at: now,
        amount: fields::amount(&params, "amount")?,
        order_id,
        advertiser,
    };
    let id = refund.id;
    let key = OrderKey::new(&refund.advertiser, &refund.order_id);
    let record = Record {
        topic: edge.config.topics.orders.clone(),
        key: key.to_string(),
        payload: wire::encode_compact(&OrderEvent::Refund(refund)),
    };
    edge.record_durable("refund", vec![record]).await?;
    Ok(accepted(id))
}

pub(crate) async fn cancel<L: EventLog>(edge: &Edge<L>, request: Request<Incoming>) -> Result<HttpResponse, Rejection> {
    let (parts, params, signed) = read_params(edge, request).await?;
    let now = Timestamp::now();
    let (advertiser, order_id) =
        edge.program.read(|program| order_change(edge, program, &parts.headers, &params, &signed, now))?;
    let cancel = SubscriptionCancel { id: EventId::new(), received_at: now, advertiser, order_id };
    let id = cancel.id;
    let key = OrderKey::new(&cancel.advertiser, &cancel.order_id);
    let record = Record {
        topic: edge.config.topics.orders.clone(),
        key: key.to_string(),
        payload: wire::encode_compact(&OrderEvent::Cancel(cancel)),
    };
    edge.record_durable("cancel", vec![record]).await?;
    Ok(accepted(id))
}
