//! Harness of the end-to-end tests: the pipeline's parts in this process on any log and store,
//! a raw HTTP client, reading topics back, and the comparison with the oracle.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use clickledger::oracle::{self, Expected, Inputs};
use model::clickid::ClickKeyRing;
use model::events::{CommissionLine, OrderEvent, wire};
use model::program::{Program, ProgramFile};
use model::reports::ReportQuery;
use model::time::{Span, Timestamp};
use pipeline::follow::{SharedProgram, follow_program};
use pipeline::ports::log::{Delivered, EventLog, LogConsumer, PartitionId, Record, Topics};
#[allow(unused_imports)]
use pipeline::ports::store::{ReportStore, StageStore, Store};
use pipeline::{Clock, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PROGRAM: &str = include_str!("program.toml");
pub const CLICK_KEYS: &str = "1:end-to-end-click-key-end-to-end-click-key";
pub const SECRET: &str = "acme-postback-secret-0001";

pub fn keys() -> ClickKeyRing {
    ClickKeyRing::parse(CLICK_KEYS).unwrap()
}

pub fn program_file() -> ProgramFile {
    ProgramFile::from_toml(PROGRAM).unwrap()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", model::EventId::new().to_string().to_lowercase())
}

/// A clock that runs with real time plus an offset the test moves.
#[derive(Clone, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        Arc::new(move || Timestamp::from_millis(Timestamp::now().millis() + offset.load(Ordering::Relaxed)))
    }

    pub fn advance(&self, span: Span) {
        self.0.fetch_add(span.millis(), Ordering::Relaxed);
    }

    pub fn now(&self) -> Timestamp {
        (self.clock())()
    }
}

/// Follow the program of `log` until it has every record written so far.
pub async fn follow<L: EventLog>(log: &L, topics: &Topics, shutdown: &Shutdown) -> Arc<SharedProgram> {
    let program = SharedProgram::new();
    tokio::spawn(follow_program(log.clone(), topics.program.clone(), program.clone(), shutdown.clone().wait()));
    while !program.is_loaded() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    program
}

/// Every record of a topic up to each partition's end, by a fresh consumer group.
pub async fn read_topic<L: EventLog>(log: &L, topic: &Arc<str>, partitions: u32) -> Vec<Delivered> {
    let mut remaining: BTreeMap<u32, u64> = BTreeMap::new();
    for partition in 0..partitions {
        let end = log.end_offset(&PartitionId { topic: topic.clone(), partition }).await.unwrap();
        if end > 0 {
            remaining.insert(partition, end);
        }
    }
    let mut consumer = log.consumer(&unique("reader-"), &[topic.clone()]).unwrap();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "could not read {topic} to its end");
        for record in consumer.poll(2000, Duration::from_millis(100)).await.unwrap().records {
            if remaining.get(&record.partition).is_some_and(|end| record.offset + 1 >= *end) {
                remaining.remove(&record.partition);
            }
            records.push(record);
        }
    }
    records.sort_by_key(|record| (record.partition, record.offset));
    records
}

/// What the pipeline consumed from outside itself, read back from the log.
pub async fn inputs<L: EventLog>(log: &L, topics: &Topics, partitions: u32) -> Inputs {
    let events = read_topic(log, &topics.events, partitions).await;
    let order_changes = read_topic(log, &topics.orders, partitions)
        .await
        .into_iter()
        .filter(|record| {
            matches!(
                wire::decode::<OrderEvent>(&record.payload),
                Ok(OrderEvent::Refund(_) | OrderEvent::Cancel(_) | OrderEvent::Decision(_))
            )
        })
        .collect();
    let program = read_topic(log, &topics.program, 1).await;
    Inputs { events, order_changes, program }
}

/// Append `inputs` to another deployment's topics, key by key, as the edge and API did.
pub async fn replay<L: EventLog>(log: &L, topics: &Topics, inputs: &Inputs) {
    let records = |records: &[Delivered], topic: &Arc<str>| -> Vec<Record> {
        records
            .iter()
            .map(|record| Record { topic: topic.clone(), key: record.key.clone(), payload: record.payload.clone() })
            .collect()
    };
    log.append(records(&inputs.program, &topics.program)).await.unwrap();
    for chunk in records(&inputs.events, &topics.events).chunks(500) {
        log.append(chunk.to_vec()).await.unwrap();
    }
    log.append(records(&inputs.order_changes, &topics.orders)).await.unwrap();
}

