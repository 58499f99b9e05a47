//! The price book: unit prices by region, architecture and API type, with volume
//! tiers and the optional free tier, loaded from versioned TOML data.
//!
//! The bundled book is `data/pricebook.toml`; [`PriceBook::from_toml`] loads any other
//! copy with the same validation. A loaded book is resolved for one region into
//! [`Prices`], which is what the decision core uses.
//!
//! One target is priced in one place: [`Prices::at`] (or [`Prices::list`]) fixes the
//! unit price of every product for a pass, [`UnitPrices::of`] picks the ones a target
//! is billed at, and [`TargetPrice`] prices its usage, one request, or one busy
//! execution environment. The decision core, the alarms, the exposure audit and the
//! simulator all price targets through it.
//!
//! ```
//! use dowguard_domain::{Arch, Money, PriceBook, TargetSpec, Usage};
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let checkout = TargetSpec::Function { memory_mb: 512, arch: Arch::X86_64, async_invoked: false };
//! // 1,000 requests of 100 ms at 512 MB: $0.0002 of requests + 50 GB-s of duration.
//! let usage = Usage { requests: 1_000, throttled: 0, duration_ms: 100_000 };
//! let cost = prices.list().of(&checkout).cost(&usage);
//! assert_eq!(cost, Money::parse("0.0002")? + Money::parse("0.000833335")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::money::{MONEY_SCALE, Money};
use crate::target::{Arch, TargetSpec};
use crate::usage::{AccountUsage, Usage};

/// The price book that ships with dowguard.
pub const BUNDLED_PRICE_BOOK: &str = include_str!("../data/pricebook.toml");

/// Megabyte-milliseconds in one GB-second (Lambda bills 1 GB = 1,024 MB).
pub const MB_MS_PER_GB_SECOND: u128 = 1_024_000;

/// Why a price book could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceBookError {
    /// The TOML itself is malformed or has unknown or missing fields.
    #[error("price book is not valid TOML for dowguard: {0}")]
    Syntax(String),
    /// A field has a value the guard cannot use.
    #[error("price book field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The requested region is not in the book.
    #[error(
        "region `{region}` is not in price book {version}; known regions: {known}. Add it to the price book file"
    )]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// The book's version.
        version: String,
        /// Comma-separated list of regions in the book.
        known: String,
    },
}

/// A priced product: what a usage quantity is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// Lambda invocations (requests).
    LambdaRequests,
    /// Lambda duration on x86_64, counted in MB-milliseconds.
    LambdaDurationX86,
    /// Lambda duration on arm64, counted in MB-milliseconds.
    LambdaDurationArm,
    /// REST API requests.
    RestRequests,
    /// HTTP API requests.
    HttpRequests,
}

/// One volume tier in internal units.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tier {
    /// Cumulative monthly units at which the next tier starts; `None` for the last.
    up_to: Option<u128>,
    /// Pico-dollars per unit, multiplied by the schedule's denominator.
    numerator: i128,
}

/// A tiered price schedule in internal units (requests or MB-ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    tiers: Vec<Tier>,
    /// Divisor applied to `units × numerator` (1 for requests, 1,024,000 for MB-ms).
    denominator: i128,
    /// Units of the month that are free when the free tier is on.
    free_units: u128,
}

/// The unit price at one point of a schedule, for pricing small quantities fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPrice {
    numerator: i128,
    denominator: i128,
}

impl UnitPrice {
    /// The cost of `units` at this unit price.
    pub fn cost(self, units: u128) -> Money {
        // Most quantities a pass prices fit 64-bit arithmetic, which is much faster;
        // for non-negative figures it gives the same whole pico-dollars.
        if let (Ok(u), Ok(n), Ok(d)) = (
            u64::try_from(units),
            u64::try_from(self.numerator),
            u64::try_from(self.denominator),
        ) && d > 0
            && let Some(product) = u.checked_mul(n)
        {
            return Money::from_picos(i128::from(product / d));
        }
        let units = i128::try_from(units).unwrap_or(i128::MAX);
        Money::from_picos(div(units.saturating_mul(self.numerator), self.denominator))
    }

    /// The price of one unit, in pico-dollars, as an exact fraction.
    pub fn as_fraction(self) -> (i128, i128) {
        (self.numerator, self.denominator)
    }

    /// How many whole units `money` buys at this price (`u64::MAX` if free).
    pub fn units_for(self, money: Money) -> u64 {
        if self.numerator <= 0 {
            return u64::MAX;
        }
        let units = money.picos().max(0).saturating_mul(self.denominator) / self.numerator;
        u64::try_from(units).unwrap_or(u64::MAX)
    }
}

