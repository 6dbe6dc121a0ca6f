//! Deliveries per second: the notifier stage delivering a webhook for each of `--notices`
//! notices, pre-filled on the embedded log, to receivers on 127.0.0.1 (`--destinations` of
//! them, one webhook each), against the baseline of the same HTTP client sending the same
//! requests with the same concurrency and nothing else (no log, no state, no delivery log).
//!
//! Prints, per round: the baseline's requests/s; the notifier's deliveries/s until the
//! receivers took every one, and until the delivery log recorded every one delivered; the
//! ratio to the baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use model::events::{CommissionLine, LineKind, LineStatus, Notice, NoticeEvent, NoticeKind, wire};
use model::ids::{DerivedId, EventId, MemberId, WebhookId};
use model::program::{ProgramFile, Webhook};
use model::{Currency, Timestamp};
use notifier::NotifyArgs;
use notifier::address::Allow;
use notifier::send::{Method, Request, Sender};
use pipeline::Shutdown;
use pipeline::ports::log::{EventLog, Record};
use pipeline::ports::store::{DeliveryQuery, ReportStore};
use rust_decimal_macros::dec;
use testkit::receiver::{Receiver, Reply};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    notices: usize,
    /// Receivers, each its own destination with its own concurrency limit.
    #[arg(long, default_value_t = 4)]
    destinations: usize,
    /// Attempts at once per destination (the notifier's limit, and the baseline's).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn notice(n: usize) -> Notice {
    let id = DerivedId::derive(&["bench-line", &n.to_string()]);
    let line = CommissionLine {
        id: id.clone(),
        member: MemberId::new("kid").expect("member"),
        tier: 1,
        earned_by: MemberId::new("kid").expect("member"),
        offer: None,
        order_key: None,
        source: EventId::new(),
        kind: LineKind::Conversion,
        rule: "cps".into(),
        keyword: "sale".into(),
        amount: dec!(12.99),
        currency: Currency::USD,
        status: LineStatus::Approved,
        description: "10% of 129.90".into(),
        earned_at: Timestamp::now(),
        revision: 0,
        bill: None,
    };
    let kind = NoticeKind::CommissionCreated;
    Notice {
        id: Notice::id_for(kind, id.as_str()),
        kind,
        at: Timestamp::now(),
        conversion: None,
        commission: Some(line),
        bill: None,
    }
}

/// The baseline: every request straight from the sender, `concurrency` at a time per receiver.
async fn baseline(receivers: &[Receiver], bodies: &[String], concurrency: usize) -> Duration {
    let sender = Sender::new(NotifyArgs { allow: Allow::Loopback, ..NotifyArgs::default() }.send_settings())
        .expect("an HTTP client");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, receiver) in receivers.iter().enumerate() {
        let mine: Arc<Vec<String>> = Arc::new(bodies.iter().skip(index).step_by(receivers.len()).cloned().collect());
        for lane in 0..concurrency {
            let (sender, mine, url) = (sender.clone(), mine.clone(), receiver.url("/hooks"));
            tasks.push(tokio::spawn(async move {
                for body in mine.iter().skip(lane).step_by(concurrency) {
                    let headers = [("Content-Type", "application/json".to_string())];
                    let request =
                        Request { method: Method::Post, url: &url, body: Some(body.as_bytes()), headers: &headers };
                    let attempt = sender.send(&request).await;
                    assert!(matches!(attempt.outcome, notifier::send::Outcome::Delivered { .. }));
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("a baseline lane");
    }
    started.elapsed()
}

/// The notifier over `notices` pre-filled notices: until the receivers took them all, and
/// until the delivery log says so.
async fn notifier_round(args: &Args, receivers: &[Receiver]) -> (Duration, Duration) {
    let (log, store, topics, _dir) = testkit::embedded(4).await;
    let (stop, shutdown) = Shutdown::new();
    let program = testkit::follow(&log, &topics, &shutdown).await;
    let webhooks = receivers
        .iter()
        .enumerate()
        .map(|(index, receiver)| Webhook {
            id: WebhookId::new(format!("bench-{index}")).expect("webhook id"),
            url: receiver.url("/hooks"),
            events: vec![NoticeKind::CommissionCreated],
            secret: "whsec_bench_0123456789abcdef".into(),
            active: true,
            description: String::new(),
        })
        .collect();
    let file = ProgramFile { webhooks, ..testkit::program_file() };
    pipeline::follow::load_program_file(&log, &topics, &program, file, "bench").await.expect("the program");
    // Every webhook subscribes to the notices' kind: each notice is one delivery per destination.
    let per_destination = args.notices / receivers.len();
    let records: Vec<Record> = (0..per_destination)
        .map(|n| {
            let notice = notice(n);
            Record {
                topic: topics.notices.clone(),
                key: notice.id.to_string(),
                payload: wire::encode_compact(&NoticeEvent::Notice(notice)),
            }
        })
        .collect();
    for chunk in records.chunks(5_000) {
        log.append(chunk.to_vec()).await.expect("pre-filled notices");
    }
    let expected = per_destination * receivers.len();
    let before: usize = receivers.iter().map(|receiver| receiver.count()).sum();
    let settings = NotifyArgs { allow: Allow::Loopback, concurrency: args.concurrency, ..NotifyArgs::default() };
    let started = Instant::now();
    let task = {
        let (log, store, program, topics) = (log.clone(), store.clone(), program.clone(), topics.clone());
        let wait = shutdown.clone().wait();
        tokio::spawn(async move { notifier::run_notifier(log, store, program, topics, &settings, wait).await })
    };
    let mut taken = None;
    loop {
        let received: usize = receivers.iter().map(|receiver| receiver.count()).sum::<usize>() - before;
        if taken.is_none() && received >= expected {
            taken = Some(started.elapsed());
        }
        if taken.is_some() {
            let query = DeliveryQuery {
                status: Some(model::events::DeliveryStatus::Delivered),
                limit: expected + 1,
                ..DeliveryQuery::default()
            };
            if store.deliveries(&query).await.expect("the delivery log").len() >= expected {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the notifier never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logged = started.elapsed();
    let _ = stop.send(true);
    task.await.expect("the notifier task").expect("the notifier");
    (taken.unwrap_or(logged), logged)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut receivers = Vec::new();
    for _ in 0..args.destinations {
        receivers.push(Receiver::start(|_| Reply::Status(200)).await);
    }
    let per_destination = args.notices / args.destinations;
    let bodies: Vec<String> =
        (0..per_destination * args.destinations).map(|n| notifier::resolve::webhook_body(&notice(n))).collect();
    println!(
        "{} deliveries per round to {} destinations, {} at once per destination",
        bodies.len(),
        args.destinations,
        args.concurrency
    );
    for round in 1..=args.rounds {
        let plain = baseline(&receivers, &bodies, args.concurrency).await;
        let (taken, logged) = notifier_round(&args, &receivers).await;
        let rate = |time: Duration| bodies.len() as f64 / time.as_secs_f64();
        println!(
            "round {round}: baseline {:.0} requests/s; notifier {:.0} deliveries/s taken, {:.0}/s in the delivery log; \
             {:.2}x the baseline's time (taken)",
            rate(plain),
            rate(taken),
            rate(logged),
            taken.as_secs_f64() / plain.as_secs_f64()
        );
    }
}
