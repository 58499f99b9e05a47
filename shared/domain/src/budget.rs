//! Budgets: an amount of money for a scope over a UTC day or month, with the
//! escalation thresholds, mode, owner, notification topic, floors and protection
//! that decide how the guard may act on it.
//!
//! A [`Budget`] exists only through [`Budget::parse`] (or `TryFrom<BudgetSpec>`),
//! which names the field and the reason for every rejection.
//!
//! ```
//! use dowguard_domain::{Budget, BudgetSpec, Mode, Money, Period, Scope};
//!
//! let spec = |amount: &str| BudgetSpec {
//!     id: "shop-monthly".into(),
//!     scope: "tag:team=shop".into(),
//!     period: "month".into(),
//!     amount: amount.into(),
//!     thresholds: vec![],
//!     mode: String::new(), // dry-run unless said otherwise
//!     owner: "finance@example.com".into(),
//!     topic: None,
//!     floors: Default::default(),
//!     protected: false,
//! };
//! let budget = Budget::parse(spec("$1,200.50"))?;
//! assert_eq!(budget.amount, Money::parse("1200.50")?);
//! assert_eq!((budget.period, budget.mode), (Period::Month, Mode::DryRun));
//! assert_eq!(budget.scope, Scope::Tag { key: "team".into(), value: "shop".into() });
//! // A rejection names the field and says why.
//! let rejected = Budget::parse(spec("-5")).unwrap_err();
//! assert_eq!(rejected.field, "amount");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::target::{IdError, Target, TargetId, TargetKind};

/// The largest budget amount accepted; anything above is treated as a typo.
pub const MAX_BUDGET_DOLLARS: i64 = 100_000_000;
/// The largest burn-rate threshold accepted.
pub const MAX_THRESHOLD: i64 = 10_000;
/// Default escalation thresholds: watch at 1×, throttle at 4×, 8× and 14.4×.
pub const DEFAULT_THRESHOLDS: [&str; 4] = ["1", "4", "8", "14.4"];

/// A budget rejected at parse time: which field and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget field `{field}`: {reason}")]
pub struct BudgetError {
    /// The field that is wrong.
    pub field: &'static str,
    /// What is wrong with it and how to fix it.
    pub reason: String,
}

fn reject(field: &'static str, reason: impl Into<String>) -> BudgetError {
    BudgetError {
        field,
        reason: reason.into(),
    }
}

/// A budget's name: lowercase letters, digits, `-` and `_`, 1–64 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BudgetId(Arc<str>);

