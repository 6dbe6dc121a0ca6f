//! Writing a batch: table by table, thousands of rows per insert, outputs first and stage
//! state last, so a state row never claims an offset whose outputs are not stored.

use clickhouse::Row;
use model::events::{Bill, ClickRow, ConversionRow, DeliveryRow, SubscriptionAccount};
use model::time::Timestamp;
use pipeline::ports::store::{HistoryRow, StoreBatch, StoreError};
use serde::{Deserialize, Serialize};

use super::ClickHouseStore;
use super::sql;
use super::state::StateInsert;
use crate::store::rows::{LineRow, entity_name, json, to_units};

pub(super) async fn write_batch(store: &ClickHouseStore, batch: &StoreBatch) -> Result<(), StoreError> {
    let clicks: Vec<ClickInsert> = batch.clicks.iter().map(ClickInsert::from_row).collect();
    store.insert(sql::CLICKS, &clicks).await?;
    let conversions = batch.conversions.iter().map(ConversionInsert::from_row).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::CONVERSIONS, &conversions).await?;
    let lines = batch.lines.iter().map(LineRow::from_line).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::LINES, &lines).await?;
    let bills = batch.bills.iter().map(BillInsert::from_bill).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::BILLS, &bills).await?;
    let subscriptions =
        batch.subscriptions.iter().map(SubscriptionInsert::from_account).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::SUBSCRIPTIONS, &subscriptions).await?;
    let history = batch.history.iter().map(HistoryInsert::from_row).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::HISTORY, &history).await?;
    let deliveries = batch.deliveries.iter().map(DeliveryInsert::from_row).collect::<Result<Vec<_>, _>>()?;
    store.insert(sql::DELIVERIES, &deliveries).await?;
    // State last: it may only claim offsets whose outputs are stored.
    let state: Vec<StateInsert> = batch.state.iter().map(StateInsert::from_row).collect();
    store.insert(sql::STAGE_STATE, &state).await
}

fn text<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

#[derive(Row, Serialize, Deserialize)]
struct ClickInsert {
    id: String,
    received_ms: i64,
    offer: String,
    member: String,
    link: String,
    visitor: String,
    click_id: String,
    deep_link: String,
    sub1: String,
    sub2: String,
    sub3: String,
    sub4: String,
    sub5: String,
    bot: u8,
    rejected: String,
    unique_click: u8,
    client_address: String,
    client_agent: String,
}

impl ClickInsert {
    fn from_row(row: &ClickRow) -> Self {
        let click = &row.click;
        Self {
            id: click.id.to_string(),
            received_ms: click.received_at.millis(),
            offer: click.offer.to_string(),
            member: click.member.to_string(),
            link: text(click.link.as_ref()),
            visitor: click.visitor.to_string(),
            click_id: click.click_id.clone(),
            deep_link: click.deep_link.clone().unwrap_or_default(),
            sub1: click.subs.sub1.clone().unwrap_or_default(),
            sub2: click.subs.sub2.clone().unwrap_or_default(),
            sub3: click.subs.sub3.clone().unwrap_or_default(),
            sub4: click.subs.sub4.clone().unwrap_or_default(),
            sub5: click.subs.sub5.clone().unwrap_or_default(),
            bot: u8::from(click.bot),
            rejected: click.rejected.map(|reason| reason.as_str().to_string()).unwrap_or_default(),
            unique_click: u8::from(row.unique),
            client_address: click.client.map(|client| client.address.to_string()).unwrap_or_default(),
            client_agent: click.client.map(|client| client.agent_hex()).unwrap_or_default(),
        }
    }
}

#[derive(Row, Serialize, Deserialize)]
struct ConversionInsert {
    id: String,
    revision: u64,
    event_ms: i64,
    received_ms: i64,
    source: String,
    advertiser: String,
    offer: String,
    member: String,
    order_id: String,
    order_key: String,
    event: String,
    amount: i64,
    currency: String,
    code: String,
    recurring_amount: i64,
    visitor: String,
    click_id: String,
    bot: u8,
    status: String,
    reason: String,
    via: String,
    payload: String,
    sub1: String,
    sub2: String,
    sub3: String,
    sub4: String,
    sub5: String,
}

