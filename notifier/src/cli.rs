//! The `notifier` binary: its settings and its start. [`NotifyArgs`] are also the embedded
//! `clickledger`'s.

use std::sync::Arc;
use std::time::Duration;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use adapters::process::ProcessArgs;
use clap::{Args, Parser};
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;

use crate::address::Allow;
use crate::run_notifier;
use crate::send::SendSettings;
use crate::stage::RetryPolicy;

/// How deliveries are made: which destinations are allowed, timeouts, retries, concurrency.
#[derive(Clone, Debug, Args)]
pub struct NotifyArgs {
    /// Non-public destinations the notifier may call: `public` (none), `loopback`, or
    /// `private` (every non-public range but cloud metadata addresses).
    #[arg(long = "notify-allow", env = "CLICKLEDGER_NOTIFY_ALLOW", default_value = "public")]
    pub allow: Allow,
    /// How long a delivery is retried before it is dead (`24h`, `30m`, ...).
    #[arg(long = "notify-retry-for", env = "CLICKLEDGER_NOTIFY_RETRY_FOR", default_value = "24h", value_parser = parse_duration)]
    pub retry_for: Duration,
    /// The wait after a first failed attempt; it doubles after each, up to an hour.
    #[arg(long = "notify-backoff", env = "CLICKLEDGER_NOTIFY_BACKOFF", default_value = "1s", value_parser = parse_duration)]
    pub backoff: Duration,
    /// The longest an attempt may take, answer included.
    #[arg(long = "notify-timeout", env = "CLICKLEDGER_NOTIFY_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The longest a connection may take to open.
    #[arg(long = "notify-connect-timeout", env = "CLICKLEDGER_NOTIFY_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Attempts under way at once per destination host.
    #[arg(long = "notify-concurrency", env = "CLICKLEDGER_NOTIFY_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
}

impl Default for NotifyArgs {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        let send = SendSettings::default();
        Self {
            allow: send.allow,
            retry_for: policy.retry_for,
            backoff: policy.backoff,
            timeout: send.timeout,
            connect_timeout: send.connect_timeout,
            concurrency: 4,
        }
    }
}

impl NotifyArgs {
    pub fn send_settings(&self) -> SendSettings {
        SendSettings {
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            allow: self.allow,
            ..SendSettings::default()
        }
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy { backoff: self.backoff, retry_for: self.retry_for }
    }
}

/// `250ms`, `10s`, `15m`, `24h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 =
        number.parse().map_err(|_| format!("{text:?} is not a duration such as 250ms, 10s, 15m or 24h"))?;
    let millis = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{text:?} is not a duration such as 250ms, 10s, 15m or 24h")),
    };
    Ok(Duration::from_millis(number.saturating_mul(millis)))
}

#[derive(Debug, Parser)]
#[command(name = "notifier", about = "The clickledger notifier: partner postbacks and webhooks")]
pub struct NotifierArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// Run the notifier on the deployment `args` name until Ctrl-C or SIGTERM.
pub async fn start(args: NotifierArgs) -> anyhow::Result<()> {
    let deployment = Deployment::connect(&args.deployment).await?;
    let shutdown = adapters::deployment::signalled();
    args.process.start_metrics(shutdown.clone().wait()).await?;
    let topics = deployment.topics();
    deployment.run_until(Notifier { topics, settings: args.notify }, shutdown).await
}

struct Notifier {
    topics: Topics,
    settings: NotifyArgs,
}

impl Job for Notifier {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        run_notifier(log, store, program, self.topics, &self.settings, shutdown.wait()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("1.5s").is_err());
    }
}
