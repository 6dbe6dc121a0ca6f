//! Enrolments: members in an offer, each paid by a payout option (the offer's default when
//! none is named), with their own payout values when the program manager sets them. Every
//! call takes one member or a set; a set changes all together or not at all.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::ids::{MemberId, OfferId, PayoutOptionId};
use model::program::{Enrolment, PayoutRule, ProgramChange, ProgramError, RecurringOverride};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::keys::ListParams;
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

/// List the members of an offer.
#[utoipa::path(get, path = "/v1/offers/{offer}/enrolments", tag = "enrolments", params(("offer" = String, Path), ListParams),
    responses((status = 200, body = Page<Enrolment>), (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_enrolments(
    State(state): State<ApiState>,
    Admin(_): Admin,
    Path(offer): Path<String>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<Page<Enrolment>>, ApiError> {
    let window = Window::parse(params.limit, params.cursor.as_deref())?;
    let id = lookup::offer_id(&offer)?;
    state.program.read(|program| {
        lookup::offer(program, &id)?;
        Ok(Json(window.cut(program.enrolments().filter(|enrolment| enrolment.offer == id).cloned())))
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrol {
    /// One member or a set.
    pub members: Vec<String>,
    /// The payout option; the offer's default when absent.
    pub payout_option: Option<String>,
}

fn members(ids: &[String]) -> Result<Vec<MemberId>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_request("no_members", "name at least one member"));
    }
    if ids.len() > 1000 {
        return Err(ApiError::bad_request("too_many_members", "at most 1000 members at a time"));
    }
    ids.iter().map(|id| lookup::member_id(id)).collect()
}

fn payout_option(text: Option<&str>) -> Result<Option<PayoutOptionId>, ApiError> {
    text.map(|text| {
        PayoutOptionId::new(text).map_err(|error| ApiError::bad_request("bad_payout_option", error.to_string()))
    })
    .transpose()
}

/// Add one member or a set to an offer with a payout option (the default when none).
#[utoipa::path(post, path = "/v1/offers/{offer}/enrolments", tag = "enrolments", params(("offer" = String, Path)),
    request_body = Enrol,
    responses((status = 201, body = Vec<Enrolment>),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_member`, `no_members`, `too_many_members`, `bad_payout_option`"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 409, body = ErrorBody, description = "`already_enrolled`"),
        (status = 422, body = ErrorBody, description = "`unknown_member`, `member_deleted`, `unknown_payout_option`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn enrol(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
    JsonBody(body): JsonBody<Enrol>,
) -> Result<(StatusCode, Json<Vec<Enrolment>>), ApiError> {
    let offer = lookup::offer_id(&offer)?;
    let members = members(&body.members)?;
    let option = payout_option(body.payout_option.as_deref())?;
    state
        .commit(&caller.actor(), |program| {
            lookup::offer(program, &offer)?;
            let mut changes = Vec::new();
            for member in &members {
                if program.enrolment(&offer, member).is_some() {
                    return Err(ApiError::conflict(
                        "already_enrolled",
                        format!("member {member} is already in offer {offer}; edit the enrolment instead"),
                    ));
                }
                changes.push(ProgramChange::Enrolment(Enrolment {
                    offer: offer.clone(),
                    member: member.clone(),
                    payout_option: option.clone(),
                    payout_override: None,
                    recurring_override: None,
                    active: true,
                    caps: Vec::new(),
                    postbacks: Vec::new(),
                }));
            }
            Ok((changes, ()))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(enrolments_of(&state, &offer, &members))))
}

fn enrolments_of(state: &ApiState, offer: &OfferId, members: &[MemberId]) -> Vec<Enrolment> {
    state
        .program
        .read(|program| members.iter().filter_map(|member| program.enrolment(offer, member).cloned()).collect())
}

/// A field of a patch: absent (keep), `null` (clear) or a value.
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What to change in each named enrolment. Absent fields stay; `null` clears an override
/// (or, for `payout_option`, goes back to the offer's default).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentEdit {
    pub members: Vec<String>,
    /// Move the members to this payout option.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub payout_option: Option<Option<String>>,
    /// The members' own payout values (10% → 15%, CPC → percentage of sales).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PayoutRule>)]
    pub payout_override: Option<Option<PayoutRule>>,
    /// The members' own recurring rate and interval for future subscription credits.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RecurringOverride>)]
    pub recurring_override: Option<Option<RecurringOverride>>,
    /// Activate or deactivate the members in this offer.
    pub active: Option<bool>,
    /// The members' caps per day or month in this offer (`[]` removes them).
    pub caps: Option<Vec<model::program::Cap>>,
    /// Partner postbacks of these members' conversions in this offer (`[]` removes them).
    pub postbacks: Option<Vec<model::program::Postback>>,
}

/// Edit the enrolments of one member or a set: move them between payout options, set their
/// own payout values, their recurring terms, their caps, or (de)activate them.
#[utoipa::path(patch, path = "/v1/offers/{offer}/enrolments", tag = "enrolments", params(("offer" = String, Path)),
    request_body = EnrolmentEdit,
    responses((status = 200, body = Vec<Enrolment>),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_member`, `no_members`, `too_many_members`, `bad_payout_option`"),
        (status = 404, body = ErrorBody, description = "`unknown_offer`"),
        (status = 422, body = ErrorBody, description = "`not_enrolled`, `unknown_payout_option`, `member_deleted`, `invalid_tiers`, `negative_value`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_enrolments(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(offer): Path<String>,
    JsonBody(edit): JsonBody<EnrolmentEdit>,
) -> Result<Json<Vec<Enrolment>>, ApiError> {
    let offer = lookup::offer_id(&offer)?;
    let members = members(&edit.members)?;
    let option = edit.payout_option.as_ref().map(|option| payout_option(option.as_deref())).transpose()?;
    state
        .commit(&caller.actor(), |program| {
            lookup::offer(program, &offer)?;
            let mut changes = Vec::new();
            for member in &members {
                let mut enrolment = program
                    .enrolment(&offer, member)
                    .cloned()
                    .ok_or_else(|| ProgramError::NotEnrolled { offer: offer.clone(), member: member.clone() })?;
                if let Some(option) = &option {
                    enrolment.payout_option = option.clone();
                }
                if let Some(rule) = &edit.payout_override {
                    enrolment.payout_override = rule.clone();
                }
                if let Some(terms) = &edit.recurring_override {
                    enrolment.recurring_override = *terms;
                }
                if let Some(active) = edit.active {
                    enrolment.active = active;
                }
                if let Some(caps) = &edit.caps {
                    enrolment.caps = caps.clone();
                }
                if let Some(postbacks) = &edit.postbacks {
                    enrolment.postbacks = postbacks.clone();
                }
                changes.push(ProgramChange::Enrolment(enrolment));
            }
            Ok((changes, ()))
        })
        .await?;
    Ok(Json(enrolments_of(&state, &offer, &members)))
}