/// The program the inputs build.
pub fn program_of(inputs: &Inputs) -> Program {
    let mut program = Program::new();
    for record in &inputs.program {
        let record: model::program::ProgramRecord = wire::decode(&record.payload).unwrap();
        program.follow(record.change).unwrap();
    }
    program
}

/// What each line pays, comparable across runs (revisions may differ, results may not).
/// Withdrawn lines are left out: they are the lines of a conversion that won its order only
/// until an earlier one of the same order arrived, so whether they exist depends on arrival
/// order (ARCHITECTURE.md, "One commission per order"); they pay nothing.
pub fn settled(
    lines: &BTreeMap<model::DerivedId, CommissionLine>,
) -> BTreeMap<String, (String, u8, String, String, String)> {
    lines
        .iter()
        .filter(|(_, line)| line.status != model::events::LineStatus::Withdrawn)
        .map(|(id, line)| {
            (
                id.to_string(),
                (
                    line.member.to_string(),
                    line.tier,
                    line.amount.to_string(),
                    line.status.as_str().to_string(),
                    line.kind.as_str().to_string(),
                ),
            )
        })
        .collect()
}

pub async fn stored_lines<St: Store>(store: &St) -> BTreeMap<model::DerivedId, CommissionLine> {
    store.lines(&ReportQuery::default()).await.unwrap().into_iter().map(|line| (line.id.clone(), line)).collect()
}

/// Lines that differ from the oracle's after the wait: a report of each difference, with the
/// stored and the expected line in full, and the orders they belong to.
pub struct Mismatch {
    pub report: String,
    pub order_keys: std::collections::BTreeSet<String>,
}

