//! Signatures seen recently, so a captured signed request cannot be sent again.
//!
//! A signature is acceptable while its `X-Timestamp` is within the tolerance of now, so it is
//! remembered until then and forgotten after: memory is bounded by the signed requests of one
//! tolerance window, and by `capacity` — a full cache refuses new signatures (503, retry later)
//! rather than forget ones that could still be replayed. One cache serves every signed path
//! (`/pb`, `/pb/refund`, `/pb/cancel`), so a signature taken from one cannot be used on
//! another.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The first 16 bytes of a request's MAC: enough to tell signatures apart.
pub type Seen = [u8; 16];

#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Signature → the second after which it is no longer acceptable anyway.
    until: HashMap<Seen, i64>,
    /// The same entries in the order they were added, to forget them as they expire.
    order: VecDeque<(i64, Seen)>,
}

/// What [`ReplayCache::remember`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remembered {
    New,
    Replayed,
    Full,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Mutex::new(Inner::default()), capacity: capacity.max(1) }
    }

    /// Remember `seen`, acceptable until `until` (Unix seconds), at `now` (Unix seconds).
    pub fn remember(&self, seen: Seen, until: i64, now: i64) -> Remembered {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.forget_expired(now);
        if inner.until.get(&seen).is_some_and(|expires| *expires >= now) {
            return Remembered::Replayed;
        }
        if inner.until.len() >= self.capacity {
            // Expired entries may wait behind later ones in the queue: sweep them all first.
            inner.until.retain(|_, expires| *expires >= now);
            if inner.until.len() >= self.capacity {
                return Remembered::Full;
            }
        }
        inner.until.insert(seen, until);
        inner.order.push_back((until, seen));
        Remembered::New
    }

    /// Forget `seen`: the request it signed was not written, so sending it again is a retry.
    pub fn forget(&self, seen: &Seen) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.until.remove(seen);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.until.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn forget_expired(&mut self, now: i64) {
        // Entries are added with `until` = timestamp + tolerance, which is not monotonic in
        // arrival; an entry that expires later than one behind it is kept until it expires,
        // so the front is checked against the map's own value.
        while let Some((until, seen)) = self.order.front().copied() {
            if until >= now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&seen).is_some_and(|expires| *expires == until) {
                self.until.remove(&seen);
            }
        }
        if self.order.len() > 2 * self.until.len() + 1024 {
            // Forgotten entries (`forget`) left in the queue: rebuild it.
            let until = &self.until;
            self.order.retain(|(at, seen)| until.get(seen) == Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_refused_again_until_it_expires_and_memory_stays_bounded() {
        let cache = ReplayCache::new(3);
        let seen = |byte: u8| [byte; 16];
        assert_eq!(cache.remember(seen(1), 400, 100), Remembered::New);
        assert_eq!(cache.remember(seen(1), 400, 200), Remembered::Replayed);
        assert_eq!(cache.remember(seen(2), 450, 200), Remembered::New);
        assert_eq!(cache.remember(seen(3), 300, 200), Remembered::New);
        assert_eq!(cache.remember(seen(4), 500, 200), Remembered::Full, "full: refused, never forgotten early");
        cache.forget(&seen(2));
        assert_eq!(cache.remember(seen(2), 450, 201), Remembered::New, "a forgotten signature is a retry");
        assert_eq!(cache.remember(seen(1), 400, 401), Remembered::New, "expired: the timestamp check refuses it");
        assert!(cache.len() <= 3);
    }
}
