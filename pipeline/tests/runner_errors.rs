//! A stage whose state cannot be saved or read stops, naming the key, instead of saving or
//! restoring an empty state in its place; nothing of the failed checkpoint is committed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use adapters::store::sqlite::SqliteStore;
use clickledger_pipeline::follow::SharedProgram;
use clickledger_pipeline::ports::log::{Delivered, EventLog, PartitionId, Record, TopicSpec};
use clickledger_pipeline::ports::store::{StageStore, StateRow, StoreBatch};
use clickledger_pipeline::{Context, RunnerConfig, Stage, StageError, StageOutput, StageState, StateError, run_stage};
use model::events::wire::WireError;
use model::program::Program;

/// A state that counts its inputs and, when told to, cannot be encoded.
#[derive(Debug, Default)]
struct Fragile {
    inputs: u32,
}

impl StageState for Fragile {
    fn encode(&self) -> Result<Vec<u8>, StateError> {
        Err(StateError::Encode(format!("cannot encode after {} inputs", self.inputs)))
    }

    fn decode(_bytes: &[u8]) -> Result<Self, StateError> {
        Err(StateError::Decode("never readable".into()))
    }
}

#[derive(Debug)]
struct Counting;

impl Stage for Counting {
    type Input = ();
    type State = Fragile;

    fn name(&self) -> &'static str {
        "counting"
    }

    fn decode(&self, _record: &Delivered) -> Result<(), WireError> {
        Ok(())
    }

    fn apply(&mut self, _: &Context<'_>, _: &str, state: &mut Fragile, _: (), _: &mut StageOutput) -> bool {
        state.inputs += 1;
        true
    }
}

async fn log_with_one_record(dir: &std::path::Path) -> (SqliteLog, Arc<str>) {
    let log = SqliteLog::open(SqliteLogConfig::new(dir.join("log.db"))).unwrap();
    let topic: Arc<str> = Arc::from("inputs");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
    log.append(vec![Record { topic: topic.clone(), key: "k".into(), payload: b"x".to_vec() }]).await.unwrap();
    (log, topic)
}

fn config(topic: &Arc<str>) -> RunnerConfig {
    let mut config = RunnerConfig::new("group", vec![topic.clone()]);
    config.checkpoint_every = Duration::from_millis(10);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_cannot_be_encoded_stops_the_stage_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (log, topic) = log_with_one_record(dir.path()).await;
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store.migrate().await.unwrap();
    let program = SharedProgram::loaded(Program::new());
    let run = run_stage(Counting, log.clone(), store.clone(), program, config(&topic), std::future::pending());
    let error = tokio::time::timeout(Duration::from_secs(20), run).await.expect("the stage stops").unwrap_err();
    match error {
        StageError::UnsavableState { stage, partition, key, error } => {
            assert_eq!((stage, partition, key.as_str()), ("counting", 0, "k"));
            assert_eq!(error, StateError::Encode("cannot encode after 1 inputs".into()));
        }
        other => panic!("expected UnsavableState, got {other:?}"),
    }
    assert!(store.load_state("counting", 0).await.unwrap().is_empty(), "no state row was written");
    // The input was not committed: a new member of the group reads it again.
    let mut consumer = log.consumer("group", &[topic.clone()]).unwrap();
    let polled =
        clickledger_pipeline::ports::log::LogConsumer::poll(&mut consumer, 10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(polled.records.len(), 1);
    assert_eq!(polled.assigned, [PartitionId { topic, partition: 0 }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_state_that_cannot_be_read_stops_the_stage_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let (log, topic) = log_with_one_record(dir.path()).await;
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store.migrate().await.unwrap();
    let saved = StateRow { stage: "counting".into(), partition: 0, key: "k".into(), offset: 0, state: vec![1] };
    store.write(Arc::new(StoreBatch { state: vec![saved], ..StoreBatch::default() })).await.unwrap();
    let program = SharedProgram::loaded(Program::new());
    let run = run_stage(Counting, log, store, program, config(&topic), std::future::pending());
    let error = tokio::time::timeout(Duration::from_secs(20), run).await.expect("the stage stops").unwrap_err();
    assert!(
        matches!(&error, StageError::UnreadableState { stage: "counting", partition: 0, key, .. } if key == "k"),
        "{error:?}"
    );
}
