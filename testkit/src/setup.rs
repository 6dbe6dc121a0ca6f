//! What every end-to-end test shares: the test program, its click-id keys and postback
//! secret, fresh names, and a clock the test moves.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use model::clickid::ClickKeyRing;
use model::program::ProgramFile;
use model::time::{Span, Timestamp};
use pipeline::Clock;

pub const PROGRAM: &str = include_str!("program.toml");
pub const CLICK_KEYS: &str = "1:end-to-end-click-key-end-to-end-click-key";
pub const SECRET: &str = "acme-postback-secret-0001";

pub fn keys() -> ClickKeyRing {
    ClickKeyRing::parse(CLICK_KEYS).unwrap()
}

pub fn program_file() -> ProgramFile {
    ProgramFile::from_toml(PROGRAM).unwrap()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", model::EventId::new().to_string().to_lowercase())
}

/// A clock that runs with real time plus an offset the test moves.
#[derive(Clone, Debug, Default)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn clock(&self) -> Clock {
        let offset = self.0.clone();
        Arc::new(move || Timestamp::from_millis(Timestamp::now().millis() + offset.load(Ordering::Relaxed)))
    }

    pub fn advance(&self, span: Span) {
        self.0.fetch_add(span.millis(), Ordering::Relaxed);
    }

    pub fn now(&self) -> Timestamp {
        (self.clock())()
    }
}
