//! One behaviour behind one trait: the same checks against the embedded SQLite store and
//! against ClickHouse (started by deploy/test.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clickledger_adapters::services;
use clickledger_adapters::store::clickhouse::ClickHouseStore;
use clickledger_adapters::store::sqlite::SqliteStore;
use model::events::{
    Bill, BillStatus, ClickRow, CommissionLine, ConversionRow, ConversionStatus, DeliveryRow, DeliveryStatus, LineKind,
    LineStatus, NoticeKind, Reason, SubscriptionAccount, SubscriptionStatus,
};
use model::ids::{DerivedId, EventId};
use model::program::{ProgramChange, ProgramRecord};
use model::reports::*;
use model::testkit::*;
use model::{Currency, Interval};
use pipeline::ports::store::*;
use rust_decimal_macros::dec;

fn line(
    id: &str,
    member: &str,
    tier: u8,
    source: u128,
    amount: rust_decimal::Decimal,
    status: LineStatus,
    revision: u32,
) -> CommissionLine {
    CommissionLine {
        id: DerivedId::derive(&[id]),
        member: member_id(member),
        tier,
        earned_by: member_id("kid"),
        offer: Some(offer_id("summer")),
        order_key: Some(order_key("A-1")),
        source: event_id(source),
        kind: LineKind::Conversion,
        rule: "cps".into(),
        keyword: "sale".into(),
        amount,
        currency: Currency::USD,
        status,
        description: "CPS: 10% of 129.90".into(),
        earned_at: ts("2026-03-10T12:00:00Z"),
        revision,
        bill: None,
    }
}

fn batch() -> StoreBatch {
    let mut attributed = sale(1, "A-1", dec!(129.90), ts("2026-03-10T12:00:00Z"));
    attributed.offer = Some(offer_id("summer"));
    let mut duplicate = sale(2, "A-1", dec!(129.90), ts("2026-03-10T12:05:00Z"));
    duplicate.offer = Some(offer_id("summer"));
    let mut rejected = sale(3, "B-1", dec!(50), ts("2026-03-11T00:00:00Z"));
    rejected.offer = Some(offer_id("summer"));
    let conversion_row = |conversion: model::events::Conversion, status, reason, member: Option<&str>| ConversionRow {
        order_key: Some(conversion.order_key(&advertiser_id())),
        conversion,
        status,
        reason,
        advertiser: Some(advertiser_id()),
        offer: Some(offer_id("summer")),
        member: member.map(member_id),
        via: "cookie".into(),
        revision: 1,
        subs: model::events::Subs { sub1: Some("net-7".into()), ..Default::default() },
    };
    let mut bot = click(11, "summer", "kid", "v2", ts("2026-03-10T11:00:00Z"));
    bot.bot = true;
    StoreBatch {
        clicks: vec![
            ClickRow { click: click(10, "summer", "kid", "v1", ts("2026-03-10T11:00:00Z")), unique: true },
            ClickRow { click: click(12, "summer", "kid", "v1", ts("2026-03-10T11:30:00Z")), unique: false },
            ClickRow { click: bot, unique: false },
        ],
        conversions: vec![
            conversion_row(attributed, ConversionStatus::Attributed, None, Some("kid")),
            conversion_row(duplicate, ConversionStatus::Duplicate, Some(Reason::DuplicateOrder), Some("tom")),
            conversion_row(rejected, ConversionStatus::Rejected, Some(Reason::NoClickInWindow), None),
        ],
        lines: vec![
            line("first", "kid", 1, 1, dec!(12.99), LineStatus::Pending, 0),
            line("tier2", "parent", 2, 1, dec!(6.50), LineStatus::Pending, 0),
        ],
        bills: vec![Bill {
            id: DerivedId::derive(&["bill"]),
            member: member_id("kid"),
            currency: Currency::USD,
            period_end: ts("2026-04-01T00:00:00Z"),
            total: dec!(12.99),
            lines: 1,
            status: BillStatus::Unpaid,
            issued_at: ts("2026-04-01T00:00:00Z"),
            paid_at: None,
            revision: 0,
        }],
        subscriptions: vec![SubscriptionAccount {
            order_key: order_key("A-1"),
            conversion: event_id(1),
            member: member_id("kid"),
            offer: offer_id("summer"),
            name: "subscriptionsales".into(),
            recurring_amount: dec!(29.95),
            currency: Currency::USD,
            rate: dec!(0.1),
            every: Interval::Months(1),
            started_at: ts("2026-03-10T12:00:00Z"),
            anchor_at: ts("2026-03-10T12:00:00Z"),
            credits_since_anchor: 0,
            credits: 0,
            cancelled_at: None,
            status: SubscriptionStatus::Active,
            revision: 0,
        }],
        history: vec![
            HistoryRow {
                offset: 0,
                record: ProgramRecord {
                    at: ts("2026-03-01T00:00:00Z"),
                    actor: "key:admin".into(),
                    change: ProgramChange::Advertiser(advertiser()),
                },
            },
            HistoryRow {
                offset: 1,
                record: ProgramRecord {
                    at: ts("2026-03-01T00:00:01Z"),
                    actor: "key:admin".into(),
                    change: ProgramChange::Offer(offer("summer", cps(dec!(0.1)))),
                },
            },
        ],
        deliveries: vec![
            delivery("d1", "webhook:finance", NoticeKind::CommissionCreated, "2026-03-10T12:00:01Z"),
            delivery("d2", "postback:offer:summer#0", NoticeKind::ConversionAttributed, "2026-03-10T12:00:02Z"),
        ],
        state: vec![StateRow {
            stage: "ledger".into(),
            partition: 2,
            key: "kid".into(),
            offset: 41,
            state: vec![0, 159, 255, 7],
        }],
    }
}

