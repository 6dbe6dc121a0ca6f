//! Attribution: which member earned a conversion, or why nobody did. Pure: the program, the
//! visitor's recent clicks and the click-id keys are arguments; time comes from the event.
//!
//! Candidates, in the terms of docs/RULES.md, "Attribution":
//! - a **click id** sent back on a postback (checked: signature, window);
//! - a **cookie click**: the visitor's clicks on the offer inside the cookie window (the
//!   offer's, or the member's override) before the conversion; the last one wins across
//!   members, or the first with `attribution = first_click`;
//! - a **promo code**: active, inside its dates, of the same offer.
//!
//! A code and a click compete by the offer's `code_precedence` (the code by default). The
//! winner must still be allowed to earn at the conversion's time: the offer exists, is not
//! paused or expired, the member exists, is approved and is enrolled, the currency is the
//! offer's, the advertiser owns the offer. Every conversion ends as attributed or rejected
//! with a [`Reason`].

use model::clickid::{ClickIdError, ClickKeyRing};
use model::events::{ClickTrace, Conversion, ConversionSource, Reason, Via};
use model::ids::{AdvertiserId, EventId, MemberId, OfferId};
use model::program::{AttributionModel, CodePixel, CodePrecedence, Offer, Program};
use model::time::Timestamp;
use serde::{Deserialize, Serialize};

/// A click the attributor remembers for its visitor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentClick {
    pub id: EventId,
    pub at: Timestamp,
    pub offer: OfferId,
    pub member: MemberId,
    /// Its `sub1`..`sub5` when it has any, and its click id while the program has postbacks or
    /// webhooks (what a partner postback sends back; empty otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Box<ClickTrace>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Attributed {
        advertiser: AdvertiserId,
        offer: OfferId,
        member: MemberId,
        via: Via,
        /// Only a promo code on an unauthenticated pixel named the member, and the offer
        /// holds such conversions pending (`code_pixel = "pending"`).
        unverified: bool,
    },
    /// Nobody earns it. `member` and `via` are the member the evidence named and that evidence,
    /// when one was found and then refused.
    Rejected {
        reason: Reason,
        advertiser: Option<AdvertiserId>,
        offer: Option<OfferId>,
        member: Option<MemberId>,
        via: Option<Via>,
    },
}

fn rejected(reason: Reason, offer: Option<OfferId>, member: Option<MemberId>) -> Outcome {
    Outcome::Rejected { reason, advertiser: None, offer, member, via: None }
}

/// The cookie window for a member's clicks on an offer.
fn window_of(program: &Program, offer: &Offer, member: &MemberId) -> model::Span {
    program.member(member).and_then(|member| member.cookie_window).unwrap_or(offer.cookie_window)
}

struct Candidate {
    offer: OfferId,
    member: MemberId,
    via: Via,
    clicked_at: Option<Timestamp>,
}

pub fn attribute(program: &Program, keys: &ClickKeyRing, conversion: &Conversion, recent: &[RecentClick]) -> Outcome {
    let at = conversion.event_time();
    if let Some(reason) = conversion.refused {
        return rejected(reason, conversion.offer.clone(), None);
    }
    if conversion.bot {
        return rejected(Reason::Bot, conversion.offer.clone(), None);
    }

    let click_candidate = match &conversion.click_id {
        Some(click_id) => match keys.verify(click_id) {
            Ok(claims) => Some(Candidate {
                clicked_at: Some(claims.clicked_at()),
                via: Via::ClickId { click: claims.click, clicked_at: claims.clicked_at() },
                offer: claims.offer,
                member: claims.member,
            }),
            Err(ClickIdError::Malformed | ClickIdError::UnknownKey | ClickIdError::BadSignature) => {
                return rejected(Reason::BadSignature, conversion.offer.clone(), None);
            }
        },
        None => cookie_click(program, conversion, recent, at),
    };

    let mut code_refusal = None;
    let code_candidate = conversion.code.as_ref().and_then(|code| match program.code(code) {
        None => {
            code_refusal = Some(Reason::UnknownCode);
            None
        }
        Some(grant) if !grant.is_usable_at(at) => {
            code_refusal = Some(Reason::CodeInactive);
            None
        }
        // Another offer's code, or another advertiser's: no code of this conversion.
        Some(grant)
            if conversion.offer.as_ref().is_some_and(|offer| offer != &grant.offer)
                || !owned_by_sender(program, conversion, &grant.offer) =>
        {
            code_refusal = Some(Reason::UnknownCode);
            None
        }
        Some(grant) => Some(Candidate {
            offer: grant.offer.clone(),
            member: grant.member.clone(),
            via: Via::Code { code: grant.code.clone() },
            clicked_at: None,
        }),
    });

    let clicked = click_candidate.is_some();
    let chosen = match (click_candidate, code_candidate) {
        (Some(click), Some(code)) => {
            let precedence = program.offer(&code.offer).map_or(CodePrecedence::Code, |offer| offer.code_precedence);
            match precedence {
                CodePrecedence::Code => code,
                CodePrecedence::Link => click,
            }
        }
        (Some(click), None) => click,
        (None, Some(code)) => code,
        (None, None) => {
            return rejected(code_refusal.unwrap_or(Reason::NoClickInWindow), conversion.offer.clone(), None);
        }
    };
    let code_only_pixel =
        conversion.source == ConversionSource::Pixel && !clicked && matches!(chosen.via, Via::Code { .. });
    let policy = program.offer(&chosen.offer).map_or(CodePixel::Pending, |offer| offer.code_pixel);
    match check(program, conversion, chosen, at) {
        Outcome::Attributed { advertiser, offer, member, via, .. } if code_only_pixel => match policy {
            CodePixel::Trust => Outcome::Attributed { advertiser, offer, member, via, unverified: false },
            CodePixel::Pending => Outcome::Attributed { advertiser, offer, member, via, unverified: true },
            CodePixel::Ignore => Outcome::Rejected {
                reason: Reason::UnverifiedCode,
                advertiser: None,
                offer: Some(offer),
                member: Some(member),
                via: Some(via),
            },
        },
        outcome => outcome,
    }
}

