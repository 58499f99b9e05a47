//! Step 2 of a pass: **judging one budget.** From its members' summed
//! [`Figures`], a budget gets its spend and projection, its burn rates, and the
//! level those call for ([`judge`] → [`Verdict`]).
//!
//! - *burn* is window spend against the period's even pace (1× = on budget at the
//!   end of the period); *demand* is the window's demand (throttled requests
//!   included) against what the **remaining** budget allows over the rest of the
//!   period. Levels follow demand.
//! - A level holds when both windows are at or above its threshold (the multi-window
//!   rule); the top threshold on the short window alone is the fast lane; spend at
//!   or above the budget is `stop` while anything is still asked for.
//! - *Calm* is both demand windows below the hysteresis share of the first throttle
//!   threshold (and below the watch threshold), with money left and no gap in the
//!   figures: only calm relaxes anything ([`crate::transition`]).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::judge::judge;
//! use dowguard_domain::window::{Figures, Frame};
//! use dowguard_domain::{Budget, BudgetSpec, BurnRate, GuardSettings, Level, Money, Rule};
//!
//! let budget = Budget::parse(BudgetSpec {
//!     id: "checkout-daily".into(),
//!     scope: "function:checkout".into(),
//!     period: "day".into(),
//!     amount: "240".into(),
//!     thresholds: vec![], // 1×, 4×, 8×, 14.4×: watch, then levels 1 to 3
//!     mode: "enforce".into(),
//!     owner: "finance@example.com".into(),
//!     topic: None,
//!     floors: Default::default(),
//!     protected: false,
//! })?;
//! let settings = GuardSettings::default();
//! // At noon, nothing spent: the remaining pace is $240 / 12 h = $20 an hour.
//! let frame = Frame::new(Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(), &settings);
//! // Both windows at $120 an hour, 6× the remaining pace: throttle level 1.
//! let figures = Figures {
//!     short: Money::from_dollars(10),
//!     long: Money::from_dollars(120),
//!     short_demand: Money::from_dollars(10),
//!     long_demand: Money::from_dollars(120),
//!     ..Figures::default()
//! };
//! let verdict = judge(&budget, &figures, &frame, &settings, false);
//! assert_eq!((verdict.level, verdict.rule), (Level::Throttle(1), Rule::MultiWindow));
//! assert_eq!((verdict.demand_short, verdict.demand_long), (BurnRate(6_000_000), BurnRate(6_000_000)));
//! assert!(!verdict.calm);
//! // The short window alone at $360 an hour (18×): the fast lane, straight to the top level.
//! let surge = Figures { short_demand: Money::from_dollars(30), ..figures };
//! let verdict = judge(&budget, &surge, &frame, &settings, false);
//! assert_eq!((verdict.level, verdict.rule), (Level::Throttle(3), Rule::FastLane));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::action::{Reason, Rule};
use crate::budget::{Budget, BurnRate, Thresholds};
use crate::money::Money;
use crate::settings::GuardSettings;
use crate::state::Level;
use crate::window::{Figures, Frame};

/// What one budget's figures say this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The level the figures call for.
    pub level: Level,
    /// The rule that set it.
    pub rule: Rule,
    /// Calm: the demand is well within what the rest of the budget pays for, and no
    /// figure is missing.
    pub calm: bool,
    /// The figures have a gap this pass: the budget's members are held where they are.
    pub hold: bool,
    /// Spent so far in the period (served requests only).
    pub spent: Money,
    /// What is left of the budget (never below zero).
    pub remaining: Money,
    /// Spent plus the long-window spend rate over the rest of the period.
    pub projected: Money,
    /// Short-window spend against the period's even pace.
    pub burn_short: BurnRate,
    /// Long-window spend against the period's even pace.
    pub burn_long: BurnRate,
    /// Short-window demand against the remaining budget's pace.
    pub demand_short: BurnRate,
    /// Long-window demand against the remaining budget's pace.
    pub demand_long: BurnRate,
    /// Seconds left in the period (at least a minute).
    pub remaining_s: i64,
}

impl Verdict {
    /// The pace at which the remaining budget lasts to the end of the period, in
    /// pico-dollars a second: what a throttle allows.
    #[inline]
    pub fn remaining_rate(&self) -> i128 {
        self.remaining.picos() / i128::from(self.remaining_s)
    }

    /// The figures behind an action this verdict drives.
    #[inline]
    pub fn reason(&self, budget: &Budget) -> Reason {
        Reason {
            budget: Some(budget.id.clone()),
            rule: self.rule,
            level: self.level,
            spent: self.spent,
            amount: budget.amount,
            projected: self.projected,
            burn_short: self.demand_short,
            burn_long: self.demand_long,
        }
    }
}

