//! Step 5 of a pass: **a level becomes concrete limits.** A throttle level allows a
//! share of the target's allowance ([`crate::GuardSettings::allowance_millionths`]);
//! the price of what the target runs turns that money into a limit of its kind
//! ([`limits_for`]):
//!
//! - a function: reserved concurrency = allowance ÷ the price of one execution
//!   environment kept busy for a second; an async-invoked one also gets a short
//!   maximum event age and few retries, its destinations kept;
//! - an API stage: rate = allowance ÷ the request price, burst = rate; every method
//!   or route override is capped at the stage's new throttle ([`clamp_override`]);
//! - a usage plan: its throttle as a stage's, and a quota of what the rest of the
//!   budget buys over the budget's period;
//! - at `stop`: everything at the floors.
//!
//! Every limit is clamped: never below the floors, never looser than the original
//! (the restore point) nor, when escalating, than the previous level. Reservations
//! then come out of the account's unreserved pool ([`Pool`]), which never goes below
//! the minimum Lambda requires.
//!
//! ```
//! use dowguard_domain::limits::{Caps, Sizing, limits_for};
//! use dowguard_domain::{
//!     AccountUsage, Arch, Floors, GuardSettings, Level, Limits, Money, Period, PriceBook, TargetSpec,
//! };
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let spec = TargetSpec::Function { memory_mb: 1_024, arch: Arch::X86_64, async_invoked: false };
//! let price = prices.at(&AccountUsage::default()).of(&spec);
//! // An allowance of $0.01 a second, for requests of 500 ms.
//! let sizing = Sizing {
//!     level: Level::Throttle(1),
//!     allowance: Some(Money::parse("0.01")?.picos()),
//!     floors: Floors::default(),
//!     remaining: Money::from_dollars(100),
//!     period: Period::Day,
//!     avg_ms: 500,
//!     price,
//! };
//! let unreserved = Limits::Function { reserved_concurrency: None, async_config: None };
//! let caps = Caps { original: &unreserved, previous: None, current: &unreserved };
//! let limits = limits_for(&spec, &sizing, caps, &GuardSettings::default(), 1_000);
//! // One busy environment costs a GB-second plus two requests a second:
//! // $0.0000166667 + 2 × $0.0000002; $0.01 keeps 585.9 of them busy.
//! let busy = price.per_busy_second(500);
//! let expected = busy.units_for(Money::parse("0.01")?) as u32;
//! assert_eq!(limits, Limits::Function { reserved_concurrency: Some(expected), async_config: None });
//! assert_eq!(expected, 585);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::budget::{Floors, Period};
use crate::money::Money;
use crate::pricebook::TargetPrice;
use crate::settings::GuardSettings;
use crate::state::Level;
use crate::target::{AsyncConfig, Limits, Quota, QuotaPeriod, TargetSpec, Throttle};
use crate::transition::Note;

/// The account's concurrency figures (Lambda GetAccountSettings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConcurrency {
    /// The account's concurrent executions limit.
    pub limit: u32,
    /// Unreserved concurrency the account must keep: 100, or the whole limit on an
    /// account whose limit is smaller ([`AccountConcurrency::from_settings`]).
    pub unreserved_minimum: u32,
    /// Unreserved concurrency available now.
    pub unreserved_now: u32,
}

impl AccountConcurrency {
    /// The most unreserved concurrency Lambda ever requires an account to keep.
    /// The PutFunctionConcurrency API reference: "you can reserve concurrency for as
    /// many functions as you like, as long as you leave at least 100 simultaneous
    /// executions unreserved". An account whose whole limit is below 100 (new
    /// accounts start at 10 or 50) must keep all of it: AWS refuses with
    /// "decreases account's UnreservedConcurrentExecution below its minimum value of
    /// \[50\]" on such an account.
    pub const MAX_UNRESERVED_MINIMUM: u32 = 100;

    /// The figures of `GetAccountSettings` (`AccountLimit.ConcurrentExecutions` and
    /// `UnreservedConcurrentExecutions`), with the minimum the account must keep
    /// derived from its limit: 100, or the whole limit when that is smaller.
    pub fn from_settings(limit: u32, unreserved_now: u32) -> Self {
        AccountConcurrency {
            limit,
            unreserved_minimum: limit.min(Self::MAX_UNRESERVED_MINIMUM),
            unreserved_now,
        }
    }
}

