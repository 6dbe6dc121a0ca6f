//! Offers and their payout options: what a member earns, and for what.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ProgramError;
use super::caps::{Cap, OverCap};
use crate::ids::{AdvertiserId, OfferId, PayoutOptionId, Sku};
use crate::money::Currency;
use crate::time::{Interval, Span, Timestamp};

/// The default cookie window of an offer (docs/RULES.md, "Cookie window").
pub const DEFAULT_COOKIE_WINDOW: Span = Span::days(30);
/// The default window in which a visitor's repeat clicks are not unique (docs/RULES.md,
/// "Unique clicks").
pub const DEFAULT_UNIQUE_CLICK_WINDOW: Span = Span::hours(24);
/// The longest cookie window an offer or member may set.
pub const MAX_COOKIE_WINDOW: Span = Span::days(365);

/// A promotion that members drive traffic to (seed 000, "Offer").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Offer {
    pub id: OfferId,
    pub advertiser: AdvertiserId,
    pub name: String,
    /// Where a click is redirected unless an allowed deep link is given.
    pub url: String,
    pub currency: Currency,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub paused: bool,
    #[serde(default = "default_cookie_window")]
    #[cfg_attr(feature = "openapi", schema(default = default_cookie_window))]
    pub cookie_window: Span,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = AttributionModel::default))]
    pub attribution: AttributionModel,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = CodePrecedence::default))]
    pub code_precedence: CodePrecedence,
    /// The query parameter that carries the click id on the redirect (`click_id`, `irclickid`, ...).
    #[serde(default = "default_click_id_param")]
    #[cfg_attr(feature = "openapi", schema(default = default_click_id_param))]
    pub click_id_param: String,
    /// Hosts a deep link may point to (`shop.example.com`); anything else falls back to `url`.
    #[serde(default)]
    pub deep_link_hosts: Vec<String>,
    #[serde(default = "default_unique_click_window")]
    #[cfg_attr(feature = "openapi", schema(default = default_unique_click_window))]
    pub unique_click_window: Span,
    pub payout_options: Vec<PayoutOption>,
    /// The payout option of members enrolled without one.
    pub default_payout: PayoutOptionId,
    /// What a conversion earns when its only evidence is a promo code on an unauthenticated
    /// pixel (anyone who knows a public code can send one).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = CodePixel::default))]
    pub code_pixel: CodePixel,
    /// The largest `amount` (and item total) a pixel may report; a postback is bounded only by
    /// the edge's amount limit.
    #[serde(default = "default_pixel_max_amount")]
    #[cfg_attr(feature = "openapi", schema(default = default_pixel_max_amount, value_type = String))]
    pub pixel_max_amount: Decimal,
    /// Limits on the offer's conversions or payout per day or month, over every member.
    #[serde(default)]
    pub caps: Vec<Cap>,
    /// What becomes of a conversion over a cap of the offer or of its enrolment.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = OverCap::default))]
    pub over_cap: OverCap,
    /// Partner postbacks called on the events of its conversions (docs/NOTIFICATIONS.md).
    #[serde(default)]
    pub postbacks: Vec<super::notify::Postback>,
}

/// The default [`Offer::pixel_max_amount`].
pub const DEFAULT_PIXEL_MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 2);

fn default_pixel_max_amount() -> Decimal {
    DEFAULT_PIXEL_MAX_AMOUNT
}

/// How conversions whose only evidence is a code on an unauthenticated pixel are paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CodePixel {
    /// Their commission lines are pending until a program manager approves them, or until the
    /// advertiser's signed postback for the order replaces the pixel.
    #[default]
    Pending,
    /// Paid like any other conversion.
    Trust,
    /// Rejected `unverified_code`.
    Ignore,
}

fn default_cookie_window() -> Span {
    DEFAULT_COOKIE_WINDOW
}

fn default_unique_click_window() -> Span {
    DEFAULT_UNIQUE_CLICK_WINDOW
}

fn default_click_id_param() -> String {
    "click_id".to_string()
}

/// Which click wins when a visitor clicked several links inside the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttributionModel {
    #[default]
    LastClick,
    FirstClick,
}

/// When a conversion carries both a promo code and a cookie click, which one wins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CodePrecedence {
    #[default]
    Code,
    Link,
}

