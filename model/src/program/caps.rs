//! Caps: limits on the conversions an offer or an enrolment pays, or on what it pays, in a
//! calendar day or month of the program's time zone (docs/RULES.md, "Caps").

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ProgramError;
use crate::time::Timestamp;

/// A limit on conversions, on payout, or both, in a calendar period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Cap {
    pub period: CapPeriod,
    /// At most this many conversions paid in the period.
    #[serde(default)]
    pub conversions: Option<u32>,
    /// At most this much 1st-tier commission paid in the period.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub payout: Option<Decimal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CapPeriod {
    Day,
    Month,
}

/// What becomes of a conversion over a cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OverCap {
    /// Rejected `cap_exceeded`: it earns nothing.
    #[default]
    Reject,
    /// Its lines stay pending for a program manager to approve or reject.
    Pending,
}

/// The calendar period an instant falls in: `(year, month, day)`, the day 0 for a month.
pub type PeriodKey = (CapPeriod, i32, u32, u32);

impl CapPeriod {
    pub fn key_of(self, at: Timestamp, zone: chrono_tz::Tz) -> PeriodKey {
        use chrono::Datelike;
        let local = at.to_datetime().with_timezone(&zone);
        match self {
            CapPeriod::Day => (self, local.year(), local.month(), local.day()),
            CapPeriod::Month => (self, local.year(), local.month(), 0),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CapPeriod::Day => "day",
            CapPeriod::Month => "month",
        }
    }
}

impl Cap {
    pub(super) fn validate(&self, context: &str) -> Result<(), ProgramError> {
        if self.conversions.is_none() && self.payout.is_none() {
            return Err(ProgramError::invalid(format!("{context}: a cap limits conversions, payout or both")));
        }
        if self.conversions == Some(0) {
            return Err(ProgramError::invalid(format!("{context}: a conversion cap is at least 1")));
        }
        if self.payout.is_some_and(|payout| payout <= Decimal::ZERO || payout > crate::money::MAX_AMOUNT) {
            return Err(ProgramError::invalid(format!("{context}: a payout cap is above 0")));
        }
        Ok(())
    }
}

pub(super) fn validate_caps(context: &str, caps: &[Cap]) -> Result<(), ProgramError> {
    for (index, cap) in caps.iter().enumerate() {
        cap.validate(context)?;
        if caps[..index].iter().any(|earlier| earlier.period == cap.period) {
            return Err(ProgramError::invalid(format!(
                "{context}: one cap per period ({} twice)",
                cap.period.as_str()
            )));
        }
    }
    Ok(())
}
