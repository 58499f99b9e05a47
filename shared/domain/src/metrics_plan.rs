//! What the evaluator measures each pass, so that the guard's own CloudWatch bill
//! follows exposure rather than the number of functions.
//!
//! GetMetricData bills per metric requested ($0.01 per 1,000 metrics, "Amazon
//! CloudWatch Pricing"), and Lambda publishes its metrics without dimensions as
//! well as per function: "Across All Functions (none) – View aggregate metrics for
//! all functions in the current AWS Region" ("Working with Lambda function
//! metrics", Lambda Developer Guide). So one pass asks for:
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
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::metrics_plan::{stage_every, stage_worst_per_minute};
//! use dowguard_domain::{Budget, BudgetSpec, GuardSettings, Limits, PriceBook, Target, TargetId, TargetSpec};
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), Limits::unset(id.kind()));
//! // No throttle of its own: the account's 10,000 requests a second, $2.10 a minute.
//! assert_eq!(stage_worst_per_minute(&stage, &prices).to_string(), "$2.10");
//! let day = |amount: &str| Budget::parse(BudgetSpec {
//!     id: "shop".into(), scope: id.to_string(), period: "day".into(), amount: amount.into(),
//!     thresholds: vec![], mode: "enforce".into(), owner: "finance@example.com".into(),
//!     topic: None, floors: Default::default(), protected: false,
//! });
//! let settings = GuardSettings::default();
//! // $50 a day allows $0.69 in five minutes at 4x: measured every minute.
//! assert_eq!(stage_every(&stage, &[day("50")?], &prices, now, &settings), 1);
//! // $5,000 a day allows $69: measured every 33 minutes.
//! assert_eq!(stage_every(&stage, &[day("5000")?], &prices, now, &settings), 33);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use crate::budget::{Budget, BudgetId};
use crate::coverage::members;
use crate::decide::{BudgetReport, ByTarget, GuardSettings};
use crate::judge::{burn, calm_bar, first_throttle};
use crate::money::Money;
use crate::pricebook::Prices;
use crate::state::{GuardState, Phase};
use crate::target::{Limits, Target, TargetId, TargetKind, TargetSpec, Throttle};
use crate::usage::{MinuteUsage, TargetMetrics, Usage};
use crate::window::Frame;

/// Lambda's account-level metrics the tripwire reads: `Invocations` and `Duration`.
pub const AGGREGATE_METRICS: u64 = 2;

/// The request rate API Gateway allows an account in a Region when a stage sets no
/// throttle of its own: 10,000 requests per second ("Amazon API Gateway quotas",
/// throttle quota per account, per Region across HTTP, REST, WebSocket and
/// WebSocket callback APIs).
pub const ACCOUNT_STAGE_RPS: u64 = 10_000;

/// The longest an API stage goes unmeasured, however large its budget: as long as
/// a sweep.
pub const STAGE_EVERY_MAX_MINUTES: u64 = 60;

/// How often the evaluator measures what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsPlan {
    /// Minutes between sweeps that refresh every measured target's spend-to-date
    /// (hourly sums since the month began).
    pub sweep_every_minutes: u64,
}

impl Default for MetricsPlan {
    fn default() -> Self {
        MetricsPlan {
            sweep_every_minutes: 60,
        }
    }
}

