//! Webhook endpoints (made, listed, changed, switched off, their secrets rotated) and the
//! delivery log of postbacks and webhooks, with manual re-send (docs/NOTIFICATIONS.md).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::events::{DeliveryRow, DeliveryStatus, NoticeEvent, NoticeKind, wire};
use model::ids::WebhookId;
use model::program::{ProgramChange, Webhook};
use pipeline::ports::log::Record;
use pipeline::ports::store::DeliveryQuery;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, Analyst};
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::state::{ApiState, log_error};

/// A webhook endpoint as listed: its secret only as a fingerprint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<NoticeKind>,
    pub active: bool,
    pub description: String,
    /// `fp:` and 12 hex digits of the secret's SHA-256: which secret, not the secret.
    pub secret_fingerprint: String,
}

impl From<&Webhook> for WebhookView {
    fn from(webhook: &Webhook) -> Self {
        let fingerprint = match ProgramChange::Webhook(webhook.clone()).redacted() {
            ProgramChange::Webhook(redacted) => redacted.secret,
            _ => String::new(),
        };
        Self {
            id: webhook.id.to_string(),
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            active: webhook.active,
            description: webhook.description.clone(),
            secret_fingerprint: fingerprint,
        }
    }
}

/// A webhook just made, or its secret just rotated: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// Signs every delivery: `Clickledger-Signature: t={timestamp},v1={hex}` where `hex` is
    /// HMAC-SHA256 of `{timestamp}.{body}` with this secret.
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `[A-Za-z0-9._-]`, 1 to 64.
    pub id: String,
    /// `https://` (or `http://`) URL that receives `POST`s.
    pub url: String,
    /// The event types it receives.
    pub events: Vec<NoticeKind>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEdit {
    pub url: Option<String>,
    pub events: Option<Vec<NoticeKind>>,
    /// `false`: no new deliveries to it (those already made are still retried).
    pub active: Option<bool>,
    pub description: Option<String>,
}

/// A new signing secret: `whsec_` and 40 hex digits of randomness.
fn new_secret() -> String {
    format!("whsec_{:020x}{:020x}", ulid::Ulid::new().random(), ulid::Ulid::new().random())
}

fn webhook_id(text: &str) -> Result<WebhookId, ApiError> {
    WebhookId::new(text).map_err(|error| ApiError::bad_request("bad_webhook", error.to_string()))
}

fn current(state: &ApiState, id: &WebhookId) -> Result<Webhook, ApiError> {
    state
        .program
        .read(|program| program.webhook(id).cloned())
        .ok_or_else(|| ApiError::not_found("unknown_webhook", format!("no webhook {id}")))
}

/// Every webhook endpoint, switched-off ones included.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_webhooks(State(state): State<ApiState>, Admin(_): Admin) -> Json<Vec<WebhookView>> {
    Json(state.program.read(|program| program.webhooks().map(WebhookView::from).collect()))
}

/// Register an endpoint for event types; the answer holds its signing secret, shown once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, body = WebhookWithSecret),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_webhook`"),
        (status = 409, body = ErrorBody, description = "`webhook_exists`"),
        (status = 422, body = ErrorBody, description = "`bad_url`, `invalid` (no events, description too long)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_webhook(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let id = webhook_id(&body.id)?;
    let webhook = Webhook {
        id: id.clone(),
        url: body.url,
        events: body.events,
        secret: new_secret(),
        active: true,
        description: body.description,
    };
    let secret = webhook.secret.clone();
    state
        .commit(&caller.actor(), |program| {
            if program.webhook(&id).is_some() {
                return Err(ApiError::conflict("webhook_exists", format!("webhook {id} exists")));
            }
            Ok((vec![ProgramChange::Webhook(webhook)], ()))
        })
        .await?;
    let webhook = WebhookView::from(&current(&state, &id)?);
    Ok((StatusCode::CREATED, Json(WebhookWithSecret { webhook, secret })))
}

#[utoipa::path(get, path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody, description = "`unknown_webhook`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_webhook(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Path(webhook): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView::from(&current(&state, &webhook_id(&webhook)?)?)))
}