/// Judges `budget` on its members' summed figures `total`. `hold` says the figures
/// have a gap: never calm then.
#[inline]
pub fn judge(
    budget: &Budget,
    total: &Figures,
    frame: &Frame,
    settings: &GuardSettings,
    hold: bool,
) -> Verdict {
    let (start, period_end) = frame.period(budget.period);
    let period_s = (period_end - start).num_seconds().max(1);
    let remaining_s = (period_end - frame.now).num_seconds().max(60);
    let spent = total.spent(budget.period);
    let remaining = (budget.amount - spent).non_negative();
    let projected = spent
        + total
            .long
            .mul_div(i128::from(remaining_s), i128::from(frame.long_s))
            .unwrap_or(Money::ZERO);
    let demand_short = burn(total.short_demand, frame.short_s, remaining, remaining_s);
    let demand_long = burn(total.long_demand, frame.long_s, remaining, remaining_s);
    let (level, rule) = if remaining.is_positive() {
        level(&budget.thresholds, demand_short, demand_long)
    } else if total.short_demand.is_positive() {
        (Level::Stop, Rule::Exhausted)
    } else {
        (Level::Watch, Rule::Exhausted)
    };
    let bar = calm_bar(&budget.thresholds, settings);
    Verdict {
        level,
        rule,
        calm: !hold && remaining.is_positive() && demand_short < bar && demand_long < bar,
        hold,
        spent,
        remaining,
        projected,
        burn_short: burn(total.short, frame.short_s, budget.amount, period_s),
        burn_long: burn(total.long, frame.long_s, budget.amount, period_s),
        demand_short,
        demand_long,
        remaining_s,
    }
}

/// The level two demand rates call for with money left: the fast lane when the
/// short window alone reaches the top threshold, else the highest threshold both
/// windows reach (the first one is watch).
#[inline]
fn level(thresholds: &Thresholds, short: BurnRate, long: BurnRate) -> (Level, Rule) {
    let levels = thresholds.levels();
    if levels.last().is_some_and(|top| short >= *top) {
        return (Level::Throttle(levels.len() as u8), Rule::FastLane);
    }
    let confirmed = thresholds.all().iter().rposition(|t| short >= *t && long >= *t);
    match confirmed {
        // mutation: first-level-throttles
        Some(0) => (Level::Watch, Rule::MultiWindow),
        // mutation: multi-window-throttles
        Some(k) => (Level::Throttle(k as u8), Rule::MultiWindow),
        None => (Level::Normal, Rule::MultiWindow),
    }
}

/// The first throttle threshold (the watch threshold when a budget has no throttle
/// level): the burn rate at which the guard starts to change limits.
#[inline]
pub fn first_throttle(thresholds: &Thresholds) -> BurnRate {
    thresholds.levels().first().copied().unwrap_or(thresholds.watch())
}

/// Calm is below this: the hysteresis share of the first throttle threshold, and
/// never above the watch threshold (the rest of the budget pays for the demand).
#[inline]
pub fn calm_bar(thresholds: &Thresholds, settings: &GuardSettings) -> BurnRate {
    first_throttle(thresholds)
        .scale(settings.hysteresis_millionths)
        // mutation: calm-below-hysteresis
        .min(thresholds.watch())
}

/// `spend / window_s` against `allowance / horizon_s`, in millionths: 1× when the
/// window's rate would spend exactly `allowance` over `horizon_s`.
///
/// ```
/// use dowguard_domain::judge::burn;
/// use dowguard_domain::{BurnRate, Money};
///
/// // $1 in five minutes against $24 over a day: $12 an hour against $1 an hour.
/// let rate = burn(Money::from_dollars(1), 300, Money::from_dollars(24), 86_400);
/// assert_eq!(rate, BurnRate(12_000_000));
/// ```
#[inline]
pub fn burn(spend: Money, window_s: i64, allowance: Money, horizon_s: i64) -> BurnRate {
    let denominator = i128::from(window_s.max(1)) * allowance.picos();
    if denominator <= 0 {
        return if spend.is_positive() {
            BurnRate(i64::MAX)
        } else {
            BurnRate(0)
        };
    }
    let numerator = spend
        .picos()
        .saturating_mul(i128::from(horizon_s))
        .saturating_mul(1_000_000);
    BurnRate(i64::try_from(numerator / denominator).unwrap_or(i64::MAX))
}