/// Whether `offer` belongs to the advertiser that sent the conversion (any, when unknown).
fn owned_by_sender(program: &Program, conversion: &Conversion, offer: &OfferId) -> bool {
    match (&conversion.advertiser, program.offer(offer)) {
        (Some(sender), Some(offer)) => &offer.advertiser == sender,
        _ => true,
    }
}

/// The visitor's click that wins by the offer's model, inside its window, before `at`.
fn cookie_click(
    program: &Program,
    conversion: &Conversion,
    recent: &[RecentClick],
    at: Timestamp,
) -> Option<Candidate> {
    let eligible = recent.iter().filter(|click| {
        let same_offer = conversion.offer.as_ref().is_none_or(|offer| offer == &click.offer);
        let Some(offer) = program.offer(&click.offer).filter(|_| same_offer) else {
            return false;
        };
        click.at <= at && at <= click.at.saturating_add(window_of(program, offer, &click.member))
    });
    let first_click = conversion
        .offer
        .as_ref()
        .and_then(|offer| program.offer(offer))
        .is_some_and(|offer| offer.attribution == AttributionModel::FirstClick);
    let click = if first_click {
        eligible.min_by_key(|click| (click.at, click.id))
    } else {
        eligible.max_by_key(|click| (click.at, click.id))
    }?;
    Some(Candidate {
        offer: click.offer.clone(),
        member: click.member.clone(),
        via: Via::Cookie { click: click.id, clicked_at: click.at },
        clicked_at: Some(click.at),
    })
}

/// Whether the chosen member may earn the conversion, at its time.
fn check(program: &Program, conversion: &Conversion, chosen: Candidate, at: Timestamp) -> Outcome {
    let Candidate { offer: offer_id, member: member_id, via, clicked_at } = chosen;
    let refuse = |reason| Outcome::Rejected {
        reason,
        advertiser: None,
        offer: Some(offer_id.clone()),
        member: Some(member_id.clone()),
        via: Some(via.clone()),
    };
    let Some(offer) = program.offer(&offer_id) else {
        return refuse(Reason::UnknownOffer);
    };
    if let Some(clicked_at) = clicked_at {
        if at < clicked_at || at > clicked_at.saturating_add(window_of(program, offer, &member_id)) {
            return refuse(Reason::NoClickInWindow);
        }
    }
    if conversion.advertiser.as_ref().is_some_and(|advertiser| advertiser != &offer.advertiser) {
        return refuse(Reason::WrongAdvertiser);
    }
    if offer.paused {
        return refuse(Reason::OfferPaused);
    }
    if offer.is_expired_at(at) {
        return refuse(Reason::OfferExpired);
    }
    let Some(member) = program.member(&member_id) else {
        return refuse(Reason::UnknownMember);
    };
    if !member.is_approved() {
        return refuse(Reason::MemberNotApproved);
    }
    match program.enrolment(&offer_id, &member_id) {
        None => return refuse(Reason::NotEnrolled),
        Some(enrolment) if !enrolment.active => return refuse(Reason::EnrolmentInactive),
        Some(_) => {}
    }
    if conversion.currency.is_some_and(|currency| currency != offer.currency) {
        return refuse(Reason::CurrencyMismatch);
    }
    Outcome::Attributed {
        advertiser: offer.advertiser.clone(),
        offer: offer_id,
        member: member_id,
        via,
        unverified: false,
    }
}
