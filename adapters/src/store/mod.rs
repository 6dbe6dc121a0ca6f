//! Store adapters: [`clickhouse::ClickHouseStore`] for the scale deployment and
//! [`sqlite::SqliteStore`] for the embedded one, with the same rows and reports.

pub mod clickhouse;
pub mod sqlite;

pub(crate) use self::clickhouse::LineInsert;

use model::events::CommissionLine;
use model::ids::{EventId, MemberId, OfferId};
use model::ports::store::{ReportQuery, StoreError, SummaryRow};
use model::time::Timestamp;
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

fn text<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

pub(crate) fn line_row(line: &CommissionLine) -> LineInsert {
    LineInsert {
        id: line.id.to_string(),
        revision: line.revision,
        member: line.member.to_string(),
        tier: line.tier,
        earned_by: line.earned_by.to_string(),
        offer: text(line.offer.as_ref()),
        order_key: text(line.order_key.as_ref()),
        source: line.source.to_string(),
        kind: line.kind.as_str().to_string(),
        rule: line.rule.clone(),
        keyword: line.keyword.clone(),
        amount: to_units(line.amount),
        currency: line.currency.to_string(),
        status: line.status.as_str().to_string(),
        description: line.description.clone(),
        earned_ms: line.earned_at.millis(),
        bill: text(line.bill.as_ref()),
    }
}

pub(crate) fn line_from_row(row: LineInsert) -> Result<CommissionLine, StoreError> {
    let bad = |what: &str| StoreError::Fatal(format!("stored line {}: bad {what}", row.id));
    let status = serde_json::from_value(serde_json::Value::String(row.status.clone())).map_err(|_| bad("status"))?;
    let kind = serde_json::from_value(serde_json::Value::String(row.kind.clone())).map_err(|_| bad("kind"))?;
    Ok(CommissionLine {
        id: serde_json::from_value(serde_json::Value::String(row.id.clone())).map_err(|_| bad("id"))?,
        member: MemberId::new(&row.member).map_err(|_| bad("member"))?,
        tier: row.tier,
        earned_by: MemberId::new(&row.earned_by).map_err(|_| bad("earned_by"))?,
        offer: (!row.offer.is_empty()).then(|| OfferId::new(&row.offer)).transpose().map_err(|_| bad("offer"))?,
        order_key: (!row.order_key.is_empty()).then(|| model::OrderKey::from_string(row.order_key.clone())),
        source: EventId::parse(&row.source).ok_or_else(|| bad("source"))?,
        kind,
        rule: row.rule,
        keyword: row.keyword,
        amount: {
            let mut amount = from_units(row.amount);
            amount.rescale(2);
            amount
        },
        currency: model::Currency::new(&row.currency).map_err(|_| bad("currency"))?,
        status,
        description: row.description,
        earned_at: Timestamp::from_millis(row.earned_ms),
        revision: row.revision,
        bill: (!row.bill.is_empty())
            .then(|| serde_json::from_value(serde_json::Value::String(row.bill.clone())))
            .transpose()
            .map_err(|_| bad("bill"))?,
    })
}
