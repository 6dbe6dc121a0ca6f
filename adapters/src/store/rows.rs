//! What both stores share: how amounts, lines and program changes are kept in columns, and how
//! they read back.

use clickhouse::Row;
use model::events::{CommissionLine, ConversionRow, ConversionSource};
use model::ids::{EventId, MemberId, OfferId};
use model::program::ProgramChange;
use model::reports::{RejectedConversionRow, ReportQuery, SummaryRow};
use model::time::Timestamp;
use pipeline::ports::store::StoreError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Amounts are stored as integers in ten-thousandths (exact, and summable in SQL).
pub(crate) const UNITS_PER_AMOUNT: i64 = 10_000;

/// An amount as ten-thousandths. The edge bounds every amount it accepts far below what fits
/// (`ingest::fields`), so an amount out of range is a bug upstream: it is refused, never
/// clamped to a value nobody sent.
pub(crate) fn to_units(amount: Decimal) -> Result<i64, StoreError> {
    let scaled = (amount * Decimal::from(UNITS_PER_AMOUNT)).round();
    i64::try_from(scaled).map_err(|_| StoreError::Fatal(format!("amount {amount} is out of the store's range")))
}

/// Back to an amount with at least two decimals (`129.9` reads back as `129.90`).
pub(crate) fn from_units(units: i64) -> Decimal {
    let mut amount = Decimal::new(units, 4).normalize();
    if amount.scale() < 2 {
        amount.rescale(2);
    }
    amount
}

/// A row's payload column: the value as JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Fatal(format!("a row does not serialize: {error}")))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Fatal(format!("unreadable stored row: {error}")))
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
    SummaryRow::new(key, clicks, unique, conversions, from_units(revenue), from_units(commission))
}

/// A rejected or duplicate conversion as the rejections list shows it. The evidence is the one
/// the attributor named the member by; where it named none, what the conversion carried.
pub(crate) fn rejected_row(row: ConversionRow) -> RejectedConversionRow {
    let conversion = &row.conversion;
    let evidence = if !row.via.is_empty() {
        row.via.clone()
    } else if conversion.click_id.is_some() {
        "click_id".to_string()
    } else if conversion.code.is_some() {
        "code".to_string()
    } else if conversion.visitor.is_some() {
        "cookie".to_string()
    } else {
        "none".to_string()
    };
    let reason = match (row.reason, row.status) {
        (Some(reason), _) => reason.as_str().to_string(),
        (None, status) => status.as_str().to_string(),
    };
    RejectedConversionRow {
        conversion: conversion.id,
        at: conversion.event_time(),
        received_at: conversion.received_at,
        reason,
        source: match conversion.source {
            ConversionSource::Pixel => "pixel",
            ConversionSource::Postback => "postback",
        }
        .to_string(),
        event: conversion.event.clone(),
        order_id: conversion.order_id.as_ref().map(ToString::to_string),
        order_key: row.order_key.as_ref().map(ToString::to_string),
        offer: row.offer.as_ref().or(conversion.offer.as_ref()).map(ToString::to_string),
        member: row.member.as_ref().map(ToString::to_string),
        evidence,
        amount: conversion.sale_amount(),
        currency: conversion.currency.as_ref().map(ToString::to_string),
        code: conversion.code.as_ref().map(ToString::to_string),
    }
}

/// The limit of a query; 0 means no limit.
pub(crate) fn limit_of(query: &ReportQuery) -> i64 {
    if query.limit == 0 { i64::MAX } else { i64::from(query.limit) }
}

/// The `entity` column of a program change in the history.
pub(crate) fn entity_name(change: &ProgramChange) -> &'static str {
    match change {
        ProgramChange::Settings(_) => "settings",
        ProgramChange::Advertiser(_) => "advertiser",
        ProgramChange::Offer(_) => "offer",
        ProgramChange::Member(_) => "member",
        ProgramChange::Enrolment(_) => "enrolment",
        ProgramChange::Link(_) => "link",
        ProgramChange::Code(_) => "code",
        ProgramChange::ApiKey(_) => "api_key",
        ProgramChange::Webhook(_) => "webhook",
    }
}