impl MetricsPlan {
    /// Metrics one measurement of a target requests: Lambda `Invocations` and
    /// `Duration` (plus `Throttles` when it is measured in full, as the hot set is:
    /// the demand the guard turned away), an API stage's `Count`, and none for a
    /// usage plan (its money is its stages', measured as stages).
    pub fn metrics_per_measurement(kind: TargetKind, full: bool) -> u64 {
        match kind {
            TargetKind::Function => 2 + u64::from(full),
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
    let level = first_throttle(&budget.thresholds);
    budget
        .amount
        .mul_div(
            i128::from(level.0) * i128::from(settings.short_window_minutes * 60),
            i128::from(period_s) * 1_000_000,
        )
        .unwrap_or(Money::ZERO)
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
/// from 1 to [`STAGE_EVERY_MAX_MINUTES`]. The bound this gives: an
/// attack on the stage spends at most that allowance before the guard sees it.
pub fn stage_every(
    target: &Target,
    budgets: &[Budget],
    prices: &Prices,
    now: DateTime<Utc>,
    settings: &GuardSettings,
) -> u64 {
    let worst = stage_worst_per_minute(target, prices);
    let slack = budgets
        .iter()
        .filter(|b| !b.protected && b.scope.covers(target))
        .map(|b| first_throttle_spend(b, now, settings))
        .min();
    let max = STAGE_EVERY_MAX_MINUTES;
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
    /// Each budget's members, as positions in `targets` ([`members`]).
    pub members: &'a [Vec<usize>],
    /// Whether each target (by position) was measured this pass.
    pub hot: &'a [bool],
    /// Whether each target (by position) is held or recovering (the hot set).
    pub watched: &'a [bool],
    /// Each target's short-window and long-window spend as measured (zero for cold
    /// ones).
    pub spend: &'a [(Money, Money)],
    /// Each budget's spend-to-date as the pass knows it (by position).
    pub spent: &'a [Money],
    /// What cold functions served in the short window: the account aggregate minus
    /// the hot functions.
    pub residual_short: Usage,
    /// The same over the long window.
    pub residual_long: Usage,
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
    /// The budget the residual could lift to its first throttle level; `None` when
    /// the account's aggregate was incomplete, so nothing bounds the residual.
    pub budget: Option<BudgetId>,
    /// The most the budget's cold members could have spent in the short window.
    pub bound: Money,
    /// What the budget's measured members spent in the short window.
    pub measured: Money,
}

impl Trip {
    /// A trip for want of a complete aggregate.
    pub fn unbounded() -> Trip {
        Trip {
            budget: None,
            bound: Money::ZERO,
            measured: Money::ZERO,
        }
    }
}

/// Every budget whose cold functions, at the most the residual lets them have
/// spent, could have reached its first throttle level on the short window (its calm
/// bar on either window when it holds a member), or exhausted it since the last
/// sweep; none when measuring them cannot change any decision.
pub fn trip(wire: &Tripwire<'_>) -> Vec<Trip> {
    let frame = Frame::new(wire.now, wire.settings);
    let (short_s, long_s) = (frame.short_s, frame.long_s);
    wire.budgets
        .iter()
        .enumerate()
        .filter_map(|(b, budget)| {
            let mut measured = (Money::ZERO, Money::ZERO);
            let (mut bound, mut bound_long, mut since_sweep) = (Money::ZERO, Money::ZERO, Money::ZERO);
            let (mut has_cold, mut has_hot) = (false, false);
            for (i, target) in wire.members[b]
                .iter()
                .filter_map(|&i| Some((i, wire.targets.get(i)?)))
            {
                has_hot |= wire.watched.get(i).copied().unwrap_or(false);
                if wire.hot.get(i).copied().unwrap_or(false) {
                    let (short, long) = wire.spend.get(i).copied().unwrap_or_default();
                    measured = (measured.0 + short, measured.1 + long);
                } else if let TargetSpec::Function { .. } = target.spec {
                    has_cold = true;
                    let price = wire.prices.list().of(&target.spec);
                    bound = bound.max(price.cost(&wire.residual_short));
                    bound_long = bound_long.max(price.cost(&wire.residual_long));
                    since_sweep = since_sweep.max(price.cost(&wire.residual_since_sweep));
                }
            }
            if !has_cold {
                return None;
            }
            let (_, end) = frame.period(budget.period);
            let remaining_s = (end - wire.now).num_seconds().max(60);
            let spent = wire.spent.get(b).copied().unwrap_or(Money::ZERO) + since_sweep;
            let remaining = (budget.amount - spent).non_negative();
            let short = burn(measured.0 + bound, short_s, remaining, remaining_s);
            // A budget with a member held or watched must not look calm for want of its
            // other members' figures: it trips at the calm bar, on either window.
            let tripped = if has_hot {
                let long = burn(measured.1 + bound_long, long_s, remaining, remaining_s);
                let bar = calm_bar(&budget.thresholds, wire.settings);
                short >= bar || long >= bar
            } else {
                short >= first_throttle(&budget.thresholds)
            };
            (!remaining.is_positive() || tripped).then(|| Trip {
                budget: Some(budget.id.clone()),
                bound,
                measured: measured.0,
            })
        })
        .collect()
}

/// The targets measured in full every pass: those the guard holds (throttled,
/// stopped) or has just released (recovering), and those named in `also` (e.g. the
/// alarmed target a responder pass is for). A target only watched (a notice, no
/// change) is not among them: every member of a budget on watch would be. The other
/// members of their budgets are bounded by the tripwire like any cold function, at
/// the calm bar rather than the first throttle level ([`trip`]), so that no hold is
/// lifted on missing figures.
pub fn hot_set<'s>(
    states: impl IntoIterator<Item = (&'s TargetId, &'s GuardState)>,
    also: &HashSet<TargetId>,
) -> HashSet<TargetId> {
    states
        .into_iter()
        .filter(|(_, s)| s.phase.is_tightened() || s.phase == Phase::Recovering)
        .map(|(id, _)| id.clone())
        .chain(also.iter().cloned())
        .collect()
}

/// Each budget's members, as positions in `targets`, in budget order: what
/// [`Measured::members`] takes.
pub fn members_of(budgets: &[Budget], targets: &[Target]) -> Vec<Vec<usize>> {
    budgets
        .iter()
        .map(|b| members(b, targets).map(|(i, _)| i).collect())
        .collect()
}

/// What one pass measured, for [`tripwire`].
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a, M: ?Sized> {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// The budgets.
    pub budgets: &'a [Budget],
    /// The targets.
    pub targets: &'a [Target],
    /// Each budget's members, as positions in `targets` ([`members`]), in budget
    /// order.
    pub members: &'a [Vec<usize>],
    /// Each target's figures as fetched: fresh minutes for the targets measured
    /// this pass, spend-to-date for the others.
    pub metrics: &'a M,
    /// The targets measured with fresh minutes this pass.
    pub fresh: &'a HashSet<TargetId>,
    /// The hot set ([`hot_set`]): targets held or recovering.
    pub watched: &'a HashSet<TargetId>,
    /// The account's Lambda usage per minute, all functions together; `None` when
    /// CloudWatch returned it incomplete.
    pub aggregate: Option<&'a [MinuteUsage]>,
    /// The decision on these figures (for each budget's spend-to-date).
    pub reports: &'a [BudgetReport],
    /// List prices.
    pub prices: &'a Prices,
    /// The guard's settings (windows).
    pub settings: &'a GuardSettings,
}

/// [`trip`] on what a pass measured: the residual is the aggregate minus the
/// functions measured fresh, minute by minute (never below zero), over the short
/// and long windows and since the oldest spend-to-date of an unmeasured function.
pub fn tripwire<M: ByTarget<TargetMetrics> + ?Sized>(m: &Measured<'_, M>) -> Vec<Trip> {
    let Some(aggregate) = m.aggregate else {
        // Nothing bounds what the others served.
        return vec![Trip::unbounded()];
    };
    let frame = Frame::new(m.now, m.settings);
    let of = |i: usize, t: &Target| m.metrics.for_target(i, &t.id);
    let is_fresh = |t: &Target| m.fresh.contains(&t.id);
    let function = |t: &Target| t.id.kind() == TargetKind::Function;
    let swept = m
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| function(t) && !is_fresh(t))
        .filter_map(|(i, t)| of(i, t))
        .flat_map(|metrics| metrics.to_date.iter().map(|p| p.through_minute))
        .min()
        .unwrap_or(frame.end);
    let fresh: Vec<&TargetMetrics> = m
        .targets
        .iter()
        .enumerate()
        .filter(|(_, t)| function(t) && is_fresh(t))
        .filter_map(|(i, t)| of(i, t))
        .collect();
    let [residual_short, residual_long, residual_since_sweep] = residuals(aggregate, &fresh, &frame, swept);
    let spend: Vec<(Money, Money)> = m
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| match of(i, t) {
            Some(metrics) if is_fresh(t) => {
                let price = m.prices.list().of(&t.spec);
                let window = |from| price.cost(&metrics.sum(from, frame.end));
                (window(frame.short_from), window(frame.long_from))
            }
            _ => (Money::ZERO, Money::ZERO),
        })
        .collect();
    let spent = |b: &Budget| {
        m.reports
            .iter()
            .find(|r| r.budget == b.id)
            .map_or(Money::ZERO, |r| r.spent)
    };
    trip(&Tripwire {
        now: m.now,
        budgets: m.budgets,
        targets: m.targets,
        members: m.members,
        hot: &m.targets.iter().map(is_fresh).collect::<Vec<_>>(),
        watched: &m
            .targets
            .iter()
            .map(|t| m.watched.contains(&t.id))
            .collect::<Vec<_>>(),
        spend: &spend,
        spent: &m.budgets.iter().map(spent).collect::<Vec<_>>(),
        residual_short,
        residual_long,
        residual_since_sweep,
        prices: m.prices,
        settings: m.settings,
    })
}

