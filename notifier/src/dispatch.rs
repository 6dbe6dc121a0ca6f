//! Sending deliveries in the background: the stage hands each due delivery over and collects
//! the results at its next tick. Each destination host has its own concurrency limit, so a
//! partner that never answers holds up only its own deliveries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use model::time::Timestamp;
use tokio::sync::Semaphore;

use crate::metrics;
use crate::send::{Attempt, Method, Request, Sender, signature};

/// One attempt to make.
#[derive(Clone, Debug)]
pub struct Job {
    /// The key of the notice's state, which collects the result.
    pub key: String,
    pub delivery: String,
    pub notice: String,
    pub kind: &'static str,
    pub method: Method,
    pub url: String,
    pub body: String,
    /// Signs a webhook's body.
    pub secret: Option<String>,
    /// The host its concurrency limit is counted by.
    pub host: String,
    /// When the delivery was made, for the queue age.
    pub created_at: Timestamp,
}

/// The result of one attempt.
#[derive(Clone, Debug)]
pub struct Finished {
    pub delivery: String,
    pub attempt: Attempt,
}

/// Results not collected within this time belong to a state this worker no longer owns.
const UNCOLLECTED_FOR: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Dispatcher {
    sender: Sender,
    per_destination: usize,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_flight: Mutex<HashSet<String>>,
    finished: Mutex<HashMap<String, (Instant, Vec<Finished>)>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Dispatcher {
    pub fn new(sender: Sender, per_destination: usize) -> Arc<Self> {
        Arc::new(Self {
            sender,
            per_destination: per_destination.max(1),
            limits: Mutex::default(),
            in_flight: Mutex::default(),
            finished: Mutex::default(),
        })
    }

    pub fn is_in_flight(&self, delivery: &str) -> bool {
        lock(&self.in_flight).contains(delivery)
    }

    /// Send `job` in the background (after the others of its host, beyond its limit).
    pub fn submit(self: &Arc<Self>, job: Job) {
        if !lock(&self.in_flight).insert(job.delivery.clone()) {
            return;
        }
        let limit = lock(&self.limits)
            .entry(job.host.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
            .clone();
        let dispatcher = self.clone();
        tokio::spawn(async move {
            // The semaphore is never closed.
            let _permit = limit.acquire_owned().await.ok();
            let waited = Timestamp::now().millis().saturating_sub(job.created_at.millis());
            metrics::queue_age(&job.host, Duration::from_millis(u64::try_from(waited).unwrap_or(0)));
            let attempt = dispatcher.attempt(&job).await;
            metrics::attempt(&job.host, &attempt);
            lock(&dispatcher.finished)
                .entry(job.key.clone())
                .or_insert_with(|| (Instant::now(), Vec::new()))
                .1
                .push(Finished { delivery: job.delivery.clone(), attempt });
            lock(&dispatcher.in_flight).remove(&job.delivery);
        });
    }

    async fn attempt(&self, job: &Job) -> Attempt {
        let mut headers = vec![
            ("Clickledger-Delivery", job.delivery.clone()),
            ("Clickledger-Event", job.kind.to_string()),
            ("Clickledger-Event-Id", job.notice.clone()),
        ];
        if let Some(secret) = &job.secret {
            let timestamp = Timestamp::now().millis() / 1000;
            headers.push(("Content-Type", "application/json".to_string()));
            headers.push((
                "Clickledger-Signature",
                format!("t={timestamp},v1={}", signature(secret, timestamp, job.body.as_bytes())),
            ));
        }
        let body = (job.method == Method::Post).then_some(job.body.as_bytes());
        self.sender.send(&Request { method: job.method, url: &job.url, body, headers: &headers }).await
    }

    /// The results for `key` since the last call.
    pub fn take(&self, key: &str) -> Vec<Finished> {
        lock(&self.finished).remove(key).map(|(_, finished)| finished).unwrap_or_default()
    }

    /// Drop results nobody collected (their state moved to another worker, which sends
    /// those deliveries again).
    pub fn drop_uncollected(&self) {
        lock(&self.finished).retain(|_, (since, _)| since.elapsed() < UNCOLLECTED_FOR);
    }
}
