//! From a notice to its deliveries: the webhooks subscribed to its kind, and the partner
//! postbacks (program, offer, member, enrolment) that fire on it, each with its URL filled in
//! and, for webhooks, its JSON body. Resolved once, when the notice arrives: every attempt of a
//! delivery sends the same URL and body.

use model::events::{DeliveryRow, DeliveryStatus, Notice, NoticeKind};
use model::program::{Postback, Program, render};
use model::time::Timestamp;
use serde::Serialize;

/// Every delivery of `notice` under `program`, pending, due `now`. A webhook's row names its
/// endpoint (`webhook:{id}`), whose secret signs each attempt.
pub fn deliveries(program: &Program, notice: &Notice, now: Timestamp) -> Vec<DeliveryRow> {
    let mut planned = Vec::new();
    let webhooks: Vec<_> = program.webhooks().filter(|webhook| webhook.fires_on(notice.kind)).collect();
    if !webhooks.is_empty() {
        let body = webhook_body(notice);
        for webhook in webhooks {
            let destination = format!("webhook:{}", webhook.id);
            planned.push(pending(notice, destination, "POST", webhook.url.clone(), body.clone(), now));
        }
    }
    for (destination, postback) in postbacks(program, notice) {
        // A template was checked when the program took it, so it renders.
        let Ok(url) = render(&postback.url, |name| macro_value(notice, name)) else {
            continue;
        };
        planned.push(pending(notice, destination, "GET", url, String::new(), now));
    }
    planned
}

fn pending(
    notice: &Notice,
    destination: String,
    method: &str,
    url: String,
    body: String,
    now: Timestamp,
) -> DeliveryRow {
    DeliveryRow {
        id: DeliveryRow::id_for(&notice.id, &destination),
        notice: notice.id.to_string(),
        kind: notice.kind,
        destination,
        method: method.to_string(),
        url,
        body,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status: 0,
        last_error: String::new(),
        last_latency_ms: 0,
        created_at: now,
        next_at: Some(now),
        updated_at: now,
        revision: 0,
    }
}

/// The partner postbacks that fire on `notice`, with their destination names: those of the
/// program, the offer, the member and the enrolment. Postbacks tell of a conversion and of the
/// commission its member earned, so commission notices fire them for 1st-tier lines only.
fn postbacks<'a>(program: &'a Program, notice: &Notice) -> Vec<(String, &'a Postback)> {
    if !notice.kind.is_postback_event() {
        return Vec::new();
    }
    let Some(conversion) = &notice.conversion else {
        return Vec::new();
    };
    if notice.kind != NoticeKind::ConversionAttributed && notice.commission.as_ref().is_none_or(|line| line.tier != 1) {
        return Vec::new();
    }
    let mut found: Vec<(String, &'a [Postback])> =
        vec![("postback:program".to_string(), &program.settings().postbacks)];
    let offer = conversion.offer.as_ref().and_then(|offer| program.offer(offer));
    let member = conversion.member.as_ref().and_then(|member| program.member(member));
    if let Some(offer) = offer {
        found.push((format!("postback:offer:{}", offer.id), &offer.postbacks));
    }
    if let Some(member) = member {
        found.push((format!("postback:member:{}", member.id), &member.postbacks));
    }
    if let (Some(offer), Some(member)) = (offer, member)
        && let Some(enrolment) = program.enrolment(&offer.id, &member.id)
    {
        found.push((format!("postback:enrolment:{}:{}", offer.id, member.id), &enrolment.postbacks));
    }
    found
        .into_iter()
        .flat_map(|(scope, postbacks)| {
            postbacks
                .iter()
                .enumerate()
                .filter(|(_, postback)| postback.fires_on(notice.kind))
                .map(move |(index, postback)| (format!("{scope}#{index}"), postback))
        })
        .collect()
}

/// The value of a postback macro for `notice` (docs/NOTIFICATIONS.md, "Macros").
pub fn macro_value(notice: &Notice, name: &str) -> Option<String> {
    let conversion = notice.conversion.as_ref();
    let line = notice.commission.as_ref();
    let subs = conversion.map(|conversion| &conversion.subs);
    match name {
        "click_id" => conversion.and_then(|conversion| conversion.click_id.clone()),
        "sub1" => subs.and_then(|subs| subs.sub1.clone()),
        "sub2" => subs.and_then(|subs| subs.sub2.clone()),
        "sub3" => subs.and_then(|subs| subs.sub3.clone()),
        "sub4" => subs.and_then(|subs| subs.sub4.clone()),
        "sub5" => subs.and_then(|subs| subs.sub5.clone()),
        "order_id" => conversion.and_then(|conversion| conversion.order_id.clone()),
        "amount" => conversion.map(|conversion| conversion.amount.to_string()),
        "currency" => line
            .map(|line| line.currency.to_string())
            .or_else(|| conversion.and_then(|conversion| conversion.currency.map(|currency| currency.to_string()))),
        "payout" => line.map(|line| line.amount.to_string()),
        "status" => line
            .map(|line| line.status.as_str().to_string())
            .or_else(|| conversion.map(|conversion| conversion.status.as_str().to_string())),
        "offer" => conversion
            .and_then(|conversion| conversion.offer.as_ref())
            .or_else(|| line.and_then(|line| line.offer.as_ref()))
            .map(ToString::to_string),
        "member" => conversion
            .and_then(|conversion| conversion.member.as_ref())
            .or_else(|| line.map(|line| &line.member))
            .map(ToString::to_string),
        "event_id" => Some(notice.id.to_string()),
        "conversion_id" => conversion.map(|conversion| conversion.id.to_string()),
        "conversion_time" => conversion.map(|conversion| conversion.occurred_at.to_string()),
        _ => None,
    }
}

/// The JSON body of a webhook: `{"id", "type", "created_at", "data": {...}}`, where `data`
/// holds the conversion, commission line and bill the event is about.
pub fn webhook_body(notice: &Notice) -> String {
    #[derive(Serialize)]
    struct Data<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        conversion: Option<&'a model::events::NoticeConversion>,
        #[serde(skip_serializing_if = "Option::is_none")]
        commission: Option<&'a model::events::CommissionLine>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bill: Option<&'a model::events::Bill>,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        id: String,
        #[serde(rename = "type")]
        kind: &'static str,
        created_at: String,
        data: Data<'a>,
    }
    let body = Body {
        id: notice.id.to_string(),
        kind: notice.kind.as_str(),
        created_at: notice.at.to_string(),
        data: Data {
            conversion: notice.conversion.as_ref(),
            commission: notice.commission.as_ref(),
            bill: notice.bill.as_ref(),
        },
    };
    // Serializing to a string cannot fail: every key is a string.
    serde_json::to_string(&body).unwrap_or_default()
}
