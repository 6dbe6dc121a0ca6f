//! Reports (docs/REPORTS.md), read from the store: the conversion report by offer and member,
//! summaries per offer and per member, rejected conversions by reason, the offer update
//! history, and the commission lines. Analyst keys may read them.

use axum::Json;
use axum::extract::State;
use model::events::CommissionLine;
use model::ids::{MemberId, OfferId};
use model::program::ProgramChange;
use model::reports::{ConversionReportRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};
use model::time::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Analyst;
use crate::error::{ApiError, ErrorBody, QueryParams};
use crate::page::{Page, Window};
use crate::state::ApiState;

/// Query parameters of the report endpoints.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// RFC 3339, inclusive: the order date (conversions) or click time.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    pub member: Option<String>,
    /// Commission status (`pending`, `approved`, `billed`, `paid`, `rejected`, `reversed`, `none`).
    pub status: Option<String>,
    /// Summaries: `offer` (default) or `member`.
    pub by: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

impl ReportParams {
    pub fn query(&self) -> Result<ReportQuery, ApiError> {
        let time = |name: &'static str, value: &Option<String>| -> Result<Option<Timestamp>, ApiError> {
            value
                .as_deref()
                .map(|text| {
                    Timestamp::parse(text)
                        .map_err(|_| ApiError::bad_request("bad_time", format!("{name} must be RFC 3339")))
                })
                .transpose()
        };
        let window = Window::parse(self.limit, self.cursor.as_deref())?;
        Ok(ReportQuery {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            offer: self
                .offer
                .as_deref()
                .map(OfferId::new)
                .transpose()
                .map_err(|error| ApiError::bad_request("bad_offer", error.to_string()))?,
            member: self
                .member
                .as_deref()
                .map(MemberId::new)
                .transpose()
                .map_err(|error| ApiError::bad_request("bad_member", error.to_string()))?,
            status: self.status.clone(),
            limit: window.limit,
            offset: window.offset,
        })
    }
}

fn window(query: &ReportQuery) -> Window {
    Window { offset: query.offset, limit: query.limit }
}

/// Conversions by offer and member: order date, sale amount, commission, order id, status.
#[utoipa::path(get, path = "/v1/reports/conversions", tag = "reports", params(ReportParams),
    responses((status = 200, body = Page<ConversionReportRow>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn conversions(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Json<Page<ConversionReportRow>>, ApiError> {
    let query = params.query()?;
    Ok(Json(window(&query).page(state.backend.conversion_report(query).await?)))
}

/// Totals per offer or per member: clicks, unique clicks, conversions, revenue, commission,
/// EPC and conversion rate.
#[utoipa::path(get, path = "/v1/reports/summary", tag = "reports", params(ReportParams),
    responses((status = 200, body = Page<SummaryRow>),
        (status = 400, body = ErrorBody, description = "`bad_by`, `bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn summary(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Json<Page<SummaryRow>>, ApiError> {
    let by = match params.by.as_deref() {
        Some("offer") | None => SummaryBy::Offer,
        Some("member") => SummaryBy::Member,
        Some(_) => return Err(ApiError::bad_request("bad_by", "by must be offer or member")),
    };
    let query = params.query()?;
    Ok(Json(window(&query).page(state.backend.summary(query, by).await?)))
}

/// Conversions that earn nothing, counted by reason and offer.
#[utoipa::path(get, path = "/v1/reports/rejections", tag = "reports", params(ReportParams),
    responses((status = 200, body = Page<RejectionRow>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rejections(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Json<Page<RejectionRow>>, ApiError> {
    let query = params.query()?;
    Ok(Json(window(&query).page(state.backend.rejections(query).await?)))
}

/// One program change: what changed, who changed it and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Its place in the program log.
    pub offset: u64,
    pub at: Timestamp,
    /// `key:<name>` for changes through the API, `program-file` for a file loaded at start.
    pub actor: String,
    /// The entity changed (`offer:summer`, `enrolment:summer:jane`, `api_key:ops`, ...).
    pub key: String,
    /// `{"entity": ..., "state": ...}`: the entity's full new state. Postback secrets and key
    /// hashes are shown as `***`.
    #[schema(value_type = Object)]
    pub change: serde_json::Value,
}

/// Hide what must not leave the admin's hands: postback secrets and key hashes.
fn redacted(change: &ProgramChange) -> serde_json::Value {
    let mut value = serde_json::to_value(change).unwrap_or_default();
    match change {
        ProgramChange::Advertiser(_) => {
            if let Some(secrets) = value.pointer_mut("/state/secrets").and_then(|secrets| secrets.as_array_mut()) {
                for secret in secrets {
                    secret["secret"] = serde_json::Value::String("***".into());
                }
            }
        }
        ProgramChange::ApiKey(_) => {
            if let Some(hash) = value.pointer_mut("/state/hash") {
                *hash = serde_json::Value::String("***".into());
            }
        }
        _ => {}
    }
    value
}

/// The history of program changes, oldest first; with `offer`, that offer's update history
/// (the offer, its enrolments, links and codes).
#[utoipa::path(get, path = "/v1/reports/history", tag = "reports", params(ReportParams),
    responses((status = 200, body = Page<HistoryEntry>),
        (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_limit`, `bad_cursor`, `bad_query`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn history(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Json<Page<HistoryEntry>>, ApiError> {
    let query = params.query()?;
    let rows = state.backend.history(query.offer.clone()).await?;
    let entries = rows.into_iter().map(|row| HistoryEntry {
        offset: row.offset,
        at: row.record.at,
        actor: row.record.actor,
        key: row.record.change.key(),
        change: redacted(&row.record.change),
    });
    Ok(Json(window(&query).cut(entries)))
}

/// Commission lines (every tier and kind), filtered by member, offer, status and date.
#[utoipa::path(get, path = "/v1/lines", tag = "reports", params(ReportParams),
    responses((status = 200, body = Page<CommissionLine>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn lines(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<ReportParams>,
) -> Result<Json<Page<CommissionLine>>, ApiError> {
    let query = params.query()?;
    Ok(Json(window(&query).page(state.backend.lines(query).await?)))
}