/// Wait until the store's lines are the oracle's; on timeout, the differences.
pub async fn wait_for_store<St: Store>(store: &St, expected: &Expected, patience: Duration) -> Result<(), Mismatch> {
    let want = settled(&expected.lines);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let stored = stored_lines(store).await;
        let have = settled(&stored);
        if have == want {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let differing: Vec<&String> = want
                .keys()
                .chain(have.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|id| want.get(*id) != have.get(*id))
                .collect();
            let mut report = format!("{} lines differ from the oracle:", differing.len());
            let mut order_keys = std::collections::BTreeSet::new();
            for id in differing {
                report.push_str(&format!("\n{id}: expected {:?}, stored {:?}", want.get(id), have.get(id)));
                let full = |lines: &BTreeMap<model::DerivedId, CommissionLine>| {
                    lines.iter().find(|(key, _)| key.to_string() == *id).map(|(_, line)| line.clone())
                };
                for (side, line) in [("expected", full(&expected.lines)), ("stored", full(&stored))] {
                    if let Some(line) = line {
                        report.push_str(&format!("\n  {side}: {line:?}"));
                        order_keys.extend(line.order_key.map(|key| key.to_string()));
                    }
                }
            }
            return Err(Mismatch { report, order_keys });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the store's lines are the oracle's; on timeout, fail with the differences.
pub async fn assert_store_matches<St: Store>(store: &St, expected: &Expected, patience: Duration) {
    if let Err(mismatch) = wait_for_store(store, expected, patience).await {
        panic!("{}", mismatch.report);
    }
}

/// Every record of `orders` and `ledger` about these orders, in log order per partition: what
/// a mismatch's orders went through.
pub async fn order_history<L: EventLog>(
    log: &L,
    topics: &Topics,
    partitions: u32,
    order_keys: &std::collections::BTreeSet<String>,
) -> String {
    let mut history = String::new();
    for record in read_topic(log, &topics.orders, partitions).await {
        if order_keys.contains(&record.key) {
            let event = wire::decode::<OrderEvent>(&record.payload)
                .map(|event| describe_order_event(&event))
                .unwrap_or_else(|error| format!("undecodable: {error}"));
            history.push_str(&format!("\norders {}/{}: {event}", record.partition, record.offset));
        }
    }
    for record in read_topic(log, &topics.ledger, partitions).await {
        let Ok(event) = wire::decode::<model::events::LedgerEvent>(&record.payload) else {
            continue;
        };
        let about = match &event {
            model::events::LedgerEvent::Order(order) => Some(order.order_key.to_string()),
            model::events::LedgerEvent::Withdraw { order_key, .. }
            | model::events::LedgerEvent::Refund { order_key, .. }
            | model::events::LedgerEvent::Cancel { order_key, .. } => Some(order_key.to_string()),
            model::events::LedgerEvent::Decision(decision) => Some(decision.order_key.to_string()),
            _ => None,
        };
        if about.is_some_and(|key| order_keys.contains(&key)) {
            let summary = match &event {
                model::events::LedgerEvent::Order(order) => {
                    format!("Order {} by {} at {:?}", order.conversion.id, order.member, order.conversion.event_time())
                }
                other => format!("{other:?}"),
            };
            history.push_str(&format!("\nledger {}/{}: {summary}", record.partition, record.offset));
        }
    }
    history
}

fn describe_order_event(event: &OrderEvent) -> String {
    match event {
        OrderEvent::Attributed(attributed) => format!(
            "Attributed {} to {} via {} at {:?}",
            attributed.conversion.id,
            attributed.member,
            attributed.via.as_str(),
            attributed.conversion.event_time()
        ),
        OrderEvent::Rejected(rejected) => {
            format!(
                "Rejected {} ({:?}) at {:?}",
                rejected.conversion.id,
                rejected.reason,
                rejected.conversion.event_time()
            )
        }
        other => format!("{other:?}"),
    }
}

/// The oracle for `inputs` at `now`.
pub fn oracle(inputs: &Inputs, topics: &Topics, now: Timestamp) -> Expected {
    oracle::expected(&program_of(inputs), &keys(), topics, inputs, now)
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    pub fn visitor(&self) -> String {
        let cookie = self.header("set-cookie").unwrap();
        cookie.split(';').next().unwrap().trim_start_matches("clk_v=").to_string()
    }

    pub fn click_id(&self) -> String {
        let location = self.header("location").unwrap();
        location.split("click_id=").nth(1).unwrap().split(['&', '#']).next().unwrap().to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

pub async fn request(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut raw =
        format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Response { status, headers, body: body.to_string() }
}

pub async fn get(address: SocketAddr, target: &str) -> Response {
    request(address, "GET", target, &[], "").await
}

pub async fn get_with_cookie(address: SocketAddr, target: &str, visitor: &str) -> Response {
    request(address, "GET", target, &[("Cookie", &format!("clk_v={visitor}"))], "").await
}

/// A server-to-server postback (`/pb?query`) with the advertiser's token.
pub async fn postback(address: SocketAddr, query: &str) -> Response {
    get(address, &format!("/pb?{query}&token={SECRET}")).await
}

/// A form the advertiser posts (`/pb/refund`, `/pb/cancel`) with its token.
pub async fn post_form(address: SocketAddr, path: &str, body: &str) -> Response {
    request(
        address,
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("{body}&token={SECRET}"),
    )
    .await
}

/// The scripted day: clicks (unique, repeated, bots, CPC tiers), pixels, click-id and code
/// postbacks, a duplicate order, a pending sale, a refund and a subscription. Returns the
/// order ids it used. Decisions and the clock are the caller's.
pub async fn scripted_day(edge: SocketAddr) -> ScriptedDay {
    let ok = |response: &Response, what: &str| {
        assert!(matches!(response.status, 200 | 302), "{what}: {} {}", response.status, response.body)
    };
    // Visitor A clicks kid's store link and buys (3-tier chain).
    let a = get(edge, "/c?offer=store&member=kid").await;
    ok(&a, "click a");
    let visitor_a = a.visitor();
    // Visitor B clicks kid then solo: the last click wins.
    let b = get(edge, "/c?offer=store&member=kid").await;
    let visitor_b = b.visitor();
    ok(&get_with_cookie(edge, "/c?offer=store&member=solo", &visitor_b).await, "click b2");
    // CPC: four visitors click solo's clicks link (tiers 0.10, 0.10, 0.20, 0.20), one twice, and a bot.
    let mut cpc_visitors = Vec::new();
    for _ in 0..4 {
        let response = get(edge, "/c?offer=clicks&member=solo").await;
        ok(&response, "cpc click");
        cpc_visitors.push(response.visitor());
    }
    ok(&get_with_cookie(edge, "/c?offer=clicks&member=solo", &cpc_visitors[0]).await, "repeat click");
    let bot = request(
        edge,
        "GET",
        "/c?offer=clicks&member=solo",
        &[("User-Agent", "Mozilla/5.0 (compatible; Googlebot/2.1)")],
        "",
    )
    .await;
    ok(&bot, "bot click");
    // Pixels: A buys O1, B buys O2, C never clicked.
    ok(&get_with_cookie(edge, "/px?offer=store&order_id=O1&amount=129.90&currency=USD", &visitor_a).await, "pixel O1");
    ok(&get_with_cookie(edge, "/px?offer=store&order_id=O2&amount=50.00", &visitor_b).await, "pixel O2");
    ok(&get(edge, "/px?offer=store&order_id=O3&amount=75.00").await, "pixel O3");
    // Code postbacks: solo's code for O4; kid's code for O1 again, later: a duplicate.
    let pb = |query: String| async move { postback(edge, &query).await };
    ok(&pb("code=SOLO5&order_id=O4&amount=80.00".into()).await, "postback O4");
    ok(&pb("code=KID10&order_id=O1&amount=129.90".into()).await, "duplicate O1");
    // A pending sale through a click id.
    let d = get(edge, "/c?offer=pend&member=kid").await;
    ok(&pb(format!("click_id={}&order_id=O5&amount=200.00", d.click_id())).await, "pending O5");
    // A subscription: setup 50, then 29.95 a month.
    let e = get(edge, "/c?offer=hosting&member=kid").await;
    ok(&pb(format!("click_id={}&order_id=O6&amount=50.00&recurring_amount=29.95", e.click_id())).await, "hosting O6");
    // A partial refund of O1.
    ok(&post_form(edge, "/pb/refund", "order_id=O1&amount=29.90&refund_id=r1").await, "refund O1");
    ScriptedDay { visitor_a, visitor_b }
}

pub struct ScriptedDay {
    pub visitor_a: String,
    pub visitor_b: String,
}

/// Log to the test's output, filtered by RUST_LOG.
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A Kafka log (Tansu from the test command) with fresh topics of `partitions` partitions.
pub async fn kafka(partitions: u32) -> (adapters::log::kafka::KafkaLog, Topics) {
    trace();
    let brokers = adapters::services::kafka_brokers().expect("Kafka is required: run the README's test command");
    let topics = Topics::with_prefix(&unique("e2e-"));
    let config = adapters::log::kafka::KafkaConfig::new(brokers).bundling(&topics);
    let log = adapters::log::kafka::KafkaLog::connect(config).unwrap();
    log.create_topics(&topics.specs(partitions)).await.unwrap();
    (log, topics)
}

/// A fresh ClickHouse database (from the test command) with the schema applied.
pub async fn clickhouse() -> adapters::store::clickhouse::ClickHouseStore {
    clickhouse_database(&unique("e2e_")).await
}

pub async fn clickhouse_database(database: &str) -> adapters::store::clickhouse::ClickHouseStore {
    let url = adapters::services::clickhouse_url().expect("ClickHouse is required: run the README's test command");
    let store = adapters::store::clickhouse::ClickHouseStore::connect(&url, database).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// An embedded log and store in a temporary directory, with topics of `partitions` partitions.
pub async fn embedded(
    partitions: u32,
) -> (adapters::log::sqlite::SqliteLog, adapters::store::sqlite::SqliteStore, Topics, tempfile::TempDir) {
    trace();
    let dir = tempfile::tempdir().unwrap();
    let log =
        adapters::log::sqlite::SqliteLog::open(adapters::log::sqlite::SqliteLogConfig::new(dir.path().join("log.db")))
            .unwrap();
    let topics = Topics::with_prefix("clickledger.");
    log.create_topics(&topics.specs(partitions)).await.unwrap();
    let store = adapters::store::sqlite::SqliteStore::open(dir.path().join("store.db")).unwrap();
    store.migrate().await.unwrap();
    (log, store, topics, dir)
}

/// Load the test program and wait until `program` has it.
pub async fn load<L: EventLog>(log: &L, topics: &Topics, program: &SharedProgram) {
    clickledger::load_program(log, topics, program, program_file(), "e2e").await.unwrap();
}

/// The tracking edge on a loopback port, until `shutdown`.
pub async fn start_edge<L: EventLog>(
    log: &L,
    topics: &Topics,
    program: &Arc<SharedProgram>,
    shutdown: &Shutdown,
) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let edge = ingest::Edge::new(ingest::EdgeConfig::new(topics.clone(), keys()), log.clone(), program.clone());
    tokio::spawn(ingest::run(listener, edge, shutdown.clone().wait()));
    address
}

/// `instances` attributors and settlers (each a member of its stage's consumer groups), until
/// `shutdown`.
pub fn start_workers<L: EventLog, St: Store>(
    log: &L,
    store: &St,
    program: &Arc<SharedProgram>,
    topics: &Topics,
    clock: &TestClock,
    instances: usize,
    shutdown: &Shutdown,
) -> Vec<tokio::task::JoinHandle<Result<(), pipeline::StageError>>> {
    let mut tasks = Vec::new();
    for _ in 0..instances {
        tasks.push(start_attributor(log, store, program, topics, shutdown));
        tasks.push(start_settler(log, store, program, topics, clock, shutdown));
    }
    tasks
}

/// One attributor, until `shutdown`.
pub fn start_attributor<L: EventLog, St: Store>(
    log: &L,
    store: &St,
    program: &Arc<SharedProgram>,
    topics: &Topics,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<Result<(), pipeline::StageError>> {
    tokio::spawn(attributor::run_attributor(
        log.clone(),
        store.clone(),
        program.clone(),
        topics.clone(),
        keys(),
        shutdown.clone().wait(),
    ))
}

/// One settler (one instance of each of its stages), until `shutdown`.
pub fn start_settler<L: EventLog, St: Store>(
    log: &L,
    store: &St,
    program: &Arc<SharedProgram>,
    topics: &Topics,
    clock: &TestClock,
    shutdown: &Shutdown,
) -> tokio::task::JoinHandle<Result<(), pipeline::StageError>> {
    tokio::spawn(settler::run_settler(
        log.clone(),
        store.clone(),
        program.clone(),
        topics.clone(),
        clock.clock(),
        1,
        shutdown.clone(),
    ))
}

/// A program manager's decision on a pending order of advertiser `acme`.
pub async fn decide<L: EventLog>(log: &L, topics: &Topics, order_id: &str, verdict: model::events::Verdict) {
    let order_key =
        model::OrderKey::new(&model::AdvertiserId::new("acme").unwrap(), &model::OrderId::new(order_id).unwrap());
    let decision = model::events::Decision {
        id: model::EventId::new(),
        received_at: Timestamp::now(),
        order_key: order_key.clone(),
        verdict,
        actor: "e2e".into(),
        note: None,
    };
    let record = Record {
        topic: topics.orders.clone(),
        key: order_key.to_string(),
        payload: wire::encode_compact(&OrderEvent::Decision(decision)),
    };
    log.append(vec![record]).await.unwrap();
}

/// Wait until the store's conversion report has a row for `order_id`.
pub async fn wait_for_conversion<St: Store>(store: &St, order_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = store.conversions(&ReportQuery::default()).await.unwrap();
        if rows.iter().any(|row| row.conversion.order_id.as_ref().is_some_and(|id| id.as_str() == order_id)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{order_id} never reached the conversion report");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SplitMix64: a small seeded generator, so a busy day is the same day every run.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[(self.next() % choices.len() as u64) as usize]
    }

    /// An amount from 5.00 to 304.99.
    pub fn amount(&mut self) -> String {
        let cents = 500 + self.next() % 30_000;
        format!("{}.{:02}", cents / 100, cents % 100)
    }
}

/// A busy day of `visitors` visitors through the edge, with every kind of traffic: store
/// sales on the 3-tier chain and solo, switched last clicks, duplicates by code, refunds,
/// CPC clicks with repeats and bots, pending sales, subscriptions and cancels, conversions
/// without a click. Returns the pending orders with the verdict the manager gives each.
pub async fn busy_day(edge: SocketAddr, seed: u64, visitors: usize) -> Vec<(String, model::events::Verdict)> {
    let mut dice = Dice::new(seed);
    let mut decisions = Vec::new();
    let expect = |response: Response, what: &str| {
        assert!(matches!(response.status, 200 | 202 | 302), "{what}: {} {}", response.status, response.body);
        response
    };
    let postback = |query: String| async move { postback(edge, &query).await };
    let form = |path: &'static str, body: String| async move { post_form(edge, path, &body).await };
    for n in 0..visitors {
        let roll = dice.next() % 100;
        if roll < 45 {
            let first = dice.pick(&["kid", "solo"]);
            let click = expect(get(edge, &format!("/c?offer=store&member={first}")).await, "store click");
            let visitor = click.visitor();
            if dice.chance(30) {
                let second = if first == "kid" { "solo" } else { "kid" };
                expect(
                    get_with_cookie(edge, &format!("/c?offer=store&member={second}"), &visitor).await,
                    "second click",
                );
            }
            if dice.chance(60) {
                let order = format!("S{n}");
                let amount = dice.amount();
                expect(
                    get_with_cookie(edge, &format!("/px?offer=store&order_id={order}&amount={amount}"), &visitor).await,
                    "pixel",
                );
                if dice.chance(10) {
                    let code = dice.pick(&["KID10", "SOLO5"]);
                    expect(postback(format!("code={code}&order_id={order}&amount={amount}")).await, "duplicate");
                }
                if dice.chance(15) {
                    expect(form("/pb/refund", format!("order_id={order}&amount=3.50&refund_id=r{n}")).await, "refund");
                }
            }
        } else if roll < 65 {
            let click = expect(get(edge, "/c?offer=clicks&member=solo").await, "cpc click");
            let visitor = click.visitor();
            for _ in 0..dice.next() % 3 {
                expect(get_with_cookie(edge, "/c?offer=clicks&member=solo", &visitor).await, "repeat cpc click");
            }
            if dice.chance(20) {
                let bot = request(
                    edge,
                    "GET",
                    "/c?offer=clicks&member=solo",
                    &[("User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0)")],
                    "",
                )
                .await;
                expect(bot, "bot click");
            }
        } else if roll < 80 {
            let click = expect(get(edge, "/c?offer=pend&member=kid").await, "pending click");
            let order = format!("P{n}");
            expect(
                postback(format!("click_id={}&order_id={order}&amount={}", click.click_id(), dice.amount())).await,
                "pending sale",
            );
            let verdict =
                if dice.chance(50) { model::events::Verdict::Approve } else { model::events::Verdict::Reject };
            decisions.push((order, verdict));
        } else if roll < 90 {
            let click = expect(get(edge, "/c?offer=hosting&member=kid").await, "hosting click");
            let order = format!("H{n}");
            let monthly = dice.amount();
            expect(
                postback(format!(
                    "click_id={}&order_id={order}&amount={}&recurring_amount={monthly}",
                    click.click_id(),
                    dice.amount()
                ))
                .await,
                "subscription",
            );
            if dice.chance(30) {
                expect(form("/pb/cancel", format!("order_id={order}")).await, "cancel");
            }
        } else if roll < 95 {
            expect(
                get(edge, &format!("/px?offer=store&order_id=N{n}&amount={}", dice.amount())).await,
                "pixel without click",
            );
        } else {
            let code = dice.pick(&["KID10", "SOLO5"]);
            expect(postback(format!("code={code}&order_id=C{n}&amount={}", dice.amount())).await, "code sale");
        }
    }
    decisions
}
