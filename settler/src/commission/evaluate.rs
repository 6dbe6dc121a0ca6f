//! Pricing one conversion for one member, with its tier shares, without changing any state.
//! The ledger does the same and also keeps books; this is the hot arithmetic alone.

use model::events::AttributedConversion;
use model::program::Program;
use model::{MemberId, round_commission};
use rust_decimal::Decimal;

use super::rules::{self, SaleFacts};
use super::tiers::tier_shares;

/// One amount for one member.
#[derive(Clone, Debug, PartialEq)]
pub struct PricedLine<'p> {
    pub member: &'p MemberId,
    pub tier: u8,
    pub amount: Decimal,
}

/// The lines `conversion` earns, given the member's conversion number in the offer and its
/// sales earlier in the month. Empty when the member is not enrolled or the option does not
/// pay for the event.
pub fn evaluate_conversion<'p>(
    program: &'p Program,
    conversion: &'p AttributedConversion,
    instance: u64,
    month_sales_before: Decimal,
    priced: &mut Vec<PricedLine<'p>>,
) {
    priced.clear();
    let Some(payout) = program.payout(&conversion.offer, &conversion.member) else {
        return;
    };
    if !payout.option.pays_for_event(&conversion.conversion.event) {
        return;
    }
    let facts = SaleFacts {
        amount: conversion.conversion.sale_amount(),
        items: &conversion.conversion.items,
        instance,
        month_sales_before,
    };
    for amount in rules::conversion_amounts(payout.rule, &facts) {
        let first_amount = amount.rounded();
        priced.push(PricedLine { member: &conversion.member, tier: 1, amount: first_amount });
        for share in tier_shares(program, &conversion.member, payout.option.tier2, payout.option.tier3) {
            priced.push(PricedLine {
                member: &share.member.id,
                tier: share.level,
                amount: share.amount_of(first_amount),
            });
        }
    }
    debug_assert!(priced.iter().all(|line| line.amount == round_commission(line.amount)));
}
