//! How the edge behaves: [`EdgeConfig`], and [`EdgeArgs`], the flags and environment
//! variables that set it — the same in the standalone `ingest` and in the one-process
//! `clickledger`.

use std::time::Duration;

use ipnet::IpNet;
use model::clickid::ClickKeyRing;
use model::time::Span;
use pipeline::ports::log::Topics;

/// How the edge behaves; every field has a default (see [`EdgeConfig::new`]) and a setting
/// in [`EdgeArgs`] (the README lists them).
#[derive(Clone, Debug)]
pub struct EdgeConfig {
    pub topics: Topics,
    /// Signs new click ids and verifies returned ones. `CLICKLEDGER_CLICK_KEYS`.
    pub click_keys: ClickKeyRing,
    /// Mark the visitor cookie `Secure` (behind HTTPS). `CLICKLEDGER_SECURE_COOKIE`, default false.
    pub secure_cookie: bool,
    /// Lifetime of the visitor cookie, default 365d.
    pub visitor_cookie_max_age: Span,
    /// How long a click or pixel waits for the log before answering anyway, default 5 ms: a
    /// shopper's redirect never waits out a slow fsync or broker (docs/PERFORMANCE.md).
    /// `CLICKLEDGER_CLICK_ACK_WAIT_MS`.
    pub click_ack_wait: Duration,
    /// How long a postback, refund or cancel waits for the log before 503, default 5 s.
    /// `CLICKLEDGER_POSTBACK_ACK_TIMEOUT_MS`.
    pub postback_ack_timeout: Duration,
    /// Largest request body, default 16 KiB (413 above). `CLICKLEDGER_BODY_LIMIT`.
    pub body_limit: usize,
    /// Time allowed for a client to send its request headers, default 5 s.
    /// `CLICKLEDGER_HEADER_TIMEOUT_MS`.
    pub header_timeout: Duration,
    /// Time allowed for a client to send its body, default 5 s (408 after).
    /// `CLICKLEDGER_BODY_TIMEOUT_MS`.
    pub body_timeout: Duration,
    /// How far `X-Timestamp` may be from now, default 300 s.
    pub signature_tolerance_seconds: i64,
    /// How far in the past and future `occurred_at` may be: 90d and 5m.
    pub occurred_at_past: Span,
    pub occurred_at_future: Span,
    /// `Retry-After` on 503, default 1 s.
    pub retry_after_seconds: u32,
    /// After a shutdown signal, how long to keep serving while `/readyz` already says no, so
    /// load balancers stop sending first. Default 0. `CLICKLEDGER_SHUTDOWN_GRACE_MS`.
    pub shutdown_grace: Duration,
    /// How long in-flight requests may take to finish at shutdown, default 10 s.
    pub drain_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (load balancers, CDNs), as CIDR networks;
    /// default none: the client is the socket peer. `CLICKLEDGER_TRUSTED_PROXIES`.
    pub trusted_proxies: Vec<IpNet>,
    /// Signatures remembered against replay at most, default 1,000,000 (about 60 MB when
    /// full); beyond, signed requests get 503 `replay_cache_full`.
    /// `CLICKLEDGER_REPLAY_CACHE_ENTRIES`.
    pub replay_capacity: usize,
    /// Client networks the click rate limit counts per minute at most, default 1,000,000;
    /// clicks of networks beyond are let through and counted in
    /// `clickledger_ingest_rate_limit_overflow_total`.
    pub rate_limit_networks: usize,
    /// (client, link) unique-click windows remembered at most, default 1,000,000 (about
    /// 50 MB when full); beyond, a click is judged by its cookie alone.
    /// `CLICKLEDGER_UNIQUE_CLIENT_ENTRIES`.
    pub unique_client_entries: usize,
}