impl Schedule {
    /// Exact cost of `units` consumed after `offset` units already used this month,
    /// crossing tier boundaries (and the free tier, when on) exactly.
    pub fn cost(&self, offset: u128, units: u128) -> Money {
        let mut numerator_sum: i128 = 0;
        let mut start = offset;
        let end = offset.saturating_add(units);
        for tier in &self.tiers {
            let tier_end = tier.up_to.unwrap_or(u128::MAX);
            if start < tier_end && start < end {
                let seg_end = end.min(tier_end);
                // Free units are the first of the month, priced at zero.
                let free_overlap = overlap(start, seg_end, 0, self.free_units);
                let billable = seg_end - start - free_overlap;
                let billable = i128::try_from(billable).unwrap_or(i128::MAX);
                numerator_sum = numerator_sum.saturating_add(billable.saturating_mul(tier.numerator));
                start = seg_end;
            }
            if start >= end {
                break;
            }
        }
        Money::from_picos(div(numerator_sum, self.denominator))
    }

    /// The unit price of the next unit after `offset` (zero inside the free tier).
    pub fn marginal(&self, offset: u128) -> UnitPrice {
        if offset < self.free_units {
            return UnitPrice {
                numerator: 0,
                denominator: self.denominator,
            };
        }
        let numerator = self
            .tiers
            .iter()
            .find(|t| t.up_to.is_none_or(|up| offset < up))
            .or(self.tiers.last())
            .map_or(0, |t| t.numerator);
        UnitPrice {
            numerator,
            denominator: self.denominator,
        }
    }

    /// The first-tier unit price, ignoring the free tier: the most a unit can cost.
    pub fn list_price(&self) -> UnitPrice {
        UnitPrice {
            numerator: self.tiers.first().map_or(0, |t| t.numerator),
            denominator: self.denominator,
        }
    }
}

/// `n / d` rounded toward zero, using a 64-bit division when both fit (the common
/// case, and several times faster than a 128-bit one).
pub(crate) fn div(n: i128, d: i128) -> i128 {
    if d == 1 {
        return n;
    }
    match (u64::try_from(n), u64::try_from(d)) {
        (Ok(n), Ok(d)) if d > 0 => i128::from(n / d),
        _ => n / d,
    }
}

fn overlap(a_start: u128, a_end: u128, b_start: u128, b_end: u128) -> u128 {
    let start = a_start.max(b_start);
    let end = a_end.min(b_end);
    end.saturating_sub(start)
}

/// The unit prices of one region, ready for the decision core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prices {
    /// Region code, e.g. `us-east-1`.
    pub region: String,
    /// Price book version these prices came from.
    pub version: String,
    /// Date from which the prices apply.
    pub effective: NaiveDate,
    /// Whether the monthly free tier is counted.
    pub free_tier: bool,
    lambda_requests: Schedule,
    lambda_x86: Schedule,
    lambda_arm: Schedule,
    rest: Schedule,
    http: Schedule,
}

impl Prices {
    /// The schedule of one product.
    pub fn schedule(&self, product: Product) -> &Schedule {
        match product {
            Product::LambdaRequests => &self.lambda_requests,
            Product::LambdaDurationX86 => &self.lambda_x86,
            Product::LambdaDurationArm => &self.lambda_arm,
            Product::RestRequests => &self.rest,
            Product::HttpRequests => &self.http,
        }
    }

    /// Exact cost of `units` of `product` after `offset` units already used this month.
    pub fn cost(&self, product: Product, offset: u128, units: u128) -> Money {
        self.schedule(product).cost(offset, units)
    }

    /// The unit price of every product where the account's month-to-date `usage`
    /// puts it on the volume tiers (and inside or past the free tier): what the next
    /// unit of each costs. A pass prices every target at these.
    pub fn at(&self, usage: &AccountUsage) -> UnitPrices {
        let at = |product, offset: u128| self.schedule(product).marginal(offset);
        UnitPrices {
            lambda_requests: at(Product::LambdaRequests, u128::from(usage.lambda_requests)),
            x86: at(Product::LambdaDurationX86, usage.lambda_mb_ms_x86),
            arm: at(Product::LambdaDurationArm, usage.lambda_mb_ms_arm),
            rest: at(Product::RestRequests, u128::from(usage.rest_requests)),
            http: at(Product::HttpRequests, u128::from(usage.http_requests)),
        }
    }

