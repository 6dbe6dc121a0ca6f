//! The commission engine on a typical sale with a 3-tier chain.
//!
//! - `evaluate`: pricing alone (rule, tier shares, rounding): the engine's unit of work.
//! - `ledger_apply`: the full ledger step (ids, descriptions, bookkeeping, output snapshots).
//! - `wire_decode`: decoding the same event from its log record as version 1 (JSON), the
//!   baseline every stage pays anyway, measured in the same run; `wire_decode_compact`: as
//!   version 2 (MessagePack), which the stages write to `orders` and `ledger`.

use clickledger_benches::fixtures::{three_tier_program, typical_sale};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use model::events::{LedgerEvent, wire};
use rust_decimal::Decimal;
use settler::commission::{Ledger, evaluate_conversion};
use std::hint::black_box;

fn engine(c: &mut Criterion) {
    let program = three_tier_program();
    let sale = typical_sale(1);
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));

    let mut priced = Vec::with_capacity(4);
    group.bench_function("evaluate", |b| {
        b.iter(|| {
            evaluate_conversion(&program, black_box(&sale), 7, Decimal::ONE_HUNDRED, &mut priced);
            assert_eq!(priced.len(), 3);
        })
    });

    let order = LedgerEvent::Order(sale.clone());
    for (name, record) in [("wire_decode", wire::encode(&order)), ("wire_decode_compact", wire::encode_compact(&order))]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let event: LedgerEvent = wire::decode(black_box(&record)).unwrap_or_else(|error| panic!("{error}"));
                black_box(event)
            })
        });
    }

    const ORDERS: u64 = 1000;
    let events: Vec<LedgerEvent> = (0..ORDERS as u128).map(|n| LedgerEvent::Order(typical_sale(n))).collect();
    group.throughput(Throughput::Elements(ORDERS));
    group.bench_function("ledger_apply", |b| {
        b.iter_batched_ref(
            Ledger::new,
            |ledger| {
                for event in &events {
                    black_box(ledger.apply(&program, event));
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