/// One way of paying members of an offer (seed 001, "Multiple Payout Options").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayoutOption {
    pub id: PayoutOptionId,
    /// The keyword shown on commission lines (`sale`, `click`, `Pending_sale`).
    pub name: String,
    pub rule: PayoutRule,
    /// Commissions start `pending` and wait for approve / reject (seed 004, "Pending_").
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub pending: bool,
    /// With `pending`, approve automatically this long after the conversion.
    #[serde(default)]
    pub hold: Option<Span>,
    /// Credit the member every interval while the subscription lasts (seed 004, "Recurring").
    #[serde(default)]
    pub recurring: Option<RecurringTerms>,
    /// Tier2Tracking: the parent earns this multiple of the 1st-tier amount.
    #[serde(default)]
    pub tier2: Option<Decimal>,
    /// Tier3Tracking: the grandparent earns this multiple of the 1st-tier amount.
    #[serde(default)]
    pub tier3: Option<Decimal>,
    /// Conversion events this option pays for; empty means every event.
    #[serde(default)]
    pub events: Vec<String>,
}

impl PayoutOption {
    pub fn pays_for_event(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|name| name == event)
    }
}

/// How a commission amount is computed (seeds 000 and 004).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayoutRule {
    /// A flat amount per unique click, by instance ("Instance N onwards").
    Cpc { per_click: Tiered },
    /// A flat amount per conversion, by instance.
    Cpa { per_conversion: Tiered },
    /// A fraction of the sale amount (0.10 is 10%), by instance.
    Cps { rate: Tiered },
    /// A flat amount plus a fraction of the sale amount.
    CpaCps { amount: Decimal, rate: Decimal },
    /// A fraction chosen by the order amount; bands are upper-inclusive.
    OrderBands { bands: Vec<OrderBand> },
    /// Pay only for selected products: a fraction of the item amount or a flat amount per unit.
    Products { products: Vec<ProductRule> },
    /// A fraction chosen by the member's sales earlier in the same calendar month.
    Accumulated { thresholds: Vec<MonthlyThreshold> },
}

impl PayoutRule {
    pub fn kind(&self) -> &'static str {
        match self {
            PayoutRule::Cpc { .. } => "cpc",
            PayoutRule::Cpa { .. } => "cpa",
            PayoutRule::Cps { .. } => "cps",
            PayoutRule::CpaCps { .. } => "cpa_cps",
            PayoutRule::OrderBands { .. } => "order_bands",
            PayoutRule::Products { .. } => "products",
            PayoutRule::Accumulated { .. } => "accumulated",
        }
    }

    pub fn pays_clicks(&self) -> bool {
        matches!(self, PayoutRule::Cpc { .. })
    }

    /// Whether what a conversion earns — its amount or its description — depends on what came
    /// before it: its instance number (CPC, CPA, CPS by instance) or the month's earlier sales.
    /// A conversion that arrives late re-prices only the later ones whose rule says so.
    pub fn depends_on_earlier(&self) -> bool {
        match self {
            PayoutRule::Cpc { .. } | PayoutRule::Cpa { .. } | PayoutRule::Accumulated { .. } => true,
            PayoutRule::Cps { rate } => rate.0.len() > 1,
            PayoutRule::CpaCps { .. } | PayoutRule::OrderBands { .. } | PayoutRule::Products { .. } => false,
        }
    }
}

/// "Instance N onwards, Payout = x" lines. Instance N is paid by the line with the largest
/// `from` not above N (marginal, not retroactive).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Tiered(pub Vec<TierLine>);

/// From instance `from` on (the first line starts at 1), pay `value`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TierLine {
    pub from: u64,
    pub value: Decimal,
}

impl Tiered {
    /// One line from the first instance on.
    pub fn flat(value: Decimal) -> Self {
        Self(vec![TierLine { from: 1, value }])
    }

    /// The value paid for instance `instance` (1-based).
    pub fn value_at(&self, instance: u64) -> Decimal {
        self.0.iter().rev().find(|line| line.from <= instance).map_or(Decimal::ZERO, |line| line.value)
    }
}

/// Pays `rate` for orders above the previous band's `up_to` and up to and including this one's;
/// `up_to = None` is the open top band.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrderBand {
    #[serde(default)]
    pub up_to: Option<Decimal>,
    pub rate: Decimal,
}

/// What one product (by SKU) pays.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductRule {
    pub sku: Sku,
    pub pays: ProductPay,
}

/// `{"rate": "0.10"}` or `{"per_unit": "5"}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProductPay {
    /// A fraction of the item amount (price × quantity).
    Rate(Decimal),
    /// A flat amount per unit.
    PerUnit(Decimal),
}

/// From this much in the member's monthly sales on, pay `rate`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MonthlyThreshold {
    pub from: Decimal,
    pub rate: Decimal,
}

/// The recurring part of a payout option: `rate` of the recurring amount, every `every`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecurringTerms {
    /// The subscription keyword shown in line descriptions (`subscriptionsales`).
    pub name: String,
    pub rate: Decimal,
    pub every: Interval,
}

/// The largest fraction a percentage rule may pay (100%).
const MAX_RATE: Decimal = Decimal::ONE;
/// The largest Tier2/Tier3 multiple (seed 004, example 3 uses 2).
const MAX_TIER_VALUE: Decimal = Decimal::from_parts(10, 0, 0, false, 0);

