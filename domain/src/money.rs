//! Money value types: `Currency`, `Amount` (a positive quantity), `Balance` (signed) and `OverdraftLimit`.
//!
//! All of them wrap `rust_decimal::Decimal`; there is no floating point anywhere in the ledger. Each type
//! keeps its field private so the invariant its constructor checks can never be broken afterwards.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// The largest amount a single command may move: one quadrillion units. Bounding it keeps every balance
/// sum far inside `Decimal`'s range and rejects typos of absurd size at the edge.
pub const AMOUNT_MAX_UNITS: i64 = 1_000_000_000_000_000;

/// The longest decimal string the domain parses; edges bound their inputs with it too; anything longer cannot be a valid amount under [`AMOUNT_MAX_UNITS`].
pub const DECIMAL_TEXT_MAX_LEN: usize = 40;

/// The currencies the ledger books, with their ISO 4217 minor units (decimal places).
///
/// A closed list on purpose: an unknown code is far more likely a typo than a currency we should invent
/// a precision for.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

/// An ISO 4217 currency the ledger supports.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u32,
}

impl Currency {
    /// Parses an upper-case ISO 4217 code such as `"USD"`.
    pub fn parse(code: &str) -> Result<Self, ParseError> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|(known, minor_units)| {
                let bytes = known.as_bytes();
                Self {
                    code: [bytes[0], bytes[1], bytes[2]],
                    minor_units: *minor_units,
                }
            })
            .ok_or_else(|| ParseError::UnsupportedCurrency {
                code: code.chars().take(8).collect(),
            })
    }

    pub fn code(&self) -> &str {
        // The code bytes come from the ASCII table above, so this cannot fail.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3).
    pub fn minor_units(&self) -> u32 {
        self.minor_units
    }

    /// Whether `value` can be written in this currency's minor units without rounding.
    fn represents(self, value: Decimal) -> bool {
        value.normalize().scale() <= self.minor_units
    }

    /// `value` written with exactly this currency's decimal places (`12.5` USD -> `12.50`).
    /// Callers check [`Currency::represents`] first, so no digit is ever lost here.
    fn rescaled(self, value: Decimal) -> Decimal {
        let mut value = value;
        value.rescale(self.minor_units);
        value
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.code().to_owned()
    }
}

/// Parses a plain decimal string: digits, optionally a dot and more digits, an optional leading minus.
/// No exponent, no `+`, no spaces, no thousands separators: an amount must mean exactly what it says.
fn parse_plain_decimal(text: &str) -> Result<Decimal, ParseError> {
    let invalid = || ParseError::InvalidDecimal {
        text: text.chars().take(DECIMAL_TEXT_MAX_LEN).collect(),
    };
    if text.is_empty() || text.len() > DECIMAL_TEXT_MAX_LEN {
        return Err(invalid());
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err(invalid());
    }
    Decimal::from_str_exact(text).map_err(|_| invalid())
}

/// A strictly positive quantity of money, as carried by a deposit, withdrawal or transfer.
///
/// The amount alone has no currency: it is booked in the currency of the account it moves, and the
/// aggregate checks that it has no more decimal places than that currency allows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount(Decimal);

impl Amount {
    pub fn new(value: Decimal) -> Result<Self, ParseError> {
        if value <= Decimal::ZERO {
            return Err(ParseError::NonPositiveAmount {
                value: value.to_string(),
            });
        }
        if value > Decimal::from(AMOUNT_MAX_UNITS) {
            return Err(ParseError::AmountTooLarge {
                value: value.to_string(),
            });
        }
        Ok(Self(value))
    }

    /// Parses a decimal string such as `"12.50"`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Self::new(parse_plain_decimal(text)?)
    }

    pub fn value(&self) -> Decimal {
        self.0
    }

    /// The same amount without trailing zeros (`12.50` -> `12.5`): the canonical form in which two
    /// spellings of one amount compare equal as text, as a request fingerprint needs.
    pub fn normalized(self) -> Self {
        Self(self.0.normalize())
    }

    /// This amount written in `currency`'s minor units, or `None` if that would need rounding.
    pub fn in_currency(self, currency: Currency) -> Option<Self> {
        currency
            .represents(self.0)
            .then(|| Self(currency.rescaled(self.0)))
    }
}

/// The signed balance of an account. Negative only within the account's overdraft limit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Balance(Decimal);

impl Balance {
    /// A zero balance written with `currency`'s decimal places (`0.00` for USD).
    pub fn zero(currency: Currency) -> Self {
        Self(currency.rescaled(Decimal::ZERO))
    }

    /// Parses a signed decimal string such as `"-12.50"`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parse_plain_decimal(text).map(Self)
    }

    pub fn value(&self) -> Decimal {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// `None` on overflow, which the bounded amounts make unreachable in practice but never silent.
    pub fn plus(self, amount: Amount) -> Option<Self> {
        self.0.checked_add(amount.0).map(Self)
    }

    pub fn minus(self, amount: Amount) -> Option<Self> {
        self.0.checked_sub(amount.0).map(Self)
    }

    /// Balance plus overdraft limit: what may still be taken out. Saturates instead of overflowing,
    /// since both operands are bounded far below `Decimal::MAX` by the amount limit.
    pub fn plus_overdraft(self, limit: OverdraftLimit) -> Self {
        Self(self.0.saturating_add(limit.0))
    }

    /// Whether this balance respects `limit`: it is at least minus the limit.
    pub fn within(self, limit: OverdraftLimit) -> bool {
        self.0 >= -limit.0
    }
}

