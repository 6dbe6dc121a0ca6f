//! Store adapters: [`clickhouse::ClickHouseStore`] for the scale deployment and
//! [`sqlite::SqliteStore`] for the embedded one, with the same rows and reports.

pub mod clickhouse;
pub mod sqlite;

use model::ports::store::{ReportQuery, SummaryRow};
use rust_decimal::{Decimal, RoundingStrategy};

/// Amounts are stored as integers in ten-thousandths (exact, and summable in SQL).
pub(crate) const UNITS_PER_AMOUNT: i64 = 10_000;

pub(crate) fn to_units(amount: Decimal) -> i64 {
    let scaled = (amount * Decimal::from(UNITS_PER_AMOUNT)).round();
    i64::try_from(scaled).unwrap_or(if scaled.is_sign_negative() { i64::MIN } else { i64::MAX })
}

/// Back to an amount with at least two decimals (`129.9` reads back as `129.90`).
pub(crate) fn from_units(units: i64) -> Decimal {
    let mut amount = Decimal::new(units, 4).normalize();
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    amount
}

/// Totals → a summary row with commission per click and conversions per unique click.
pub(crate) fn summary_row(
    key: String,
    clicks: u64,
    unique: u64,
    conversions: u64,
    revenue: i64,
    commission: i64,
) -> SummaryRow {
    let ratio = |numerator: Decimal, denominator: u64| {
        if denominator == 0 {
            Decimal::ZERO
        } else {
            (numerator / Decimal::from(denominator)).round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven)
        }
    };
    let commission = from_units(commission);
    SummaryRow {
        key,
        clicks,
        unique_clicks: unique,
        conversions,
        revenue: from_units(revenue),
        epc: ratio(commission, clicks),
        conversion_rate: ratio(Decimal::from(conversions), unique),
        commission,
    }
}

/// The limit of a query; 0 means no limit.
pub(crate) fn limit_of(query: &ReportQuery) -> i64 {
    if query.limit == 0 { i64::MAX } else { i64::from(query.limit) }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn amounts_survive_the_units_exactly() {
        for amount in [dec!(129.90), dec!(0.0001), dec!(-4.00), dec!(1000000000), dec!(2.995)] {
            assert_eq!(from_units(to_units(amount)), amount);
        }
        assert_eq!(from_units(to_units(dec!(129.9))).to_string(), "129.90");
    }
}
