//! Fault drills of the scale deployment (docs/RELIABILITY.md): a bounded load of clicks and
//! click-id postbacks runs through the edge while ClickHouse, or the broker, is stopped for
//! 10 s and started again, or a settler is killed during a ClickHouse outage. Each drill has
//! its own ClickHouse server and Tansu broker (the ones the test command installs) so it can
//! stop them; the attributor and settler are the workspace's binaries, restarted when they
//! exit as a supervisor would. Each ends with the store equal to the oracle of what the log
//! holds, every acknowledged postback in it once, and every postback refused with 503 absent
//! from the log until the advertiser's retry. One drill SIGKILLs the notifier twice while it
//! delivers a webhook for every commission line: every line's webhook still arrives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters::log::kafka::{KafkaConfig, KafkaLog};
use adapters::store::clickhouse::ClickHouseStore;
use common::*;
use model::events::{ConversionStatus, TrackingEvent, wire};
use model::reports::ReportQuery;
use model::time::Timestamp;
use pipeline::Shutdown;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::{ReportStore, StageStore};
use testkit::processes::{ServiceProcess, Worker, clickhouse_server, tansu_broker};
use testkit::receiver::{Receiver, Reply};

/// How long the load runs, when the outage starts within it, and how long it lasts.
const LOAD: Duration = Duration::from_secs(24);
const OUTAGE_AT: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(10);
/// Shoppers at once, each a click then a postback, with a pause between shoppers.
const SHOPPERS: usize = 6;
const PAUSE: Duration = Duration::from_millis(150);
/// At most this many requests in a drill.
const MAX_REQUESTS: usize = 6_000;
/// The edge's producer gives up on a record after this long (`message.timeout.ms`): a
/// postback waits that long for the broker, then answers 503.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);
const PARTITIONS: u32 = 2;

#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    answered: BTreeMap<u16, usize>,
    /// Orders whose postback was acknowledged (200).
    acknowledged: BTreeSet<String>,
    /// When each acknowledged postback was answered.
    acknowledged_at: BTreeMap<String, Instant>,
    /// Postbacks answered 503 (with `Retry-After`), to send again.
    refused: Vec<(String, String)>,
}

