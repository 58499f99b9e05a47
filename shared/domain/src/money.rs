//! Money as exact integers.
//!
//! Every amount is a whole number of pico-dollars (10⁻¹² USD) held in an `i128`.
//! Published AWS unit prices have at most ten decimal places, so a unit price is an
//! exact integer in this unit, and `quantity × unit price` is exact: pricing never
//! rounds until a figure is shown to a person. Decimal text (`"12.50"`, `"$1,200"`)
//! is the only way in from outside, through [`Money::parse`] or
//! [`Money::from_decimal`].
//!
//! ```
//! use dowguard_domain::Money;
//!
//! let request = Money::parse("0.0000002")?; // one Lambda request
//! assert_eq!(request.picos(), 200_000);
//! // A million requests cost exactly $0.20: nothing is lost to rounding.
//! assert_eq!(request.mul_div(1_000_000, 1), Some(Money::parse("0.20")?));
//! assert_eq!(Money::parse("$1200.5")?.to_string(), "$1,200.50");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Pico-dollars per dollar.
pub const PICOS_PER_DOLLAR: i128 = 1_000_000_000_000;

/// Decimal places a money amount may carry (pico-dollars).
pub const MONEY_SCALE: u32 = 12;

/// An exact amount of US dollars, stored as pico-dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i128);

/// Why a decimal could not become [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a number.
    #[error("`{0}` is not an amount of money (write it like 12.50 or $1,200)")]
    NotANumber(String),
    /// More decimal places than the allowed precision.
    #[error("`{value}` has more than {places} decimal places")]
    TooPrecise {
        /// The offending value.
        value: String,
        /// The maximum number of places.
        places: u32,
    },
    /// Too large to represent.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Thousands separators (`,` or `_`) may only stand between groups of three digits
/// of the whole part: `1,200.50` is an amount, `1,2` (a decimal comma?) is refused
/// rather than read as 12.
fn separators_group_thousands(body: &str) -> bool {
    let whole = body.split('.').next().unwrap_or_default();
    let fraction = &body[whole.len()..];
    if fraction.contains([',', '_']) {
        return false;
    }
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let mut groups = digits.split([',', '_']);
    let first = groups.next().unwrap_or_default();
    if !digits.contains([',', '_']) {
        return true;
    }
    (1..=3).contains(&first.len()) && groups.all(|g| g.len() == 3)
}

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);

    /// Builds an amount from pico-dollars.
    pub const fn from_picos(picos: i128) -> Self {
        Money(picos)
    }

    /// Builds an amount from whole dollars.
    pub const fn from_dollars(dollars: i64) -> Self {
        Money(dollars as i128 * PICOS_PER_DOLLAR)
    }

    /// Builds an amount from whole cents.
    pub const fn from_cents(cents: i64) -> Self {
        Money(cents as i128 * (PICOS_PER_DOLLAR / 100))
    }

    /// The amount in pico-dollars.
    pub const fn picos(self) -> i128 {
        self.0
    }

    /// Converts an exact decimal amount of dollars, refusing anything finer than a
    /// pico-dollar rather than rounding it away.
    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        let normalized = value.normalize();
        if normalized.scale() > MONEY_SCALE {
            return Err(MoneyError::TooPrecise {
                value: value.to_string(),
                places: MONEY_SCALE,
            });
        }
        let mantissa = normalized.mantissa();
        let factor = 10_i128.pow(MONEY_SCALE - normalized.scale());
        mantissa
            .checked_mul(factor)
            .map(Money)
            .ok_or_else(|| MoneyError::TooLarge(value.to_string()))
    }

    /// Parses dollars written by a person: `12.5`, `$12.50`, `1,200`, `USD 3`.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix("USD")
            .or_else(|| trimmed.strip_suffix("USD"))
            .unwrap_or(trimmed)
            .trim();
        let body = body.strip_prefix('$').unwrap_or(body);
        if !separators_group_thousands(body) {
            return Err(MoneyError::NotANumber(text.to_string()));
        }
        let cleaned: String = body.chars().filter(|c| *c != ',' && *c != '_').collect();
        if cleaned.is_empty() {
            return Err(MoneyError::NotANumber(text.to_string()));
        }
        let value: Decimal = cleaned
            .parse()
            .map_err(|_| MoneyError::NotANumber(text.to_string()))?;
        Money::from_decimal(value)
    }

    /// The exact amount as a decimal number of dollars.
    pub fn to_decimal(self) -> Decimal {
        // Pico-dollars of any realistic amount fit the 96-bit decimal mantissa; beyond
        // that the value saturates rather than wrapping.
        let clamped = self.0.clamp(-(1_i128 << 95), (1_i128 << 95) - 1);
        Decimal::from_i128_with_scale(clamped, MONEY_SCALE).normalize()
    }

    /// Rounds to whole cents, half away from zero, as a decimal.
    pub fn to_cents_decimal(self) -> Decimal {
        self.to_decimal()
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    }

    /// `self × numerator / denominator`, rounded toward zero; `None` when the
    /// denominator is zero or the product overflows.
    pub fn mul_div(self, numerator: i128, denominator: i128) -> Option<Money> {
        if denominator == 0 {
            return None;
        }
        self.0
            .checked_mul(numerator)
            .map(|product| Money(product / denominator))
    }

    /// The larger of zero and `self`.
    pub fn non_negative(self) -> Money {
        Money(self.0.max(0))
    }

    /// True for amounts above zero.
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// A figure for people with the given decimal places, e.g. `$1,234.57`.
    pub fn display_dp(self, places: u32) -> String {
        let rounded = self
            .to_decimal()
            .round_dp_with_strategy(places, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let negative = rounded.is_sign_negative() && !rounded.is_zero();
        let abs = rounded.abs();
        let text = format!("{abs:.prec$}", prec = places as usize);
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w.to_string(), Some(f.to_string())),
            None => (text.clone(), None),
        };
        let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if negative { "-" } else { "" };
        match fraction {
            Some(f) => format!("{sign}${grouped}.{f}"),
            None => format!("{sign}${grouped}"),
        }
    }

    /// A lossy `f64` of the dollars, for plots and embedded metrics only (never for
    /// arithmetic that decides anything).
    pub fn to_f64_lossy(self) -> f64 {
        self.to_decimal().to_f64().unwrap_or(0.0)
    }
}

