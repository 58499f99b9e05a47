//! The decision function: (budgets, states, metric windows, prices, now) →
//! (new states, actions, budget reports). Pure: no I/O, no clock, no environment.
//!
//! The contract with the shell: persist the returned states (restore points
//! included) **before** applying the actions. Deciding again on the outcome adds no
//! action; a change that did not happen is decided again (convergence).

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::action::{Action, Change, Intent, Reason, Rule, limit_changes};
use crate::budget::{Budget, BudgetId, BurnRate, Floors, Mode, Period};
use crate::coverage::Coverage;
use crate::gaps::Gaps;
use crate::money::Money;
use crate::pricebook::Prices;
use crate::state::{GuardState, Level, Phase, RestorePoint};
use crate::target::{
    AsyncConfig, Limits, Quota, QuotaPeriod, Target, TargetId, TargetKind, TargetSpec, Throttle,
};
use crate::usage::{AccountUsage, TargetMetrics, Usage, epoch_minute};

/// Tunables of the guard, with defaults that suit one-minute metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSettings {
    /// Minutes CloudWatch needs before a one-minute datapoint is complete.
    pub metric_delay_minutes: i64,
    /// Short burn-rate window (speed).
    pub short_window_minutes: i64,
    /// Long burn-rate window (confidence).
    pub long_window_minutes: i64,
    /// Hysteresis: demand must fall below this fraction (millionths) of the first
    /// throttle threshold to count as calm.
    pub hysteresis_millionths: i64,
    /// Calm minutes before original limits are restored (the cool-down).
    pub relax_after_minutes: i64,
    /// Minutes of quiet in `recovering` before the target is `normal` again.
    pub recovery_watch_minutes: i64,
    /// Minutes at a throttle level before the next level (the top one is immediate).
    pub escalation_dwell_minutes: i64,
    /// A relapse within this many minutes of the last episode counts as a strike.
    pub strike_memory_minutes: i64,
    /// Each strike doubles the cool-down, up to this many doublings.
    pub max_backoff_strikes: u32,
    /// Share of the remaining budget rate each throttle level allows (millionths),
    /// level 1 first; later levels reuse the last value.
    pub level_allowance_millionths: Vec<i64>,
    /// Group budgets throttle the biggest contributors that together make up this
    /// share (millionths) of the group's short-window demand.
    pub contributor_share_millionths: i64,
    /// Maximum event age set on async-invoked functions while throttled (60–21600).
    pub async_max_event_age_s: u32,
    /// Retry attempts set on async-invoked functions while throttled (0–2).
    pub async_max_retries: u32,
    /// Average duration assumed for a function with no served requests.
    pub default_avg_duration_ms: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            metric_delay_minutes: 2,
            short_window_minutes: 5,
            long_window_minutes: 60,
            hysteresis_millionths: 500_000,
            relax_after_minutes: 15,
            recovery_watch_minutes: 30,
            escalation_dwell_minutes: 5,
            strike_memory_minutes: 360,
            max_backoff_strikes: 3,
            level_allowance_millionths: vec![1_000_000, 500_000, 250_000],
            contributor_share_millionths: 800_000,
            async_max_event_age_s: 60,
            async_max_retries: 0,
            default_avg_duration_ms: 1_000,
        }
    }
}

impl GuardSettings {
    /// The cool-down after `strikes` relapses.
    pub fn cooldown(&self, strikes: u32) -> Duration {
        let doublings = strikes.min(self.max_backoff_strikes).min(16);
        Duration::minutes(self.relax_after_minutes.saturating_mul(1 << doublings))
    }

    fn allowance(&self, level: u8) -> i64 {
        let idx = usize::from(level.max(1)) - 1;
        self.level_allowance_millionths
            .get(idx)
            .or(self.level_allowance_millionths.last())
            .copied()
            .unwrap_or(1_000_000)
    }
}

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
    /// [50]" on such an account.
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

/// Per-target data a pass reads (metrics, states): a map by target id, or a slice
/// in the order of [`Inputs::targets`] for a caller that keeps its data that way and
/// so spares the pass a lookup per target.
pub trait ByTarget<V> {
    /// The entry of the target at `index` of `Inputs::targets`, whose id is `id`.
    fn for_target(&self, index: usize, id: &TargetId) -> Option<&V>;
    /// True when no target has an entry.
    fn is_empty(&self) -> bool;
}

impl<V, S: BuildHasher> ByTarget<V> for HashMap<TargetId, V, S> {
    fn for_target(&self, _: usize, id: &TargetId) -> Option<&V> {
        self.get(id)
    }

    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

impl<V> ByTarget<V> for [Option<V>] {
    fn for_target(&self, index: usize, _: &TargetId) -> Option<&V> {
        self.get(index).and_then(Option::as_ref)
    }

