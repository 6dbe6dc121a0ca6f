//! Members: sign-up (optionally under the member who recruited them), their status, and their
//! own settings. Approving a member who signed up under a parent pays the parent's recruiting
//! commission (the settler's program stage sees the approval on the program log).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::ids::MemberId;
use model::program::{Member, MemberStatus, ProgramChange};
use model::time::Span;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::lookup;
use crate::offers::{keep_identity, patched};
use crate::page::{Page, Window};
use crate::state::ApiState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberParams {
    /// Only members with this status.
    pub status: Option<String>,
    /// Only members recruited by this member.
    pub parent: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// List members.
#[utoipa::path(get, path = "/v1/members", tag = "members", params(MemberParams),
    responses((status = 200, body = Page<Member>), (status = 400, body = ErrorBody, description = "`bad_status`, `bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_members(
    State(state): State<ApiState>,
    Admin(_): Admin,
    QueryParams(params): QueryParams<MemberParams>,
) -> Result<Json<Page<Member>>, ApiError> {
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let status = params.status.as_deref().map(parse_status).transpose()?;
    let parent = params.parent.as_deref().map(lookup::member_id).transpose()?;
    Ok(Json(state.program.read(|program| {
        window.cut(
            program
                .members()
                .filter(|member| status.is_none_or(|status| member.status == status))
                .filter(|member| parent.is_none() || member.parent == parent)
                .cloned(),
        )
    })))
}

fn parse_status(text: &str) -> Result<MemberStatus, ApiError> {
    serde_json::from_value(Value::String(text.to_string())).map_err(|_| {
        ApiError::bad_request("bad_status", "status must be pending, approved, denied, stopped, disabled or deleted")
    })
}

/// A sign-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub id: String,
    pub name: String,
    /// The recruiting member (AffiliateShop's `affsignup?AID=`): they earn the recruiting
    /// commission when this member is approved, and tier commissions after.
    pub parent: Option<String>,
    /// Social handle (`@jane`), used to name promo codes.
    pub handle: Option<String>,
    /// `pending` (default) or `approved`.
    pub status: Option<String>,
    /// Overrides the offers' cookie windows for this member's clicks (`60d`).
    pub cookie_window: Option<Span>,
    #[schema(example = "50.00")]
    pub minimum_payout: Option<Decimal>,
    /// Partner postbacks called on the events of this member's conversions.
    #[serde(default)]
    pub postbacks: Vec<model::program::Postback>,
}

/// Sign a member up, optionally under a parent.
#[utoipa::path(post, path = "/v1/members", tag = "members", request_body = SignUp,
    responses((status = 201, body = Member),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_member`, `bad_status`"),
        (status = 404, body = ErrorBody, description = "`unknown_member` (the parent)"),
        (status = 409, body = ErrorBody, description = "`member_exists`"),
        (status = 422, body = ErrorBody, description = "`member_deleted` (the parent), `negative_value`, `invalid` (name, handle, cookie window)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn sign_up(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<SignUp>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    let member = add_member(&state, &caller.actor(), body).await?;
    Ok((StatusCode::CREATED, Json(member)))
}

/// Sign a member up: the program API's sign-up, and the public sign-up page's (`crate::join`),
/// which sends only `pending` members.
pub async fn add_member(state: &ApiState, actor: &str, body: SignUp) -> Result<Member, ApiError> {
    let id = lookup::member_id(&body.id)?;
    let parent = body.parent.as_deref().map(lookup::member_id).transpose()?;
    let status = match body.status.as_deref().map(parse_status).transpose()? {
        None | Some(MemberStatus::Pending) => MemberStatus::Pending,
        Some(MemberStatus::Approved) => MemberStatus::Approved,
        Some(_) => return Err(ApiError::bad_request("bad_status", "a new member is pending or approved")),
    };
    let member = Member {
        id: id.clone(),
        name: body.name,
        status,
        parent: parent.clone(),
        handle: body.handle,
        cookie_window: body.cookie_window,
        minimum_payout: body.minimum_payout.unwrap_or_default(),
        joined_at: state.now(),
        postbacks: body.postbacks,
    };
    state
        .commit(actor, |program| {
            if program.member(&id).is_some() {
                return Err(ApiError::conflict("member_exists", format!("member {id} exists")));
            }
            if let Some(parent) = &parent
                && lookup::member(program, parent)?.status == MemberStatus::Deleted
            {
                return Err(model::program::ProgramError::MemberDeleted(parent.clone()).into());
            }
            Ok((vec![ProgramChange::Member(member)], ()))
        })
        .await?;
    current_member(state, &id).map(|Json(member)| member)
}

fn current_member(state: &ApiState, id: &MemberId) -> Result<Json<Member>, ApiError> {
    state.program.read(|program| lookup::member(program, id).cloned()).map(Json)
}

/// One member.
#[utoipa::path(get, path = "/v1/members/{member}", tag = "members", params(("member" = String, Path)),
    responses((status = 200, body = Member), (status = 404, body = ErrorBody, description = "`unknown_member`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_member(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Path(member): Path<String>,
) -> Result<Json<Member>, ApiError> {
    current_member(&state, &lookup::member_id(&member)?)
}

/// Edit a member's name, handle, cookie-window override or minimum payout with a JSON merge
/// patch. Status has its own endpoint; the parent never changes.
#[utoipa::path(patch, path = "/v1/members/{member}", tag = "members", params(("member" = String, Path)),
    request_body(content = Object, description = "Fields to change: name, handle, cookie_window, minimum_payout, postbacks"),
    responses((status = 200, body = Member),
        (status = 400, body = ErrorBody, description = "`bad_json`, `immutable_field` (id, parent, status, joined_at)"),
        (status = 404, body = ErrorBody, description = "`unknown_member`"),
        (status = 422, body = ErrorBody, description = "`member_deleted`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_member(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(member): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Member>, ApiError> {
    let id = lookup::member_id(&member)?;
    keep_identity(&patch, &["id", "parent", "status", "joined_at"])?;
    state
        .commit(&caller.actor(), |program| {
            let edited = patched(lookup::member(program, &id)?, &patch)?;
            Ok((vec![ProgramChange::Member(edited)], ()))
        })
        .await?;
    current_member(&state, &id)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `approved`, `denied`, `stopped`, `disabled`, `deleted` or back to `pending`.
    #[schema(value_type = MemberStatus)]
    pub status: String,
}

/// Which status changes a program manager may make. `deleted` is final.
pub fn transition_allowed(from: MemberStatus, to: MemberStatus) -> bool {
    use MemberStatus::*;
    match from {
        Pending => matches!(to, Approved | Denied | Disabled | Deleted),
        Approved => matches!(to, Stopped | Disabled | Deleted),
        Denied => matches!(to, Pending | Approved | Deleted),
        Stopped => matches!(to, Approved | Disabled | Deleted),
        Disabled => matches!(to, Approved | Stopped | Deleted),
        Deleted => false,
    }
}

/// Change a member's status: pending → approved / denied; approved → stopped (keeps what
/// was earned and billed) or disabled; back to approved; deleted (final). Disabled and
/// deleted members earn no tier commissions and cut off those above them.
#[utoipa::path(post, path = "/v1/members/{member}/status", tag = "members", params(("member" = String, Path)),
    request_body = StatusChange,
    responses((status = 200, body = Member), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_status`"),
        (status = 404, body = ErrorBody, description = "`unknown_member`"),
        (status = 409, body = ErrorBody, description = "`bad_transition`"),
        (status = 422, body = ErrorBody, description = "`member_deleted`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_status(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(member): Path<String>,
    JsonBody(body): JsonBody<StatusChange>,
) -> Result<Json<Member>, ApiError> {
    let id = lookup::member_id(&member)?;
    let status = parse_status(&body.status)?;
    set_status(&state, &caller.actor(), &id, status).await?;
    current_member(&state, &id)
}

async fn set_status(state: &ApiState, actor: &str, id: &MemberId, status: MemberStatus) -> Result<(), ApiError> {
    state
        .commit(actor, |program| {
            let mut member = lookup::member(program, id)?.clone();
            if member.status == MemberStatus::Deleted {
                return Err(model::program::ProgramError::MemberDeleted(id.clone()).into());
            }
            if member.status != status && !transition_allowed(member.status, status) {
                return Err(ApiError::conflict(
                    "bad_transition",
                    format!("member {id} is {}; it cannot become {}", member.status.as_str(), status.as_str()),
                ));
            }
            member.status = status;
            Ok((vec![ProgramChange::Member(member)], ()))
        })
        .await
        .map(|_| ())
}

/// Delete a member (final). Their commissions and bills stay; their history stays.
#[utoipa::path(delete, path = "/v1/members/{member}", tag = "members", params(("member" = String, Path)),
    responses((status = 200, body = Member), (status = 404, body = ErrorBody, description = "`unknown_member`"),
        (status = 422, body = ErrorBody, description = "`member_deleted`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_member(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(member): Path<String>,
) -> Result<Json<Member>, ApiError> {
    let id = lookup::member_id(&member)?;
    set_status(&state, &caller.actor(), &id, MemberStatus::Deleted).await?;
    current_member(&state, &id)
}
