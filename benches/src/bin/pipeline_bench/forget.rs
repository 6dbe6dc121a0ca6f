//! `forget`: the state kept for cookie-less clicks levels off (docs/PERFORMANCE.md, "Bounded
//! state"). Every click comes from a new visitor, as from a client that drops its cookie, and
//! event time runs over `--days` days of `--visitors-per-day` such clicks. After every
//! `--report-every` days it prints what each per-key memory holds:
//!
//! - the attributor (run by the stage runner on the log and store): visitors tracked, the heap
//!   the process holds, and the saved state rows and bytes in the store;
//! - a family's ledger: unique-click windows and its saved size, forgetting as the ledger stage
//!   does;
//! - the edge's unique-client windows and replay cache, fed one entry per simulated second
//!   and 100 signatures per simulated second.
//!
//! With a 30-day cookie window the attributor's figures stop growing after about 31 days.

use std::sync::Arc;
use std::time::Duration;

use attributor::AttributorStage;
use ingest::client::UniqueClients;
use ingest::replay::ReplayCache;
use model::events::{LedgerEvent, TrackingEvent, wire};
use model::testkit::{click, visitor};
use model::time::{Span, Timestamp};
use pipeline::follow::SharedProgram;
use pipeline::ports::log::{EventLog, Record, Topics};
use pipeline::ports::store::Store;
use pipeline::{RunnerConfig, Shutdown, StageState};
use settler::commission::Ledger;

use crate::stages::wait_for_end;
use crate::{Args, live};

const DAY_MS: i64 = 86_400_000;

pub(crate) async fn forget<L: EventLog, St: Store>(
    args: &Args,
    log: L,
    store: St,
    topics: Topics,
    program: Arc<SharedProgram>,
) -> anyhow::Result<()> {
    let per_day = args.visitors_per_day;
    let start = Timestamp::now().millis() - args.days as i64 * DAY_MS;
    let window =
        program.read(|program| program.offer(&model::testkit::offer_id("store")).map(|offer| offer.cookie_window));
    println!(
        "{per_day} cookie-less clicks a day for {} days; cookie window {}",
        args.days,
        window.map_or_else(|| "?".to_string(), |window| window.to_string())
    );

    let before = live();
    let (stop, shutdown) = Shutdown::new();
    let stage = AttributorStage::new(topics.clone(), testkit::keys()).forgetting_every(Duration::ZERO);
    let mut config = RunnerConfig::new(topics.group(attributor::GROUP), vec![topics.events.clone()]);
    config.checkpoint_every = Duration::from_millis(200);
    let runner =
        tokio::spawn(pipeline::run_stage(stage, log.clone(), store.clone(), program.clone(), config, shutdown.wait()));

    println!("attributor (runner, {} partitions):", args.partitions);
    println!("  day | visitors tracked | heap MiB | heap B/visitor | saved rows | saved MiB");
    let mut n: u64 = 0;
    for day in 0..args.days {
        let mut records = Vec::with_capacity(per_day);
        for i in 0..per_day {
            n += 1;
            let at = Timestamp::from_millis(start + day as i64 * DAY_MS + i as i64 * DAY_MS / per_day as i64);
            let visitor_id = format!("v{n:09}");
            let event = TrackingEvent::Click(click(u128::from(n), "store", &model_member(n), &visitor_id, at));
            records.push(Record { topic: topics.events.clone(), key: visitor_id, payload: wire::encode(&event) });
        }
        for chunk in records.chunks(20_000) {
            log.append(chunk.to_vec()).await?;
        }
        // A day's clicks are taken before the next day's come, with a sweep (every tick, once a
        // second) and a checkpoint after it: in a real day the stage sweeps every minute while
        // the day's clicks trickle in, so what it holds is the visitors of the window and of one
        // sweep interval, not of a backlog of days.
        wait_for_end(&log, &[("attributor", &topics.events)], args.partitions, Duration::from_secs(600)).await;
        tokio::time::sleep(Duration::from_millis(1300)).await;
        if (day + 1) % args.report_every == 0 || day + 1 == args.days {
            tokio::time::sleep(Duration::from_millis(1300)).await;
            let held = live() - before;
            let tracked = tracked(&store, args).await?;
            let (rows, bytes) = saved(args)?;
            println!(
                "  {:>3} | {:>16} | {:>8.1} | {:>14} | {:>10} | {:>9.1}",
                day + 1,
                tracked,
                held as f64 / 1_048_576.0,
                if tracked > 0 { held / tracked as i64 } else { 0 },
                rows,
                bytes as f64 / 1_048_576.0
            );
        }
    }
    let _ = stop.send(true);
    runner.await??;
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("  heap after the runner stopped: {:.1} MiB", (live() - before) as f64 / 1_048_576.0);

    ledger_windows(args, &program);
    edge_memories(args);
    Ok(())
}

