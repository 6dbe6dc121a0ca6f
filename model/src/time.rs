//! Event time. Rules never read a clock: they take timestamps from events (`received_at`,
//! `occurred_at`) and `now` as arguments, so replaying a log reproduces its results.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant with millisecond precision. On the wire: RFC 3339 (`2026-11-21T05:14:00.123Z`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 timestamp")]
pub struct TimestampError(pub String);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        DateTime::parse_from_rfc3339(text)
            .map(|instant| Self(instant.timestamp_millis()))
            .map_err(|_| TimestampError(text.to_string()))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0).single().unwrap_or_default()
    }

    pub fn saturating_add(self, span: Span) -> Self {
        Self(self.0.saturating_add(span.millis()))
    }

    pub fn saturating_sub(self, span: Span) -> Self {
        Self(self.0.saturating_sub(span.millis()))
    }

    /// This instant plus a recurring interval; months are calendar months (Jan 31 + 1 month is
    /// the last day of February).
    pub fn add_interval(self, interval: Interval, times: u32) -> Self {
        match interval {
            Interval::Days(days) => Self(self.0.saturating_add(i64::from(days) * i64::from(times) * 86_400_000)),
            Interval::Months(months) => {
                let shifted = self.to_datetime().checked_add_months(Months::new(months.saturating_mul(times)));
                shifted.map(|instant| Self(instant.timestamp_millis())).unwrap_or(Self(i64::MAX))
            }
        }
    }

    /// The calendar month this instant falls in, in the program's time zone.
    pub fn month_in(self, zone: chrono_tz::Tz) -> YearMonth {
        let local = self.to_datetime().with_timezone(&zone);
        YearMonth { year: local.year(), month: local.month() }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;
    fn try_from(text: String) -> Result<Self, TimestampError> {
        Self::parse(&text)
    }
}

impl From<Timestamp> for String {
    fn from(timestamp: Timestamp) -> String {
        timestamp.to_string()
    }
}

/// A calendar month, for accumulated monthly tiers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

/// A length of time written as a number and a unit: `30d`, `24h`, `15m`, `90s`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a span such as 30d, 24h, 15m or 90s")]
pub struct SpanError(pub String);

impl Span {
    pub const fn seconds(seconds: i64) -> Self {
        Self(seconds * 1000)
    }

    pub const fn hours(hours: i64) -> Self {
        Self::seconds(hours * 3600)
    }

    pub const fn days(days: i64) -> Self {
        Self::seconds(days * 86_400)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(text: &str) -> Result<Self, SpanError> {
        let error = || SpanError(text.to_string());
        let split = text.len().checked_sub(1).ok_or_else(error)?;
        let (number, unit) = text.split_at(split);
        let number: i64 = number.parse().map_err(|_| error())?;
        if number < 0 {
            return Err(error());
        }
        let unit_seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(error()),
        };
        number.checked_mul(unit_seconds * 1000).map(Span).ok_or_else(error)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0 / 1000;
        if self.0 % 1000 != 0 {
            return write!(f, "{}ms", self.0);
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if seconds != 0 && seconds % size == 0 {
                return write!(f, "{}{unit}", seconds / size);
            }
        }
        write!(f, "{seconds}s")
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Span({self})")
    }
}

impl TryFrom<String> for Span {
    type Error = SpanError;
    fn try_from(text: String) -> Result<Self, SpanError> {
        text.parse()
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        span.to_string()
    }
}

/// The interval between recurring subscription credits: calendar months or days
/// (a fortnight is `{"days": 14}`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Months(u32),
    Days(u32),
}

impl Interval {
    pub fn is_empty(self) -> bool {
        matches!(self, Interval::Months(0) | Interval::Days(0))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interval::Months(1) => f.write_str("1 month"),
            Interval::Months(months) => write!(f, "{months} months"),
            Interval::Days(1) => f.write_str("1 day"),
            Interval::Days(days) => write!(f, "{days} days"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let instant = Timestamp::parse("2026-11-21T05:14:00.123Z").unwrap();
        assert_eq!(instant.to_string(), "2026-11-21T05:14:00.123Z");
        assert_eq!(Timestamp::parse("2026-11-21T06:14:00.123+01:00").unwrap(), instant);
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn spans_parse_and_print_in_their_largest_unit() {
        assert_eq!("30d".parse::<Span>().unwrap(), Span::days(30));
        assert_eq!("24h".parse::<Span>().unwrap().to_string(), "1d");
        assert_eq!("90s".parse::<Span>().unwrap().to_string(), "90s");
        assert_eq!("120m".parse::<Span>().unwrap().to_string(), "2h");
        assert!("-1d".parse::<Span>().is_err());
        assert!("d".parse::<Span>().is_err());
        assert!("".parse::<Span>().is_err());
        assert!("5w".parse::<Span>().is_err());
    }

    #[test]
    fn monthly_intervals_follow_the_calendar() {
        let start = Timestamp::parse("2026-01-31T10:00:00Z").unwrap();
        assert_eq!(start.add_interval(Interval::Months(1), 1).to_string(), "2026-02-28T10:00:00.000Z");
        assert_eq!(start.add_interval(Interval::Months(1), 2).to_string(), "2026-03-31T10:00:00.000Z");
        assert_eq!(start.add_interval(Interval::Days(14), 2).to_string(), "2026-02-28T10:00:00.000Z");
    }

    #[test]
    fn months_are_taken_in_the_program_time_zone() {
        let instant = Timestamp::parse("2026-03-31T23:30:00Z").unwrap();
        assert_eq!(instant.month_in(chrono_tz::UTC), YearMonth { year: 2026, month: 3 });
        assert_eq!(instant.month_in(chrono_tz::Europe::Berlin), YearMonth { year: 2026, month: 4 });
    }
}
