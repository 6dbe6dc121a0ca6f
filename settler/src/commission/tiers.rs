//! 2nd and 3rd tier commissions (seed 004, "2 Tier and 3 Tier Sale Tracking").
//!
//! A tier amount is the TierN value times the *rounded* 1st-tier amount of the same event,
//! itself rounded half-even to cents (docs/RULES.md, "Rounding" and docs/RULES.md, "2nd and 3rd
//! tier").

use model::program::{Member, Program};
use model::{MemberId, round_commission};
use rust_decimal::Decimal;

/// One ancestor's share of a 1st-tier amount.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierShare<'p> {
    pub member: &'p Member,
    /// 2 for the parent, 3 for the grandparent.
    pub level: u8,
    /// The Tier2Tracking / Tier3Tracking value.
    pub rate: Decimal,
}

impl TierShare<'_> {
    pub fn amount_of(&self, first_tier_amount: Decimal) -> Decimal {
        round_commission(self.rate * first_tier_amount)
    }
}

/// The ancestors of `earner` that earn a share, with their tier values. Ancestors stop at the
/// first one that is not approved ([`Program::tier_ancestors`]); a level without a value pays
/// nothing but does not cut off the level above it.
pub fn tier_shares<'p>(
    program: &'p Program,
    earner: &MemberId,
    tier2: Option<Decimal>,
    tier3: Option<Decimal>,
) -> impl Iterator<Item = TierShare<'p>> + use<'p> {
    let ancestors = program.tier_ancestors(earner);
    ancestors.into_iter().zip([(2u8, tier2), (3u8, tier3)]).filter_map(|(member, (level, rate))| {
        let rate = rate.filter(|rate| !rate.is_zero())?;
        Some(TierShare { member, level, rate })
    })
}
