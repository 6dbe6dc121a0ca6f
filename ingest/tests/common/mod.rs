//! Start the edge on port 0 through the same `run` as `main`, with an embedded log in a
//! temporary directory, and talk to it with raw HTTP/1.1 so malformed requests can be sent
//! exactly as written.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use clickledger_ingest::{Edge, EdgeConfig, run};
use model::clickid::ClickKeyRing;
use model::program::{Offer, Program, ProgramChange, PromoCodeGrant, TrackingLink};
use model::testkit::*;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{Delivered, EventLog, PartitionId, Topics};
use rust_decimal_macros::dec;

pub const CLICK_KEYS: &str = "1:test-click-key-test-click-key-0001";
pub const PARTITIONS: u32 = 3;
pub const GLOBEX_SECRET: &str = "globex-postback-secret-0001";

/// The program the edge tests run against:
/// - `summer` (acme, deep links to shop.example.com): jane approved and enrolled, with links
///   `jane-summer` (active) and `jane-old` (inactive) and code JANE20; tom pending and
///   enrolled; ann approved but not enrolled; kid, jane's recruit, enrolled.
/// - `expired` (expired 2020), `paused`.
/// - `rival`, of advertiser `globex` (secret [`GLOBEX_SECRET`]), with code RIVAL10 for jane.
pub fn program() -> Program {
    program_builder().build()
}

/// The changes of [`program`], to add more to.
pub fn program_builder() -> ProgramBuilder {
    let mut expired = offer("expired", cps(dec!(0.1)));
    expired.expires_at = Some(ts("2020-01-01T00:00:00Z"));
    let mut paused = offer("paused", cps(dec!(0.1)));
    paused.paused = true;
    let mut tom = member("tom");
    tom.status = model::program::MemberStatus::Pending;
    let globex = model::program::Advertiser {
        id: model::AdvertiserId::new("globex").unwrap(),
        name: "Globex".into(),
        secrets: vec![model::program::PostbackSecret { secret: GLOBEX_SECRET.into(), valid_until: None }],
    };
    let rival = Offer { advertiser: globex.id.clone(), ..offer("rival", cps(dec!(0.1))) };
    ProgramBuilder::new()
        .advertiser(globex)
        .offer(rival)
        .offer(offer("summer", cps(dec!(0.1))))
        .offer(expired)
        .offer(paused)
        .enrolled("summer", [member("jane"), tom, child("kid", "jane")])
        .member(member("ann"))
        .change(ProgramChange::Enrolment(enrol("expired", "jane")))
        .change(ProgramChange::Enrolment(enrol("paused", "jane")))
        .change(ProgramChange::Enrolment(enrol("rival", "jane")))
        .change(ProgramChange::Link(TrackingLink {
            code: model::LinkCode::new("jane-summer").unwrap(),
            offer: offer_id("summer"),
            member: member_id("jane"),
            deep_url: Some("https://shop.example.com/sale".into()),
            active: true,
        }))
        .change(ProgramChange::Link(TrackingLink {
            code: model::LinkCode::new("jane-old").unwrap(),
            offer: offer_id("summer"),
            member: member_id("jane"),
            deep_url: None,
            active: false,
        }))
        .change(ProgramChange::Code(PromoCodeGrant {
            code: model::PromoCode::new("RIVAL10").unwrap(),
            offer: offer_id("rival"),
            member: member_id("jane"),
            active: true,
            starts_at: None,
            ends_at: None,
        }))
        .change(ProgramChange::Code(PromoCodeGrant {
            code: model::PromoCode::new("JANE20").unwrap(),
            offer: offer_id("summer"),
            member: member_id("jane"),
            active: true,
            starts_at: None,
            ends_at: None,
        }))
}

pub struct TestEdge<L: EventLog = SqliteLog> {
    pub address: SocketAddr,
    pub log: L,
    pub topics: Topics,
    pub keys: ClickKeyRing,
    pub edge: Arc<Edge<L>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestEdge<SqliteLog> {
    pub async fn start() -> Self {
        Self::start_with(program(), |_| {}).await
    }

    pub async fn start_with(program: Program, configure: impl FnOnce(&mut EdgeConfig)) -> Self {
        Self::start_embedded(SharedProgram::loaded(program), configure).await
    }

    /// On the embedded log, with a program that may not be loaded yet.
    pub async fn start_embedded(program: Arc<SharedProgram>, configure: impl FnOnce(&mut EdgeConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("log.db"))).unwrap();
        let topics = Topics::with_prefix("test.");
        log.create_topics(&topics.specs(PARTITIONS)).await.unwrap();
        let mut edge = TestEdge::start_sharing(log, topics, program, configure).await;
        edge._dir = Some(dir);
        edge
    }
}

