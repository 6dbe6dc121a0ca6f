//! What one payout rule pays for one click or one conversion. Pure arithmetic: the caller
//! supplies the instance number and the monthly total from the ledger.

use model::events::Item;
use model::ids::Sku;
use model::program::{MonthlyThreshold, OrderBand, PayoutRule, ProductPay, ProductRule};
use model::round_commission;
use rust_decimal::Decimal;

/// What produced an amount: enough to name the line and describe it, without allocating
/// while pricing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part<'a> {
    Cpc { instance: u64, value: Decimal },
    Cpa { instance: u64, value: Decimal },
    Cps { rate: Decimal, amount: Decimal },
    CpaCps { flat: Decimal, rate: Decimal, amount: Decimal },
    OrderBand { rate: Decimal, amount: Decimal },
    Product { sku: &'a Sku, pays: ProductPay, total: Decimal, quantity: u64 },
    Accumulated { rate: Decimal, amount: Decimal, month_sales_before: Decimal },
}

impl Part<'_> {
    /// The rule name stored on the line.
    pub fn rule(&self) -> &'static str {
        match self {
            Part::Cpc { .. } => "cpc",
            Part::Cpa { .. } => "cpa",
            Part::Cps { .. } => "cps",
            Part::CpaCps { .. } => "cpa_cps",
            Part::OrderBand { .. } => "order_bands",
            Part::Product { .. } => "products",
            Part::Accumulated { .. } => "accumulated",
        }
    }

    /// Distinguishes the amounts of one conversion; part of the line id.
    pub fn key(&self) -> String {
        match self {
            Part::Product { sku, .. } => format!("product:{sku}"),
            other => other.rule().to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Part::Cpc { instance, value } => format!("CPC: unique click #{instance} at {value}"),
            Part::Cpa { instance, value } => format!("CPA: conversion #{instance} at {value}"),
            Part::Cps { rate, amount } => format!("CPS: {} of {amount}", percent(rate)),
            Part::CpaCps { flat, rate, amount } => {
                format!("CPA + CPS: {flat} + {} of {amount}", percent(rate))
            }
            Part::OrderBand { rate, amount } => {
                format!("Order band: {} of {amount}", percent(rate))
            }
            Part::Product { sku, pays: ProductPay::Rate(rate), total, .. } => {
                format!("Product {sku}: {} of {total}", percent(rate))
            }
            Part::Product { sku, pays: ProductPay::PerUnit(per_unit), quantity, .. } => {
                format!("Product {sku}: {quantity} x {per_unit}")
            }
            Part::Accumulated { rate, amount, month_sales_before } => {
                format!("Accumulated: {} of {amount} (month sales before {month_sales_before})", percent(rate))
            }
        }
    }
}

/// One amount a rule produced, before it becomes a commission line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RuleAmount<'a> {
    pub part: Part<'a>,
    /// The exact amount; the line holds it rounded half-even to cents.
    pub exact: Decimal,
}

impl RuleAmount<'_> {
    pub fn rounded(&self) -> Decimal {
        round_commission(self.exact)
    }
}

/// What the ledger knows about a conversion when it prices it.
#[derive(Clone, Copy, Debug)]
pub struct SaleFacts<'a> {
    pub amount: Decimal,
    pub items: &'a [Item],
    /// This conversion's number among the member's conversions in the offer (1-based).
    pub instance: u64,
    /// The member's sales in the offer earlier in the same calendar month.
    pub month_sales_before: Decimal,
}

/// The amount of a unique click, `None` when the rule does not pay clicks.
pub fn click_amount(rule: &PayoutRule, instance: u64) -> Option<RuleAmount<'static>> {
    let PayoutRule::Cpc { per_click } = rule else {
        return None;
    };
    let value = per_click.value_at(instance);
    Some(RuleAmount { part: Part::Cpc { instance, value }, exact: value })
}

/// The amounts a conversion earns under `rule`; empty for a rule that pays clicks only or a
/// cart without the rule's products.
pub fn conversion_amounts<'a>(rule: &'a PayoutRule, facts: &SaleFacts<'a>) -> Vec<RuleAmount<'a>> {
    let amount = facts.amount;
    let single = |part: Part<'a>, exact: Decimal| vec![RuleAmount { part, exact }];
    match rule {
        PayoutRule::Cpc { .. } => Vec::new(),
        PayoutRule::Cpa { per_conversion } => {
            let value = per_conversion.value_at(facts.instance);
            single(Part::Cpa { instance: facts.instance, value }, value)
        }
        PayoutRule::Cps { rate } => {
            let rate = rate.value_at(facts.instance);
            single(Part::Cps { rate, amount }, rate * amount)
        }
        PayoutRule::CpaCps { amount: flat, rate } => {
            single(Part::CpaCps { flat: *flat, rate: *rate, amount }, *flat + *rate * amount)
        }
        PayoutRule::OrderBands { bands } => {
            let rate = band_rate(bands, amount);
            single(Part::OrderBand { rate, amount }, rate * amount)
        }
        PayoutRule::Products { products } => product_amounts(products, facts.items),
        PayoutRule::Accumulated { thresholds } => {
            let month_sales_before = facts.month_sales_before;
            let rate = monthly_rate(thresholds, month_sales_before);
            single(Part::Accumulated { rate, amount, month_sales_before }, rate * amount)
        }
    }
}

