//! `stages`: each stage alone over a pre-filled topic, against a plain consumer of the same topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, LogConsumer, PartitionId, Record, Topics};
use pipeline::ports::store::Store;
use pipeline::{Shutdown, wall_clock};

use crate::cpu::{cpu_times, report_cpu};
use crate::plain::{plain_rdkafka_forward, plain_rdkafka_read};
use crate::recorder::RECORDED;
use crate::{Args, events, live};

pub(crate) async fn stages<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    program: Arc<SharedProgram>,
) -> anyhow::Result<()> {
    let total = args.events;
    let conversions = total / 5;
    let clicks = total - conversions;

    let started = Instant::now();
    for chunk in events(total, &topics).chunks(20_000) {
        log.append(chunk.to_vec()).await?;
    }
    log.flush(Duration::from_secs(60)).await?;
    let prefill = started.elapsed();
    println!("pre-filled {total} events ({clicks} clicks, {conversions} sales) in {prefill:.1?}");

    // Baseline: read the topic, do nothing. Measured before and after the attributor: a
    // broker whose store grows serves later reads slower (Tansu: twice as slow after a few
    // million records), so the stage is compared with both.
    let baseline = plain_read(args, &log, &topics, "baseline-before", total).await?;
    report("baseline: plain consumer", total as u64, baseline, None);

    // The attributor alone.
    let before = live();
    let (stop, shutdown) = Shutdown::new();
    let cpu = cpu_times();
    let started = Instant::now();
    let attributor = testkit::start_attributor(&log, &store, &program, &topics, &shutdown);
    let done = wait_for(&[("attributor", total as u64)], Duration::from_secs(900)).await;
    wait_for_end(&log, &[("attributor", &topics.events)], args.partitions, Duration::from_secs(900)).await;
    let elapsed = started.elapsed();
    let attributor_cpu = (cpu, cpu_times());
    // The heap once the last checkpoint's buffers are gone: what the visitors' states hold.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = live() - before;
    let _ = stop.send(true);
    attributor.await??;
    let after = plain_read(args, &log, &topics, "baseline-after", total).await?;
    report("baseline: plain consumer, after the attributor", total as u64, after, None);
    report("attributor", done, elapsed, Some(baseline));
    report_cpu("attributor", attributor_cpu, done, elapsed);
    let batches = RECORDED.samples("batch:attributor");
    println!("  batches: {} taking {:.2} s in all", batches.len(), batches.iter().sum::<f64>());
    println!("  {:.2}x the plain consumer's time after it", elapsed.as_secs_f64() / after.as_secs_f64());
    let visitors = total / 5;
    println!(
        "  heap held with {visitors} visitors tracked: {:.1} MiB, {} bytes per visitor (4 clicks each)",
        held as f64 / 1_048_576.0,
        held / visitors as i64
    );

    // Baseline of the settler: the log port's own consumer reading its input topics as the
    // attributor wrote them (on Kafka: in bundles, unpacked by the adapter).
    let inputs = [topics.orders.clone(), topics.ledger.clone()];
    let mut consumer = log.consumer(&topics.group("baseline-settler"), &inputs)?;
    let started = Instant::now();
    let read = drain(&mut consumer, total).await?;
    let settler_baseline = started.elapsed();
    drop(consumer);
    report("baseline: the log port's consumer reading the settler's inputs", read, settler_baseline, None);

    // The settler alone, over the attributor's outputs.
    let before = live();
    let (stop, shutdown) = Shutdown::new();
    let cpu = cpu_times();
    let started = Instant::now();
    let settler = tokio::spawn(settler::run_settler(
        log.clone(),
        store.clone(),
        program,
        topics.clone(),
        wall_clock(),
        args.instances,
        shutdown,
    ));
    let done = wait_for(&[("orders", conversions as u64), ("ledger", total as u64)], Duration::from_secs(1800)).await;
    let inputs = [("orders", &topics.orders), ("ledger", &topics.ledger)];
    wait_for_end(&log, &inputs, args.partitions, Duration::from_secs(1800)).await;
    let elapsed = started.elapsed();
    let settler_cpu = (cpu, cpu_times());
    // Inputs applied again after a rebalance count twice, so the count above is exact only
    // if no partition moved; after a pause, what the stages applied in all shows it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = live() - before;
    let _ = stop.send(true);
    settler.await??;
    report(
        "settler (orders + ledger stages; events = clicks + sales settled)",
        done.min(total as u64),
        elapsed,
        Some(after),
    );
    report_cpu("settler", settler_cpu, done.min(total as u64), elapsed);
    println!(
        "  {:.2}x the time of the log port's consumer reading its inputs",
        elapsed.as_secs_f64() / settler_baseline.as_secs_f64()
    );
    println!(
        "  heap held with {conversions} orders settled: {:.1} MiB, {} bytes per order",
        held as f64 / 1_048_576.0,
        held / (conversions as i64).max(1)
    );
    // Each partition once, unless a rebalance moved some (their inputs are applied again).
    println!(
        "  partitions assigned: orders {}, ledger {} ({} each); inputs applied in all: orders {}, ledger {}",
        RECORDED.counter("assigned:orders"),
        RECORDED.counter("assigned:ledger"),
        args.partitions,
        RECORDED.counter("orders"),
        RECORDED.counter("ledger"),
    );

    // Last (what it writes makes the broker slower): read the topic and write every record
    // to another one, a record per record with the stages' producer settings — what a stage
    // writing unbundled outputs would do at the least.
    let forward: Arc<str> = Arc::from(format!("{}forward", topics.prefix));
    let spec = pipeline::ports::log::TopicSpec { name: forward.clone(), partitions: args.partitions, compacted: false };
    log.create_topics(&[spec]).await?;
    let started = Instant::now();
    let forwarded = match &args.kafka_brokers {
        Some(brokers) => plain_rdkafka_forward(brokers, &topics.events, &forward, total).await?,
        None => plain_log_forward(&log, &topics, &forward, total).await?,
    };
    report(
        "baseline: plain consumer forwarding every record to another topic",
        forwarded,
        started.elapsed(),
        Some(after),
    );
    let lines = store
        .lines(&model::reports::ReportQuery { limit: 1, ..Default::default() })
        .await
        .map(|page| page.len())
        .unwrap_or(0);
    anyhow::ensure!(lines == 1, "the settler wrote no commission lines");
    Ok(())
}

