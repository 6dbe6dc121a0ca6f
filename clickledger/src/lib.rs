//! clickledger in one process (the embedded deployment): the tracking edge, the attributor,
//! the settler and the program / report API on one SQLite log and one SQLite store under a
//! data directory. No servers.
//!
//! - [`start`] starts everything on bound listeners and returns a [`Running`] handle;
//!   `main` and the tests call it.
//! - [`cli`]: the settings of its binaries, and every binary's settings in one list.
//! - [`banner`]: what `clickledger` prints when it is ready.

pub mod banner;
pub mod cli;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters::deployment::{Deployment, DeploymentArgs, Job, Shutdown};
use anyhow::Context;
use api::ApiState;
use api::auth::KeyRing;
use banner::KeySource;
use ingest::{Edge, EdgeArgs, EdgeConfig};
use model::clickid::ClickKeyRing;
use model::program::ProgramFile;
use pipeline::Clock;
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use tokio::net::TcpListener;

/// The program loaded when no file is given.
pub const SAMPLE_PROGRAM: &str = include_str!("../../deploy/sample-program.toml");

#[derive(Clone)]
pub struct AppConfig {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// A program file; `None` loads the sample program into an empty data directory.
    pub program: Option<PathBuf>,
    /// Click-id keys; `None` uses the ones kept in the data directory (made on first start).
    pub click_keys: Option<String>,
    /// The bootstrap admin key; `None` uses the one kept in the data directory.
    pub admin_key: Option<String>,
    /// The edge's settings, as the standalone `ingest` takes them.
    pub edge: EdgeArgs,
    /// The API's timeouts and body limit, as `clickledger-api` takes them.
    pub api_limits: api::serve::ApiLimits,
    /// How the notifier delivers postbacks and webhooks.
    pub notify: notifier::NotifyArgs,
    pub clock: Clock,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig").field("data", &self.data).field("listen", &self.listen).finish()
    }
}

/// A started clickledger.
#[derive(Debug)]
pub struct Running {
    pub edge: SocketAddr,
    pub api: SocketAddr,
    pub admin_key: String,
    /// Where the admin key came from.
    pub admin_key_source: KeySource,
    pub topics: Topics,
    /// The program this process follows.
    pub program: Arc<SharedProgram>,
    data: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// What to print once it runs: where it listens, where the admin key is, commands to try.
    pub fn banner(&self) -> String {
        self.program.read(|program| banner::banner(self.edge, self.api, &self.data, program, &self.admin_key_source))
    }

    /// Stop everything cleanly and wait for it.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await?
    }
}

/// A secret kept in the data directory, made on first use and readable by this user only
/// (mode 0600).
fn kept_secret(data: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let path = data.join(name);
    if let Ok(secret) = std::fs::read_to_string(&path) {
        return Ok(secret.trim().to_string());
    }
    let secret = make();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, secret.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// 160 random bits as text (two ULIDs' worth of randomness from the OS-seeded generator).
fn random_secret() -> String {
    format!("{}{}{}", ulid::Ulid::new(), ulid::Ulid::new(), ulid::Ulid::new()).to_lowercase()
}

pub async fn start(config: AppConfig) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data).with_context(|| format!("creating {}", config.data.display()))?;
    let click_keys = match &config.click_keys {
        Some(keys) => keys.clone(),
        None => kept_secret(&config.data, "click-keys", || format!("1:{}", random_secret()))?,
    };
    let click_keys = ClickKeyRing::parse(&click_keys)?;
    let (admin_key, admin_key_source) = match &config.admin_key {
        Some(key) => (key.clone(), KeySource::Setting),
        None => {
            (kept_secret(&config.data, "admin-key", random_secret)?, KeySource::File(config.data.join("admin-key")))
        }
    };
    let program_file = config.program.as_deref().map(read_program_file).transpose()?;
    let edge_listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let api_listener =
        TcpListener::bind(config.api_listen).await.with_context(|| format!("binding {}", config.api_listen))?;
    let edge = edge_listener.local_addr()?;
    let api = api_listener.local_addr()?;

    let deployment = Deployment::connect(&DeploymentArgs::embedded(&config.data)).await?;
    let topics = deployment.topics();
    let (stop, shutdown) = Shutdown::new();
    let (ready, started) = tokio::sync::oneshot::channel();
    let job = Everything {
        topics: topics.clone(),
        edge_listener,
        api_listener,
        edge_config: config.edge.config(topics.clone(), click_keys.clone()),
        api_limits: config.api_limits,
        notify: config.notify,
        click_keys,
        keys: KeyRing::with_bootstrap(&admin_key),
        program_file,
        clock: config.clock.clone(),
        ready: Some(ready),
    };
    let task = tokio::spawn(deployment.run_until(job, shutdown));
    // Answer only once the program is loaded and everything serves; a refused program file
    // fails the start instead of leaving a process that answers nothing.
    let Ok(program) = started.await else {
        return Err(match task.await {
            Ok(Err(error)) => error,
            Ok(Ok(())) => anyhow::anyhow!("clickledger stopped while starting"),
            Err(error) => error.into(),
        });
    };
    Ok(Running { edge, api, admin_key, admin_key_source, topics, program, data: config.data, stop, task })
}

