//! `lag`: the edge, the attributor and the settler in one process, under a fixed rate of
//! clicks and postbacks from `oha`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Topics};
use pipeline::ports::store::Store;
use pipeline::{Shutdown, wall_clock};

use crate::Args;
use crate::recorder::RECORDED;

pub(crate) async fn lag<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    program: Arc<SharedProgram>,
) -> anyhow::Result<()> {
    let (stop, shutdown) = Shutdown::new();
    let edge_address = testkit::start_edge(&log, &topics, &program, &shutdown).await;
    let attributor = testkit::start_attributor(&log, &store, &program, &topics, &shutdown);
    let settler =
        tokio::spawn(settler::run_settler(log, store, program, topics, wall_clock(), args.instances, shutdown));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // One postback first: the traffic below must be accepted, not refused.
    let probe = testkit::postback(edge_address, "code=BENCH&order_id=probe&amount=50.00").await;
    anyhow::ensure!(probe.status == 200, "the benchmark postback was refused: {} {}", probe.status, probe.body);

    let clicks_rate = args.rate * 9 / 10;
    let postback_rate = args.rate - clicks_rate;
    let oha = |rate: u32, connections: u32, url: String| {
        tokio::process::Command::new("oha")
            .args(["--no-tui", "--output-format", "quiet", "--rand-regex-url"])
            .args(["-z", &format!("{}s", args.seconds), "-q", &rate.to_string(), "-c", &connections.to_string()])
            .arg(url)
            .stdout(std::process::Stdio::null())
            .status()
    };
    let started = Instant::now();
    let progress = std::env::var_os("BENCH_PROGRESS").map(|_| {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let counts: Vec<u64> = ["attributor", "orders", "ledger"].map(|stage| RECORDED.counter(stage)).into();
                eprintln!("{:>6.1?} attributor, orders, ledger: {counts:?}", started.elapsed());
            }
        })
    });
    let (clicks, postbacks) = tokio::join!(
        oha(clicks_rate, 128, format!(r"http://{edge_address}/c\?offer=store&member=m1[0-9][0-9]")),
        oha(
            postback_rate,
            8,
            format!(
                r"http://{edge_address}/pb\?code=BENCH&order_id=[a-z0-9]{{20}}&amount=50&token={}",
                model::testkit::SECRET
            )
        ),
    );
    anyhow::ensure!(clicks?.success() && postbacks?.success(), "oha failed");
    let offered = started.elapsed();
    if let Some(progress) = progress {
        progress.abort();
    }
    // Let the pipeline drain: until the ledger stage has been idle for two seconds.
    let mut last = (RECORDED.counter("ledger"), Instant::now());
    while last.1.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = RECORDED.counter("ledger");
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let events = RECORDED.counter("attributor");
    println!(
        "offered {} events/s for {:.1?}: {events} events reached the attributor ({:.0}/s)",
        args.rate,
        offered,
        events as f64 / offered.as_secs_f64()
    );
    for stage in ["attributor", "orders", "ledger"] {
        let mut samples = RECORDED.samples(stage);
        samples.sort_by(f64::total_cmp);
        if samples.is_empty() {
            continue;
        }
        let at = |quantile: f64| samples[((samples.len() - 1) as f64 * quantile).round() as usize] * 1000.0;
        println!(
            "lag to {stage} outputs durable: {} events, p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
            samples.len(),
            at(0.5),
            at(0.99),
            at(0.999),
            at(1.0)
        );
    }
    let _ = stop.send(true);
    attributor.await??;
    settler.await??;
    Ok(())
}
