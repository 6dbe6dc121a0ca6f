//! Event time. Rules never read a clock: they take timestamps from events (`received_at`,
//! `occurred_at`) and `now` as arguments, so replaying a log reproduces its results.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Months, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant with millisecond precision. On the wire: RFC 3339 (`2026-11-21T05:14:00.123Z`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
        if let Some(instant) = Self::parse_canonical(text.as_bytes()) {
            return Ok(instant);
        }
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
    /// The start of the hour or day of `zone` this instant falls in. Where a zone's clock
    /// skips that start (a daylight-saving gap at midnight), the first instant of the hour or
    /// day that exists.
    pub fn start_of(self, period: Period, zone: chrono_tz::Tz) -> Timestamp {
        use chrono::Timelike;
        let local = self.to_datetime().with_timezone(&zone).naive_local();
        let hour = match period {
            Period::Hour => local.hour(),
            Period::Day => 0,
        };
        let start = local.date().and_hms_opt(hour, 0, 0).unwrap_or(local);
        let mut candidate = start;
        // Gaps are at most two hours (Lord Howe's is 30 minutes, most are one hour).
        for _ in 0..8 {
            if let Some(at) = zone.from_local_datetime(&candidate).earliest() {
                return Timestamp::from_millis(at.timestamp_millis());
            }
            candidate += chrono::Duration::minutes(15);
        }
        self
    }

    pub fn month_in(self, zone: chrono_tz::Tz) -> YearMonth {
        let local = self.to_datetime().with_timezone(&zone);
        YearMonth { year: local.year(), month: local.month() }
    }
}

/// Milliseconds from the Unix epoch to 0000-01-01 and to 10000-01-01: the instants written in
/// the canonical form without help.
const CANONICAL_FROM: i64 = -62_167_219_200_000;
const CANONICAL_UNTIL: i64 = 253_402_300_800_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// Days from 1970-01-01 to a civil date, and back (proleptic Gregorian; H. Hinnant's
/// `days_from_civil` / `civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Timestamp {
    /// The canonical form, `YYYY-MM-DDTHH:MM:SS.mmmZ`, for years 0 to 9999; written without
    /// allocating, since every event, line and saved state carries timestamps.
    fn canonical(self) -> Option<[u8; 24]> {
        if !(CANONICAL_FROM..CANONICAL_UNTIL).contains(&self.0) {
            return None;
        }
        let (year, month, day) = civil_from_days(self.0.div_euclid(MILLIS_PER_DAY));
        let of_day = self.0.rem_euclid(MILLIS_PER_DAY);
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: i64| {
            for index in (at..at + width).rev() {
                text[index] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, of_day / 3_600_000);
        put(14, 2, of_day / 60_000 % 60);
        put(17, 2, of_day / 1000 % 60);
        put(20, 3, of_day % 1000);
        Some(text)
    }

    /// The canonical form read back; anything else (offsets, other precisions, leap seconds)
    /// is left to the full RFC 3339 parser.
    fn parse_canonical(text: &[u8]) -> Option<Self> {
        let shape = text.len() == 24
            && text.iter().enumerate().all(|(index, byte)| match index {
                4 | 7 => *byte == b'-',
                10 => *byte == b'T',
                13 | 16 => *byte == b':',
                19 => *byte == b'.',
                23 => *byte == b'Z',
                _ => byte.is_ascii_digit(),
            });
        if !shape {
            return None;
        }
        let number =
            |from: usize, to: usize| text[from..to].iter().fold(0i64, |acc, byte| acc * 10 + i64::from(byte - b'0'));
        let (year, month, day) = (number(0, 4), number(5, 7), number(8, 10));
        let (hour, minute, second, millis) = (number(11, 13), number(14, 16), number(17, 19), number(20, 23));
        let valid = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then(|| {
            let of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
            Self(days_from_civil(year, month, day) * MILLIS_PER_DAY + of_day)
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.canonical() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => f.write_str(&self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true)),
        }
    }
}