fn model_member(n: u64) -> String {
    crate::pipeline_member((n as usize * 7) % crate::PIPELINE_MEMBERS)
}

/// Visitors the attributor's saved state holds.
async fn tracked<St: Store>(store: &St, args: &Args) -> anyhow::Result<usize> {
    let mut keys = 0;
    for partition in 0..args.partitions {
        keys += store.load_state("attributor", partition).await?.iter().filter(|row| !row.state.is_empty()).count();
    }
    Ok(keys)
}

/// Rows and bytes of the attributor's saved state in the embedded store's state file.
fn saved(args: &Args) -> anyhow::Result<(i64, i64)> {
    let connection = rusqlite::Connection::open(args.dir.join("store.state.db"))?;
    Ok(connection.query_row(
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM stage_state WHERE stage = 'attributor'",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?)
}

/// One family's ledger taking the same clicks, forgetting windows as the ledger stage does.
fn ledger_windows(args: &Args, program: &SharedProgram) {
    println!("a family's ledger (unique-click windows of 24 h, forgotten an hour after they end):");
    println!("  day | saved KiB");
    let program = program.snapshot();
    let mut ledger = Ledger::new();
    let start = Timestamp::from_millis(0);
    let per_day = args.visitors_per_day.min(20_000);
    let mut n = 0u64;
    for day in 0..args.days {
        for i in 0..per_day {
            n += 1;
            let at = Timestamp::from_millis(day as i64 * DAY_MS + i as i64 * DAY_MS / per_day as i64);
            let event = LedgerEvent::Click(click(u128::from(n), "store", "m000", &format!("v{n:09}"), at));
            ledger.apply(&program, &event);
        }
        ledger.forget_click_windows(&program, Span::hours(1));
        if (day + 1) % args.report_every == 0 || day + 1 == args.days {
            let bytes = ledger.encode().map_or(0, |saved| saved.len());
            println!("  {:>3} | {:>9.1}", day + 1, bytes as f64 / 1024.0);
        }
    }
    let _ = (start, visitor("v"));
}

/// The edge's memories under a stream of new keys in simulated time.
fn edge_memories(args: &Args) {
    println!("the edge's unique-client windows (a new client every second, 24 h windows):");
    println!("  hour | entries | heap MiB");
    let before = live();
    let clients = UniqueClients::new(1_000_000);
    let mut key = 0u64;
    for second in 0..(72 * 3600) {
        key += 1;
        let mut bytes = [0u8; 16];
        // Spread like the SHA-256 keys the edge makes.
        bytes[..8].copy_from_slice(&key.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        bytes[8..].copy_from_slice(&key.to_be_bytes());
        clients.repeat(bytes, DAY_MS, second * 1000);
        if (second + 1) % (12 * 3600) == 0 {
            println!(
                "  {:>4} | {:>7} | {:>8.1}",
                (second + 1) / 3600,
                clients.len(),
                (live() - before) as f64 / 1_048_576.0
            );
        }
    }
    drop(clients);
    println!("the edge's replay cache (100 signatures a second, 300 s tolerance):");
    println!("  minute | entries | heap MiB");
    let before = live();
    let cache = ReplayCache::new(1_000_000);
    let mut n = 0u64;
    for second in 0..(30 * 60) {
        for _ in 0..100 {
            n += 1;
            let mut seen = [0u8; 16];
            seen[..8].copy_from_slice(&n.to_be_bytes());
            cache.remember(seen, second + 300, second);
        }
        if (second + 1) % 300 == 0 {
            println!(
                "  {:>6} | {:>7} | {:>8.1}",
                (second + 1) / 60,
                cache.len(),
                (live() - before) as f64 / 1_048_576.0
            );
        }
    }
    let _ = args;
}