/// The filters of a delivery-log query as (column, value) pairs, and its row limit.
pub(crate) fn delivery_filters(query: &pipeline::ports::store::DeliveryQuery) -> (Vec<(&'static str, String)>, i64) {
    let mut filters = Vec::new();
    let text = [
        ("id", query.id.clone()),
        ("status", query.status.map(|status| status.as_str().to_string())),
        ("destination", query.destination.clone()),
        ("notice", query.notice.clone()),
        ("kind", query.kind.map(|kind| kind.as_str().to_string())),
    ];
    for (column, value) in text {
        if let Some(value) = value {
            filters.push((column, value));
        }
    }
    let limit = if query.limit == 0 { 1000 } else { i64::try_from(query.limit).unwrap_or(i64::MAX) };
    (filters, limit)
}

fn text<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// A commission line as the columns both stores keep it in.
#[derive(Row, Serialize, Deserialize)]
pub(crate) struct LineRow {
    pub(crate) id: String,
    pub(crate) revision: u32,
    pub(crate) member: String,
    pub(crate) tier: u8,
    pub(crate) earned_by: String,
    pub(crate) offer: String,
    pub(crate) order_key: String,
    pub(crate) source: String,
    pub(crate) kind: String,
    pub(crate) rule: String,
    pub(crate) keyword: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
    pub(crate) status: String,
    pub(crate) description: String,
    pub(crate) earned_ms: i64,
    pub(crate) bill: String,
}

impl LineRow {
    pub(crate) fn from_line(line: &CommissionLine) -> Result<Self, StoreError> {
        Ok(Self {
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
            amount: to_units(line.amount)?,
            currency: line.currency.to_string(),
            status: line.status.as_str().to_string(),
            description: line.description.clone(),
            earned_ms: line.earned_at.millis(),
            bill: text(line.bill.as_ref()),
        })
    }

    pub(crate) fn into_line(self) -> Result<CommissionLine, StoreError> {
        let bad = |what: &str| StoreError::Fatal(format!("stored line {}: bad {what}", self.id));
        let status =
            serde_json::from_value(serde_json::Value::String(self.status.clone())).map_err(|_| bad("status"))?;
        let kind = serde_json::from_value(serde_json::Value::String(self.kind.clone())).map_err(|_| bad("kind"))?;
        Ok(CommissionLine {
            id: serde_json::from_value(serde_json::Value::String(self.id.clone())).map_err(|_| bad("id"))?,
            member: MemberId::new(&self.member).map_err(|_| bad("member"))?,
            tier: self.tier,
            earned_by: MemberId::new(&self.earned_by).map_err(|_| bad("earned_by"))?,
            offer: (!self.offer.is_empty()).then(|| OfferId::new(&self.offer)).transpose().map_err(|_| bad("offer"))?,
            order_key: (!self.order_key.is_empty()).then(|| model::OrderKey::from_string(self.order_key.clone())),
            source: EventId::parse(&self.source).ok_or_else(|| bad("source"))?,
            kind,
            rule: self.rule,
            keyword: self.keyword,
            amount: {
                let mut amount = from_units(self.amount);
                amount.rescale(2);
                amount
            },
            currency: model::Currency::new(&self.currency).map_err(|_| bad("currency"))?,
            status,
            description: self.description,
            earned_at: Timestamp::from_millis(self.earned_ms),
            revision: self.revision,
            bill: (!self.bill.is_empty())
                .then(|| serde_json::from_value(serde_json::Value::String(self.bill.clone())))
                .transpose()
                .map_err(|_| bad("bill"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn amounts_survive_the_units_exactly() {
        for amount in [dec!(129.90), dec!(0.0001), dec!(-4.00), dec!(1000000000), dec!(2.995)] {
            assert_eq!(from_units(to_units(amount).unwrap()), amount);
        }
        assert_eq!(from_units(to_units(dec!(129.9)).unwrap()).to_string(), "129.90");
    }

    #[test]
    fn an_amount_out_of_range_is_refused_not_clamped() {
        let error = to_units(dec!(1000000000000000)).unwrap_err();
        assert!(!error.is_retriable());
        assert!(error.to_string().contains("out of the store's range"), "{error}");
    }
}
