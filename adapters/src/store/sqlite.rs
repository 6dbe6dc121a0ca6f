//! The embedded store: one SQLite file (WAL), schema from `deploy/sqlite/` migrations.
//!
//! Writes go through one connection under a lock, each batch in one transaction — outputs,
//! history and stage state together, so state never runs ahead of what is stored. Every upsert
//! keeps the highest revision of its row. Reports read through their own connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use model::EventId;
use model::events::{Bill, CommissionLine, SubscriptionAccount};
use model::ids::EVENT_ID_LEN;
use model::ids::{MemberId, OfferId};
use model::ports::store::{
    ConversionReportRow, ConversionRow, HistoryRow, RejectionRow, ReportQuery, StateRow, Store, StoreBatch, StoreError,
    SummaryBy, SummaryRow,
};
use model::program::ProgramRecord;
use model::time::Timestamp;
use rusqlite::{Connection, OpenFlags, ToSql, params};

use super::{LineInsert, from_units, limit_of, line_from_row, summary_row, to_units};

/// Ordered migrations; each runs once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../deploy/sqlite/001_store.sql")),
    (2, include_str!("../../../deploy/sqlite/002_state_file.sql")),
    (3, include_str!("../../../deploy/sqlite/003_click_columns.sql")),
    (4, include_str!("../../../deploy/sqlite/004_line_columns.sql")),
    (5, include_str!("../../../deploy/sqlite/005_clustered_lines.sql")),
    (6, include_str!("../../../deploy/sqlite/006_time_indexes.sql")),
];

/// Stage state lives in its own file next to the store, with its own writer: saving a large
/// state (the settler's ledger of a busy family is megabytes) must not hold up the writes of
/// outputs, which every stage makes with every batch.
const STATE_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS stage_state (
    stage TEXT NOT NULL,
    partition INTEGER NOT NULL,
    key TEXT NOT NULL,
    log_offset INTEGER NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (stage, partition, key)
)";

const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA busy_timeout = 10000;
     PRAGMA wal_autocheckpoint = 0;";

/// The main file's pages, set when it is created (a file made with smaller pages keeps them):
/// every batch adds thousands of rows to a few trees, and larger pages mean fewer splits and
/// fewer pages to log, sync and checkpoint per row (docs/PERFORMANCE.md).
const STORE_PAGE_SIZE: &str = "PRAGMA page_size = 16384;";

/// The writer's page cache, in KiB. A batch touches pages all over the trees it adds to; with
/// SQLite's default of 2 MiB the writer spilled pages to the WAL in the middle of a batch
/// and read them back.
const WRITER_CACHE: &str = "PRAGMA cache_size = -131072;";

/// How often the WAL of the store and of the state file is checkpointed, by a thread of its
/// own rather than inside a writer's commit (`crate::wal`).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// State rows are large (megabytes for a busy family's ledger): large pages mean fewer
/// overflow pages to read and free when one is replaced. Set before the file has tables.
const STATE_PAGE_SIZE: &str = "PRAGMA page_size = 65536;";

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    state_path: PathBuf,
    state_writer: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish()
    }
}

/// The one place that decides whether a SQLite error is worth retrying.
fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::DiskFull) =>
        {
            StoreError::Retriable(error.to_string())
        }
        _ => StoreError::Fatal(error.to_string()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Fatal(format!("unreadable stored row: {error}")))
}

