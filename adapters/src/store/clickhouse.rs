//! The ClickHouse store (scale deployment), through the `clickhouse` crate over HTTP with
//! RowBinary. Validation is off: ClickHouse 18.16 cannot describe columns the way the crate's
//! validation needs, and the row structs below mirror `deploy/clickhouse/*.sql` column by column.
//!
//! A batch is inserted table by table, thousands of rows per insert, outputs first and stage
//! state last, so a state row never claims an offset whose outputs are not stored. Inserts are
//! idempotent (ReplacingMergeTree on deterministic ids), so a failed insert is simply retried:
//! [`classify`] is the one place that decides what is worth retrying, and [`retrying`] backs off.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clickhouse::Row;
use model::events::{Bill, CommissionLine, SubscriptionAccount};
use model::ids::{EventId, MemberId, OfferId};
use model::ports::store::{
    ConversionReportRow, ConversionRow, HistoryRow, RejectionRow, ReportQuery, StateRow, Store, StoreBatch, StoreError,
    SummaryBy, SummaryRow,
};
use model::program::ProgramRecord;
use model::time::Timestamp;
use serde::{Deserialize, Serialize};

use super::{from_units, limit_of, line_from_row, line_row, summary_row, to_units};

/// Ordered migrations; each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../../deploy/clickhouse/001_tables.sql")),
    (2, include_str!("../../../deploy/clickhouse/002_views.sql")),
];

#[derive(Clone)]
pub struct ClickHouseStore {
    client: clickhouse::Client,
    database: String,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").field("database", &self.database).finish()
    }
}

/// The one place that decides whether a ClickHouse error is worth retrying: the network, time
/// outs, and the server's own transient refusals (too many parts or queries, memory).
pub fn classify(error: clickhouse::error::Error) -> StoreError {
    use clickhouse::error::Error;
    const TRANSIENT_CODES: &[&str] =
        &["Code: 159", "Code: 202", "Code: 209", "Code: 210", "Code: 241", "Code: 252", "Code: 425"];
    match &error {
        Error::Network(_) | Error::TimedOut => StoreError::Retriable(error.to_string()),
        Error::BadResponse(text) if TRANSIENT_CODES.iter().any(|code| text.contains(code)) => {
            StoreError::Retriable(error.to_string())
        }
        _ => StoreError::Fatal(error.to_string()),
    }
}

/// Run `operation` until it succeeds, fails for good, or six tries passed, backing off from
/// 100 ms to 3.2 s between tries.
pub async fn retrying<T, Operation, Attempt>(what: &str, mut operation: Operation) -> Result<T, StoreError>
where
    Operation: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=6 {
        match operation().await {
            Err(StoreError::Retriable(message)) if attempt < 6 => {
                tracing::warn!(what, attempt, %message, "ClickHouse is unavailable, retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            result => return result,
        }
    }
    Err(StoreError::Retriable(format!("{what}: gave up")))
}

#[derive(Row, Serialize, Deserialize)]
struct ClickInsert {
    id: String,
    received_ms: i64,
    offer: String,
    member: String,
    link: String,
    visitor: String,
    click_id: String,
    deep_link: String,
    sub1: String,
    sub2: String,
    sub3: String,
    sub4: String,
    sub5: String,
    bot: u8,
    rejected: String,
    unique_click: u8,
}

#[derive(Row, Serialize, Deserialize)]
struct ConversionInsert {
    id: String,
    revision: u64,
    event_ms: i64,
    received_ms: i64,
    source: String,
    advertiser: String,
    offer: String,
    member: String,
    order_id: String,
    order_key: String,
    event: String,
    amount: i64,
    currency: String,
    code: String,
    recurring_amount: i64,
    visitor: String,
    click_id: String,
    bot: u8,
    status: String,
    reason: String,
    via: String,
    payload: String,
}

/// A commission line as the columns both stores keep it in (the SQLite store too).
#[derive(Row, Serialize, Deserialize)]
pub(crate) struct LineInsert {
    pub(crate) id: String,
    pub(crate) revision: u32,
    pub(crate) member: String,
    pub(crate) tier: u8,
    pub(crate) earned_by: String,
    pub(crate) offer: String,
    pub(crate) order_key: String,
    pub(crate) source: String,
    pub(crate) kind: String,
    pub(crate) rule: String,
    pub(crate) keyword: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    pub(crate) description: String,
    pub(crate) earned_ms: i64,
    pub(crate) bill: String,
}

#[derive(Row, Serialize, Deserialize)]
struct BillInsert {
    id: String,
    revision: u32,
    member: String,
    currency: String,
    period_end_ms: i64,
    total: i64,
    lines: u32,
    status: String,
    issued_ms: i64,
    paid_ms: i64,
    payload: String,
}

#[derive(Row, Serialize, Deserialize)]
struct SubscriptionInsert {
    conversion: String,
    revision: u32,
    order_key: String,
    member: String,
    offer: String,
    status: String,
    payload: String,
}

#[derive(Row, Serialize, Deserialize)]
struct HistoryInsert {
    log_offset: u64,
    at_ms: i64,
    actor: String,
    entity: String,
    entity_key: String,
    offer: String,
    payload: String,
}

#[derive(Row, Serialize, Deserialize)]
struct StateInsert {
    stage: String,
    partition: u32,
    key: String,
    log_offset: u64,
    state: String,
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Fatal(format!("unreadable stored row: {error}")))
}

