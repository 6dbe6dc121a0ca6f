//! Stores made by earlier versions keep their data across the upgrades: migration 2 copies
//! stage state from the main file to its own before dropping the table there; migration 3
//! moves a click's sub ids, click id and deep link from its JSON copy into columns, and
//! migration 4 a commission line's keyword, description and bill; migration 5 keys lines by
//! their source and conversions by their id, in the tables themselves. (Migration 6 changes
//! indexes and views only; the upgrade tests from version 4 read the reports through it.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use clickledger_adapters::store::sqlite::SqliteStore;
use pipeline::ports::store::{ReportStore, StageStore};

/// The store's migrations as an earlier version applied them (2 also moved the state).
const MIGRATIONS: [&str; 4] = [
    include_str!("../../deploy/sqlite/001_store.sql"),
    include_str!("../../deploy/sqlite/002_state_file.sql"),
    include_str!("../../deploy/sqlite/003_click_columns.sql"),
    include_str!("../../deploy/sqlite/004_line_columns.sql"),
];

/// A store file at schema `version` (the migrations up to `version` applied and recorded) with
/// `rows` written into it, then opened and upgraded.
async fn upgraded(path: &Path, version: i64, rows: &str) -> SqliteStore {
    {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection.execute_batch(MIGRATIONS[0]).unwrap();
        for later in 2..=version {
            connection.execute_batch(MIGRATIONS[later as usize - 1]).unwrap();
        }
        connection
            .execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)")
            .unwrap();
        for applied in 1..=version {
            connection.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [applied]).unwrap();
        }
        connection.execute_batch(rows).unwrap();
    }
    let store = SqliteStore::open(path).unwrap();
    store.migrate().await.unwrap();
    store
}

#[tokio::test]
async fn state_kept_in_the_main_file_moves_to_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // A store at schema version 1, with state in its main file.
    let store = upgraded(&path, 1, "INSERT INTO stage_state VALUES ('ledger', 2, 'jane', 41, x'0102');").await;
    let rows = store.load_state("ledger", 2).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key.as_str(), rows[0].offset, rows[0].state.as_slice()), ("jane", 41, &[1u8, 2][..]));
    let main = rusqlite::Connection::open(&path).unwrap();
    let left: i64 =
        main.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'stage_state'", [], |row| row.get(0)).unwrap();
    assert_eq!(left, 0, "the main file no longer has the table");
}

#[tokio::test]
async fn clicks_stored_as_json_keep_their_sub_ids_in_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    upgraded(
        &path,
        2,
        r#"INSERT INTO clicks VALUES ('c1', 1000, 'summer', 'kid', '', 'v1', 0, '', 1,
                     '{"click":{"id":"c1","click_id":"k1","deep_link":"https://shop.example/shoes","subs":{"sub1":"news","sub3":"x"}},"unique":true}');
                 INSERT INTO clicks VALUES ('c2', 2000, 'summer', 'kid', '', 'v2', 0, '', 0,
                     '{"click":{"id":"c2","click_id":"k2","subs":{}},"unique":false}');"#,
    )
    .await;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let mut query = connection
        .prepare("SELECT id, click_id, deep_link, sub1, sub2, sub3, sub4, sub5, unique_click FROM clicks ORDER BY id")
        .unwrap();
    // Each click as its text columns, then whether it was unique.
    let rows: Vec<(Vec<String>, i64)> = query
        .query_map([], |row| Ok(((0..8).map(|column| row.get(column)).collect::<Result<_, _>>()?, row.get(8)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let texts = |values: [&str; 8]| values.map(str::to_string).to_vec();
    assert_eq!(
        rows,
        [
            (texts(["c1", "k1", "https://shop.example/shoes", "news", "", "x", "", ""]), 1),
            (texts(["c2", "k2", "", "", "", "", "", ""]), 0),
        ]
    );
    let payload: i64 = connection
        .query_row("SELECT COUNT(*) FROM pragma_table_info('clicks') WHERE name = 'payload'", [], |row| row.get(0))
        .unwrap();
    assert_eq!(payload, 0, "the JSON copy is gone");
}

#[tokio::test]
async fn lines_stored_as_json_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = upgraded(
        &path,
        3,
        r#"INSERT INTO commission_lines VALUES ('3c87c77c8a4815da180b1d23cf1cb639', 2, 'jane', 1, 'jane', 'store',
                     'acme:O1', '00000000000000000000000005', 'conversion', 'cps', 50000, 'USD', 'approved', 1000,
                     '{"id":"3c87c77c8a4815da180b1d23cf1cb639","member":"jane","tier":1,"earned_by":"jane","offer":"store","order_key":"acme:O1","source":"00000000000000000000000005","kind":"conversion","rule":"cps","keyword":"sale","amount":"5.00","currency":"USD","status":"approved","description":"CPS: 10% of 50","earned_at":"1970-01-01T00:00:01.000Z","revision":2,"bill":"b7a1"}');"#,
    )
    .await;
    let lines = store.lines(&model::reports::ReportQuery::default()).await.unwrap();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(
        (line.keyword.as_str(), line.description.as_str(), line.bill.as_ref().map(|bill| bill.to_string())),
        ("sale", "CPS: 10% of 50", Some("b7a1".to_string()))
    );
    assert_eq!((line.amount.to_string(), line.revision, line.earned_at.millis()), ("5.00".to_string(), 2, 1000));
}

#[tokio::test]
async fn lines_and_conversions_keyed_by_id_move_to_their_clustered_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = upgraded(
        &path,
        4,
        r#"INSERT INTO conversions VALUES ('00000000000000000000000005', 1, 1000, 'acme', 'store', 'jane', 'O1',
                     'acme:O1', 'sale', 500000, 'USD', 'attributed', '', 'cookie', '{}');
           INSERT INTO commission_lines (id, revision, member, tier, earned_by, offer, order_key, source, kind, rule,
                     amount, currency, status, earned_ms, keyword, description, bill)
                 VALUES ('3c87c77c8a4815da180b1d23cf1cb639', 2, 'jane', 1, 'jane', 'store', 'acme:O1',
                     '00000000000000000000000005', 'conversion', 'cps', 50000, 'USD', 'approved', 1000, 'sale',
                     'CPS: 10% of 50', '');"#,
    )
    .await;
    // The conversion report still joins the line to its conversion.
    let report = store.conversion_report(&model::reports::ReportQuery::default()).await.unwrap();
    assert_eq!(report.len(), 1);
    assert_eq!(
        (report[0].order_id.as_str(), report[0].sale_amount.to_string(), report[0].commission.to_string()),
        ("O1", "50.00".to_string(), "5.00".to_string())
    );
    let lines = store.lines(&model::reports::ReportQuery::default()).await.unwrap();
    assert_eq!(lines.len(), 1);
    // A later revision of the line replaces it under the new key.
    let mut line = lines[0].clone();
    line.revision = 3;
    line.amount = rust_decimal::Decimal::new(250, 2);
    let batch = pipeline::ports::store::StoreBatch { lines: vec![line], ..Default::default() };
    store.write(std::sync::Arc::new(batch)).await.unwrap();
    let lines = store.lines(&model::reports::ReportQuery::default()).await.unwrap();
    assert_eq!(
        lines.iter().map(|line| (line.revision, line.amount.to_string())).collect::<Vec<_>>(),
        [(3, "2.50".to_string())]
    );
    let connection = rusqlite::Connection::open(&path).unwrap();
    let without_rowid: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(without_rowid, ["clicks", "commission_lines", "conversions", "deliveries"]);
}
