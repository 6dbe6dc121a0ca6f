//! The report queries (docs/REPORTS.md), on the views of `002_views.sql` and the tables with
//! `FINAL`, so they are right before merges.

use clickhouse::Row;
use model::events::{Bill, CommissionLine, ConversionRow, DeliveryRow, SubscriptionAccount};
use model::ids::{EventId, MemberId, OfferId};
use model::program::ProgramRecord;
use model::reports::{ConversionReportRow, RejectedConversionRow, RejectionRow, ReportQuery, SummaryBy, SummaryRow};
use model::time::Timestamp;
use pipeline::ports::store::{DeliveryQuery, HistoryRow, ReportStore, StoreError};
use serde::Deserialize;

use super::ClickHouseStore;
use super::sql::Read;
use crate::store::rows::{LineRow, from_json, from_units, rejected_row, summary_row};

#[derive(Row, Deserialize)]
struct ReportFetch {
    conversion: String,
    order_ms: i64,
    offer: String,
    member: String,
    order_id: String,
    sale_amount: i64,
    currency: String,
    commission: i64,
    status: String,
    via: String,
}

#[derive(Row, Deserialize)]
struct SummaryFetch {
    key: String,
    clicks: u64,
    unique_clicks: u64,
    conversions: u64,
    revenue: i64,
    commission: i64,
}

#[derive(Row, Deserialize)]
struct RejectionFetch {
    reason: String,
    offer: String,
    conversions: u64,
}

#[derive(Row, Deserialize)]
struct PayloadFetch {
    payload: String,
}

#[derive(Row, Deserialize)]
struct HistoryFetch {
    log_offset: u64,
    payload: String,
}

impl ClickHouseStore {
    /// The JSON payload of every row of `read`.
    async fn payloads<T: serde::de::DeserializeOwned>(&self, read: Read<'_>) -> Result<Vec<T>, StoreError> {
        let rows: Vec<PayloadFetch> = self.fetch(read).await?;
        rows.into_iter().map(|row| from_json(&row.payload)).collect()
    }
}

impl ReportStore for ClickHouseStore {
    async fn conversion_report(&self, query: &ReportQuery) -> Result<Vec<ConversionReportRow>, StoreError> {
        let rows: Vec<ReportFetch> = self.fetch(Read::ConversionReport(query)).await?;
        rows.into_iter()
            .map(|row| {
                let bad = |what: &str| StoreError::Fatal(format!("conversion report: bad {what}"));
                Ok(ConversionReportRow {
                    conversion: EventId::parse(&row.conversion).ok_or_else(|| bad("conversion"))?,
                    order_date: Timestamp::from_millis(row.order_ms),
                    offer: OfferId::new(row.offer).map_err(|_| bad("offer"))?,
                    member: MemberId::new(row.member).map_err(|_| bad("member"))?,
                    order_id: row.order_id,
                    sale_amount: from_units(row.sale_amount),
                    currency: row.currency,
                    commission: from_units(row.commission),
                    status: row.status,
                    via: row.via,
                })
            })
            .collect()
    }

    async fn summary(&self, query: &ReportQuery, by: SummaryBy) -> Result<Vec<SummaryRow>, StoreError> {
        let rows: Vec<SummaryFetch> = self.fetch(Read::Summary(query, by)).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                summary_row(row.key, row.clicks, row.unique_clicks, row.conversions, row.revenue, row.commission)
            })
            .collect())
    }

    async fn rejections(&self, query: &ReportQuery) -> Result<Vec<RejectionRow>, StoreError> {
        let rows: Vec<RejectionFetch> = self.fetch(Read::Rejections(query)).await?;
        Ok(rows
            .into_iter()
            .map(|row| RejectionRow { reason: row.reason, offer: row.offer, conversions: row.conversions })
            .collect())
    }

    async fn rejected_conversions(&self, query: &ReportQuery) -> Result<Vec<RejectedConversionRow>, StoreError> {
        let rows: Vec<ConversionRow> = self.payloads(Read::RejectedConversions(query)).await?;
        Ok(rows.into_iter().map(rejected_row).collect())
    }

    async fn history(&self, offer: Option<&OfferId>) -> Result<Vec<HistoryRow>, StoreError> {
        let rows: Vec<HistoryFetch> = self.fetch(Read::History(offer)).await?;
        rows.into_iter()
            .map(|row| Ok(HistoryRow { offset: row.log_offset, record: from_json::<ProgramRecord>(&row.payload)? }))
            .collect()
    }

    async fn lines(&self, query: &ReportQuery) -> Result<Vec<CommissionLine>, StoreError> {
        let rows: Vec<LineRow> = self.fetch(Read::Lines(query)).await?;
        rows.into_iter().map(LineRow::into_line).collect()
    }

    async fn bills(&self, member: Option<&MemberId>) -> Result<Vec<Bill>, StoreError> {
        self.payloads(Read::Bills(member)).await
    }

    async fn subscriptions(&self, member: Option<&MemberId>) -> Result<Vec<SubscriptionAccount>, StoreError> {
        self.payloads(Read::Subscriptions(member)).await
    }

    async fn conversions(&self, query: &ReportQuery) -> Result<Vec<ConversionRow>, StoreError> {
        self.payloads(Read::Conversions(query)).await
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError> {
        self.payloads(Read::Deliveries(query)).await
    }
}