impl BudgetId {
    /// Parses a budget name.
    pub fn parse(value: &str) -> Result<Self, BudgetError> {
        let ok_len = (1..=64).contains(&value.len());
        let ok_chars = value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok_len || !ok_chars || value.starts_with('-') {
            return Err(reject(
                "id",
                format!(
                    "`{}` must be 1-64 lowercase letters, digits, - or _ (e.g. checkout-daily)",
                    value.chars().take(80).collect::<String>()
                ),
            ));
        }
        Ok(BudgetId(Arc::from(value)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BudgetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BudgetId {
    type Error = BudgetError;
    fn try_from(value: String) -> Result<Self, BudgetError> {
        Self::parse(&value)
    }
}

impl From<BudgetId> for String {
    fn from(value: BudgetId) -> String {
        value.0.to_string()
    }
}

/// What a budget covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One target.
    Target(TargetId),
    /// Every target carrying the tag `key=value` (usage plans excepted: their
    /// requests are already counted on their stages).
    Tag {
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// Every target in the account (usage plans excepted, as for tags).
    Account,
}

impl Scope {
    /// Parses `account`, `tag:KEY=VALUE` or a target identifier.
    pub fn parse(value: &str) -> Result<Self, BudgetError> {
        if value == "account" {
            return Ok(Scope::Account);
        }
        if let Some(tag) = value.strip_prefix("tag:") {
            let (key, val) = tag
                .split_once('=')
                .ok_or_else(|| reject("scope", "a tag scope is written tag:KEY=VALUE"))?;
            validate_tag(key, val)?;
            return Ok(Scope::Tag {
                key: key.to_string(),
                value: val.to_string(),
            });
        }
        TargetId::parse(value).map(Scope::Target).map_err(|e: IdError| {
            reject(
                "scope",
                format!("{e}. A scope is `account`, `tag:KEY=VALUE` or a target"),
            )
        })
    }

    /// True when the scope covers `target`: its own target (a usage plan also covers
    /// the REST stages it includes, whose throttles cap its money); for a tag or the
    /// account, every matching target but a usage plan (whose stages already count its
    /// requests). The one coverage rule: [`crate::coverage`] asks it from either side.
    #[inline]
    pub fn covers(&self, target: &Target) -> bool {
        self.could_cover(target.id.kind())
            && match self {
                Scope::Target(id @ TargetId::UsagePlan(plan)) => {
                    *id == target.id || target.usage_plans.contains(plan)
                }
                Scope::Target(id) => *id == target.id,
                Scope::Tag { key, value } => target.tags.get(key) == Some(value),
                Scope::Account => true,
            }
    }

    /// Whether the scope could cover a target of `kind`, not knowing the target (for
    /// a service that could not be listed): its own kind (and, for a usage plan, the
    /// REST stages it includes); for a tag or the account, every kind but usage plans.
    #[inline]
    pub fn could_cover(&self, kind: TargetKind) -> bool {
        match self {
            Scope::Target(id) => {
                id.kind() == kind || (id.kind() == TargetKind::UsagePlan && kind == TargetKind::RestStage)
            }
            Scope::Tag { .. } | Scope::Account => kind != TargetKind::UsagePlan,
        }
    }
}

fn validate_tag(key: &str, value: &str) -> Result<(), BudgetError> {
    let allowed = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
    if key.is_empty() || key.chars().count() > 128 || !key.chars().all(allowed) {
        return Err(reject(
            "scope",
            "a tag key is 1-128 letters, digits, spaces or _ . : / = + - @",
        ));
    }
    if value.chars().count() > 256 || !value.chars().all(allowed) {
        return Err(reject(
            "scope",
            "a tag value is up to 256 letters, digits, spaces or _ . : / = + - @",
        ));
    }
    Ok(())
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Target(id) => write!(f, "{id}"),
            Scope::Tag { key, value } => write!(f, "tag:{key}={value}"),
            Scope::Account => f.write_str("account"),
        }
    }
}

/// The period a budget is spent over, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A UTC calendar day.
    Day,
    /// A UTC calendar month.
    Month,
}

impl Period {
    /// Parses `day` or `month` (also `daily`, `monthly`).
    pub fn parse(value: &str) -> Result<Self, BudgetError> {
        match value.to_ascii_lowercase().as_str() {
            "day" | "daily" => Ok(Period::Day),
            "month" | "monthly" => Ok(Period::Month),
            other => Err(reject(
                "period",
                format!("`{other}` is not a period; use day or month"),
            )),
        }
    }

    /// The start (inclusive) and end (exclusive) of the period containing `now`.
    pub fn bounds(self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let date = now.date_naive();
        match self {
            Period::Day => {
                let start = midnight(date);
                (start, start + Duration::days(1))
            }
            Period::Month => {
                let first = NaiveDate::from_ymd_opt(date.year(), date.month(), 1).unwrap_or(date);
                let next = if date.month() == 12 {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
                }
                .unwrap_or(date);
                (midnight(first), midnight(next))
            }
        }
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN))
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Day => "day",
            Period::Month => "month",
        })
    }
}

/// Whether the guard changes limits for a budget or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Apply actions.
    Enforce,
    /// Decide and report the same actions, but apply none.
    #[default]
    DryRun,
}

impl Mode {
    /// Parses `enforce` or `dry-run`.
    pub fn parse(value: &str) -> Result<Self, BudgetError> {
        match value {
            "enforce" => Ok(Mode::Enforce),
            "dry-run" | "dryrun" | "dry_run" => Ok(Mode::DryRun),
            other => Err(reject(
                "mode",
                format!("`{other}` is not a mode; use enforce or dry-run"),
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::DryRun => "dry-run",
        })
    }
}

/// A burn-rate multiple in millionths (1.0× = 1,000,000), exact and ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BurnRate(pub i64);

impl BurnRate {
    /// One millionth resolution.
    pub const ONE: BurnRate = BurnRate(1_000_000);

    /// The multiple as a decimal, for people.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, 6).normalize()
    }

    /// From a decimal, rounded to millionths.
    pub fn from_decimal(value: Decimal) -> BurnRate {
        let scaled = (value * Decimal::new(1_000_000, 0)).round();
        BurnRate(i64::try_from(scaled.mantissa() / 10_i128.pow(scaled.scale())).unwrap_or(i64::MAX))
    }

