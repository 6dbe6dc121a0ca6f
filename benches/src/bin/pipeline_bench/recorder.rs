//! The stage metrics the benchmark reads: record counters and lag samples, by stage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The stage metrics this benchmark reads: record counters and lag samples, by stage.
#[derive(Default)]
pub(crate) struct Recorded {
    counters: Mutex<HashMap<String, Arc<StageCounter>>>,
    lags: Mutex<HashMap<String, Arc<LagSamples>>>,
}

pub(crate) static RECORDED: std::sync::LazyLock<Recorded> = std::sync::LazyLock::new(Recorded::default);

impl Recorded {
    pub(crate) fn counter(&self, stage: &str) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        counters.get(stage).map_or(0, |counter| counter.0.load(Ordering::Relaxed))
    }

    pub(crate) fn samples(&self, stage: &str) -> Vec<f64> {
        let lags = self.lags.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        lags.get(stage).map_or_else(Vec::new, |lag| lag.0.lock().map(|samples| samples.clone()).unwrap_or_default())
    }
}

#[derive(Default)]
pub(crate) struct StageCounter(AtomicU64);

impl metrics::CounterFn for StageCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

/// A stage's position in one partition (`clickledger_stage_position`), kept as an integer.
impl metrics::GaugeFn for StageCounter {
    fn increment(&self, _: f64) {}

    fn decrement(&self, _: f64) {}

    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub(crate) struct LagSamples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for LagSamples {
    fn record(&self, value: f64) {
        if let Ok(mut samples) = self.0.lock() {
            samples.push(value);
        }
    }
}

pub(crate) fn stage_label(key: &metrics::Key) -> String {
    key.labels().find(|label| label.key() == "stage").map(|label| label.value().to_string()).unwrap_or_default()
}

impl metrics::Recorder for &'static Recorded {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let name = match key.name() {
            "clickledger_stage_records_total" => stage_label(key),
            "clickledger_stage_partitions_assigned_total" => format!("assigned:{}", stage_label(key)),
            _ => return metrics::Counter::noop(),
        };
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Counter::from_arc(counters.entry(name).or_default().clone())
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        if key.name() != "clickledger_stage_position" {
            return metrics::Gauge::noop();
        }
        let label = |name: &str| {
            key.labels().find(|label| label.key() == name).map(|label| label.value().to_string()).unwrap_or_default()
        };
        let at = format!("position:{}:{}:{}", label("stage"), label("topic"), label("partition"));
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Gauge::from_arc(counters.entry(at).or_default().clone())
    }

    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        let label = match key.name() {
            "clickledger_stage_lag_seconds" => stage_label(key),
            "clickledger_stage_batch_seconds" => format!("batch:{}", stage_label(key)),
            _ => return metrics::Histogram::noop(),
        };
        let mut lags = self.lags.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::Histogram::from_arc(lags.entry(label).or_default().clone())
    }
}
