//! Conversions and money: pending conversions and their approval, refunds, subscription
//! accounts, and bills. These are not program changes: decisions, refunds and cancels go to
//! `orders` (keyed by order, where the order's winner is known), terms, bill runs and payments
//! to `ledger` (keyed by the member's family, whose worker owns the lines and bills). The
//! answer is `202 Accepted` once the log has the event; the store shows the effect shortly
//! after.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::events::{
    Bill, BillStatus, CommissionLine, Decision, LedgerEvent, LineKind, LineStatus, OrderEvent, Refund,
    SubscriptionAccount, SubscriptionCancel, Verdict,
};
use model::ids::{AdvertiserId, DerivedId, EventId, OrderId, OrderKey};
use model::reports::ReportQuery;
use model::time::{Interval, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Reader};
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

/// Parameters of the pending conversions.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PendingParams {
    pub offer: Option<String>,
    pub member: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the subscription accounts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubscriptionParams {
    pub offer: Option<String>,
    pub member: Option<String>,
    /// `active`, `cancelled` or `closed`.
    pub status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the bills.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BillParams {
    pub member: Option<String>,
    /// `unpaid`, `paid` or `carried_over`.
    pub status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// A conversion waiting for approve / reject.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingConversion {
    /// `{advertiser}:{order_id}`: what approve / reject name.
    pub order_key: String,
    pub offer: Option<String>,
    pub member: String,
    /// The member's (1st-tier) commission while pending.
    pub commission: Decimal,
    pub currency: String,
    pub keyword: String,
    pub earned_at: Timestamp,
}

fn is_pending_conversion(line: &CommissionLine) -> bool {
    line.status == LineStatus::Pending
        && line.tier == 1
        && line.kind == LineKind::Conversion
        && line.order_key.is_some()
}

async fn pending_lines(state: &ApiState, query: ReportQuery) -> Result<Vec<CommissionLine>, ApiError> {
    let query = ReportQuery { status: Some(LineStatus::Pending.as_str().to_string()), limit: 0, offset: 0, ..query };
    Ok(state.backend.lines(query).await?.into_iter().filter(is_pending_conversion).collect())
}

/// List conversions waiting for approval (pending payout options), oldest first.
#[utoipa::path(get, path = "/v1/conversions/pending", tag = "conversions and money", params(PendingParams),
    responses((status = 200, body = Page<PendingConversion>), (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_pending(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<PendingParams>,
) -> Result<Json<Page<PendingConversion>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let query = ReportQuery {
        offer: params.offer.as_deref().map(lookup::offer_id).transpose()?,
        member: params.member.as_deref().map(lookup::member_id).transpose()?,
        ..ReportQuery::default()
    };
    let pending = pending_lines(&state, query).await?.into_iter().map(|line| PendingConversion {
        order_key: line.order_key.map(|key| key.to_string()).unwrap_or_default(),
        offer: line.offer.map(|offer| offer.to_string()),
        member: line.member.to_string(),
        commission: line.amount,
        currency: line.currency.to_string(),
        keyword: line.keyword,
        earned_at: line.earned_at,
    });
    Ok(Json(window.cut(pending)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// Order keys from the pending list (`acme:A-1001`): one or many.
    pub orders: Vec<String>,
    /// `approve` or `reject`.
    pub verdict: Verdict,
    pub note: Option<String>,
}

/// An event the log accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The event ids, in the order of the request.
    pub events: Vec<String>,
}

/// Approve or reject pending conversions. Every order must be pending (`not_pending`
/// otherwise, and nothing is sent).
#[utoipa::path(post, path = "/v1/conversions/decisions", tag = "conversions and money", request_body = Decide,
    responses((status = 202, body = Accepted),
        (status = 400, body = ErrorBody, description = "`bad_json`, `no_orders`, `too_many_orders`, `note_too_long`"),
        (status = 409, body = ErrorBody, description = "`not_pending`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn decide(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<Decide>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if body.orders.is_empty() {
        return Err(ApiError::bad_request("no_orders", "name at least one order"));
    }
    if body.orders.len() > 1000 {
        return Err(ApiError::bad_request("too_many_orders", "at most 1000 orders at a time"));
    }
    if body.note.as_ref().is_some_and(|note| note.len() > 500) {
        return Err(ApiError::bad_request("note_too_long", "a note is at most 500 bytes"));
    }
    let pending: std::collections::BTreeSet<OrderKey> =
        pending_lines(&state, ReportQuery::default()).await?.into_iter().filter_map(|line| line.order_key).collect();
    let now = state.now();
    let mut events = Vec::new();
    for order in &body.orders {
        let order_key = OrderKey::from_string(order.clone());
        if !pending.contains(&order_key) {
            return Err(ApiError::conflict("not_pending", format!("order {order} has no pending conversion")));
        }
        let decision = Decision {
            id: EventId::new(),
            received_at: now,
            order_key: order_key.clone(),
            verdict: body.verdict,
            actor: caller.actor(),
            note: body.note.clone(),
        };
        events.push((order_key.to_string(), OrderEvent::Decision(decision)));
    }
    let ids = event_ids(&events);
    state.send_orders(events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: ids })))
}