/// RFC 3339 text in human-readable formats (JSON: the wire format, the API); Unix
/// milliseconds in binary ones (MessagePack: saved stage state), where formatting and parsing
/// the text was a measurable part of saving a ledger. Either form is read back in a binary
/// format, so state saved as text by an earlier version still restores.
///
/// Inside an internally tagged enum (`#[serde(tag = ...)]`) this does not hold: serde buffers
/// such a value before reading it and then says the format is human-readable whatever it is, so
/// milliseconds written to MessagePack would be read as text, and fail. A timestamp there is
/// declared `#[serde(with = "crate::time::text_form")]`: always text, either form read.
impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_i64(self.millis());
        }
        self.serialize_text(serializer)
    }
}

impl Timestamp {
    fn serialize_text<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.canonical() {
            Some(text) => serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

struct Text;

impl serde::de::Visitor<'_> for Text {
    type Value = Timestamp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp")
    }
    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse(text).map_err(E::custom)
    }
}

struct TextOrMillis;

impl serde::de::Visitor<'_> for TextOrMillis {
    type Value = Timestamp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unix milliseconds or an RFC 3339 timestamp")
    }
    fn visit_i64<E: serde::de::Error>(self, millis: i64) -> Result<Timestamp, E> {
        Ok(Timestamp::from_millis(millis))
    }
    fn visit_u64<E: serde::de::Error>(self, millis: u64) -> Result<Timestamp, E> {
        i64::try_from(millis).map(Timestamp::from_millis).map_err(E::custom)
    }
    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse(text).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Text)
        } else {
            deserializer.deserialize_any(TextOrMillis)
        }
    }
}

/// A timestamp inside an internally tagged enum: RFC 3339 text in every format, read as text
/// or as Unix milliseconds (see [`Timestamp`]'s `Serialize`).
pub mod text_form {
    use super::{TextOrMillis, Timestamp};

