//! Reports (docs/REPORTS.md), read from the store: the conversion report by offer and member,
//! summaries per offer and per member, rejected conversions one by one and counted by reason,
//! the offer update history, and the commission lines. Analyst keys may read them. Each
//! report takes its own parameters and refuses any other (`bad_query`).

use axum::Json;
use axum::extract::State;
use model::events::CommissionLine;
use model::program::ProgramChange;
use model::reports::{ConversionReportRow, RejectedConversionRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};
use model::time::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Analyst, Reader};
use crate::error::{ApiError, ErrorBody, QueryParams};
use crate::lookup;
use crate::page::{Page, Window};
use crate::state::ApiState;

/// The filters every report parses alike; each report's parameters fill the ones it has.
#[derive(Debug, Default)]
struct Filters<'a> {
    from: Option<&'a str>,
    to: Option<&'a str>,
    offer: Option<&'a str>,
    member: Option<&'a str>,
    status: Option<&'a str>,
    reason: Option<&'a str>,
    order_id: Option<&'a str>,
    order_key: Option<&'a str>,
    limit: Option<u32>,
    cursor: Option<&'a str>,
}

impl Filters<'_> {
    fn query(self) -> Result<ReportQuery, ApiError> {
        let time = |name: &'static str, value: Option<&str>| -> Result<Option<Timestamp>, ApiError> {
            value
                .map(|text| {
                    Timestamp::parse(text)
                        .map_err(|_| ApiError::bad_request("bad_time", format!("{name} must be RFC 3339")))
                })
                .transpose()
        };
        let window = Window::parse(self.limit, self.cursor)?;
        Ok(ReportQuery {
            from: time("from", self.from)?,
            to: time("to", self.to)?,
            offer: self.offer.map(lookup::offer_id).transpose()?,
            member: self.member.map(lookup::member_id).transpose()?,
            status: self.status.map(str::to_string),
            reason: self
                .reason
                .map(|reason| lookup::reason(reason).map(|reason| reason.as_str().to_string()))
                .transpose()?,
            order_id: self
                .order_id
                .map(|order_id| lookup::order_id(order_id).map(|order_id| order_id.to_string()))
                .transpose()?,
            order_key: self.order_key.map(|key| lookup::order_key(key).map(|key| key.to_string())).transpose()?,
            limit: window.limit,
            offset: window.offset,
        })
    }
}

/// Parameters of the conversion report.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversionReportParams {
    /// RFC 3339, inclusive: the order date.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    pub member: Option<String>,
    /// The status of the member's commission (`pending`, `approved`, `billed`, `paid`,
    /// `rejected`, `reversed`, or `none` when the conversion pays nothing).
    pub status: Option<String>,
    /// The advertiser's order id (of any advertiser).
    pub order_id: Option<String>,
    /// `{advertiser}:{order_id}`: one advertiser's order.
    pub order_key: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

impl ConversionReportParams {
    fn query(&self) -> Result<ReportQuery, ApiError> {
        Filters {
            from: self.from.as_deref(),
            to: self.to.as_deref(),
            offer: self.offer.as_deref(),
            member: self.member.as_deref(),
            status: self.status.as_deref(),
            order_id: self.order_id.as_deref(),
            order_key: self.order_key.as_deref(),
            limit: self.limit,
            cursor: self.cursor.as_deref(),
            ..Filters::default()
        }
        .query()
    }
}

/// Parameters of the summaries.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// `offer` (default), `member`, or `sub1`..`sub5`: the click's sub (a conversion's and its
    /// lines' are those of the click it was attributed through).
    pub by: Option<String>,
    /// RFC 3339, inclusive: the time of clicks and the order date of conversions.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    pub member: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the rejections counted by reason.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RejectionCountParams {
    /// RFC 3339, inclusive: the order date.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    /// The member the evidence named.
    pub member: Option<String>,
    /// One reason (`no_click_in_window`, `duplicate_order`, ...).
    pub reason: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the list of rejected conversions.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RejectedParams {
    /// RFC 3339, inclusive: the order date.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    /// The member the evidence named.
    pub member: Option<String>,
    /// One reason (`no_click_in_window`, `duplicate_order`, ...).
    pub reason: Option<String>,
    /// The advertiser's order id (of any advertiser).
    pub order_id: Option<String>,
    /// `{advertiser}:{order_id}`: one advertiser's order.
    pub order_key: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the offer update history.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// That offer's update history: the offer, its enrolments, links and codes.
    pub offer: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// Parameters of the commission lines.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LineParams {
    /// RFC 3339, inclusive: when what earned the line happened.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    /// The member who earned the line (any tier).
    pub member: Option<String>,
    /// `pending`, `approved`, `billed`, `paid`, `rejected`, `reversed` or `withdrawn`.
    pub status: Option<String>,
    /// The advertiser's order id (of any advertiser).
    pub order_id: Option<String>,
    /// `{advertiser}:{order_id}`: one advertiser's order.
    pub order_key: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// The filters of the reports over activity (the summary and the time series): time, offer,
/// member and the page.
fn activity_filters<'a>(
    from: &'a Option<String>,
    to: &'a Option<String>,
    offer: &'a Option<String>,
    member: &'a Option<String>,
    limit: Option<u32>,
    cursor: &'a Option<String>,
) -> Filters<'a> {
    Filters {
        from: from.as_deref(),
        to: to.as_deref(),
        offer: offer.as_deref(),
        member: member.as_deref(),
        limit,
        cursor: cursor.as_deref(),
        ..Filters::default()
    }
}

