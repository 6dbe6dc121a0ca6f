//! Crashes: the `attributor` and `settler` binaries run against Kafka (Tansu) and ClickHouse
//! while a busy day of traffic arrives, and are killed (SIGKILL, no clean stop) at random
//! points and started again. At the end the store holds exactly the oracle's lines: none
//! missing, none counted twice.
//!
//! The binaries are the workspace's own (`target/<profile>/attributor` and `settler`), built
//! by the README's test command before the tests run. The last test starts every binary of
//! the workspace with a mistyped setting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use model::events::{TrackingEvent, wire};
use model::reports::ReportQuery;
use model::time::Timestamp;
use pipeline::Shutdown;
use pipeline::ports::log::Topics;
use pipeline::ports::store::ReportStore;
use testkit::processes::{Worker, binary};

fn environment(topics: &Topics, database: &str) -> Vec<(String, String)> {
    vec![
        ("CLICKLEDGER_KAFKA_BROKERS".into(), adapters::services::kafka_brokers().unwrap()),
        ("CLICKLEDGER_CLICKHOUSE_URL".into(), adapters::services::clickhouse_url().unwrap()),
        ("CLICKLEDGER_CLICKHOUSE_DATABASE".into(), database.into()),
        ("CLICKLEDGER_TOPIC_PREFIX".into(), topics.prefix.to_string()),
        ("CLICKLEDGER_PARTITIONS".into(), "4".into()),
        ("CLICKLEDGER_CLICK_KEYS".into(), CLICK_KEYS.into()),
    ]
}

