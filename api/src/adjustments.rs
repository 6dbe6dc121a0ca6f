//! A program manager's corrections (docs/RULES.md, "Adjustments"): reversing orders that
//! should not pay, and bonus or clawback lines. Reversals go to `orders` (the order's winner is
//! known there, and its conversion is marked rejected `adjusted`); manual lines go to `ledger`
//! (the member's family owns its lines and bills). Both carry the actor and the reason, which
//! the lines show.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use model::events::{LedgerEvent, ManualLine, OrderEvent, Reversal};
use model::ids::{EventId, OrderKey};
use model::money::{Currency, MAX_AMOUNT};
use model::reports::ReportQuery;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody, JsonBody};
use crate::lookup;
use crate::money::Accepted;
use crate::state::ApiState;

/// At most this many orders in one reversal.
const MAX_ORDERS: usize = 1000;
/// A reason is 1 to this many bytes.
const MAX_REASON: usize = 500;

fn reason(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request("missing_reason", "say why: reason is 1 to 500 bytes"));
    }
    if text.len() > MAX_REASON {
        return Err(ApiError::bad_request("reason_too_long", "a reason is at most 500 bytes"));
    }
    Ok(text.to_string())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reverse {
    /// Order keys (`acme:A-1001`): one or many.
    pub orders: Vec<String>,
    /// Why, shown on every line reversed (`confirmed fraud`).
    pub reason: String,
}

/// Reverse orders that should not pay: their lines earn nothing — pending or approved lines at
/// once, billed ones by a correction in the next bill — the conversion is rejected `adjusted`
/// in the reports, and the sale stays as it was (unlike a refund). Every order must have
/// commission lines, and some not yet void.
#[utoipa::path(post, path = "/v1/orders/reversals", tag = "conversions and money", request_body = Reverse,
    responses((status = 202, body = Accepted),
        (status = 400, body = ErrorBody, description = "`bad_json`, `no_orders`, `too_many_orders`, `bad_order_key`, `missing_reason`, `reason_too_long`"),
        (status = 404, body = ErrorBody, description = "`unknown_order`"),
        (status = 409, body = ErrorBody, description = "`nothing_to_reverse`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn reverse(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<Reverse>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if body.orders.is_empty() {
        return Err(ApiError::bad_request("no_orders", "name at least one order"));
    }
    if body.orders.len() > MAX_ORDERS {
        return Err(ApiError::bad_request("too_many_orders", "at most 1000 orders at a time"));
    }
    let why = reason(&body.reason)?;
    let now = state.now();
    let mut events = Vec::new();
    for order in &body.orders {
        let order_key: OrderKey = lookup::order_key(order)?;
        let query = ReportQuery { order_key: Some(order_key.to_string()), ..ReportQuery::default() };
        let lines = state.backend.lines(query).await?;
        if lines.is_empty() {
            return Err(ApiError::not_found("unknown_order", format!("order {order} has no commission lines")));
        }
        if lines.iter().all(|line| line.status.is_void()) {
            return Err(ApiError::conflict(
                "nothing_to_reverse",
                format!("every line of order {order} is void already"),
            ));
        }
        let reversal = Reversal {
            id: EventId::new(),
            received_at: now,
            order_key: order_key.clone(),
            actor: caller.actor(),
            reason: why.clone(),
        };
        events.push((order_key.to_string(), OrderEvent::Reversal(reversal)));
    }
    let ids = events
        .iter()
        .filter_map(|(_, event)| match event {
            OrderEvent::Reversal(reversal) => Some(reversal.id.to_string()),
            _ => None,
        })
        .collect();
    state.send_orders(events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: ids })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjust {
    pub member: String,
    /// Positive: a bonus; negative: a clawback. Not 0; at most 9,999,999,999.9999 either way.
    #[schema(value_type = String, example = "25.00")]
    pub amount: Decimal,
    /// The currency of the line; by default the offer's when `offer` is given, else the
    /// program's.
    #[schema(value_type = Option<String>, example = "USD")]
    pub currency: Option<Currency>,
    /// The offer the line is for, if any (reports by offer count it).
    pub offer: Option<String>,
    /// Why, shown on the line.
    pub reason: String,
}

/// Add a bonus (positive amount) or a clawback (negative) line for a member: approved at once,
/// billed with the member's next bill, its description saying who added it, when and why.
#[utoipa::path(post, path = "/v1/adjustments", tag = "conversions and money", request_body = Adjust,
    responses((status = 202, body = Accepted),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_member`, `bad_offer`, `bad_amount`, `missing_reason`, `reason_too_long`"),
        (status = 404, body = ErrorBody, description = "`unknown_member`, `unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn adjust(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<Adjust>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let member = lookup::member_id(&body.member)?;
    let offer = body.offer.as_deref().map(lookup::offer_id).transpose()?;
    if body.amount.is_zero() || body.amount.abs() > MAX_AMOUNT || body.amount.scale() > 4 {
        return Err(ApiError::bad_request(
            "bad_amount",
            "amount is not 0, at most 9999999999.9999 either way, with at most 4 decimals",
        ));
    }
    let why = reason(&body.reason)?;
    let (family, currency) = state.program.read(|program| {
        lookup::member(program, &member)?;
        let offer_currency =
            offer.as_ref().map(|offer| lookup::offer(program, offer).map(|offer| offer.currency)).transpose()?;
        let currency = body.currency.or(offer_currency).unwrap_or(program.settings().currency);
        Ok::<_, ApiError>((program.family_of(&member).to_string(), currency))
    })?;
    let manual = ManualLine {
        id: EventId::new(),
        member,
        offer,
        amount: body.amount,
        currency,
        reason: why,
        actor: caller.actor(),
        at: state.now(),
    };
    let id = manual.id.to_string();
    state.send_ledger(vec![(family, LedgerEvent::Manual(manual))]).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: vec![id] })))
}