    pub fn serialize<S: serde::Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
        at.serialize_text(serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        deserializer.deserialize_any(TextOrMillis)
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

/// The buckets of a time series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
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

    /// A wall-clock duration as a span (saturating at the largest span).
    pub fn millis_of(duration: std::time::Duration) -> Self {
        Self(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    proptest::proptest! {
        /// The canonical form is exactly what chrono writes and reads, at every instant.
        #[test]
        fn the_canonical_form_is_chronos(millis in CANONICAL_FROM - 86_400_000..CANONICAL_UNTIL + 86_400_000) {
            let instant = Timestamp(millis);
            let chrono_text = instant.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true);
            proptest::prop_assert_eq!(instant.to_string(), chrono_text.clone());
            let chrono_parsed = DateTime::parse_from_rfc3339(&chrono_text).map(|at| at.timestamp_millis()).ok();
            proptest::prop_assert_eq!(Timestamp::parse(&chrono_text).ok().map(Timestamp::millis), chrono_parsed);
        }
    }

    #[test]
    fn only_real_dates_take_the_canonical_path() {
        for text in ["2026-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-11-21T24:00:00.000Z"] {
            assert!(Timestamp::parse(text).is_err(), "{text}");
        }
        assert_eq!(Timestamp::parse("2024-02-29T23:59:59.999Z").unwrap().to_string(), "2024-02-29T23:59:59.999Z");
        assert_eq!(
            Timestamp::parse("2026-11-21T05:14:59.000Z").unwrap(),
            Timestamp::parse("2026-11-21T05:14:59Z").unwrap()
        );
        let json = serde_json::to_string(&Timestamp::parse("1999-12-31T23:59:59.250Z").unwrap()).unwrap();
        assert_eq!(json, "\"1999-12-31T23:59:59.250Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap().to_string(), "1999-12-31T23:59:59.250Z");
    }

    #[test]
    fn saved_state_holds_timestamps_as_milliseconds_and_reads_the_text_form_too() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Saved {
            at: Timestamp,
        }
        let at = Timestamp::parse("1999-12-31T23:59:59.250Z").unwrap();
        let saved = rmp_serde::to_vec_named(&Saved { at }).unwrap();
        // A one-entry map: the key "at", then 946684799250 as a 64-bit integer.
        let mut expected = vec![0x81, 0xa2, b'a', b't', 0xcf];
        expected.extend_from_slice(&946_684_799_250u64.to_be_bytes());
        assert_eq!(saved, expected);
        assert_eq!(rmp_serde::from_slice::<Saved>(&saved).unwrap(), Saved { at });
        // State saved by a version that wrote the text.
        let mut text = vec![0x81, 0xa2, b'a', b't', 0xb8];
        text.extend_from_slice(b"1999-12-31T23:59:59.250Z");
        assert_eq!(rmp_serde::from_slice::<Saved>(&text).unwrap(), Saved { at });
        // Before 1970 too.
        let early = Timestamp::parse("1969-07-20T20:17:40.000Z").unwrap();
        let saved = rmp_serde::to_vec_named(&Saved { at: early }).unwrap();
        assert_eq!(rmp_serde::from_slice::<Saved>(&saved).unwrap(), Saved { at: early });
        // JSON keeps the text, and does not take milliseconds.
        assert!(serde_json::from_str::<Timestamp>("946684799250").is_err());
    }

    /// serde reads an internally tagged enum through a buffer that calls every format
    /// human-readable: milliseconds written there could not be read back. `text_form` writes
    /// the text there, and reads either form.
    #[test]
    fn timestamps_in_internally_tagged_enums_read_back_from_saved_state() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        enum Tagged {
            Plain {
                at: Timestamp,
            },
            Declared {
                #[serde(with = "super::text_form")]
                at: Timestamp,
            },
        }
        let at = Timestamp::parse("1999-12-31T23:59:59.250Z").unwrap();
        let plain = rmp_serde::to_vec_named(&Tagged::Plain { at }).unwrap();
        assert!(rmp_serde::from_slice::<Tagged>(&plain).is_err(), "the trap text_form avoids is gone");
        for encode in [rmp_serde::to_vec_named::<Tagged>, rmp_serde::to_vec::<Tagged>] {
            let saved = encode(&Tagged::Declared { at }).unwrap();
            assert_eq!(rmp_serde::from_slice::<Tagged>(&saved).unwrap(), Tagged::Declared { at });
        }
        let json = serde_json::to_string(&Tagged::Declared { at }).unwrap();
        assert_eq!(json, r#"{"kind":"Declared","at":"1999-12-31T23:59:59.250Z"}"#);
        assert_eq!(serde_json::from_str::<Tagged>(&json).unwrap(), Tagged::Declared { at });
        // State saved with milliseconds there (by the version before text_form) still reads.
        let mut millis = vec![0x82, 0xa4, b'k', b'i', b'n', b'd', 0xa8];
        millis.extend_from_slice(b"Declared");
        millis.extend_from_slice(&[0xa2, b'a', b't', 0xcf]);
        millis.extend_from_slice(&946_684_799_250u64.to_be_bytes());
        assert_eq!(rmp_serde::from_slice::<Tagged>(&millis).unwrap(), Tagged::Declared { at });
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod period_tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn hours_and_days_start_in_the_zone_including_half_hour_zones_and_daylight_saving() {
        let kolkata: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        // 20:00 UTC is 01:30 the next day in Kolkata (+05:30).
        assert_eq!(at("2026-03-10T20:00:00Z").start_of(Period::Hour, kolkata), at("2026-03-10T19:30:00Z"));
        assert_eq!(at("2026-03-10T20:00:00Z").start_of(Period::Day, kolkata), at("2026-03-10T18:30:00Z"));
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST; 01:30 UTC is 03:30 CEST.
        assert_eq!(at("2026-03-29T01:30:00Z").start_of(Period::Hour, berlin), at("2026-03-29T01:00:00Z"));
        assert_eq!(at("2026-03-29T01:30:00Z").start_of(Period::Day, berlin), at("2026-03-28T23:00:00Z"));
        assert_eq!(at("2026-03-30T12:00:00Z").start_of(Period::Day, berlin), at("2026-03-29T22:00:00Z"));
        // Havana skips midnight to 01:00 when daylight saving starts (8 March 2026).
        let havana: chrono_tz::Tz = "America/Havana".parse().unwrap();
        assert_eq!(at("2026-03-08T12:00:00Z").start_of(Period::Day, havana), at("2026-03-08T05:00:00Z"));
        assert_eq!(at("2026-03-10T12:00:00Z").start_of(Period::Day, chrono_tz::UTC), at("2026-03-10T00:00:00Z"));
    }
}
