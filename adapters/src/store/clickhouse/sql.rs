//! Every statement the ClickHouse store sends, in one place: the migrations, the inserts'
//! tables, and each read with its bound values. The store builds its statements only here,
//! so the test that runs them on every ClickHouse version CI knows
//! (`clickledger/tests/clickhouse_versions.rs`) covers all of them: [`Read::every`] lists each
//! kind of read, and its exhaustive match fails to compile when a kind is added and not
//! listed.
//!
//! What runs on ClickHouse 18.16 and on current releases (docs/ARCHITECTURE.md, "ClickHouse
//! versions"): MergeTree tables, `FINAL`, `Decimal`, `MATERIALIZED` columns, views with joins
//! whose subqueries have aliases and join with `ANY LEFT JOIN ... USING` on unique keys.

use model::ids::{MemberId, OfferId};
use model::reports::{ReportQuery, SummaryBy};
use pipeline::ports::store::DeliveryQuery;

use crate::store::rows::{delivery_filters, limit_of};

/// Ordered migrations; each runs once, recorded in `schema_migrations`.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../../../deploy/clickhouse/001_tables.sql")),
    (2, include_str!("../../../../deploy/clickhouse/002_views.sql")),
    (3, include_str!("../../../../deploy/clickhouse/003_reports.sql")),
    (4, include_str!("../../../../deploy/clickhouse/004_clients.sql")),
    (5, include_str!("../../../../deploy/clickhouse/005_deliveries.sql")),
    (6, include_str!("../../../../deploy/clickhouse/006_subs.sql")),
];

pub const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, applied_ms Int64) ENGINE = MergeTree ORDER BY version";

pub const APPLIED_MIGRATIONS: &str = "SELECT version FROM schema_migrations ORDER BY version";

pub fn create_database(database: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {database}")
}

/// Split a migration file into statements: `;` ends one, `--` starts a comment line.
pub fn statements(sql: &str) -> Vec<String> {
    let without_comments: String =
        sql.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|statement| !statement.is_empty()).map(str::to_string).collect()
}

/// The tables rows are inserted into (`INSERT INTO {table} (columns) FORMAT RowBinary`, the
/// columns named by the row structs of `write.rs`).
pub const CLICKS: &str = "clicks";
pub const CONVERSIONS: &str = "conversions";
pub const LINES: &str = "commission_lines";
pub const BILLS: &str = "bills";
pub const SUBSCRIPTIONS: &str = "subscriptions";
pub const HISTORY: &str = "program_history";
pub const DELIVERIES: &str = "deliveries";
pub const STAGE_STATE: &str = "stage_state";
pub const SCHEMA_MIGRATIONS: &str = "schema_migrations";