/// Bands are upper-inclusive: 100.00 is in `[0, 100]`, 100.01 in `(100, 300]`.
fn band_rate(bands: &[OrderBand], amount: Decimal) -> Decimal {
    bands.iter().find(|band| band.up_to.is_none_or(|limit| amount <= limit)).map_or(Decimal::ZERO, |band| band.rate)
}

/// The rate of the highest threshold the month's earlier sales have reached.
fn monthly_rate(thresholds: &[MonthlyThreshold], month_sales_before: Decimal) -> Decimal {
    thresholds
        .iter()
        .rev()
        .find(|threshold| threshold.from <= month_sales_before)
        .map_or(Decimal::ZERO, |threshold| threshold.rate)
}

/// One amount per product rule the cart matches; several cart lines of one SKU add up.
fn product_amounts<'a>(products: &'a [ProductRule], items: &[Item]) -> Vec<RuleAmount<'a>> {
    products
        .iter()
        .filter_map(|product| {
            let (total, quantity) = items
                .iter()
                .filter(|item| item.sku == product.sku)
                .fold((Decimal::ZERO, 0u64), |(total, quantity), item| {
                    (total + item.total(), quantity + u64::from(item.quantity))
                });
            if quantity == 0 {
                return None;
            }
            let exact = match product.pays {
                ProductPay::Rate(rate) => rate * total,
                ProductPay::PerUnit(per_unit) => per_unit * Decimal::from(quantity),
            };
            Some(RuleAmount { part: Part::Product { sku: &product.sku, pays: product.pays, total, quantity }, exact })
        })
        .collect()
}

/// `0.10` → `10%`, `0.125` → `12.5%`.
pub fn percent(rate: Decimal) -> String {
    format!("{}%", (rate * Decimal::ONE_HUNDRED).normalize())
}

#[cfg(test)]
mod tests {
    use model::program::{TierLine, Tiered};
    use rust_decimal_macros::dec;

    use super::*;

    fn sale(amount: Decimal) -> SaleFacts<'static> {
        SaleFacts { amount, items: &[], instance: 1, month_sales_before: Decimal::ZERO }
    }

    #[test]
    fn tier_lines_pay_the_line_covering_the_instance() {
        let tiers = Tiered(vec![
            TierLine { from: 1, value: dec!(0.10) },
            TierLine { from: 1001, value: dec!(0.20) },
            TierLine { from: 5001, value: dec!(0.25) },
        ]);
        let rule = PayoutRule::Cpc { per_click: tiers };
        let at = |instance| click_amount(&rule, instance).unwrap().rounded();
        assert_eq!(
            [at(1), at(1000), at(1001), at(5000), at(5001), at(6000)],
            [dec!(0.10), dec!(0.10), dec!(0.20), dec!(0.20), dec!(0.25), dec!(0.25)]
        );
    }

    #[test]
    fn cps_cpa_and_both_combined() {
        let cps = PayoutRule::Cps { rate: Tiered::flat(dec!(0.10)) };
        let cpa = PayoutRule::Cpa { per_conversion: Tiered::flat(dec!(10)) };
        let both = PayoutRule::CpaCps { amount: dec!(2), rate: dec!(0.05) };
        assert_eq!(conversion_amounts(&cps, &sale(dec!(500)))[0].rounded(), dec!(50.00));
        assert_eq!(conversion_amounts(&cpa, &sale(dec!(500)))[0].rounded(), dec!(10.00));
        assert_eq!(conversion_amounts(&both, &sale(dec!(500)))[0].rounded(), dec!(27.00));
        assert_eq!(conversion_amounts(&cps, &sale(dec!(500)))[0].part.describe(), "CPS: 10% of 500");
    }

    #[test]
    fn a_click_rule_pays_no_conversion_and_a_sale_rule_no_click() {
        let cpc = PayoutRule::Cpc { per_click: Tiered::flat(dec!(0.10)) };
        assert!(conversion_amounts(&cpc, &sale(dec!(100))).is_empty());
        assert!(click_amount(&PayoutRule::Cps { rate: Tiered::flat(dec!(0.1)) }, 1).is_none());
    }

    #[test]
    fn percent_prints_without_trailing_zeros() {
        assert_eq!(percent(dec!(0.10)), "10%");
        assert_eq!(percent(dec!(0.125)), "12.5%");
        assert_eq!(percent(dec!(1)), "100%");
    }
}