    fn is_empty(&self) -> bool {
        self.iter().all(Option::is_none)
    }
}

/// Everything one decision pass reads.
#[derive(Debug)]
pub struct Inputs<'a, G: ?Sized = HashMap<TargetId, GuardState>, M: ?Sized = HashMap<TargetId, TargetMetrics>>
{
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// All budgets.
    pub budgets: &'a [Budget],
    /// All discovered targets with their current limits.
    pub targets: &'a [Target],
    /// Guard states by target (absent = never acted on).
    pub states: &'a G,
    /// Metrics by target (absent = no traffic).
    pub metrics: &'a M,
    /// Prices of the deployment's region.
    pub prices: &'a Prices,
    /// The account's month-to-date usage (volume tiers, free tier).
    pub account_usage: AccountUsage,
    /// The account's concurrency figures.
    pub concurrency: AccountConcurrency,
    /// What the pass could not see: a budget with a gap never relaxes its members.
    pub gaps: &'a Gaps,
    /// Tunables.
    pub settings: &'a GuardSettings,
}

/// Where one budget stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Budget name.
    pub budget: BudgetId,
    /// Its period.
    pub period: Period,
    /// Mode.
    pub mode: Mode,
    /// The budget.
    pub amount: Money,
    /// Spent so far in the period (served requests only).
    pub spent: Money,
    /// Spent plus the long-window spend rate over the rest of the period.
    pub projected: Money,
    /// Short-window spend against the period's even pace (1× = on budget).
    pub burn_short: BurnRate,
    /// Long-window spend against the period's even pace.
    pub burn_long: BurnRate,
    /// Short-window demand (served + throttled) against the remaining budget.
    pub demand_short: BurnRate,
    /// Long-window demand against the remaining budget.
    pub demand_long: BurnRate,
    /// The level the figures call for.
    pub level: Level,
    /// The rule that set the level.
    pub rule: Rule,
    /// Targets the budget covers.
    pub targets: usize,
    /// A target scope that discovery did not find (budget covers nothing).
    pub missing_target: bool,
    /// Why the figures may be incomplete this pass (a service not listed, partial or
    /// ambiguous metrics, unreadable stored items); while any is, the budget's
    /// members are held where they are: never relaxed or restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

/// The outcome of one decision pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// States that changed; persist them before applying any action.
    pub states: Vec<(TargetId, GuardState)>,
    /// Actions, most expensive first within tightening, then restores, then notices.
    pub actions: Vec<Action>,
    /// One report per budget, in the order of `Inputs::budgets`.
    pub reports: Vec<BudgetReport>,
}

/// Priced figures of one target for this pass.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    short: Money,
    long: Money,
    short_demand: Money,
    long_demand: Money,
    day: Money,
    month: Money,
    /// Average ms per served request in the long window (0 if none).
    avg_ms: u64,
}

/// Per-target summary of what the budgets ask.
#[derive(Debug, Clone)]
struct Wish {
    level: Level,
    calm: bool,
    allowance: Option<i128>,
    mode: Mode,
    protected: bool,
    floors: Floors,
    /// Index of the budget that asks the most (its figures are the reason).
    driver: Option<usize>,
    fast: bool,
}

/// What one budget concluded, shared by the targets it drives.
#[derive(Debug, Clone)]
struct Judged {
    reason: Reason,
    remaining: Money,
}

/// The reason given when no budget covers a target any more.
const ORPHAN: Reason = Reason {
    budget: None,
    rule: Rule::Calm,
    level: Level::Normal,
    spent: Money::ZERO,
    amount: Money::ZERO,
    projected: Money::ZERO,
    burn_short: BurnRate(0),
    burn_long: BurnRate(0),
};

impl Wish {
    fn new() -> Self {
        Wish {
            level: Level::Normal,
            calm: true,
            allowance: None,
            mode: Mode::DryRun,
            protected: false,
            floors: Floors::default(),
            driver: None,
            fast: false,
        }
    }
}

/// `spend / window_seconds` against `allowance / horizon_seconds`, in millionths.
fn burn(spend: Money, window_s: i64, allowance: Money, horizon_s: i64) -> BurnRate {
    BurnRate::of(spend, window_s, allowance, horizon_s)
}