impl SqliteStore {
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let writer = Connection::open(&path).map_err(classify)?;
        writer.execute_batch(STORE_PAGE_SIZE).map_err(classify)?;
        writer.execute_batch(PRAGMAS).map_err(classify)?;
        writer.execute_batch(WRITER_CACHE).map_err(classify)?;
        let state_path = path.with_extension("state.db");
        let state_writer = Connection::open(&state_path).map_err(classify)?;
        state_writer.execute_batch(STATE_PAGE_SIZE).map_err(classify)?;
        state_writer.execute_batch(PRAGMAS).map_err(classify)?;
        state_writer.execute_batch(STATE_SCHEMA).map_err(classify)?;
        let checkpointers =
            [Connection::open(&path).map_err(classify)?, Connection::open(&state_path).map_err(classify)?];
        let inner = Inner { path, writer: Mutex::new(writer), state_path, state_writer: Mutex::new(state_writer) };
        let inner = Arc::new(inner);
        for (n, checkpointer) in checkpointers.into_iter().enumerate() {
            let alive = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name(format!("sqlite-store-checkpoint-{n}"))
                .spawn(move || crate::wal::checkpoint_now_and_then(checkpointer, CHECKPOINT_EVERY, alive))
                .map_err(|error| StoreError::Fatal(error.to_string()))?;
        }
        Ok(Self { inner })
    }

    async fn with_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = inner.writer.lock().map_err(|_| StoreError::Fatal("store writer poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }

    async fn with_state_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.inner.state_path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = open_reader(&path)?;
            work(&connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }

    async fn with_reader<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let connection = open_reader(&path)?;
            work(&connection)
        })
        .await
        .map_err(|error| StoreError::Fatal(error.to_string()))?
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(classify)?;
    connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(classify)?;
    Ok(connection)
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

