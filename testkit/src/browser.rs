//! A real browser for tests of web pages and of the first-party tracking script: Debian's
//! headless `chromium`, driven through `chromedriver` (WebDriver over HTTP on 127.0.0.1).
//! The test command installs both (`deploy/services.sh`, `ensure_chromium`); a test that needs
//! them fails loudly when they are missing.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// A chromedriver process and one browser session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    address: SocketAddr,
    session: String,
}

/// Headless Chromium as Safari and Firefox behave by default: third-party cookies blocked. It
/// says it is an ordinary desktop Chrome: `HeadlessChrome` is on the edge's bot list.
const ARGUMENTS: &[&str] = &[
    "--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1024,768",
    "--test-third-party-cookie-phaseout",
    "--block-third-party-cookies",
    "--no-first-run",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or(0, |address| address.port())
}

impl Browser {
    /// Start chromedriver and open a browser with a fresh profile.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is not installed: run the test command (deploy/test.sh), which installs it");
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium(), "args": ARGUMENTS},
        }}});
        let created = call(address, "POST", "/session", Some(capabilities)).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not open a session: {created}"))
            .to_string();
        Browser { driver, address, session }
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(self.address, method, &format!("/session/{}{path}", self.session), body).await
    }

    /// Open `url` and wait for its load.
    pub async fn open(&self, url: &str) {
        self.command("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The page's URL now.
    pub async fn url(&self) -> String {
        self.command("GET", "/url", None).await["value"].as_str().unwrap_or_default().to_string()
    }

    /// Run `script` in the page and return its value.
    pub async fn run(&self, script: &str) -> Value {
        self.command("POST", "/execute/sync", Some(json!({"script": script, "args": []}))).await["value"].clone()
    }

    /// Wait (up to 10 s) until `condition`, a JavaScript expression, is true in the page.
    pub async fn wait_for(&self, condition: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.run(&format!("return Boolean({condition});")).await == Value::Bool(true) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{condition} never held on {}", self.url().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Save what a person would see now as a PNG.
    pub async fn screenshot(&self, path: &Path) {
        let shot = self.command("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the screenshot directory");
        }
        std::fs::write(path, png).expect("the screenshot is written");
    }

    pub async fn quit(mut self) {
        self.command("DELETE", "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Debian's browser binary.
fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or("/usr/bin/chromium")
}

/// One WebDriver command. chromedriver keeps connections open, so the answer is read by its
/// `Content-Length`, not to the end of the stream.
async fn call(address: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("chromedriver answers");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("the command is sent");
    stream.write_all(body.as_bytes()).await.expect("the command is sent");
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 65536];
    let answer = async {
        loop {
            let read = stream.read(&mut chunk).await.expect("chromedriver answers");
            if read == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&received);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase().strip_prefix("content-length:").map(|n| n.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0usize);
                if received.len() >= end + 4 + length {
                    return received[end + 4..end + 4 + length].to_vec();
                }
            }
        }
        received.clone()
    };
    let bytes = tokio::time::timeout(Duration::from_secs(60), answer).await.expect("chromedriver answers within 60 s");
    serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{method} {path}: {}", String::from_utf8_lossy(&bytes)))
}