    /// Multiplies by a fraction given in millionths.
    pub fn scale(self, millionths: i64) -> BurnRate {
        BurnRate(((i128::from(self.0) * i128::from(millionths)) / 1_000_000) as i64)
    }
}

impl Serialize for BurnRate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Serialize::serialize(&self.to_decimal(), serializer)
    }
}

impl<'de> Deserialize<'de> for BurnRate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <Decimal as Deserialize>::deserialize(deserializer).map(BurnRate::from_decimal)
    }
}

impl fmt::Display for BurnRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.to_decimal().round_dp(2);
        write!(f, "{d}x")
    }
}

/// Escalation thresholds: burn-rate multiples, strictly ascending. The first is the
/// watch threshold (notify only); each further one is a throttle level. The last is
/// also the fast lane: the short window alone may trigger it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Thresholds(Vec<BurnRate>);

impl Thresholds {
    /// Parses 2 to 6 strictly ascending positive multiples (e.g. `1,2,6,14.4`).
    pub fn parse(values: &[String]) -> Result<Self, BudgetError> {
        if !(2..=6).contains(&values.len()) {
            return Err(reject(
                "thresholds",
                format!(
                    "give 2 to 6 burn-rate multiples (a watch level, then throttle levels), got {}",
                    values.len()
                ),
            ));
        }
        let mut out = Vec::with_capacity(values.len());
        for raw in values {
            let value: Decimal = raw
                .trim()
                .trim_end_matches(['x', 'X'])
                .parse()
                .map_err(|_| reject("thresholds", format!("`{raw}` is not a number")))?;
            if value <= Decimal::ZERO {
                return Err(reject("thresholds", format!("`{raw}` must be above zero")));
            }
            if value > Decimal::from(MAX_THRESHOLD) {
                return Err(reject(
                    "thresholds",
                    format!("`{raw}` is absurd: the largest multiple accepted is {MAX_THRESHOLD}"),
                ));
            }
            let rate = BurnRate::from_decimal(value);
            if out.last().is_some_and(|prev| *prev >= rate) {
                return Err(reject(
                    "thresholds",
                    format!("must be strictly ascending, but `{raw}` does not exceed the one before it"),
                ));
            }
            out.push(rate);
        }
        Ok(Thresholds(out))
    }

    /// The default ladder (1×, 4×, 8×, 14.4×).
    pub fn default_ladder() -> Self {
        let values: Vec<String> = DEFAULT_THRESHOLDS.iter().map(|s| (*s).to_string()).collect();
        Thresholds::parse(&values).unwrap_or_else(|_| Thresholds(vec![BurnRate::ONE]))
    }

    /// The watch threshold.
    pub fn watch(&self) -> BurnRate {
        self.0[0]
    }

    /// The throttle thresholds, level 1 first.
    pub fn levels(&self) -> &[BurnRate] {
        &self.0[1..]
    }

    /// All thresholds, watch first.
    pub fn all(&self) -> &[BurnRate] {
        &self.0
    }
}

/// The least a budget lets the guard throttle its targets to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Floors {
    /// Minimum reserved concurrency for functions.
    #[serde(default)]
    pub concurrency: u32,
    /// Minimum requests per second for stages and usage plans.
    #[serde(default)]
    pub rate: u32,
    /// Minimum burst for stages and usage plans.
    #[serde(default)]
    pub burst: u32,
}

impl Floors {
    /// The floors that satisfy both `self` and `other` (the larger of each).
    pub fn max(self, other: Floors) -> Floors {
        Floors {
            concurrency: self.concurrency.max(other.concurrency),
            rate: self.rate.max(other.rate),
            burst: self.burst.max(other.burst),
        }
    }
}

/// A validated budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BudgetSpec", into = "BudgetSpec")]
pub struct Budget {
    /// Name.
    pub id: BudgetId,
    /// What it covers.
    pub scope: Scope,
    /// Day or month, UTC.
    pub period: Period,
    /// Money for the period.
    pub amount: Money,
    /// Escalation thresholds.
    pub thresholds: Thresholds,
    /// Enforce or dry-run.
    pub mode: Mode,
    /// Who owns it (a person or team, usually an e-mail address).
    pub owner: String,
    /// SNS topic ARN for notifications, if any.
    pub topic: Option<String>,
    /// The least the guard may throttle covered targets to.
    pub floors: Floors,
    /// Protected budgets are watched and reported, never throttled.
    pub protected: bool,
}

