//! A typical program for engine benchmarks: a 10% sale with a 3-tier chain
//! (`kid` → `parent` → `grand`, Tier2 0.5, Tier3 0.25).

use model::events::AttributedConversion;
use model::program::{PayoutOption, Program};
use model::testkit::*;
use rust_decimal_macros::dec;

pub fn three_tier_program() -> Program {
    let sale =
        PayoutOption { tier2: Some(dec!(0.5)), tier3: Some(dec!(0.25)), ..option("default", "sale", cps(dec!(0.10))) };
    ProgramBuilder::new()
        .offer(offer_with_options("store", vec![sale]))
        .enrolled("store", [member("grand"), child("parent", "grand"), child("kid", "parent")])
        .build()
}

/// The sale of order `O{n}` for 129.90, attributed to `kid`.
pub fn typical_sale(n: u128) -> AttributedConversion {
    attributed(sale(n, &format!("O{n}"), dec!(129.90), ts("2026-03-10T12:00:00Z")), "store", "kid")
}

/// The edge benchmark's program: offer `summer` with member `jane` and code `JANE20`. The load
/// generator is one address, so there is no per-address click limit (a limited click costs
/// the edge the same, and is recorded the same, as one taken).
pub fn edge_program() -> Program {
    use model::program::{ProgramChange, ProgramSettings, PromoCodeGrant};
    ProgramBuilder::new()
        .settings(ProgramSettings { click_rate_limit: 0, ..ProgramSettings::default() })
        .offer(offer("summer", cps(dec!(0.10))))
        .enrolled("summer", [member("jane")])
        .change(ProgramChange::Code(PromoCodeGrant {
            code: model::PromoCode::new("JANE20").unwrap_or_else(|_| unreachable!()),
            offer: offer_id("summer"),
            member: member_id("jane"),
            active: true,
            starts_at: None,
            ends_at: None,
        }))
        .build()
}

/// Members of the pipeline benchmark: 20 families of 10 (`m000`..`m199`). In each family
/// `m{f}0` is the root, `m{f}1`..`m{f}4` its children and `m{f}5`..`m{f}9` children of
/// `m{f}1`, so sales pay up to three tiers.
pub const PIPELINE_MEMBERS: usize = 200;

pub fn pipeline_member(n: usize) -> String {
    format!("m{n:03}")
}

/// The pipeline benchmark's program: offer `store` paying 10% of sales with Tier2 0.5 and
/// Tier3 0.25 to every member, and the promo code `BENCH` of `m001`.
pub fn pipeline_program() -> Program {
    use model::program::{ProgramChange, PromoCodeGrant};
    let sale =
        PayoutOption { tier2: Some(dec!(0.5)), tier3: Some(dec!(0.25)), ..option("default", "sale", cps(dec!(0.10))) };
    let members = (0..PIPELINE_MEMBERS).map(|n| {
        let family = n - n % 10;
        match n % 10 {
            0 => member(&pipeline_member(n)),
            1..=4 => child(&pipeline_member(n), &pipeline_member(family)),
            _ => child(&pipeline_member(n), &pipeline_member(family + 1)),
        }
    });
    ProgramBuilder::new()
        .offer(offer_with_options("store", vec![sale]))
        .enrolled("store", members)
        .change(ProgramChange::Code(PromoCodeGrant {
            code: model::PromoCode::new("BENCH").unwrap_or_else(|_| unreachable!()),
            offer: offer_id("store"),
            member: member_id("m001"),
            active: true,
            starts_at: None,
            ends_at: None,
        }))
        .build()
}
