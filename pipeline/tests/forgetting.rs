//! A key whose state holds nothing worth keeping is forgotten: its saved rows are deleted at the
//! next checkpoint and it leaves memory; a later input for it starts from an empty state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use adapters::log::sqlite::{SqliteLog, SqliteLogConfig};
use adapters::store::sqlite::SqliteStore;
use clickledger_pipeline::follow::SharedProgram;
use clickledger_pipeline::ports::log::{Delivered, EventLog, Record, TopicSpec};
use clickledger_pipeline::ports::store::StageStore;
use clickledger_pipeline::{Context, RunnerConfig, Stage, StageOutput, StageState, WholeState, run_stage};
use model::events::wire::WireError;
use model::program::Program;
use serde::{Deserialize, Serialize};

/// The values a key was given since it was last cleared.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Values {
    values: Vec<String>,
}

impl WholeState for Values {}

#[derive(Debug)]
struct Keeping;

impl Stage for Keeping {
    type Input = String;
    type State = Values;

    fn name(&self) -> &'static str {
        "keeping"
    }

    fn decode(&self, record: &Delivered) -> Result<String, WireError> {
        Ok(String::from_utf8_lossy(&record.payload).into_owned())
    }

    fn apply(&mut self, _: &Context<'_>, _: &str, state: &mut Values, input: String, _: &mut StageOutput) -> bool {
        if input == "clear" {
            state.values.clear();
        } else {
            state.values.push(input);
        }
        true
    }

    fn is_forgettable(&self, state: &Values) -> bool {
        state.values.is_empty()
    }
}

async fn run_until_caught_up(log: &SqliteLog, store: &SqliteStore, topic: &Arc<str>) {
    let mut config = RunnerConfig::new("group", vec![topic.clone()]);
    config.checkpoint_every = Duration::from_millis(10);
    let program = SharedProgram::loaded(Program::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(run_stage(Keeping, log.clone(), store.clone(), program, config, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
}

async fn saved(store: &SqliteStore) -> Vec<(String, Vec<String>)> {
    let mut rows: Vec<(String, Vec<String>)> = store
        .load_state("keeping", 0)
        .await
        .unwrap()
        .into_iter()
        .filter(|row| !row.state.is_empty())
        .map(|row| (row.key, Values::decode(&row.state).unwrap().values))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_state_is_deleted_from_the_store_and_starts_over_empty() {
    let dir = tempfile::tempdir().unwrap();
    let log = SqliteLog::open(SqliteLogConfig::new(dir.path().join("log.db"))).unwrap();
    let topic: Arc<str> = Arc::from("inputs");
    log.create_topics(&[TopicSpec { name: topic.clone(), partitions: 1, compacted: false }]).await.unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store.migrate().await.unwrap();
    let append =
        |key: &str, value: &str| Record { topic: topic.clone(), key: key.into(), payload: value.as_bytes().to_vec() };

    log.append(vec![append("a", "1"), append("b", "2")]).await.unwrap();
    run_until_caught_up(&log, &store, &topic).await;
    assert_eq!(saved(&store).await, [("a".into(), vec!["1".into()]), ("b".into(), vec!["2".into()])]);

    log.append(vec![append("a", "clear")]).await.unwrap();
    run_until_caught_up(&log, &store, &topic).await;
    let rows = store.load_state("keeping", 0).await.unwrap();
    assert_eq!(
        rows.iter().map(|row| row.key.as_str()).collect::<Vec<_>>(),
        ["b"],
        "a's row is gone from the store, not kept empty"
    );

    log.append(vec![append("a", "3")]).await.unwrap();
    run_until_caught_up(&log, &store, &topic).await;
    assert_eq!(saved(&store).await, [("a".into(), vec!["3".into()]), ("b".into(), vec!["2".into()])]);
}
