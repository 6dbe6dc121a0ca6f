//! Writing a batch: outputs and history in one transaction of upserts that keep the highest
//! revision of each row; state rows in the state file, each kept only if it reflects a later
//! input than the stored one.

use model::ids::EVENT_ID_LEN;
use pipeline::ports::store::{StateRow, StoreBatch, StoreError};
use rusqlite::{Connection, params};

use super::classify;
use crate::store::rows::{entity_name, json, to_units};

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

pub(super) fn write_batch(connection: &mut Connection, batch: &StoreBatch) -> Result<(), StoreError> {
    let transaction = connection.transaction().map_err(classify)?;
    {
        let mut clicks = transaction
            .prepare_cached(
                "INSERT INTO clicks (id, received_ms, offer, member, link, visitor, bot, rejected, unique_click, click_id,
                     deep_link, sub1, sub2, sub3, sub4, sub5, client_address, client_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
                 ON CONFLICT (id) DO UPDATE SET unique_click = excluded.unique_click",
            )
            .map_err(classify)?;
        let mut id = [0u8; EVENT_ID_LEN];
        for row in &batch.clicks {
            let click = &row.click;
            let subs = &click.subs;
            clicks
                .execute(params![
                    click.id.text_in(&mut id),
                    click.received_at.millis(),
                    click.offer.as_str(),
                    click.member.as_str(),
                    click.link.as_ref().map_or("", |link| link.as_str()),
                    click.visitor.as_str(),
                    click.bot,
                    click.rejected.map_or("", |reason| reason.as_str()),
                    row.unique,
                    click.click_id,
                    text(&click.deep_link),
                    text(&subs.sub1),
                    text(&subs.sub2),
                    text(&subs.sub3),
                    text(&subs.sub4),
                    text(&subs.sub5),
                    click.client.map(|client| client.address.to_string()).unwrap_or_default(),
                    click.client.map(|client| client.agent_hex()).unwrap_or_default(),
                ])
                .map_err(classify)?;
        }
        let mut conversions = transaction
            .prepare_cached(
                "INSERT INTO conversions (id, revision, event_ms, advertiser, offer, member, order_id, order_key, event,
                     amount, currency, status, reason, via, payload, sub1, sub2, sub3, sub4, sub5)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, advertiser = excluded.advertiser,
                     offer = excluded.offer, member = excluded.member, order_key = excluded.order_key,
                     status = excluded.status, reason = excluded.reason, via = excluded.via, payload = excluded.payload,
                     sub1 = excluded.sub1, sub2 = excluded.sub2, sub3 = excluded.sub3, sub4 = excluded.sub4,
                     sub5 = excluded.sub5
                 WHERE excluded.revision >= conversions.revision",
            )
            .map_err(classify)?;
        for row in &batch.conversions {
            let conversion = &row.conversion;
            conversions
                .execute(params![
                    conversion.id.text_in(&mut id),
                    row.revision as i64,
                    conversion.event_time().millis(),
                    row.advertiser.as_ref().map_or("", |id| id.as_str()),
                    row.offer.as_ref().or(conversion.offer.as_ref()).map_or("", |id| id.as_str()),
                    row.member.as_ref().map_or("", |id| id.as_str()),
                    conversion.order_id.as_ref().map_or("", |id| id.as_str()),
                    row.order_key.as_ref().map_or("", |key| key.as_str()),
                    conversion.event,
                    to_units(conversion.sale_amount())?,
                    conversion.currency.as_ref().map_or("", |currency| currency.as_str()),
                    row.status.as_str(),
                    row.reason.map_or("", |reason| reason.as_str()),
                    row.via,
                    json(row)?,
                    text(&row.subs.sub1),
                    text(&row.subs.sub2),
                    text(&row.subs.sub3),
                    text(&row.subs.sub4),
                    text(&row.subs.sub5),
                ])
                .map_err(classify)?;
        }
        let mut lines = transaction
            .prepare_cached(
                "INSERT INTO commission_lines (id, revision, member, tier, earned_by, offer, order_key, source, kind, rule,
                     keyword, amount, currency, status, description, earned_ms, bill)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (source, id) DO UPDATE SET revision = excluded.revision, amount = excluded.amount,
                     status = excluded.status, rule = excluded.rule, keyword = excluded.keyword,
                     description = excluded.description, bill = excluded.bill
                 WHERE excluded.revision >= commission_lines.revision",
            )
            .map_err(classify)?;
        // Bound from the line itself: text is copied by SQLite as it binds, so no row of owned
        // strings is built per line.
        let mut source = [0u8; EVENT_ID_LEN];
        for line in &batch.lines {
            lines
                .execute(params![
                    line.id.as_str(),
                    i64::from(line.revision),
                    line.member.as_str(),
                    line.tier,
                    line.earned_by.as_str(),
                    line.offer.as_ref().map_or("", |offer| offer.as_str()),
                    line.order_key.as_ref().map_or("", |key| key.as_str()),
                    line.source.text_in(&mut source),
                    line.kind.as_str(),
                    line.rule,
                    line.keyword,
                    to_units(line.amount)?,
                    line.currency.as_str(),
                    line.status.as_str(),
                    line.description,
                    line.earned_at.millis(),
                    line.bill.as_ref().map_or("", |bill| bill.as_str()),
                ])
                .map_err(classify)?;
        }
        let mut bills = transaction
            .prepare_cached(
                "INSERT INTO bills (id, revision, member, period_end_ms, total, status, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, total = excluded.total,
                     status = excluded.status, payload = excluded.payload
                 WHERE excluded.revision >= bills.revision",
            )
            .map_err(classify)?;
        for bill in &batch.bills {
            bills
                .execute(params![
                    bill.id.as_str(),
                    i64::from(bill.revision),
                    bill.member.as_str(),
                    bill.period_end.millis(),
                    to_units(bill.total)?,
                    bill.status.as_str(),
                    json(bill)?,
                ])
                .map_err(classify)?;
        }
        let mut subscriptions = transaction
            .prepare_cached(
                "INSERT INTO subscriptions (conversion, order_key, revision, member, status, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (conversion) DO UPDATE SET revision = excluded.revision, status = excluded.status,
                     payload = excluded.payload
                 WHERE excluded.revision >= subscriptions.revision",
            )
            .map_err(classify)?;
        for account in &batch.subscriptions {
            subscriptions
                .execute(params![
                    account.conversion.to_string(),
                    account.order_key.as_str(),
                    i64::from(account.revision),
                    account.member.as_str(),
                    account.status.as_str(),
                    json(account)?,
                ])
                .map_err(classify)?;
        }
        let mut history = transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO program_history (log_offset, at_ms, actor, entity, entity_key, offer, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(classify)?;
        for row in &batch.history {
            let change = &row.record.change;
            history
                .execute(params![
                    row.offset as i64,
                    row.record.at.millis(),
                    row.record.actor,
                    entity_name(change),
                    change.key(),
                    change.offer().map_or("", |offer| offer.as_str()),
                    json(&row.record)?,
                ])
                .map_err(classify)?;
        }
        let mut deliveries = transaction
            .prepare_cached(
                "INSERT INTO deliveries (id, revision, notice, kind, destination, status, created_ms, updated_ms, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, status = excluded.status,
                     updated_ms = excluded.updated_ms, payload = excluded.payload
                 WHERE excluded.revision >= deliveries.revision",
            )
            .map_err(classify)?;
        for delivery in &batch.deliveries {
            deliveries
                .execute(params![
                    delivery.id,
                    i64::from(delivery.revision),
                    delivery.notice,
                    delivery.kind.as_str(),
                    delivery.destination,
                    delivery.status.as_str(),
                    delivery.created_at.millis(),
                    delivery.updated_at.millis(),
                    json(delivery)?,
                ])
                .map_err(classify)?;
        }
    }
    transaction.commit().map_err(classify)
}

/// State rows, each kept only if it reflects a later input than the one stored.
pub(super) fn write_state(connection: &mut Connection, rows: &[StateRow]) -> Result<(), StoreError> {
    let transaction = connection.transaction().map_err(classify)?;
    {
        let mut state = transaction
            .prepare_cached(
                "INSERT INTO stage_state (stage, partition, key, log_offset, state) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (stage, partition, key) DO UPDATE SET log_offset = excluded.log_offset, state = excluded.state
                 WHERE excluded.log_offset >= stage_state.log_offset",
            )
            .map_err(classify)?;
        let mut delete = transaction
            .prepare_cached(
                "DELETE FROM stage_state WHERE stage = ?1 AND partition = ?2 AND key = ?3 AND log_offset <= ?4",
            )
            .map_err(classify)?;
        for row in rows {
            // An empty state deletes the row (a journaled state's rows that a snapshot replaced).
            if row.state.is_empty() {
                delete.execute(params![row.stage, row.partition, row.key, row.offset as i64]).map_err(classify)?;
            } else {
                state
                    .execute(params![row.stage, row.partition, row.key, row.offset as i64, row.state])
                    .map_err(classify)?;
            }
        }
    }
    transaction.commit().map_err(classify)
}