/// Decides one pass. See the module docs for the contract.
pub fn decide<G, M>(inputs: &Inputs<'_, G, M>) -> Decision
where
    G: ByTarget<GuardState> + ?Sized,
    M: ByTarget<TargetMetrics> + ?Sized,
{
    let settings = inputs.settings;
    let now = inputs.now;
    let end = epoch_minute(now) - 1 - settings.metric_delay_minutes;
    let short_from = end - settings.short_window_minutes + 1;
    let long_from = end - settings.long_window_minutes + 1;
    let units = inputs.prices.at(&inputs.account_usage);
    let day_bounds = Period::Day.bounds(now);
    let month_bounds = Period::Month.bounds(now);
    let (day_start, month_start) = (day_bounds.0, month_bounds.0);

    let empty = TargetMetrics::default();
    let coverage = Coverage::new(inputs.targets, inputs.budgets);
    // Each target's state, looked up once for the whole pass.
    let states: Vec<Option<&GuardState>> = if inputs.states.is_empty() {
        vec![None; inputs.targets.len()]
    } else {
        inputs
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| inputs.states.for_target(i, &t.id))
            .collect()
    };

    // 1. Price each target once.
    let figures: Vec<Figures> = inputs
        .targets
        .iter()
        .zip(&states)
        .enumerate()
        .map(|(i, (t, state))| {
            let m = inputs.metrics.for_target(i, &t.id).unwrap_or(&empty);
            let w = m.windows(end, short_from, long_from, day_start, month_start);
            let (short, long) = (w.short, w.long);
            let avg_ms = long.duration_ms.checked_div(long.requests).unwrap_or(0);
            let fallback = if avg_ms > 0 {
                avg_ms
            } else {
                state
                    .map(|s| s.avg_duration_ms)
                    .filter(|ms| *ms > 0)
                    .unwrap_or(settings.default_avg_duration_ms)
            };
            let fallback = if matches!(t.spec, TargetSpec::Function { .. }) {
                fallback
            } else {
                0
            };
            let price = units.of(&t.spec);
            let short_cost = price.cost(&short);
            let long_cost = price.cost(&long);
            // Demand equals usage when nothing was throttled: price it once.
            let demand = |usage: &Usage, cost: Money| {
                if usage.throttled == 0 {
                    cost
                } else {
                    price.cost(&usage.demand(fallback))
                }
            };
            Figures {
                short: short_cost,
                long: long_cost,
                short_demand: demand(&short, short_cost),
                long_demand: demand(&long, long_cost),
                day: price.cost(&w.day),
                month: price.cost(&w.month),
                avg_ms,
            }
        })
        .collect();

    // 2. Judge each budget and collect per-target wishes.
    let mut wishes: Vec<Option<Wish>> = vec![None; inputs.targets.len()];
    let mut reports = Vec::with_capacity(inputs.budgets.len());
    let short_s = settings.short_window_minutes * 60;
    let long_s = settings.long_window_minutes * 60;
    let mut members: Vec<usize> = Vec::new();
    let mut judged: Vec<Judged> = Vec::with_capacity(inputs.budgets.len());
    for (b, budget) in inputs.budgets.iter().enumerate() {
        let missing = !coverage.members_into(budget, &mut members);
        let budget_gaps = if inputs.gaps.is_empty() {
            Vec::new()
        } else {
            let mut g = inputs.gaps.stored.clone();
            g.extend(
                inputs
                    .gaps
                    .of_budget(budget, members.iter().map(|&i| &inputs.targets[i])),
            );
            g
        };
        let hold = !budget_gaps.is_empty();
        let (start, period_end) = match budget.period {
            Period::Day => day_bounds,
            Period::Month => month_bounds,
        };
        let period_s = (period_end - start).num_seconds().max(1);
        let remaining_s = (period_end - now).num_seconds().max(60);
        let mut total = Figures::default();
        for &i in &members {
            let f = &figures[i];
            total.short += f.short;
            total.long += f.long;
            total.short_demand += f.short_demand;
            total.long_demand += f.long_demand;
            total.day += f.day;
            total.month += f.month;
        }
        let spent = match budget.period {
            Period::Day => total.day,
            Period::Month => total.month,
        };
        let remaining = (budget.amount - spent).non_negative();
        let projected = spent
            + total
                .long
                .mul_div(i128::from(remaining_s), i128::from(long_s))
                .unwrap_or(Money::ZERO);
        let demand_short = burn(total.short_demand, short_s, remaining, remaining_s);
        let demand_long = burn(total.long_demand, long_s, remaining, remaining_s);
        let thresholds = &budget.thresholds;
        let levels = thresholds.levels();
        let (level, rule) = if !remaining.is_positive() {
            if total.short_demand.is_positive() {
                (Level::Stop, Rule::Exhausted)
            } else {
                (Level::Watch, Rule::Exhausted)
            }
        } else {
            let top = levels.len();
            let fast = levels.last().is_some_and(|t| demand_short >= *t);
            let confirmed = thresholds
                .all()
                .iter()
                .rposition(|t| demand_short >= *t && demand_long >= *t);
            match (fast, confirmed) {
                (true, _) => (Level::Throttle(top as u8), Rule::FastLane),
                (false, Some(0)) => (Level::Watch, Rule::MultiWindow),
                (false, Some(k)) => (Level::Throttle(k as u8), Rule::MultiWindow),
                (false, None) => (Level::Normal, Rule::MultiWindow),
            }
        };
        // Calm: well below the first throttle threshold, and no faster than the
        // remaining budget can pay for.
        let calm_bar = levels
            .first()
            .copied()
            .unwrap_or(thresholds.watch())
            .scale(settings.hysteresis_millionths)
            .min(thresholds.watch());
        let calm = !hold && remaining.is_positive() && demand_short < calm_bar && demand_long < calm_bar;
        let reason = Reason {
            budget: Some(budget.id.clone()),
            rule,
            level,
            spent,
            amount: budget.amount,
            projected,
            burn_short: demand_short,
            burn_long: demand_long,
        };
        reports.push(BudgetReport {
            budget: budget.id.clone(),
            period: budget.period,
            mode: budget.mode,
            amount: budget.amount,
            spent,
            projected,
            burn_short: burn(total.short, short_s, budget.amount, period_s),
            burn_long: burn(total.long, long_s, budget.amount, period_s),
            demand_short,
            demand_long,
            level,
            rule,
            targets: members.len(),
            missing_target: missing,
            gaps: budget_gaps,
        });

        // Which members the level applies to: all of a one-target budget; for a
        // group, the biggest contributors to its short-window demand.
        // `None` means every member; otherwise a sorted list of the chosen ones.
        // A stopped group stops every member. A throttled group throttles its biggest
        // contributors; what the others spend comes off the allowance, and if they alone
        // spend more than the remaining budget allows, every member is throttled.
        let remaining_rate = remaining.picos() / i128::from(remaining_s);
        let mut contributors: Option<Vec<usize>> = None;
        let mut allowance_total = remaining_rate;
        let mut shared_demand = total.short_demand;
        if members.len() > 1 && level >= Level::Throttle(1) && level < Level::Stop {
            let mut ranked: Vec<usize> = members
                .iter()
                .copied()
                .filter(|i| figures[*i].short_demand.is_positive())
                .collect();
            ranked.sort_by(|a, b| figures[*b].short_demand.cmp(&figures[*a].short_demand));
            let goal = total
                .short_demand
                .mul_div(i128::from(settings.contributor_share_millionths), 1_000_000)
                .unwrap_or(Money::ZERO);
            let mut covered = Money::ZERO;
            let mut chosen = Vec::new();
            for i in ranked {
                if covered >= goal && !chosen.is_empty() {
                    break;
                }
                covered += figures[i].short_demand;
                chosen.push(i);
            }
            let others_rate = (total.short_demand - covered).picos() / i128::from(short_s.max(1));
            if others_rate < remaining_rate {
                chosen.sort_unstable();
                contributors = Some(chosen);
                allowance_total = remaining_rate - others_rate;
                shared_demand = covered;
            }
        }
        for &i in &members {
            let wish = wishes[i].get_or_insert_with(Wish::new);
            wish.protected |= budget.protected;
            wish.floors = wish.floors.max(budget.floors);
            if budget.mode == Mode::Enforce && wish.mode == Mode::DryRun {
                // The first enforcing budget outranks every dry-run wish gathered so far.
                *wish = Wish {
                    mode: Mode::Enforce,
                    protected: wish.protected,
                    floors: wish.floors,
                    ..Wish::new()
                };
            }
            if wish.mode == Mode::Enforce && budget.mode == Mode::DryRun {
                continue;
            }
            // A usage plan has no spend of its own (its stages carry it): it takes
            // the budget's whole allowance, per API key, whenever the budget throttles.
            let plan = inputs.targets[i].id.kind() == TargetKind::UsagePlan;
            let contributes = plan || contributors.as_ref().is_none_or(|c| c.binary_search(&i).is_ok());
            let my_level = if contributes {
                level
            } else {
                level.min(Level::Watch)
            };
            if contributes || hold {
                wish.calm &= calm;
            }
            if my_level >= Level::Throttle(1) {
                let share = if !plan && shared_demand.is_positive() && members.len() > 1 {
                    Money::from_picos(allowance_total)
                        .mul_div(figures[i].short_demand.picos(), shared_demand.picos())
                        .unwrap_or(Money::ZERO)
                        .picos()
                } else {
                    allowance_total
                };
                wish.allowance = Some(wish.allowance.map_or(share, |a| a.min(share)));
            }
            if my_level > wish.level || wish.driver.is_none() {
                wish.level = wish.level.max(my_level);
                wish.driver = Some(b);
                wish.fast = rule == Rule::FastLane;
            }
        }
        judged.push(Judged { reason, remaining });
    }

    // 3. Advance each target's state machine and derive its actions.
    let mut out = Decision {
        reports,
        ..Decision::default()
    };
    let mut pool = i64::from(inputs.concurrency.unreserved_now);
    // The unreserved minimum and the account's limit, for the pool's rule.
    let minimum = (
        i64::from(inputs.concurrency.unreserved_minimum),
        i64::from(inputs.concurrency.limit),
    );
    // A target the guard never acted on that every budget finds on pace has nothing
    // to step: its fresh state stays as it is, and no action follows.
    // A target whose stored state cannot be read is left untouched: stepping it from a
    // fresh state could capture its tightened limits as the originals.
    let mut order: Vec<usize> = (0..inputs.targets.len())
        .filter(|&i| states[i].is_some() || wishes[i].as_ref().is_some_and(|w| w.level > Level::Normal))
        .filter(|&i| inputs.gaps.states.is_empty() || !inputs.gaps.states.contains_key(&inputs.targets[i].id))
        .collect();
    order.sort_by(|a, b| figures[*b].short_demand.cmp(&figures[*a].short_demand));
    for i in order {
        let target = &inputs.targets[i];
        let prev_state = states[i];
        let Some(wish) = wishes[i].take() else {
            // Not covered by any budget: a held target is released; otherwise nothing.
            // While a stored budget is unreadable, it may be the one covering it: hold.
            if let Some(prev) = prev_state
                && (prev.phase.is_tightened() || prev.phase == Phase::Recovering)
                && inputs.gaps.stored.is_empty()
            {
                let mut w = Wish::new();
                w.mode = prev.mode;
                step_target(
                    inputs,
                    &judged,
                    target,
                    &figures[i],
                    prev_state,
                    w,
                    &mut pool,
                    minimum,
                    &mut out,
                );
            }
            continue;
        };
        step_target(
            inputs,
            &judged,
            target,
            &figures[i],
            prev_state,
            wish,
            &mut pool,
            minimum,
            &mut out,
        );
    }
    out.actions.sort_by(|a, b| {
        let rank = |x: &Action| match x.intent {
            Intent::Tighten => 0,
            Intent::Restore => 1,
            Intent::Notify => 2,
        };
        rank(a).cmp(&rank(b)).then(b.priority.cmp(&a.priority))
    });
    out
}