impl<L: EventLog> TestEdge<L> {
    /// The edge on any log whose topics exist.
    pub async fn start_on(log: L, topics: Topics, program: Program, configure: impl FnOnce(&mut EdgeConfig)) -> Self {
        Self::start_sharing(log, topics, SharedProgram::loaded(program), configure).await
    }

    /// The edge with a program that may not be loaded yet.
    pub async fn start_sharing(
        log: L,
        topics: Topics,
        program: Arc<SharedProgram>,
        configure: impl FnOnce(&mut EdgeConfig),
    ) -> Self {
        let keys = ClickKeyRing::parse(CLICK_KEYS).unwrap();
        let mut config = EdgeConfig::new(topics.clone(), keys.clone());
        // Tests read the log right after a response: let browser events wait for their ack.
        config.click_ack_wait = Duration::from_secs(10);
        configure(&mut config);
        let edge = Edge::new(config, log.clone(), program);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(run(listener, edge.clone(), async move {
            let _ = stop.await;
        }));
        Self { address, log, topics, keys, edge, shutdown: Some(shutdown), server: Some(server), _dir: None }
    }

    /// Send the shutdown signal (what SIGTERM does) and hand back the running server.
    pub fn signal_shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.server.take().expect("the server is running")
    }

    /// Stop the server the way a SIGTERM does and wait for `run` to return.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub async fn send(&self, raw: &[u8]) -> TestResponse {
        testkit::send(self.address, raw).await
    }

    pub async fn get(&self, target: &str, headers: &[(&str, &str)]) -> TestResponse {
        testkit::request(self.address, "GET", target, headers, "").await
    }

    pub async fn post(&self, target: &str, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> TestResponse {
        let mut with_type = vec![("Content-Type", content_type)];
        with_type.extend_from_slice(headers);
        testkit::request_bytes(self.address, "POST", target, &with_type, body).await
    }

    /// Every record of `topic`, read by a fresh consumer group up to each partition's end, by
    /// offset: on the embedded log, offsets are numbered per topic, so this is append order.
    pub async fn records(&self, topic: &Arc<str>) -> Vec<Delivered> {
        let partitions = if topic == &self.topics.program { 1 } else { PARTITIONS };
        let mut records = testkit::read_topic(&self.log, topic, partitions).await;
        records.sort_by_key(|record| record.offset);
        records
    }

    /// The sum of a topic's end offsets: it grows whenever anything is written.
    pub async fn topic_size(&self, topic: &Arc<str>) -> u64 {
        let partitions = if topic == &self.topics.program { 1 } else { PARTITIONS };
        let mut total = 0;
        for partition in 0..partitions {
            total += self.log.end_offset(&PartitionId { topic: topic.clone(), partition }).await.unwrap_or(0);
        }
        total
    }

    /// How many records every topic holds, to prove a request wrote nothing.
    pub async fn log_size(&self) -> BTreeMap<String, u64> {
        let mut sizes = BTreeMap::new();
        for topic in [&self.topics.events, &self.topics.orders, &self.topics.ledger, &self.topics.program] {
            sizes.insert(topic.to_string(), self.topic_size(topic).await);
        }
        sizes
    }
}

impl<L: EventLog> Drop for TestEdge<L> {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub use testkit::Response as TestResponse;

/// The `clk_v` value of a response's `Set-Cookie`.
pub fn visitor_of(response: &TestResponse) -> String {
    response.visitor()
}

/// The query parameter `name` of a `Location` header.
pub fn location_param(response: &TestResponse, name: &str) -> Option<String> {
    let location = url::Url::parse(response.header("location")?).ok()?;
    location.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

pub fn click_event(payload: &[u8]) -> model::events::Click {
    match model::events::wire::decode::<model::events::TrackingEvent>(payload).unwrap() {
        model::events::TrackingEvent::Click(click) => click,
        other => panic!("not a click: {other:?}"),
    }
}

pub fn conversion_event(payload: &[u8]) -> model::events::Conversion {
    match model::events::wire::decode::<model::events::TrackingEvent>(payload).unwrap() {
        model::events::TrackingEvent::Conversion(conversion) => conversion,
        other => panic!("not a conversion: {other:?}"),
    }
}

/// Unix seconds now.
pub fn now_seconds() -> i64 {
    model::Timestamp::now().millis() / 1000
}
