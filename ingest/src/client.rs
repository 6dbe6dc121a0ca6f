//! Who is asking: the client's address (the socket peer, or what trusted proxies say in
//! `X-Forwarded-For`), the per-network click rate limit, and the clients that clicked a link
//! lately.
//!
//! `X-Forwarded-For` is read from the right: each proxy appends the address it received the
//! request from, so the entries left of the last trusted proxy were written by the client and
//! prove nothing. The client is the rightmost entry not in a trusted network (or the leftmost
//! entry when every one is trusted). Without trusted proxies the header is ignored.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use ipnet::IpNet;
use model::events::Client;

/// The client of a request from peer `peer`.
pub fn client(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Client {
    let user_agent = headers.get(http::header::USER_AGENT).and_then(|agent| agent.to_str().ok());
    Client::new(client_address(peer.ip(), headers, trusted), user_agent)
}

fn is_trusted(address: IpAddr, trusted: &[IpNet]) -> bool {
    let address = match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|network| network.contains(&address))
}

/// The address the request came from, by the rule above.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in entries.iter().rev() {
        let Ok(address) = entry.parse::<IpAddr>() else {
            // A malformed entry: nothing left of it can be trusted either.
            return client;
        };
        client = address;
        if !is_trusted(address, trusted) {
            break;
        }
    }
    client
}

/// Clicks per client network per minute, as a token bucket: a network may click `limit` times
/// at once, and gains `limit` clicks a minute back, continuously (so a burst never finds a
/// fresh allowance at a minute boundary). Memory is bounded: at most `max_networks` networks
/// are held; a full table first drops the networks whose buckets are full again (idle a
/// minute), and clicks of networks beyond that are allowed and counted in
/// [`Self::overflowed`].
#[derive(Debug)]
pub struct RateLimiter {
    shards: Vec<Mutex<HashMap<IpAddr, Bucket>>>,
    max_per_shard: usize,
    overflowed: AtomicU64,
}

/// Credit left as of `at` (Unix ms), in units where a click costs a minute's milliseconds and
/// a millisecond refills `limit` units: whole numbers, so no refill is lost to rounding.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    credit: u64,
    at: i64,
}

const SHARDS: usize = 16;
const MINUTE_MS: i64 = 60_000;
/// What a click costs in [`Bucket`] credit.
const CLICK: u64 = MINUTE_MS as u64;

impl Bucket {
    /// The bucket at `now` for a limit of `limit` clicks a minute.
    fn refilled(self, limit: u32, now: i64) -> Bucket {
        let full = u64::from(limit) * CLICK;
        let elapsed = u64::try_from(now.saturating_sub(self.at)).unwrap_or(0).min(CLICK);
        Bucket { credit: (self.credit + elapsed * u64::from(limit)).min(full), at: now.max(self.at) }
    }
}

