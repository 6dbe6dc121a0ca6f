//! Money: ISO 4217 currencies, strict parsing of decimal amounts from the public contract, and
//! the one rounding rule of the commission engine (half-even to two decimals).

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// The largest amount the tracking contract accepts for an order, refund or recurring charge.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// Amounts carry at most this many decimal places (`12.3456`).
pub const MAX_AMOUNT_SCALE: u32 = 4;

/// Round a commission amount: half-even to two decimals (docs/RULES.md, "Rounding"). The result
/// always carries exactly two decimals, so `50` prints as `50.00` in lines and reports.
/// Nothing, as a commission amount (scale 2, so it reads `0.00` like every stored amount).
pub const NO_COMMISSION: Decimal = Decimal::from_parts(0, 0, 0, false, 2);

pub fn round_commission(amount: Decimal) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    rounded
}

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty")]
    Empty,
    #[error("the amount must be a plain decimal such as 12.50 (digits, one '.', at most {MAX_AMOUNT_SCALE} decimals)")]
    Malformed,
    #[error("the amount must be between 0 and {MAX_AMOUNT}")]
    OutOfRange,
}

impl AmountError {
    pub fn reason(&self) -> &'static str {
        match self {
            AmountError::Empty => "missing_amount",
            AmountError::Malformed => "bad_amount",
            AmountError::OutOfRange => "amount_out_of_range",
        }
    }
}

/// Parse an amount as the tracking contract defines it: `^[0-9]{1,10}(\.[0-9]{1,4})?$` and at
/// most [`MAX_AMOUNT`]. Signs, exponents, `NaN`, `inf`, commas and spaces are refused, so
/// `-1`, `1e309` and `1,50` can never become money.
pub fn parse_amount(text: &str) -> Result<Decimal, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits_only(whole) || whole.len() > 10 {
        return Err(if digits_only(whole) { AmountError::OutOfRange } else { AmountError::Malformed });
    }
    if let Some(fraction) = fraction {
        if !digits_only(fraction) || fraction.len() > MAX_AMOUNT_SCALE as usize {
            return Err(AmountError::Malformed);
        }
    }
    let amount = Decimal::from_str(text).map_err(|_| AmountError::Malformed)?;
    if amount > MAX_AMOUNT {
        return Err(AmountError::OutOfRange);
    }
    Ok(amount)
}

/// An ISO 4217 currency code (`USD`). Only active codes are accepted.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency([u8; 3]);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Active ISO 4217 codes (list of 2024), excluding funds and precious metals.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
    "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
    "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
    "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
    "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an ISO 4217 currency code")]
pub struct CurrencyError(pub String);

impl CurrencyError {
    pub fn reason(&self) -> &'static str {
        "bad_currency"
    }
}

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    /// Accepts the upper-case code only: `usd` is refused rather than guessed.
    pub fn new(code: &str) -> Result<Self, CurrencyError> {
        match ISO_4217.binary_search(&code) {
            Ok(index) => {
                let bytes = ISO_4217[index].as_bytes();
                Ok(Currency([bytes[0], bytes[1], bytes[2]]))
            }
            Err(_) => Err(CurrencyError(code.to_string())),
        }
    }

    pub fn as_str(&self) -> &str {
        // Built only from entries of ISO_4217, which are ASCII.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(code: String) -> Result<Self, CurrencyError> {
        Currency::new(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.as_str().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn currency_list_is_sorted_for_binary_search() {
        assert!(ISO_4217.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn currencies_are_upper_case_iso_codes() {
        assert_eq!(Currency::new("USD"), Ok(Currency::USD));
        assert!(Currency::new("usd").is_err());
        assert!(Currency::new("XYZ").is_err());
        assert!(Currency::new("US").is_err());
    }

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_amount("12.50"), Ok(dec!(12.50)));
        assert_eq!(parse_amount("0"), Ok(dec!(0)));
        assert_eq!(parse_amount("29.95"), Ok(dec!(29.95)));
        assert_eq!(parse_amount("1000000000"), Ok(dec!(1000000000)));
        assert_eq!(parse_amount("0.0001"), Ok(dec!(0.0001)));
    }

    #[test]
    fn hostile_amounts_are_refused_with_a_reason() {
        let cases = [
            ("", "missing_amount"),
            ("-1", "bad_amount"),
            ("NaN", "bad_amount"),
            ("inf", "bad_amount"),
            ("1e309", "bad_amount"),
            ("1,50", "bad_amount"),
            (" 1", "bad_amount"),
            ("1.", "bad_amount"),
            (".5", "bad_amount"),
            ("1.23456", "bad_amount"),
            ("+1", "bad_amount"),
            ("1000000000.01", "amount_out_of_range"),
            ("99999999999", "amount_out_of_range"),
        ];
        for (text, reason) in cases {
            assert_eq!(parse_amount(text).map_err(|error| error.reason()), Err(reason), "{text:?}");
        }
    }

    #[test]
    fn commission_rounding_is_half_even_to_cents() {
        assert_eq!(round_commission(dec!(2.995)), dec!(3.00));
        assert_eq!(round_commission(dec!(2.985)), dec!(2.98));
        assert_eq!(round_commission(dec!(2.0010)), dec!(2.00));
        assert_eq!(round_commission(dec!(0.999)), dec!(1.00));
        assert_eq!(round_commission(dec!(1.0005)), dec!(1.00));
        assert_eq!(round_commission(dec!(50)).to_string(), "50.00");
        assert_eq!(round_commission(dec!(0.1) * dec!(500)).to_string(), "50.00");
    }
}