/// A budget as written by a person or stored: all text, validated by
/// [`Budget::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// mutation: budget-spec-fields
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Name.
    pub id: String,
    /// `account`, `tag:KEY=VALUE` or a target.
    pub scope: String,
    /// `day` or `month`.
    pub period: String,
    /// Dollars, e.g. `250` or `$1,200.50`.
    pub amount: String,
    /// Burn-rate multiples; empty means the default ladder.
    #[serde(default)]
    pub thresholds: Vec<String>,
    /// `enforce` or `dry-run`; empty means dry-run.
    #[serde(default)]
    pub mode: String,
    /// Owner.
    pub owner: String,
    /// SNS topic ARN.
    #[serde(default)]
    pub topic: Option<String>,
    /// Floors.
    #[serde(default)]
    pub floors: Floors,
    /// Protected flag.
    #[serde(default)]
    pub protected: bool,
}

impl BudgetSpec {
    /// A day budget of `amount` dollars over `scope`, in `enforce` mode with the
    /// default thresholds and no floors, owned by `owner`.
    ///
    /// ```
    /// use dowguard_domain::{Budget, BudgetSpec};
    ///
    /// let budget = Budget::parse(BudgetSpec::day("checkout-daily", "function:checkout", "240", "finance@example.com"))?;
    /// assert_eq!(budget.amount.to_string(), "$240.00");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn day(id: &str, scope: &str, amount: &str, owner: &str) -> BudgetSpec {
        BudgetSpec {
            id: id.into(),
            scope: scope.into(),
            period: "day".into(),
            amount: amount.into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: owner.into(),
            topic: None,
            floors: Floors::default(),
            protected: false,
        }
    }
}

impl Budget {
    /// Validates a budget written as text.
    pub fn parse(spec: BudgetSpec) -> Result<Budget, BudgetError> {
        let id = BudgetId::parse(spec.id.trim())?;
        let scope = Scope::parse(spec.scope.trim())?;
        let period = Period::parse(spec.period.trim())?;
        let amount = Money::parse(&spec.amount).map_err(|e| reject("amount", e.to_string()))?;
        if !amount.is_positive() {
            return Err(reject("amount", "must be more than zero"));
        }
        if amount > Money::from_dollars(MAX_BUDGET_DOLLARS) {
            return Err(reject(
                "amount",
                format!(
                    "{amount} is absurd; the largest budget accepted is {}",
                    Money::from_dollars(MAX_BUDGET_DOLLARS)
                ),
            ));
        }
        if amount.to_decimal().normalize().scale() > 2 {
            return Err(reject("amount", "give whole cents (at most 2 decimal places)"));
        }
        let thresholds = if spec.thresholds.is_empty() {
            Thresholds::default_ladder()
        } else {
            Thresholds::parse(&spec.thresholds)?
        };
        let mode = if spec.mode.trim().is_empty() {
            Mode::DryRun
        } else {
            Mode::parse(spec.mode.trim())?
        };
        let owner = spec.owner.trim().to_string();
        if owner.is_empty() || owner.chars().count() > 256 || owner.chars().any(char::is_control) {
            return Err(reject(
                "owner",
                "name an owner (1-256 printable characters, e.g. finance@example.com)",
            ));
        }
        let topic = match spec.topic.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(arn) => Some(parse_topic_arn(arn)?),
        };
        let f = spec.floors;
        if f.concurrency > 10_000 || f.rate > 1_000_000 || f.burst > 1_000_000 {
            return Err(reject(
                "floors",
                "absurd floor: concurrency is at most 10000, rate and burst at most 1000000",
            ));
        }
        Ok(Budget {
            id,
            scope,
            period,
            amount,
            thresholds,
            mode,
            owner,
            topic,
            floors: f,
            protected: spec.protected,
        })
    }

    /// The amount budgeted for a stretch of `seconds` at an even pace over the period
    /// that contains `now`.
    pub fn pace(&self, now: DateTime<Utc>, seconds: i64) -> Money {
        let (start, end) = self.period.bounds(now);
        let period_s = (end - start).num_seconds().max(1);
        self.amount
            .mul_div(i128::from(seconds), i128::from(period_s))
            .unwrap_or(Money::ZERO)
    }
}

fn parse_topic_arn(arn: &str) -> Result<String, BudgetError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && (1..=256).contains(&parts[5].len())
        && parts[5]
            .trim_end_matches(".fifo")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(arn.to_string())
    } else {
        Err(reject(
            "topic",
            format!(
                "`{}` is not an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:finance-alerts",
                arn.chars().take(120).collect::<String>()
            ),
        ))
    }
}