impl RateLimiter {
    pub fn new(max_networks: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: max_networks.div_ceil(SHARDS).max(1),
            overflowed: AtomicU64::new(0),
        }
    }

    /// Count a click of `network` at `now_millis`; false when its bucket is empty (`limit` 0:
    /// no limit).
    pub fn allow(&self, network: IpAddr, limit: u32, now_millis: i64) -> bool {
        if limit == 0 {
            return true;
        }
        let mut buckets = self.shards[shard_of(network)].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(&network) && buckets.len() >= self.max_per_shard {
            // Networks idle a minute have full buckets: forgetting them changes nothing.
            buckets.retain(|_, bucket| now_millis.saturating_sub(bucket.at) < MINUTE_MS);
            if buckets.len() >= self.max_per_shard {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        let fresh = Bucket { credit: u64::from(limit) * CLICK, at: now_millis };
        let bucket = buckets.entry(network).or_insert(fresh);
        *bucket = bucket.refilled(limit, now_millis);
        if bucket.credit >= CLICK {
            bucket.credit -= CLICK;
            true
        } else {
            false
        }
    }

    /// Networks held now, over every shard.
    pub fn networks(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map_or(0, |buckets| buckets.len())).sum()
    }

    /// Clicks let through uncounted because the table was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// Which clients clicked which links lately, so a client that drops its cookie is still one
/// unique click (docs/RULES.md, "Unique clicks"): per (network, user agent, offer, member), when
/// its unique-click window ends. Bounded like [`RateLimiter`]: at most `max_entries`; a full
/// table first drops the windows that ended, and beyond that a click is judged by its cookie
/// alone (counted in [`Self::overflowed`]).
#[derive(Debug)]
pub struct UniqueClients {
    shards: Vec<Mutex<Windows>>,
    max_per_shard: usize,
    overflowed: AtomicU64,
}

/// One shard's windows, and the size at which ended ones are next swept out: twice what was
/// left at the last sweep, so sweeping costs a constant share of the inserts and the table
/// stays within about twice the windows still open.
#[derive(Debug, Default)]
struct Windows {
    ends: HashMap<[u8; 16], i64>,
    sweep_at: usize,
}

impl Windows {
    fn sweep(&mut self, now: i64) {
        self.ends.retain(|_, ends| now < *ends);
        self.sweep_at = (2 * self.ends.len()).max(1024);
        if self.ends.capacity() > 4 * self.sweep_at {
            self.ends.shrink_to(self.sweep_at);
        }
    }
}

impl UniqueClients {
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Windows::default())).collect(),
            max_per_shard: max_entries.div_ceil(SHARDS).max(1),
            overflowed: AtomicU64::new(0),
        }
    }

    /// Whether `key` clicked within its window before `now`; if not, its window starts now
    /// and lasts `window_ms`.
    pub fn repeat(&self, key: [u8; 16], window_ms: i64, now: i64) -> bool {
        let mut windows =
            self.shards[usize::from(key[0]) % SHARDS].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.ends.get(&key).is_some_and(|ends| now < *ends) {
            return true;
        }
        if !windows.ends.contains_key(&key) && windows.ends.len() >= windows.sweep_at.min(self.max_per_shard) {
            windows.sweep(now);
            if windows.ends.len() >= self.max_per_shard {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        windows.ends.insert(key, now.saturating_add(window_ms));
        false
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map_or(0, |windows| windows.ends.len())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

fn shard_of(network: IpAddr) -> usize {
    let bits = match network {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) >> 64,
    };
    // Fibonacci hashing of the low bits spreads neighbouring addresses over the shards.
    ((bits as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % SHARDS
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(forwarded: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(forwarded).unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_read_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forwarded = headers("1.1.1.1, 203.0.113.7, 10.0.0.5");
        assert_eq!(client_address(ip("198.51.100.1"), &forwarded, &trusted), ip("198.51.100.1"), "untrusted peer");
        assert_eq!(client_address(ip("10.0.0.9"), &forwarded, &trusted), ip("203.0.113.7"), "spoofed left entry");
        assert_eq!(client_address(ip("10.0.0.9"), &forwarded, &[]), ip("10.0.0.9"), "no trusted proxies");
        assert_eq!(client_address(ip("10.0.0.9"), &headers("10.1.1.1"), &trusted), ip("10.1.1.1"), "all trusted");
        assert_eq!(client_address(ip("10.0.0.9"), &headers("junk, 10.0.0.2"), &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.9"), &HeaderMap::new(), &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn the_rate_limit_is_a_bucket_per_network_refilled_over_a_minute_in_a_bounded_table() {
        let limiter = RateLimiter::new(32);
        let t = 60_000 * 1_000;
        let allowed = (0..5).filter(|_| limiter.allow(ip("192.0.2.1"), 3, t)).count();
        assert_eq!(allowed, 3, "a burst of the limit");
        assert!(limiter.allow(ip("192.0.2.2"), 3, t), "another network has its own bucket");
        assert!(!limiter.allow(ip("192.0.2.1"), 3, t + 19_999), "a click comes back every 20 s at 3 a minute");
        assert!(limiter.allow(ip("192.0.2.1"), 3, t + 20_000));
        let later = t + 10 * 60_000;
        assert_eq!((0..5).filter(|_| limiter.allow(ip("192.0.2.1"), 3, later)).count(), 3, "never more than full");
        assert!(limiter.allow(ip("192.0.2.1"), 0, t), "0 is no limit");
        for host in 0..1000u32 {
            limiter.allow(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + host)), 3, later);
        }
        assert!(limiter.networks() <= 32 + SHARDS, "{} networks held", limiter.networks());
        assert!(limiter.overflowed() > 0);
        // A minute on, the idle networks are dropped to make room.
        let before = limiter.overflowed();
        assert!(limiter.allow(ip("203.0.113.1"), 3, later + 60_000));
        assert_eq!(limiter.overflowed(), before);
    }

    #[test]
    fn a_client_repeats_within_its_window_and_the_table_stays_bounded() {
        let clients = UniqueClients::new(32);
        let day = 86_400_000;
        assert!(!clients.repeat([1; 16], day, 0), "the first click");
        assert!(clients.repeat([1; 16], day, day - 1));
        assert!(!clients.repeat([1; 16], day, day), "the window ended: unique again");
        assert!(clients.repeat([1; 16], day, day + 5));
        assert!(!clients.repeat([2; 16], day, 5), "another client or link");
        for n in 0..1000u16 {
            let mut key = [0u8; 16];
            key[..2].copy_from_slice(&n.to_be_bytes());
            key[2] = 9;
            clients.repeat(key, day, 10);
        }
        assert!(clients.len() <= 32 + SHARDS);
        assert!(clients.overflowed() > 0);
        let before = clients.overflowed();
        assert!(!clients.repeat([3; 16], day, 3 * day), "ended windows make room");
        assert_eq!(clients.overflowed(), before);
    }
}
