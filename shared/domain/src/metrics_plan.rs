//! What the evaluator measures each pass, so that the guard's own CloudWatch bill
//! follows exposure rather than the number of functions.
//!
//! GetMetricData bills per metric requested ($0.01 per 1,000 metrics, "Amazon
//! CloudWatch Pricing"), and Lambda publishes its metrics "across all functions"
//! without dimensions as well as per function ("Types of metrics for Lambda
//! functions", Lambda Developer Guide). So one pass asks for:
//!
//! - the **tripwire**: the account's aggregate `Invocations` and `Duration`, two
//!   metrics whatever the number of functions;
//! - the **hot set**: every target the guard is watching or holding, in full;
//! - **API stages** at a cadence from their worst case ([`stage_every`]): API
//!   Gateway publishes no account aggregate;
//! - a **sweep** of every other (cold) function's spend-to-date every
//!   [`MetricsPlan::sweep_every_minutes`].
//!
//! The aggregate minus the hot functions is the **residual**: everything the cold
//! functions served. No cold function served more than all of them together, so the
//! residual priced as if it all ran on a budget's dearest cold member is an upper
//! bound of what that budget's cold members spent. When that bound could lift a
//! budget to its first throttle level ([`trip`]), the pass measures every cold
//! function at once (the same figures as a full pass) and decides on them. Below
//! it, no budget's decision can change by measuring them: each is below the rate
//! at which the guard would act.

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::budget::{Budget, BudgetId, BurnRate};
use crate::coverage::members;
use crate::decide::GuardSettings;
use crate::money::Money;
use crate::pricebook::Prices;
use crate::target::{Limits, Target, TargetKind, TargetSpec, Throttle};
use crate::usage::Usage;

/// Lambda's account-level metrics the tripwire reads: `Invocations` and `Duration`.
pub const AGGREGATE_METRICS: u64 = 2;

/// The request rate API Gateway allows an account in a Region when a stage sets no
/// throttle of its own: 10,000 requests per second ("Amazon API Gateway quotas",
/// throttle quota per account, per Region across HTTP, REST, WebSocket and
/// WebSocket callback APIs).
pub const ACCOUNT_STAGE_RPS: u64 = 10_000;

/// How often the evaluator measures what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsPlan {
    /// Minutes between sweeps that refresh every measured target's spend-to-date
    /// (hourly sums since the month began).
    pub sweep_every_minutes: u64,
    /// The longest an API stage goes unmeasured, however large its budget.
    pub stage_every_max_minutes: u64,
}

impl Default for MetricsPlan {
    fn default() -> Self {
        MetricsPlan {
            sweep_every_minutes: 60,
            stage_every_max_minutes: 60,
        }
    }
}

impl MetricsPlan {
    /// Metrics one measurement of a target requests: Lambda `Invocations` and
    /// `Duration` (plus `Throttles` while the guard holds it), an API stage's `Count`,
    /// and none for a usage plan (its money is its stages', measured as stages).
    pub fn metrics_per_measurement(kind: TargetKind, held: bool) -> u64 {
        match kind {
            TargetKind::Function => 2 + u64::from(held),
            TargetKind::RestStage | TargetKind::HttpStage => 1,
            TargetKind::UsagePlan => 0,
        }
    }

    /// Whether a target whose spend-to-date was last refreshed at `last` (epoch
    /// minutes) is swept at `minute`.
    pub fn sweep_due(&self, minute: i64, last: Option<i64>) -> bool {
        let every = i64::try_from(self.sweep_every_minutes.max(1)).unwrap_or(i64::MAX);
        last.is_none_or(|l| minute - l >= every)
    }
}

/// The spend a budget may see over the short window before it reaches its first
/// throttle level, at its even pace over the whole period: what the guard lets a
/// target spend unseen.
pub fn first_throttle_spend(budget: &Budget, now: DateTime<Utc>, settings: &GuardSettings) -> Money {
    let (start, end) = budget.period.bounds(now);
    let period_s = (end - start).num_seconds().max(1);
    let level = first_throttle(budget);
    budget
        .amount
        .mul_div(
            i128::from(level.0) * i128::from(settings.short_window_minutes * 60),
            i128::from(period_s) * 1_000_000,
        )
        .unwrap_or(Money::ZERO)
}

fn first_throttle(budget: &Budget) -> BurnRate {
    budget
        .thresholds
        .levels()
        .first()
        .copied()
        .unwrap_or_else(|| budget.thresholds.watch())
}