/// A value bound to a `?` of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// A statement and the values of its `?`s, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Every read the store makes.
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    ConversionReport(&'a ReportQuery),
    Summary(&'a ReportQuery, SummaryBy),
    Rejections(&'a ReportQuery),
    RejectedConversions(&'a ReportQuery),
    History(Option<&'a OfferId>),
    Lines(&'a ReportQuery),
    Bills(Option<&'a MemberId>),
    Subscriptions(Option<&'a MemberId>),
    Conversions(&'a ReportQuery),
    Deliveries(&'a DeliveryQuery),
    StageState { stage: &'a str, partition: u32 },
    Migrations,
}

impl<'a> Read<'a> {
    /// The statement of this read.
    pub fn statement(&self) -> Statement {
        match *self {
            Read::ConversionReport(query) => {
                let columns = Columns { status: Some("status"), order: ORDER, ..Columns::at("order_ms") };
                let (clause, binds) = filters(query, &columns);
                let sql = format!(
                    "SELECT conversion, order_ms, offer, member, order_id, toInt64(sale_amount * 10000) AS sale_amount,
                            currency, toInt64(commission * 10000) AS commission, status, via
                     FROM conversion_report {clause} ORDER BY order_ms, conversion {}",
                    page(query)
                );
                Statement { sql, binds }
            }
            Read::Summary(query, by) => {
                let (column, view) = by.column_and_view();
                let (key, order) = match by {
                    SummaryBy::Quarter => ("toString(intDiv(at_ms, 900000))", "min(at_ms)"),
                    _ => (column, "key"),
                };
                let (clause, binds) = filters(query, &Columns::at("at_ms"));
                let sql = format!(
                    "SELECT {key} AS key, sum(clicks) AS clicks, sum(unique_clicks) AS unique_clicks,
                            sum(conversions) AS conversions, toInt64(sum(revenue) * 10000) AS revenue,
                            toInt64(sum(commission) * 10000) AS commission
                     FROM {view} {clause} GROUP BY key ORDER BY {order} {}",
                    page(query)
                );
                Statement { sql, binds }
            }
            Read::Rejections(query) => {
                let (clause, binds) = filters(query, &Columns { reason: Some("reason"), ..Columns::at("event_ms") });
                let sql = format!(
                    "SELECT reason, offer, count() AS conversions FROM rejected_conversions {clause}
                     GROUP BY reason, offer ORDER BY conversions DESC, reason, offer {}",
                    page(query)
                );
                Statement { sql, binds }
            }
            Read::RejectedConversions(query) => {
                let columns = Columns { reason: Some("reason"), order: ORDER, ..Columns::at("event_ms") };
                let (clause, binds) = filters(query, &columns);
                let sql =
                    format!("SELECT payload FROM rejected_conversions {clause} ORDER BY event_ms, id {}", page(query));
                Statement { sql, binds }
            }
            Read::History(offer) => {
                let (clause, binds) = match offer {
                    Some(offer) => ("WHERE offer = ?", vec![Bind::Text(offer.to_string())]),
                    None => ("", Vec::new()),
                };
                let sql = format!("SELECT log_offset, payload FROM program_history FINAL {clause} ORDER BY log_offset");
                Statement { sql, binds }
            }
            Read::Lines(query) => {
                let columns = Columns {
                    status: Some("status"),
                    order: Some((LINE_ORDER_ID, "order_key")),
                    ..Columns::at("earned_ms")
                };
                let (clause, binds) = filters(query, &columns);
                let sql = format!(
                    "SELECT id, revision, member, tier, earned_by, offer, order_key, source, kind, rule, keyword,
                            toInt64(amount * 10000) AS amount, currency, status, description, earned_ms, bill
                     FROM commission_lines FINAL {clause} ORDER BY earned_ms, id {}",
                    page(query)
                );
                Statement { sql, binds }
            }
            Read::Bills(member) => {
                let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
                let (clause, binds) = filters(&query, &Columns::at("period_end_ms"));
                let sql = format!("SELECT payload FROM bills FINAL {clause} ORDER BY period_end_ms, member, id");
                Statement { sql, binds }
            }
            Read::Subscriptions(member) => {
                let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
                let (clause, binds) = filters(&query, &Columns::at("0"));
                let sql = format!("SELECT payload FROM subscriptions FINAL {clause} ORDER BY order_key, conversion");
                Statement { sql, binds }
            }
            Read::Conversions(query) => {
                let columns = Columns { status: Some("status"), order: ORDER, ..Columns::at("event_ms") };
                let (clause, binds) = filters(query, &columns);
                let sql =
                    format!("SELECT payload FROM conversions FINAL {clause} ORDER BY event_ms, id {}", page(query));
                Statement { sql, binds }
            }
            Read::Deliveries(query) => {
                let (pairs, limit) = delivery_filters(query);
                let clauses: Vec<String> = pairs.iter().map(|(column, _)| format!("{column} = ?")).collect();
                let clause =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let sql =
                    format!("SELECT payload FROM deliveries FINAL {clause} ORDER BY created_ms DESC, id LIMIT {limit}");
                Statement { sql, binds: pairs.into_iter().map(|(_, value)| Bind::Text(value)).collect() }
            }
            Read::StageState { stage, partition } => Statement {
                sql: "SELECT key, log_offset, state FROM stage_state FINAL
                      WHERE stage = ? AND partition = ? AND state != '' ORDER BY key"
                    .to_string(),
                binds: vec![Bind::Text(stage.to_string()), Bind::Int(i64::from(partition))],
            },
            Read::Migrations => Statement { sql: APPLIED_MIGRATIONS.to_string(), binds: Vec::new() },
        }
    }

    /// One read of every kind for each of `queries` (and each of `offers`, `members` where a
    /// kind takes those instead): what the compatibility test runs.
    pub fn every(
        queries: &'a [ReportQuery],
        offers: &'a [Option<OfferId>],
        members: &'a [Option<MemberId>],
        stages: &'a [(&'a str, u32)],
        deliveries: &'a [DeliveryQuery],
    ) -> Vec<Read<'a>> {
        let mut reads = Vec::new();
        for query in queries {
            reads.push(Read::ConversionReport(query));
            reads.push(Read::Summary(query, SummaryBy::Offer));
            reads.push(Read::Summary(query, SummaryBy::Member));
            reads.push(Read::Summary(query, SummaryBy::Quarter));
            reads.push(Read::Summary(query, SummaryBy::Sub1));
            reads.push(Read::Summary(query, SummaryBy::Sub5));
            reads.push(Read::Rejections(query));
            reads.push(Read::RejectedConversions(query));
            reads.push(Read::Lines(query));
            reads.push(Read::Conversions(query));
        }
        reads.extend(offers.iter().map(|offer| Read::History(offer.as_ref())));
        for member in members {
            reads.push(Read::Bills(member.as_ref()));
            reads.push(Read::Subscriptions(member.as_ref()));
        }
        reads.extend(deliveries.iter().map(Read::Deliveries));
        reads.extend(stages.iter().map(|&(stage, partition)| Read::StageState { stage, partition }));
        reads.push(Read::Migrations);
        // Every kind above: a kind added to `Read` fails to compile here until it is listed.
        for read in &reads {
            match read {
                Read::ConversionReport(_)
                | Read::Summary(..)
                | Read::Rejections(_)
                | Read::RejectedConversions(_)
                | Read::History(_)
                | Read::Lines(_)
                | Read::Bills(_)
                | Read::Subscriptions(_)
                | Read::Conversions(_)
                | Read::Deliveries(_)
                | Read::StageState { .. }
                | Read::Migrations => {}
            }
        }
        reads
    }
}

/// The columns a read's filters apply to. A filter the read has no column for is not applied:
/// the API offers each report only the filters it has.
struct Columns {
    time: &'static str,
    status: Option<&'static str>,
    reason: Option<&'static str>,
    /// The order id and order key, where the read has them.
    order: Option<(&'static str, &'static str)>,
}

impl Columns {
    /// Time, offer and member only.
    fn at(time: &'static str) -> Self {
        Self { time, status: None, reason: None, order: None }
    }
}

/// The order columns of a read that has `order_id` and `order_key`.
const ORDER: Option<(&str, &str)> = Some(("order_id", "order_key"));

/// A line's order id: its order key after the advertiser (`{advertiser}:{order_id}`;
/// advertiser ids have no `:`).
const LINE_ORDER_ID: &str = "substring(order_key, position(order_key, ':') + 1)";

/// `WHERE` clauses and their values from a report query.
fn filters(query: &ReportQuery, columns: &Columns) -> (String, Vec<Bind>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    let time = columns.time;
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
    let text_filters = [
        (columns.status, &query.status),
        (columns.reason, &query.reason),
        (columns.order.map(|(order_id, _)| order_id), &query.order_id),
        (columns.order.map(|(_, order_key)| order_key), &query.order_key),
    ];
    for (column, value) in text_filters {
        if let (Some(column), Some(value)) = (column, value) {
            clauses.push(format!("{column} = ?"));
            binds.push(Bind::Text(value.clone()));
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn migrations_split_into_statements_without_comments() {
        let parts =
            statements("-- a comment; with a semicolon\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nSELECT 1;\n");
        assert_eq!(parts, ["CREATE TABLE a (x UInt8) ENGINE = Memory", "SELECT 1"]);
        assert_eq!(statements(MIGRATIONS[0].1).len(), 7, "seven tables");
        assert_eq!(statements(MIGRATIONS[1].1).len(), 3, "three views");
        assert_eq!(statements(MIGRATIONS[2].1).len(), 4, "two views replaced");
    }

    #[test]
    fn every_filter_is_bound_not_spliced() {
        let query = ReportQuery {
            offer: Some(OfferId::new("summer").unwrap()),
            status: Some("x' OR '1'='1".into()),
            ..ReportQuery::default()
        };
        let statement = Read::Lines(&query).statement();
        assert!(!statement.sql.contains("OR '1'"), "{}", statement.sql);
        assert_eq!(statement.binds.len(), 2);
    }
}
