//! Ids from paths and bodies, and the program entities they name. A malformed id is
//! `400 bad_<kind>`; a well-formed id the program does not know is `404 unknown_<kind>`.

use model::events::Reason;
use model::ids::{AdvertiserId, LinkCode, MemberId, OfferId, OrderId, OrderKey, PromoCode};
use model::program::{Advertiser, Member, Offer, Program, PromoCodeGrant, TrackingLink};

use crate::error::ApiError;

pub fn offer_id(text: &str) -> Result<OfferId, ApiError> {
    OfferId::new(text).map_err(|error| ApiError::bad_request("bad_offer", error.to_string()))
}

pub fn member_id(text: &str) -> Result<MemberId, ApiError> {
    MemberId::new(text).map_err(|error| ApiError::bad_request("bad_member", error.to_string()))
}

pub fn advertiser_id(text: &str) -> Result<AdvertiserId, ApiError> {
    AdvertiserId::new(text).map_err(|error| ApiError::bad_request("bad_advertiser", error.to_string()))
}

pub fn link_code(text: &str) -> Result<LinkCode, ApiError> {
    LinkCode::new(text).map_err(|error| ApiError::bad_request("bad_link_code", error.to_string()))
}

pub fn promo_code(text: &str) -> Result<PromoCode, ApiError> {
    PromoCode::new(text).map_err(|error| ApiError::bad_request("bad_code", error.to_string()))
}

pub fn order_id(text: &str) -> Result<OrderId, ApiError> {
    OrderId::new(text).map_err(|error| ApiError::bad_request("bad_order_id", error.to_string()))
}

/// `{advertiser}:{order_id}`, both parts well formed.
pub fn order_key(text: &str) -> Result<OrderKey, ApiError> {
    let (advertiser, order) = text
        .split_once(':')
        .ok_or_else(|| ApiError::bad_request("bad_order_key", "an order key is {advertiser}:{order_id}"))?;
    let advertiser = AdvertiserId::new(advertiser)
        .map_err(|error| ApiError::bad_request("bad_order_key", format!("advertiser: {error}")))?;
    let order =
        OrderId::new(order).map_err(|error| ApiError::bad_request("bad_order_key", format!("order id: {error}")))?;
    Ok(OrderKey::new(&advertiser, &order))
}

/// A rejection reason (`no_click_in_window`, `duplicate_order`, ...).
pub fn reason(text: &str) -> Result<Reason, ApiError> {
    Reason::parse(text)
        .ok_or_else(|| ApiError::bad_request("bad_reason", format!("{text:?} is not a rejection reason")))
}

pub fn offer<'a>(program: &'a Program, id: &OfferId) -> Result<&'a Offer, ApiError> {
    program.offer(id).ok_or_else(|| ApiError::not_found("unknown_offer", format!("no offer {id}")))
}

pub fn member<'a>(program: &'a Program, id: &MemberId) -> Result<&'a Member, ApiError> {
    program.member(id).ok_or_else(|| ApiError::not_found("unknown_member", format!("no member {id}")))
}

pub fn advertiser<'a>(program: &'a Program, id: &AdvertiserId) -> Result<&'a Advertiser, ApiError> {
    program.advertiser(id).ok_or_else(|| ApiError::not_found("unknown_advertiser", format!("no advertiser {id}")))
}

pub fn link<'a>(program: &'a Program, code: &LinkCode) -> Result<&'a TrackingLink, ApiError> {
    program.link(code).ok_or_else(|| ApiError::not_found("unknown_link", format!("no link {code}")))
}

pub fn code<'a>(program: &'a Program, code: &PromoCode) -> Result<&'a PromoCodeGrant, ApiError> {
    program.code(code).ok_or_else(|| ApiError::not_found("unknown_code", format!("no promo code {code}")))
}