impl Offer {
    pub fn payout_option(&self, id: &PayoutOptionId) -> Option<&PayoutOption> {
        self.payout_options.iter().find(|option| &option.id == id)
    }

    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|expiry| now >= expiry)
    }

    /// Checks that depend on the offer alone.
    pub fn validate(&self) -> Result<(), ProgramError> {
        let offer = &self.id;
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(ProgramError::invalid(format!("offer {offer}: name must be 1 to 200 characters")));
        }
        validate_http_url(&self.url).map_err(|why| ProgramError::invalid(format!("offer {offer}: url {why}")))?;
        super::notify::validate_postbacks(&format!("offer {offer}"), &self.postbacks)?;
        if self.cookie_window.millis() <= 0 || self.cookie_window > MAX_COOKIE_WINDOW {
            return Err(ProgramError::invalid(format!("offer {offer}: cookie window must be between 1s and 365d")));
        }
        if self.unique_click_window.millis() <= 0 {
            return Err(ProgramError::invalid(format!("offer {offer}: unique click window must be positive")));
        }
        let param_ok = !self.click_id_param.is_empty()
            && self.click_id_param.len() <= 32
            && self.click_id_param.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !param_ok {
            return Err(ProgramError::invalid(format!(
                "offer {offer}: click id parameter must be 1 to 32 of [A-Za-z0-9_]"
            )));
        }
        for host in &self.deep_link_hosts {
            if !is_valid_host(host) {
                return Err(ProgramError::invalid(format!("offer {offer}: {host:?} is not a lower-case host name")));
            }
        }
        if self.pixel_max_amount.is_sign_negative() || self.pixel_max_amount > crate::money::MAX_AMOUNT {
            return Err(ProgramError::invalid(format!(
                "offer {offer}: pixel_max_amount must be between 0 and {}",
                crate::money::MAX_AMOUNT
            )));
        }
        super::caps::validate_caps(&format!("offer {offer}"), &self.caps)?;
        if self.payout_options.is_empty() {
            return Err(ProgramError::invalid(format!("offer {offer}: needs at least one payout option")));
        }
        for (index, option) in self.payout_options.iter().enumerate() {
            if self.payout_options[..index].iter().any(|earlier| earlier.id == option.id) {
                return Err(ProgramError::DuplicatePayoutOption { offer: offer.clone(), option: option.id.clone() });
            }
            option.validate(offer)?;
        }
        if self.payout_option(&self.default_payout).is_none() {
            return Err(ProgramError::UnknownPayoutOption {
                offer: offer.clone(),
                option: self.default_payout.clone(),
            });
        }
        Ok(())
    }
}

impl PayoutOption {
    fn validate(&self, offer: &OfferId) -> Result<(), ProgramError> {
        let context = format!("offer {offer}, payout option {}", self.id);
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Err(ProgramError::invalid(format!("{context}: name must be 1 to 64 characters")));
        }
        self.rule.validate(&context)?;
        if self.hold.is_some() && !self.pending {
            return Err(ProgramError::invalid(format!("{context}: a hold period needs a pending option")));
        }
        if let Some(recurring) = &self.recurring {
            recurring.validate(&context)?;
        }
        for tier in [self.tier2, self.tier3].into_iter().flatten() {
            check_range(&context, "tier value", tier, MAX_TIER_VALUE)?;
        }
        Ok(())
    }
}

impl RecurringTerms {
    pub fn validate(&self, context: &str) -> Result<(), ProgramError> {
        if self.name.trim().is_empty() {
            return Err(ProgramError::invalid(format!("{context}: recurring terms need a name")));
        }
        check_range(context, "recurring rate", self.rate, MAX_RATE)?;
        if self.every.is_empty() {
            return Err(ProgramError::invalid(format!("{context}: recurring interval must be at least 1")));
        }
        Ok(())
    }
}

impl PayoutRule {
    /// Rejects negative values, tiers that do not start at instance 1 or overlap, unordered
    /// bands and thresholds, and rates above 100%.
    pub fn validate(&self, context: &str) -> Result<(), ProgramError> {
        match self {
            PayoutRule::Cpc { per_click: tiers } | PayoutRule::Cpa { per_conversion: tiers } => {
                validate_tiers(context, tiers, None)
            }
            PayoutRule::Cps { rate } => validate_tiers(context, rate, Some(MAX_RATE)),
            PayoutRule::CpaCps { amount, rate } => {
                check_non_negative(context, "amount", *amount)?;
                check_range(context, "rate", *rate, MAX_RATE)
            }
            PayoutRule::OrderBands { bands } => validate_bands(context, bands),
            PayoutRule::Products { products } => validate_products(context, products),
            PayoutRule::Accumulated { thresholds } => validate_thresholds(context, thresholds),
        }
    }
}

