//! The ClickHouse store on the oldest and the newest ClickHouse CI knows (docs/ARCHITECTURE.md,
//! "ClickHouse versions"): Debian's 18.16 server and a current release (chdb 26.x behind
//! `deploy/chdb/server.py`), both started by the README's test command. The pipeline writes
//! a scripted day, a decision and a bill run to both at once; then every statement the store
//! can send (`sql::Read::every`, which lists each kind of read by construction) runs on both
//! and must answer byte for byte the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use adapters::store::clickhouse::ClickHouseStore;
use adapters::store::clickhouse::sql::Read;
use common::*;
use model::events::Verdict;
use model::ids::{MemberId, OfferId};
use model::reports::ReportQuery;
use model::time::{Span, Timestamp};
use pipeline::Shutdown;
use pipeline::ports::store::{DeliveryQuery, ReportStore, StageStore, StateRow, StoreBatch, StoreError};

/// One store to the stages, two ClickHouse servers behind it: every batch is written to both.
#[derive(Clone)]
struct BothVersions {
    old: ClickHouseStore,
    current: ClickHouseStore,
}

impl StageStore for BothVersions {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.old.migrate().await?;
        self.current.migrate().await
    }

    async fn write(&self, batch: Arc<StoreBatch>) -> Result<(), StoreError> {
        self.old.write(batch.clone()).await?;
        self.current.write(batch).await
    }

    async fn load_state(&self, stage: &str, partition: u32) -> Result<Vec<StateRow>, StoreError> {
        let old = self.old.load_state(stage, partition).await?;
        let current = self.current.load_state(stage, partition).await?;
        assert_eq!(old, current, "the stage state of {stage}/{partition} differs between versions");
        Ok(old)
    }
}

async fn version(store_url: &str) -> String {
    let client = clickhouse::Client::default().with_url(store_url);
    let mut cursor = client.query("SELECT version()").fetch_bytes("TabSeparated").unwrap();
    String::from_utf8(cursor.collect().await.unwrap().to_vec()).unwrap().trim().to_string()
}

fn offer(id: &str) -> OfferId {
    OfferId::new(id).unwrap()
}

fn member(id: &str) -> MemberId {
    MemberId::new(id).unwrap()
}