impl ConversionInsert {
    fn from_row(row: &ConversionRow) -> Result<Self, StoreError> {
        let conversion = &row.conversion;
        Ok(Self {
            id: conversion.id.to_string(),
            revision: row.revision,
            event_ms: conversion.event_time().millis(),
            received_ms: conversion.received_at.millis(),
            source: format!("{:?}", conversion.source).to_lowercase(),
            advertiser: text(row.advertiser.as_ref()),
            offer: text(row.offer.as_ref().or(conversion.offer.as_ref())),
            member: text(row.member.as_ref()),
            order_id: text(conversion.order_id.as_ref()),
            order_key: text(row.order_key.as_ref()),
            event: conversion.event.clone(),
            amount: to_units(conversion.sale_amount())?,
            currency: text(conversion.currency.as_ref()),
            code: text(conversion.code.as_ref()),
            recurring_amount: conversion.recurring_amount.map_or(Ok(0), to_units)?,
            visitor: text(conversion.visitor.as_ref()),
            click_id: conversion.click_id.clone().unwrap_or_default(),
            bot: u8::from(conversion.bot),
            status: row.status.as_str().to_string(),
            reason: row.reason.map(|reason| reason.as_str().to_string()).unwrap_or_default(),
            via: row.via.clone(),
            payload: json(row)?,
            sub1: row.subs.sub1.clone().unwrap_or_default(),
            sub2: row.subs.sub2.clone().unwrap_or_default(),
            sub3: row.subs.sub3.clone().unwrap_or_default(),
            sub4: row.subs.sub4.clone().unwrap_or_default(),
            sub5: row.subs.sub5.clone().unwrap_or_default(),
        })
    }
}

#[derive(Row, Serialize, Deserialize)]
struct BillInsert {
    id: String,
    revision: u32,
    member: String,
    currency: String,
    period_end_ms: i64,
    total: i64,
    lines: u32,
    status: String,
    issued_ms: i64,
    paid_ms: i64,
    payload: String,
}

impl BillInsert {
    fn from_bill(bill: &Bill) -> Result<Self, StoreError> {
        Ok(Self {
            id: bill.id.to_string(),
            revision: bill.revision,
            member: bill.member.to_string(),
            currency: bill.currency.to_string(),
            period_end_ms: bill.period_end.millis(),
            total: to_units(bill.total)?,
            lines: bill.lines,
            status: bill.status.as_str().to_string(),
            issued_ms: bill.issued_at.millis(),
            paid_ms: bill.paid_at.map_or(0, Timestamp::millis),
            payload: json(bill)?,
        })
    }
}

#[derive(Row, Serialize, Deserialize)]
struct SubscriptionInsert {
    conversion: String,
    revision: u32,
    order_key: String,
    member: String,
    offer: String,
    status: String,
    payload: String,
}

impl SubscriptionInsert {
    fn from_account(account: &SubscriptionAccount) -> Result<Self, StoreError> {
        Ok(Self {
            conversion: account.conversion.to_string(),
            revision: account.revision,
            order_key: account.order_key.to_string(),
            member: account.member.to_string(),
            offer: account.offer.to_string(),
            status: account.status.as_str().to_string(),
            payload: json(account)?,
        })
    }
}

#[derive(Row, Serialize, Deserialize)]
struct HistoryInsert {
    log_offset: u64,
    at_ms: i64,
    actor: String,
    entity: String,
    entity_key: String,
    offer: String,
    payload: String,
}

impl HistoryInsert {
    fn from_row(row: &HistoryRow) -> Result<Self, StoreError> {
        Ok(Self {
            log_offset: row.offset,
            at_ms: row.record.at.millis(),
            actor: row.record.actor.clone(),
            entity: entity_name(&row.record.change).to_string(),
            entity_key: row.record.change.key(),
            offer: text(row.record.change.offer()),
            payload: json(&row.record)?,
        })
    }
}

#[derive(Row, Serialize, Deserialize)]
struct DeliveryInsert {
    id: String,
    revision: u32,
    notice: String,
    kind: String,
    destination: String,
    method: String,
    url: String,
    status: String,
    attempts: u32,
    last_status: u16,
    last_error: String,
    last_latency_ms: u32,
    created_ms: i64,
    updated_ms: i64,
    payload: String,
}

impl DeliveryInsert {
    fn from_row(row: &DeliveryRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id.clone(),
            revision: row.revision,
            notice: row.notice.clone(),
            kind: row.kind.as_str().to_string(),
            destination: row.destination.clone(),
            method: row.method.clone(),
            url: row.url.clone(),
            status: row.status.as_str().to_string(),
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error.clone(),
            last_latency_ms: row.last_latency_ms,
            created_ms: row.created_at.millis(),
            updated_ms: row.updated_at.millis(),
            payload: json(row)?,
        })
    }
}
