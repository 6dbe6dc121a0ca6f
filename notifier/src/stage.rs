//! The notifier stage: consumes `notices` (keyed by notice id), resolves each notice to its
//! deliveries once, writes them to the delivery log and sends them; at every tick it records
//! the attempts that finished and sends what is due again.
//!
//! At least once: a delivery is in the stage's state, saved with the delivery log at each
//! checkpoint, until it is delivered, fails for good or runs out of time; after a crash the
//! state comes back and its pending deliveries are sent again, with the same delivery id. A
//! notice seen again (the settler applied an input again) within [`REMEMBER_FOR`] of its last
//! delivery changes nothing.

use std::sync::Arc;
use std::time::Duration;

use model::events::{DeliveryRow, DeliveryStatus, Notice, NoticeEvent, wire};
use model::time::{Span, Timestamp};
use pipeline::ports::log::Delivered;
use pipeline::{Context, Stage, StageOutput, WholeState};
use serde::{Deserialize, Serialize};

use crate::dispatch::{Dispatcher, Finished, Job};
use crate::metrics;
use crate::resolve::deliveries;
use crate::send::{Method, Outcome};

/// How long a notice is remembered after its last delivery ended: a repeat of it within this
/// time is recognised and not delivered again.
pub const REMEMBER_FOR: Span = Span::seconds(600);

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How deliveries are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt; it doubles after each (with jitter), up to
    /// [`MAX_BACKOFF`].
    pub backoff: Duration,
    /// How long after it was made (or re-sent by hand) a delivery is retried before it is dead.
    pub retry_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { backoff: Duration::from_secs(1), retry_for: Duration::from_secs(24 * 3600) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`: the backoff doubled per attempt so far, between
    /// half and all of it (jitter, so deliveries that failed together do not retry together).
    pub fn wait_after(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        let full = self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        let half = full / 2;
        let jitter = rand::random_range(0..=u64::try_from(half.as_millis()).unwrap_or(u64::MAX));
        half + Duration::from_millis(jitter)
    }
}

/// A delivery and until when it is retried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub row: DeliveryRow,
    pub until: Timestamp,
}

/// What the notifier keeps of one notice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoticeState {
    /// The notice arrived (a repeat of it changes nothing).
    pub seen: bool,
    /// Its deliveries until the last one ends; then none (a re-send brings its row back).
    pub deliveries: Vec<Tracked>,
    /// When the last of its deliveries ended.
    pub settled_at: Option<Timestamp>,
}

impl WholeState for NoticeState {}

impl NoticeState {
    fn is_settled(&self) -> bool {
        self.deliveries.iter().all(|tracked| tracked.row.status.is_final())
    }
}

/// How often settled notices are looked at, to forget those remembered long enough.
const FORGET_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct NotifierStage {
    dispatcher: Arc<Dispatcher>,
    policy: RetryPolicy,
    /// When settled notices were last looked at, and whether this tick looks at them.
    swept_at: Option<std::time::Instant>,
    sweeping: bool,
}

impl NotifierStage {
    pub fn new(dispatcher: Arc<Dispatcher>, policy: RetryPolicy) -> Self {
        Self { dispatcher, policy, swept_at: None, sweeping: false }
    }

    /// Hand `tracked` to the dispatcher unless an attempt of it is under way.
    fn send(&self, context: &Context<'_>, key: &str, tracked: &Tracked) {
        let row = &tracked.row;
        if self.dispatcher.is_in_flight(&row.id) {
            return;
        }
        // A webhook is signed with its endpoint's secret as it is now (a rotated secret signs
        // the retries); a webhook gone from the program is signed with nothing and refused.
        let secret = row.destination.strip_prefix("webhook:").map(|id| {
            model::ids::WebhookId::new(id)
                .ok()
                .and_then(|id| context.program.webhook(&id).map(|webhook| webhook.secret.clone()))
                .unwrap_or_default()
        });
        let host = url::Url::parse(&row.url)
            .ok()
            .and_then(|url| url.host_str().map(|host| format!("{host}:{}", url.port_or_known_default().unwrap_or(0))))
            .unwrap_or_default();
        self.dispatcher.submit(Job {
            key: key.to_string(),
            delivery: row.id.clone(),
            notice: row.notice.clone(),
            kind: row.kind.as_str(),
            method: if row.method == "POST" { Method::Post } else { Method::Get },
            url: row.url.clone(),
            body: row.body.clone(),
            secret,
            host,
            created_at: row.created_at,
        });
    }

    /// Record a finished attempt on its delivery; true if the delivery changed.
    fn record(&self, state: &mut NoticeState, finished: Finished, now: Timestamp) -> Option<DeliveryRow> {
        let tracked = state.deliveries.iter_mut().find(|tracked| tracked.row.id == finished.delivery)?;
        let row = &mut tracked.row;
        if row.status.is_final() {
            return None;
        }
        let attempt = finished.attempt;
        row.attempts += 1;
        row.revision += 1;
        row.updated_at = now;
        row.last_latency_ms = u32::try_from(attempt.latency.as_millis()).unwrap_or(u32::MAX);
        let (status, error) = match attempt.outcome {
            Outcome::Delivered { status } => {
                row.status = DeliveryStatus::Delivered;
                row.next_at = None;
                (Some(status), String::new())
            }
            Outcome::Failed { status, error } => {
                row.status = DeliveryStatus::Failed;
                row.next_at = None;
                (status, error)
            }
            Outcome::Retry { status, error, retry_after } => {
                let wait = retry_after.unwrap_or_else(|| self.policy.wait_after(row.attempts));
                let next = now.saturating_add(Span::millis_of(wait));
                if next > tracked.until {
                    row.status = DeliveryStatus::Dead;
                    row.next_at = None;
                    metrics::dead();
                } else {
                    row.next_at = Some(next);
                }
                (status, error)
            }
        };
        row.last_status = status.unwrap_or(0);
        row.last_error = error;
        Some(row.clone())
    }

    /// Once every delivery ended: remember only that the notice was seen, and when.
    fn settle(state: &mut NoticeState, now: Timestamp) {
        if state.is_settled() && state.settled_at.is_none() {
            state.settled_at = Some(now);
            state.deliveries.clear();
        }
    }
}

impl Stage for NotifierStage {
    type Input = NoticeEvent;
    type State = NoticeState;

    fn name(&self) -> &'static str {
        "notifier"
    }

    fn decode(&self, record: &Delivered) -> Result<NoticeEvent, wire::WireError> {
        wire::decode(&record.payload)
    }

    fn apply(
        &mut self,
        context: &Context<'_>,
        key: &str,
        state: &mut NoticeState,
        input: NoticeEvent,
        out: &mut StageOutput,
    ) -> bool {
        let now = context.now;
        match input {
            NoticeEvent::Notice(notice) => self.on_notice(context, key, state, &notice, out),
            NoticeEvent::Resend { delivery, .. } => {
                let until = now.saturating_add(Span::millis_of(self.policy.retry_for));
                let position = match state.deliveries.iter().position(|tracked| tracked.row.id == delivery.id) {
                    Some(position) => position,
                    None => {
                        // Forgotten since it ended: it comes back from the delivery log.
                        state.seen = true;
                        state.deliveries.push(Tracked { row: *delivery, until });
                        state.deliveries.len() - 1
                    }
                };
                let tracked = &mut state.deliveries[position];
                if tracked.row.status == DeliveryStatus::Pending && self.dispatcher.is_in_flight(&tracked.row.id) {
                    return false;
                }
                tracked.until = until;
                tracked.row.status = DeliveryStatus::Pending;
                tracked.row.next_at = Some(now);
                tracked.row.updated_at = now;
                tracked.row.revision += 1;
                out.store.deliveries.push(tracked.row.clone());
                state.settled_at = None;
                let tracked = tracked.clone();
                self.send(context, key, &tracked);
                true
            }
        }
    }

    fn begin_tick(&mut self, _now: Timestamp) -> bool {
        self.dispatcher.drop_uncollected();
        self.sweeping = self.swept_at.is_none_or(|at| at.elapsed() >= FORGET_EVERY);
        if self.sweeping {
            self.swept_at = Some(std::time::Instant::now());
        }
        true
    }

    /// Notices with deliveries under way, every tick; settled ones, every [`FORGET_EVERY`].
    fn wants_tick(&self, state: &NoticeState) -> bool {
        state.seen && (state.settled_at.is_none() || self.sweeping)
    }

    fn tick(&mut self, context: &Context<'_>, key: &str, state: &mut NoticeState, out: &mut StageOutput) -> bool {
        let now = context.now;
        if let Some(settled_at) = state.settled_at {
            // Remembered long enough: changed, so the checkpoint sees it can be forgotten.
            return settled_at.saturating_add(REMEMBER_FOR) < now && self.dispatcher.take(key).is_empty();
        }
        let mut changed = false;
        for finished in self.dispatcher.take(key) {
            if let Some(row) = self.record(state, finished, now) {
                out.store.deliveries.push(row);
                changed = true;
            }
        }
        for tracked in &state.deliveries {
            let due = tracked.row.status == DeliveryStatus::Pending && tracked.row.next_at.is_some_and(|at| at <= now);
            if due {
                self.send(context, key, tracked);
            }
        }
        Self::settle(state, now);
        changed
    }

    fn is_forgettable(&self, state: &NoticeState) -> bool {
        state.settled_at.is_some_and(|at| at.saturating_add(REMEMBER_FOR) < Timestamp::now())
    }
}

impl NotifierStage {
    fn on_notice(
        &mut self,
        context: &Context<'_>,
        key: &str,
        state: &mut NoticeState,
        notice: &Notice,
        out: &mut StageOutput,
    ) -> bool {
        if state.seen {
            return false;
        }
        let now = context.now;
        let until = now.saturating_add(Span::millis_of(self.policy.retry_for));
        state.seen = true;
        state.deliveries =
            deliveries(context.program, notice, now).into_iter().map(|row| Tracked { row, until }).collect();
        for tracked in &state.deliveries {
            out.store.deliveries.push(tracked.row.clone());
            self.send(context, key, tracked);
        }
        Self::settle(state, now);
        true
    }
}