fn window(query: &ReportQuery) -> Window {
    Window { offset: query.offset, limit: query.limit }
}

/// Conversions by offer and member: order date, sale amount, commission, order id, status.
#[utoipa::path(get, path = "/v1/reports/conversions", tag = "reports", params(ConversionReportParams),
    responses((status = 200, body = Page<ConversionReportRow>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_order_id`, `bad_order_key`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn conversions(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<ConversionReportParams>,
) -> Result<Json<Page<ConversionReportRow>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let query = params.query()?;
    Ok(Json(window(&query).page(state.backend.conversion_report(query).await?)))
}

/// Totals per offer or per member: clicks, unique clicks, conversions, revenue, commission,
/// EPC and conversion rate.
#[utoipa::path(get, path = "/v1/reports/summary", tag = "reports", params(SummaryParams),
    responses((status = 200, body = Page<SummaryRow>),
        (status = 400, body = ErrorBody, description = "`bad_by`, `bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn summary(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<SummaryParams>,
) -> Result<Json<Page<SummaryRow>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let by = match params.by.as_deref() {
        Some("offer") | None => SummaryBy::Offer,
        Some("member") => SummaryBy::Member,
        Some("sub1") => SummaryBy::Sub1,
        Some("sub2") => SummaryBy::Sub2,
        Some("sub3") => SummaryBy::Sub3,
        Some("sub4") => SummaryBy::Sub4,
        Some("sub5") => SummaryBy::Sub5,
        Some(_) => return Err(ApiError::bad_request("bad_by", "by must be offer, member or sub1 to sub5")),
    };
    let query = activity_filters(&params.from, &params.to, &params.offer, &params.member, params.limit, &params.cursor)
        .query()?;
    Ok(Json(window(&query).page(state.backend.summary(query, by).await?)))
}

/// Conversions that earn nothing, counted by reason and offer: the summary of
/// `/v1/conversions/rejected`.
#[utoipa::path(get, path = "/v1/reports/rejections", tag = "reports", params(RejectionCountParams),
    responses((status = 200, body = Page<RejectionRow>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_reason`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rejections(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<RejectionCountParams>,
) -> Result<Json<Page<RejectionRow>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let query = Filters {
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        offer: params.offer.as_deref(),
        member: params.member.as_deref(),
        reason: params.reason.as_deref(),
        limit: params.limit,
        cursor: params.cursor.as_deref(),
        ..Filters::default()
    }
    .query()?;
    Ok(Json(window(&query).page(state.backend.rejections(query).await?)))
}

/// Conversions that earn nothing, one row each, oldest first: the order, the member the
/// evidence named, the evidence, and why — "why was I not paid" for one order.
#[utoipa::path(get, path = "/v1/conversions/rejected", tag = "reports", params(RejectedParams),
    responses((status = 200, body = Page<RejectedConversionRow>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_reason`, `bad_order_id`, `bad_order_key`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rejected_conversions(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<RejectedParams>,
) -> Result<Json<Page<RejectedConversionRow>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let query = Filters {
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        offer: params.offer.as_deref(),
        member: params.member.as_deref(),
        reason: params.reason.as_deref(),
        order_id: params.order_id.as_deref(),
        order_key: params.order_key.as_deref(),
        limit: params.limit,
        cursor: params.cursor.as_deref(),
        ..Filters::default()
    }
    .query()?;
    Ok(Json(window(&query).page(state.backend.rejected_conversions(query).await?)))
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
fn redacted(change: &ProgramChange) -> Result<serde_json::Value, ApiError> {
    let mut value = serde_json::to_value(change)
        .map_err(|error| ApiError::Internal(format!("a program change does not serialize: {error}")))?;
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
    Ok(value)
}

/// The history of program changes, oldest first; with `offer`, that offer's update history
/// (the offer, its enrolments, links and codes).
#[utoipa::path(get, path = "/v1/reports/history", tag = "reports", params(HistoryParams),
    responses((status = 200, body = Page<HistoryEntry>),
        (status = 400, body = ErrorBody, description = "`bad_offer`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn history(
    State(state): State<ApiState>,
    Analyst(_): Analyst,
    QueryParams(params): QueryParams<HistoryParams>,
) -> Result<Json<Page<HistoryEntry>>, ApiError> {
    let query = Filters {
        offer: params.offer.as_deref(),
        limit: params.limit,
        cursor: params.cursor.as_deref(),
        ..Filters::default()
    }
    .query()?;
    let rows = state.backend.history(query.offer.clone()).await?;
    let entries = rows
        .into_iter()
        .map(|row| {
            Ok(HistoryEntry {
                offset: row.offset,
                at: row.record.at,
                actor: row.record.actor,
                key: row.record.change.key(),
                change: redacted(&row.record.change)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(window(&query).cut(entries)))
}

/// Commission lines (every tier and kind), filtered by member, offer, status, order and date.
#[utoipa::path(get, path = "/v1/lines", tag = "reports", params(LineParams),
    responses((status = 200, body = Page<CommissionLine>),
        (status = 400, body = ErrorBody, description = "`bad_time`, `bad_offer`, `bad_member`, `bad_order_id`, `bad_order_key`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn lines(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<LineParams>,
) -> Result<Json<Page<CommissionLine>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let query = Filters {
        from: params.from.as_deref(),
        to: params.to.as_deref(),
        offer: params.offer.as_deref(),
        member: params.member.as_deref(),
        status: params.status.as_deref(),
        order_id: params.order_id.as_deref(),
        order_key: params.order_key.as_deref(),
        limit: params.limit,
        cursor: params.cursor.as_deref(),
        ..Filters::default()
    }
    .query()?;
    Ok(Json(window(&query).page(state.backend.lines(query).await?)))
}

/// Parameters of the time series.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeSeriesParams {
    /// `hour` or `day` (default), in the program's time zone.
    pub interval: Option<String>,
    /// RFC 3339, inclusive: the time of clicks, the order date of conversions, the time a
    /// commission was earned.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
    pub offer: Option<String>,
    pub member: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// From the previous page's `next`.
    pub cursor: Option<String>,
}

/// One hour or day of activity.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeSeriesRow {
    /// The start of the hour or day in the program's time zone, as an instant (RFC 3339, UTC).
    #[schema(value_type = String)]
    pub start: Timestamp,
    pub clicks: u64,
    pub unique_clicks: u64,
    pub conversions: u64,
    #[schema(value_type = String)]
    pub revenue: rust_decimal::Decimal,
    /// Every commission line earned in it (all tiers).
    #[schema(value_type = String)]
    pub commission: rust_decimal::Decimal,
    /// Commission per click.
    #[schema(value_type = String)]
    pub epc: rust_decimal::Decimal,
    /// Conversions per unique click.
    #[schema(value_type = String)]
    pub conversion_rate: rust_decimal::Decimal,
}

/// Clicks, unique clicks, conversions, revenue and commission per hour or day of the program's
/// time zone, oldest first; hours and days without activity are left out.
#[utoipa::path(get, path = "/v1/reports/timeseries", tag = "reports", params(TimeSeriesParams),
    responses((status = 200, body = Page<TimeSeriesRow>),
        (status = 400, body = ErrorBody, description = "`bad_interval`, `bad_time`, `bad_offer`, `bad_member`, `bad_limit`, `bad_cursor`, `bad_query`, `bad_format`"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn timeseries(
    State(state): State<ApiState>,
    reader: Reader,
    QueryParams(mut params): QueryParams<TimeSeriesParams>,
) -> Result<Json<Page<TimeSeriesRow>>, ApiError> {
    params.member = reader.member(params.member.as_deref())?;
    let period = match params.interval.as_deref() {
        Some("day") | None => model::time::Period::Day,
        Some("hour") => model::time::Period::Hour,
        Some(_) => return Err(ApiError::bad_request("bad_interval", "interval must be hour or day")),
    };
    let query = activity_filters(&params.from, &params.to, &params.offer, &params.member, params.limit, &params.cursor)
        .query()?;
    let page = window(&query);
    let every_quarter = ReportQuery { limit: 0, offset: 0, ..query };
    let quarters = state.backend.summary(every_quarter, SummaryBy::Quarter).await?;
    let zone = state.program.read(|program| program.time_zone());
    let rows = buckets(quarters, period, zone)?;
    Ok(Json(page.page(rows)))
}

/// Quarter-hour totals summed into hours or days of `zone`.
fn buckets(
    quarters: Vec<SummaryRow>,
    period: model::time::Period,
    zone: chrono_tz::Tz,
) -> Result<Vec<TimeSeriesRow>, ApiError> {
    use rust_decimal::Decimal;
    let mut sums: std::collections::BTreeMap<Timestamp, (u64, u64, u64, Decimal, Decimal)> = Default::default();
    for quarter in quarters {
        let index: i64 = quarter.key.parse().map_err(|_| ApiError::Internal(format!("bad quarter {}", quarter.key)))?;
        let start = Timestamp::from_millis(index * model::reports::QUARTER_MS).start_of(period, zone);
        let sum = sums.entry(start).or_default();
        sum.0 += quarter.clicks;
        sum.1 += quarter.unique_clicks;
        sum.2 += quarter.conversions;
        sum.3 += quarter.revenue;
        sum.4 += quarter.commission;
    }
    Ok(sums
        .into_iter()
        .map(|(start, (clicks, unique, conversions, revenue, commission))| {
            let totals = SummaryRow::new(String::new(), clicks, unique, conversions, revenue, commission);
            TimeSeriesRow {
                start,
                clicks,
                unique_clicks: unique,
                conversions,
                revenue,
                commission,
                epc: totals.epc,
                conversion_rate: totals.conversion_rate,
            }
        })
        .collect())
}
