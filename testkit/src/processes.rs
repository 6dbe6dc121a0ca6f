//! Processes a test starts and stops itself: the workspace's worker binaries, and a private
//! ClickHouse server and Tansu broker (the ones the test command installs) that a fault drill
//! may stop and start again without disturbing the tests that share the command's services.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A binary of the workspace (`target/<profile>/{name}`), built by the README's test command
/// before the tests run.
pub fn binary(name: &str) -> PathBuf {
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// One worker process of a deployment; every run of it logs to one file.
#[derive(Debug)]
pub struct Worker {
    pub name: &'static str,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Child,
    /// Runs after the first (restarts after a kill or an exit).
    pub restarts: u32,
}

impl Worker {
    pub fn start(name: &'static str, env: &[(String, String)], log: PathBuf) -> Self {
        let child = Self::spawn(name, env, &log);
        Self { name, env: env.to_vec(), log, child, restarts: 0 }
    }

    fn spawn(name: &str, env: &[(String, String)], log: &Path) -> Child {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        Command::new(binary(name))
            .envs(env.iter().cloned())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap()
    }

    fn note(&self, line: &str) {
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        std::io::Write::write_all(&mut file, format!("--- {line}\n").as_bytes()).unwrap();
    }

    /// SIGKILL and start again.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.restart();
    }

    /// SIGKILL, without a restart.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.note("killed");
    }

    pub fn restart(&mut self) {
        self.child = Self::spawn(self.name, &self.env, &self.log);
        self.restarts += 1;
    }

    /// As a supervisor (Kubernetes, compose's `restart: unless-stopped`) does: start it again
    /// if it exited. Whether it had exited.
    pub fn restart_if_exited(&mut self) -> bool {
        match self.child.try_wait().unwrap() {
            Some(status) => {
                self.note(&format!("exited with {status}"));
                self.restart();
                true
            }
            None => false,
        }
    }

    /// What it logged at `levels`, with the kills, and how a run ended in error.
    pub fn logged(&self, levels: &[&str]) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter(|line| {
                levels.iter().any(|level| line.contains(level)) || line.starts_with("---") || line.starts_with("Error")
            })
            .map(str::to_string)
            .collect()
    }

    /// The warnings and errors it logged, for a failure's report.
    pub fn troubles(&self) -> String {
        format!("{} ({}):\n{}", self.name, self.log.display(), self.logged(&[" WARN ", " ERROR "]).join("\n"))
    }

    /// Errors it logged (and how a run ended in error).
    pub fn errors(&self) -> Vec<String> {
        self.logged(&[" ERROR "]).into_iter().filter(|line| !line.starts_with("---")).collect()
    }

    /// SIGTERM; a clean stop exits 0 within 60 s.
    pub fn stop(&mut self) {
        signal(self.child.id(), "TERM");
        let started = Instant::now();
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("{} did not stop within 60 s of SIGTERM\n{}", self.name, self.troubles());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(exit.success(), "{} stopped with {exit}\n{}", self.name, self.troubles());
    }
}

/// A failed test leaves no process behind.
impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_until(what: &str, patience: Duration, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < patience, "{what} did not come up within {patience:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(200)).is_ok()
}

/// A service process of its own (a ClickHouse server, a Tansu broker) in `dir`, stopped with
/// SIGTERM and started again on the same port and data.
#[derive(Debug)]
pub struct ServiceProcess {
    name: &'static str,
    command: Command,
    child: Option<Child>,
    port: u16,
    /// How long a stop waits after SIGTERM before SIGKILL.
    term_grace: Duration,
}

impl ServiceProcess {
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        self.child = Some(self.command.spawn().unwrap_or_else(|error| panic!("{}: {error}", self.name)));
        let port = self.port;
        wait_until(self.name, Duration::from_secs(60), || answers(port));
    }

    /// SIGTERM, and wait for the process to end; SIGKILL after its grace (a ClickHouse server
    /// with clients connected takes long to stop by itself).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            let started = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if started.elapsed() > self.term_grace {
                    eprintln!("{} did not stop within {:?} of SIGTERM: SIGKILL", self.name, self.term_grace);
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Start again on the same port and data; returns once it accepts connections.
    pub fn start(&mut self) {
        self.spawn();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A private ClickHouse server (Debian's `clickhouse-server`, as the test command installs
/// it) with the test command's config (`deploy/clickhouse/server.xml`), data under `dir`.
pub fn clickhouse_server(dir: &Path) -> (ServiceProcess, String) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/clickhouse");
    for sub in ["data", "tmp", "user_files", "format_schemas"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let (http, tcp) = (free_port(), free_port());
    let config = std::fs::read_to_string(deploy.join("server.xml"))
        .unwrap()
        .replace("@DIR@", &dir.display().to_string())
        .replace("@HTTP_PORT@", &http.to_string())
        .replace("@TCP_PORT@", &tcp.to_string());
    std::fs::write(dir.join("config.xml"), config).unwrap();
    std::fs::copy(deploy.join("users.xml"), dir.join("users.xml")).unwrap();
    let output = std::fs::File::create(dir.join("stdout.log")).unwrap();
    let mut command = Command::new("clickhouse-server");
    command.arg(format!("--config-file={}", dir.join("config.xml").display())).stdout(output).stderr(Stdio::null());
    let mut server = ServiceProcess {
        name: "clickhouse-server",
        command,
        child: None,
        port: http,
        term_grace: Duration::from_secs(2),
    };
    server.spawn();
    let url = format!("http://127.0.0.1:{http}");
    wait_until("ClickHouse /ping", Duration::from_secs(60), || {
        Command::new("curl").args(["-fs", &format!("{url}/ping")]).output().is_ok_and(|output| output.status.success())
    });
    (server, url)
}

/// A private Tansu broker (as the test command installs it) with its data in `dir`.
pub fn tansu_broker(dir: &Path) -> (ServiceProcess, String) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let listener = format!("tcp://127.0.0.1:{port}");
    let output = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tansu.log")).unwrap();
    let mut command = Command::new("tansu");
    command
        .current_dir(dir)
        .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
        .args(["--storage-engine", "sqlite://tansu.db"])
        .stdout(Stdio::null())
        .stderr(output);
    let mut broker = ServiceProcess { name: "tansu", command, child: None, port, term_grace: Duration::from_secs(10) };
    broker.spawn();
    (broker, format!("127.0.0.1:{port}"))
}
