//! The embedded store's table layouts compared on the rows a million benchmark events write
//! (docs/PERFORMANCE.md, "The embedded store's layout"): 800,000 click rows and 480,000
//! commission lines in 25 transactions, one writer, in a fresh file per layout.
//!
//! `store_layout [DIR] [MEMBERS]` prints, per layout, the time per click row, per line and for
//! the commits, with the rows spread over `MEMBERS` members (200 unless given, as in
//! `pipeline_bench`). The layouts differ in the commission lines' table and indexes, the click
//! table's index, the file's page size and the writer's page cache.

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{Connection, params};

const TRANSACTIONS: u64 = 25;
const CLICKS_PER_TRANSACTION: u64 = 32_000;
const LINES_PER_TRANSACTION: u64 = 19_200;
const START_MS: i64 = 1_790_000_000_000;

struct Layout {
    name: &'static str,
    page_size: u32,
    cache_kib: u32,
    lines: &'static str,
    conflict: &'static str,
    click_index: &'static str,
}

/// The click index up to migration 5, and the one of migration 6.
const CLICKS_BY_OFFER_MEMBER: &str = "CREATE INDEX clicks_by_offer_member ON clicks (offer, member, received_ms);";
const CLICKS_BY_TIME: &str = "CREATE INDEX clicks_by_time ON clicks (received_ms);";

const LINE_COLUMNS: &str = "revision INTEGER NOT NULL, member TEXT NOT NULL, tier INTEGER NOT NULL,
    earned_by TEXT NOT NULL, offer TEXT NOT NULL, order_key TEXT NOT NULL, kind TEXT NOT NULL, rule TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, earned_ms INTEGER NOT NULL,
    keyword TEXT NOT NULL, description TEXT NOT NULL, bill TEXT NOT NULL";

fn layouts() -> Vec<Layout> {
    let by_id: &'static str = Box::leak(
        format!(
            "CREATE TABLE commission_lines (id TEXT PRIMARY KEY, source TEXT NOT NULL, {LINE_COLUMNS});
             CREATE INDEX lines_by_member ON commission_lines (member, earned_ms);
             CREATE INDEX lines_by_offer ON commission_lines (offer, earned_ms);
             CREATE INDEX lines_by_source ON commission_lines (source);"
        )
        .into_boxed_str(),
    );
    let by_source: &'static str = Box::leak(
        format!(
            "CREATE TABLE commission_lines (source TEXT NOT NULL, id TEXT NOT NULL, {LINE_COLUMNS},
                 PRIMARY KEY (source, id)) WITHOUT ROWID;
             CREATE INDEX lines_by_member ON commission_lines (member, earned_ms);
             CREATE INDEX lines_by_offer ON commission_lines (offer, earned_ms);"
        )
        .into_boxed_str(),
    );
    let by_source_by_time: &'static str = Box::leak(
        format!(
            "CREATE TABLE commission_lines (source TEXT NOT NULL, id TEXT NOT NULL, {LINE_COLUMNS},
                 PRIMARY KEY (source, id)) WITHOUT ROWID;
             CREATE INDEX lines_by_time ON commission_lines (earned_ms);"
        )
        .into_boxed_str(),
    );
    vec![
        Layout {
            name: "migration 4 (rowid, id index), 4 KiB pages, 2 MiB cache",
            page_size: 4096,
            cache_kib: 2000,
            lines: by_id,
            conflict: "id",
            click_index: CLICKS_BY_OFFER_MEMBER,
        },
        Layout {
            name: "migration 4, 4 KiB pages, 128 MiB cache",
            page_size: 4096,
            cache_kib: 131_072,
            lines: by_id,
            conflict: "id",
            click_index: CLICKS_BY_OFFER_MEMBER,
        },
        Layout {
            name: "migration 4, 16 KiB pages, 128 MiB cache",
            page_size: 16_384,
            cache_kib: 131_072,
            lines: by_id,
            conflict: "id",
            click_index: CLICKS_BY_OFFER_MEMBER,
        },
        Layout {
            name: "migration 5 (by source), 4 KiB pages, 2 MiB cache",
            page_size: 4096,
            cache_kib: 2000,
            lines: by_source,
            conflict: "source, id",
            click_index: CLICKS_BY_OFFER_MEMBER,
        },
        Layout {
            name: "migration 5, 16 KiB pages, 128 MiB cache",
            page_size: 16_384,
            cache_kib: 131_072,
            lines: by_source,
            conflict: "source, id",
            click_index: CLICKS_BY_OFFER_MEMBER,
        },
        Layout {
            name: "migration 6 (indexes by time), 16 KiB pages, 128 MiB cache",
            page_size: 16_384,
            cache_kib: 131_072,
            lines: by_source_by_time,
            conflict: "source, id",
            click_index: CLICKS_BY_TIME,
        },
    ]
}