/// How far below zero an account's balance may go. Zero (no overdraft) unless set at opening.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OverdraftLimit(Decimal);

impl OverdraftLimit {
    pub const NONE: Self = Self(Decimal::ZERO);

    pub fn new(value: Decimal) -> Result<Self, ParseError> {
        if value < Decimal::ZERO {
            return Err(ParseError::NegativeOverdraftLimit {
                value: value.to_string(),
            });
        }
        if value > Decimal::from(AMOUNT_MAX_UNITS) {
            return Err(ParseError::AmountTooLarge {
                value: value.to_string(),
            });
        }
        Ok(Self(value))
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Self::new(parse_plain_decimal(text)?)
    }

    pub fn value(&self) -> Decimal {
        self.0
    }

    /// The same limit without trailing zeros: its canonical form (see [`Amount::normalized`]).
    pub fn normalized(self) -> Self {
        Self(self.0.normalize())
    }

    /// This limit written in `currency`'s minor units, or `None` if that would need rounding.
    pub fn in_currency(self, currency: Currency) -> Option<Self> {
        currency
            .represents(self.0)
            .then(|| Self(currency.rescaled(self.0)))
    }
}

/// The text conversions every decimal newtype shares: it shows as its plain decimal, parses with its
/// own checked `parse`, and travels through serde as that string.
macro_rules! decimal_text {
    ($($name:ident),+) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.to_string()
            }
        }
    )+};
}

decimal_text!(Amount, Balance, OverdraftLimit);

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(usd().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
    }

    #[test]
    fn unknown_or_lower_case_currency_is_rejected() {
        for code in ["usd", "XXX", "", "USDD", "U$D"] {
            assert!(
                matches!(
                    Currency::parse(code),
                    Err(ParseError::UnsupportedCurrency { .. })
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn amounts_parse_only_plain_positive_decimals() {
        assert_eq!(Amount::parse("12.50").unwrap().value().to_string(), "12.50");
        assert_eq!(Amount::parse("7").unwrap().value(), Decimal::from(7));
        for bad in [
            "", "1e3", "+1", " 1", "1 ", "1,000", "1.", ".5", "NaN", "0x10", "--1",
        ] {
            assert!(
                matches!(Amount::parse(bad), Err(ParseError::InvalidDecimal { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Amount::parse("0"),
            Err(ParseError::NonPositiveAmount { .. })
        ));
        assert!(matches!(
            Amount::parse("-5"),
            Err(ParseError::NonPositiveAmount { .. })
        ));
        assert!(matches!(
            Amount::parse("1000000000000000.01"),
            Err(ParseError::AmountTooLarge { .. })
        ));
    }

    #[test]
    fn amounts_are_rescaled_to_the_currency_or_refused() {
        let amount = Amount::parse("12.5").unwrap().in_currency(usd()).unwrap();
        assert_eq!(amount.to_string(), "12.50");
        assert_eq!(
            Amount::parse("12.500")
                .unwrap()
                .in_currency(usd())
                .unwrap()
                .to_string(),
            "12.50"
        );
        assert!(
            Amount::parse("12.345")
                .unwrap()
                .in_currency(usd())
                .is_none()
        );
        let yen = Currency::parse("JPY").unwrap();
        assert!(Amount::parse("1.5").unwrap().in_currency(yen).is_none());
        assert_eq!(
            Amount::parse("150")
                .unwrap()
                .in_currency(yen)
                .unwrap()
                .to_string(),
            "150"
        );
    }

    #[test]
    fn balances_are_signed_and_zero_has_currency_scale() {
        assert_eq!(Balance::zero(usd()).to_string(), "0.00");
        assert_eq!(
            Balance::parse("-3.20").unwrap().value().to_string(),
            "-3.20"
        );
        let ten = Amount::parse("10.00").unwrap();
        assert_eq!(
            Balance::zero(usd()).minus(ten).unwrap().to_string(),
            "-10.00"
        );
    }

    #[test]
    fn overdraft_limit_is_never_negative() {
        assert!(matches!(
            OverdraftLimit::parse("-1"),
            Err(ParseError::NegativeOverdraftLimit { .. })
        ));
        assert_eq!(OverdraftLimit::parse("0").unwrap(), OverdraftLimit::NONE);
    }

    #[test]
    fn money_travels_as_json_strings() {
        let amount = Amount::parse("12.50").unwrap();
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"12.50\"");
        assert_eq!(serde_json::from_str::<Amount>("\"12.50\"").unwrap(), amount);
        assert!(serde_json::from_str::<Amount>("12.5").is_err());
        assert!(serde_json::from_str::<Amount>("\"-1\"").is_err());
    }
}