/// A mistyped wire version setting stops every binary at its start, naming the setting,
/// instead of being read as "version 2" (docs/EVENTS.md, upgrading).
#[test]
fn every_binary_refuses_an_unknown_wire_version_setting() {
    for name in ["ingest", "attributor", "settler", "clickledger", "clickledger-api"] {
        let output = Command::new(binary(name))
            .env("CLICKLEDGER_WIRE_VERSION", "json")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} started");
        assert!(
            said.contains("CLICKLEDGER_WIRE_VERSION=json: the wire versions this build writes are 1 and 2"),
            "{name}: {said}"
        );
    }
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn workers_killed_at_random_points_lose_and_double_nothing() {
        let (log, topics) = kafka(4).await;
        let database = unique("crash_");
        let store = clickhouse_database(&database).await;
        let (stop, shutdown) = Shutdown::new();
        let program = follow(&log, &topics, &shutdown).await;
        load(&log, &topics, &program).await;
        let edge = start_edge(&log, &topics, &program, &shutdown).await;

        let env = environment(&topics, &database);
        let log_file = |name: &str| std::env::temp_dir().join(format!("{database}-{name}.log"));
        let mut workers = [
            Worker::start("attributor", &env, log_file("attributor")),
            Worker::start("settler", &env, log_file("settler")),
        ];
        let seed = Timestamp::now().millis() as u64;
        eprintln!("crash schedule seed {seed}");
        let traffic = tokio::spawn({
            let (log, topics) = (log.clone(), topics.clone());
            async move {
                for (order, verdict) in busy_day(edge, seed, 600).await {
                    decide(&log, &topics, &order, verdict).await;
                }
            }
        });
        let mut dice = Dice::new(seed);
        let mut crashes = 0;
        while !traffic.is_finished() || crashes < 6 {
            tokio::time::sleep(Duration::from_millis(200 + dice.next() % 1800)).await;
            let victim = (dice.next() % 2) as usize;
            workers[victim].crash_and_restart();
            crashes += 1;
            assert!(crashes < 60, "the traffic never finished");
        }
        traffic.await.unwrap();

        let inputs = inputs(&log, &topics, 4).await;
        let expected = oracle(&inputs, &topics, Timestamp::now());
        assert!(expected.lines.len() > 300, "{} lines", expected.lines.len());
        if let Err(mismatch) = wait_for_store(&store, &expected, Duration::from_secs(180)).await {
            panic!(
                "{}\nwhat the log holds about these orders:{}\nwhat the workers logged:\n{}\n{}",
                mismatch.report,
                order_history(&log, &topics, 4, &mismatch.order_keys).await,
                workers[0].troubles(),
                workers[1].troubles()
            );
        }
        // Every conversion row too: each once, with its final status.
        let conversions: std::collections::BTreeMap<String, String> = store
            .conversions(&ReportQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.conversion.id.to_string(), format!("{:?}", row.status)))
            .collect();
        let wanted: std::collections::BTreeMap<String, String> =
            expected.conversions.iter().map(|(id, row)| (id.clone(), format!("{:?}", row.status))).collect();
        assert_eq!(conversions, wanted);
        // Nothing the edge acknowledged is missing from the log, and nothing is in it twice.
        let ids: std::collections::BTreeSet<_> = inputs
            .events
            .iter()
            .map(|record| match wire::decode::<TrackingEvent>(&record.payload).unwrap() {
                TrackingEvent::Click(click) => click.id,
                TrackingEvent::Conversion(conversion) => conversion.id,
            })
            .collect();
        assert_eq!(ids.len(), inputs.events.len());
        for worker in &workers {
            assert_eq!(
                worker.errors(),
                Vec::<String>::new(),
                "{} ({}) logged errors",
                worker.name,
                worker.log.display()
            );
        }

        for worker in &mut workers {
            worker.stop();
            let _ = std::fs::remove_file(&worker.log);
        }
        let _ = stop.send(true);
    }

    /// A settler stopped and started again between a sale and what follows it (a decision on a
    /// pending sale attributed by click id, a refund of a sale attributed by the visitor's cookie)
    /// applies what follows to the sale: the saved state of every order reads back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn a_settler_restarted_between_a_sale_and_its_decision_or_refund_applies_them() {
        let (log, store, topics, _dir) = embedded(2).await;
        let (stop, shutdown) = Shutdown::new();
        let program = follow(&log, &topics, &shutdown).await;
        load(&log, &topics, &program).await;
        let edge = start_edge(&log, &topics, &program, &shutdown).await;
        let attributor = start_attributor(&log, &store, &program, &topics, &shutdown);
        let clock = TestClock::default();
        let (stop_settler, settler_shutdown) = Shutdown::new();
        let first = start_settler(&log, &store, &program, &topics, &clock, &settler_shutdown);

        let click = get(edge, "/c?offer=pend&member=kid").await;
        let sale = postback(edge, &format!("click_id={}&order_id=P1&amount=150.00", click.click_id())).await;
        assert_eq!(sale.status, 200, "{}", sale.body);
        let visitor = get(edge, "/c?offer=store&member=solo").await.visitor();
        let pixel = get_with_cookie(edge, "/px?offer=store&order_id=S1&amount=80.00", &visitor).await;
        assert_eq!(pixel.status, 200);
        wait_for_conversion(&store, "P1").await;
        wait_for_conversion(&store, "S1").await;
        let _ = stop_settler.send(true);
        first.await.unwrap().unwrap();

        let (stop_settler, settler_shutdown) = Shutdown::new();
        let second = start_settler(&log, &store, &program, &topics, &clock, &settler_shutdown);
        decide(&log, &topics, "P1", model::events::Verdict::Approve).await;
        let refund = post_form(edge, "/pb/refund", "order_id=S1&amount=20.00&refund_id=r1").await;
        assert_eq!(refund.status, 200, "{}", refund.body);

        let inputs = inputs(&log, &topics, 2).await;
        let expected = oracle(&inputs, &topics, Timestamp::now());
        let mut paid: Vec<_> = settled(&expected.lines).into_values().collect();
        paid.sort();
        let row = |member: &str, tier: u8, amount: &str, status: &str, kind: &str| {
            (member.to_string(), tier, amount.to_string(), status.to_string(), kind.to_string())
        };
        // pend: 20% of 150.00, approved, and half of it for kid's parent; store: 10% of the
        // 60.00 left of 80.00 after the refund.
        assert_eq!(
            paid,
            vec![
                row("kid", 1, "30.00", "approved", "conversion"),
                row("parent", 2, "15.00", "approved", "conversion"),
                row("solo", 1, "6.00", "approved", "conversion"),
            ],
            "what the rules pay"
        );
        let mut second = second;
        tokio::select! {
            () = assert_store_matches(&store, &expected, Duration::from_secs(60)) => {}
            stopped = &mut second => panic!("the settler stopped: {stopped:?}"),
        }

        let _ = stop_settler.send(true);
        second.await.unwrap().unwrap();
        let _ = stop.send(true);
        attributor.await.unwrap().unwrap();
    }
}