impl fmt::Display for Money {
    /// Whole cents with thousands separators; amounts under a cent show four places
    /// so that small figures never print as `$0.00` while being non-zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cent = PICOS_PER_DOLLAR / 100;
        if self.0 != 0 && self.0.abs() < cent {
            f.write_str(&self.display_dp(6))
        } else {
            f.write_str(&self.display_dp(2))
        }
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        self.0 = self.0.saturating_sub(rhs.0);
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_decimal().to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Money::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parses_the_ways_people_write_dollars() {
        let cases = [
            ("12.5", Money::from_cents(1250)),
            ("$12.50", Money::from_cents(1250)),
            ("1,200", Money::from_dollars(1200)),
            ("$1,234,567.89", Money::from_cents(123_456_789)),
            ("10_000", Money::from_dollars(10_000)),
            (" USD 3 ", Money::from_dollars(3)),
            ("0.0000002", Money::from_picos(200_000)),
        ];
        for (text, expected) in cases {
            assert_eq!(Money::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_text_that_is_not_money() {
        for text in [
            "", "$", "twelve", "1.2.3", "NaN", "1,2", "12,50", "1,0000", ",100", "1.2,5", "1__000",
        ] {
            assert!(
                matches!(Money::parse(text), Err(MoneyError::NotANumber(_))),
                "{text}"
            );
        }
        assert!(matches!(
            Money::parse("0.0000000000001"),
            Err(MoneyError::TooPrecise { .. })
        ));
    }

    #[test]
    fn displays_cents_with_separators_and_small_amounts_with_more_places() {
        assert_eq!(Money::from_cents(123_456_789).to_string(), "$1,234,567.89");
        assert_eq!(Money::from_dollars(-5).to_string(), "-$5.00");
        assert_eq!(Money::from_picos(200_000).to_string(), "$0.000000");
        assert_eq!(Money::from_picos(4_000_000_000).to_string(), "$0.004000");
        assert_eq!(Money::ZERO.to_string(), "$0.00");
    }

    #[test]
    fn decimal_round_trip_is_exact() {
        let value = dec!(0.0000166667);
        let money = Money::from_decimal(value).expect("fits");
        assert_eq!(money.picos(), 16_666_700);
        assert_eq!(money.to_decimal(), value);
    }
}