struct Everything {
    topics: Topics,
    edge_listener: TcpListener,
    api_listener: TcpListener,
    click_keys: ClickKeyRing,
    keys: KeyRing,
    program_file: Option<ProgramFile>,
    edge_config: EdgeConfig,
    api_limits: api::serve::ApiLimits,
    notify: notifier::NotifyArgs,
    clock: Clock,
    /// Told, with the program, once everything serves.
    ready: Option<tokio::sync::oneshot::Sender<Arc<SharedProgram>>>,
}

impl Job for Everything {
    async fn run<L: EventLog, St: Store>(
        self,
        log: L,
        store: St,
        program: Arc<SharedProgram>,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        program.until_loaded().await;
        let file = match self.program_file {
            Some(file) => Some(file),
            None if program.applied() == 0 => Some(ProgramFile::from_toml(SAMPLE_PROGRAM).map_err(anyhow::Error::msg)?),
            None => None,
        };
        if let Some(file) = file {
            let planned =
                pipeline::follow::load_program_file(&log, &self.topics, &program, file, "program-file").await?;
            tracing::info!(changes = planned, "program file loaded");
        }

        let edge = Edge::new(self.edge_config, log.clone(), program.clone());
        let edge = tokio::spawn(ingest::run(self.edge_listener, edge, shutdown.clone().wait()));
        let attributor = tokio::spawn(attributor::run_attributor(
            log.clone(),
            store.clone(),
            program.clone(),
            self.topics.clone(),
            self.click_keys,
            shutdown.clone().wait(),
        ));
        let settler = tokio::spawn(settler::run_settler(
            log.clone(),
            store.clone(),
            program.clone(),
            self.topics.clone(),
            self.clock,
            settler::instances_per_process(),
            shutdown.clone(),
        ));
        let notifier = {
            let (log, store, program, topics) = (log.clone(), store.clone(), program.clone(), self.topics.clone());
            let wait = shutdown.clone().wait();
            tokio::spawn(async move { notifier::run_notifier(log, store, program, topics, &self.notify, wait).await })
        };
        let state = ApiState::new(log, store, program.clone(), self.topics, self.keys);
        let api = tokio::spawn(api::serve(self.api_listener, state, self.api_limits, shutdown.wait()));
        if let Some(ready) = self.ready {
            let _ = ready.send(program);
        }
        edge.await??;
        attributor.await??;
        settler.await??;
        notifier.await??;
        api.await??;
        Ok(())
    }
}

/// A program file (TOML), read and parsed.
pub fn read_program_file(path: &Path) -> anyhow::Result<ProgramFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    ProgramFile::from_toml(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
}