impl Default for AccountConcurrency {
    fn default() -> Self {
        AccountConcurrency {
            limit: 1_000,
            unreserved_minimum: 100,
            unreserved_now: 1_000,
        }
    }
}

/// What one target's limits are sized from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// The level to size for.
    pub level: Level,
    /// The target's allowance at the remaining pace, pico-dollars a second, before
    /// the level's share ([`crate::wish::Wish::allowance`]).
    pub allowance: Option<i128>,
    /// The floors no limit goes below.
    pub floors: Floors,
    /// What is left of the driving budget: a usage plan's quota buys no more.
    pub remaining: Money,
    /// The driving budget's period: a usage plan's quota period.
    pub period: Period,
    /// Average ms per request of a function (what one busy environment serves).
    pub avg_ms: u64,
    /// What the target is billed at.
    pub price: TargetPrice,
}

impl Sizing {
    /// Pico-dollars a second the level allows.
    fn allowance_per_s(&self, settings: &GuardSettings) -> i128 {
        match self.level {
            Level::Throttle(k) => {
                self.allowance
                    .unwrap_or(0)
                    .saturating_mul(i128::from(settings.allowance_millionths(k)))
                    / 1_000_000
            }
            _ => 0,
        }
    }

    /// Requests a second the level allows (none at `stop`).
    fn rate(&self, settings: &GuardSettings) -> u64 {
        if self.level == Level::Stop {
            0
        } else {
            self.price
                .request()
                .units_for(Money::from_picos(self.allowance_per_s(settings)))
        }
    }
}

/// The limits a new level may not be looser than, and what the target has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps<'a> {
    /// The original limits (the restore point).
    pub original: &'a Limits,
    /// The previous level's limits, when escalating.
    pub previous: Option<&'a Limits>,
    /// The limits in place now.
    pub current: &'a Limits,
}

/// The limits for `sizing.level` on a target of shape `spec`, never looser than the
/// original or (when escalating) the previous level, never below the floors, and no
/// reservation above the account's concurrency limit `account_limit`.
pub fn limits_for(
    spec: &TargetSpec,
    sizing: &Sizing,
    caps: Caps<'_>,
    settings: &GuardSettings,
    account_limit: u32,
) -> Limits {
    match (spec, caps.original) {
        (
            TargetSpec::Function { async_invoked, .. },
            Limits::Function {
                reserved_concurrency,
                async_config,
            },
        ) => {
            let previous = match caps.previous {
                Some(Limits::Function {
                    reserved_concurrency: r,
                    ..
                }) => *r,
                _ => None,
            };
            let reserved = reservation(sizing, [*reserved_concurrency, previous], settings, account_limit);
            Limits::Function {
                reserved_concurrency: Some(reserved),
                async_config: if *async_invoked {
                    Some(async_while_throttled(async_config.as_ref(), settings))
                } else {
                    async_config.clone()
                },
            }
        }
        (_, Limits::Stage { throttle, overrides }) => {
            stage_limits(sizing, (*throttle, overrides), caps, settings)
        }
        (_, Limits::UsagePlan { throttle, quota }) => {
            plan_limits(sizing, (*throttle, *quota), caps, settings)
        }
        // A spec that does not match its limits (discovery raced a change): keep them.
        (_, other) => other.clone(),
    }
}

/// A function's reserved concurrency: what the allowance keeps busy, within the
/// floor, the `caps` (original and previous reservations) and the account's limit.
fn reservation(sizing: &Sizing, caps: [Option<u32>; 2], settings: &GuardSettings, account_limit: u32) -> u32 {
    let floor = u64::from(sizing.floors.concurrency);
    let concurrency = if sizing.level == Level::Stop {
        0
    } else {
        // Cost of one busy execution environment for a second.
        let avg_ms = if sizing.avg_ms > 0 {
            sizing.avg_ms
        } else {
            settings.default_avg_duration_ms
        };
        sizing
            .price
            .per_busy_second(avg_ms)
            .units_for(Money::from_picos(sizing.allowance_per_s(settings)))
    };
    // mutation: floors-hold
    let mut reserved = concurrency.max(floor);
    for cap in caps.into_iter().flatten() {
        reserved = reserved.min(u64::from(cap).max(floor));
    }
    let reserved = reserved.min(u64::from(account_limit));
    u32::try_from(reserved).unwrap_or(u32::MAX)
}

