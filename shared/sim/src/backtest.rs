//! The backtest: an account's own recorded traffic replayed through the simulator's
//! dowguard strategy, to answer "what would the guard have done to us?" before it
//! is switched from dry-run to enforce.
//!
//! The history is what CloudWatch recorded per target (requests and, for
//! functions, the duration sum) at one resolution: one minute, five minutes or an
//! hour (GetMetricData keeps one-minute points 15 days, five-minute points 63 days
//! and hourly points 455 days: "GetMetricData", Amazon CloudWatch API Reference).
//! A coarser point is spread evenly over its minutes. The recorded requests are the
//! demand the replay serves: the history cannot tell a customer from an attacker,
//! so every request is counted as one the guard may have refused.
//!
//! Every budget is replayed in `enforce` mode (the question is what enforcing would
//! have done); protected budgets stay protected. The replay runs the unguarded
//! account beside it, so the money saved is the difference of the two.

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::{Budget, Mode, Money, Period};
use serde::Serialize;

use crate::engine::{Strategy, run_strategies};
use crate::episodes::Episode;
use crate::report::{PeriodOutcome, Report};
use crate::scenario::{Baselines, GuardConfig, Scenario, SimTarget};
use crate::traffic::{CsvTrace, Demand, Traffic};
use crate::{SimError, invalid};

/// What CloudWatch recorded for one target over one point of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Index of the target in [`History::targets`].
    pub target: usize,
    /// Minutes from the history's start to the point's start.
    pub minute: u32,
    /// Requests served (Lambda `Invocations`, API Gateway `Count`).
    pub requests: u64,
    /// Lambda `Duration` sum in milliseconds (0 for stages).
    pub duration_ms: u64,
}

/// An account's recorded traffic over a range.
#[derive(Debug, Clone)]
pub struct History {
    /// Start of minute 0 (a whole minute).
    pub start: DateTime<Utc>,
    /// Minutes covered.
    pub minutes: u32,
    /// Minutes per recorded point: 1, 5 or 60.
    pub resolution_minutes: u32,
    /// The targets, as discovered now (their limits are the ones replayed).
    pub targets: Vec<SimTarget>,
    /// The points, in any order.
    pub recorded: Vec<Recorded>,
}

impl History {
    /// The history as one-minute demand: each point spread evenly over its
    /// minutes (the first minutes take the remainder), at the point's average
    /// duration per request.
    pub fn trace(&self) -> Result<CsvTrace, SimError> {
        let step = self.resolution_minutes.max(1);
        let mut points: Vec<&Recorded> = self.recorded.iter().filter(|r| r.requests > 0).collect();
        points.sort_by_key(|r| (r.minute, r.target));
        let mut rows: Vec<(u32, usize, Demand)> = Vec::with_capacity(points.len() * step as usize);
        for r in points {
            if r.target >= self.targets.len() {
                return Err(invalid(
                    "history",
                    format!("a point names target #{} of {}", r.target, self.targets.len()),
                ));
            }
            let avg_duration_ms = if r.duration_ms == 0 {
                0
            } else {
                r.duration_ms.div_ceil(r.requests).clamp(1, 900_000)
            };
            let (each, extra) = (r.requests / u64::from(step), r.requests % u64::from(step));
            for k in 0..step {
                let minute = r.minute + k;
                let legit = each + u64::from(u64::from(k) < extra);
                if legit == 0 || minute >= self.minutes {
                    continue;
                }
                rows.push((
                    minute,
                    r.target,
                    Demand {
                        legit,
                        attack: 0,
                        avg_duration_ms,
                    },
                ));
            }
        }
        rows.sort_by_key(|(minute, target, _)| (*minute, *target));
        CsvTrace::from_rows(rows)
    }
}

impl History {
    /// The one-minute history an account would have recorded under `scenario`'s
    /// traffic if every request had been served: what the tests seed CloudWatch
    /// with, and a way to try the backtest on the built-in scenarios.
    pub fn of_scenario(scenario: &Scenario) -> History {
        let minute_of_day = u32::try_from(
            (scenario.start
                - scenario
                    .start
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc())
            .num_minutes(),
        )
        .unwrap_or(0);
        let mut cursor = scenario.traffic.cursor(minute_of_day);
        let mut demand = vec![Demand::default(); scenario.targets.len()];
        let mut recorded = Vec::new();
        for minute in 0..scenario.minutes {
            cursor.fill(minute, &mut demand);
            for (target, d) in demand.iter().enumerate() {
                let requests = d.legit + d.attack;
                if requests == 0 {
                    continue;
                }
                let sim = &scenario.targets[target];
                let avg = if d.avg_duration_ms > 0 {
                    d.avg_duration_ms
                } else {
                    sim.avg_duration_ms
                };
                let is_function = sim.id().kind() == dowguard_domain::TargetKind::Function;
                recorded.push(Recorded {
                    target,
                    minute,
                    requests,
                    duration_ms: if is_function { requests * avg.max(1) } else { 0 },
                });
            }
        }
        History {
            start: scenario.start,
            minutes: scenario.minutes,
            resolution_minutes: 1,
            targets: scenario.targets.clone(),
            recorded,
        }
    }
}

/// How the replay runs the guard: the deployment's settings.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The evaluator's schedule and the core's settings.
    pub guard: GuardConfig,
    /// Prices of the account's region.
    pub prices: dowguard_domain::Prices,
    /// Lambda's account concurrency limit.
    pub account_concurrency: u32,
}

