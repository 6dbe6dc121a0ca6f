//! The whole pipeline on Kafka (Tansu) and ClickHouse, started by the README's test command:
//! a scripted day of traffic through the tracking edge ends with exactly the commission lines
//! the oracle computes from the same events, and the reports analysts read agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use model::events::Verdict;
use model::reports::{ReportQuery, SummaryBy};
use model::time::Span;
use pipeline::Shutdown;
use pipeline::ports::store::ReportStore;

/// (member, tier, kind, amount, status) of every line, sorted: what each member is paid.
fn payouts(expected: &Expected) -> Vec<(String, u8, String, String, String)> {
    let mut payouts: Vec<_> = expected
        .lines
        .values()
        .filter(|line| line.status != model::events::LineStatus::Withdrawn)
        .map(|line| {
            (
                line.member.to_string(),
                line.tier,
                line.kind.as_str().to_string(),
                line.amount.to_string(),
                line.status.as_str().to_string(),
            )
        })
        .collect();
    payouts.sort();
    payouts
}

fn row(member: &str, tier: u8, kind: &str, amount: &str, status: &str) -> (String, u8, String, String, String) {
    (member.into(), tier, kind.into(), amount.into(), status.into())
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn a_scripted_day_on_kafka_and_clickhouse_pays_exactly_what_the_oracle_computes() {
        let (log, topics) = kafka(4).await;
        let store = clickhouse().await;
        let (stop, shutdown) = Shutdown::new();
        let program = follow(&log, &topics, &shutdown).await;
        load(&log, &topics, &program).await;
        let clock = TestClock::default();
        let edge = start_edge(&log, &topics, &program, &shutdown).await;
        let workers = start_workers(&log, &store, &program, &topics, &clock, 1, &shutdown);

        scripted_day(edge).await;
        // The manager approves the pending sale once it is listed, and three months pass.
        wait_for_conversion(&store, "O5").await;
        decide(&log, &topics, "O5", Verdict::Approve).await;
        clock.advance(Span::days(95));

        let inputs = inputs(&log, &topics, 4).await;
        let expected = oracle(&inputs, &topics, clock.now());
        // The oracle itself pays what the rules say (RULES.md), so the comparison means something.
        assert_eq!(
            payouts(&expected),
            vec![
                row("grand", 3, "conversion", "2.50", "approved"),
                row("kid", 1, "conversion", "10.00", "approved"),
                row("kid", 1, "conversion", "15.00", "approved"),
                row("kid", 1, "conversion", "40.00", "approved"),
                row("kid", 1, "recurring", "3.00", "approved"),
                row("kid", 1, "recurring", "3.00", "approved"),
                row("kid", 1, "recurring", "3.00", "approved"),
                row("parent", 2, "conversion", "20.00", "approved"),
                row("parent", 2, "conversion", "5.00", "approved"),
                row("solo", 1, "click", "0.10", "approved"),
                row("solo", 1, "click", "0.10", "approved"),
                row("solo", 1, "click", "0.20", "approved"),
                row("solo", 1, "click", "0.20", "approved"),
                row("solo", 1, "conversion", "5.00", "approved"),
                row("solo", 1, "conversion", "8.00", "approved"),
            ]
        );
        assert_store_matches(&store, &expected, Duration::from_secs(90)).await;

        // What analysts read from the views.
        let report = store.conversion_report(&ReportQuery::default()).await.unwrap();
        let mut orders: Vec<_> = report
            .iter()
            .map(|row| {
                (
                    row.order_id.clone(),
                    row.member.to_string(),
                    row.sale_amount.to_string(),
                    row.commission.to_string(),
                    row.status.clone(),
                )
            })
            .collect();
        orders.sort();
        assert_eq!(
            orders,
            vec![
                ("O1".into(), "kid".into(), "129.90".into(), "10.00".into(), "approved".into()),
                ("O2".into(), "solo".into(), "50.00".into(), "5.00".into(), "approved".into()),
                ("O4".into(), "solo".into(), "80.00".into(), "8.00".into(), "approved".into()),
                ("O5".into(), "kid".into(), "200.00".into(), "40.00".into(), "approved".into()),
                ("O6".into(), "kid".into(), "50.00".into(), "15.00".into(), "approved".into()),
            ]
        );
        let mut rejections: Vec<_> = store
            .rejections(&ReportQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.reason, row.offer, row.conversions))
            .collect();
        rejections.sort();
        assert_eq!(
            rejections,
            // O1's pixel lost the order to kid's code postback (the advertiser's own word).
            vec![
                ("no_click_in_window".into(), "store".into(), 1),
                ("superseded_by_postback".into(), "store".into(), 1)
            ]
        );
        let summary = store.summary(&ReportQuery::default(), SummaryBy::Member).await.unwrap();
        let solo = summary.iter().find(|row| row.key == "solo").unwrap();
        // Six clicks on the clicks offer less the bot, plus one on the store; four unique CPC visitors.
        assert_eq!((solo.clicks, solo.unique_clicks, solo.conversions), (6, 5, 2));
        assert_eq!(solo.commission.to_string(), "13.60");

        let _ = stop.send(true);
        for worker in workers {
            worker.await.unwrap().unwrap();
        }
    }
}