/// The pipeline of one drill: its own broker and ClickHouse, the edge in this process, the
/// attributor and settler binaries.
struct Drill {
    name: &'static str,
    dir: std::path::PathBuf,
    clickhouse: ServiceProcess,
    broker: ServiceProcess,
    log: KafkaLog,
    topics: Topics,
    store: ClickHouseStore,
    edge: SocketAddr,
    workers: Vec<Worker>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// The worker that is the notifier, in drills that run one.
const NOTIFIER: usize = 2;

impl Drill {
    /// With `webhook`, a webhook on it for every commission line and a notifier worker.
    async fn start(name: &'static str, webhook: Option<String>) -> Self {
        trace();
        // Kept when the drill fails, for the workers' and services' logs.
        let dir = tempfile::tempdir().unwrap().keep();
        let (clickhouse, clickhouse_url) = clickhouse_server(&dir.join("clickhouse"));
        let (broker, brokers) = tansu_broker(&dir.join("tansu"));
        let topics = Topics::with_prefix(&format!("{name}."));
        let mut config = KafkaConfig::new(brokers.clone()).bundling(&topics);
        config.delivery_timeout = DELIVERY_TIMEOUT;
        let log = KafkaLog::connect(config).unwrap();
        log.create_topics(&topics.specs(PARTITIONS)).await.unwrap();
        let store = ClickHouseStore::connect(&clickhouse_url, "clickledger").await.unwrap();
        store.migrate().await.unwrap();

        let (stop, shutdown) = Shutdown::new();
        let program = follow(&log, &topics, &shutdown).await;
        load(&log, &topics, &program).await;
        if let Some(url) = &webhook {
            let file = model::program::ProgramFile {
                webhooks: vec![model::program::Webhook {
                    id: model::ids::WebhookId::new("drill").unwrap(),
                    url: url.clone(),
                    events: vec![model::events::NoticeKind::CommissionCreated],
                    secret: "whsec_drill_0123456789abcdef".into(),
                    active: true,
                    description: String::new(),
                }],
                ..Default::default()
            };
            pipeline::follow::load_program_file(&log, &topics, &program, file, "drill").await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let edge_address = listener.local_addr().unwrap();
        let mut edge_config = ingest::EdgeConfig::new(topics.clone(), keys());
        edge_config.postback_ack_timeout = Duration::from_secs(1);
        let edge = ingest::Edge::new(edge_config, log.clone(), program.clone());
        tokio::spawn(ingest::run(listener, edge, shutdown.clone().wait()));

        let env: Vec<(String, String)> = [
            ("CLICKLEDGER_KAFKA_BROKERS", brokers.as_str()),
            ("CLICKLEDGER_CLICKHOUSE_URL", clickhouse_url.as_str()),
            ("CLICKLEDGER_CLICKHOUSE_DATABASE", "clickledger"),
            ("CLICKLEDGER_TOPIC_PREFIX", &topics.prefix),
            ("CLICKLEDGER_PARTITIONS", &PARTITIONS.to_string()),
            ("CLICKLEDGER_CLICK_KEYS", CLICK_KEYS),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
        let log_file = |worker: &str| dir.join(format!("{worker}.log"));
        let mut workers = vec![
            Worker::start("attributor", &env, log_file("attributor")),
            Worker::start("settler", &env, log_file("settler")),
        ];
        if webhook.is_some() {
            let mut env = env.clone();
            for (name, value) in [
                ("CLICKLEDGER_NOTIFY_ALLOW", "loopback"),
                ("CLICKLEDGER_NOTIFY_BACKOFF", "200ms"),
                ("CLICKLEDGER_NOTIFY_TIMEOUT", "2s"),
            ] {
                env.push((name.to_string(), value.to_string()));
            }
            workers.push(Worker::start("notifier", &env, log_file("notifier")));
        }
        Self { name, dir, clickhouse, broker, log, topics, store, edge: edge_address, workers, stop }
    }

    /// Start again whichever worker exited, as a supervisor would.
    fn supervise(&mut self) {
        for worker in &mut self.workers {
            worker.restart_if_exited();
        }
    }

    /// The bounded load, in the background.
    fn load(&self, tally: &Arc<Mutex<Tally>>) -> tokio::task::JoinHandle<()> {
        let (edge, tally, name) = (self.edge, tally.clone(), self.name);
        tokio::spawn(async move {
            let deadline = Instant::now() + LOAD;
            let shoppers = (0..SHOPPERS).map(|shopper| {
                let tally = tally.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while Instant::now() < deadline && tally.lock().unwrap().requests < MAX_REQUESTS {
                        n += 1;
                        shop(edge, &tally, &format!("{name}-{shopper}-{n}"), n).await;
                        tokio::time::sleep(PAUSE).await;
                    }
                })
            });
            for shopper in shoppers.collect::<Vec<_>>() {
                shopper.await.unwrap();
            }
        })
    }

