//! The pipeline's parts in this process, on any log and store: the program followed and
//! loaded, the edge, attributors and settlers, and a manager's decisions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use model::events::{OrderEvent, wire};
use model::reports::ReportQuery;
use model::time::Timestamp;
use pipeline::Shutdown;
use pipeline::follow::{SharedProgram, follow_program};
use pipeline::ports::log::{EventLog, Record, Topics};
use pipeline::ports::store::{ReportStore, StageStore};

use crate::setup::{TestClock, keys, program_file};

/// Follow the program of `log` until it has every record written so far.
pub async fn follow<L: EventLog>(log: &L, topics: &Topics, shutdown: &Shutdown) -> Arc<SharedProgram> {
    let program = SharedProgram::new();
    tokio::spawn(follow_program(log.clone(), topics.program.clone(), program.clone(), shutdown.clone().wait()));
    while !program.is_loaded() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    program
}

/// Load the test program and wait until `program` has it.
pub async fn load<L: EventLog>(log: &L, topics: &Topics, program: &SharedProgram) {
    pipeline::follow::load_program_file(log, topics, program, program_file(), "e2e").await.unwrap();
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
pub fn start_workers<L: EventLog, St: StageStore>(
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
pub fn start_attributor<L: EventLog, St: StageStore>(
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
pub fn start_settler<L: EventLog, St: StageStore>(
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
pub async fn wait_for_conversion<St: ReportStore>(store: &St, order_id: &str) {
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

/// A program manager's bill run up to `period_end`: one event per family (each member
/// without a parent keys its family's ledger), as the API sends it.
pub async fn bill_run<L: EventLog>(log: &L, topics: &Topics, program: &SharedProgram, period_end: Timestamp) {
    let families: Vec<String> = program.read(|program| {
        program.members().filter(|member| member.parent.is_none()).map(|member| member.id.to_string()).collect()
    });
    let id = model::EventId::new();
    let records = families
        .into_iter()
        .map(|family| {
            let event = model::events::LedgerEvent::BillRun { id, period_end, at: period_end, actor: "e2e".into() };
            Record { topic: topics.ledger.clone(), key: family, payload: wire::encode_compact(&event) }
        })
        .collect();
    log.append(records).await.unwrap();
}