fn write_batch(connection: &mut Connection, batch: &StoreBatch) -> Result<(), StoreError> {
    let transaction = connection.transaction().map_err(classify)?;
    {
        let mut clicks = transaction
            .prepare_cached(
                "INSERT INTO clicks (id, received_ms, offer, member, link, visitor, bot, rejected, unique_click, click_id,
                     deep_link, sub1, sub2, sub3, sub4, sub5)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (id) DO UPDATE SET unique_click = excluded.unique_click",
            )
            .map_err(classify)?;
        let mut id = [0u8; EVENT_ID_LEN];
        for row in &batch.clicks {
            let click = &row.click;
            let subs = &click.subs;
            clicks
                .execute(params![
                    click.id.text_in(&mut id),
                    click.received_at.millis(),
                    click.offer.as_str(),
                    click.member.as_str(),
                    click.link.as_ref().map_or("", |link| link.as_str()),
                    click.visitor.as_str(),
                    click.bot,
                    click.rejected.map_or("", |reason| reason.as_str()),
                    row.unique,
                    click.click_id,
                    text(&click.deep_link),
                    text(&subs.sub1),
                    text(&subs.sub2),
                    text(&subs.sub3),
                    text(&subs.sub4),
                    text(&subs.sub5),
                ])
                .map_err(classify)?;
        }
        let mut conversions = transaction
            .prepare_cached(
                "INSERT INTO conversions (id, revision, event_ms, advertiser, offer, member, order_id, order_key, event,
                     amount, currency, status, reason, via, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, advertiser = excluded.advertiser,
                     offer = excluded.offer, member = excluded.member, order_key = excluded.order_key,
                     status = excluded.status, reason = excluded.reason, via = excluded.via, payload = excluded.payload
                 WHERE excluded.revision >= conversions.revision",
            )
            .map_err(classify)?;
        for row in &batch.conversions {
            let conversion = &row.conversion;
            conversions
                .execute(params![
                    conversion.id.text_in(&mut id),
                    row.revision as i64,
                    conversion.event_time().millis(),
                    row.advertiser.as_ref().map_or("", |id| id.as_str()),
                    row.offer.as_ref().or(conversion.offer.as_ref()).map_or("", |id| id.as_str()),
                    row.member.as_ref().map_or("", |id| id.as_str()),
                    conversion.order_id.as_ref().map_or("", |id| id.as_str()),
                    row.order_key.as_ref().map_or("", |key| key.as_str()),
                    conversion.event,
                    to_units(conversion.sale_amount()),
                    conversion.currency.as_ref().map_or("", |currency| currency.as_str()),
                    row.status.as_str(),
                    row.reason.map_or("", |reason| reason.as_str()),
                    row.via,
                    json(row),
                ])
                .map_err(classify)?;
        }
        let mut lines = transaction
            .prepare_cached(
                "INSERT INTO commission_lines (id, revision, member, tier, earned_by, offer, order_key, source, kind, rule,
                     keyword, amount, currency, status, description, earned_ms, bill)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (source, id) DO UPDATE SET revision = excluded.revision, amount = excluded.amount,
                     status = excluded.status, rule = excluded.rule, keyword = excluded.keyword,
                     description = excluded.description, bill = excluded.bill
                 WHERE excluded.revision >= commission_lines.revision",
            )
            .map_err(classify)?;
        // Bound from the line itself: text is copied by SQLite as it binds, so no row of owned
        // strings is built per line.
        let mut source = [0u8; EVENT_ID_LEN];
        for line in &batch.lines {
            lines
                .execute(params![
                    line.id.as_str(),
                    i64::from(line.revision),
                    line.member.as_str(),
                    line.tier,
                    line.earned_by.as_str(),
                    line.offer.as_ref().map_or("", |offer| offer.as_str()),
                    line.order_key.as_ref().map_or("", |key| key.as_str()),
                    line.source.text_in(&mut source),
                    line.kind.as_str(),
                    line.rule,
                    line.keyword,
                    to_units(line.amount),
                    line.currency.as_str(),
                    line.status.as_str(),
                    line.description,
                    line.earned_at.millis(),
                    line.bill.as_ref().map_or("", |bill| bill.as_str()),
                ])
                .map_err(classify)?;
        }
        let mut bills = transaction
            .prepare_cached(
                "INSERT INTO bills (id, revision, member, period_end_ms, total, status, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, total = excluded.total,
                     status = excluded.status, payload = excluded.payload
                 WHERE excluded.revision >= bills.revision",
            )
            .map_err(classify)?;
        for bill in &batch.bills {
            bills
                .execute(params![
                    bill.id.as_str(),
                    i64::from(bill.revision),
                    bill.member.as_str(),
                    bill.period_end.millis(),
                    to_units(bill.total),
                    bill.status.as_str(),
                    json(bill),
                ])
                .map_err(classify)?;
        }
        let mut subscriptions = transaction
            .prepare_cached(
                "INSERT INTO subscriptions (conversion, order_key, revision, member, status, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (conversion) DO UPDATE SET revision = excluded.revision, status = excluded.status,
                     payload = excluded.payload
                 WHERE excluded.revision >= subscriptions.revision",
            )
            .map_err(classify)?;
        for account in &batch.subscriptions {
            subscriptions
                .execute(params![
                    account.conversion.to_string(),
                    account.order_key.as_str(),
                    i64::from(account.revision),
                    account.member.as_str(),
                    account.status.as_str(),
                    json(account),
                ])
                .map_err(classify)?;
        }
        let mut history = transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO program_history (log_offset, at_ms, actor, entity, entity_key, offer, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(classify)?;
        for row in &batch.history {
            let change = &row.record.change;
            history
                .execute(params![
                    row.offset as i64,
                    row.record.at.millis(),
                    row.record.actor,
                    entity_name(change),
                    change.key(),
                    change.offer().map_or("", |offer| offer.as_str()),
                    json(&row.record),
                ])
                .map_err(classify)?;
        }
    }
    transaction.commit().map_err(classify)
}

/// Before migration 2: copy the stage state a store kept in its main file to the state file,
/// so an upgraded deployment resumes with its state.
fn move_state_to_its_file(connection: &Connection, state_path: &Path) -> Result<(), StoreError> {
    let exists: bool = connection
        .query_row("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'stage_state'", [], |row| {
            row.get(0)
        })
        .map_err(classify)?;
    if !exists {
        return Ok(());
    }
    let path = state_path.to_string_lossy().into_owned();
    connection.execute("ATTACH DATABASE ?1 AS state_file", [path]).map_err(classify)?;
    let copied = connection.execute_batch(
        "INSERT INTO state_file.stage_state (stage, partition, key, log_offset, state)
         SELECT stage, partition, key, log_offset, state FROM main.stage_state WHERE true
         ON CONFLICT (stage, partition, key) DO UPDATE SET log_offset = excluded.log_offset, state = excluded.state
         WHERE excluded.log_offset >= state_file.stage_state.log_offset",
    );
    let detached = connection.execute_batch("DETACH DATABASE state_file");
    copied.map_err(classify)?;
    detached.map_err(classify)
}

