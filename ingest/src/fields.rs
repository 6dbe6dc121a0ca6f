//! Typed fields of the tracking contract, each refused with its own reason code. A field that
//! is present but empty is an error (`amount=` is not "no amount").

use model::events::Item;
use model::ids::{AdvertiserId, LinkCode, MemberId, OfferId, OrderId, PromoCode, Sku};
use model::money::{AmountError, Currency, MAX_AMOUNT, parse_amount};
use model::time::{Span, Timestamp};
use rust_decimal::Decimal;

use crate::codes::Code;
use crate::params::Params;
use crate::rejection::Rejection;

/// At most this many cart lines in `items`.
pub const MAX_ITEMS: usize = 100;
/// At most this many units of one cart line.
pub const MAX_QUANTITY: u32 = 100_000;

fn field<T>(
    params: &Params,
    name: &str,
    code: Code,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, Rejection> {
    match params.get(name) {
        None => Ok(None),
        Some(value) => parse(value).map(Some).map_err(|why| Rejection::bad_request(code, format!("{name}: {why}"))),
    }
}

pub fn offer(params: &Params) -> Result<Option<OfferId>, Rejection> {
    field(params, "offer", Code::BadOffer, |value| OfferId::new(value).map_err(|error| error.to_string()))
}

pub fn member(params: &Params) -> Result<Option<MemberId>, Rejection> {
    field(params, "member", Code::BadMember, |value| MemberId::new(value).map_err(|error| error.to_string()))
}

pub fn advertiser(params: &Params) -> Result<Option<AdvertiserId>, Rejection> {
    field(params, "advertiser", Code::BadAdvertiser, |value| {
        AdvertiserId::new(value).map_err(|error| error.to_string())
    })
}

pub fn link_code(value: &str) -> Result<LinkCode, Rejection> {
    LinkCode::new(value).map_err(|error| Rejection::not_found(Code::UnknownLink, error.to_string()))
}

pub fn order_id(params: &Params) -> Result<Option<OrderId>, Rejection> {
    field(params, "order_id", Code::BadOrderId, |value| OrderId::new(value).map_err(|error| error.to_string()))
}

pub fn code(params: &Params) -> Result<Option<PromoCode>, Rejection> {
    field(params, "code", Code::BadCode, |value| PromoCode::new(value).map_err(|error| error.to_string()))
}

pub fn currency(params: &Params) -> Result<Option<Currency>, Rejection> {
    field(params, "currency", Code::BadCurrency, |value| Currency::new(value).map_err(|error| error.to_string()))
}

/// An amount in the documented range; the reason says which rule it broke.
pub fn amount(params: &Params, name: &str) -> Result<Option<Decimal>, Rejection> {
    match params.get(name) {
        None => Ok(None),
        Some(value) => parse_amount(value)
            .map(Some)
            .map_err(|error| Rejection::bad_request(amount_code(&error), format!("{name}: {error}"))),
    }
}

/// The code of an amount that does not parse.
fn amount_code(error: &AmountError) -> Code {
    match error {
        AmountError::Empty => Code::MissingAmount,
        AmountError::Malformed => Code::BadAmount,
        AmountError::OutOfRange => Code::AmountOutOfRange,
    }
}

/// `sale` unless given; names are 1 to 32 of `[a-z0-9_]`.
pub fn event(params: &Params) -> Result<String, Rejection> {
    let event = field(params, "event", Code::BadEvent, |value| {
        let valid = !value.is_empty()
            && value.len() <= 32
            && value.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
        if valid { Ok(value.to_string()) } else { Err("must be 1 to 32 of [a-z0-9_]".to_string()) }
    })?;
    Ok(event.unwrap_or_else(|| "sale".to_string()))
}

/// `sku:amount:quantity` joined by commas; `amount` is the unit price.
pub fn items(params: &Params) -> Result<Vec<Item>, Rejection> {
    let Some(value) = params.get("items") else {
        return Ok(Vec::new());
    };
    let bad = |why: String| Rejection::bad_request(Code::BadItems, format!("items: {why}"));
    let lines: Vec<&str> = value.split(',').collect();
    if lines.len() > MAX_ITEMS {
        return Err(bad(format!("more than {MAX_ITEMS} lines")));
    }
    let items = lines
        .into_iter()
        .map(|line| {
            let mut parts = line.split(':');
            let (Some(sku), Some(amount), Some(quantity), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!("{line:?} is not sku:amount:quantity")));
            };
            let sku = Sku::new(sku).map_err(|error| bad(error.to_string()))?;
            let amount = parse_amount(amount).map_err(|error| bad(format!("{line:?}: {error}")))?;
            let quantity: u32 = quantity
                .parse()
                .ok()
                .filter(|quantity| (1..=MAX_QUANTITY).contains(quantity))
                .ok_or_else(|| bad(format!("{line:?}: quantity must be 1 to {MAX_QUANTITY}")))?;
            Ok(Item { sku, amount, quantity })
        })
        .collect::<Result<Vec<Item>, Rejection>>()?;
    // Each line's total and their sum are amounts too: bounded like `amount`, so nothing
    // downstream ever holds a sale it cannot store.
    let mut total = Decimal::ZERO;
    for item in &items {
        let line_total = item.amount.checked_mul(Decimal::from(item.quantity));
        total = match line_total.and_then(|line_total| total.checked_add(line_total)) {
            Some(sum) if line_total.is_some_and(|line_total| line_total <= MAX_AMOUNT) && sum <= MAX_AMOUNT => sum,
            _ => {
                return Err(Rejection::bad_request(
                    Code::ItemsOutOfRange,
                    format!("items: a line total or the sum of the items is above {MAX_AMOUNT}"),
                ));
            }
        };
    }
    Ok(items)
}

/// RFC 3339, no earlier than `past` before now and no later than `future` after now.
pub fn occurred_at(params: &Params, now: Timestamp, past: Span, future: Span) -> Result<Option<Timestamp>, Rejection> {
    let Some(value) = params.get("occurred_at") else {
        return Ok(None);
    };
    let at = Timestamp::parse(value)
        .map_err(|_| Rejection::bad_request(Code::BadOccurredAt, "occurred_at must be an RFC 3339 timestamp"))?;
    if at < now.saturating_sub(past) || at > now.saturating_add(future) {
        return Err(Rejection::bad_request(
            Code::OccurredAtOutOfRange,
            format!("occurred_at must be between {past} before and {future} after now"),
        ));
    }
    Ok(Some(at))
}