fn event_ids(events: &[(String, OrderEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, event)| match event {
            OrderEvent::Decision(decision) => Some(decision.id),
            OrderEvent::Refund(refund) => Some(refund.id),
            OrderEvent::Cancel(cancel) => Some(cancel.id),
            OrderEvent::Reversal(reversal) => Some(reversal.id),
            OrderEvent::Attributed(_) | OrderEvent::Rejected(_) | OrderEvent::CapVerdict(_) => None,
        })
        .map(|id| id.to_string())
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub advertiser: String,
    pub order_id: String,
    /// The refunded amount; absent: a full refund.
    #[schema(example = "29.90")]
    pub amount: Option<Decimal>,
}

/// Refund an order in full or in part. Before billing its commissions shrink in proportion
/// (a full refund reverses them); after billing a negative adjustment goes into the next
/// bill. Tier lines follow.
#[utoipa::path(post, path = "/v1/orders/refunds", tag = "conversions and money", request_body = RefundRequest,
    responses((status = 202, body = Accepted),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_advertiser`, `bad_order_id`, `bad_amount`"),
        (status = 404, body = ErrorBody, description = "`unknown_advertiser`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn refund(
    State(state): State<ApiState>,
    Admin(_): Admin,
    JsonBody(body): JsonBody<RefundRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let advertiser = known_advertiser(&state, &body.advertiser)?;
    let order_id = OrderId::new(body.order_id.as_str())
        .map_err(|error| ApiError::bad_request("bad_order_id", error.to_string()))?;
    if body.amount.is_some_and(|amount| amount <= Decimal::ZERO) {
        return Err(ApiError::bad_request("bad_amount", "a refund amount is above 0"));
    }
    let order_key = OrderKey::new(&advertiser, &order_id);
    let refund = Refund { id: EventId::new(), received_at: state.now(), advertiser, order_id, amount: body.amount };
    let events = vec![(order_key.to_string(), OrderEvent::Refund(refund))];
    let ids = event_ids(&events);
    state.send_orders(events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: ids })))
}

fn known_advertiser(state: &ApiState, text: &str) -> Result<AdvertiserId, ApiError> {
    let id = lookup::advertiser_id(text)?;
    state.program.read(|program| lookup::advertiser(program, &id).map(|_| ()))?;
    Ok(id)
}

/// List subscription accounts.
#[utoipa::path(get, path = "/v1/subscriptions", tag = "conversions and money", params(SubscriptionParams),
    responses((status = 200, body = Page<SubscriptionAccount>),
        (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_subscriptions(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<SubscriptionParams>,
) -> Result<Json<Page<SubscriptionAccount>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let offer = params.offer.as_deref().map(lookup::offer_id).transpose()?;
    let member = params.member.as_deref().map(lookup::member_id).transpose()?;
    let accounts = state.backend.subscriptions(member).await?.into_iter().filter(|account| {
        offer.as_ref().is_none_or(|offer| &account.offer == offer)
            && params.status.as_deref().is_none_or(|status| account.status.as_str() == status)
    });
    Ok(Json(window.cut(accounts)))
}

async fn subscription(state: &ApiState, order_key: &str) -> Result<SubscriptionAccount, ApiError> {
    state
        .backend
        .subscriptions(None)
        .await?
        .into_iter()
        .find(|account| account.order_key.as_str() == order_key)
        .ok_or_else(|| ApiError::not_found("unknown_subscription", format!("no subscription account {order_key}")))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// The new rate of the recurring amount, 0 to 1.
    #[schema(example = "0.15")]
    pub rate: Decimal,
    pub every: Interval,
}

/// Change the rate and interval of one subscription account's future credits.
#[utoipa::path(patch, path = "/v1/subscriptions/{order_key}", tag = "conversions and money",
    params(("order_key" = String, Path, description = "`{advertiser}:{order_id}`")), request_body = Terms,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_rate`, `bad_interval`"),
        (status = 404, body = ErrorBody, description = "`unknown_subscription`"),
        (status = 409, body = ErrorBody, description = "`subscription_ended`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_subscription(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(order_key): Path<String>,
    JsonBody(terms): JsonBody<Terms>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if terms.rate < Decimal::ZERO || terms.rate > Decimal::ONE {
        return Err(ApiError::bad_request("bad_rate", "rate is a fraction from 0 to 1"));
    }
    if terms.every.is_empty() {
        return Err(ApiError::bad_request("bad_interval", "the interval is at least 1 month or 1 day"));
    }
    let account = subscription(&state, &order_key).await?;
    if account.status != model::events::SubscriptionStatus::Active {
        return Err(ApiError::conflict(
            "subscription_ended",
            format!("subscription {order_key} is {}", account.status.as_str()),
        ));
    }
    let family = state.program.read(|program| program.family_of(&account.member).to_string());
    let id = EventId::new();
    let event = LedgerEvent::SubscriptionTerms {
        id,
        order_key: account.order_key,
        rate: terms.rate,
        every: terms.every,
        at: state.now(),
        actor: caller.actor(),
    };
    state.send_ledger(vec![(family, event)]).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: vec![id.to_string()] })))
}

