//! What members promote with: tracking links (`/c/{code}` on the tracking edge, optionally a
//! deep link) and promo codes named from the member's handle (`@jane` and `20` give
//! `JANE20`). Codes are unique across the program; a name in use gets the next free `-N`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use model::ids::{LinkCode, MemberId, OfferId, PromoCode};
use model::program::{Member, Program, ProgramChange, PromoCodeGrant, TrackingLink};
use model::time::Timestamp;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::auth::{Admin, Reader};
use crate::error::{ApiError, ErrorBody, JsonBody, QueryParams};
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PromotionParams {
    pub offer: Option<String>,
    pub member: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PromotionParams {
    fn filters(&self) -> Result<(Option<OfferId>, Option<MemberId>, Window), ApiError> {
        Ok((
            self.offer.as_deref().map(lookup::offer_id).transpose()?,
            self.member.as_deref().map(lookup::member_id).transpose()?,
            Window::parse(self.limit, self.cursor.as_deref())?,
        ))
    }
}

fn matches(offer: &Option<OfferId>, member: &Option<MemberId>, of: (&OfferId, &MemberId)) -> bool {
    offer.as_ref().is_none_or(|offer| offer == of.0) && member.as_ref().is_none_or(|member| member == of.1)
}

/// The first of `base`, `base-2`, `base-3`, ... that `taken` says is free, within `max` bytes.
fn first_free(base: &str, max: usize, taken: impl Fn(&str) -> bool) -> String {
    for n in 1u32.. {
        let suffix = if n == 1 { String::new() } else { format!("-{n}") };
        let room = max.saturating_sub(suffix.len());
        let candidate = format!("{}{suffix}", &base[..base.len().min(room)]);
        if !taken(&candidate) {
            return candidate;
        }
    }
    unreachable!("u32 runs out before a program's codes do")
}

/// `@jane.doe` with suffix `20` → `JANEDOE20`: the handle (or the member id) in upper case,
/// letters and digits only, then the suffix.
pub fn code_name(member: &Member, suffix: &str) -> String {
    let source = member.handle.as_deref().map_or(member.id.as_str(), |handle| handle.trim_start_matches('@'));
    let keep = |text: &str| text.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_uppercase();
    let stem = keep(source);
    let stem = if stem.is_empty() { "CODE".to_string() } else { stem };
    format!("{stem}{}", keep(suffix))
}

/// A free promo code name from `base` (see [`first_free`]).
pub fn free_code(program: &Program, base: &str) -> Result<PromoCode, ApiError> {
    let name = first_free(base, PromoCode::MAX_LEN, |candidate| {
        PromoCode::new(candidate).is_ok_and(|code| program.code(&code).is_some())
    });
    lookup::promo_code(&name)
}

/// List tracking links (a member key: its own).
#[utoipa::path(get, path = "/v1/links", tag = "links and codes", params(PromotionParams),
    responses((status = 200, body = Page<TrackingLink>), (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_links(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<PromotionParams>,
) -> Result<Json<Page<TrackingLink>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let (offer, member, window) = params.filters()?;
    Ok(Json(state.program.read(|program| {
        window.cut(program.links().filter(|link| matches(&offer, &member, (&link.offer, &link.member))).cloned())
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    pub offer: String,
    pub member: String,
    /// The link code; `{member}-{offer}` (with the next free `-N`) when absent.
    pub code: Option<String>,
    /// A deep link: must be on one of the offer's allowed hosts.
    pub deep_url: Option<String>,
}

/// Issue a tracking link (`GET /c/{code}` on the tracking edge), optionally a deep link.
#[utoipa::path(post, path = "/v1/links", tag = "links and codes", request_body = NewLink,
    responses((status = 201, body = TrackingLink),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_offer`, `bad_member`, `bad_link_code`"),
        (status = 409, body = ErrorBody, description = "`link_exists`"),
        (status = 422, body = ErrorBody, description = "`unknown_offer`, `unknown_member`, `not_enrolled`, `deep_link_not_allowed`, `link_code_taken`, `invalid` (deep url)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_link(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<NewLink>,
) -> Result<(StatusCode, Json<TrackingLink>), ApiError> {
    let offer = lookup::offer_id(&body.offer)?;
    let member = lookup::member_id(&body.member)?;
    let requested = body.code.as_deref().map(lookup::link_code).transpose()?;
    let (_, link) = state
        .commit(&caller.actor(), |program| {
            let code = match requested {
                Some(code) if program.link(&code).is_some() => {
                    return Err(ApiError::conflict("link_exists", format!("link {code} exists")));
                }
                Some(code) => code,
                None => {
                    let base = format!("{member}-{offer}");
                    let name = first_free(&base, LinkCode::MAX_LEN, |candidate| {
                        LinkCode::new(candidate).is_ok_and(|code| program.link(&code).is_some())
                    });
                    lookup::link_code(&name)?
                }
            };
            let link = TrackingLink { code, offer, member, deep_url: body.deep_url, active: true };
            Ok((vec![ProgramChange::Link(link.clone())], link))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(link)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// These links or codes...
    #[serde(default)]
    pub codes: Vec<String>,
    /// ... and / or every link or code of these members in `offer`.
    pub offer: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
    pub active: bool,
}

impl Activation {
    /// The (offer, member) pairs selected besides the named codes.
    fn selection(&self) -> Result<(Option<OfferId>, Vec<MemberId>), ApiError> {
        let offer = self.offer.as_deref().map(lookup::offer_id).transpose()?;
        let members = self.members.iter().map(|member| lookup::member_id(member)).collect::<Result<Vec<_>, _>>()?;
        if self.codes.is_empty() && offer.is_none() {
            return Err(ApiError::bad_request("nothing_selected", "name codes, or an offer (and members)"));
        }
        if offer.is_none() && !members.is_empty() {
            return Err(ApiError::bad_request("nothing_selected", "members are selected within an offer"));
        }
        Ok((offer, members))
    }

    fn selects(&self, offer: &Option<OfferId>, members: &[MemberId], of: (&OfferId, &MemberId)) -> bool {
        offer.as_ref().is_some_and(|offer| offer == of.0) && (members.is_empty() || members.contains(of.1))
    }
}

/// Activate or deactivate links in bulk. A deactivated link still redirects but earns
/// nothing (`link_inactive`).
#[utoipa::path(post, path = "/v1/links/activation", tag = "links and codes", request_body = Activation,
    responses((status = 200, body = Vec<TrackingLink>),
        (status = 400, body = ErrorBody, description = "`bad_json`, `nothing_selected`, `bad_link_code`, `bad_offer`, `bad_member`"),
        (status = 404, body = ErrorBody, description = "`unknown_link`, `unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn activate_links(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<Activation>,
) -> Result<Json<Vec<TrackingLink>>, ApiError> {
    let (offer, members) = body.selection()?;
    let codes = body.codes.iter().map(|code| lookup::link_code(code)).collect::<Result<Vec<_>, _>>()?;
    let (_, selected) = state
        .commit(&caller.actor(), |program| {
            if let Some(offer) = &offer {
                lookup::offer(program, offer)?;
            }
            let mut selected: Vec<TrackingLink> =
                codes.iter().map(|code| lookup::link(program, code).cloned()).collect::<Result<_, _>>()?;
            selected.extend(
                program
                    .links()
                    .filter(|link| !codes.contains(&link.code))
                    .filter(|link| body.selects(&offer, &members, (&link.offer, &link.member)))
                    .cloned(),
            );
            for link in &mut selected {
                link.active = body.active;
            }
            Ok((selected.iter().cloned().map(ProgramChange::Link).collect(), selected))
        })
        .await?;
    Ok(Json(selected))
}

/// List promo codes (a member key: its own).
#[utoipa::path(get, path = "/v1/codes", tag = "links and codes", params(PromotionParams),
    responses((status = 200, body = Page<PromoCodeGrant>), (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_codes(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<PromotionParams>,
) -> Result<Json<Page<PromoCodeGrant>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let (offer, member, window) = params.filters()?;
    Ok(Json(state.program.read(|program| {
        window.cut(program.codes().filter(|grant| matches(&offer, &member, (&grant.offer, &grant.member))).cloned())
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    pub offer: String,
    pub member: String,
    /// The exact code; when absent it is named from the member's handle and `suffix`.
    pub code: Option<String>,
    /// Appended to the handle: `20` makes `JANE20`.
    pub suffix: Option<String>,
    pub starts_at: Option<Timestamp>,
    /// Exclusive.
    pub ends_at: Option<Timestamp>,
}

/// Issue a promo code to a member in an offer, named from their handle unless given.
#[utoipa::path(post, path = "/v1/codes", tag = "links and codes", request_body = NewCode,
    responses((status = 201, body = PromoCodeGrant),
        (status = 400, body = ErrorBody, description = "`bad_json`, `bad_offer`, `bad_member`, `bad_code`"),
        (status = 409, body = ErrorBody, description = "`code_exists`"),
        (status = 422, body = ErrorBody, description = "`unknown_offer`, `unknown_member`, `not_enrolled`, `code_taken`, `invalid` (dates)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_code(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<NewCode>,
) -> Result<(StatusCode, Json<PromoCodeGrant>), ApiError> {
    let offer = lookup::offer_id(&body.offer)?;
    let member = lookup::member_id(&body.member)?;
    let requested = body.code.as_deref().map(lookup::promo_code).transpose()?;
    let (_, grant) = state
        .commit(&caller.actor(), |program| {
            let code = match requested {
                Some(code) if program.code(&code).is_some() => {
                    return Err(ApiError::conflict("code_exists", format!("promo code {code} exists")));
                }
                Some(code) => code,
                None => {
                    let holder = program
                        .member(&member)
                        .ok_or_else(|| model::program::ProgramError::UnknownMember(member.clone()))?;
                    free_code(program, &code_name(holder, body.suffix.as_deref().unwrap_or_default()))?
                }
            };
            let grant =
                PromoCodeGrant { code, offer, member, active: true, starts_at: body.starts_at, ends_at: body.ends_at };
            Ok((vec![ProgramChange::Code(grant.clone())], grant))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// Activate or deactivate promo codes in bulk.
#[utoipa::path(post, path = "/v1/codes/activation", tag = "links and codes", request_body = Activation,
    responses((status = 200, body = Vec<PromoCodeGrant>),
        (status = 400, body = ErrorBody, description = "`bad_json`, `nothing_selected`, `bad_code`, `bad_offer`, `bad_member`"),
        (status = 404, body = ErrorBody, description = "`unknown_code`, `unknown_offer`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn activate_codes(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    JsonBody(body): JsonBody<Activation>,
) -> Result<Json<Vec<PromoCodeGrant>>, ApiError> {
    let (offer, members) = body.selection()?;
    let codes = body.codes.iter().map(|code| lookup::promo_code(code)).collect::<Result<Vec<_>, _>>()?;
    let (_, selected) = state
        .commit(&caller.actor(), |program| {
            if let Some(offer) = &offer {
                lookup::offer(program, offer)?;
            }
            let mut selected: Vec<PromoCodeGrant> =
                codes.iter().map(|code| lookup::code(program, code).cloned()).collect::<Result<_, _>>()?;
            selected.extend(
                program
                    .codes()
                    .filter(|grant| !codes.contains(&grant.code))
                    .filter(|grant| body.selects(&offer, &members, (&grant.offer, &grant.member)))
                    .cloned(),
            );
            for grant in &mut selected {
                grant.active = body.active;
            }
            Ok((selected.iter().cloned().map(ProgramChange::Code).collect(), selected))
        })
        .await?;
    Ok(Json(selected))
}

fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A code's active dates and state. Absent fields stay; `null` removes a date.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeEdit {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Timestamp>)]
    pub starts_at: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Timestamp>)]
    pub ends_at: Option<Option<Timestamp>>,
    pub active: Option<bool>,
}

/// Change a promo code's active dates (and whether it is active).
#[utoipa::path(patch, path = "/v1/codes/{code}", tag = "links and codes", params(("code" = String, Path)),
    request_body = CodeEdit,
    responses((status = 200, body = PromoCodeGrant), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_code`"),
        (status = 404, body = ErrorBody, description = "`unknown_code`"),
        (status = 422, body = ErrorBody, description = "`invalid` (ends_at not after starts_at)"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn edit_code(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(code): Path<String>,
    JsonBody(edit): JsonBody<CodeEdit>,
) -> Result<Json<PromoCodeGrant>, ApiError> {
    let code = lookup::promo_code(&code)?;
    let (_, grant) = state
        .commit(&caller.actor(), |program| {
            let mut grant = lookup::code(program, &code)?.clone();
            if let Some(starts_at) = edit.starts_at {
                grant.starts_at = starts_at;
            }
            if let Some(ends_at) = edit.ends_at {
                grant.ends_at = ends_at;
            }
            if let Some(active) = edit.active {
                grant.active = active;
            }
            Ok((vec![ProgramChange::Code(grant.clone())], grant))
        })
        .await?;
    Ok(Json(grant))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// The new code; when absent, the old name with the next free `-N` (`JANE20-2`).
    pub code: Option<String>,
}

/// The old and the new code of a refresh.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Refreshed {
    pub old: PromoCodeGrant,
    pub new: PromoCodeGrant,
}

/// Refresh a leaked code: the old code is deactivated and a new one issued to the same
/// member, offer and dates, in one change.
#[utoipa::path(post, path = "/v1/codes/{code}/refresh", tag = "links and codes", params(("code" = String, Path)),
    request_body = Refresh,
    responses((status = 200, body = Refreshed), (status = 400, body = ErrorBody, description = "`bad_json`, `bad_code`"),
        (status = 404, body = ErrorBody, description = "`unknown_code`"),
        (status = 409, body = ErrorBody, description = "`code_exists`"),
        (status = 422, body = ErrorBody, description = "`not_enrolled`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn refresh_code(
    State(state): State<ApiState>,
    Admin(caller): Admin,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<Refresh>,
) -> Result<Json<Refreshed>, ApiError> {
    let code = lookup::promo_code(&code)?;
    let requested = body.code.as_deref().map(lookup::promo_code).transpose()?;
    let (_, refreshed) = state
        .commit(&caller.actor(), |program| {
            let old = lookup::code(program, &code)?.clone();
            let new_code = match requested {
                Some(new_code) if program.code(&new_code).is_some() => {
                    return Err(ApiError::conflict("code_exists", format!("promo code {new_code} exists")));
                }
                Some(new_code) => new_code,
                None => {
                    let base = strip_counter(old.code.as_str());
                    free_code(program, base)?
                }
            };
            let new = PromoCodeGrant { code: new_code, active: true, ..old.clone() };
            let old = PromoCodeGrant { active: false, ..old };
            let changes = vec![ProgramChange::Code(old.clone()), ProgramChange::Code(new.clone())];
            Ok((changes, Refreshed { old, new }))
        })
        .await?;
    Ok(Json(refreshed))
}

/// `JANE20-3` → `JANE20`: refreshing a refreshed code counts on from the same name.
fn strip_counter(code: &str) -> &str {
    match code.rsplit_once('-') {
        Some((base, counter)) if !base.is_empty() && counter.parse::<u32>().is_ok_and(|n| n >= 2) => base,
        _ => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, handle: Option<&str>) -> Member {
        Member {
            id: MemberId::new(id).unwrap_or_else(|_| panic!("{id}")),
            name: "M".into(),
            status: Default::default(),
            parent: None,
            handle: handle.map(str::to_string),
            cookie_window: None,
            minimum_payout: Default::default(),
            joined_at: Timestamp::from_millis(0),
            postbacks: Vec::new(),
        }
    }

    #[test]
    fn codes_are_named_from_the_handle_and_suffix() {
        assert_eq!(code_name(&member("jane", Some("@jane")), "20"), "JANE20");
        assert_eq!(code_name(&member("j1", Some("@jane.doe_x")), "off-10"), "JANEDOEXOFF10");
        assert_eq!(code_name(&member("tom-s", None), ""), "TOMS");
    }

    #[test]
    fn a_taken_name_gets_the_next_free_counter_within_the_length() {
        let taken = ["JANE20", "JANE20-2"];
        assert_eq!(first_free("JANE20", 32, |name| taken.contains(&name)), "JANE20-3");
        assert_eq!(first_free("ABCDEFGH", 8, |name| name == "ABCDEFGH"), "ABCDEF-2");
        assert_eq!(strip_counter("JANE20-3"), "JANE20");
        assert_eq!(strip_counter("JANE-20"), "JANE");
        assert_eq!(strip_counter("SUMMER-1"), "SUMMER-1");
    }
}
