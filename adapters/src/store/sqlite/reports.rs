//! The report queries (docs/REPORTS.md), on the views of `001_store.sql`. Bounds on time reach
//! the tables' time indexes (migration 6); offer, member and status filter the rows read.

use model::EventId;
use model::events::{Bill, CommissionLine, ConversionRow, DeliveryRow, SubscriptionAccount};
use model::ids::{MemberId, OfferId};
use model::program::ProgramRecord;
use model::reports::{ConversionReportRow, RejectedConversionRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};
use model::time::Timestamp;
use pipeline::ports::store::{DeliveryQuery, HistoryRow, ReportStore, StoreError};
use rusqlite::{Connection, ToSql};

use super::{SqliteStore, classify};
use crate::store::rows::{LineRow, delivery_filters, from_json, from_units, limit_of, rejected_row, summary_row};

/// The columns a report's filters apply to. A filter the report has no column for is not
/// applied: the API offers each report only the filters it has.
struct Columns {
    time: &'static str,
    status: Option<&'static str>,
    reason: Option<&'static str>,
    /// The order id and order key, where the report has them.
    order: Option<(&'static str, &'static str)>,
}

impl Columns {
    /// Time, offer and member only.
    fn at(time: &'static str) -> Self {
        Self { time, status: None, reason: None, order: None }
    }
}

/// The order columns of a report that has `order_id` and `order_key`.
const ORDER: Option<(&str, &str)> = Some(("order_id", "order_key"));

/// A line's order id: its order key after the advertiser (`{advertiser}:{order_id}`;
/// advertiser ids have no `:`).
const LINE_ORDER_ID: &str = "substr(order_key, instr(order_key, ':') + 1)";

/// `WHERE` clauses and their values from a report query.
struct Filters {
    clauses: Vec<String>,
    values: Vec<Box<dyn ToSql + Send>>,
}

impl Filters {
    fn new(query: &ReportQuery, columns: &Columns) -> Self {
        let time = columns.time;
        let mut filters = Filters { clauses: Vec::new(), values: Vec::new() };
        if let Some(from) = query.from {
            filters.push(format!("{time} >= ?"), Box::new(from.millis()));
        }
        if let Some(to) = query.to {
            filters.push(format!("{time} < ?"), Box::new(to.millis()));
        }
        if let Some(offer) = &query.offer {
            filters.push("offer = ?".into(), Box::new(offer.to_string()));
        }
        if let Some(member) = &query.member {
            filters.push("member = ?".into(), Box::new(member.to_string()));
        }
        let text_filters = [
            (columns.status, &query.status),
            (columns.reason, &query.reason),
            (columns.order.map(|(order_id, _)| order_id), &query.order_id),
            (columns.order.map(|(_, order_key)| order_key), &query.order_key),
        ];
        for (column, value) in text_filters {
            if let (Some(column), Some(value)) = (column, value) {
                filters.push(format!("{column} = ?"), Box::new(value.clone()));
            }
        }
        filters
    }

    fn push(&mut self, clause: String, value: Box<dyn ToSql + Send>) {
        self.clauses.push(clause);
        self.values.push(value);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }

    fn params(&self) -> Vec<&dyn ToSql> {
        self.values.iter().map(|value| value.as_ref() as &dyn ToSql).collect()
    }
}

fn page(query: &ReportQuery) -> String {
    format!("LIMIT {} OFFSET {}", limit_of(query), query.offset)
}