#[allow(clippy::too_many_arguments)]
fn step_target<G: ?Sized, M: ?Sized>(
    inputs: &Inputs<'_, G, M>,
    judged: &[Judged],
    target: &Target,
    figures: &Figures,
    prev_state: Option<&GuardState>,
    mut wish: Wish,
    pool: &mut i64,
    minimum: (i64, i64),
    out: &mut Decision,
) {
    let now = inputs.now;
    let settings = inputs.settings;
    let fresh = GuardState::new(now, wish.mode);
    let prev = prev_state.cloned().unwrap_or_else(|| fresh.clone());
    let mut next = prev.clone();
    let reason: &Reason = wish.driver.map_or(&ORPHAN, |b| &judged[b].reason);
    let driver = wish.driver.map(|b| &inputs.budgets[b]);
    let priority = figures
        .short_demand
        .mul_div(3_600, settings.short_window_minutes.max(1) as i128 * 60)
        .unwrap_or(Money::ZERO);
    let mut actions: Vec<Action> = Vec::new();
    let mut notes: Vec<(String, Rule)> = Vec::new();

    // Mode changes.
    if prev.mode != wish.mode {
        match (prev.mode, prev.phase) {
            (Mode::DryRun, _) | (Mode::Enforce, Phase::Normal | Phase::Watching) => {
                next = GuardState {
                    avg_duration_ms: next.avg_duration_ms,
                    version: prev.version,
                    ..GuardState::new(now, wish.mode)
                };
            }
            (Mode::Enforce, _) => {
                // Keep enforcing until the originals are back, then switch.
                wish.mode = Mode::Enforce;
                wish.level = Level::Normal;
                if prev.phase.is_tightened() {
                    next.phase = Phase::Recovering;
                    next.since = now;
                    next.calm_since = None;
                    notes.push((
                        "enforce turned off: restoring original limits".into(),
                        Rule::ModeChange,
                    ));
                }
            }
        }
    }
    let prev_phase = next.phase;

    // Protection and manual holds cap what the budgets ask.
    let raw_level = wish.level;
    if wish.protected && wish.level >= Level::Throttle(1) {
        wish.level = Level::Watch;
        if !prev_phase.is_tightened() && prev_phase != Phase::Watching {
            notes.push(("over budget but protected: not throttled".into(), Rule::Protected));
        }
    }
    // A target the guard's role may not change is reported, never throttled.
    if !target.guarded && wish.level >= Level::Throttle(1) {
        wish.level = Level::Watch;
        if !prev_phase.is_tightened() && prev_phase != Phase::Watching {
            notes.push((
                format!(
                    "over budget but {}",
                    crate::target::unguarded_why(target.id.kind())
                ),
                Rule::NotGuarded,
            ));
        }
    }
    let held = prev.hold_until.is_some_and(|until| now < until);
    if held {
        wish.level = wish.level.min(Level::Watch);
    } else {
        next.hold_until = None;
    }

    let calm_for = |state: &GuardState| state.calm_since.map_or(Duration::zero(), |t| now - t);
    // Calm is timed only where it decides something, so that a quiet target's
    // state does not change (and need writing) on every pass.
    let timed = matches!(
        next.phase,
        Phase::Watching | Phase::Throttled { .. } | Phase::Stopped
    );
    if wish.calm && timed {
        next.calm_since.get_or_insert(now);
    } else {
        next.calm_since = None;
    }
    let cooldown = settings.cooldown(next.strikes);
    let dwell = Duration::minutes(settings.escalation_dwell_minutes);

    let mut tighten_to: Option<Level> = None;
    let mut relax = false;
    match next.phase {
        Phase::Normal | Phase::Watching => {
            if wish.level >= Level::Throttle(1) {
                tighten_to = Some(wish.level);
            } else if wish.level == Level::Watch {
                if next.phase == Phase::Normal {
                    next.phase = Phase::Watching;
                    next.since = now;
                    notes.push(("spend above the watch threshold".into(), reason.rule));
                }
            } else if next.phase == Phase::Watching
                && wish.calm
                && calm_for(&next) >= Duration::minutes(settings.relax_after_minutes)
            {
                next.phase = Phase::Normal;
                next.since = now;
            }
        }
        Phase::Throttled { level } => {
            if held {
                relax = true;
            } else if wish.level == Level::Stop {
                tighten_to = Some(Level::Stop);
            } else if let Level::Throttle(k) = wish.level
                && k > level
                && (wish.fast || now - next.since >= dwell)
            {
                tighten_to = Some(wish.level);
            } else if wish.calm && calm_for(&next) >= cooldown {
                relax = true;
            }
        }
        Phase::Stopped => {
            if held {
                relax = true;
            } else if wish.level < Level::Stop {
                if wish.calm && calm_for(&next) >= cooldown {
                    relax = true;
                } else if let Level::Throttle(_) = wish.level
                    && now - next.since >= dwell
                {
                    // A new period has begun: loosen to the level the budget asks.
                    tighten_to = Some(wish.level);
                }
            }
        }
        Phase::Recovering => {
            if wish.level >= Level::Throttle(1) {
                let level = match wish.level {
                    Level::Throttle(k) => Level::Throttle(k.max(next.peak_level)),
                    other => other,
                };
                next.strikes = next.strikes.saturating_add(1);
                notes.push((
                    "surge while recovering: back to the peak level".into(),
                    Rule::Relapse,
                ));
                tighten_to = Some(level);
            } else if now - next.since >= Duration::minutes(settings.recovery_watch_minutes)
                && (wish.mode == Mode::DryRun
                    || next
                        .restore_point
                        .as_ref()
                        .is_none_or(|rp| rp.limits == target.limits))
            {
                next.phase = Phase::Normal;
                next.since = now;
                next.restore_point = None;
                next.applied = None;
                next.peak_level = 0;
                if wish.mode != prev.mode {
                    next.mode = wish.mode;
                }
                notes.push(("recovered: original limits in place".into(), Rule::Calm));
            }
        }
    }

    let apply = wish.mode == Mode::Enforce;
    if let Some(level) = tighten_to {
        if next.restore_point.is_none() {
            next.restore_point = Some(RestorePoint {
                limits: target.limits.clone(),
                captured_at: now,
            });
            let was_normal_for = now - prev.since;
            if prev.phase == Phase::Normal
                && was_normal_for < Duration::minutes(settings.strike_memory_minutes)
                && prev.peak_level > 0
            {
                next.strikes = next.strikes.saturating_add(1);
            }
        }
        let original = next
            .restore_point
            .as_ref()
            .map_or(&target.limits, |rp| &rp.limits);
        let escalating = next.phase.is_tightened() && prev_phase != Phase::Stopped;
        let previous = if escalating { next.applied.as_ref() } else { None };
        let remaining = wish.driver.map_or(Money::ZERO, |b| judged[b].remaining);
        let period = driver.map_or(Period::Day, |b| b.period);
        let mut limits = limits_for(
            inputs,
            target,
            figures,
            &wish,
            (level, remaining, period),
            original,
            previous,
        );
        if apply {
            reserve_from_pool(target, &mut limits, &wish, pool, minimum, &mut notes);
        }
        next.phase = match level {
            Level::Stop => Phase::Stopped,
            Level::Throttle(k) => Phase::Throttled { level: k },
            _ => next.phase,
        };
        if let Level::Throttle(k) = level {
            next.peak_level = next.peak_level.max(k);
        }
        next.since = now;
        next.calm_since = None;
        next.applied = Some(limits.clone());
        if figures.avg_ms > 0 {
            next.avg_duration_ms = figures.avg_ms;
        }
        let rule = if prev_phase == Phase::Recovering {
            Rule::Relapse
        } else {
            reason.rule
        };
        push_changes(
            &mut actions,
            target,
            &target.limits,
            &limits,
            Intent::Tighten,
            &wish,
            apply,
            priority,
            reason,
            rule,
        );
        notes.push((format!("{} → {}", prev_phase.name(), next.phase.name()), rule));
    } else if relax {
        next.phase = Phase::Recovering;
        next.since = now;
        next.calm_since = None;
        let rule = if held { Rule::Released } else { Rule::Calm };
        if let Some(rp) = &next.restore_point {
            push_changes(
                &mut actions,
                target,
                &target.limits,
                &rp.limits,
                Intent::Restore,
                &wish,
                apply,
                priority,
                reason,
                rule,
            );
        }
        notes.push((
            format!("{} → recovering: restoring original limits", prev_phase.name()),
            rule,
        ));
    } else if apply && target.guarded && prev.mode == Mode::Enforce && prev.since < now {
        // Converge: limits should be what the state says they are. Not in the
        // minute the state was written: another pass (the alarm responder beside
        // the evaluator) may be applying that very change right now, and applying
        // it twice is what convergence must never do. A change that really failed
        // is applied on the next minute's pass.
        let want = match next.phase {
            Phase::Throttled { .. } | Phase::Stopped => next.applied.as_ref().map(|l| (l, Intent::Tighten)),
            Phase::Recovering => next
                .restore_point
                .as_ref()
                .map(|rp| (&rp.limits, Intent::Restore)),
            Phase::Normal | Phase::Watching => None,
        };
        if let Some((limits, intent)) = want
            && *limits != target.limits
        {
            push_changes(
                &mut actions,
                target,
                &target.limits,
                limits,
                intent,
                &wish,
                true,
                priority,
                reason,
                Rule::Converge,
            );
        }
    }

    if raw_level != wish.level && wish.protected && notes.iter().any(|(_, r)| *r == Rule::Protected) {
        // Say what the unprotected guard would have done.
        notes.retain(|(_, r)| *r != Rule::Protected);
        notes.push((
            format!("over budget ({raw_level:?}) but protected: not throttled"),
            Rule::Protected,
        ));
    }
    for (text, rule) in notes {
        let mut r = reason.clone();
        r.rule = rule;
        let mode_note = if apply { "" } else { " [dry-run: nothing changed]" };
        actions.push(Action {
            target: target.id.clone(),
            change: Change::Notify {
                topic: driver.and_then(|b| b.topic.clone()),
                subject: format!("dowguard: {} {}", target.id, text),
                message: format!("{}: {text}{mode_note}. {}", target.id, r.summary()),
            },
            intent: Intent::Notify,
            mode: wish.mode,
            apply: true,
            priority,
            reason: r,
        });
    }
    if *prev_state.unwrap_or(&fresh) != next {
        out.states.push((target.id.clone(), next));
    }
    out.actions.extend(actions);
}