/// Cancel a subscription: no credits fall due after now.
#[utoipa::path(post, path = "/v1/subscriptions/{order_key}/cancel", tag = "conversions and money",
    params(("order_key" = String, Path, description = "`{advertiser}:{order_id}`")),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody, description = "`unknown_subscription`"),
        (status = 409, body = ErrorBody, description = "`subscription_ended`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_subscription(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Path(order_key): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let account = subscription(&state, &order_key).await?;
    if account.status != model::events::SubscriptionStatus::Active {
        return Err(ApiError::conflict(
            "subscription_ended",
            format!("subscription {order_key} is {}", account.status.as_str()),
        ));
    }
    let (advertiser, order_id) = order_key
        .split_once(':')
        .and_then(|(advertiser, order_id)| Some((AdvertiserId::new(advertiser).ok()?, OrderId::new(order_id).ok()?)))
        .ok_or_else(|| ApiError::Internal(format!("subscription {order_key} has no advertiser:order_id key")))?;
    let cancel = SubscriptionCancel { id: EventId::new(), received_at: state.now(), advertiser, order_id };
    let events = vec![(order_key, OrderEvent::Cancel(cancel))];
    let ids = event_ids(&events);
    state.send_orders(events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: ids })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillRun {
    /// Bill approved lines earned before this time (exclusive).
    pub period_end: Timestamp,
}

/// Generate bills for the period ending at `period_end`: per member and currency, approved
/// unbilled lines and adjustments become one bill; a total under the member's minimum payout
/// carries over. Running the same period again bills nothing twice.
#[utoipa::path(post, path = "/v1/bills/runs", tag = "conversions and money", request_body = BillRun,
    responses((status = 202, body = Accepted), (status = 400, body = ErrorBody, description = "`bad_json`, `period_in_future`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn run_bills(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(run): JsonBody<BillRun>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let now = state.now();
    if run.period_end > now {
        return Err(ApiError::bad_request("period_in_future", "period_end must be at or before now"));
    }
    let families: Vec<String> = state.program.read(|program| {
        program.members().filter(|member| member.parent.is_none()).map(|member| member.id.to_string()).collect()
    });
    let id = EventId::new();
    let events = families
        .into_iter()
        .map(|family| {
            let event = LedgerEvent::BillRun { id, period_end: run.period_end, at: now, actor: caller.actor() };
            (family, event)
        })
        .collect();
    state.send_ledger(events).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: vec![id.to_string()] })))
}

/// List bills, newest period last.
#[utoipa::path(get, path = "/v1/bills", tag = "conversions and money", params(BillParams),
    responses((status = 200, body = Page<Bill>), (status = 400, body = ErrorBody, description = "`bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_bills(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<BillParams>,
) -> Result<Json<Page<Bill>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let member = params.member.as_deref().map(lookup::member_id).transpose()?;
    let bills = state
        .backend
        .bills(member)
        .await?
        .into_iter()
        .filter(|bill| params.status.as_deref().is_none_or(|status| bill.status.as_str() == status));
    Ok(Json(window.cut(bills)))
}

/// Mark an unpaid bill paid; its lines become `paid`.
#[utoipa::path(post, path = "/v1/bills/{bill}/paid", tag = "conversions and money", params(("bill" = String, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody, description = "`unknown_bill`"),
        (status = 409, body = ErrorBody, description = "`bill_not_unpaid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn mark_paid(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(bill): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let found = state
        .backend
        .bills(None)
        .await?
        .into_iter()
        .find(|known| known.id.as_str() == bill)
        .ok_or_else(|| ApiError::not_found("unknown_bill", format!("no bill {bill}")))?;
    if found.status != BillStatus::Unpaid {
        return Err(ApiError::conflict("bill_not_unpaid", format!("bill {bill} is {}", found.status.as_str())));
    }
    let family = state.program.read(|program| program.family_of(&found.member).to_string());
    let id = EventId::new();
    let event: LedgerEvent =
        LedgerEvent::BillPaid { id, bill: DerivedId::clone(&found.id), at: state.now(), actor: caller.actor() };
    state.send_ledger(vec![(family, event)]).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { events: vec![id.to_string()] })))
}
