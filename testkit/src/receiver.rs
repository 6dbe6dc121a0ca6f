//! A partner's endpoint on 127.0.0.1 for the notifier's tests and benchmark: it records every
//! request and answers as the test scripts it (a status, a `Retry-After`, or never), by the
//! attempt number of the delivery (`Clickledger-Delivery` header) it is for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
    /// 1 for the first request of its delivery, 2 for the second, ...
    pub attempt: u32,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The `Clickledger-Delivery` header.
    pub fn delivery(&self) -> String {
        self.header("clickledger-delivery").unwrap_or_default().to_string()
    }

    /// The value of query parameter `name`, percent-decoded.
    pub fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode(value))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match (bytes[index], bytes.get(index + 1..index + 3)) {
            (b'%', Some(hex)) => match u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16) {
                Ok(byte) => {
                    out.push(byte);
                    index += 3;
                }
                Err(_) => {
                    out.push(b'%');
                    index += 1;
                }
            },
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How the receiver answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` of this many seconds.
    RetryAfter(u16, u32),
    /// Read the request and never answer.
    Hang,
}

type Behaviour = dyn Fn(&Received) -> Reply + Send + Sync;

#[derive(Default)]
struct Log {
    requests: Vec<Received>,
    /// Requests so far per delivery id.
    attempts: HashMap<String, u32>,
}

#[derive(Clone)]
pub struct Receiver {
    pub address: SocketAddr,
    log: Arc<Mutex<Log>>,
    open: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("address", &self.address).finish()
    }
}

impl Receiver {
    /// Listen on a free 127.0.0.1 port, answering each request as `behaviour` says.
    pub async fn start(behaviour: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let address = listener.local_addr().expect("its address");
        let receiver = Self { address, log: Arc::default(), open: Arc::default() };
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (receiver, behaviour) = (serving.clone(), behaviour.clone());
                tokio::spawn(async move { receiver.serve(stream, behaviour).await });
            }
        });
        receiver
    }

    /// `http://127.0.0.1:{port}{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().expect("receiver log").requests.clone()
    }

    /// How many requests came so far.
    pub fn count(&self) -> usize {
        self.log.lock().expect("receiver log").requests.len()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    async fn serve(&self, stream: TcpStream, behaviour: Arc<Behaviour>) {
        self.open.fetch_add(1, Ordering::SeqCst);
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let Some(mut request) = read_request(&mut reader).await else {
                break;
            };
            let reply = {
                let mut log = self.log.lock().expect("receiver log");
                let attempts = log.attempts.entry(request.delivery()).or_default();
                *attempts += 1;
                request.attempt = *attempts;
                let reply = behaviour(&request);
                log.requests.push(request);
                reply
            };
            let response = match reply {
                Reply::Status(status) => {
                    format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok")
                }
                Reply::RetryAfter(status, seconds) => {
                    format!("HTTP/1.1 {status} X\r\nretry-after: {seconds}\r\ncontent-length: 0\r\n\r\n")
                }
                Reply::Hang => {
                    // Hold the connection until the client gives up and closes it.
                    let mut rest = Vec::new();
                    let _ = reader.read_to_end(&mut rest).await;
                    break;
                }
            };
            if write.write_all(response.as_bytes()).await.is_err() {
                break;
            }
        }
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn read_request(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Received> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Received {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        attempt: 0,
    })
}