/// Keeps the account's unreserved concurrency at or above its minimum: a reservation
/// that would break it is lowered (never below the floor) or not made.
fn reserve_from_pool(
    target: &Target,
    limits: &mut Limits,
    wish: &Wish,
    pool: &mut i64,
    (minimum, limit): (i64, i64),
    notes: &mut Vec<(String, Rule)>,
) {
    let (
        Limits::Function {
            reserved_concurrency: current,
            ..
        },
        Limits::Function {
            reserved_concurrency: Some(planned),
            ..
        },
    ) = (&target.limits, &mut *limits)
    else {
        return;
    };
    let held_now = i64::from(current.unwrap_or(0));
    let delta = i64::from(*planned) - held_now;
    if delta <= 0 || *pool - delta >= minimum {
        *pool -= delta;
        return;
    }
    let room = (*pool - minimum).max(0);
    let fits = held_now + room;
    let floor = i64::from(wish.floors.concurrency);
    // What is left would be a reservation of 0 on a function that draws on the pool:
    // a stop where only a throttle was asked. That is the stop level's decision.
    let would_stop = fits == 0 && current.is_none();
    if fits >= floor && !would_stop {
        notes.push((
            format!("reserved concurrency lowered from {planned} to {fits} to keep {minimum} unreserved"),
            Rule::UnreservedMinimum,
        ));
        *planned = u32::try_from(fits).unwrap_or(0);
        *pool -= fits - held_now;
    } else {
        let why = if limit <= minimum {
            format!(
                "the pool is too small to throttle by reservation: the account's concurrency limit is {limit} and it must keep {minimum} unreserved, so only a stop (reserving 0) can hold this function"
            )
        } else if would_stop {
            format!(
                "the pool is too small to throttle by reservation: {} of the account's unreserved concurrency is left and it must keep {minimum}, so only a stop (reserving 0) can hold this function",
                (*pool).max(0)
            )
        } else {
            format!("the account must keep {minimum} unreserved and the floor is {floor}")
        };
        notes.push((
            format!("cannot reserve {planned}: {why}"),
            Rule::UnreservedMinimum,
        ));
        if let Limits::Function {
            reserved_concurrency, ..
        } = limits
        {
            *reserved_concurrency = *current;
        }
    }
}