/// Change an endpoint's URL, events, description, or switch it off and on.
#[utoipa::path(patch, path = "/v1/webhooks/{webhook}", tag = "webhooks", params(("webhook" = String, Path)),
    request_body = WebhookEdit,
    responses((status = 200, body = WebhookView),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_webhook`"),
        (status = 404, body = ErrorBody, description = "`unknown_webhook`"),
        (status = 422, body = ErrorBody, description = "`bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_webhook(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(webhook): Path<String>,
    JsonBody(edit): JsonBody<WebhookEdit>,
) -> Result<Json<WebhookView>, ApiError> {
    let id = webhook_id(&webhook)?;
    change(&state, &caller.actor(), &id, |webhook| {
        if let Some(url) = edit.url {
            webhook.url = url;
        }
        if let Some(events) = edit.events {
            webhook.events = events;
        }
        if let Some(active) = edit.active {
            webhook.active = active;
        }
        if let Some(description) = edit.description {
            webhook.description = description;
        }
    })
    .await?;
    Ok(Json(WebhookView::from(&current(&state, &id)?)))
}

/// A new signing secret; the old one signs nothing from now on.
#[utoipa::path(post, path = "/v1/webhooks/{webhook}/rotate-secret", tag = "webhooks", params(("webhook" = String, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody, description = "`unknown_webhook`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rotate_webhook_secret(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(webhook): Path<String>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let id = webhook_id(&webhook)?;
    let secret = new_secret();
    change(&state, &caller.actor(), &id, |webhook| webhook.secret = secret.clone()).await?;
    Ok(Json(WebhookWithSecret { webhook: WebhookView::from(&current(&state, &id)?), secret }))
}

async fn change(
    state: &ApiState,
    actor: &str,
    id: &WebhookId,
    edit: impl FnOnce(&mut Webhook),
) -> Result<(), ApiError> {
    state
        .commit(actor, |program| {
            let mut webhook = program
                .webhook(id)
                .cloned()
                .ok_or_else(|| ApiError::not_found("unknown_webhook", format!("no webhook {id}")))?;
            edit(&mut webhook);
            Ok((vec![ProgramChange::Webhook(webhook)], ()))
        })
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `delivered`, `failed` or `dead`.
    pub status: Option<String>,
    /// `webhook:{id}`, `postback:offer:{offer}#0`, ...
    pub destination: Option<String>,
    /// An event type (`commission.approved`).
    pub event: Option<String>,
    /// An event (notice) id.
    pub notice: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The delivery log: each event to each destination, with its attempts, last status and
/// latency, newest first.
#[utoipa::path(get, path = "/v1/deliveries", tag = "webhooks", params(DeliveryParams),
    responses((status = 200, body = Vec<DeliveryRow>),
        (status = 400, body = ErrorBody, description = "`bad_query`, `bad_status`, `bad_event`, `bad_limit`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_deliveries(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<DeliveryParams>,
) -> Result<Json<Vec<DeliveryRow>>, ApiError> {
    let status = params
        .status
        .as_deref()
        .map(|text| {
            DeliveryStatus::parse(text)
                .ok_or_else(|| ApiError::bad_request("bad_status", "status must be pending, delivered, failed or dead"))
        })
        .transpose()?;
    let kind = params
        .event
        .as_deref()
        .map(|text| {
            NoticeKind::parse(text).ok_or_else(|| ApiError::bad_request("bad_event", format!("no event type {text}")))
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::bad_request("bad_limit", "limit must be 1 to 1000"));
    }
    let query = DeliveryQuery { id: None, status, destination: params.destination, notice: params.notice, kind, limit };
    Ok(Json(state.backend.deliveries(query).await?))
}

async fn delivery(state: &ApiState, id: &str) -> Result<DeliveryRow, ApiError> {
    let query = DeliveryQuery { id: Some(id.to_string()), limit: 1, ..DeliveryQuery::default() };
    state
        .backend
        .deliveries(query)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("unknown_delivery", format!("no delivery {id}")))
}

#[utoipa::path(get, path = "/v1/deliveries/{delivery}", tag = "webhooks", params(("delivery" = String, Path)),
    responses((status = 200, body = DeliveryRow), (status = 404, body = ErrorBody, description = "`unknown_delivery`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_delivery(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    Path(id): Path<String>,
) -> Result<Json<DeliveryRow>, ApiError> {
    Ok(Json(delivery(&state, &id).await?))
}

/// Send a delivery again, with the same delivery id: a dead, failed or delivered one starts
/// over with a new retry period; the answer is the row as it was asked for (the notifier
/// records the new attempts).
#[utoipa::path(post, path = "/v1/deliveries/{delivery}/resend", tag = "webhooks", params(("delivery" = String, Path)),
    responses((status = 202, body = DeliveryRow), (status = 404, body = ErrorBody, description = "`unknown_delivery`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resend_delivery(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryRow>), ApiError> {
    let row = delivery(&state, &id).await?;
    let event = NoticeEvent::Resend { delivery: Box::new(row.clone()), actor: caller.actor(), at: state.now() };
    let record =
        Record { topic: state.topics.notices.clone(), key: row.notice.clone(), payload: wire::encode_compact(&event) };
    state.backend.append(vec![record]).await.map_err(log_error)?;
    Ok((StatusCode::ACCEPTED, Json(row)))
}