fn conversion_report_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, &Columns { status: Some("status"), order: ORDER, ..Columns::at("order_ms") });
    let sql = format!(
        "SELECT conversion, order_ms, offer, member, order_id, sale_amount, currency, commission, status, via
         FROM conversion_report {} ORDER BY order_ms, conversion {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn summary_sql(query: &ReportQuery, by: SummaryBy) -> (String, Filters) {
    let (column, view) = by.column_and_view();
    let (key, order) = match by {
        SummaryBy::Quarter => ("CAST(at_ms / 900000 AS TEXT)".to_string(), "MIN(at_ms)".to_string()),
        _ => (column.to_string(), column.to_string()),
    };
    let filters = Filters::new(query, &Columns::at("at_ms"));
    let sql = format!(
        "SELECT {key}, SUM(clicks), SUM(unique_clicks), SUM(conversions), SUM(revenue), SUM(commission)
         FROM {view} {} GROUP BY 1 ORDER BY {order} {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn rejections_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, &Columns { reason: Some("reason"), ..Columns::at("event_ms") });
    let sql = format!(
        "SELECT reason, offer, COUNT(*) FROM rejected_conversions {} GROUP BY reason, offer
         ORDER BY COUNT(*) DESC, reason, offer {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn rejected_conversions_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, &Columns { reason: Some("reason"), order: ORDER, ..Columns::at("event_ms") });
    let sql =
        format!("SELECT payload FROM rejected_conversions {} ORDER BY event_ms, id {}", filters.sql(), page(query));
    (sql, filters)
}

fn lines_sql(query: &ReportQuery) -> (String, Filters) {
    let columns =
        Columns { status: Some("status"), order: Some((LINE_ORDER_ID, "order_key")), ..Columns::at("earned_ms") };
    let filters = Filters::new(query, &columns);
    let sql = format!(
        "SELECT id, revision, member, tier, earned_by, offer, order_key, source, kind, rule, keyword, amount,
                currency, status, description, earned_ms, bill
         FROM commission_lines {} ORDER BY earned_ms, id {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn conversions_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, &Columns { status: Some("status"), order: ORDER, ..Columns::at("event_ms") });
    let sql = format!("SELECT payload FROM conversions {} ORDER BY event_ms, id {}", filters.sql(), page(query));
    (sql, filters)
}

fn fetch<T>(
    connection: &Connection,
    sql: &str,
    filters: &Filters,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = connection.prepare(sql).map_err(classify)?;
    let mut rows = statement.query(filters.params().as_slice()).map_err(classify)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(classify)? {
        found.push(map(row)?);
    }
    Ok(found)
}

fn column<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, index: usize) -> Result<T, StoreError> {
    row.get(index).map_err(classify)
}

fn parse_id<T, E: std::fmt::Display>(
    value: String,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(value).map_err(|error| StoreError::Fatal(format!("stored id: {error}")))
}

impl ReportStore for SqliteStore {
    async fn conversion_report(&self, query: &ReportQuery) -> Result<Vec<ConversionReportRow>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = conversion_report_sql(&query);
            fetch(connection, &sql, &filters, |row| {
                Ok(ConversionReportRow {
                    conversion: parse_id(column(row, 0)?, |id: String| EventId::parse(&id).ok_or("not a ULID"))?,
                    order_date: Timestamp::from_millis(column(row, 1)?),
                    offer: parse_id(column(row, 2)?, OfferId::new)?,
                    member: parse_id(column(row, 3)?, MemberId::new)?,
                    order_id: column(row, 4)?,
                    sale_amount: from_units(column(row, 5)?),
                    currency: column(row, 6)?,
                    commission: from_units(column(row, 7)?),
                    status: column(row, 8)?,
                    via: column(row, 9)?,
                })
            })
        })
        .await
    }

    async fn summary(&self, query: &ReportQuery, by: SummaryBy) -> Result<Vec<SummaryRow>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = summary_sql(&query, by);
            fetch(connection, &sql, &filters, |row| {
                let count = |index| column::<i64>(row, index).map(|value| u64::try_from(value).unwrap_or(0));
                Ok(summary_row(column(row, 0)?, count(1)?, count(2)?, count(3)?, column(row, 4)?, column(row, 5)?))
            })
        })
        .await
    }

    async fn rejections(&self, query: &ReportQuery) -> Result<Vec<RejectionRow>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = rejections_sql(&query);
            fetch(connection, &sql, &filters, |row| {
                Ok(RejectionRow {
                    reason: column(row, 0)?,
                    offer: column(row, 1)?,
                    conversions: u64::try_from(column::<i64>(row, 2)?).unwrap_or(0),
                })
            })
        })
        .await
    }

    async fn rejected_conversions(&self, query: &ReportQuery) -> Result<Vec<RejectedConversionRow>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = rejected_conversions_sql(&query);
            fetch(connection, &sql, &filters, |row| {
                Ok(rejected_row(from_json::<ConversionRow>(&column::<String>(row, 0)?)?))
            })
        })
        .await
    }

    async fn history(&self, offer: Option<&OfferId>) -> Result<Vec<HistoryRow>, StoreError> {
        let offer = offer.map(OfferId::to_string);
        self.with_reader(move |connection| {
            let mut filters = Filters { clauses: Vec::new(), values: Vec::new() };
            if let Some(offer) = offer {
                filters.push("offer = ?".into(), Box::new(offer));
            }
            let sql = format!("SELECT log_offset, payload FROM program_history {} ORDER BY log_offset", filters.sql());
            fetch(connection, &sql, &filters, |row| {
                Ok(HistoryRow {
                    offset: u64::try_from(column::<i64>(row, 0)?).unwrap_or(0),
                    record: from_json::<ProgramRecord>(&column::<String>(row, 1)?)?,
                })
            })
        })
        .await
    }

    async fn lines(&self, query: &ReportQuery) -> Result<Vec<CommissionLine>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = lines_sql(&query);
            fetch(connection, &sql, &filters, |row| {
                LineRow {
                    id: column(row, 0)?,
                    revision: column(row, 1)?,
                    member: column(row, 2)?,
                    tier: column(row, 3)?,
                    earned_by: column(row, 4)?,
                    offer: column(row, 5)?,
                    order_key: column(row, 6)?,
                    source: column(row, 7)?,
                    kind: column(row, 8)?,
                    rule: column(row, 9)?,
                    keyword: column(row, 10)?,
                    amount: column(row, 11)?,
                    currency: column(row, 12)?,
                    status: column(row, 13)?,
                    description: column(row, 14)?,
                    earned_ms: column(row, 15)?,
                    bill: column(row, 16)?,
                }
                .into_line()
            })
        })
        .await
    }

    async fn bills(&self, member: Option<&MemberId>) -> Result<Vec<Bill>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        self.with_reader(move |connection| {
            let filters = Filters::new(&query, &Columns::at("period_end_ms"));
            let sql = format!("SELECT payload FROM bills {} ORDER BY period_end_ms, member, id", filters.sql());
            fetch(connection, &sql, &filters, |row| from_json(&column::<String>(row, 0)?))
        })
        .await
    }

    async fn subscriptions(&self, member: Option<&MemberId>) -> Result<Vec<SubscriptionAccount>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        self.with_reader(move |connection| {
            let filters = Filters::new(&query, &Columns::at("0"));
            let sql = format!("SELECT payload FROM subscriptions {} ORDER BY order_key", filters.sql());
            fetch(connection, &sql, &filters, |row| from_json(&column::<String>(row, 0)?))
        })
        .await
    }

    async fn conversions(&self, query: &ReportQuery) -> Result<Vec<ConversionRow>, StoreError> {
        let query = query.clone();
        self.with_reader(move |connection| {
            let (sql, filters) = conversions_sql(&query);
            fetch(connection, &sql, &filters, |row| from_json(&column::<String>(row, 0)?))
        })
        .await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError> {
        let (pairs, limit) = delivery_filters(query);
        self.with_reader(move |connection| {
            let mut filters = Filters { clauses: Vec::new(), values: Vec::new() };
            for (column, value) in pairs {
                filters.push(format!("{column} = ?"), Box::new(value));
            }
            let sql =
                format!("SELECT payload FROM deliveries {} ORDER BY created_ms DESC, id LIMIT {limit}", filters.sql());
            fetch(connection, &sql, &filters, |row| from_json(&column::<String>(row, 0)?))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use model::reports::{ReportQuery, SummaryBy};

    use model::testkit::{member_id, offer_id};
    use model::time::Timestamp;
    use pipeline::ports::store::StageStore;

    use super::*;

    /// The plan SQLite chooses for a report's SQL, one line per step.
    fn plan(connection: &Connection, (sql, filters): (String, Filters)) -> Vec<String> {
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = statement.query_map(filters.params().as_slice(), |row| row.get::<_, String>(3)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    /// A report for one day reads that day's rows through the time indexes, with its offer,
    /// member and status filters set and with none: no table of rows is scanned whole (a scan
    /// of a view's own result, named by the view, is the last step of reading it).
    #[tokio::test]
    async fn reports_bounded_in_time_read_only_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
        store.migrate().await.unwrap();
        let connection = super::super::open_reader(&dir.path().join("store.db")).unwrap();
        let day = ReportQuery {
            from: Some(Timestamp::from_millis(1_795_000_000_000)),
            to: Some(Timestamp::from_millis(1_795_086_400_000)),
            offer: Some(offer_id("summer")),
            member: Some(member_id("jane")),
            status: Some("approved".into()),
            ..ReportQuery::default()
        };
        let day_only = ReportQuery { from: day.from, to: day.to, ..ReportQuery::default() };
        let views = ["SCAN conversion_report", "SCAN activity", "SCAN activity_subs", "SCAN rejected_conversions"];
        for query in [day, day_only] {
            for (report, sql) in [
                ("conversion report", conversion_report_sql(&query)),
                ("summary by offer", summary_sql(&query, SummaryBy::Offer)),
                ("summary by member", summary_sql(&query, SummaryBy::Member)),
                ("summary by quarter", summary_sql(&query, SummaryBy::Quarter)),
                ("summary by sub1", summary_sql(&query, SummaryBy::Sub1)),
                ("rejections", rejections_sql(&query)),
                ("rejected conversions", rejected_conversions_sql(&query)),
                ("lines", lines_sql(&query)),
                ("conversions", conversions_sql(&query)),
            ] {
                let steps = plan(&connection, sql);
                let scans: Vec<&String> =
                    steps.iter().filter(|step| step.starts_with("SCAN ") && !views.contains(&step.as_str())).collect();
                assert!(scans.is_empty(), "{report} scans a whole table: {steps:?}");
                assert!(steps.iter().any(|step| step.contains("_by_time")), "{report} uses no time index: {steps:?}");
            }
        }
    }
}
