//! The ceiling for the edge benchmark: a bare hyper server that answers every request with
//! the same kind of 302 a click gets (Location with a click id, visitor cookie) and records
//! nothing. Same runtime, same HTTP/1.1 settings as the edge.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: SocketAddr,
}

fn redirect() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_static("https://shop.example.com/landing?click_id=AQE5Ynbv7tIDvh8XwqJrLOuHBnN1bW1lcgRqYW5lGjAxSkQ4WjBROEs4WkozVzZZMlQ5UjVNNE4PnnsmU7tZrlmIAMqWpO0f"),
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("clk_v=01JD8Z0Q8K8ZJ3W6Y2T9R5M4N0; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service_fn(|_request| async { Ok::<_, Infallible>(redirect()) }));
        tokio::spawn(connection);
    }
}