impl TryFrom<BudgetSpec> for Budget {
    type Error = BudgetError;
    fn try_from(spec: BudgetSpec) -> Result<Self, BudgetError> {
        Budget::parse(spec)
    }
}

impl From<Budget> for BudgetSpec {
    fn from(b: Budget) -> BudgetSpec {
        BudgetSpec {
            id: b.id.to_string(),
            scope: b.scope.to_string(),
            period: b.period.to_string(),
            amount: b.amount.to_decimal().to_string(),
            thresholds: b
                .thresholds
                .all()
                .iter()
                .map(|t| t.to_decimal().to_string())
                .collect(),
            mode: b.mode.to_string(),
            owner: b.owner,
            topic: b.topic,
            floors: b.floors,
            protected: b.protected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> BudgetSpec {
        BudgetSpec {
            id: "checkout-daily".into(),
            scope: "function:checkout".into(),
            period: "day".into(),
            amount: "$250".into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "finance@example.com".into(),
            topic: Some("arn:aws:sns:us-east-1:123456789012:finance-alerts".into()),
            floors: Floors::default(),
            protected: false,
        }
    }

    #[test]
    fn parses_a_complete_budget_and_round_trips_through_its_spec() {
        let budget = Budget::parse(spec()).expect("valid");
        assert_eq!(budget.amount, Money::from_dollars(250));
        assert_eq!(budget.thresholds.levels().len(), 3);
        let again = Budget::parse(BudgetSpec::from(budget.clone())).expect("round trip");
        assert_eq!(again, budget);
    }

    #[test]
    fn rejects_bad_budgets_naming_the_field_and_reason() {
        type Edit = fn(&mut BudgetSpec);
        let cases: Vec<(Edit, &str, &str)> = vec![
            (|s| s.amount = "-5".into(), "amount", "more than zero"),
            (|s| s.amount = "0".into(), "amount", "more than zero"),
            (|s| s.amount = "lots".into(), "amount", "not an amount"),
            (|s| s.amount = "1000000000".into(), "amount", "absurd"),
            (|s| s.amount = "10.005".into(), "amount", "whole cents"),
            (
                |s| s.thresholds = vec!["2".into(), "1".into()],
                "thresholds",
                "ascending",
            ),
            (|s| s.thresholds = vec!["1".into()], "thresholds", "2 to 6"),
            (
                |s| s.thresholds = vec!["0".into(), "1".into()],
                "thresholds",
                "above zero",
            ),
            (
                |s| s.thresholds = vec!["1".into(), "99999".into()],
                "thresholds",
                "absurd",
            ),
            (|s| s.scope = "bucket:logs".into(), "scope", "unknown target kind"),
            (|s| s.scope = "tag:team".into(), "scope", "tag:KEY=VALUE"),
            (|s| s.scope = "function:bad name".into(), "scope", "not allowed"),
            (|s| s.period = "week".into(), "period", "day or month"),
            (|s| s.mode = "yolo".into(), "mode", "enforce or dry-run"),
            (|s| s.owner = " ".into(), "owner", "name an owner"),
            (
                |s| s.topic = Some("arn:aws:sqs:us-east-1:123456789012:q".into()),
                "topic",
                "SNS topic ARN",
            ),
            (|s| s.id = "Checkout Daily".into(), "id", "lowercase"),
            (|s| s.floors.concurrency = 50_000, "floors", "absurd"),
        ];
        for (edit, field, needle) in cases {
            let mut s = spec();
            edit(&mut s);
            let err = Budget::parse(s).expect_err(needle);
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn empty_mode_and_thresholds_mean_dry_run_and_the_default_ladder() {
        let mut s = spec();
        s.mode = String::new();
        let b = Budget::parse(s).expect("valid");
        assert_eq!(b.mode, Mode::DryRun);
        assert_eq!(b.thresholds, Thresholds::default_ladder());
        assert_eq!(b.thresholds.all()[3], BurnRate(14_400_000));
    }

    #[test]
    fn period_bounds_are_utc_calendar_days_and_months() {
        let t = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("time");
        let (s, e) = Period::Month.bounds(t);
        assert_eq!(s.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        let (s, e) = Period::Day.bounds(t);
        assert_eq!((e - s).num_hours(), 24);
        let feb = Utc.with_ymd_and_hms(2028, 2, 10, 0, 0, 0).single().expect("time");
        let (s, e) = Period::Month.bounds(feb);
        assert_eq!((e - s).num_days(), 29);
    }
}