fn validate_tiers(context: &str, tiers: &Tiered, max_value: Option<Decimal>) -> Result<(), ProgramError> {
    let Some(first) = tiers.0.first() else {
        return Err(ProgramError::InvalidTiers { context: context.to_string(), why: "no tier lines".into() });
    };
    if first.from != 1 {
        return Err(ProgramError::InvalidTiers {
            context: context.to_string(),
            why: "the first tier line must start at instance 1".into(),
        });
    }
    for pair in tiers.0.windows(2) {
        if pair[1].from <= pair[0].from {
            return Err(ProgramError::InvalidTiers {
                context: context.to_string(),
                why: format!("instance {} overlaps instance {}", pair[1].from, pair[0].from),
            });
        }
    }
    for line in &tiers.0 {
        match max_value {
            Some(max) => check_range(context, "tier value", line.value, max)?,
            None => check_non_negative(context, "tier value", line.value)?,
        }
    }
    Ok(())
}

fn validate_bands(context: &str, bands: &[OrderBand]) -> Result<(), ProgramError> {
    let invalid = |why: String| ProgramError::InvalidTiers { context: context.to_string(), why };
    let Some(last) = bands.last() else {
        return Err(invalid("no order bands".into()));
    };
    if last.up_to.is_some() {
        return Err(invalid("the last order band must be open (no up_to)".into()));
    }
    let mut previous: Option<Decimal> = None;
    for band in &bands[..bands.len() - 1] {
        let Some(up_to) = band.up_to else {
            return Err(invalid("only the last order band may be open".into()));
        };
        check_non_negative(context, "band limit", up_to)?;
        if let Some(previous) = previous.filter(|previous| up_to <= *previous) {
            return Err(invalid(format!("band up to {up_to} overlaps the band up to {previous}")));
        }
        previous = Some(up_to);
    }
    for band in bands {
        check_range(context, "band rate", band.rate, MAX_RATE)?;
    }
    Ok(())
}

fn validate_products(context: &str, products: &[ProductRule]) -> Result<(), ProgramError> {
    if products.is_empty() {
        return Err(ProgramError::invalid(format!("{context}: no product rules")));
    }
    for (index, product) in products.iter().enumerate() {
        if products[..index].iter().any(|earlier| earlier.sku == product.sku) {
            return Err(ProgramError::invalid(format!("{context}: product {} appears twice", product.sku)));
        }
        match product.pays {
            ProductPay::Rate(rate) => check_range(context, "product rate", rate, MAX_RATE)?,
            ProductPay::PerUnit(amount) => check_non_negative(context, "amount per unit", amount)?,
        }
    }
    Ok(())
}

fn validate_thresholds(context: &str, thresholds: &[MonthlyThreshold]) -> Result<(), ProgramError> {
    let invalid = |why: String| ProgramError::InvalidTiers { context: context.to_string(), why };
    let Some(first) = thresholds.first() else {
        return Err(invalid("no monthly thresholds".into()));
    };
    if !first.from.is_zero() {
        return Err(invalid("the first monthly threshold must start at 0".into()));
    }
    for pair in thresholds.windows(2) {
        if pair[1].from <= pair[0].from {
            return Err(invalid(format!("threshold {} overlaps threshold {}", pair[1].from, pair[0].from)));
        }
    }
    for threshold in thresholds {
        check_range(context, "threshold rate", threshold.rate, MAX_RATE)?;
    }
    Ok(())
}

fn check_non_negative(context: &str, what: &str, value: Decimal) -> Result<(), ProgramError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ProgramError::NegativeValue { context: context.to_string(), what: what.to_string(), value });
    }
    Ok(())
}

fn check_range(context: &str, what: &str, value: Decimal, max: Decimal) -> Result<(), ProgramError> {
    check_non_negative(context, what, value)?;
    if value > max {
        return Err(ProgramError::invalid(format!("{context}: {what} {value} is above {max}")));
    }
    Ok(())
}

/// An absolute `http` or `https` URL with a host; the edge redirects to it.
pub fn validate_http_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must start with http:// or https://")?;
    if url.len() > 2048 {
        return Err("is longer than 2048 characters");
    }
    if url.bytes().any(|byte| byte.is_ascii_control() || byte == b' ') {
        return Err("contains spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry credentials");
    }
    let host = authority.rsplit_once(':').map_or(authority, |(host, _port)| host);
    if !is_valid_host(&host.to_ascii_lowercase()) {
        return Err("needs a host name");
    }
    Ok(())
}

/// A lower-case DNS host name (`shop.example.com`), ASCII only (IDN hosts in punycode).
pub fn is_valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        })
}
