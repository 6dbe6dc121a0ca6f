//! Crashes: the `attributor` and `settler` binaries run against Kafka (Tansu) and ClickHouse
//! while a busy day of traffic arrives, and are killed (SIGKILL, no clean stop) at random
//! points and started again. At the end the store holds exactly the oracle's lines: none
//! missing, none counted twice.
//!
//! The binaries are the workspace's own (`target/<profile>/attributor` and `settler`), built
//! by the README's test command before the tests run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use model::events::{TrackingEvent, wire};
use model::ports::log::Topics;
use model::ports::store::{ReportQuery, Store};
use model::stage::Shutdown;
use model::time::Timestamp;

fn binary(name: &str) -> PathBuf {
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// One worker process of this deployment.
struct Worker {
    name: &'static str,
    env: Vec<(String, String)>,
    child: Child,
}

impl Worker {
    fn start(name: &'static str, env: &[(String, String)]) -> Self {
        let child = Command::new(binary(name))
            .envs(env.iter().cloned())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self { name, env: env.to_vec(), child }
    }

    /// SIGKILL and start again.
    fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        *self = Self::start(self.name, &self.env);
    }

    /// SIGTERM; a clean stop exits 0.
    fn stop(&mut self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "{} stopped with {exit}", self.name);
    }
}

/// A failed test leaves no process behind.
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_at_random_points_lose_and_double_nothing() {
    let (log, topics) = kafka(4).await;
    let database = unique("crash_");
    let store = clickhouse_database(&database).await;
    let (stop, shutdown) = Shutdown::new();
    let program = follow(&log, &topics, &shutdown).await;
    load(&log, &topics, &program).await;
    let edge = start_edge(&log, &topics, &program, &shutdown).await;

    let env = environment(&topics, &database);
    let mut workers = [Worker::start("attributor", &env), Worker::start("settler", &env)];
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
    assert_store_matches(&store, &expected, Duration::from_secs(180)).await;
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

    for worker in &mut workers {
        worker.stop();
    }
    let _ = stop.send(true);
}
