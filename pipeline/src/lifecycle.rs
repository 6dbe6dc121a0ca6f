//! When a process stops, and what time it is: the two things every stage is handed from
//! outside.

use std::sync::Arc;

use model::time::Timestamp;

/// Resolves when the process should stop; clones resolve together.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// A shutdown and the sender that triggers it.
    pub fn new() -> (tokio::sync::watch::Sender<bool>, Self) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        (sender, Self(receiver))
    }

    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// The clock a stage reads for time-driven work (tests drive their own).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn wall_clock() -> Clock {
    Arc::new(Timestamp::now)
}