pub(crate) fn report(what: &str, records: u64, elapsed: Duration, baseline: Option<Duration>) {
    let rate = records as f64 / elapsed.as_secs_f64();
    match baseline {
        Some(baseline) => println!(
            "{what}: {records} events in {elapsed:.2?} = {rate:.0} events/s ({:.2}x the baseline's time)",
            elapsed.as_secs_f64() / baseline.as_secs_f64()
        ),
        None => println!("{what}: {records} events in {elapsed:.2?} = {rate:.0} events/s"),
    }
}

/// Wait until `stage`'s outputs are durable for every input of `topics` written so far: its
/// position in each partition has reached the partition's end. Unlike the records counter,
/// this does not count inputs applied again after a rebalance.
pub(crate) async fn wait_for_end<L: EventLog>(
    log: &L,
    stages: &[(&str, &Arc<str>)],
    partitions: u32,
    patience: Duration,
) {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let mut behind = false;
        for (stage, topic) in stages {
            for partition in 0..partitions {
                let id = PartitionId { topic: (*topic).clone(), partition };
                let end = log.end_offset(&id).await.unwrap_or(u64::MAX);
                behind |= RECORDED.counter(&format!("position:{stage}:{topic}:{partition}")) < end && end > 0;
            }
        }
        if !behind {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("gave up waiting for {stages:?} to reach the end of their inputs");
}

/// Poll the stage counters until each reaches its target; returns the first target's count.
pub(crate) async fn wait_for(targets: &[(&str, u64)], patience: Duration) -> u64 {
    let deadline = Instant::now() + patience;
    let started = Instant::now();
    let mut shown = Instant::now();
    loop {
        if std::env::var_os("BENCH_PROGRESS").is_some() && shown.elapsed() >= Duration::from_millis(500) {
            shown = Instant::now();
            let counts: Vec<(&str, u64)> = targets.iter().map(|(stage, _)| (*stage, RECORDED.counter(stage))).collect();
            eprintln!("{:>6.1?} {counts:?}", started.elapsed());
        }
        let counts: Vec<u64> = targets.iter().map(|(stage, _)| RECORDED.counter(stage)).collect();
        if targets.iter().zip(&counts).all(|((_, target), count)| count >= target) || Instant::now() > deadline {
            if Instant::now() > deadline {
                eprintln!("gave up waiting: {targets:?} reached {counts:?}");
            }
            return counts.last().copied().unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A plain consumer of the `events` topic, in a group of its own, until it read `total`.
pub(crate) async fn plain_read<L: EventLog>(
    args: &Args,
    log: &L,
    topics: &Topics,
    group: &str,
    total: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    match &args.kafka_brokers {
        Some(brokers) => plain_rdkafka_read(brokers, &topics.events, total).await?,
        None => {
            let mut consumer = log.consumer(&topics.group(group), std::slice::from_ref(&topics.events))?;
            drain(&mut consumer, total).await?
        }
    };
    Ok(started.elapsed())
}

/// Poll until `total` records were read.
pub(crate) async fn drain<C: LogConsumer>(consumer: &mut C, total: usize) -> anyhow::Result<u64> {
    let mut read = 0u64;
    let mut bytes = 0usize;
    while read < total as u64 {
        let polled = consumer.poll(2_000, Duration::from_millis(100)).await?;
        read += polled.records.len() as u64;
        bytes += polled.records.iter().map(|record| record.payload.len()).sum::<usize>();
    }
    std::hint::black_box(bytes);
    Ok(read)
}

pub(crate) async fn plain_log_forward<L: EventLog>(
    log: &L,
    topics: &Topics,
    forward: &Arc<str>,
    total: usize,
) -> anyhow::Result<u64> {
    let mut consumer = log.consumer(&topics.group("forward"), std::slice::from_ref(&topics.events))?;
    let mut read = 0u64;
    while read < total as u64 {
        let polled = consumer.poll(10_000, Duration::from_millis(100)).await?;
        read += polled.records.len() as u64;
        let records: Vec<Record> = polled
            .records
            .into_iter()
            .map(|record| Record { topic: forward.clone(), key: record.key, payload: record.payload })
            .collect();
        if !records.is_empty() {
            log.append(records).await?;
        }
    }
    Ok(read)
}
