//! The program file over the API: load a TOML program file in one call (only what differs
//! from the current program is written, so loading the same file twice changes nothing), and
//! export the current program as one, so a deployment can be set up again reproducibly.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use model::program::ProgramFile;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::state::ApiState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Loaded {
    /// Program changes written (entities that differed from the current program).
    pub changes: usize,
    /// Their keys (`offer:summer`, `member:jane`, ...).
    pub keys: Vec<String>,
}

/// Load a program file (TOML, the format of `deploy/sample-program.toml`). Every change is
/// checked in order as the program's rules require; one refused change refuses the file.
#[utoipa::path(post, path = "/v1/program", tag = "program",
    request_body(content = String, content_type = "application/toml", description = "A program file"),
    responses((status = 200, body = Loaded), (status = 400, body = ErrorBody, description = "`bad_toml`"),
        (status = 422, body = ErrorBody, description = "any program rule's code: `unknown_offer`, `unknown_member`, `unknown_advertiser`, `unknown_payout_option`, `duplicate_payout_option`, `payout_option_in_use`, `invalid_tiers`, `negative_value`, `code_taken`, `link_code_taken`, `parent_cycle`, `parent_immutable`, `member_deleted`, `not_enrolled`, `deep_link_not_allowed`, `key_revoked`, `unknown_macro`, `bad_url`, `invalid`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn load(State(state): State<ApiState>, Admin(caller): Admin, body: String) -> Result<Json<Loaded>, ApiError> {
    let file = ProgramFile::from_toml(&body).map_err(|error| ApiError::bad_request("bad_toml", error))?;
    let (records, ()) = state.commit(&caller.actor(), |_| Ok((file.into_changes(), ()))).await?;
    let keys = records.iter().map(|record| record.change.key()).collect();
    Ok(Json(Loaded { changes: records.len(), keys }))
}

/// The current program as a program file (TOML). It holds the advertisers' postback secrets
/// and the webhooks' signing secrets: admin keys only. API keys are not in it.
#[utoipa::path(get, path = "/v1/program", tag = "program",
    responses((status = 200, body = String, content_type = "application/toml"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn export(State(state): State<ApiState>, Admin(_): Admin) -> Result<impl IntoResponse, ApiError> {
    let file = state.program.read(|program| ProgramFile {
        settings: Some(program.settings().clone()),
        advertisers: program.advertisers().cloned().collect(),
        offers: program.offers().cloned().collect(),
        members: program.members().cloned().collect(),
        enrolments: program.enrolments().cloned().collect(),
        links: program.links().cloned().collect(),
        codes: program.codes().cloned().collect(),
        webhooks: program.webhooks().cloned().collect(),
    });
    let text = toml::to_string(&file).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/toml")], text))
}