    /// Until every postback acknowledged before `since` is in the store: how long after
    /// `since` that was.
    async fn caught_up(&mut self, tally: &Arc<Mutex<Tally>>, since: Instant) -> Duration {
        let wanted: BTreeSet<String> = tally
            .lock()
            .unwrap()
            .acknowledged_at
            .iter()
            .filter(|(_, at)| **at <= since)
            .map(|(order, _)| order.clone())
            .collect();
        loop {
            self.supervise();
            if let Ok(rows) = self.store.conversions(&ReportQuery::default()).await {
                let stored: BTreeSet<String> =
                    rows.iter().filter_map(|row| row.conversion.order_id.as_ref().map(|id| id.to_string())).collect();
                if wanted.is_subset(&stored) {
                    return since.elapsed();
                }
            }
            assert!(
                since.elapsed() < Duration::from_secs(240),
                "{}: the store never caught up\n{}\n{}",
                self.name,
                self.workers[0].troubles(),
                self.workers[1].troubles()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Until the receiver took a `commission.created` webhook for every line in the store (once
    /// the store stops changing): nothing missed. Repeats keep their delivery id. Returns the
    /// figures.
    async fn every_line_told(&mut self, receiver: &Receiver) -> String {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            self.supervise();
            let lines: BTreeSet<String> = self
                .store
                .lines(&ReportQuery::default())
                .await
                .unwrap()
                .iter()
                .map(|line| line.id.to_string())
                .collect();
            let received = receiver.received();
            let taken: BTreeMap<String, usize> = received
                .iter()
                .filter(|request| request.attempt > 1)
                .map(|request| {
                    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
                    body["data"]["commission"]["id"].as_str().unwrap().to_string()
                })
                .fold(BTreeMap::new(), |mut taken, line| {
                    *taken.entry(line).or_default() += 1;
                    taken
                });
            let missing: Vec<&String> = lines.iter().filter(|line| !taken.contains_key(*line)).collect();
            if !lines.is_empty() && missing.is_empty() {
                let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                for request in &received {
                    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
                    ids.entry(body["id"].as_str().unwrap().to_string()).or_default().insert(request.delivery());
                }
                assert!(ids.values().all(|deliveries| deliveries.len() == 1), "one delivery id per event");
                let again = taken.values().map(|count| count - 1).sum::<usize>();
                return format!(
                    "; {} lines, each told (webhook taken {} times, {again} repeats after the kills); \
                     {} requests, {} notifier restarts",
                    lines.len(),
                    taken.values().sum::<usize>(),
                    received.len(),
                    self.workers[NOTIFIER].restarts
                );
            }
            assert!(
                Instant::now() < deadline,
                "{}: {} of {} lines never told\n{}",
                self.name,
                missing.len(),
                lines.len(),
                self.workers[NOTIFIER].troubles()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Orders of the conversions in the log's events topic.
    async fn orders_in_log(&self) -> Vec<String> {
        inputs(&self.log, &self.topics, PARTITIONS)
            .await
            .events
            .iter()
            .filter_map(|record| match wire::decode::<TrackingEvent>(&record.payload).unwrap() {
                TrackingEvent::Conversion(conversion) => conversion.order_id.map(|id| id.to_string()),
                TrackingEvent::Click(_) => None,
            })
            .collect()
    }

    /// The end of every drill: refused postbacks were not written, and their retries are; the
    /// store equals the oracle of the log, with every acknowledged postback once.
    async fn finish(mut self, tally: Arc<Mutex<Tally>>, recovery: Duration) -> String {
        // A record the producer could not deliver within its timeout failed for good: after
        // that, the log holds none of the refused postbacks.
        tokio::time::sleep(DELIVERY_TIMEOUT + Duration::from_secs(2)).await;
        let refused: Vec<(String, String)> = tally.lock().unwrap().refused.clone();
        let in_log: BTreeSet<String> = self.orders_in_log().await.into_iter().collect();
        for (order, _) in &refused {
            assert!(!in_log.contains(order), "{}: {order} was answered 503 but is in the log", self.name);
        }
        // The advertiser sends them again, as `Retry-After` asks.
        for (order, query) in &refused {
            let response = postback(self.edge, query).await;
            assert_eq!(response.status, 200, "{}: the retry of {order}: {}", self.name, response.body);
            tally.lock().unwrap().acknowledged.insert(order.clone());
        }

        let inputs = inputs(&self.log, &self.topics, PARTITIONS).await;
        let expected = oracle(&inputs, &self.topics, Timestamp::now());
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            self.supervise();
            match wait_for_store(&self.store, &expected, Duration::from_secs(5)).await {
                Ok(()) => break,
                Err(mismatch) if Instant::now() > deadline => panic!(
                    "{}: {}\n{}\n{}",
                    self.name,
                    mismatch.report,
                    self.workers[0].troubles(),
                    self.workers[1].troubles()
                ),
                Err(_) => {}
            }
        }
        // Every acknowledged postback is one conversion, and nothing else is; an order is
        // attributed once at most (the store offer's daily cap of 60 rejects the rest).
        let rows = self.store.conversions(&ReportQuery::default()).await.unwrap();
        let mut conversions: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            *conversions.entry(row.conversion.order_id.as_ref().unwrap().to_string()).or_default() += 1;
        }
        let tally = tally.lock().unwrap();
        assert!(conversions.values().all(|count| *count == 1), "{}: an order counted twice", self.name);
        assert_eq!(conversions.keys().cloned().collect::<BTreeSet<_>>(), tally.acknowledged, "{}", self.name);
        let attributed = rows.iter().filter(|row| row.status == ConversionStatus::Attributed).count();
        assert_eq!(attributed, tally.acknowledged.len().min(60), "{}: attributed within the cap", self.name);
        let restarts: u32 = self.workers.iter().map(|worker| worker.restarts).sum();
        for worker in &mut self.workers {
            worker.stop();
        }
        let _ = self.stop.send(true);
        self.clickhouse.stop();
        self.broker.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let ok = |status: u16| tally.answered.get(&status).copied().unwrap_or(0);
        format!(
            "{}: {} requests, {} answered 2xx/302, {} answered 503 (and retried: {}), {} conversions, \
             recovered {:.1} s after the service came back, {} worker restarts",
            self.name,
            tally.requests,
            ok(200) + ok(302),
            ok(503),
            tally.refused.len(),
            tally.acknowledged.len(),
            recovery.as_secs_f64(),
            restarts
        )
    }
}

/// One shopper: a click on kid's or solo's store link, then the advertiser's postback of the
/// sale by click id.
async fn shop(edge: SocketAddr, tally: &Mutex<Tally>, order: &str, n: usize) {
    let member = if n % 2 == 0 { "kid" } else { "solo" };
    let click = get(edge, &format!("/c?offer=store&member={member}")).await;
    record(tally, click.status);
    assert_eq!(click.status, 302, "click: {}", click.body);
    let query = format!("click_id={}&order_id={order}&amount={}.{:02}", click.click_id(), 20 + n % 80, n % 100);
    let sale = postback(edge, &query).await;
    record(tally, sale.status);
    let mut tally = tally.lock().unwrap();
    match sale.status {
        200 => {
            tally.acknowledged.insert(order.to_string());
            tally.acknowledged_at.insert(order.to_string(), Instant::now());
        }
        503 => {
            assert!(sale.header("retry-after").is_some(), "a 503 without Retry-After: {}", sale.body);
            tally.refused.push((order.to_string(), query));
        }
        status => panic!("postback {order}: {status} {}", sale.body),
    }
}

fn record(tally: &Mutex<Tally>, status: u16) {
    let mut tally = tally.lock().unwrap();
    tally.requests += 1;
    *tally.answered.entry(status).or_default() += 1;
}

/// Wait until `at` (from `started`), supervising the workers meanwhile.
async fn until(drill: &mut Drill, started: Instant, at: Duration) {
    while started.elapsed() < at {
        drill.supervise();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a drill breaks, 5 s into the load, for 10 s.
#[derive(Debug, Clone, Copy)]
enum Fault {
    ClickHouseStopped,
    BrokerStopped,
    /// ClickHouse stopped, and 3 s later the settler SIGKILLed and started again.
    SettlerKilledDuringClickHouseOutage,
    /// The notifier SIGKILLed, and again 5 s after it came back (nothing else stops).
    NotifierKilled,
}

/// Run a drill: the load, the fault, the recovery; then `check` the tally before the common
/// end (`Drill::finish`). Returns the drill's figures.
async fn run(name: &'static str, fault: Fault, check: impl FnOnce(&Tally)) -> String {
    // Each delivery fails its first attempt, so a kill also finds deliveries waiting to retry.
    let receiver =
        Receiver::start(|request| if request.attempt == 1 { Reply::Status(500) } else { Reply::Status(200) }).await;
    let webhook = matches!(fault, Fault::NotifierKilled).then(|| receiver.url("/hooks"));
    let mut drill = Drill::start(name, webhook).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let load = drill.load(&tally);
    until(&mut drill, started, OUTAGE_AT).await;
    match fault {
        Fault::BrokerStopped => drill.broker.stop(),
        Fault::ClickHouseStopped | Fault::SettlerKilledDuringClickHouseOutage => drill.clickhouse.stop(),
        Fault::NotifierKilled => {
            drill.workers[NOTIFIER].kill();
            drill.workers[NOTIFIER].restart();
        }
    }
    if let Fault::SettlerKilledDuringClickHouseOutage = fault {
        until(&mut drill, started, OUTAGE_AT + Duration::from_secs(3)).await;
        drill.workers[1].kill();
        drill.workers[1].restart();
    }
    if let Fault::NotifierKilled = fault {
        until(&mut drill, started, OUTAGE_AT + Duration::from_secs(5)).await;
        drill.workers[NOTIFIER].kill();
        drill.workers[NOTIFIER].restart();
    }
    until(&mut drill, started, OUTAGE_AT + OUTAGE).await;
    match fault {
        Fault::BrokerStopped => drill.broker.start(),
        Fault::ClickHouseStopped | Fault::SettlerKilledDuringClickHouseOutage => drill.clickhouse.start(),
        Fault::NotifierKilled => {}
    }
    let back = Instant::now();
    let recovery = drill.caught_up(&tally, back).await;
    load.await.unwrap();
    check(&tally.lock().unwrap());
    let delivered = match fault {
        Fault::NotifierKilled => drill.every_line_told(&receiver).await,
        _ => String::new(),
    };
    format!("{}{delivered}", drill.finish(tally, recovery).await)
}

/// The tests that need the real services of the test command (docs/DECISIONS.md, "Real
/// services in tests"): skipped by a plain `cargo test`, run by `deploy/test.sh`.
mod needs_services {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs clickhouse-server and tansu: the test command (deploy/test.sh) installs them"]
    async fn clickhouse_stopped_for_ten_seconds_under_load_loses_and_doubles_nothing() {
        let figures = run("clickhouse-outage", Fault::ClickHouseStopped, |tally| {
            assert!(tally.refused.is_empty(), "the edge does not need ClickHouse: {:?}", tally.refused);
        })
        .await;
        eprintln!("{figures}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs clickhouse-server and tansu: the test command (deploy/test.sh) installs them"]
    async fn the_broker_stopped_for_ten_seconds_under_load_refuses_postbacks_and_loses_nothing_acknowledged() {
        let figures = run("broker-outage", Fault::BrokerStopped, |tally| {
            assert!(!tally.refused.is_empty(), "postbacks during the outage are refused with 503");
        })
        .await;
        eprintln!("{figures}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs clickhouse-server and tansu: the test command (deploy/test.sh) installs them"]
    async fn the_notifier_killed_twice_under_load_misses_no_webhook() {
        let figures = run("notifier-killed", Fault::NotifierKilled, |tally| {
            assert!(tally.refused.is_empty(), "the edge does not need the notifier: {:?}", tally.refused);
        })
        .await;
        eprintln!("{figures}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs clickhouse-server and tansu: the test command (deploy/test.sh) installs them"]
    async fn a_settler_killed_during_a_clickhouse_outage_loses_and_doubles_nothing() {
        let figures = run("settler-killed", Fault::SettlerKilledDuringClickHouseOutage, |tally| {
            assert!(tally.refused.is_empty(), "the edge does not need ClickHouse: {:?}", tally.refused);
        })
        .await;
        eprintln!("{figures}");
    }
}
