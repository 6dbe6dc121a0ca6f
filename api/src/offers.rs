//! Offers and their payout options. An edit applies to every member of the offer (members
//! with their own payout values keep them) and is one record in the offer update history.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::ids::PayoutOptionId;
use model::program::{Offer, PayoutOption, ProgramChange};
use model::time::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::keys::ListParams;
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

/// Apply an RFC 7396 JSON merge patch: objects merge key by key, `null` removes a key (the
/// field goes back to its default), anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target_fields) = target {
        for (name, value) in patch_fields {
            if value.is_null() {
                target_fields.remove(name);
            } else {
                merge_patch(target_fields.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// `entity` with `patch` merged in, read back as its type; a field that does not fit is
/// `400 bad_json`.
pub fn patched<T: serde::Serialize + serde::de::DeserializeOwned>(entity: &T, patch: &Value) -> Result<T, ApiError> {
    let mut value = serde_json::to_value(entity).map_err(|error| ApiError::Internal(error.to_string()))?;
    merge_patch(&mut value, patch);
    serde_json::from_value(value).map_err(|error| ApiError::bad_request("bad_json", error.to_string()))
}

/// Refuse a patch that would change an entity's identity.
pub fn keep_identity(patch: &Value, fields: &[&str]) -> Result<(), ApiError> {
    for field in fields {
        if patch.get(field).is_some() {
            return Err(ApiError::bad_request("immutable_field", format!("{field} cannot be changed")));
        }
    }
    Ok(())
}

/// List offers.
#[utoipa::path(get, path = "/v1/offers", tag = "offers", params(ListParams),
    responses((status = 200, body = Page<Offer>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_offers(
    State(state): State<ApiState>,
    Admin(_): Admin,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Page<Offer>>, ApiError> {
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    Ok(Json(state.program.read(|program| window.cut(program.offers().cloned()))))
}

/// Create an offer (the same shape as `[[offer]]` in the program file).
#[utoipa::path(post, path = "/v1/offers", tag = "offers", request_body = Offer,
    responses((status = 201, body = Offer),
        (status = 400, body = ErrorBody, description = "`bad_json`"),
        (status = 409, body = ErrorBody, description = "`offer_exists`"),
        (status = 422, body = ErrorBody, description = "`unknown_advertiser`, `unknown_payout_option`, `duplicate_payout_option`, `invalid_tiers`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_offer(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(offer): JsonBody<Offer>,
) -> Result<(StatusCode, Json<Offer>), ApiError> {
    let id = offer.id.clone();
    state
        .commit(&caller.actor(), |program| {
            if program.offer(&id).is_some() {
                return Err(ApiError::conflict("offer_exists", format!("offer {id} exists; edit it with PATCH")));
            }
            Ok((vec![ProgramChange::Offer(offer)], ()))
        })
        .await?;
    current_offer(&state, &id).map(|offer| (StatusCode::CREATED, offer))
}

fn current_offer(state: &ApiState, id: &model::ids::OfferId) -> Result<Json<Offer>, ApiError> {
    state.program.read(|program| lookup::offer(program, id).cloned()).map(Json)
}

/// One offer.
#[utoipa::path(get, path = "/v1/offers/{offer}", tag = "offers",
    params(("offer" = String, Path)),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_offer(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Path(offer): Path<String>,
) -> Result<Json<Offer>, ApiError> {
    current_offer(&state, &lookup::offer_id(&offer)?)
}

/// Edit an offer with a JSON merge patch (RFC 7396): name, url, expiry, cookie window,
/// first / last click, code precedence, deep-link hosts, payout options, default payout...
/// `null` resets a field to its default. Applies to all members of the offer.
#[utoipa::path(patch, path = "/v1/offers/{offer}", tag = "offers", request_body(content = Object, description = "Fields of the offer to change"),
    params(("offer" = String, Path)),
    responses((status = 200, body = Offer),
        (status = 400, body = ErrorBody, description = "`bad_json`, `immutable_field` (id)"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 422, body = ErrorBody, description = "`payout_option_in_use`, `unknown_payout_option`, `unknown_advertiser`, `invalid_tiers`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_offer(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Offer>, ApiError> {
    let id = lookup::offer_id(&offer)?;
    keep_identity(&patch, &["id"])?;
    state
        .commit(&caller.actor(), |program| {
            let edited = patched(lookup::offer(program, &id)?, &patch)?;
            Ok((vec![ProgramChange::Offer(edited)], ()))
        })
        .await?;
    current_offer(&state, &id)
}

async fn set_offer(
    state: &ApiState,
    actor: &str,
    offer: &str,
    change: impl FnOnce(&mut Offer),
) -> Result<Json<Offer>, ApiError> {
    let id = lookup::offer_id(offer)?;
    state
        .commit(actor, |program| {
            let mut edited = lookup::offer(program, &id)?.clone();
            change(&mut edited);
            Ok((vec![ProgramChange::Offer(edited)], ()))
        })
        .await?;
    current_offer(state, &id)
}

/// Pause an offer: clicks still redirect but earn nothing (`offer_paused`), conversions are
/// rejected.
#[utoipa::path(post, path = "/v1/offers/{offer}/pause", tag = "offers", params(("offer" = String, Path)),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn pause_offer(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
) -> Result<Json<Offer>, ApiError> {
    set_offer(&state, &caller.actor(), &offer, |offer| offer.paused = true).await
}

/// Resume a paused offer.
#[utoipa::path(post, path = "/v1/offers/{offer}/resume", tag = "offers", params(("offer" = String, Path)),
    responses((status = 200, body = Offer), (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resume_offer(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
) -> Result<Json<Offer>, ApiError> {
    set_offer(&state, &caller.actor(), &offer, |offer| offer.paused = false).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// When the offer expires; now when absent.
    pub at: Option<Timestamp>,
}

/// Expire an offer now or at a given time (`offer_expired` from then on).
#[utoipa::path(post, path = "/v1/offers/{offer}/expire", tag = "offers", params(("offer" = String, Path)), request_body = Expiry,
    responses((status = 200, body = Offer), (status = 400, body = ErrorBody, description = "`bad_json`"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn expire_offer(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
    JsonBody(expiry): JsonBody<Expiry>,
) -> Result<Json<Offer>, ApiError> {
    let at = expiry.at.unwrap_or_else(|| state.now());
    set_offer(&state, &caller.actor(), &offer, |offer| offer.expires_at = Some(at)).await
}

/// Add a payout option to an offer.
#[utoipa::path(post, path = "/v1/offers/{offer}/payout-options", tag = "offers", params(("offer" = String, Path)),
    request_body = PayoutOption,
    responses((status = 201, body = Offer), (status = 400, body = ErrorBody, description = "`bad_json`"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 422, body = ErrorBody, description = "`duplicate_payout_option`, `invalid_tiers`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_payout_option(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
    JsonBody(option): JsonBody<PayoutOption>,
) -> Result<(StatusCode, Json<Offer>), ApiError> {
    set_offer(&state, &caller.actor(), &offer, |offer| offer.payout_options.push(option))
        .await
        .map(|offer| (StatusCode::CREATED, offer))
}

/// Replace a payout option (its id stays). Members paid by it are paid the new way from now.
#[utoipa::path(put, path = "/v1/offers/{offer}/payout-options/{option}", tag = "offers",
    params(("offer" = String, Path), ("option" = String, Path)), request_body = PayoutOption,
    responses((status = 200, body = Offer), (status = 400, body = ErrorBody, description = "`bad_json`, `immutable_field`"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`, `unknown_payout_option`"),
        (status = 422, body = ErrorBody, description = "`invalid_tiers`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replace_payout_option(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path((offer, option_id)): Path<(String, String)>,
    JsonBody(option): JsonBody<PayoutOption>,
) -> Result<Json<Offer>, ApiError> {
    if option.id.as_str() != option_id {
        return Err(ApiError::bad_request(
            "immutable_field",
            "the payout option id in the body must be the one in the path",
        ));
    }
    let id = lookup::offer_id(&offer)?;
    state
        .commit(&caller.actor(), |program| {
            let mut edited = lookup::offer(program, &id)?.clone();
            let slot = edited
                .payout_options
                .iter_mut()
                .find(|existing| existing.id == option.id)
                .ok_or_else(|| unknown_option(&id, &option.id))?;
            *slot = option;
            Ok((vec![ProgramChange::Offer(edited)], ()))
        })
        .await?;
    current_offer(&state, &id)
}

fn unknown_option(offer: &model::ids::OfferId, option: &PayoutOptionId) -> ApiError {
    ApiError::not_found("unknown_payout_option", format!("offer {offer} has no payout option {option}"))
}

/// Remove a payout option. Refused while it is the default (`payout_option_is_default`) or a
/// member is paid by it (`payout_option_in_use`): move those members first.
#[utoipa::path(delete, path = "/v1/offers/{offer}/payout-options/{option}", tag = "offers",
    params(("offer" = String, Path), ("option" = String, Path)),
    responses((status = 200, body = Offer),
        (status = 404, body = ErrorBody, description = "`unknown_offer`, `unknown_payout_option`"),
        (status = 409, body = ErrorBody, description = "`payout_option_is_default`"),
        (status = 422, body = ErrorBody, description = "`payout_option_in_use`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn remove_payout_option(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path((offer, option_id)): Path<(String, String)>,
) -> Result<Json<Offer>, ApiError> {
    let id = lookup::offer_id(&offer)?;
    let option_id = PayoutOptionId::new(option_id.as_str())
        .map_err(|error| ApiError::bad_request("bad_payout_option", error.to_string()))?;
    state
        .commit(&caller.actor(), |program| {
            let mut edited = lookup::offer(program, &id)?.clone();
            if edited.payout_option(&option_id).is_none() {
                return Err(unknown_option(&id, &option_id));
            }
            if edited.default_payout == option_id {
                return Err(ApiError::conflict(
                    "payout_option_is_default",
                    format!("{option_id} is the default payout option of {id}; choose another default first"),
                ));
            }
            edited.payout_options.retain(|existing| existing.id != option_id);
            Ok((vec![ProgramChange::Offer(edited)], ()))
        })
        .await?;
    current_offer(&state, &id)
}