/// The aggregate minus the `fresh` functions' minutes, over the short window, the
/// long window and after minute `swept`.
fn residuals(aggregate: &[MinuteUsage], fresh: &[&TargetMetrics], frame: &Frame, swept: i64) -> [Usage; 3] {
    let mut out = [Usage::default(); 3];
    for point in aggregate
        .iter()
        .filter(|p| p.minute > swept.min(frame.long_from - 1))
    {
        let mut rest = point.usage;
        for measured in fresh {
            let fresh = measured.sum(point.minute, point.minute);
            rest.requests = rest.requests.saturating_sub(fresh.requests);
            rest.duration_ms = rest.duration_ms.saturating_sub(fresh.duration_ms);
        }
        let windows = [
            (frame.short_from..=frame.end).contains(&point.minute),
            (frame.long_from..=frame.end).contains(&point.minute),
            point.minute > swept,
        ];
        for (total, inside) in out.iter_mut().zip(windows) {
            if inside {
                total.add(&rest);
            }
        }
    }
    out
}

/// Rounds of [`widen`] before a pass measures every function at once.
pub const MAX_ROUNDS: usize = 3;

/// One round of the tripwire over what a pass has measured so far: the functions
/// to measure next (the cold members of every budget that trips; every cold
/// function when the aggregate is incomplete or at the last round), and why. Empty
/// when the figures at hand decide as a full measurement would. A pass measures
/// what it is told and asks again with the larger fresh set: each round takes the
/// measured functions off the residual, so a tight budget's few members are
/// measured without every other function.
pub fn widen<M: ByTarget<TargetMetrics> + ?Sized>(
    m: &Measured<'_, M>,
    detailed: &HashSet<TargetId>,
    round: usize,
) -> (HashSet<TargetId>, Vec<Trip>) {
    let trips = tripwire(m);
    if trips.is_empty() {
        return (HashSet::new(), trips);
    }
    let cold = |t: &&Target| {
        t.id.kind() == TargetKind::Function && detailed.contains(&t.id) && !m.fresh.contains(&t.id)
    };
    let everything = round + 1 >= MAX_ROUNDS || trips.iter().any(|t| t.budget.is_none());
    let next: HashSet<TargetId> = if everything {
        m.targets.iter().filter(cold).map(|t| t.id.clone()).collect()
    } else {
        m.budgets
            .iter()
            .zip(m.members)
            .filter(|(b, _)| trips.iter().any(|t| t.budget.as_ref() == Some(&b.id)))
            .flat_map(|(_, members)| members.iter().filter_map(|&i| m.targets.get(i)))
            .filter(cold)
            .map(|t| t.id.clone())
            .collect()
    };
    (next, trips)
}