fn text<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

impl ClickHouseStore {
    /// Connect to `url`, creating `database` if needed.
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let valid = !database.is_empty() && database.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !valid {
            return Err(StoreError::Fatal(format!("database name {database:?} must be [A-Za-z0-9_]")));
        }
        let server = clickhouse::Client::default().with_url(url).with_validation(false);
        let statement = format!("CREATE DATABASE IF NOT EXISTS {database}");
        retrying("create database", || async { server.query(&statement).execute().await.map_err(classify) }).await?;
        Ok(Self { client: server.with_database(database), database: database.to_string() })
    }

    async fn insert<T: Row + Serialize + Sync + Send + 'static>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError>
    where
        for<'a> T: Row<Value<'a> = T>,
    {
        if rows.is_empty() {
            return Ok(());
        }
        retrying(table, || async {
            let mut insert = self.client.insert::<T>(table).await.map_err(classify)?;
            for row in rows {
                insert.write(row).await.map_err(classify)?;
            }
            insert.end().await.map_err(classify)
        })
        .await
    }

    async fn fetch<T>(&self, sql: &str, binds: &[Bind]) -> Result<Vec<T>, StoreError>
    where
        T: Row + for<'b> Deserialize<'b> + Send + 'static,
        for<'a> T: Row<Value<'a> = T>,
    {
        retrying("query", || async {
            let mut query = self.client.query(sql);
            for bind in binds {
                query = match bind {
                    Bind::Text(value) => query.bind(value.as_str()),
                    Bind::Int(value) => query.bind(*value),
                };
            }
            query.fetch_all::<T>().await.map_err(classify)
        })
        .await
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE` clauses and their values from a report query.
fn filters(query: &ReportQuery, time: &str, status: Option<&str>) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    if let Some(from) = query.from {
        clauses.push(format!("{time} >= ?"));
        binds.push(Bind::Int(from.millis()));
    }
    if let Some(to) = query.to {
        clauses.push(format!("{time} < ?"));
        binds.push(Bind::Int(to.millis()));
    }
    if let Some(offer) = &query.offer {
        clauses.push("offer = ?".to_string());
        binds.push(Bind::Text(offer.to_string()));
    }
    if let Some(member) = &query.member {
        clauses.push("member = ?".to_string());
        binds.push(Bind::Text(member.to_string()));
    }
    if let (Some(column), Some(status)) = (status, &query.status) {
        clauses.push(format!("{column} = ?"));
        binds.push(Bind::Text(status.clone()));
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (sql, binds)
}

fn page(query: &ReportQuery) -> String {
    let limit = limit_of(query);
    if limit == i64::MAX {
        format!("LIMIT {}, 18446744073709551615", query.offset)
    } else {
        format!("LIMIT {}, {limit}", query.offset)
    }
}

/// Split a migration file into statements: `;` ends one, `--` starts a comment line.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|statement| !statement.is_empty()).map(str::to_string).collect()
}

#[derive(Row, Deserialize)]
struct MigrationRow {
    version: u32,
}

#[derive(Row, Serialize, Deserialize)]
struct MigrationInsert {
    version: u32,
    applied_ms: i64,
}

#[derive(Row, Deserialize)]
struct ReportFetch {
    conversion: String,
    order_ms: i64,
    offer: String,
    member: String,
    order_id: String,
    sale_amount: i64,
    currency: String,
    commission: i64,
    status: String,
    via: String,
}

#[derive(Row, Deserialize)]
struct SummaryFetch {
    key: String,
    clicks: u64,
    unique_clicks: u64,
    conversions: u64,
    revenue: i64,
    commission: i64,
}

#[derive(Row, Deserialize)]
struct RejectionFetch {
    reason: String,
    offer: String,
    conversions: u64,
}

#[derive(Row, Deserialize)]
struct PayloadFetch {
    payload: String,
}

#[derive(Row, Deserialize)]
struct HistoryFetch {
    log_offset: u64,
    payload: String,
}

#[derive(Row, Deserialize)]
struct StateFetch {
    key: String,
    log_offset: u64,
    state: String,
}

impl Store for ClickHouseStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let create = "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, applied_ms Int64) ENGINE = MergeTree ORDER BY version";
        retrying("schema_migrations", || async { self.client.query(create).execute().await.map_err(classify) }).await?;
        let applied: Vec<MigrationRow> = self.fetch("SELECT version FROM schema_migrations", &[]).await?;
        for (version, sql) in MIGRATIONS {
            if applied.iter().any(|row| row.version == *version) {
                continue;
            }
            for statement in statements(sql) {
                retrying("migration", || async { self.client.query(&statement).execute().await.map_err(classify) })
                    .await?;
            }
            self.insert(
                "schema_migrations",
                &[MigrationInsert { version: *version, applied_ms: Timestamp::now().millis() }],
            )
            .await?;
            tracing::info!(version, database = %self.database, "applied ClickHouse migration");
        }
        Ok(())
    }

    async fn write(&self, batch: Arc<StoreBatch>) -> Result<(), StoreError> {
        let clicks: Vec<ClickInsert> = batch
            .clicks
            .iter()
            .map(|row| {
                let click = &row.click;
                ClickInsert {
                    id: click.id.to_string(),
                    received_ms: click.received_at.millis(),
                    offer: click.offer.to_string(),
                    member: click.member.to_string(),
                    link: text(click.link.as_ref()),
                    visitor: click.visitor.to_string(),
                    click_id: click.click_id.clone(),
                    deep_link: click.deep_link.clone().unwrap_or_default(),
                    sub1: click.subs.sub1.clone().unwrap_or_default(),
                    sub2: click.subs.sub2.clone().unwrap_or_default(),
                    sub3: click.subs.sub3.clone().unwrap_or_default(),
                    sub4: click.subs.sub4.clone().unwrap_or_default(),
                    sub5: click.subs.sub5.clone().unwrap_or_default(),
                    bot: u8::from(click.bot),
                    rejected: click.rejected.map(|reason| reason.as_str().to_string()).unwrap_or_default(),
                    unique_click: u8::from(row.unique),
                }
            })
            .collect();
        self.insert("clicks", &clicks).await?;
        let conversions: Vec<ConversionInsert> = batch
            .conversions
            .iter()
            .map(|row| {
                let conversion = &row.conversion;
                ConversionInsert {
                    id: conversion.id.to_string(),
                    revision: row.revision,
                    event_ms: conversion.event_time().millis(),
                    received_ms: conversion.received_at.millis(),
                    source: format!("{:?}", conversion.source).to_lowercase(),
                    advertiser: text(row.advertiser.as_ref()),
                    offer: text(row.offer.as_ref().or(conversion.offer.as_ref())),
                    member: text(row.member.as_ref()),
                    order_id: text(conversion.order_id.as_ref()),
                    order_key: text(row.order_key.as_ref()),
                    event: conversion.event.clone(),
                    amount: to_units(conversion.sale_amount()),
                    currency: text(conversion.currency.as_ref()),
                    code: text(conversion.code.as_ref()),
                    recurring_amount: conversion.recurring_amount.map_or(0, to_units),
                    visitor: text(conversion.visitor.as_ref()),
                    click_id: conversion.click_id.clone().unwrap_or_default(),
                    bot: u8::from(conversion.bot),
                    status: row.status.as_str().to_string(),
                    reason: row.reason.map(|reason| reason.as_str().to_string()).unwrap_or_default(),
                    via: row.via.clone(),
                    payload: json(row),
                }
            })
            .collect();
        self.insert("conversions", &conversions).await?;
        let lines: Vec<LineInsert> = batch.lines.iter().map(line_row).collect();
        self.insert("commission_lines", &lines).await?;
        let bills: Vec<BillInsert> = batch
            .bills
            .iter()
            .map(|bill| BillInsert {
                id: bill.id.to_string(),
                revision: bill.revision,
                member: bill.member.to_string(),
                currency: bill.currency.to_string(),
                period_end_ms: bill.period_end.millis(),
                total: to_units(bill.total),
                lines: bill.lines,
                status: bill.status.as_str().to_string(),
                issued_ms: bill.issued_at.millis(),
                paid_ms: bill.paid_at.map_or(0, Timestamp::millis),
                payload: json(bill),
            })
            .collect();
        self.insert("bills", &bills).await?;
        let subscriptions: Vec<SubscriptionInsert> = batch
            .subscriptions
            .iter()
            .map(|account| SubscriptionInsert {
                conversion: account.conversion.to_string(),
                revision: account.revision,
                order_key: account.order_key.to_string(),
                member: account.member.to_string(),
                offer: account.offer.to_string(),
                status: account.status.as_str().to_string(),
                payload: json(account),
            })
            .collect();
        self.insert("subscriptions", &subscriptions).await?;
        let history: Vec<HistoryInsert> = batch
            .history
            .iter()
            .map(|row| HistoryInsert {
                log_offset: row.offset,
                at_ms: row.record.at.millis(),
                actor: row.record.actor.clone(),
                entity: serde_json::to_value(&row.record.change)
                    .ok()
                    .and_then(|value| value.get("entity").and_then(|entity| entity.as_str().map(str::to_string)))
                    .unwrap_or_default(),
                entity_key: row.record.change.key(),
                offer: text(row.record.change.offer()),
                payload: json(&row.record),
            })
            .collect();
        self.insert("program_history", &history).await?;
        // State last: it may only claim offsets whose outputs are stored.
        let state: Vec<StateInsert> = batch
            .state
            .iter()
            .map(|row| StateInsert {
                stage: row.stage.clone(),
                partition: row.partition,
                key: row.key.clone(),
                log_offset: row.offset,
                state: STANDARD.encode(&row.state),
            })
            .collect();
        self.insert("stage_state", &state).await
    }

    async fn load_state(&self, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
        let rows: Vec<StateFetch> = self
            .fetch(
                "SELECT key, log_offset, state FROM stage_state FINAL WHERE stage = ? AND partition = ? AND state != ''",
                &[Bind::Text(stage.to_string()), Bind::Int(i64::from(partition))],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StateRow {
                    stage: stage.to_string(),
                    partition,
                    key: row.key,
                    offset: row.log_offset,
                    state: STANDARD.decode(row.state).map_err(|error| StoreError::Fatal(error.to_string()))?,
                })
            })
            .collect()
    }

    async fn conversion_report(&self, query: &ReportQuery) -> Result<Vec<ConversionReportRow>, StoreError> {
        let (clause, binds) = filters(query, "order_ms", Some("status"));
        let sql = format!(
            "SELECT conversion, order_ms, offer, member, order_id, toInt64(sale_amount * 10000) AS sale_amount, currency,
                    toInt64(commission * 10000) AS commission, status, via
             FROM conversion_report {clause} ORDER BY order_ms, conversion {}",
            page(query)
        );
        let rows: Vec<ReportFetch> = self.fetch(&sql, &binds).await?;
        rows.into_iter()
            .map(|row| {
                let bad = |what: &str| StoreError::Fatal(format!("conversion report: bad {what}"));
                Ok(ConversionReportRow {
                    conversion: EventId::parse(&row.conversion).ok_or_else(|| bad("conversion"))?,
                    order_date: Timestamp::from_millis(row.order_ms),
                    offer: OfferId::new(row.offer).map_err(|_| bad("offer"))?,
                    member: MemberId::new(row.member).map_err(|_| bad("member"))?,
                    order_id: row.order_id,
                    sale_amount: from_units(row.sale_amount),
                    currency: row.currency,
                    commission: from_units(row.commission),
                    status: row.status,
                    via: row.via,
                })
            })
            .collect()
    }

    async fn summary(&self, query: &ReportQuery, by: SummaryBy) -> Result<Vec<SummaryRow>, StoreError> {
        let key = match by {
            SummaryBy::Offer => "offer",
            SummaryBy::Member => "member",
        };
        let (clause, binds) = filters(query, "at_ms", None);
        let sql = format!(
            "SELECT {key} AS key, sum(clicks) AS clicks, sum(unique_clicks) AS unique_clicks, sum(conversions) AS conversions,
                    toInt64(sum(revenue) * 10000) AS revenue, toInt64(sum(commission) * 10000) AS commission
             FROM activity {clause} GROUP BY {key} ORDER BY {key} {}",
            page(query)
        );
        let rows: Vec<SummaryFetch> = self.fetch(&sql, &binds).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                summary_row(row.key, row.clicks, row.unique_clicks, row.conversions, row.revenue, row.commission)
            })
            .collect())
    }

    async fn rejections(&self, query: &ReportQuery) -> Result<Vec<RejectionRow>, StoreError> {
        let (clause, binds) = filters(query, "event_ms", None);
        let sql = format!(
            "SELECT reason, offer, count() AS conversions FROM rejected_conversions {clause}
             GROUP BY reason, offer ORDER BY conversions DESC, reason, offer {}",
            page(query)
        );
        let rows: Vec<RejectionFetch> = self.fetch(&sql, &binds).await?;
        Ok(rows
            .into_iter()
            .map(|row| RejectionRow { reason: row.reason, offer: row.offer, conversions: row.conversions })
            .collect())
    }

    async fn history(&self, offer: Option<&OfferId>) -> Result<Vec<HistoryRow>, StoreError> {
        let (clause, binds) = match offer {
            Some(offer) => ("WHERE offer = ?", vec![Bind::Text(offer.to_string())]),
            None => ("", Vec::new()),
        };
        let sql = format!("SELECT log_offset, payload FROM program_history FINAL {clause} ORDER BY log_offset");
        let rows: Vec<HistoryFetch> = self.fetch(&sql, &binds).await?;
        rows.into_iter()
            .map(|row| Ok(HistoryRow { offset: row.log_offset, record: from_json::<ProgramRecord>(&row.payload)? }))
            .collect()
    }

    async fn lines(&self, query: &ReportQuery) -> Result<Vec<CommissionLine>, StoreError> {
        let (clause, binds) = filters(query, "earned_ms", Some("status"));
        let sql = format!(
            "SELECT id, revision, member, tier, earned_by, offer, order_key, source, kind, rule, keyword,
                    toInt64(amount * 10000) AS amount, currency, status, description, earned_ms, bill
             FROM commission_lines FINAL {clause} ORDER BY earned_ms, id {}",
            page(query)
        );
        let rows: Vec<LineInsert> = self.fetch(&sql, &binds).await?;
        rows.into_iter().map(line_from_row).collect()
    }

    async fn bills(&self, member: Option<&MemberId>) -> Result<Vec<Bill>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        let (clause, binds) = filters(&query, "period_end_ms", None);
        let sql = format!("SELECT payload FROM bills FINAL {clause} ORDER BY period_end_ms, member, id");
        let rows: Vec<PayloadFetch> = self.fetch(&sql, &binds).await?;
        rows.into_iter().map(|row| from_json(&row.payload)).collect()
    }

    async fn subscriptions(&self, member: Option<&MemberId>) -> Result<Vec<SubscriptionAccount>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        let (clause, binds) = filters(&query, "0", None);
        let sql = format!("SELECT payload FROM subscriptions FINAL {clause} ORDER BY order_key, conversion");
        let rows: Vec<PayloadFetch> = self.fetch(&sql, &binds).await?;
        rows.into_iter().map(|row| from_json(&row.payload)).collect()
    }

    async fn conversions(&self, query: &ReportQuery) -> Result<Vec<ConversionRow>, StoreError> {
        let (clause, binds) = filters(query, "event_ms", Some("status"));
        let sql = format!("SELECT payload FROM conversions FINAL {clause} ORDER BY event_ms, id {}", page(query));
        let rows: Vec<PayloadFetch> = self.fetch(&sql, &binds).await?;
        rows.into_iter().map(|row| from_json(&row.payload)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_into_statements_without_comments() {
        let parts =
            statements("-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nSELECT 1;\n");
        assert_eq!(parts, ["CREATE TABLE a (x UInt8) ENGINE = Memory", "SELECT 1"]);
        assert_eq!(statements(MIGRATIONS[0].1).len(), 7, "seven tables");
        assert_eq!(statements(MIGRATIONS[1].1).len(), 3, "three views");
    }

    #[test]
    fn only_transient_errors_are_retried() {
        use clickhouse::error::Error;
        assert!(classify(Error::TimedOut).is_retriable());
        assert!(
            classify(Error::BadResponse("Code: 252, e.displayText() = DB::Exception: Too many parts".into()))
                .is_retriable()
        );
        assert!(
            !classify(Error::BadResponse("Code: 62, e.displayText() = DB::Exception: Syntax error".into()))
                .is_retriable()
        );
        assert!(!classify(Error::RowNotFound).is_retriable());
    }
}