/// An async-invoked function's whole invoke config while throttled: a short event
/// age and few retries (never longer or more than the original's), the original's
/// destinations kept.
fn async_while_throttled(original: Option<&AsyncConfig>, settings: &GuardSettings) -> AsyncConfig {
    let age = settings.async_max_event_age_s.clamp(60, 21_600);
    let retries = settings.async_max_retries.min(2);
    AsyncConfig {
        max_event_age_s: Some(
            original
                .and_then(|c| c.max_event_age_s)
                .map_or(age, |a| a.min(age)),
        ),
        max_retry_attempts: Some(
            original
                .and_then(|c| c.max_retry_attempts)
                .map_or(retries, |r| r.min(retries)),
        ),
        on_success: original.and_then(|c| c.on_success.clone()),
        on_failure: original.and_then(|c| c.on_failure.clone()),
    }
}

/// A throttle of `rps`, never below the floors, never looser than `caps`.
fn clamp_throttle(rps: u64, floors: Floors, caps: [Option<Throttle>; 2]) -> Throttle {
    let mut rate = rps.max(u64::from(floors.rate));
    let mut burst = rps.max(u64::from(floors.burst));
    for cap in caps.into_iter().flatten() {
        let cap_rate = cap.rate_limit.floor().try_into().unwrap_or(u64::MAX);
        rate = rate.min(cap_rate.max(u64::from(floors.rate)));
        burst = burst.min(u64::from(cap.burst_limit).max(u64::from(floors.burst)));
    }
    Throttle {
        rate_limit: Decimal::from(rate.min(1_000_000)),
        burst_limit: u32::try_from(burst.min(1_000_000)).unwrap_or(1_000_000),
    }
}

type Overrides = std::collections::BTreeMap<String, Option<Throttle>>;

/// A stage's limits: its throttle, and every method or route override capped at it.
fn stage_limits(
    sizing: &Sizing,
    (throttle, overrides): (Option<Throttle>, &Overrides),
    caps: Caps<'_>,
    settings: &GuardSettings,
) -> Limits {
    let floors = sizing.floors;
    let (prev, prev_overrides) = match caps.previous {
        Some(Limits::Stage { throttle, overrides }) => (*throttle, Some(overrides)),
        _ => (None, None),
    };
    let stage = clamp_throttle(sizing.rate(settings), floors, [throttle, prev]);
    // A method or route with a throttle of its own escapes the stage's: cap each at
    // the stage's new throttle, never looser than its own original or its previous
    // level, never below the floors. One added since the restore point was taken is
    // capped too, its current value standing in for the original.
    let current = match caps.current {
        Limits::Stage { overrides, .. } => Some(overrides),
        _ => None,
    };
    let keys = overrides
        .keys()
        .chain(current.into_iter().flat_map(|c| c.keys()))
        .collect::<BTreeSet<_>>();
    let overrides = keys
        .into_iter()
        .map(|key| {
            let own = overrides
                .get(key)
                .or_else(|| current.and_then(|c| c.get(key)))
                .copied()
                .flatten();
            let prev = prev_overrides.and_then(|p| p.get(key)).copied().flatten();
            // mutation: overrides-capped
            let capped = clamp_override(stage, [own, prev], floors);
            (key.clone(), Some(capped))
        })
        .collect();
    Limits::Stage {
        throttle: Some(stage),
        overrides,
    }
}

/// A usage plan's limits: a throttle as a stage's, and a quota per key of what the
/// rest of the budget buys over the budget's period, never above the original's or
/// the previous level's quota of that period.
fn plan_limits(
    sizing: &Sizing,
    (throttle, quota): (Option<Throttle>, Option<Quota>),
    caps: Caps<'_>,
    settings: &GuardSettings,
) -> Limits {
    let (prev_t, prev_q) = match caps.previous {
        Some(Limits::UsagePlan { throttle, quota }) => (*throttle, *quota),
        _ => (None, None),
    };
    let t = clamp_throttle(sizing.rate(settings), sizing.floors, [throttle, prev_t]);
    let affordable = sizing.price.request().units_for(sizing.remaining).max(1);
    let period = match sizing.period {
        Period::Day => QuotaPeriod::Day,
        Period::Month => QuotaPeriod::Month,
    };
    let limit = [quota, prev_q]
        .into_iter()
        .flatten()
        .filter(|q| q.period == period)
        .map(|q| q.limit)
        .fold(affordable, u64::min);
    Limits::UsagePlan {
        throttle: Some(t),
        quota: Some(Quota {
            limit,
            period,
            offset: quota.map_or(0, |q| q.offset),
        }),
    }
}

