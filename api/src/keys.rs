//! API keys and advertisers' postback secrets: made, listed, revoked and rotated.
//!
//! An `advertiser` key is both an `api_key` change and one of the advertiser's postback
//! secrets, so the tracking edge accepts it — for that advertiser's offers only — and
//! revoking the key removes the secret.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::ids::AdvertiserId;
use model::program::{Advertiser, ApiKeyGrant, KeyScope, PostbackSecret, ProgramChange};
use model::time::{Span, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Admin, hash_key, new_key};
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

/// An API key as listed: never the key or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub name: String,
    /// `admin`, `analyst` or `advertiser`.
    #[schema(value_type = KeyScope)]
    pub scope: String,
    pub advertiser: Option<String>,
    /// The member of a `member` key.
    pub member: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl From<&ApiKeyGrant> for KeyView {
    fn from(key: &ApiKeyGrant) -> Self {
        Self {
            name: key.name.clone(),
            scope: key.scope.as_str().to_string(),
            advertiser: key.advertiser.as_ref().map(ToString::to_string),
            member: key.member.as_ref().map(ToString::to_string),
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// `[A-Za-z0-9._-]`, 1 to 64; recorded as the actor (`key:<name>`) of its changes.
    pub name: String,
    /// `admin`, `analyst` or `advertiser`.
    pub scope: KeyScope,
    /// Required for (and only for) `advertiser` keys.
    pub advertiser: Option<String>,
    /// Required for (and only for) `member` keys: the member whose data the key reads.
    pub member: Option<String>,
}

/// A key just made: the only time the key itself is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadeKey {
    #[serde(flatten)]
    pub view: KeyView,
    pub key: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// List API keys (revoked ones too).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(ListParams),
    responses((status = 200, body = Page<KeyView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_keys(
    State(state): State<ApiState>,
    Admin(_): Admin,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Page<KeyView>>, ApiError> {
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let keys: Vec<KeyView> = state.program.read(|program| program.api_keys().map(KeyView::from).collect());
    Ok(Json(window.cut(keys)))
}

/// Make an API key. The key is in the answer and nowhere else: only its hash is kept.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses((status = 201, body = MadeKey), (status = 400, body = ErrorBody, description = "`bad_json`"),
        (status = 404, body = ErrorBody, description = "`unknown_advertiser`"),
        (status = 409, body = ErrorBody, description = "`key_exists`"),
        (status = 422, body = ErrorBody, description = "`invalid` (name, scope without its advertiser or member), `unknown_member`, `key_revoked`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_key(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<MadeKey>), ApiError> {
    let advertiser = body.advertiser.as_deref().map(lookup::advertiser_id).transpose()?;
    let member = body.member.as_deref().map(lookup::member_id).transpose()?;
    let key = new_key();
    let grant = ApiKeyGrant {
        name: body.name.clone(),
        scope: body.scope,
        advertiser: advertiser.clone(),
        member,
        hash: hash_key(&key),
        created_at: state.now(),
        revoked_at: None,
    };
    let change_grant = grant.clone();
    let secret = key.clone();
    state
        .commit(&caller.actor(), move |program| {
            if program.api_key(&change_grant.name).is_some_and(ApiKeyGrant::is_active) {
                return Err(ApiError::conflict("key_exists", format!("a key named {} exists", change_grant.name)));
            }
            let mut changes = Vec::new();
            if let Some(advertiser_id) = &advertiser {
                let mut advertiser = lookup::advertiser(program, advertiser_id)?.clone();
                advertiser.secrets.push(PostbackSecret { secret, valid_until: None });
                changes.push(ProgramChange::Advertiser(advertiser));
            }
            changes.push(ProgramChange::ApiKey(change_grant));
            Ok((changes, ()))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(MadeKey { view: KeyView::from(&grant), key })))
}

/// Revoke an API key: it stops working at once; an advertiser key stops being a postback
/// secret.
#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "The key's name")),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody, description = "`unknown_key`"),
        (status = 409, body = ErrorBody, description = "`key_revoked`, `last_secret` (an advertiser key that is its only postback secret: rotate first)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke_key(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(name): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let now = state.now();
    let name_for_change = name.clone();
    state
        .commit(&caller.actor(), move |program| {
            let key = program
                .api_key(&name_for_change)
                .ok_or_else(|| ApiError::not_found("unknown_key", format!("no key named {name_for_change}")))?;
            if !key.is_active() {
                return Err(ApiError::conflict("key_revoked", format!("key {name_for_change} is already revoked")));
            }
            let mut changes = Vec::new();
            if let Some(advertiser_id) = &key.advertiser
                && let Some(advertiser) = program.advertiser(advertiser_id)
            {
                let mut advertiser = advertiser.clone();
                advertiser.secrets.retain(|secret| hash_key(&secret.secret) != key.hash);
                if advertiser.secrets.is_empty() {
                    return Err(ApiError::conflict(
                        "last_secret",
                        format!(
                            "key {name_for_change} is advertiser {advertiser_id}'s only postback secret; rotate first"
                        ),
                    ));
                }
                changes.push(ProgramChange::Advertiser(advertiser));
            }
            changes.push(ProgramChange::ApiKey(ApiKeyGrant { revoked_at: Some(now), ..key.clone() }));
            Ok((changes, ()))
        })
        .await?;
    let view = state.program.read(|program| program.api_key(&name).map(KeyView::from));
    view.map(Json).ok_or_else(|| ApiError::Internal("the revoked key is gone".into()))
}

/// An advertiser as listed: secrets are never shown, only how many are valid.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvertiserView {
    pub id: String,
    pub name: String,
    /// Postback secrets valid now (the current one and any in their grace period).
    pub valid_secrets: usize,
}

impl AdvertiserView {
    fn of(advertiser: &Advertiser, now: Timestamp) -> Self {
        Self {
            id: advertiser.id.to_string(),
            name: advertiser.name.clone(),
            valid_secrets: advertiser.secrets_at(now).count(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdvertiser {
    pub id: String,
    pub name: String,
}

/// An advertiser with a secret just made: the only time the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdvertiserSecret {
    #[serde(flatten)]
    pub advertiser: AdvertiserView,
    /// The postback secret: `token=` or the `X-Signature` HMAC key.
    pub secret: String,
    /// Until when the previous secret is still accepted (rotation only).
    pub previous_valid_until: Option<Timestamp>,
}

/// List advertisers.
#[utoipa::path(get, path = "/v1/advertisers", tag = "offers", params(ListParams),
    responses((status = 200, body = Page<AdvertiserView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_advertisers(
    State(state): State<ApiState>,
    Admin(_): Admin,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Page<AdvertiserView>>, ApiError> {
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let now = state.now();
    let advertisers: Vec<AdvertiserView> = state
        .program
        .read(|program| program.advertisers().map(|advertiser| AdvertiserView::of(advertiser, now)).collect());
    Ok(Json(window.cut(advertisers)))
}

/// Add an advertiser, with a new postback secret.
#[utoipa::path(post, path = "/v1/advertisers", tag = "offers", request_body = NewAdvertiser,
    responses((status = 201, body = AdvertiserSecret), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_advertiser`"),
        (status = 409, body = ErrorBody, description = "`advertiser_exists`"), (status = 422, body = ErrorBody, description = "`invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_advertiser(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<NewAdvertiser>,
) -> Result<(StatusCode, Json<AdvertiserSecret>), ApiError> {
    let id = lookup::advertiser_id(&body.id)?;
    let secret = new_key();
    let advertiser = Advertiser {
        id: id.clone(),
        name: body.name,
        secrets: vec![PostbackSecret { secret: secret.clone(), valid_until: None }],
    };
    state
        .commit(&caller.actor(), |program| {
            if program.advertiser(&id).is_some() {
                return Err(ApiError::conflict("advertiser_exists", format!("advertiser {id} exists")));
            }
            Ok((vec![ProgramChange::Advertiser(advertiser.clone())], ()))
        })
        .await?;
    let view = AdvertiserView::of(&advertiser, state.now());
    Ok((StatusCode::CREATED, Json(AdvertiserSecret { advertiser: view, secret, previous_valid_until: None })))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the previous secret stays valid (`24h` by default; `0s` ends it now).
    pub grace: Option<Span>,
}

/// Rotate an advertiser's postback secret: a new current secret; the previous one is
/// accepted until the grace period ends. Advertiser API keys are not touched.
#[utoipa::path(post, path = "/v1/advertisers/{id}/rotate-secret", tag = "offers", request_body = Rotation,
    params(("id" = String, Path, description = "The advertiser")),
    responses((status = 200, body = AdvertiserSecret), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_advertiser`"),
        (status = 404, body = ErrorBody, description = "`unknown_advertiser`"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Rotation>,
) -> Result<Json<AdvertiserSecret>, ApiError> {
    let id: AdvertiserId = lookup::advertiser_id(&id)?;
    let now = state.now();
    let grace_ends = now.saturating_add(body.grace.unwrap_or(Span::hours(24)));
    let secret = new_key();
    let (_, rotated) = state
        .commit(&caller.actor(), |program| {
            let mut advertiser = lookup::advertiser(program, &id)?.clone();
            let key_hashes: Vec<String> = program
                .api_keys()
                .filter(|key| key.is_active() && key.advertiser.as_ref() == Some(&id))
                .map(|key| key.hash.clone())
                .collect();
            for previous in advertiser.secrets.iter_mut() {
                let is_key = key_hashes.contains(&hash_key(&previous.secret));
                if !is_key && previous.valid_until.is_none_or(|until| until > grace_ends) {
                    previous.valid_until = Some(grace_ends);
                }
            }
            advertiser.secrets.retain(|previous| previous.valid_until.is_none_or(|until| until > now));
            advertiser.secrets.insert(0, PostbackSecret { secret: secret.clone(), valid_until: None });
            Ok((vec![ProgramChange::Advertiser(advertiser.clone())], advertiser))
        })
        .await?;
    let view = AdvertiserView::of(&rotated, now);
    Ok(Json(AdvertiserSecret { advertiser: view, secret, previous_valid_until: Some(grace_ends) }))
}
