//! The edge keeps the program in memory from the program log: not ready until it has read
//! what was there, and a change on the log changes what the edge does within a second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use clickledger_ingest::{Edge, EdgeConfig, run};
use common::{CLICK_KEYS, PARTITIONS};
use model::clickid::ClickKeyRing;
use model::events::{TrackingEvent, wire};
use model::program::{ProgramChange, ProgramRecord};
use model::testkit::*;
use pipeline::follow::{SharedProgram, follow_program};
use pipeline::ports::log::{EventLog, LogConsumer, Record, Topics};
use rust_decimal_macros::dec;

fn program_record(topics: &Topics, change: ProgramChange) -> Record {
    let record = ProgramRecord { at: model::Timestamp::now(), actor: "test".into(), change };
    Record { topic: topics.program.clone(), key: record.change.key(), payload: wire::encode(&record) }
}

async fn get(address: std::net::SocketAddr, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (text[9..12].parse().unwrap(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_follows_the_program_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("log.db"))).unwrap();
    let topics = Topics::with_prefix("follow.");
    log.create_topics(&topics.specs(PARTITIONS)).await.unwrap();
    let builder = ProgramBuilder::new().offer(offer("summer", cps(dec!(0.1)))).enrolled("summer", [member("jane")]);
    let records: Vec<Record> =
        builder.changes().iter().cloned().map(|change| program_record(&topics, change)).collect();
    log.append(records).await.unwrap();

    let program = SharedProgram::new();
    let config = EdgeConfig::new(topics.clone(), ClickKeyRing::parse(CLICK_KEYS).unwrap());
    let edge = Edge::new(config, log.clone(), program.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, edge, async move {
        let _ = stopped.await;
    }));

    let (status, body) = get(address, "/readyz").await;
    assert_eq!(status, 503, "not ready before the program is read: {body}");
    assert!(body.contains("the program is not loaded yet"));

    let follower =
        tokio::spawn(follow_program(log.clone(), topics.program.clone(), program.clone(), std::future::pending()));
    let started = Instant::now();
    while get(address, "/readyz").await.0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "the program loads");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(address, "/c?offer=summer&member=jane").await.0, 302);

    // Pause the offer on the log: within a second the edge records clicks as offer_paused.
    let mut paused = offer("summer", cps(dec!(0.1)));
    paused.paused = true;
    log.append(vec![program_record(&topics, ProgramChange::Offer(paused))]).await.unwrap();
    let changed_at = Instant::now();
    while program.read(|program| !program.offer(&offer_id("summer")).unwrap().paused) {
        assert!(changed_at.elapsed() < Duration::from_secs(1), "the change reaches the edge within a second");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(address, "/c?offer=summer&member=jane").await.0, 302);
    let mut consumer = log.consumer("check", &[topics.events.clone()]).unwrap();
    let mut clicks = Vec::new();
    while clicks.len() < 2 {
        for record in consumer.poll(10, Duration::from_millis(200)).await.unwrap().records {
            if let TrackingEvent::Click(click) = wire::decode(&record.payload).unwrap() {
                clicks.push(click.rejected);
            }
        }
    }
    assert_eq!(clicks, [None, Some(model::events::Reason::OfferPaused)]);

    follower.abort();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