/// An override's throttle while its stage is tightened: the stage's throttle, never
/// looser than any of `caps` (the override's own original and previous level),
/// never below the floors.
///
/// ```
/// use dowguard_domain::limits::clamp_override;
/// use dowguard_domain::{Floors, Throttle};
///
/// let throttle = |rate: u32, burst: u32| Throttle { rate_limit: rate.into(), burst_limit: burst };
/// // The stage goes to 100/100; a method that had 40/500 keeps its tighter rate.
/// let capped = clamp_override(throttle(100, 100), [Some(throttle(40, 500)), None], Floors::default());
/// assert_eq!(capped, throttle(40, 100));
/// ```
pub fn clamp_override(stage: Throttle, caps: [Option<Throttle>; 2], floors: Floors) -> Throttle {
    let mut rate = stage.rate_limit;
    let mut burst = stage.burst_limit;
    for cap in caps.into_iter().flatten() {
        rate = rate.min(cap.rate_limit.floor().max(Decimal::from(floors.rate)));
        burst = burst.min(cap.burst_limit.max(floors.burst));
    }
    Throttle {
        rate_limit: rate,
        burst_limit: burst,
    }
}

/// The account's unreserved concurrency as a pass reserves from it, most expensive
/// target first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    available: i64,
    minimum: i64,
    limit: i64,
}

impl Pool {
    /// The pool of an account with these figures.
    pub fn new(account: AccountConcurrency) -> Self {
        Pool {
            available: i64::from(account.unreserved_now),
            minimum: i64::from(account.unreserved_minimum),
            limit: i64::from(account.limit),
        }
    }

    /// Takes the reservation `planned` asks beyond what the function holds now
    /// (`current`) from the pool. One that would leave less than the minimum
    /// unreserved is lowered to what fits (never below `floor`), or not made: the
    /// reservation stays `current`. Each adjustment adds a note saying why.
    pub fn reserve(&mut self, current: &Limits, planned: &mut Limits, floor: u32, notes: &mut Vec<Note>) {
        let (
            Limits::Function {
                reserved_concurrency: current,
                ..
            },
            Limits::Function {
                reserved_concurrency: Some(wanted),
                ..
            },
        ) = (current, &mut *planned)
        else {
            return;
        };
        let held_now = i64::from(current.unwrap_or(0));
        let delta = i64::from(*wanted) - held_now;
        // mutation: unreserved-minimum
        if delta <= 0 || self.available - delta >= self.minimum {
            self.available -= delta;
            return;
        }
        let room = (self.available - self.minimum).max(0);
        let fits = held_now + room;
        // What is left would be a reservation of 0 on a function that draws on the
        // pool: a stop where only a throttle was asked. That is the stop level's call.
        let would_stop = fits == 0 && current.is_none();
        if fits >= i64::from(floor) && !would_stop {
            notes.push(Note::new(
                format!(
                    "reserved concurrency lowered from {wanted} to {fits} to keep {} unreserved",
                    self.minimum
                ),
                crate::action::Rule::UnreservedMinimum,
            ));
            *wanted = u32::try_from(fits).unwrap_or(0);
            self.available -= fits - held_now;
        } else {
            let why = self.why_not(floor, would_stop);
            notes.push(Note::new(
                format!("cannot reserve {wanted}: {why}"),
                crate::action::Rule::UnreservedMinimum,
            ));
            if let Limits::Function {
                reserved_concurrency, ..
            } = planned
            {
                *reserved_concurrency = *current;
            }
        }
    }

    /// Why a reservation cannot be made at all.
    fn why_not(&self, floor: u32, would_stop: bool) -> String {
        let minimum = self.minimum;
        if self.limit <= minimum {
            format!(
                "the pool is too small to throttle by reservation: the account's concurrency limit is {} and it must keep {minimum} unreserved, so only a stop (reserving 0) can hold this function",
                self.limit
            )
        } else if would_stop {
            format!(
                "the pool is too small to throttle by reservation: {} of the account's unreserved concurrency is left and it must keep {minimum}, so only a stop (reserving 0) can hold this function",
                self.available.max(0)
            )
        } else {
            format!("the account must keep {minimum} unreserved and the floor is {floor}")
        }
    }
}