fn delivery(id: &str, destination: &str, kind: NoticeKind, at: &str) -> DeliveryRow {
    DeliveryRow {
        id: id.into(),
        notice: format!("notice-{id}"),
        kind,
        destination: destination.into(),
        method: "POST".into(),
        url: "https://receiver.example/hook?a=1".into(),
        body: r#"{"id":"x"}"#.into(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status: 0,
        last_error: String::new(),
        last_latency_ms: 0,
        created_at: ts(at),
        next_at: Some(ts(at)),
        updated_at: ts(at),
        revision: 0,
    }
}

async fn the_store_keeps_the_latest_revision_once_and_reports_exactly<S: Store>(store: S) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.write(batch().into()).await.unwrap();
    store.write(batch().into()).await.unwrap();
    // Newer revisions win; an older one written later changes nothing.
    let approved = StoreBatch {
        lines: vec![
            line("first", "kid", 1, 1, dec!(12.99), LineStatus::Approved, 1),
            line("tier2", "parent", 2, 1, dec!(6.50), LineStatus::Approved, 1),
        ],
        state: vec![StateRow { stage: "ledger".into(), partition: 2, key: "kid".into(), offset: 57, state: vec![1] }],
        ..StoreBatch::default()
    };
    store.write(approved.into()).await.unwrap();
    let stale = StoreBatch {
        lines: vec![line("first", "kid", 1, 1, dec!(99.00), LineStatus::Pending, 0)],
        state: vec![StateRow { stage: "ledger".into(), partition: 2, key: "kid".into(), offset: 12, state: vec![9] }],
        ..StoreBatch::default()
    };
    store.write(stale.into()).await.unwrap();

    let all = ReportQuery::default();
    let lines = store.lines(&all).await.unwrap();
    assert_eq!(lines.len(), 2, "replays leave one row per line");
    let first = lines.iter().find(|line| line.tier == 1).unwrap();
    assert_eq!((first.amount, first.status, first.revision), (dec!(12.99), LineStatus::Approved, 1));
    assert_eq!(first.amount.to_string(), "12.99");
    assert_eq!(first, &line("first", "kid", 1, 1, dec!(12.99), LineStatus::Approved, 1));

    let state = store.load_state("ledger", 2).await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!((state[0].offset, state[0].state.clone()), (57, vec![1]), "the highest offset's state");
    assert!(store.load_state("ledger", 3).await.unwrap().is_empty());
    // An empty state deletes its row (a journaled state's rows that a snapshot replaced).
    let row = |key: &str, offset: u64, state: Vec<u8>| StateRow {
        stage: "ledger".into(),
        partition: 4,
        key: key.into(),
        offset,
        state,
    };
    let parts = StoreBatch {
        state: vec![row("f\u{1f}s:1", 5, vec![1]), row("f\u{1f}c:1:2", 6, vec![2])],
        ..StoreBatch::default()
    };
    store.write(parts.into()).await.unwrap();
    let replaced = StoreBatch {
        state: vec![
            row("f\u{1f}s:1", 7, Vec::new()),
            row("f\u{1f}c:1:2", 7, Vec::new()),
            row("f\u{1f}s:3", 7, vec![3]),
        ],
        ..StoreBatch::default()
    };
    store.write(replaced.into()).await.unwrap();
    let left: Vec<(String, u64, Vec<u8>)> =
        store.load_state("ledger", 4).await.unwrap().into_iter().map(|row| (row.key, row.offset, row.state)).collect();
    assert_eq!(left, vec![("f\u{1f}s:3".to_string(), 7, vec![3])]);

    let report = store.conversion_report(&all).await.unwrap();
    assert_eq!(report.len(), 1, "only the attributed conversion");
    let row = &report[0];
    assert_eq!(
        (row.order_id.as_str(), row.member.as_str(), row.sale_amount, row.commission, row.status.as_str()),
        ("A-1", "kid", dec!(129.90), dec!(12.99), "approved")
    );
    assert_eq!(row.order_date, ts("2026-03-10T12:00:00Z"));
    assert_eq!(row.sale_amount.to_string(), "129.90");
    let pending_only = ReportQuery { status: Some("pending".into()), ..ReportQuery::default() };
    assert!(store.conversion_report(&pending_only).await.unwrap().is_empty());
    let other_day = ReportQuery { from: Some(ts("2026-03-11T00:00:00Z")), ..ReportQuery::default() };
    assert!(store.conversion_report(&other_day).await.unwrap().is_empty());

    let by_offer = store.summary(&all, SummaryBy::Offer).await.unwrap();
    assert_eq!(by_offer.len(), 1);
    let summer = &by_offer[0];
    assert_eq!((summer.key.as_str(), summer.clicks, summer.unique_clicks, summer.conversions), ("summer", 2, 1, 1));
    assert_eq!((summer.revenue, summer.commission), (dec!(129.90), dec!(19.49)));
    assert_eq!(summer.epc, dec!(9.745), "19.49 over 2 clicks");
    assert_eq!(summer.conversion_rate, dec!(1), "1 conversion per unique click");
    let by_member = store.summary(&all, SummaryBy::Member).await.unwrap();
    let parent = by_member.iter().find(|row| row.key == "parent").unwrap();
    assert_eq!((parent.clicks, parent.commission), (0, dec!(6.50)), "a parent earns its tier lines");
    // By sub1: the attributed conversion came through a click with sub1 `net-7`, and its lines
    // (of every tier) follow it; the clicks were sent without one.
    let by_sub = store.summary(&all, SummaryBy::Sub1).await.unwrap();
    let totals: Vec<(&str, u64, u64, rust_decimal::Decimal, rust_decimal::Decimal)> =
        by_sub.iter().map(|row| (row.key.as_str(), row.clicks, row.conversions, row.revenue, row.commission)).collect();
    assert_eq!(totals, [("", 2, 0, dec!(0), dec!(0)), ("net-7", 0, 1, dec!(129.90), dec!(19.49))]);

    let rejections = store.rejections(&all).await.unwrap();
    let reasons: Vec<(&str, u64)> = rejections.iter().map(|row| (row.reason.as_str(), row.conversions)).collect();
    assert_eq!(reasons, [("duplicate_order", 1), ("no_click_in_window", 1)]);
    // A member's rejections: the duplicate was tom's; the other found no member.
    let toms = ReportQuery { member: Some(member_id("tom")), ..ReportQuery::default() };
    let rejections = store.rejections(&toms).await.unwrap();
    let reasons: Vec<(&str, u64)> = rejections.iter().map(|row| (row.reason.as_str(), row.conversions)).collect();
    assert_eq!(reasons, [("duplicate_order", 1)]);

    // One row per rejected conversion, oldest first, with its order, member and evidence.
    let rejected = store.rejected_conversions(&all).await.unwrap();
    let listed: Vec<(&str, Option<&str>, &str, Option<&str>, &str, rust_decimal::Decimal)> = rejected
        .iter()
        .map(|row| {
            (
                row.reason.as_str(),
                row.order_id.as_deref(),
                row.order_key.as_deref().unwrap_or_default(),
                row.member.as_deref(),
                row.evidence.as_str(),
                row.amount,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("duplicate_order", Some("A-1"), "acme:A-1", Some("tom"), "cookie", dec!(129.90)),
            ("no_click_in_window", Some("B-1"), "acme:B-1", None, "cookie", dec!(50)),
        ]
    );
    assert_eq!(rejected[0].at, ts("2026-03-10T12:05:00Z"));
    let by_reason = ReportQuery { reason: Some("no_click_in_window".into()), ..ReportQuery::default() };
    assert_eq!(store.rejected_conversions(&by_reason).await.unwrap().len(), 1);
    let by_order = ReportQuery { order_id: Some("A-1".into()), ..ReportQuery::default() };
    assert_eq!(store.rejected_conversions(&by_order).await.unwrap()[0].reason, "duplicate_order");
    assert_eq!(store.rejections(&by_reason).await.unwrap().len(), 1, "the counts take the reason too");

    // Lines and the conversion report by order: any advertiser's order id, or one order key.
    let order = ReportQuery { order_id: Some("A-1".into()), ..ReportQuery::default() };
    assert_eq!(store.lines(&order).await.unwrap().len(), 2);
    let other_order = ReportQuery { order_id: Some("A-2".into()), ..ReportQuery::default() };
    assert!(store.lines(&other_order).await.unwrap().is_empty());
    let key = ReportQuery { order_key: Some("acme:A-1".into()), ..ReportQuery::default() };
    assert_eq!(store.lines(&key).await.unwrap().len(), 2);
    assert_eq!(store.conversion_report(&key).await.unwrap().len(), 1);
    let other_advertiser = ReportQuery { order_key: Some("other:A-1".into()), ..ReportQuery::default() };
    assert!(store.conversion_report(&other_advertiser).await.unwrap().is_empty());
    assert_eq!(store.conversion_report(&order).await.unwrap().len(), 1);

    let history = store.history(Some(&offer_id("summer"))).await.unwrap();
    assert_eq!(history.len(), 1, "the offer's own changes");
    assert_eq!(history[0].record.actor, "key:admin");
    assert_eq!(store.history(None).await.unwrap().len(), 2);

    assert_eq!(store.bills(Some(&member_id("kid"))).await.unwrap().len(), 1);
    assert!(store.bills(Some(&member_id("parent"))).await.unwrap().is_empty());
    assert_eq!(store.subscriptions(None).await.unwrap()[0].recurring_amount, dec!(29.95));
    let conversions = store.conversions(&all).await.unwrap();
    assert_eq!(conversions.len(), 3);
    assert_eq!(conversions[0].conversion.amount, Some(dec!(129.90)));
    assert_eq!(conversions.iter().filter(|row| row.status == ConversionStatus::Duplicate).count(), 1);
    let _ = EventId::new();

    // The delivery log: the latest revision of each delivery, newest first, filtered.
    let mut delivered = delivery("d1", "webhook:finance", NoticeKind::CommissionCreated, "2026-03-10T12:00:01Z");
    delivered.status = DeliveryStatus::Delivered;
    delivered.attempts = 2;
    delivered.last_status = 204;
    delivered.revision = 2;
    let mut stale = delivered.clone();
    stale.status = DeliveryStatus::Pending;
    stale.revision = 1;
    store.write(StoreBatch { deliveries: vec![delivered.clone()], ..StoreBatch::default() }.into()).await.unwrap();
    store.write(StoreBatch { deliveries: vec![stale], ..StoreBatch::default() }.into()).await.unwrap();
    let ids = |rows: Vec<DeliveryRow>| rows.into_iter().map(|row| row.id).collect::<Vec<_>>();
    let all = store.deliveries(&DeliveryQuery::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], delivered, "the highest revision, whatever the order of writes");
    assert_eq!(all[0].id, "d2", "newest first");
    let delivered_only = DeliveryQuery { status: Some(DeliveryStatus::Delivered), ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&delivered_only).await.unwrap()), ["d1"]);
    let by_destination =
        DeliveryQuery { destination: Some("postback:offer:summer#0".into()), ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&by_destination).await.unwrap()), ["d2"]);
    let by_kind = DeliveryQuery { kind: Some(NoticeKind::CommissionCreated), ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&by_kind).await.unwrap()), ["d1"]);
    let by_notice = DeliveryQuery { notice: Some("notice-d2".into()), ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&by_notice).await.unwrap()), ["d2"]);
    let by_id = DeliveryQuery { id: Some("d1".into()), ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&by_id).await.unwrap()), ["d1"]);
    let one = DeliveryQuery { limit: 1, ..DeliveryQuery::default() };
    assert_eq!(ids(store.deliveries(&one).await.unwrap()), ["d2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_keeps_the_latest_revision_once_and_reports_exactly() {
    let dir = tempfile::tempdir().unwrap();
    the_store_keeps_the_latest_revision_once_and_reports_exactly(
        SqliteStore::open(dir.path().join("store.db")).unwrap(),
    )
    .await;
}

/// An amount the store cannot hold exactly is refused with a fatal error, not clamped to the
/// largest it can hold, and the batch writes nothing.
async fn an_amount_out_of_range_is_refused_and_writes_nothing<S: Store>(store: S) {
    store.migrate().await.unwrap();
    let huge = line("huge", "kid", 1, 90, dec!(10000000000000000), LineStatus::Approved, 0);
    let error =
        store.write(std::sync::Arc::new(StoreBatch { lines: vec![huge], ..StoreBatch::default() })).await.unwrap_err();
    assert!(!error.is_retriable(), "{error}");
    assert!(error.to_string().contains("out of the store's range"), "{error}");
    assert!(store.lines(&ReportQuery::default()).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_refuses_an_amount_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    an_amount_out_of_range_is_refused_and_writes_nothing(SqliteStore::open(dir.path().join("store.db")).unwrap()).await;
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn clickhouse_store_keeps_the_latest_revision_once_and_reports_exactly() {
        let url = services::clickhouse_url().expect("ClickHouse is required");
        let database = format!("contract_{}", ulid::Ulid::new().to_string().to_lowercase());
        let store = ClickHouseStore::connect(&url, &database).await.unwrap();
        the_store_keeps_the_latest_revision_once_and_reports_exactly(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn clickhouse_store_refuses_an_amount_out_of_range() {
        let url = services::clickhouse_url().expect("ClickHouse is required");
        let database = format!("contract_{}", ulid::Ulid::new().to_string().to_lowercase());
        an_amount_out_of_range_is_refused_and_writes_nothing(ClickHouseStore::connect(&url, &database).await.unwrap())
            .await;
    }
}