/// A line id as the ledger derives them: 32 hex digits of a hash, in no order.
fn line_id(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    let y = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    format!("{x:016x}{y:016x}")
}

fn run(dir: &std::path::Path, layout: &Layout, members: u64) -> rusqlite::Result<()> {
    let path = dir.join("layout.db");
    for file in [path.clone(), dir.join("layout.db-wal"), dir.join("layout.db-shm")] {
        let _ = std::fs::remove_file(file);
    }
    let mut connection = Connection::open(&path)?;
    connection.execute_batch(&format!(
        "PRAGMA page_size = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -{};",
        layout.page_size, layout.cache_kib
    ))?;
    connection.execute_batch(layout.lines)?;
    connection.execute_batch(
        "CREATE TABLE clicks (id TEXT PRIMARY KEY, received_ms INTEGER NOT NULL, offer TEXT NOT NULL,
             member TEXT NOT NULL, link TEXT NOT NULL, visitor TEXT NOT NULL, bot INTEGER NOT NULL,
             rejected TEXT NOT NULL, unique_click INTEGER NOT NULL, click_id TEXT NOT NULL, deep_link TEXT NOT NULL,
             sub1 TEXT NOT NULL, sub2 TEXT NOT NULL, sub3 TEXT NOT NULL, sub4 TEXT NOT NULL, sub5 TEXT NOT NULL)
             WITHOUT ROWID;",
    )?;
    connection.execute_batch(layout.click_index)?;
    let insert_line = format!(
        "INSERT INTO commission_lines (id, revision, member, tier, earned_by, offer, order_key, source, kind, rule,
             keyword, amount, currency, status, description, earned_ms, bill)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT ({}) DO UPDATE SET revision = excluded.revision, amount = excluded.amount,
             status = excluded.status WHERE excluded.revision >= commission_lines.revision",
        layout.conflict
    );
    let (mut clicks_s, mut lines_s, mut commits_s) = (0.0, 0.0, 0.0);
    let (mut click, mut line) = (0u64, 0u64);
    let started = Instant::now();
    for _ in 0..TRANSACTIONS {
        let transaction = connection.transaction()?;
        {
            let timer = Instant::now();
            let mut statement = transaction.prepare_cached(
                "INSERT INTO clicks VALUES (?1, ?2, 'store', ?3, '', ?4, 0, '', 1, '', '', '', '', '', '', '')
                 ON CONFLICT (id) DO UPDATE SET unique_click = excluded.unique_click",
            )?;
            for _ in 0..CLICKS_PER_TRANSACTION {
                click += 1;
                let at = START_MS + click as i64;
                let id = ulid::Ulid::from_parts(at as u64, u128::from(click)).to_string();
                statement.execute(params![id, at, format!("m{:04}", click % members), format!("v{:08}", click / 4)])?;
            }
            clicks_s += timer.elapsed().as_secs_f64();
            let timer = Instant::now();
            let mut statement = transaction.prepare_cached(&insert_line)?;
            for _ in 0..LINES_PER_TRANSACTION {
                line += 1;
                let at = START_MS + line as i64 * 5 / 3;
                let member = format!("m{:04}", line % members);
                let source = ulid::Ulid::from_parts(at as u64, u128::from(line / 3)).to_string();
                statement.execute(params![
                    line_id(line),
                    0,
                    member,
                    1,
                    member,
                    "store",
                    format!("acme:O{}", line / 3),
                    source,
                    "conversion",
                    "cps",
                    "sale",
                    59_000,
                    "USD",
                    "approved",
                    "CPS: 10% of 59.00",
                    at,
                    ""
                ])?;
            }
            lines_s += timer.elapsed().as_secs_f64();
        }
        let timer = Instant::now();
        transaction.commit()?;
        commits_s += timer.elapsed().as_secs_f64();
        connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    }
    println!(
        "{:58} clicks {:.2} µs/row · lines {:.2} µs/row · commits {:.2} s · all {:.2} s",
        layout.name,
        clicks_s * 1e6 / click as f64,
        lines_s * 1e6 / line as f64,
        commits_s,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(|| PathBuf::from("bench-data/store-layout"), PathBuf::from);
    let members = match std::env::args().nth(2) {
        Some(members) => members.parse()?,
        None => 200,
    };
    std::fs::create_dir_all(&dir)?;
    println!("rows spread over {members} members");
    for layout in layouts() {
        run(&dir, &layout, members)?;
    }
    Ok(())
}
