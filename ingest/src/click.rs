//! Clicks: `GET /c?offer=&member=` and `GET /c/{link_code}` answer 302 to the offer (or an
//! allowed deep link) with the signed click id appended, set the visitor cookie, and record
//! the click once, on `events` under the visitor (the attributor passes it on to the ledger). An inactive link, an unapproved member, a paused or expired offer still
//! redirect — to the offer URL — and record a rejected click. An unknown offer is 404.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header, request};
use http_body_util::Full;
use model::clickid::ClickClaims;
use model::events::{Click, Reason, Subs, TrackingEvent, wire};
use model::ids::{EventId, LinkCode, MemberId, OfferId, VisitorId};
use model::program::{Offer, Program, TrackingLink};
use model::time::Timestamp;
use pipeline::ports::log::{EventLog, Record};
use url::Url;

use crate::codes::Code;
use crate::deep_link::{allowed_deep_link, with_click_id};
use crate::edge::{Edge, HttpResponse};
use crate::fields;
use crate::params::{Params, parse_urlencoded};
use crate::rejection::Rejection;

/// The visitor cookie.
pub const VISITOR_COOKIE: &str = "clk_v";
/// `sub1`..`sub5` values are at most this long.
pub const MAX_SUB_LEN: usize = 256;

/// Where a click goes and what it records, decided under the program's read lock.
struct ClickTarget {
    offer: OfferId,
    member: MemberId,
    link: Option<LinkCode>,
    /// The offer URL as written, or the allowed deep link normalised.
    landing: String,
    deep_link: bool,
    click_id_param: String,
    rejected: Option<Reason>,
    /// Where a click that earns nothing goes.
    offer_url: String,
    unique_click_window: model::Span,
}

impl ClickTarget {
    /// This click earns nothing, for `reason` (which wins over a reason found before): it goes
    /// to the offer URL.
    fn refuse(&mut self, reason: Reason) {
        self.rejected = Some(reason);
        self.landing = self.offer_url.clone();
        self.deep_link = false;
    }
}

pub(crate) async fn click<L: EventLog>(
    edge: &Edge<L>,
    parts: &request::Parts,
    link_code: Option<&str>,
    peer: SocketAddr,
) -> Result<HttpResponse, Rejection> {
    edge.ensure_ready()?;
    let params = parse_urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
        .map_err(|error| Rejection::bad_request(error.code(), error.to_string()))?;
    let subs = subs(&params)?;
    let now = Timestamp::now();
    let client = edge.client(peer, &parts.headers);
    let (mut target, rate_limit) = edge.program.read(|program| {
        let mut target = resolve(program, &params, link_code, now)?;
        if program.settings().is_blocked(client.address) {
            target.refuse(Reason::BlockedAddress);
        }
        Ok::<_, Rejection>((target, program.settings().click_rate_limit))
    })?;
    // Every click of the network counts toward its rate, whatever became of it.
    let within_rate = edge.rate_limiter.allow(client.network(), rate_limit, now.millis());
    if !within_rate && target.rejected.is_none() {
        target.refuse(Reason::RateLimited);
    }
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|agent| agent.to_str().ok());
    let bot = edge.bots.is_bot(user_agent);
    // Only a click that could count starts (or meets) its client's unique-click window.
    let client_repeat = target.rejected.is_none()
        && !bot
        && edge.unique_clients.repeat(
            client.link_key(&target.offer, &target.member),
            target.unique_click_window.millis(),
            now.millis(),
        );
    let (visitor, _returning) = match visitor_cookie(&parts.headers) {
        Some(visitor) => (visitor, true),
        None => (VisitorId::generate(), false),
    };

    let id = EventId::new();
    let claims =
        ClickClaims { click: id, offer: target.offer.clone(), member: target.member.clone(), visitor: visitor.clone() };
    let click_id = edge.config.click_keys.sign(&claims);
    let destination = with_click_id(&target.landing, &target.click_id_param, &click_id);
    let click = Click {
        id,
        received_at: now,
        offer: target.offer,
        member: target.member,
        link: target.link,
        visitor: visitor.clone(),
        click_id,
        deep_link: target.deep_link.then(|| target.landing.clone()),
        subs,
        bot,
        rejected: target.rejected,
        client: Some(client),
        client_repeat,
        program: edge.program.version(),
    };
    if let Some(reason) = target.rejected {
        metrics::counter!(crate::metrics::REJECTED, "reason" => reason.as_str()).increment(1);
    }
    let record = Record {
        topic: edge.config.topics.events.clone(),
        key: visitor.to_string(),
        payload: wire::encode(&TrackingEvent::Click(click)),
    };
    edge.record_browser("click", vec![record]).await;
    Ok(redirect(&destination, &visitor, edge))
}