/// The scenario a backtest replays: the history, the budgets (in enforce mode), the
/// deployment's settings.
pub fn scenario(history: &History, budgets: &[Budget], replay: &Replay) -> Result<Scenario, SimError> {
    if budgets.is_empty() {
        return Err(invalid(
            "budgets",
            "no budget to replay: set one with `dowguard budgets set` or pass --budgets FILE",
        ));
    }
    if history.minutes == 0 {
        return Err(invalid("range", "the range holds no whole minute"));
    }
    let budgets = budgets
        .iter()
        .cloned()
        .map(|mut b| {
            b.mode = Mode::Enforce;
            b
        })
        .collect();
    Ok(Scenario {
        name: "backtest".into(),
        description: format!(
            "the account's recorded traffic from {} for {} minutes",
            history.start.format("%Y-%m-%d %H:%M UTC"),
            history.minutes
        ),
        start: history.start,
        minutes: history.minutes,
        prices: replay.prices.clone(),
        account_concurrency: replay.account_concurrency,
        guard: replay.guard.clone(),
        baselines: Baselines::default(),
        targets: history.targets.clone(),
        budgets,
        traffic: Traffic::Csv(history.trace()?),
        expect: None,
    })
}

/// One budget's backtest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetBacktest {
    /// The budget.
    pub budget: String,
    /// Its scope, as written.
    pub scope: String,
    /// Day or month.
    pub period: Period,
    /// Its amount per period.
    pub amount: Money,
    /// Its mode in the table (the replay enforces every budget).
    pub mode: Mode,
    /// Protected: watched, never throttled.
    pub protected: bool,
    /// When the guard had its attention.
    pub episodes: Vec<Episode>,
    /// Requests of its scope in the history.
    pub requests: u64,
    /// Requests the guard would have refused.
    pub refused: u64,
    /// Spend of its scope as recorded.
    pub spend_recorded: Money,
    /// Spend of its scope with the guard enforcing.
    pub spend_guarded: Money,
    /// The money the guard would have saved.
    pub saved: Money,
    /// Overspend as recorded (summed over periods).
    pub overspend_recorded: Money,
    /// Overspend with the guard enforcing.
    pub overspend_guarded: Money,
    /// Every period of the range within the amount, with the guard enforcing.
    pub within_budget: bool,
    /// The periods, with the guard enforcing (the first and the last may be
    /// partial: `complete` says so).
    pub periods: Vec<PeriodOutcome>,
}

/// What the backtest found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backtest {
    /// Start of the range.
    pub start: DateTime<Utc>,
    /// End of the range.
    pub end: DateTime<Utc>,
    /// Minutes per recorded point.
    pub resolution_minutes: u32,
    /// Targets replayed.
    pub targets: usize,
    /// Per budget.
    pub budgets: Vec<BudgetBacktest>,
    /// Would the guard have changed any limit?
    pub throttled: bool,
    /// Limit changes that would have tightened.
    pub tightenings: u64,
    /// The simulator's report of the replay (dowguard and unguarded).
    #[serde(skip)]
    pub report: Report,
}

/// Replays the scenario built by [`scenario`] from a history of
/// `resolution_minutes`; `budgets` are the budgets as stored (their modes are
/// reported as they are).
pub fn run(scenario: &Scenario, budgets: &[Budget], resolution_minutes: u32) -> Backtest {
    let report = run_strategies(scenario, &[Strategy::Dowguard, Strategy::Unguarded]);
    let guarded = report.strategy(Strategy::Dowguard);
    let recorded = report.strategy(Strategy::Unguarded);
    let per_budget = budgets
        .iter()
        .enumerate()
        .map(|(b, budget)| {
            let periods_of = |s: Option<&crate::StrategyReport>| -> Vec<PeriodOutcome> {
                s.and_then(|s| s.budgets.get(b))
                    .map(|o| o.periods.clone())
                    .unwrap_or_default()
            };
            let (g, u) = (periods_of(guarded), periods_of(recorded));
            let sum = |periods: &[PeriodOutcome], f: fn(&PeriodOutcome) -> Money| -> Money {
                periods.iter().map(f).sum()
            };
            let spend_guarded = sum(&g, |p| p.spend);
            let spend_recorded = sum(&u, |p| p.spend);
            BudgetBacktest {
                budget: budget.id.to_string(),
                scope: budget.scope.to_string(),
                period: budget.period,
                amount: budget.amount,
                mode: budget.mode,
                protected: budget.protected,
                episodes: guarded
                    .map(|s| {
                        s.episodes
                            .iter()
                            .filter(|e| e.budget == budget.id.to_string())
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default(),
                requests: g.iter().map(|p| p.requests).sum(),
                refused: g.iter().map(|p| p.refused).sum(),
                spend_recorded,
                spend_guarded,
                saved: (spend_recorded - spend_guarded).non_negative(),
                overspend_recorded: sum(&u, |p| p.overspend),
                overspend_guarded: sum(&g, |p| p.overspend),
                within_budget: g.iter().all(|p| p.overspend == Money::ZERO),
                periods: g,
            }
        })
        .collect();
    let tightenings = guarded.map_or(0, |s| s.tightenings);
    Backtest {
        start: scenario.start,
        end: scenario.start + Duration::minutes(i64::from(scenario.minutes)),
        resolution_minutes,
        targets: scenario.targets.len(),
        budgets: per_budget,
        throttled: tightenings > 0,
        tightenings,
        report,
    }
}
