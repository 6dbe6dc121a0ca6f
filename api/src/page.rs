//! Pagination: every list answers `{"items": [...], "next": "<cursor>" | null}`. `limit` is
//! 1 to 1000 (default 100); `next` is set when the page is full and goes back as `cursor`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page; `null` on the last one.
    pub next: Option<String>,
}

/// Where a page starts and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub offset: u32,
    pub limit: u32,
}

impl Window {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request("bad_limit", format!("limit must be 1 to {MAX_PAGE}")));
        }
        let offset = match cursor {
            Some(cursor) => cursor
                .parse::<u32>()
                .map_err(|_| ApiError::bad_request("bad_cursor", "cursor is not one this API gave"))?,
            None => 0,
        };
        Ok(Self { offset, limit })
    }

    /// A page of items the store already cut to this window.
    pub fn page<T>(self, items: Vec<T>) -> Page<T> {
        let next = (items.len() as u32 == self.limit).then(|| (self.offset + self.limit).to_string());
        Page { items, next }
    }

    /// This window of a whole list.
    pub fn cut<T>(self, all: impl IntoIterator<Item = T>) -> Page<T> {
        let mut items: Vec<T> = all.into_iter().skip(self.offset as usize).take(self.limit as usize + 1).collect();
        let more = items.len() > self.limit as usize;
        items.truncate(self.limit as usize);
        Page { items, next: more.then(|| (self.offset + self.limit).to_string()) }
    }
}
