//! The same traffic gives the same commission lines however the pipeline is deployed: with
//! 4 partitions and 2 instances of each worker or 1 and 1 (scale), and on Kafka + ClickHouse
//! or the embedded SQLite log and store (parity). Each run is also checked against the
//! oracle. Kafka (Tansu) and ClickHouse come from the README's test command. The reports the
//! program API serves from each store agree too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use model::events::CommissionLine;
use model::time::Span;
use pipeline::Shutdown;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;

const VISITORS: usize = 300;

/// One deployment's run: what it consumed, what it stored, what the oracle says.
struct Outcome {
    inputs: Inputs,
    lines: BTreeMap<model::DerivedId, CommissionLine>,
    expected: Expected,
    /// The API's reports, by path.
    reports: BTreeMap<&'static str, serde_json::Value>,
}

const REPORTS: [&str; 4] = [
    "/v1/reports/conversions?limit=1000",
    "/v1/reports/summary?by=offer",
    "/v1/reports/summary?by=member",
    "/v1/reports/rejections",
];

/// The program API over `store`, asked for every report.
async fn reports<L: EventLog, St: Store>(
    log: &L,
    store: &St,
    program: std::sync::Arc<pipeline::follow::SharedProgram>,
    topics: &Topics,
) -> BTreeMap<&'static str, serde_json::Value> {
    const KEY: &str = "parity-test-key";
    let state = api::ApiState::new(
        log.clone(),
        store.clone(),
        program,
        topics.clone(),
        api::auth::KeyRing::with_bootstrap(KEY),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve(listener, state, api::serve::ApiLimits::default(), async move {
        let _ = stopped.await;
    }));
    let mut reports = BTreeMap::new();
    for path in REPORTS {
        let response = request(address, "GET", path, &[("Authorization", &format!("Bearer {KEY}"))], "").await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert!(body["items"].as_array().is_some_and(|items| !items.is_empty()), "{path}: {body}");
        assert_eq!(body["next"], serde_json::Value::Null, "{path}: more than one page");
        reports.insert(path, body);
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    reports
}

/// Run a pipeline of `instances` workers on `log` and `store`: either a busy day through its
/// own edge, or a replay of another run's inputs. Three months pass; the stored lines must
/// become the oracle's.
async fn run<L: EventLog, St: Store>(
    log: L,
    store: St,
    topics: Topics,
    partitions: u32,
    instances: usize,
    replay_of: Option<&Inputs>,
) -> Outcome {
    let (stop, shutdown) = Shutdown::new();
    let clock = TestClock::default();
    let program = match replay_of {
        Some(inputs) => {
            replay(&log, &topics, inputs).await;
            follow(&log, &topics, &shutdown).await
        }
        None => {
            let program = follow(&log, &topics, &shutdown).await;
            load(&log, &topics, &program).await;
            program
        }
    };
    let workers = start_workers(&log, &store, &program, &topics, &clock, instances, &shutdown);
    if replay_of.is_none() {
        let edge = start_edge(&log, &topics, &program, &shutdown).await;
        for (order, verdict) in busy_day(edge, 2026, VISITORS).await {
            decide(&log, &topics, &order, verdict).await;
        }
    }
    clock.advance(Span::days(95));
    let inputs = inputs(&log, &topics, partitions).await;
    let expected = oracle(&inputs, &topics, clock.now());
    assert_store_matches(&store, &expected, Duration::from_secs(180)).await;
    let reports = reports(&log, &store, program, &topics).await;
    let _ = stop.send(true);
    for worker in workers {
        worker.await.unwrap().unwrap();
    }
    Outcome { inputs, lines: stored_lines(&store).await, expected, reports }
}

async fn on_kafka(partitions: u32, instances: usize, replay_of: Option<&Inputs>) -> Outcome {
    let (log, topics) = kafka(partitions).await;
    let store = clickhouse().await;
    run(log, store, topics, partitions, instances, replay_of).await
}

/// The day pays every kind of line, so agreeing on it means something.
fn assert_busy(outcome: &Outcome) {
    let mut kinds: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for line in outcome.expected.lines.values() {
        *kinds.entry((line.kind.as_str(), line.status.as_str())).or_default() += 1;
    }
    for kind in
        [("click", "approved"), ("conversion", "approved"), ("conversion", "rejected"), ("recurring", "approved")]
    {
        assert!(kinds.get(&kind).is_some_and(|count| *count >= 5), "too few {kind:?} lines: {kinds:?}");
    }
    assert!(outcome.expected.lines.values().any(|line| line.tier == 3), "no 3rd-tier line: {kinds:?}");
    assert!(outcome.inputs.events.len() > VISITORS, "{} events", outcome.inputs.events.len());
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn four_partitions_with_two_instances_of_each_worker_pay_the_same_lines_as_one_with_one() {
        let wide = on_kafka(4, 2, None).await;
        assert_busy(&wide);
        let narrow = on_kafka(1, 1, Some(&wide.inputs)).await;
        assert_eq!(narrow.inputs.events.len(), wide.inputs.events.len());
        assert_eq!(settled(&narrow.lines), settled(&wide.lines));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs Kafka and ClickHouse: the test command (deploy/test.sh) starts them and runs this"]
    async fn the_embedded_deployment_pays_the_same_lines_as_kafka_and_clickhouse() {
        let kafka = on_kafka(4, 1, None).await;
        assert_busy(&kafka);
        let (log, store, topics, _dir) = embedded(4).await;
        let embedded = run(log, store, topics, 4, 1, Some(&kafka.inputs)).await;
        assert_eq!(embedded.inputs.events.len(), kafka.inputs.events.len());
        assert_eq!(settled(&embedded.lines), settled(&kafka.lines));
        for path in REPORTS {
            assert_eq!(embedded.reports[path], kafka.reports[path], "{path}");
        }
    }
}