/// The most an API stage can cost a minute: its fastest throttle (the stage's or a
/// method's or route's own, the account's default where one is unset) of requests
/// at list price.
pub fn stage_worst_per_minute(target: &Target, prices: &Prices) -> Money {
    let rps = |t: &Option<Throttle>| {
        t.as_ref().map_or(ACCOUNT_STAGE_RPS, |t| {
            t.rate_limit.ceil().to_u64().unwrap_or(ACCOUNT_STAGE_RPS)
        })
    };
    let fastest = match &target.limits {
        Limits::Stage { throttle, overrides } => overrides.values().map(rps).fold(rps(throttle), u64::max),
        _ => ACCOUNT_STAGE_RPS,
    };
    prices.list().of(&target.spec).cost(&Usage {
        requests: fastest.saturating_mul(60),
        throttled: 0,
        duration_ms: 0,
    })
}

/// Minutes between measurements of an API stage: as long as its worst case cannot
/// spend more than the first-throttle allowance of its tightest budget in between,
/// from 1 to [`MetricsPlan::stage_every_max_minutes`]. The bound this gives: an
/// attack on the stage spends at most that allowance before the guard sees it.
pub fn stage_every(
    target: &Target,
    budgets: &[Budget],
    prices: &Prices,
    now: DateTime<Utc>,
    settings: &GuardSettings,
    plan: &MetricsPlan,
) -> u64 {
    let worst = stage_worst_per_minute(target, prices);
    let slack = budgets
        .iter()
        .filter(|b| !b.protected && b.scope.covers(target))
        .map(|b| first_throttle_spend(b, now, settings))
        .min();
    let max = plan.stage_every_max_minutes.max(1);
    match slack {
        None => max,
        Some(_) if !worst.is_positive() => max,
        Some(slack) => u64::try_from(slack.picos() / worst.picos())
            .unwrap_or(0)
            .clamp(1, max),
    }
}

/// What the tripwire reads in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Tripwire<'a> {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// The budgets.
    pub budgets: &'a [Budget],
    /// The targets, in the pass's order.
    pub targets: &'a [Target],
    /// Whether each target (by position) was measured in full this pass.
    pub hot: &'a [bool],
    /// Each target's short-window spend as measured (zero for cold ones).
    pub short_spend: &'a [Money],
    /// Each budget's spend-to-date as the pass knows it (by position).
    pub spent: &'a [Money],
    /// What cold functions served in the short window: the account aggregate minus
    /// the hot functions.
    pub residual_short: Usage,
    /// What cold functions served since their spend-to-date was last refreshed.
    pub residual_since_sweep: Usage,
    /// List prices.
    pub prices: &'a Prices,
    /// The guard's settings (windows).
    pub settings: &'a GuardSettings,
}

/// Why a pass measures every cold function now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The budget the residual could lift to its first throttle level.
    pub budget: BudgetId,
    /// The most the budget's cold members could have spent in the short window.
    pub bound: Money,
    /// What the budget's measured members spent in the short window.
    pub measured: Money,
}

/// The first budget whose cold functions, at the most the residual lets them have
/// spent, could have reached its first throttle level on the short window (or
/// exhausted it since the last sweep); `None` when measuring them cannot change any
/// decision.
pub fn trip(wire: &Tripwire<'_>) -> Option<Trip> {
    let short_s = wire.settings.short_window_minutes * 60;
    wire.budgets.iter().enumerate().find_map(|(b, budget)| {
        let mut measured = Money::ZERO;
        let mut bound = Money::ZERO;
        let mut since_sweep = Money::ZERO;
        let mut has_cold = false;
        for (i, target) in members(budget, wire.targets) {
            if wire.hot.get(i).copied().unwrap_or(false) {
                measured += wire.short_spend.get(i).copied().unwrap_or(Money::ZERO);
            } else if let TargetSpec::Function { .. } = target.spec {
                has_cold = true;
                let price = wire.prices.list().of(&target.spec);
                bound = bound.max(price.cost(&wire.residual_short));
                since_sweep = since_sweep.max(price.cost(&wire.residual_since_sweep));
            }
        }
        if !has_cold {
            return None;
        }
        let (_, end) = budget.period.bounds(wire.now);
        let remaining_s = (end - wire.now).num_seconds().max(60);
        let spent = wire.spent.get(b).copied().unwrap_or(Money::ZERO) + since_sweep;
        let remaining = (budget.amount - spent).non_negative();
        let burn = BurnRate::of(measured + bound, short_s, remaining, remaining_s);
        (!remaining.is_positive() || burn >= first_throttle(budget)).then(|| Trip {
            budget: budget.id.clone(),
            bound,
            measured,
        })
    })
}