/// State rows, each kept only if it reflects a later input than the one stored.
fn write_state(connection: &mut Connection, rows: &[StateRow]) -> Result<(), StoreError> {
    let transaction = connection.transaction().map_err(classify)?;
    {
        let mut state = transaction
            .prepare_cached(
                "INSERT INTO stage_state (stage, partition, key, log_offset, state) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (stage, partition, key) DO UPDATE SET log_offset = excluded.log_offset, state = excluded.state
                 WHERE excluded.log_offset >= stage_state.log_offset",
            )
            .map_err(classify)?;
        let mut delete = transaction
            .prepare_cached(
                "DELETE FROM stage_state WHERE stage = ?1 AND partition = ?2 AND key = ?3 AND log_offset <= ?4",
            )
            .map_err(classify)?;
        for row in rows {
            // An empty state deletes the row (a journaled state's rows that a snapshot replaced).
            if row.state.is_empty() {
                delete.execute(params![row.stage, row.partition, row.key, row.offset as i64]).map_err(classify)?;
            } else {
                state
                    .execute(params![row.stage, row.partition, row.key, row.offset as i64, row.state])
                    .map_err(classify)?;
            }
        }
    }
    transaction.commit().map_err(classify)
}

fn entity_name(change: &model::program::ProgramChange) -> &'static str {
    use model::program::ProgramChange;
    match change {
        ProgramChange::Settings(_) => "settings",
        ProgramChange::Advertiser(_) => "advertiser",
        ProgramChange::Offer(_) => "offer",
        ProgramChange::Member(_) => "member",
        ProgramChange::Enrolment(_) => "enrolment",
        ProgramChange::Link(_) => "link",
        ProgramChange::Code(_) => "code",
        ProgramChange::ApiKey(_) => "api_key",
    }
}

/// `WHERE` clauses and their values from a report query.
struct Filters {
    clauses: Vec<String>,
    values: Vec<Box<dyn ToSql + Send>>,
}

