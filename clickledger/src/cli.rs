//! The settings of the two binaries of this crate — `clickledger` (everything in one process)
//! and `clickledger-api` (the API of the scale deployment) — and the list of every binary's
//! settings ([`binaries`]), which deployment manifests are checked against.

use std::net::SocketAddr;
use std::path::PathBuf;

use adapters::deployment::DeploymentArgs;
use adapters::process::ProcessArgs;
use api::serve::ApiLimitArgs;
use clap::{CommandFactory, Parser};
use ingest::EdgeArgs;

/// `clickledger`: everything in one process on embedded files.
#[derive(Debug, Parser)]
#[command(name = "clickledger", about = "clickledger: affiliate tracking and commissions in one process")]
pub struct AppArgs {
    /// Where the log, the store and the generated keys live.
    #[arg(long, env = "CLICKLEDGER_DATA", default_value = "data")]
    pub data: PathBuf,
    /// The tracking edge (clicks, pixels, postbacks).
    #[arg(long, env = "CLICKLEDGER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The program and report API.
    #[arg(long, env = "CLICKLEDGER_API_LISTEN", default_value = "127.0.0.1:8081")]
    pub api_listen: SocketAddr,
    /// A program file (TOML) to load; without it the sample program is loaded into a new data
    /// directory.
    #[arg(long, env = "CLICKLEDGER_PROGRAM")]
    pub program: Option<PathBuf>,
    /// Click-id keys, `id:secret,...`; by default made once and kept in `data/click-keys`.
    #[arg(long, env = "CLICKLEDGER_CLICK_KEYS", hide_env_values = true)]
    pub click_keys: Option<String>,
    /// The bootstrap admin key; by default made once and kept in `data/admin-key`.
    #[arg(long, env = "CLICKLEDGER_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    #[command(flatten)]
    pub edge: EdgeArgs,
    #[command(flatten)]
    pub api_limits: ApiLimitArgs,
    #[command(flatten)]
    pub notify: notifier::NotifyArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// `clickledger-api`: the program and report API of the scale deployment.
#[derive(Debug, Parser)]
#[command(name = "clickledger-api", about = "The clickledger program and report API")]
pub struct ApiArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Where the API listens.
    #[arg(long, env = "CLICKLEDGER_API_LISTEN", default_value = "127.0.0.1:8081")]
    pub api_listen: SocketAddr,
    /// The bootstrap admin key.
    #[arg(long, env = "CLICKLEDGER_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: String,
    /// A program file (TOML) to load at start: only what differs is appended.
    #[arg(long, env = "CLICKLEDGER_PROGRAM")]
    pub program: Option<PathBuf>,
    #[command(flatten)]
    pub api_limits: ApiLimitArgs,
    #[command(flatten)]
    pub process: ProcessArgs,
}

/// Every binary of the workspace with the flags and environment variables it accepts: the one
/// list deployment files are checked against.
pub fn binaries() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("clickledger", AppArgs::command()),
        ("clickledger-api", ApiArgs::command()),
        ("ingest", ingest::cli::IngestArgs::command()),
        ("attributor", attributor::cli::AttributorArgs::command()),
        ("settler", settler::cli::SettlerArgs::command()),
        ("notifier", notifier::cli::NotifierArgs::command()),
    ]
}

/// A listener a binary opens: the variable that sets its address, and what it serves there.
#[derive(Debug, Clone)]
pub struct Listener {
    pub variable: &'static str,
    pub paths: Vec<String>,
}

/// The listeners of `binary`, each with the paths it serves, from the routes themselves: the
/// edge's [`ingest::routes::PATHS`], the API's OpenAPI paths, the metrics listener's
/// [`adapters::process::PATHS`].
pub fn listeners(binary: &str) -> Vec<Listener> {
    let edge = || Listener {
        variable: "CLICKLEDGER_LISTEN",
        paths: ingest::routes::PATHS.iter().map(|path| path.to_string()).collect(),
    };
    let api =
        || Listener { variable: "CLICKLEDGER_API_LISTEN", paths: api::openapi().paths.paths.into_keys().collect() };
    let metrics = Listener {
        variable: "CLICKLEDGER_METRICS_LISTEN",
        paths: adapters::process::PATHS.iter().map(|path| path.to_string()).collect(),
    };
    match binary {
        "clickledger" => vec![edge(), api(), metrics],
        "clickledger-api" => vec![api(), metrics],
        "ingest" => vec![edge(), metrics],
        _ => vec![metrics],
    }
}

/// Every metric a binary exports, by name (a histogram's series add `_bucket`, `_sum` and
/// `_count`): what the Grafana dashboard may query.
pub fn metric_names() -> Vec<&'static str> {
    [
        ingest::metrics::ALL,
        pipeline::metrics::ALL,
        api::metrics::ALL,
        notifier::metrics::ALL,
        adapters::store::METRICS,
        &[adapters::log::kafka::PRODUCERS_RENEWED],
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binary_names_its_settings_once() {
        for (name, command) in binaries() {
            command.clone().debug_assert();
            let mut variables: Vec<&str> =
                command.get_arguments().filter_map(|argument| argument.get_env()?.to_str()).collect();
            let all = variables.len();
            variables.sort_unstable();
            variables.dedup();
            assert_eq!(variables.len(), all, "{name} reads a variable twice");
            assert!(variables.iter().all(|variable| variable.starts_with("CLICKLEDGER_")), "{name}: {variables:?}");
        }
    }
}