impl EdgeConfig {
    pub fn new(topics: Topics, click_keys: ClickKeyRing) -> Self {
        Self {
            topics,
            click_keys,
            secure_cookie: false,
            visitor_cookie_max_age: Span::days(365),
            click_ack_wait: Duration::from_millis(5),
            postback_ack_timeout: Duration::from_secs(5),
            body_limit: 16 * 1024,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            signature_tolerance_seconds: 300,
            occurred_at_past: Span::days(90),
            occurred_at_future: Span::seconds(300),
            retry_after_seconds: 1,
            shutdown_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            replay_capacity: 1_000_000,
            rate_limit_networks: 1_000_000,
            unique_client_entries: 1_000_000,
        }
    }
}

/// The edge's settings as flags and environment variables. Unset ones keep the defaults of
/// [`EdgeConfig::new`].
#[derive(Clone, Debug, Default, clap::Args)]
pub struct EdgeArgs {
    /// Mark the visitor cookie `Secure` (the edge is behind HTTPS).
    #[arg(long, env = "CLICKLEDGER_SECURE_COOKIE", value_parser = clap::builder::BoolishValueParser::new())]
    pub secure_cookie: Option<bool>,
    /// How long a click or pixel waits for the log before answering anyway (ms, default 5).
    #[arg(long, env = "CLICKLEDGER_CLICK_ACK_WAIT_MS")]
    pub click_ack_wait_ms: Option<u64>,
    /// How long a postback, refund or cancel waits for the log before 503 (ms, default 5000).
    #[arg(long, env = "CLICKLEDGER_POSTBACK_ACK_TIMEOUT_MS")]
    pub postback_ack_timeout_ms: Option<u64>,
    /// Largest request body in bytes (default 16384; 413 above).
    #[arg(long, env = "CLICKLEDGER_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Time a client has to send its request headers (ms, default 5000).
    #[arg(long, env = "CLICKLEDGER_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// Time a client has to send its body (ms, default 5000; 408 after).
    #[arg(long, env = "CLICKLEDGER_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// After a shutdown signal, how long to keep serving while `/readyz` says no (ms,
    /// default 0), so load balancers stop sending first.
    #[arg(long, env = "CLICKLEDGER_SHUTDOWN_GRACE_MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// Proxies whose `X-Forwarded-For` is believed, as comma-separated CIDR networks
    /// (`10.0.0.0/8,192.168.0.0/16`); default none.
    #[arg(long, env = "CLICKLEDGER_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<IpNet>>,
    /// Signatures remembered against replay at most (default 1000000).
    #[arg(long, env = "CLICKLEDGER_REPLAY_CACHE_ENTRIES")]
    pub replay_cache_entries: Option<usize>,
    /// (client, link) unique-click windows remembered at most (default 1000000).
    #[arg(long, env = "CLICKLEDGER_UNIQUE_CLIENT_ENTRIES")]
    pub unique_client_entries: Option<usize>,
}

impl EdgeArgs {
    /// The edge's configuration: these settings over the defaults.
    pub fn config(&self, topics: Topics, click_keys: ClickKeyRing) -> EdgeConfig {
        let mut config = EdgeConfig::new(topics, click_keys);
        let millis = Duration::from_millis;
        if let Some(secure) = self.secure_cookie {
            config.secure_cookie = secure;
        }
        if let Some(wait) = self.click_ack_wait_ms {
            config.click_ack_wait = millis(wait);
        }
        if let Some(timeout) = self.postback_ack_timeout_ms {
            config.postback_ack_timeout = millis(timeout);
        }
        if let Some(limit) = self.body_limit {
            config.body_limit = limit;
        }
        if let Some(timeout) = self.header_timeout_ms {
            config.header_timeout = millis(timeout);
        }
        if let Some(timeout) = self.body_timeout_ms {
            config.body_timeout = millis(timeout);
        }
        if let Some(grace) = self.shutdown_grace_ms {
            config.shutdown_grace = millis(grace);
        }
        if let Some(trusted) = &self.trusted_proxies {
            config.trusted_proxies = trusted.clone();
        }
        if let Some(entries) = self.replay_cache_entries {
            config.replay_capacity = entries;
        }
        if let Some(entries) = self.unique_client_entries {
            config.unique_client_entries = entries;
        }
        config
    }
}