impl Filters {
    fn new(query: &ReportQuery, time: &str, status: Option<&str>) -> Self {
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
        if let (Some(column), Some(status)) = (status, &query.status) {
            filters.push(format!("{column} = ?"), Box::new(status.clone()));
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

// Each report's SQL and its filters. Bounds on time reach the tables' time indexes
// (migration 6); offer, member and status filter the rows read.

fn conversion_report_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, "order_ms", Some("status"));
    let sql = format!(
        "SELECT conversion, order_ms, offer, member, order_id, sale_amount, currency, commission, status, via
         FROM conversion_report {} ORDER BY order_ms, conversion {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn summary_sql(query: &ReportQuery, by: SummaryBy) -> (String, Filters) {
    let key = match by {
        SummaryBy::Offer => "offer",
        SummaryBy::Member => "member",
    };
    let filters = Filters::new(query, "at_ms", None);
    let sql = format!(
        "SELECT {key}, SUM(clicks), SUM(unique_clicks), SUM(conversions), SUM(revenue), SUM(commission)
         FROM activity {} GROUP BY {key} ORDER BY {key} {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn rejections_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, "event_ms", None);
    let sql = format!(
        "SELECT reason, offer, COUNT(*) FROM rejected_conversions {} GROUP BY reason, offer
         ORDER BY COUNT(*) DESC, reason, offer {}",
        filters.sql(),
        page(query)
    );
    (sql, filters)
}

fn lines_sql(query: &ReportQuery) -> (String, Filters) {
    let filters = Filters::new(query, "earned_ms", Some("status"));
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
    let filters = Filters::new(query, "event_ms", Some("status"));
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

impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        let state_path = self.inner.state_path.clone();
        self.with_writer(move |connection| {
            connection
                .execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
                .map_err(classify)?;
            for (version, sql) in MIGRATIONS {
                let applied: bool = connection
                    .query_row("SELECT COUNT(*) > 0 FROM schema_migrations WHERE version = ?1", [version], |row| row.get(0))
                    .map_err(classify)?;
                if applied {
                    continue;
                }
                if *version == 2 {
                    move_state_to_its_file(connection, &state_path)?;
                }
                let transaction = connection.transaction().map_err(classify)?;
                transaction.execute_batch(sql).map_err(classify)?;
                transaction
                    .execute("INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)", params![version, Timestamp::now().millis()])
                    .map_err(classify)?;
                transaction.commit().map_err(classify)?;
            }
            Ok(())
        })
        .await
    }

    async fn write(&self, batch: Arc<StoreBatch>) -> Result<(), StoreError> {
        if batch.rows() > batch.state.len() {
            let outputs = batch.clone();
            self.with_writer(move |connection| write_batch(connection, &outputs)).await?;
        }
        if !batch.state.is_empty() {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || {
                let mut connection =
                    inner.state_writer.lock().map_err(|_| StoreError::Fatal("state writer poisoned".into()))?;
                write_state(&mut connection, &batch.state)
            })
            .await
            .map_err(|error| StoreError::Fatal(error.to_string()))??;
        }
        Ok(())
    }

    async fn load_state(&self, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
        let stage = stage.to_string();
        self.with_state_reader(move |connection| {
            let mut statement = connection
                .prepare("SELECT key, log_offset, state FROM stage_state WHERE stage = ?1 AND partition = ?2")
                .map_err(classify)?;
            let rows = statement
                .query_map(params![stage, partition], |row| {
                    Ok(StateRow {
                        stage: stage.clone(),
                        partition,
                        key: row.get(0)?,
                        offset: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                        state: row.get(2)?,
                    })
                })
                .map_err(classify)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(classify)
        })
        .await
    }

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
                line_from_row(LineInsert {
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
                })
            })
        })
        .await
    }

    async fn bills(&self, member: Option<&MemberId>) -> Result<Vec<Bill>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        self.with_reader(move |connection| {
            let filters = Filters::new(&query, "period_end_ms", None);
            let sql = format!("SELECT payload FROM bills {} ORDER BY period_end_ms, member, id", filters.sql());
            fetch(connection, &sql, &filters, |row| from_json(&column::<String>(row, 0)?))
        })
        .await
    }

    async fn subscriptions(&self, member: Option<&MemberId>) -> Result<Vec<SubscriptionAccount>, StoreError> {
        let query = ReportQuery { member: member.cloned(), ..ReportQuery::default() };
        self.with_reader(move |connection| {
            let filters = Filters::new(&query, "0", None);
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use model::ports::store::{ReportQuery, Store, SummaryBy};
    use model::testkit::{member_id, offer_id};
    use model::time::Timestamp;

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
        let connection = open_reader(&dir.path().join("store.db")).unwrap();
        let day = ReportQuery {
            from: Some(Timestamp::from_millis(1_795_000_000_000)),
            to: Some(Timestamp::from_millis(1_795_086_400_000)),
            offer: Some(offer_id("summer")),
            member: Some(member_id("jane")),
            status: Some("approved".into()),
            ..ReportQuery::default()
        };
        let day_only = ReportQuery { from: day.from, to: day.to, ..ReportQuery::default() };
        let views = ["SCAN conversion_report", "SCAN activity", "SCAN rejected_conversions"];
        for query in [day, day_only] {
            for (report, sql) in [
                ("conversion report", conversion_report_sql(&query)),
                ("summary by offer", summary_sql(&query, SummaryBy::Offer)),
                ("summary by member", summary_sql(&query, SummaryBy::Member)),
                ("rejections", rejections_sql(&query)),
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
