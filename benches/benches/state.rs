//! Saving and restoring a family's ledger: the snapshot a checkpoint writes and a restore
//! reads, for a ledger of 10,000 orders of a 3-tier chain (30,000 lines), per order.
//!
//! - `ledger_snapshot_encode` / `_decode`: the saved form (MessagePack, fields in order).
//! - `ledger_snapshot_encode_named`: the same ledger with named fields, as the first format
//!   saved it: the baseline, measured in the same run.

use clickledger_benches::fixtures::{three_tier_program, typical_sale};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use model::events::LedgerEvent;
use pipeline::StageState;
use settler::commission::Ledger;
use std::hint::black_box;

const ORDERS: u64 = 10_000;

fn state(c: &mut Criterion) {
    let program = three_tier_program();
    let mut ledger = Ledger::new();
    for n in 0..ORDERS as u128 {
        ledger.apply(&program, &LedgerEvent::Order(typical_sale(n)));
    }
    let snapshot = ledger.encode().unwrap_or_else(|error| panic!("{error}"));
    let named = rmp_serde::to_vec_named(&ledger).unwrap_or_default();
    println!("snapshot of {ORDERS} orders: {} bytes; with named fields {} bytes", snapshot.len(), named.len());
    let mut group = c.benchmark_group("state");
    group.throughput(Throughput::Elements(ORDERS));
    group.bench_function("ledger_snapshot_encode", |b| b.iter(|| black_box(ledger.encode())));
    group.bench_function("ledger_snapshot_encode_named", |b| {
        b.iter(|| black_box(rmp_serde::to_vec_named(&ledger).unwrap_or_default()))
    });
    group.bench_function("ledger_snapshot_decode", |b| {
        b.iter(|| black_box(Ledger::decode(black_box(&snapshot)).unwrap_or_else(|error| panic!("{error}"))))
    });
    group.finish();
}

criterion_group!(benches, state);
criterion_main!(benches);