/// The limits for `level`, never looser than the original or (when escalating) than
/// the previous level, never below the floors.
fn limits_for<G: ?Sized, M: ?Sized>(
    inputs: &Inputs<'_, G, M>,
    target: &Target,
    figures: &Figures,
    wish: &Wish,
    (level, remaining, period): (Level, Money, Period),
    original: &Limits,
    previous: Option<&Limits>,
) -> Limits {
    let settings = inputs.settings;
    let price = inputs.prices.at(&inputs.account_usage).of(&target.spec);
    let floors = wish.floors;
    let allowance_per_s = match level {
        Level::Throttle(k) => {
            wish.allowance
                .unwrap_or(0)
                .saturating_mul(i128::from(settings.allowance(k)))
                / 1_000_000
        }
        _ => 0,
    };
    let stop = level == Level::Stop;
    let request_price = price.request();
    let rate_for = |per_s: i128| -> u64 {
        if stop {
            0
        } else {
            request_price.units_for(Money::from_picos(per_s))
        }
    };
    let clamp_throttle = |rps: u64, original: Option<Throttle>, previous: Option<Throttle>| -> Throttle {
        let mut rate = rps.max(u64::from(floors.rate));
        let mut burst = rps.max(u64::from(floors.burst));
        for cap in [original, previous].into_iter().flatten() {
            let cap_rate = cap.rate_limit.floor().try_into().unwrap_or(u64::MAX);
            rate = rate.min(cap_rate.max(u64::from(floors.rate)));
            burst = burst.min(u64::from(cap.burst_limit).max(u64::from(floors.burst)));
        }
        Throttle {
            rate_limit: rust_decimal::Decimal::from(rate.min(1_000_000)),
            burst_limit: u32::try_from(burst.min(1_000_000)).unwrap_or(1_000_000),
        }
    };
    match (&target.spec, original) {
        (
            TargetSpec::Function { async_invoked, .. },
            Limits::Function {
                reserved_concurrency,
                async_config,
            },
        ) => {
            let concurrency = if stop {
                0
            } else {
                // Cost of one busy execution environment for a second.
                let avg_ms = if figures.avg_ms > 0 {
                    figures.avg_ms
                } else {
                    settings.default_avg_duration_ms
                };
                price
                    .per_busy_second(avg_ms)
                    .units_for(Money::from_picos(allowance_per_s))
            };
            let mut reserved = concurrency.max(u64::from(floors.concurrency));
            let prev_reserved = match previous {
                Some(Limits::Function {
                    reserved_concurrency: r,
                    ..
                }) => *r,
                _ => None,
            };
            for cap in [*reserved_concurrency, prev_reserved].into_iter().flatten() {
                reserved = reserved.min(u64::from(cap).max(u64::from(floors.concurrency)));
            }
            let reserved = reserved.min(u64::from(inputs.concurrency.limit));
            let async_config = if *async_invoked {
                let age = settings.async_max_event_age_s.clamp(60, 21_600);
                let retries = settings.async_max_retries.min(2);
                let original = async_config.as_ref();
                // The whole config: the original's destinations stay where they were.
                Some(AsyncConfig {
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
                })
            } else {
                async_config.clone()
            };
            Limits::Function {
                reserved_concurrency: Some(u32::try_from(reserved).unwrap_or(u32::MAX)),
                async_config,
            }
        }
        (_, Limits::Stage { throttle, overrides }) => {
            let (prev, prev_overrides) = match previous {
                Some(Limits::Stage { throttle, overrides }) => (*throttle, Some(overrides)),
                _ => (None, None),
            };
            let stage = clamp_throttle(rate_for(allowance_per_s), *throttle, prev);
            // A method or route with a throttle of its own escapes the stage's: cap
            // each at the stage's new throttle, never looser than its own original or
            // its previous level, never below the floors. One added since the
            // restore point was taken is capped too, its current value standing in
            // for the original.
            let current = match &target.limits {
                Limits::Stage { overrides, .. } => Some(overrides),
                _ => None,
            };
            let keys = overrides
                .keys()
                .chain(current.into_iter().flat_map(|c| c.keys()))
                .collect::<std::collections::BTreeSet<_>>();
            let overrides = keys
                .into_iter()
                .map(|key| {
                    let own = overrides
                        .get(key)
                        .or_else(|| current.and_then(|c| c.get(key)))
                        .copied()
                        .flatten();
                    let prev = prev_overrides.and_then(|p| p.get(key)).copied().flatten();
                    let capped = clamp_override(stage, [own, prev], floors);
                    (key.clone(), Some(capped))
                })
                .collect();
            Limits::Stage {
                throttle: Some(stage),
                overrides,
            }
        }
        (_, Limits::UsagePlan { throttle, quota }) => {
            let (prev_t, prev_q) = match previous {
                Some(Limits::UsagePlan { throttle, quota }) => (*throttle, *quota),
                _ => (None, None),
            };
            let t = clamp_throttle(rate_for(allowance_per_s), *throttle, prev_t);
            // Quota: what the rest of the budget buys, per key, for the budget's period.
            let affordable = request_price.units_for(remaining).max(1);
            let period = match period {
                Period::Day => QuotaPeriod::Day,
                Period::Month => QuotaPeriod::Month,
            };
            let q = [*quota, prev_q]
                .into_iter()
                .flatten()
                .filter(|q| q.period == period)
                .map(|q| q.limit)
                .fold(affordable, u64::min);
            Limits::UsagePlan {
                throttle: Some(t),
                quota: Some(Quota {
                    limit: q,
                    period,
                    offset: quota.map_or(0, |q| q.offset),
                }),
            }
        }
        // A spec that does not match its limits (discovery raced a change): keep them.
        (_, other) => other.clone(),
    }
}

