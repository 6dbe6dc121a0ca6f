//! Reports (docs/REPORTS.md), read from the store: the conversion report by offer and member,
//! summaries per offer and per member, rejected conversions by reason, the offer update
//! history, and the commission lines.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use model::ids::{MemberId, OfferId};
use model::ports::log::EventLog;
use model::ports::store::{ReportQuery, Store, SummaryBy};
use model::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ApiState;
use crate::auth::Scope;
use crate::error::ApiError;

/// Query parameters of the report endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    pub member: Option<String>,
    pub status: Option<String>,
    /// `offer` or `member` (summaries).
    pub by: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Opaque cursor from the previous page's `next`.
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

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
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request("bad_limit", format!("limit must be 1 to {MAX_PAGE}")));
        }
        let offset = match &self.cursor {
            Some(cursor) => cursor
                .parse::<u32>()
                .map_err(|_| ApiError::bad_request("bad_cursor", "cursor is not one this API gave"))?,
            None => 0,
        };
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
            limit,
            offset,
        })
    }
}

/// `{"items": [...], "next": "<cursor>" | null}`: `next` is set when the page is full.
pub fn page<T: Serialize>(items: Vec<T>, query: &ReportQuery) -> Json<Value> {
    let next = (items.len() as u32 == query.limit).then(|| (query.offset + query.limit).to_string());
    Json(json!({ "items": items, "next": next }))
}

pub async fn conversions<L: EventLog, St: Store>(
    State(state): State<ApiState<L, St>>,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    state.keys.authenticate(&headers)?.require(Scope::Analyst, "read reports")?;
    let query = params.query()?;
    Ok(page(state.store.conversion_report(&query).await?, &query))
}

pub async fn summary<L: EventLog, St: Store>(
    State(state): State<ApiState<L, St>>,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    state.keys.authenticate(&headers)?.require(Scope::Analyst, "read reports")?;
    let by = match params.by.as_deref() {
        Some("offer") | None => SummaryBy::Offer,
        Some("member") => SummaryBy::Member,
        Some(_) => return Err(ApiError::bad_request("bad_by", "by must be offer or member")),
    };
    let query = params.query()?;
    Ok(page(state.store.summary(&query, by).await?, &query))
}

pub async fn rejections<L: EventLog, St: Store>(
    State(state): State<ApiState<L, St>>,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    state.keys.authenticate(&headers)?.require(Scope::Analyst, "read reports")?;
    let query = params.query()?;
    Ok(page(state.store.rejections(&query).await?, &query))
}

pub async fn history<L: EventLog, St: Store>(
    State(state): State<ApiState<L, St>>,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    state.keys.authenticate(&headers)?.require(Scope::Analyst, "read reports")?;
    let query = params.query()?;
    let rows = state.store.history(query.offer.as_ref()).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .skip(query.offset as usize)
        .take(query.limit as usize)
        .map(|row| {
            json!({
                "offset": row.offset,
                "at": row.record.at,
                "actor": row.record.actor,
                "key": row.record.change.key(),
                "change": row.record.change,
            })
        })
        .collect();
    Ok(page(items, &query))
}

pub async fn lines<L: EventLog, St: Store>(
    State(state): State<ApiState<L, St>>,
    headers: HeaderMap,
    Query(params): Query<ReportParams>,
) -> Result<Json<Value>, ApiError> {
    state.keys.authenticate(&headers)?.require(Scope::Analyst, "read reports")?;
    let query = params.query()?;
    Ok(page(state.store.lines(&query).await?, &query))
}
