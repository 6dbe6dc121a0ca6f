//! Prometheus metrics of the notifier: deliveries by outcome, attempt latency, and how long a
//! delivery waited before its latest attempt, per destination host. The recorder is the
//! process's (`adapters::process`).

use std::time::Duration;

use crate::send::{Attempt, Outcome};

/// Attempts by outcome (`delivered`, `retry`, `failed`) and deliveries given up (`dead`).
pub const DELIVERIES: &str = "clickledger_notifier_deliveries_total";
/// Seconds one attempt took, by destination host.
pub const ATTEMPT_SECONDS: &str = "clickledger_notifier_attempt_seconds";
/// Seconds between a delivery's creation and the start of its latest attempt, by host.
pub const QUEUE_AGE_SECONDS: &str = "clickledger_notifier_queue_age_seconds";

/// Every notifier metric, for the dashboard's test.
pub const ALL: &[&str] = &[DELIVERIES, ATTEMPT_SECONDS, QUEUE_AGE_SECONDS];

/// The outcomes of [`DELIVERIES`].
pub const OUTCOMES: &[&str] = &["delivered", "retry", "failed", "dead"];

/// The delivery series, at zero, as the notifier starts.
pub fn register() {
    for outcome in OUTCOMES {
        metrics::counter!(DELIVERIES, "outcome" => *outcome).absolute(0);
    }
}

pub(crate) fn attempt(host: &str, attempt: &Attempt) {
    let outcome = match attempt.outcome {
        Outcome::Delivered { .. } => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Failed { .. } => "failed",
    };
    metrics::counter!(DELIVERIES, "outcome" => outcome).increment(1);
    metrics::histogram!(ATTEMPT_SECONDS, "destination" => host.to_string()).record(attempt.latency.as_secs_f64());
}

pub(crate) fn dead() {
    metrics::counter!(DELIVERIES, "outcome" => "dead").increment(1);
}

pub(crate) fn queue_age(host: &str, age: Duration) {
    metrics::gauge!(QUEUE_AGE_SECONDS, "destination" => host.to_string()).set(age.as_secs_f64());
}