/// An override's throttle while its stage is tightened: the stage's throttle, never
/// looser than any of `caps` (the override's own original and previous level),
/// never below the floors.
fn clamp_override(stage: Throttle, caps: [Option<Throttle>; 2], floors: Floors) -> Throttle {
    let mut rate = stage.rate_limit;
    let mut burst = stage.burst_limit;
    for cap in caps.into_iter().flatten() {
        rate = rate.min(
            cap.rate_limit
                .floor()
                .max(rust_decimal::Decimal::from(floors.rate)),
        );
        burst = burst.min(cap.burst_limit.max(floors.burst));
    }
    Throttle {
        rate_limit: rate,
        burst_limit: burst,
    }
}

#[allow(clippy::too_many_arguments)]
fn push_changes(
    actions: &mut Vec<Action>,
    target: &Target,
    from: &Limits,
    to: &Limits,
    intent: Intent,
    wish: &Wish,
    apply: bool,
    priority: Money,
    reason: &Reason,
    rule: Rule,
) {
    let mut reason = reason.clone();
    reason.rule = rule;
    let mut push = |change: Change| {
        actions.push(Action {
            target: target.id.clone(),
            change,
            intent,
            mode: wish.mode,
            apply,
            priority,
            reason: reason.clone(),
        });
    };
    for change in limit_changes(&target.id, from, to, intent) {
        push(change);
    }
}