fn resolve(
    program: &Program,
    params: &Params,
    link_code: Option<&str>,
    now: Timestamp,
) -> Result<ClickTarget, Rejection> {
    let (offer_id, member_id, link): (OfferId, MemberId, Option<&TrackingLink>) = match link_code {
        Some(code) => {
            let code = fields::link_code(code)?;
            let link = program
                .link(&code)
                .ok_or_else(|| Rejection::not_found(Code::UnknownLink, format!("no link {code}")))?;
            (link.offer.clone(), link.member.clone(), Some(link))
        }
        None => {
            let offer = fields::offer(params)?
                .ok_or_else(|| Rejection::bad_request(Code::MissingOffer, "offer is required"))?;
            let member = fields::member(params)?
                .ok_or_else(|| Rejection::bad_request(Code::MissingMember, "member is required"))?;
            (offer, member, None)
        }
    };
    let offer = program
        .offer(&offer_id)
        .ok_or_else(|| Rejection::not_found(Code::UnknownOffer, format!("no offer {offer_id}")))?;
    let rejected = rejection(program, offer, &member_id, link, now);
    // An earning click may go to an allowed deep link; any other goes to the offer URL.
    let deep_link: Option<Url> = if rejected.is_some() {
        None
    } else {
        let requested = params.non_empty("url").and_then(|url| allowed_deep_link(url, &offer.deep_link_hosts));
        requested.or_else(|| {
            link.and_then(|link| link.deep_url.as_deref())
                .and_then(|url| allowed_deep_link(url, &offer.deep_link_hosts))
        })
    };
    Ok(ClickTarget {
        offer: offer_id,
        member: member_id,
        link: link.map(|link| link.code.clone()),
        deep_link: deep_link.is_some(),
        landing: deep_link.map_or_else(|| offer.url.clone(), String::from),
        click_id_param: offer.click_id_param.clone(),
        rejected,
        offer_url: offer.url.clone(),
        unique_click_window: offer.unique_click_window,
    })
}

/// Why a click to a known offer earns nothing, if it does not.
fn rejection(
    program: &Program,
    offer: &Offer,
    member_id: &MemberId,
    link: Option<&TrackingLink>,
    now: Timestamp,
) -> Option<Reason> {
    if offer.paused {
        return Some(Reason::OfferPaused);
    }
    if offer.is_expired_at(now) {
        return Some(Reason::OfferExpired);
    }
    let Some(member) = program.member(member_id) else {
        return Some(Reason::UnknownMember);
    };
    if !member.is_approved() {
        return Some(Reason::MemberNotApproved);
    }
    match program.enrolment(&offer.id, member_id) {
        None => return Some(Reason::NotEnrolled),
        Some(enrolment) if !enrolment.active => return Some(Reason::EnrolmentInactive),
        Some(_) => {}
    }
    if link.is_some_and(|link| !link.active) {
        return Some(Reason::LinkInactive);
    }
    None
}

fn subs(params: &Params) -> Result<Subs, Rejection> {
    let sub = |name: &'static str| -> Result<Option<String>, Rejection> {
        match params.non_empty(name) {
            Some(value) if value.len() > MAX_SUB_LEN => {
                Err(Rejection::bad_request(Code::SubTooLong, format!("{name} is longer than {MAX_SUB_LEN} bytes")))
            }
            value => Ok(value.map(str::to_string)),
        }
    };
    Ok(Subs { sub1: sub("sub1")?, sub2: sub("sub2")?, sub3: sub("sub3")?, sub4: sub("sub4")?, sub5: sub("sub5")? })
}

/// The visitor of a valid `clk_v` cookie; a tampered or malformed one counts as none.
pub fn visitor_cookie(headers: &HeaderMap) -> Option<VisitorId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == VISITOR_COOKIE)
        .and_then(|(_, value)| VisitorId::new(value).ok())
}

fn redirect<L: EventLog>(destination: &str, visitor: &VisitorId, edge: &Edge<L>) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(destination) {
        headers.insert(header::LOCATION, location);
    }
    let secure = if edge.config.secure_cookie { "; Secure" } else { "" };
    let max_age = edge.config.visitor_cookie_max_age.millis() / 1000;
    let cookie = format!("{VISITOR_COOKIE}={visitor}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer-when-downgrade"));
    response
}