    /// The list price of every product (first tier, no free tier): the most a unit
    /// can cost, for worst cases and alarm thresholds.
    pub fn list(&self) -> UnitPrices {
        let list = |product| self.schedule(product).list_price();
        UnitPrices {
            lambda_requests: list(Product::LambdaRequests),
            x86: list(Product::LambdaDurationX86),
            arm: list(Product::LambdaDurationArm),
            rest: list(Product::RestRequests),
            http: list(Product::HttpRequests),
        }
    }
}

/// The unit price of every product at one point of the month ([`Prices::at`],
/// [`Prices::list`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPrices {
    lambda_requests: UnitPrice,
    x86: UnitPrice,
    arm: UnitPrice,
    rest: UnitPrice,
    http: UnitPrice,
}

impl UnitPrices {
    /// What a target of shape `spec` is billed at: the one place that knows which
    /// products a function, a REST or HTTP API stage and a usage plan pay for.
    #[inline]
    pub fn of(&self, spec: &TargetSpec) -> TargetPrice {
        match spec {
            TargetSpec::Function { memory_mb, arch, .. } => TargetPrice {
                request: self.lambda_requests,
                duration: match arch {
                    Arch::X86_64 => self.x86,
                    Arch::Arm64 => self.arm,
                },
                memory_mb: *memory_mb,
            },
            TargetSpec::RestStage | TargetSpec::UsagePlan => TargetPrice::requests_only(self.rest),
            TargetSpec::HttpStage => TargetPrice::requests_only(self.http),
        }
    }
}

/// What one target is billed at: a price per request and, for a Lambda function, a
/// price per MB-millisecond of its memory ([`UnitPrices::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPrice {
    request: UnitPrice,
    duration: UnitPrice,
    memory_mb: u32,
}

impl TargetPrice {
    fn requests_only(request: UnitPrice) -> Self {
        TargetPrice {
            request,
            duration: UnitPrice {
                numerator: 0,
                denominator: 1,
            },
            memory_mb: 0,
        }
    }

    /// The price of one request, without its duration.
    pub fn request(&self) -> UnitPrice {
        self.request
    }

    /// The exact cost of `usage`: its requests, plus its duration at the function's
    /// memory (API stages and usage plans pay for requests only).
    #[inline]
    pub fn cost(&self, usage: &Usage) -> Money {
        let requests = self.request.cost(u128::from(usage.requests));
        if self.memory_mb == 0 {
            return requests;
        }
        let mb_ms = u128::from(self.memory_mb) * u128::from(usage.duration_ms);
        requests + self.duration.cost(mb_ms)
    }

    /// The exact price of one request that runs `avg_ms` (its duration counts for a
    /// function only).
    pub fn per_request(&self, avg_ms: u64) -> UnitPrice {
        if self.memory_mb == 0 {
            return self.request;
        }
        let (rn, rd) = self.request.as_fraction();
        let (dn, dd) = self.duration.as_fraction();
        let mb_ms = i128::from(self.memory_mb).saturating_mul(i128::from(avg_ms));
        UnitPrice {
            numerator: rn
                .saturating_mul(dd)
                .saturating_add(mb_ms.saturating_mul(dn).saturating_mul(rd)),
            denominator: rd.saturating_mul(dd),
        }
    }

    /// The exact price of one execution environment kept busy for a second by
    /// requests of `avg_ms` each: a second of duration at the function's memory plus
    /// `1,000 / avg_ms` requests. What one unit of reserved concurrency can spend a
    /// second.
    pub fn per_busy_second(&self, avg_ms: u64) -> UnitPrice {
        let avg_ms = i128::from(avg_ms.max(1));
        let (rn, rd) = self.request.as_fraction();
        let (dn, dd) = self.duration.as_fraction();
        let memory = i128::from(self.memory_mb);
        UnitPrice {
            numerator: (memory * 1_000 * dn * rd)
                .saturating_mul(avg_ms)
                .saturating_add(rn * 1_000 * dd),
            denominator: dd.saturating_mul(rd).saturating_mul(avg_ms),
        }
    }
}

