//! What the store keeps of each click and conversion besides the commission lines: the rows
//! the ledger stage writes for the click and conversion reports.

use serde::{Deserialize, Serialize};

use super::{Click, Conversion, Reason};
use crate::ids::{AdvertiserId, MemberId, OfferId, OrderKey};

/// A click and whether the ledger counted it as unique.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClickRow {
    pub click: Click,
    pub unique: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversionStatus {
    /// It won its order and was priced.
    Attributed,
    /// Another conversion of the same order came first.
    Duplicate,
    /// It earns nothing; `reason` says why.
    Rejected,
}

impl ConversionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversionStatus::Attributed => "attributed",
            ConversionStatus::Duplicate => "duplicate",
            ConversionStatus::Rejected => "rejected",
        }
    }
}

/// A conversion with what became of it. A conversion can change from attributed to duplicate
/// when an earlier one of its order arrives; `revision` orders the versions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConversionRow {
    pub conversion: Conversion,
    pub status: ConversionStatus,
    pub reason: Option<Reason>,
    pub advertiser: Option<AdvertiserId>,
    pub order_key: Option<OrderKey>,
    pub offer: Option<OfferId>,
    pub member: Option<MemberId>,
    /// `cookie`, `click_id`, `code`, or empty.
    pub via: String,
    pub revision: u64,
    /// The `sub1`..`sub5` of the click it was attributed through.
    #[serde(default)]
    pub subs: super::Subs,
}