/// A report query with each filter the reports take, alone and together, and pages.
fn queries(day_start: Timestamp) -> Vec<ReportQuery> {
    let all = ReportQuery::default();
    vec![
        all.clone(),
        ReportQuery { from: Some(day_start), ..all.clone() },
        ReportQuery { to: Some(day_start.saturating_add(Span::days(1))), ..all.clone() },
        ReportQuery {
            from: Some(day_start.saturating_add(Span::days(30))),
            to: Some(day_start.saturating_add(Span::days(70))),
            ..all.clone()
        },
        ReportQuery { offer: Some(offer("store")), ..all.clone() },
        ReportQuery { offer: Some(offer("clicks")), ..all.clone() },
        ReportQuery { member: Some(member("kid")), ..all.clone() },
        ReportQuery { member: Some(member("solo")), offer: Some(offer("store")), ..all.clone() },
        ReportQuery { status: Some("approved".into()), ..all.clone() },
        ReportQuery { status: Some("pending".into()), ..all.clone() },
        ReportQuery { reason: Some("no_click_in_window".into()), ..all.clone() },
        ReportQuery { reason: Some("superseded_by_postback".into()), ..all.clone() },
        ReportQuery { order_id: Some("O1".into()), ..all.clone() },
        ReportQuery { order_key: Some("acme:O6".into()), ..all.clone() },
        ReportQuery { limit: 2, ..all.clone() },
        ReportQuery { limit: 2, offset: 3, ..all },
    ]
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs ClickHouse 18.16 and a current ClickHouse: the test command (deploy/test.sh) starts them"]
    async fn every_statement_answers_the_same_on_clickhouse_18_16_and_a_current_release() {
        let old_url =
            adapters::services::clickhouse_url().expect("ClickHouse is required: run the README's test command");
        let current_url = adapters::services::current_clickhouse_url()
            .expect("a current ClickHouse is required: run the README's test command");
        let (old_version, current_version) = (version(&old_url).await, version(&current_url).await);
        assert!(old_version.starts_with("18.16"), "the old server is {old_version}");
        let major: u32 = current_version.split('.').next().unwrap().parse().unwrap();
        assert!(major >= 24, "the current server is {current_version}");

        let database = unique("versions_");
        let store = BothVersions {
            old: ClickHouseStore::connect(&old_url, &database).await.unwrap(),
            current: ClickHouseStore::connect(&current_url, &database).await.unwrap(),
        };
        store.migrate().await.unwrap();

        let (log, _embedded_store, topics, _dir) = embedded(2).await;
        let (stop, shutdown) = Shutdown::new();
        let program = follow(&log, &topics, &shutdown).await;
        load(&log, &topics, &program).await;
        let clock = TestClock::default();
        let day_start = clock.now();
        let edge = start_edge(&log, &topics, &program, &shutdown).await;
        let workers = start_workers(&log, &store, &program, &topics, &clock, 1, &shutdown);

        scripted_day(edge).await;
        wait_for_conversion(&store.old, "O5").await;
        decide(&log, &topics, "O5", Verdict::Approve).await;
        clock.advance(Span::days(95));
        let inputs = inputs(&log, &topics, 2).await;
        let expected = oracle(&inputs, &topics, clock.now());
        assert_store_matches(&store.old, &expected, Duration::from_secs(90)).await;
        bill_run(&log, &topics, &program, clock.now()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while store.old.bills(None).await.unwrap().is_empty() || store.current.bills(None).await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the bill run never reached both servers");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(true);
        for worker in workers {
            worker.await.unwrap().unwrap();
        }

        // What the rows say, read the typed way on both: the same orders and bills.
        for server in [&store.old, &store.current] {
            let report = server.conversion_report(&ReportQuery::default()).await.unwrap();
            let orders: Vec<_> = report
                .iter()
                .map(|row| (row.order_id.as_str(), row.commission.to_string(), row.status.as_str()))
                .collect();
            assert_eq!(
                orders,
                [
                    ("O2", "5.00".to_string(), "billed"),
                    ("O4", "8.00".to_string(), "billed"),
                    ("O1", "10.00".to_string(), "billed"),
                    ("O5", "40.00".to_string(), "billed"),
                    ("O6", "15.00".to_string(), "billed"),
                ]
            );
            let bills = server.bills(None).await.unwrap();
            let mut totals: Vec<_> =
                bills.iter().map(|bill| (bill.member.to_string(), bill.total.to_string())).collect();
            totals.sort();
            // Every approved line of the day, billed: kid 10 + 15 + 40 + three months of 3.00.
            let bill = |member: &str, total: &str| (member.to_string(), total.to_string());
            assert_eq!(
                totals,
                [bill("grand", "2.50"), bill("kid", "74.00"), bill("parent", "25.00"), bill("solo", "13.60")]
            );
        }

        // The delivery log: two revisions of one delivery and a second one, on both versions.
        let deliveries = delivery_rows(day_start);
        let batch = StoreBatch { deliveries: deliveries.clone(), ..StoreBatch::default() };
        store.write(Arc::new(batch)).await.unwrap();
        let latest = store.current.deliveries(&DeliveryQuery::default()).await.unwrap();
        assert_eq!(latest, [deliveries[2].clone(), deliveries[1].clone()], "newest first, the last revision of each");

        // Every statement, on both versions.
        let queries = queries(day_start);
        let offers = [None, Some(offer("store")), Some(offer("nothing"))];
        let members = [None, Some(member("kid")), Some(member("solo"))];
        let stages: Vec<(&str, u32)> = [
            attributor::GROUP,
            settler::ORDERS_GROUP,
            settler::LEDGER_GROUP,
            settler::PROGRAM_GROUP,
            settler::CAPS_GROUP,
        ]
        .into_iter()
        .flat_map(|stage| [(stage, 0), (stage, 1)])
        .collect();
        let delivery_queries = [
            DeliveryQuery::default(),
            DeliveryQuery { status: Some(model::events::DeliveryStatus::Delivered), ..DeliveryQuery::default() },
            DeliveryQuery { destination: Some("webhook:finance".into()), limit: 1, ..DeliveryQuery::default() },
        ];
        let reads = Read::every(&queries, &offers, &members, &stages, &delivery_queries);
        let mut answered = 0;
        for read in &reads {
            let old = store.old.read_bytes(*read, "RowBinary").await.unwrap();
            let current = store.current.read_bytes(*read, "RowBinary").await.unwrap();
            assert_eq!(old, current, "{read:?} answers differently:\n{}", read.statement().sql);
            answered += usize::from(!old.is_empty());
        }
        // Most reads find rows: the comparison is of data, not of empty answers.
        assert!(answered * 4 >= reads.len() * 3, "only {answered} of {} reads found rows", reads.len());
    }
}

/// A delivery in two revisions (pending, then delivered) and a later one still pending.
fn delivery_rows(day_start: Timestamp) -> Vec<model::events::DeliveryRow> {
    use model::events::{DeliveryRow, DeliveryStatus, NoticeKind};
    let first = DeliveryRow {
        id: "d1".into(),
        notice: "n1".into(),
        kind: NoticeKind::CommissionApproved,
        destination: "webhook:finance".into(),
        method: "POST".into(),
        url: "https://finance.example/hooks".into(),
        body: r#"{"id":"n1"}"#.into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status: 0,
        last_error: String::new(),
        last_latency_ms: 0,
        created_at: day_start.saturating_add(Span::seconds(10)),
        next_at: Some(day_start.saturating_add(Span::seconds(10))),
        updated_at: day_start.saturating_add(Span::seconds(10)),
        revision: 0,
    };
    let delivered = DeliveryRow {
        status: DeliveryStatus::Delivered,
        attempts: 1,
        last_status: 200,
        last_latency_ms: 12,
        next_at: None,
        updated_at: day_start.saturating_add(Span::seconds(11)),
        revision: 1,
        ..first.clone()
    };
    let later = DeliveryRow {
        id: "d2".into(),
        notice: "n2".into(),
        destination: "postback:program#0".into(),
        method: "GET".into(),
        url: "https://partner.example/pb?cid=abc".into(),
        body: String::new(),
        created_at: day_start.saturating_add(Span::seconds(20)),
        updated_at: day_start.saturating_add(Span::seconds(20)),
        ..first.clone()
    };
    vec![first, delivered, later]
}