/// A validated, versioned price book holding one or more regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceBook {
    /// Version label of the book.
    pub version: String,
    /// Date from which the prices apply.
    pub effective: NaiveDate,
    /// Where the prices were taken from.
    pub sources: Vec<String>,
    free: FreeTierFile,
    regions: BTreeMap<String, RegionFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookFile {
    version: String,
    effective: String,
    #[serde(default)]
    sources: Vec<String>,
    free_tier: FreeTierFile,
    regions: BTreeMap<String, RegionFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeTierFile {
    lambda_requests: u64,
    lambda_gb_seconds: u64,
    rest_requests: u64,
    http_requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    lambda_requests_per_million: String,
    lambda_x86_64_gb_second: Vec<TierFile>,
    lambda_arm64_gb_second: Vec<TierFile>,
    rest_requests_per_million: Vec<TierFile>,
    http_requests_per_million: Vec<TierFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierFile {
    up_to: Option<u64>,
    price: String,
}

/// How a file's price is scaled into pico-dollars per internal unit.
#[derive(Clone, Copy)]
enum Unit {
    /// Price per million requests; internal unit is one request.
    PerMillionRequests,
    /// Price per GB-second; internal unit is one MB-ms.
    PerGbSecond,
}

impl PriceBook {
    /// Loads the price book bundled with dowguard.
    pub fn bundled() -> Result<Self, PriceBookError> {
        Self::from_toml(BUNDLED_PRICE_BOOK)
    }

    /// Parses and validates a price book.
    pub fn from_toml(text: &str) -> Result<Self, PriceBookError> {
        let file: BookFile =
            toml::from_str(text).map_err(|e| PriceBookError::Syntax(e.message().to_string()))?;
        let effective =
            NaiveDate::parse_from_str(&file.effective, "%Y-%m-%d").map_err(|_| PriceBookError::Invalid {
                field: "effective".into(),
                reason: format!("`{}` is not a date like 2026-11-01", file.effective),
            })?;
        if file.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        if file.regions.is_empty() {
            return Err(invalid("regions", "the book must price at least one region"));
        }
        let book = PriceBook {
            version: file.version,
            effective,
            sources: file.sources,
            free: file.free_tier,
            regions: file.regions,
        };
        // Resolve every region once so that a bad figure fails at load, not later.
        for region in book.regions.keys() {
            if !is_region_code(region) {
                return Err(invalid(
                    &format!("regions.{region}"),
                    "is not a region code like us-east-1",
                ));
            }
            book.prices(region, true)?;
        }
        Ok(book)
    }

    /// The regions priced by this book.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.regions.keys().map(String::as_str)
    }

    /// The prices of one region, with or without the free tier.
    pub fn prices(&self, region: &str, free_tier: bool) -> Result<Prices, PriceBookError> {
        let file = self
            .regions
            .get(region)
            .ok_or_else(|| PriceBookError::UnknownRegion {
                region: region.to_string(),
                version: self.version.clone(),
                known: self.regions.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let free = |units: u128| if free_tier { units } else { 0 };
        let f = &self.free;
        let path = |name: &str| format!("regions.{region}.{name}");
        let lambda_requests = schedule(
            &path("lambda_requests_per_million"),
            &[TierFile {
                up_to: None,
                price: file.lambda_requests_per_million.clone(),
            }],
            Unit::PerMillionRequests,
            free(u128::from(f.lambda_requests)),
        )?;
        let gbs_free = free(u128::from(f.lambda_gb_seconds) * MB_MS_PER_GB_SECOND);
        Ok(Prices {
            region: region.to_string(),
            version: self.version.clone(),
            effective: self.effective,
            free_tier,
            lambda_requests,
            lambda_x86: schedule(
                &path("lambda_x86_64_gb_second"),
                &file.lambda_x86_64_gb_second,
                Unit::PerGbSecond,
                gbs_free,
            )?,
            lambda_arm: schedule(
                &path("lambda_arm64_gb_second"),
                &file.lambda_arm64_gb_second,
                Unit::PerGbSecond,
                gbs_free,
            )?,
            rest: schedule(
                &path("rest_requests_per_million"),
                &file.rest_requests_per_million,
                Unit::PerMillionRequests,
                free(u128::from(f.rest_requests)),
            )?,
            http: schedule(
                &path("http_requests_per_million"),
                &file.http_requests_per_million,
                Unit::PerMillionRequests,
                free(u128::from(f.http_requests)),
            )?,
        })
    }
}

fn invalid(field: &str, reason: &str) -> PriceBookError {
    PriceBookError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

fn is_region_code(code: &str) -> bool {
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() >= 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn schedule(
    field: &str,
    tiers: &[TierFile],
    unit: Unit,
    free_units: u128,
) -> Result<Schedule, PriceBookError> {
    if tiers.is_empty() {
        return Err(invalid(field, "needs at least one tier"));
    }
    let mut out = Vec::with_capacity(tiers.len());
    let mut previous_bound: u128 = 0;
    let mut previous_price: Option<i128> = None;
    for (i, tier) in tiers.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let price: Decimal = tier
            .price
            .trim()
            .parse()
            .map_err(|_| invalid(&at, &format!("price `{}` is not a decimal number", tier.price)))?;
        if price.is_sign_negative() {
            return Err(invalid(&at, "price must not be negative"));
        }
        let picos = Money::from_decimal(price)
            .map_err(|_| {
                invalid(
                    &at,
                    &format!(
                        "price `{}` has more than {MONEY_SCALE} decimal places",
                        tier.price
                    ),
                )
            })?
            .picos();
        // Per-million prices become pico-dollars per request; they must stay exact.
        let numerator = match unit {
            Unit::PerMillionRequests => {
                if picos % 1_000_000 != 0 {
                    return Err(invalid(
                        &at,
                        "a price per million may have at most 6 decimal places",
                    ));
                }
                picos / 1_000_000
            }
            Unit::PerGbSecond => picos,
        };
        if let Some(prev) = previous_price
            && numerator > prev
        {
            return Err(invalid(
                &at,
                "a higher tier must not cost more than the tier before it",
            ));
        }
        previous_price = Some(numerator);
        let last = i + 1 == tiers.len();
        let up_to = match (tier.up_to, last) {
            (Some(_), true) => {
                return Err(invalid(
                    &at,
                    "the last tier has no `up_to`: it covers everything above",
                ));
            }
            (None, false) => {
                return Err(invalid(&at, "every tier but the last needs `up_to`"));
            }
            (None, true) => None,
            (Some(bound), false) => {
                let bound = u128::from(bound)
                    * match unit {
                        Unit::PerMillionRequests => 1,
                        Unit::PerGbSecond => MB_MS_PER_GB_SECOND,
                    };
                if bound <= previous_bound {
                    return Err(invalid(&at, "`up_to` must grow from one tier to the next"));
                }
                previous_bound = bound;
                Some(bound)
            }
        };
        out.push(Tier { up_to, numerator });
    }
    Ok(Schedule {
        tiers: out,
        denominator: match unit {
            Unit::PerMillionRequests => 1,
            Unit::PerGbSecond => MB_MS_PER_GB_SECOND as i128,
        },
        free_units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// The 64-bit shortcut prices exactly as the 128-bit arithmetic does.
        #[test]
        fn unit_cost_shortcut_agrees_with_wide_arithmetic(
            units in prop_oneof![0u128..1_000_000, 0u128..=u128::from(u64::MAX), any::<u128>()],
            numerator in prop_oneof![0i128..1_000_000_000, 0i128..=i128::from(u64::MAX)],
            denominator in prop_oneof![Just(1i128), Just(1_024_000), 1i128..=i128::from(u64::MAX)],
        ) {
            let price = UnitPrice { numerator, denominator };
            let wide = i128::try_from(units).unwrap_or(i128::MAX).saturating_mul(numerator) / denominator;
            prop_assert_eq!(price.cost(units), Money::from_picos(wide));
        }
    }

    fn us_east_1() -> Prices {
        PriceBook::bundled()
            .and_then(|b| b.prices("us-east-1", false))
            .expect("bundled book prices us-east-1")
    }

    #[test]
    fn bundled_book_loads_with_both_required_regions() {
        let book = PriceBook::bundled().expect("valid");
        let regions: Vec<&str> = book.regions().collect();
        assert!(regions.contains(&"us-east-1") && regions.contains(&"eu-west-1"));
        assert_eq!(book.effective.to_string(), "2026-11-01");
    }

    // Worked examples from the AWS pricing pages (docs/price-book.md).
    #[test]
    fn lambda_worked_examples_match_published_prices() {
        let p = us_east_1();
        // 3 million requests at $0.20 per million = $0.60.
        assert_eq!(
            p.cost(Product::LambdaRequests, 0, 3_000_000),
            Money::from_cents(60)
        );
        // 3M invocations × 120 ms × 512 MB = 180,000 GB-s × $0.0000166667 = $3.000006.
        let mb_ms = 3_000_000u128 * 120 * 512;
        assert_eq!(
            p.cost(Product::LambdaDurationX86, 0, mb_ms),
            Money::parse("3.000006").expect("money")
        );
        // The same on arm64: 180,000 GB-s × $0.0000133334 = $2.400012.
        assert_eq!(
            p.cost(Product::LambdaDurationArm, 0, mb_ms),
            Money::parse("2.400012").expect("money")
        );
        // 1,000 concurrent 1 GB x86 functions for an hour: 3.6M GB-s = $60.00012.
        let hour = 1_000u128 * 1_024 * 3_600_000;
        assert_eq!(
            p.cost(Product::LambdaDurationX86, 0, hour),
            Money::parse("60.00012").expect("money")
        );
    }

    #[test]
    fn api_gateway_worked_examples_match_published_prices() {
        let p = us_east_1();
        // A REST API at 10,000 req/s for an hour: 36M requests × $3.50/M = $126.
        assert_eq!(
            p.cost(Product::RestRequests, 0, 36_000_000),
            Money::from_dollars(126)
        );
        // 5M HTTP API calls at $1.00/M = $5.
        assert_eq!(
            p.cost(Product::HttpRequests, 0, 5_000_000),
            Money::from_dollars(5)
        );
        // REST tier crossing: 400M requests = 333M × 3.50 + 67M × 2.80 = $1,353.10.
        assert_eq!(
            p.cost(Product::RestRequests, 0, 400_000_000),
            Money::parse("1353.10").expect("money")
        );
        // eu-west-1 HTTP API is $1.11 per million for the first 300M.
        let eu = PriceBook::bundled()
            .and_then(|b| b.prices("eu-west-1", false))
            .expect("eu-west-1");
        assert_eq!(
            eu.cost(Product::HttpRequests, 0, 1_000_000),
            Money::parse("1.11").expect("money")
        );
    }

    #[test]
    fn volume_tiers_apply_from_the_account_month_to_date_offset() {
        let p = us_east_1();
        let gbs = MB_MS_PER_GB_SECOND;
        // Past 6B GB-s in the month the x86 price drops to $0.0000150000.
        let beyond = p.cost(Product::LambdaDurationX86, 6_000_000_000 * gbs, 1_000_000 * gbs);
        assert_eq!(beyond, Money::from_dollars(15));
        assert_eq!(
            p.schedule(Product::LambdaDurationX86)
                .marginal(7_000_000_000 * gbs)
                .cost(gbs),
            Money::from_picos(15_000_000)
        );
    }

    #[test]
    fn free_tier_is_off_by_default_and_subtracts_the_first_units_when_on() {
        let book = PriceBook::bundled().expect("valid");
        let with_free = book.prices("us-east-1", true).expect("region");
        // 3M requests with 1M free: 2M × $0.20/M = $0.40.
        assert_eq!(
            with_free.cost(Product::LambdaRequests, 0, 3_000_000),
            Money::from_cents(40)
        );
        // Once the month is past the allowance nothing more is free.
        assert_eq!(
            with_free.cost(Product::LambdaRequests, 2_000_000, 1_000_000),
            Money::from_cents(20)
        );
        assert_eq!(
            us_east_1().cost(Product::LambdaRequests, 0, 1_000_000),
            Money::from_cents(20)
        );
    }

    #[test]
    fn unknown_region_names_the_known_ones() {
        let err = PriceBook::bundled()
            .and_then(|b| b.prices("ap-south-9", false))
            .expect_err("unknown");
        assert!(err.to_string().contains("us-east-1"), "{err}");
    }

    #[test]
    fn rejects_malformed_books_with_the_field_named() {
        let good = BUNDLED_PRICE_BOOK;
        let cases = [
            (good.replace("\"0.20\"", "\"-0.20\""), "must not be negative"),
            (
                good.replace("effective = \"2026-11-01\"", "effective = \"soon\""),
                "effective",
            ),
            (
                good.replacen(
                    "{ up_to = 15_000_000_000, price = \"0.0000150000\" }",
                    "{ up_to = 1, price = \"0.0000150000\" }",
                    1,
                ),
                "must grow",
            ),
            (
                good.replacen(
                    "{ price = \"1.51\" }",
                    "{ up_to = 30_000_000_000, price = \"1.51\" }",
                    1,
                ),
                "last tier",
            ),
            (
                good.replacen("price = \"2.80\"", "price = \"9.80\"", 1),
                "must not cost more",
            ),
            (
                good.replacen("version = ", "colour = \"red\"\nversion = ", 1),
                "colour",
            ),
        ];
        for (text, needle) in cases {
            let err = PriceBook::from_toml(&text).expect_err(needle);
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }
}
