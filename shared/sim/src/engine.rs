//! The simulation loop: one simulated account per strategy, stepped minute by minute
//! on the same traffic.
//!
//! Each minute, every target serves what its current limits allow (rejections fall
//! on legit and attack requests in proportion; an asynchronously invoked function
//! queues what it cannot run and replays it later, until the event's maximum age),
//! is billed with the price book, and reports one-minute metrics. At the end of the
//! minute the strategy looks at what it can see and may change limits, which take
//! effect from the next minute.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Duration, Timelike, Utc};
use dowguard_domain::alarm::{ALARM_RULE, AlarmBasis, desired_alarms, requests_per_minute};
use dowguard_domain::coverage::budgets_of;
use dowguard_domain::pricebook::{MB_MS_PER_GB_SECOND, UnitPrice, UnitPrices};
use dowguard_domain::window::bare_walk;
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Arch, Budget, BudgetReport, Change, GuardCost, GuardState, Inputs,
    Intent, Limits, MetricsPlan, MinuteUsage, Money, Period, PeriodUsage, Phase, Target, TargetId,
    TargetKind, TargetMetrics, TargetSpec, Throttle, Usage, coverage, decide, epoch_minute, metrics_plan,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::callers::Callers;
use crate::episodes::{Episode, Episodes, Seen};
use crate::report::{PeriodOutcome, Report};
use crate::scenario::{DEFAULT_MAX_EVENT_AGE_S, Scenario};
use crate::traffic::{Demand, Group};

/// Points kept per plotted series.
const PLOT_POINTS: u32 = 1_500;

/// A strategy that defends (or does not defend) the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Nothing stops the traffic.
    Unguarded,
    /// An AWS Budgets action: on actual spend, refreshed every few hours, sets
    /// concurrency (and stage throttles) to 0 until the budget period ends.
    BudgetsAction,
    /// AWS Cost Anomaly Detection: alerts about a day later, changes nothing.
    AnomalyDetection,
    /// One fixed alarm threshold per target → concurrency 0, restored by hand.
    KillSwitch,
    /// dowguard's decision core.
    Dowguard,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 5] = [
        Strategy::Unguarded,
        Strategy::BudgetsAction,
        Strategy::AnomalyDetection,
        Strategy::KillSwitch,
        Strategy::Dowguard,
    ];

    /// Name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Unguarded => "unguarded",
            Strategy::BudgetsAction => "budgets-action",
            Strategy::AnomalyDetection => "anomaly-detection",
            Strategy::KillSwitch => "kill-switch",
            Strategy::Dowguard => "dowguard",
        }
    }
}

/// Runs every strategy on the scenario's traffic and reports the money.
pub fn run(scenario: &Scenario) -> Report {
    // Cost Anomaly Detection changes nothing, so it lives in the unguarded account:
    // four simulated accounts make five reports.
    run_strategies(
        scenario,
        &[
            Strategy::Dowguard,
            Strategy::Unguarded,
            Strategy::BudgetsAction,
            Strategy::KillSwitch,
        ],
    )
}

/// Runs only the `simulated` strategies (Cost Anomaly Detection comes with
/// [`Strategy::Unguarded`]); the report holds those alone.
pub fn run_strategies(scenario: &Scenario, simulated: &[Strategy]) -> Report {
    let mut results: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = simulated
            .iter()
            .map(|&strategy| scope.spawn(move || World::new(scenario, strategy).run()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    if let Some(unguarded) = results.iter().find(|o| o.strategy == Strategy::Unguarded) {
        let mut anomaly = unguarded.clone();
        anomaly.strategy = Strategy::AnomalyDetection;
        anomaly.first_action = None;
        anomaly.first_reason = None;
        if let Some((minute, reason)) = &unguarded.anomaly {
            anomaly.first_action = Some(*minute);
            anomaly.first_reason = Some(reason.clone());
            anomaly.notifications = 1;
        }
        results.push(anomaly);
    }
    results.sort_by_key(|o| Strategy::ALL.iter().position(|s| *s == o.strategy));
    Report::build(scenario, results)
}

/// Money in sub-pico-dollars (1/1,024,000 of a pico-dollar): every unit price of
/// the price book is a whole number of them per request or per MB-millisecond, so
/// the simulator adds up bills exactly without a division per minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Exact(i128);

/// Sub-pico-dollars per pico-dollar.
const SUB: i128 = MB_MS_PER_GB_SECOND as i128;

impl Exact {
    pub(crate) const ZERO: Exact = Exact(0);

    /// The exact amount of a [`Money`].
    pub(crate) fn of(money: Money) -> Exact {
        Exact(money.picos().saturating_mul(SUB))
    }

    /// Rounded down to whole pico-dollars.
    pub(crate) fn money(self) -> Money {
        Money::from_picos(self.0 / SUB)
    }

    fn times(self, n: u64) -> Exact {
        // No realistic bill comes near i128's range in these units (10^20 dollars).
        Exact(self.0 * i128::from(n))
    }
}

impl std::ops::Add for Exact {
    type Output = Exact;
    fn add(self, rhs: Exact) -> Exact {
        Exact(self.0 + rhs.0)
    }
}

impl std::ops::AddAssign for Exact {
    fn add_assign(&mut self, rhs: Exact) {
        self.0 += rhs.0;
    }
}

impl std::iter::Sum for Exact {
    fn sum<I: Iterator<Item = Exact>>(iter: I) -> Exact {
        iter.fold(Exact::ZERO, |a, b| a + b)
    }
}

/// The exact price of one unit at `price` (a request, with its duration for a
/// function), in sub-pico-dollars.
fn per_unit(price: UnitPrice) -> Exact {
    let (numerator, denominator) = price.as_fraction();
    // Every denominator of the price book divides SUB (1 for requests, 1,024,000 for
    // MB-ms and for a request with its duration); a book that broke this would be
    // priced a hair low, never high.
    Exact(match denominator {
        SUB => numerator,
        1 => numerator.saturating_mul(SUB),
        d => numerator.saturating_mul(SUB) / d.max(1),
    })
}

/// Queued asynchronous events that arrived in one minute.
#[derive(Debug, Clone, Copy)]
struct Batch {
    minute: u32,
    legit: u64,
    attack: u64,
}

/// Per-target totals of one strategy's run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    pub(crate) legit_requests: u64,
    pub(crate) attack_requests: u64,
    pub(crate) legit_served: u64,
    pub(crate) attack_served: u64,
    pub(crate) legit_rejected: u64,
    pub(crate) attack_rejected: u64,
    pub(crate) spend: Exact,
    pub(crate) attack_spend: Exact,
    /// First minute with attack requests.
    pub(crate) onset: Option<u32>,
    /// True once a limit set by the strategy has refused requests after the onset.
    contained: bool,
    /// Attack spend admitted from the onset until the strategy's first effective limit.
    pub(crate) exposure: Exact,
    /// Highest attack spend in one minute.
    pub(crate) peak_attack_spend: Exact,
    /// Events still queued at the end.
    pub(crate) queued_at_end: u64,
}

/// One budget's periods as one strategy lived them.
#[derive(Debug, Clone)]
struct Track {
    members: Vec<usize>,
    period_start: DateTime<Utc>,
    next_boundary: u32,
    spend: Exact,
    legit_rejected: u64,
    /// Requests of the scope refused (legit and attack) since the run began.
    refused: u64,
    /// `refused` when the current period began.
    refused_at_period_start: u64,
    /// Requests of the scope (served or not) in the current period.
    requests: u64,
    /// Spend of the current UTC day (for the anomaly model).
    day_spend: Exact,
    next_day: u32,
    periods: Vec<PeriodOutcome>,
    /// The Budgets-action model has acted in this period.
    acted: bool,
}

/// Everything one strategy's run produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) strategy: Strategy,
    pub(crate) tallies: Vec<Tally>,
    pub(crate) periods: Vec<Vec<PeriodOutcome>>,
    pub(crate) first_action: Option<u32>,
    pub(crate) first_reason: Option<String>,
    pub(crate) tightenings: u64,
    pub(crate) restores: u64,
    pub(crate) notifications: u64,
    pub(crate) evaluations: u64,
    pub(crate) decide_time: std::time::Duration,
    pub(crate) walk_time: std::time::Duration,
    pub(crate) guard_cost: Money,
    /// Passes whose tripwire had functions measured one by one.
    pub(crate) tripwire_trips: u64,
    /// Per target that was tightened: the first minute and the path that did it.
    pub(crate) first_actions: Vec<FirstAction>,
    /// Alarms that went to ALARM (dowguard).
    pub(crate) alarm_firings: u64,
    /// Passes the alarm responder ran (dowguard).
    pub(crate) responder_passes: u64,
    /// (minute, cumulative spend of the first budget's scope).
    pub(crate) series: Vec<(u32, Money)>,
    /// The budgets' episodes (dowguard).
    pub(crate) episodes: Vec<Episode>,
    /// Callers the targeted levels held (dowguard).
    pub(crate) sources_held: u64,
    /// When (and why) Cost Anomaly Detection would alert on this account's spend.
    pub(crate) anomaly: Option<(u32, String)>,
}

/// Which of the guard's paths changed a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// The evaluator's scheduled pass (or the strategy's own rule, for baselines).
    Schedule,
    /// The alarm responder's pass on the target its alarm names.
    Alarm,
}

/// The first time a target was tightened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirstAction {
    /// The target.
    pub target: String,
    /// The minute of the run at whose end the limit took effect.
    pub minute: u32,
    /// The path that acted.
    pub path: Path,
}

/// The alarm responder's passes a minute at most: the deployment's cap
/// (`DOWGUARD_MAX_PASSES_PER_MINUTE`, 6 by default) less the evaluator's one.
const RESPONDER_PASSES_PER_MINUTE: u32 = 5;

/// The metrics the simulated CloudWatch holds for the dowguard strategy: one-minute
/// datapoints per target, and period-to-date totals of every minute before the long
/// window (so the core sums no more minutes than its windows need, and never a month).
struct Store {
    /// Per target, in the order of the targets (every target has a series).
    metrics: Vec<Option<TargetMetrics>>,
    /// Per target: how many of its oldest datapoints the totals already hold.
    folded: Vec<usize>,
    /// Per target: the day and month (first minutes) its totals are for.
    periods: Vec<Option<(i64, i64)>>,
    /// The month (first minute, first minute of the next) last looked up.
    month: (i64, i64),
    /// Every function's served minutes added up, as Lambda publishes them across
    /// all functions: the tripwire's aggregate (the last few hours).
    aggregate: Vec<MinuteUsage>,
}

/// Folded datapoints are dropped in batches of this many, so that dropping them
/// moves the rest of a series rarely.
const DROP_BATCH: usize = 32;

impl Store {
    fn new(targets: &[Target]) -> Store {
        Store {
            metrics: vec![Some(TargetMetrics::default()); targets.len()],
            folded: vec![0; targets.len()],
            periods: vec![None; targets.len()],
            month: (0, 0),
            aggregate: Vec::new(),
        }
    }

    /// Adds a function's served minute to the account's aggregate.
    fn aggregate(&mut self, point: MinuteUsage) {
        match self.aggregate.last_mut() {
            Some(last) if last.minute == point.minute => last.usage.add(&point.usage),
            _ => self.aggregate.push(point),
        }
    }

    /// Folds every minute up to `through` into the period-to-date totals.
    fn flush(&mut self, through: i64) {
        // The aggregate is read back to the oldest spend-to-date: keep two sweeps.
        let keep_from = through - 2 * 60;
        let old = self.aggregate.partition_point(|p| p.minute < keep_from);
        if old >= DROP_BATCH {
            self.aggregate.drain(..old);
        }
        for (i, series) in self.metrics.iter_mut().enumerate() {
            let Some(series) = series else { continue };
            let folded = &mut self.folded[i];
            let before = *folded;
            for m in series.minutes[*folded..]
                .iter()
                .take_while(|m| m.minute <= through)
            {
                if !(self.month.0..self.month.1).contains(&m.minute) {
                    self.month = month_range(m.minute);
                }
                let day = m.minute.div_euclid(1_440) * 1_440;
                fold(&mut series.to_date, &mut self.periods[i], (day, self.month.0), m);
                *folded += 1;
            }
            if *folded == before {
                // Nothing new folded: the totals still end where they did.
                continue;
            }
            for total in &mut series.to_date {
                total.through_minute = through;
            }
            if *folded >= DROP_BATCH {
                series.minutes.drain(..*folded);
                *folded = 0;
            }
        }
    }
}

/// Adds one minute to a series' day and month totals (`to_date[0]` and `[1]`),
/// starting a new total when the minute opens a new day or month.
fn fold(
    to_date: &mut Vec<PeriodUsage>,
    periods: &mut Option<(i64, i64)>,
    (day, month): (i64, i64),
    m: &MinuteUsage,
) {
    let known = periods.filter(|_| to_date.len() == 2);
    if known != Some((day, month)) {
        let fresh = |period, first| {
            minute_time(first).map(|start| PeriodUsage {
                period,
                start,
                through_minute: m.minute - 1,
                usage: Usage::default(),
            })
        };
        let same_month = known.is_some_and(|k| k.1 == month);
        match (fresh(Period::Day, day), same_month) {
            (Some(total), true) => to_date[0] = total,
            (Some(total), false) if let Some(month_total) = fresh(Period::Month, month) => {
                to_date.clear();
                to_date.extend([total, month_total]);
            }
            _ => {
                to_date.clear();
                *periods = None;
                return;
            }
        }
        *periods = Some((day, month));
    }
    for total in to_date.iter_mut() {
        total.usage.add(&m.usage);
    }
}

fn minute_time(epoch_minute: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(epoch_minute.checked_mul(60)?, 0)
}

/// The epoch minutes [start, end) of the month containing `epoch_minute`.
fn month_range(minute: i64) -> (i64, i64) {
    minute_time(minute).map_or((minute, minute + 1), |t| {
        let (start, end) = Period::Month.bounds(t);
        (epoch_minute(start), epoch_minute(end))
    })
}

/// One strategy's simulated account.
struct World<'a> {
    sc: &'a Scenario,
    strategy: Strategy,
    targets: Vec<Target>,
    index: HashMap<TargetId, usize>,
    queues: Vec<VecDeque<Batch>>,
    tallies: Vec<Tally>,
    tracks: Vec<Track>,
    account: AccountUsage,
    next_month: u32,
    /// The first minute at which a month, a day or a budget period ends.
    next_boundary: u32,
    units: UnitPrices,
    /// This minute's usage and cost per target.
    usage: Vec<Usage>,
    cost: Vec<Exact>,
    legit_rejected_now: Vec<u64>,
    /// This minute's refused requests per target, legit and attack.
    refused_now: Vec<u64>,
    /// This minute's requests per target (its demand).
    requests_now: Vec<u64>,
    /// Served requests of the last minutes per target (the alarms' datapoints),
    /// newest last.
    recent: Vec<VecDeque<u64>>,
    /// Per target, dowguard's alarm threshold (requests a minute) as the alarm sync
    /// keeps it, `None` without an alarm; recomputed every hour.
    alarm_threshold: Vec<Option<u64>>,
    /// The minute the thresholds were last computed.
    alarms_at: Option<u32>,
    /// Per target, whether its alarm is in ALARM.
    in_alarm: Vec<bool>,
    alarm_firings: u64,
    responder_passes: u64,
    /// Alarms kept, summed over the minutes of the run (their bill).
    alarm_minutes: u64,
    /// Per target, the first tightening's minute and path.
    first_by_target: Vec<Option<(u32, Path)>>,
    kill_threshold: Vec<u64>,
    tripped_until: Vec<Option<u32>>,
    anomaly_alert: Option<(u32, String)>,
    anomaly_checked: bool,
    store: Option<Store>,
    /// The epoch minute the scenario starts at.
    first_minute: i64,
    /// Per target, in the order of the targets.
    states: Vec<Option<GuardState>>,
    first_action: Option<u32>,
    first_reason: Option<String>,
    tightenings: u64,
    restores: u64,
    notifications: u64,
    evaluations: u64,
    decide_time: std::time::Duration,
    /// Time spent in [`bare_walk`] over the same inputs.
    walk_time: std::time::Duration,
    metrics_requested: u64,
    /// Passes whose tripwire had functions measured one by one.
    trips: u64,
    /// Per target: the minute of its last one-minute measurement and of its last
    /// spend-to-date refresh, on the metrics plan's cadence.
    measured: Vec<(Option<i64>, Option<i64>)>,
    /// Each budget's members (positions in the targets), for the tripwire.
    budget_members: Vec<Vec<usize>>,
    /// The ids of the account's functions (every one is covered: the tripwire's
    /// last round measures them all).
    functions: HashSet<TargetId>,
    series: Vec<(u32, Money)>,
    cumulative: Exact,
    step: u32,
    episodes: Episodes,
    /// The callers of the stages and what the guard holds of them (dowguard, on
    /// traffic that counts its callers).
    callers: Option<Callers>,
    /// This minute's callers' groups per target.
    groups: Vec<Vec<Group>>,
}

impl<'a> World<'a> {
    fn new(sc: &'a Scenario, strategy: Strategy) -> World<'a> {
        let targets: Vec<Target> = sc.targets.iter().map(|t| t.target.clone()).collect();
        let index = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        let n = targets.len();
        let tracks = sc
            .budgets
            .iter()
            .map(|b| Track {
                members: members(b, &targets),
                period_start: b.period.bounds(sc.start).0,
                next_boundary: minutes_until(sc.start, b.period.bounds(sc.start).1),
                spend: Exact::ZERO,
                legit_rejected: 0,
                refused: 0,
                refused_at_period_start: 0,
                requests: 0,
                day_spend: Exact::ZERO,
                next_day: minutes_until(sc.start, Period::Day.bounds(sc.start).1),
                periods: Vec::new(),
                acted: false,
            })
            .collect();
        let store = (strategy == Strategy::Dowguard).then(|| Store::new(&targets));
        let kill_threshold = if strategy == Strategy::KillSwitch {
            kill_thresholds(sc, &targets)
        } else {
            Vec::new()
        };
        World {
            sc,
            strategy,
            index,
            queues: vec![VecDeque::new(); n],
            tallies: vec![Tally::default(); n],
            tracks,
            account: AccountUsage::default(),
            next_month: minutes_until(sc.start, Period::Month.bounds(sc.start).1),
            units: sc.prices.at(&AccountUsage::default()),
            next_boundary: 0,
            usage: vec![Usage::default(); n],
            cost: vec![Exact::ZERO; n],
            legit_rejected_now: vec![0; n],
            refused_now: vec![0; n],
            requests_now: vec![0; n],
            episodes: Episodes::new(sc.budgets.len()),
            callers: (strategy == Strategy::Dowguard && sc.traffic.has_clients()).then(|| {
                Callers::new(
                    sc.targets.iter().map(|t| t.levers).collect(),
                    sc.guard.attribution_delay_minutes,
                )
            }),
            groups: vec![Vec::new(); n],
            recent: vec![VecDeque::new(); n],
            alarm_threshold: vec![None; n],
            alarms_at: None,
            in_alarm: vec![false; n],
            alarm_firings: 0,
            responder_passes: 0,
            alarm_minutes: 0,
            first_by_target: vec![None; n],
            kill_threshold,
            tripped_until: vec![None; n],
            anomaly_alert: None,
            anomaly_checked: false,
            store,
            first_minute: epoch_minute(sc.start),
            states: vec![None; targets.len()],
            budget_members: metrics_plan::members_of(&sc.budgets, &targets),
            functions: targets
                .iter()
                .filter(|t| t.id.kind() == TargetKind::Function)
                .map(|t| t.id.clone())
                .collect(),
            first_action: None,
            first_reason: None,
            tightenings: 0,
            restores: 0,
            notifications: 0,
            evaluations: 0,
            decide_time: std::time::Duration::ZERO,
            metrics_requested: 0,
            walk_time: std::time::Duration::ZERO,
            trips: 0,
            measured: Vec::new(),
            series: Vec::new(),
            cumulative: Exact::ZERO,
            step: (sc.minutes / PLOT_POINTS).max(1),
            targets,
        }
    }

    fn run(mut self) -> Outcome {
        let sc = self.sc;
        let minute_of_day = sc.start.hour() * 60 + sc.start.minute();
        let mut cursor = sc.traffic.cursor(minute_of_day);
        let mut demand = vec![Demand::default(); self.targets.len()];
        self.series.push((0, Money::ZERO));
        for m in 0..sc.minutes {
            self.roll_periods(m);
            if self.callers.is_some() {
                cursor.fill_groups(m, &mut demand, Some(&mut self.groups));
            } else {
                cursor.fill(m, &mut demand);
            }
            for (i, d) in demand.iter_mut().enumerate() {
                self.serve_callers(i, m, d);
            }
            self.bill(m);
            self.act(m);
        }
        self.finish()
    }

    /// Closes budget periods, days and months that end at the start of minute `m`.
    fn roll_periods(&mut self, m: u32) {
        self.units = self.sc.prices.at(&self.account);
        if m < self.next_boundary {
            return;
        }
        let now = self.sc.start + Duration::minutes(i64::from(m));
        if m >= self.next_month {
            self.account = AccountUsage::default();
            self.next_month = minutes_until(self.sc.start, Period::Month.bounds(now).1);
        }
        self.units = self.sc.prices.at(&self.account);
        self.next_boundary = self.next_month;
        for b in 0..self.tracks.len() {
            let budget = &self.sc.budgets[b];
            if m >= self.tracks[b].next_day {
                self.tracks[b].day_spend = Exact::ZERO;
                self.tracks[b].next_day = minutes_until(self.sc.start, Period::Day.bounds(now).1);
            }
            if m >= self.tracks[b].next_boundary {
                close_period(&mut self.tracks[b], budget, true);
                let (start, end) = budget.period.bounds(now);
                let track = &mut self.tracks[b];
                track.period_start = start;
                track.next_boundary = minutes_until(self.sc.start, end);
                if track.acted && self.strategy == Strategy::BudgetsAction {
                    // The team lifts the Budgets action when the new period begins.
                    for &i in &track.members.clone() {
                        self.targets[i].limits = self.sc.targets[i].target.limits.clone();
                    }
                    self.restores += 1;
                }
                self.tracks[b].acted = false;
            }
            let track = &self.tracks[b];
            self.next_boundary = self.next_boundary.min(track.next_day).min(track.next_boundary);
        }
    }

    /// Serves one target's demand for minute `m`: the callers the guard holds are
    /// refused first (see [`crate::callers`]), the rest meet the target's limits.
    fn serve_callers(&mut self, i: usize, m: u32, d: &mut Demand) {
        let Some(callers) = self.callers.as_mut() else {
            self.serve(i, m, *d);
            return;
        };
        let (legit, attack) = (d.legit, d.attack);
        let refused = callers.hold_back(i, &self.groups[i], &mut d.legit, &mut d.attack);
        callers.log(i, &self.groups[i]);
        self.serve(i, m, *d);
        let tally = &mut self.tallies[i];
        tally.legit_requests += legit - d.legit;
        tally.attack_requests += attack - d.attack;
        tally.legit_rejected += refused.legit;
        tally.attack_rejected += refused.attack;
        if refused.attack > 0 {
            // A hold refused the attack: the strategy's first effective limit.
            tally.contained = true;
        }
        self.legit_rejected_now[i] += refused.legit;
        self.refused_now[i] += refused.legit + refused.attack;
        self.requests_now[i] += refused.legit + refused.attack;
    }

    /// Serves one target's demand for minute `m` under its current limits.
    fn serve(&mut self, i: usize, m: u32, d: Demand) {
        let sim = &self.sc.targets[i];
        let target = &self.targets[i];
        let avg_ms = if d.avg_duration_ms > 0 {
            d.avg_duration_ms
        } else {
            sim.avg_duration_ms
        }
        .max(1);
        let tally = &mut self.tallies[i];
        let legit_rejected_before = tally.legit_rejected;
        let refused_before = tally.legit_rejected + tally.attack_rejected;
        tally.legit_requests += d.legit;
        tally.attack_requests += d.attack;
        if d.attack > 0 && tally.onset.is_none() {
            tally.onset = Some(m);
        }
        let capacity = match &target.limits {
            Limits::Function {
                reserved_concurrency, ..
            } => {
                let concurrency =
                    reserved_concurrency.map_or(sim.max_concurrency, |r| r.min(self.sc.account_concurrency));
                let busy_ms = u64::from(concurrency) * 60_000;
                let queued = self.queues[i].iter().map(|b| b.legit + b.attack).sum::<u64>();
                let wanted = d.legit.saturating_add(d.attack).saturating_add(queued);
                if wanted.saturating_mul(avg_ms) <= busy_ms {
                    // Everything fits: no need to know the exact capacity.
                    wanted
                } else {
                    busy_ms / avg_ms
                }
            }
            Limits::Stage { throttle, .. } => {
                let account = u64::from(sim.max_rps) * 60;
                throttle.map_or(account, |t| stage_capacity(t).min(account))
            }
            Limits::UsagePlan { .. } => u64::MAX,
        };
        let asynchronous = matches!(
            target.spec,
            TargetSpec::Function {
                async_invoked: true,
                ..
            }
        );
        let (served_legit, served_attack, throttled) = if asynchronous {
            let age_s = match &target.limits {
                Limits::Function {
                    async_config: Some(c),
                    ..
                } => c.max_event_age_s.unwrap_or(DEFAULT_MAX_EVENT_AGE_S),
                _ => DEFAULT_MAX_EVENT_AGE_S,
            };
            let queue = &mut self.queues[i];
            if d.legit + d.attack > 0 {
                queue.push_back(Batch {
                    minute: m,
                    legit: d.legit,
                    attack: d.attack,
                });
            }
            // Events older than the maximum age are dropped, unbilled.
            while let Some(front) = queue.front() {
                if u64::from(m - front.minute) * 60 > u64::from(age_s) {
                    tally.legit_rejected += front.legit;
                    tally.attack_rejected += front.attack;
                    queue.pop_front();
                } else {
                    break;
                }
            }
            let mut room = capacity;
            let (mut legit, mut attack) = (0, 0);
            while room > 0 {
                let Some(front) = queue.front_mut() else { break };
                let total = front.legit + front.attack;
                let take = total.min(room);
                let l = share(take, front.legit, total);
                legit += l;
                attack += take - l;
                front.legit -= l;
                front.attack -= take - l;
                room -= take;
                if front.legit + front.attack == 0 {
                    queue.pop_front();
                }
            }
            // Lambda counts a throttle for each new event it could not run now.
            let waiting_new = queue
                .back()
                .filter(|b| b.minute == m)
                .map_or(0, |b| b.legit + b.attack);
            (legit, attack, waiting_new)
        } else {
            let total = d.legit + d.attack;
            let served = total.min(capacity);
            let legit = share(served, d.legit, total);
            tally.legit_rejected += d.legit - legit;
            tally.attack_rejected += d.attack - (served - legit);
            (legit, served - legit, total - served)
        };
        let served = served_legit + served_attack;
        let per_request = per_unit(self.units.of(&target.spec).per_request(avg_ms));
        let attack_cost = per_request.times(served_attack);
        let cost = attack_cost + per_request.times(served_legit);
        tally.legit_served += served_legit;
        tally.attack_served += served_attack;
        tally.spend += cost;
        tally.attack_spend += attack_cost;
        tally.peak_attack_spend = tally.peak_attack_spend.max(attack_cost);
        if tally.onset.is_some() && !tally.contained {
            tally.exposure += attack_cost;
            let tightened = target.limits != sim.target.limits;
            let refused = throttled > 0 || served < d.legit + d.attack;
            if tightened && refused {
                tally.contained = true;
            }
        }
        let duration_ms = served.saturating_mul(avg_ms);
        match target.spec {
            TargetSpec::Function { arch, memory_mb, .. } => {
                self.account.lambda_requests += served;
                let mb_ms = u128::from(duration_ms) * u128::from(memory_mb);
                match arch {
                    Arch::X86_64 => self.account.lambda_mb_ms_x86 += mb_ms,
                    Arch::Arm64 => self.account.lambda_mb_ms_arm += mb_ms,
                }
            }
            TargetSpec::RestStage | TargetSpec::UsagePlan => self.account.rest_requests += served,
            TargetSpec::HttpStage => self.account.http_requests += served,
        }
        let usage = Usage {
            requests: served,
            throttled,
            duration_ms: if target.id.kind() == TargetKind::Function {
                duration_ms
            } else {
                0
            },
        };
        self.usage[i] = usage;
        self.cost[i] = cost;
        let tally = &self.tallies[i];
        self.legit_rejected_now[i] = tally.legit_rejected - legit_rejected_before;
        self.refused_now[i] = tally.legit_rejected + tally.attack_rejected - refused_before;
        self.requests_now[i] = d.legit + d.attack;
        if let Some(store) = self.store.as_mut()
            && (usage.requests > 0 || usage.throttled > 0)
        {
            let point = MinuteUsage {
                minute: self.first_minute + i64::from(m),
                usage,
            };
            if target.id.kind() == TargetKind::Function {
                store.aggregate(point);
            }
            if let Some(Some(series)) = store.metrics.get_mut(i) {
                series.minutes.push(point);
            }
        }
        if matches!(self.strategy, Strategy::KillSwitch | Strategy::Dowguard) {
            let recent = &mut self.recent[i];
            recent.push_back(served);
            let depth = usize::try_from(self.sc.guard.settings.metric_delay_minutes).unwrap_or(0) + 1;
            while recent.len() > depth {
                recent.pop_front();
            }
        }
    }

    /// Adds the minute's cost and rejections to every budget it counts against.
    fn bill(&mut self, m: u32) {
        for (b, track) in self.tracks.iter_mut().enumerate() {
            let mut spend = Exact::ZERO;
            for &i in &track.members {
                spend += self.cost[i];
                track.legit_rejected += self.legit_rejected_now[i];
                track.refused += self.refused_now[i];
                track.requests += self.requests_now[i];
            }
            track.spend += spend;
            track.day_spend += spend;
            if b == 0 {
                self.cumulative += spend;
            }
        }
        if m % self.step == self.step - 1 || m + 1 == self.sc.minutes {
            self.series.push((m + 1, self.cumulative.money()));
        }
    }

    /// The strategy looks at the end of minute `m` and may change limits.
    fn act(&mut self, m: u32) {
        match self.strategy {
            Strategy::Unguarded | Strategy::AnomalyDetection => self.anomaly(m),
            Strategy::BudgetsAction => self.budgets_action(m),
            Strategy::KillSwitch => self.kill_switch(m),
            Strategy::Dowguard => {
                let scheduled = (m + 1).is_multiple_of(self.sc.guard.interval_minutes);
                if scheduled {
                    self.dowguard(m, None);
                }
                self.alarms(m, scheduled);
            }
        }
    }

    fn anomaly(&mut self, m: u32) {
        if self.anomaly_checked {
            return;
        }
        let now = self.sc.start + Duration::minutes(i64::from(m));
        for (b, track) in self.tracks.iter().enumerate() {
            let budget = &self.sc.budgets[b];
            let day_budget = day_equivalent(budget, now);
            if track.day_spend > Exact::of(day_budget) {
                let alert = m + 1 + self.sc.baselines.anomaly_delay_minutes;
                self.anomaly_alert = (alert < self.sc.minutes).then(|| {
                    (
                        alert,
                        format!(
                            "day spend {} passed the day's share {} of budget {} at minute {m}; alert {} h later",
                            track.day_spend.money(),
                            day_budget,
                            budget.id,
                            self.sc.baselines.anomaly_delay_minutes / 60
                        ),
                    )
                });
                self.anomaly_checked = true;
                return;
            }
        }
    }

    fn budgets_action(&mut self, m: u32) {
        if !(m + 1).is_multiple_of(self.sc.baselines.budgets_refresh_minutes) {
            return;
        }
        for b in 0..self.tracks.len() {
            let budget = &self.sc.budgets[b];
            let track = &self.tracks[b];
            if track.acted || track.spend < Exact::of(budget.amount) {
                continue;
            }
            let members = track.members.clone();
            let reason = format!(
                "actual spend {} reached budget {} ({}) at the refresh after minute {m}",
                track.spend.money(),
                budget.id,
                budget.amount
            );
            self.tracks[b].acted = true;
            for i in members {
                let stopped = stopped_limits(&self.targets[i]);
                if self.targets[i].limits != stopped {
                    self.targets[i].limits = stopped;
                    self.record_tighten(m, i, Path::Schedule, &reason);
                }
            }
        }
    }

    fn kill_switch(&mut self, m: u32) {
        for i in 0..self.targets.len() {
            if let Some(until) = self.tripped_until[i] {
                if m + 1 >= until {
                    self.targets[i].limits = self.sc.targets[i].target.limits.clone();
                    self.tripped_until[i] = None;
                    self.restores += 1;
                }
                continue;
            }
            let depth = usize::try_from(self.sc.guard.settings.metric_delay_minutes).unwrap_or(0) + 1;
            let recent = &self.recent[i];
            if recent.len() < depth {
                continue;
            }
            let visible = recent.front().copied().unwrap_or(0);
            if visible >= self.kill_threshold[i] {
                let reason = format!(
                    "{} served {visible} requests in one minute, at or above the alarm threshold {}",
                    self.targets[i].id, self.kill_threshold[i]
                );
                self.targets[i].limits = stopped_limits(&self.targets[i]);
                self.tripped_until[i] = Some(m + 1 + self.sc.baselines.kill_switch_restore_minutes);
                self.record_tighten(m, i, Path::Alarm, &reason);
            }
        }
    }

    /// Counts the metrics the evaluator's plan requests for the pass at minute `m`
    /// ([`dowguard_domain::metrics_plan`]): the tripwire, the hot set, API stages at
    /// their cadence, the sweeps, and every function when the tripwire trips.
    fn count_metrics(&mut self, m: u32, now: chrono::DateTime<chrono::Utc>, reports: &[BudgetReport]) {
        let Some(store) = &self.store else { return };
        let (budgets, targets) = (&self.sc.budgets, &self.targets);
        let settings = &self.sc.guard.settings;
        let plan = self.sc.guard.metrics_plan;
        let minute = i64::from(m);
        let states = targets
            .iter()
            .zip(&self.states)
            .filter_map(|(t, s)| Some((&t.id, s.as_ref()?)));
        let hot = metrics_plan::hot_set(states, &HashSet::new());
        self.measured.resize(targets.len(), (None, None));
        let mut requested = if self.functions.is_empty() {
            0
        } else {
            metrics_plan::AGGREGATE_METRICS
        };
        for (t, (detail, totals)) in targets.iter().zip(self.measured.iter_mut()) {
            let staged = matches!(t.id.kind(), TargetKind::RestStage | TargetKind::HttpStage)
                && detail.is_none_or(|last| {
                    let every = metrics_plan::stage_every(t, budgets, &self.sc.prices, now, settings);
                    minute - last >= i64::try_from(every).unwrap_or(i64::MAX)
                });
            let full = hot.contains(&t.id);
            if full || staged {
                requested += MetricsPlan::metrics_per_measurement(t.id.kind(), full);
                *detail = Some(minute);
            }
            if plan.sweep_due(minute, *totals) {
                requested += MetricsPlan::metrics_per_measurement(t.id.kind(), false);
                *totals = Some(minute);
            }
        }
        // The tripwire's rounds, on the simulated account's own aggregate.
        let mut fresh: HashSet<TargetId> = hot
            .iter()
            .filter(|id| id.kind() == TargetKind::Function)
            .cloned()
            .collect();
        let mut tripped = false;
        for round in 0..metrics_plan::MAX_ROUNDS {
            let measured = metrics_plan::Measured {
                now,
                budgets,
                targets,
                members: &self.budget_members,
                metrics: store.metrics.as_slice(),
                fresh: &fresh,
                watched: &hot,
                aggregate: Some(store.aggregate.as_slice()),
                reports,
                prices: &self.sc.prices,
                settings,
            };
            let (next, _) = metrics_plan::widen(&measured, &self.functions, round);
            if next.is_empty() {
                break;
            }
            tripped = true;
            requested +=
                next.len() as u64 * MetricsPlan::metrics_per_measurement(TargetKind::Function, false);
            fresh.extend(next);
        }
        self.trips += u64::from(tripped);
        self.metrics_requested += requested;
    }

    fn record_tighten(&mut self, m: u32, i: usize, path: Path, reason: &str) {
        self.tightenings += 1;
        if self.first_action.is_none() {
            self.first_action = Some(m + 1);
            self.first_reason = Some(reason.to_string());
        }
        if let Some(first @ None) = self.first_by_target.get_mut(i) {
            *first = Some((m + 1, path));
        }
    }

    /// dowguard's alarms at the end of minute `m`, as CloudWatch evaluates them
    /// ([`ALARM_RULE`]): each on the datapoint its metric delay lets it see, a
    /// missing one not breaching. An alarm that goes to ALARM delivers its event
    /// in the same minute, and the responder runs a pass on its target, at most
    /// [`RESPONDER_PASSES_PER_MINUTE`] a minute (one fewer than the cap when the
    /// evaluator ran this minute); an alarm that stays in ALARM sends nothing more.
    fn alarms(&mut self, m: u32, scheduled: bool) {
        if self.alarms_at.is_none_or(|at| m >= at + 60) {
            self.alarms_at = Some(m);
            let settings = &self.sc.guard.settings;
            let basis = AlarmBasis {
                prices: &self.sc.prices,
                now: self.sc.start + Duration::minutes(i64::from(m)),
                avg_duration_ms: settings.default_avg_duration_ms,
                schedule_minutes: u64::from(self.sc.guard.interval_minutes),
                scope: self.sc.guard.alarms,
                settings,
            };
            self.alarm_threshold.iter_mut().for_each(|t| *t = None);
            for alarm in desired_alarms("dowguard-", &self.sc.budgets, &self.targets, &basis) {
                if let Some(&i) = self.index.get(&alarm.target) {
                    self.alarm_threshold[i] = Some(alarm.requests_per_minute);
                }
            }
        }
        self.alarm_minutes += self.alarm_threshold.iter().filter(|t| t.is_some()).count() as u64;
        let depth = usize::try_from(self.sc.guard.settings.metric_delay_minutes).unwrap_or(0) + 1;
        let mut budget = RESPONDER_PASSES_PER_MINUTE + u32::from(!scheduled);
        for i in 0..self.targets.len() {
            let Some(threshold) = self.alarm_threshold[i] else {
                self.in_alarm[i] = false;
                continue;
            };
            let recent = &self.recent[i];
            let datapoint = (recent.len() >= depth).then(|| recent.front().copied().unwrap_or(0));
            let breaching = ALARM_RULE.breaching(threshold, datapoint);
            let fired = breaching && !self.in_alarm[i];
            self.in_alarm[i] = breaching;
            if fired {
                self.alarm_firings += 1;
                if budget > 0 {
                    budget -= 1;
                    self.dowguard(m, Some(i));
                }
            }
        }
    }

    /// A pass of the evaluator (`only` none) or of the alarm responder on target
    /// `only`: the same decision, of which a responder's pass keeps the alarmed
    /// target's state and actions only, as `evaluate_targets` does.
    fn dowguard(&mut self, m: u32, only: Option<usize>) {
        let Some(store) = &mut self.store else { return };
        let now = self.sc.start + Duration::minutes(i64::from(m) + 1);
        let settings = &self.sc.guard.settings;
        // The minute before the pass's long window (see `decide`).
        let through = epoch_minute(now) - 1 - settings.metric_delay_minutes - settings.long_window_minutes;
        store.flush(through);
        let reserved: u32 = self
            .targets
            .iter()
            .map(|t| match t.limits {
                Limits::Function {
                    reserved_concurrency: Some(r),
                    ..
                } => r,
                _ => 0,
            })
            .sum();
        let concurrency = AccountConcurrency::from_settings(
            self.sc.account_concurrency,
            self.sc.account_concurrency.saturating_sub(reserved),
        );
        // The yardstick: a bare walk over exactly the inputs this pass reads.
        let clock = std::time::Instant::now();
        std::hint::black_box(bare_walk(&self.targets, store.metrics.as_slice()));
        self.walk_time += clock.elapsed();
        let attribution = match self.callers.as_mut() {
            Some(callers) => {
                let ids: Vec<TargetId> = self.targets.iter().map(|t| t.id.clone()).collect();
                callers.attribution(&ids, epoch_minute(now))
            }
            None => dowguard_domain::source::Attribution::NONE,
        };
        let clock = std::time::Instant::now();
        let decision = decide(&Inputs {
            now,
            budgets: &self.sc.budgets,
            targets: &self.targets,
            states: self.states.as_slice(),
            metrics: store.metrics.as_slice(),
            prices: &self.sc.prices,
            account_usage: self.account,
            concurrency,
            gaps: &dowguard_domain::Gaps::NONE,
            attribution: &attribution,
            settings: &self.sc.guard.settings,
        });
        self.decide_time += clock.elapsed();
        self.evaluations += 1;
        let path = match only {
            None => {
                self.count_metrics(m, now, &decision.reports);
                Path::Schedule
            }
            Some(i) => {
                // The responder reads the aggregate and its target in full.
                self.responder_passes += 1;
                self.metrics_requested += metrics_plan::AGGREGATE_METRICS
                    + MetricsPlan::metrics_per_measurement(self.targets[i].id.kind(), true);
                Path::Alarm
            }
        };
        let kept = |id: &TargetId| only.is_none_or(|i| self.targets[i].id == *id);
        let states: Vec<(TargetId, GuardState)> =
            decision.states.into_iter().filter(|(id, _)| kept(id)).collect();
        let actions: Vec<_> = decision.actions.into_iter().filter(|a| kept(&a.target)).collect();
        // Persist the states first, then apply the actions.
        for (id, state) in states {
            if let Some(&i) = self.index.get(&id) {
                self.states[i] = Some(state);
            }
        }
        let mut tightened: HashSet<usize> = HashSet::new();
        for action in &actions {
            match action.intent {
                Intent::Notify => {
                    self.notifications += 1;
                    continue;
                }
                Intent::Restore if action.apply => self.restores += 1,
                Intent::Tighten if action.apply => {
                    let reason = action.reason.summary();
                    let i = self.index.get(&action.target).copied().unwrap_or(usize::MAX);
                    self.record_tighten(m, i, path, &format!("{}: {reason}", action.target));
                }
                _ => {}
            }
            if !action.apply {
                continue;
            }
            let Some(&i) = self.index.get(&action.target) else {
                continue;
            };
            if action.intent == Intent::Tighten {
                tightened.insert(i);
            }
            if let Some(callers) = self.callers.as_mut() {
                callers.apply(i, &action.change);
            }
            apply(&mut self.targets[i], &action.change);
        }
        self.observe_episodes(m, now, &decision.reports, &tightened);
    }

    /// Hands every budget's report of a pass to its episode.
    fn observe_episodes(
        &mut self,
        m: u32,
        now: DateTime<Utc>,
        reports: &[BudgetReport],
        tightened: &HashSet<usize>,
    ) {
        for (b, budget) in self.sc.budgets.iter().enumerate() {
            let Some(report) = reports.iter().find(|r| r.budget == budget.id) else {
                continue;
            };
            let members = &self.tracks[b].members;
            // Watching, held or recovering: the guard is not done with the target.
            let held = members
                .iter()
                .any(|&i| self.states[i].as_ref().is_some_and(|s| s.phase != Phase::Normal));
            self.episodes.observe(
                b,
                Seen {
                    minute: m + 1,
                    now,
                    report,
                    held,
                    tightened: members.iter().any(|i| tightened.contains(i)),
                    refused_so_far: self.tracks[b].refused,
                },
            );
        }
    }

    fn finish(mut self) -> Outcome {
        for (b, budget) in self.sc.budgets.iter().enumerate() {
            // A period that ends with the run is complete.
            let complete = self.tracks[b].next_boundary <= self.sc.minutes;
            close_period(&mut self.tracks[b], budget, complete);
        }
        for (i, queue) in self.queues.iter().enumerate() {
            self.tallies[i].queued_at_end = queue.iter().map(|b| b.legit + b.attack).sum();
        }
        let alarms = match self.strategy {
            // The alarms the simulated alarm sync kept, minute by minute.
            Strategy::Dowguard => GuardCost::of_alarms(self.alarm_minutes, 1),
            Strategy::KillSwitch => {
                GuardCost::of_alarms(self.targets.len() as u64, u64::from(self.sc.minutes))
            }
            _ => Money::ZERO,
        };
        let attribution = self.callers.as_ref().map_or(Money::ZERO, Callers::cost);
        let guard_cost = alarms + GuardCost::of_metrics(self.metrics_requested) + attribution;
        let refused: Vec<u64> = self.tracks.iter().map(|t| t.refused).collect();
        let episodes = std::mem::take(&mut self.episodes).finish(&refused);
        Outcome {
            strategy: self.strategy,
            tallies: self.tallies,
            periods: self.tracks.into_iter().map(|t| t.periods).collect(),
            first_action: self.first_action,
            first_reason: self.first_reason,
            tightenings: self.tightenings,
            restores: self.restores,
            notifications: self.notifications,
            evaluations: self.evaluations,
            decide_time: self.decide_time,
            walk_time: self.walk_time,
            guard_cost,
            tripwire_trips: self.trips,
            first_actions: self
                .first_by_target
                .iter()
                .zip(&self.targets)
                .filter_map(|(first, t)| {
                    first.map(|(minute, path)| FirstAction {
                        target: t.id.to_string(),
                        minute,
                        path,
                    })
                })
                .collect(),
            alarm_firings: self.alarm_firings,
            responder_passes: self.responder_passes,
            series: self.series,
            episodes,
            sources_held: self.callers.as_ref().map_or(0, |c| c.sources_held),
            anomaly: self.anomaly_alert,
        }
    }
}

fn close_period(track: &mut Track, budget: &Budget, complete: bool) {
    track.periods.push(PeriodOutcome {
        start: track.period_start,
        amount: budget.amount,
        spend: track.spend.money(),
        overspend: (track.spend.money() - budget.amount).non_negative(),
        legit_rejected: track.legit_rejected,
        requests: track.requests,
        refused: track.refused - track.refused_at_period_start,
        complete,
    });
    track.spend = Exact::ZERO;
    track.legit_rejected = 0;
    track.requests = 0;
    track.refused_at_period_start = track.refused;
}

/// Whole minutes from `start` to `t` (saturating to the `u32` range).
fn minutes_until(start: DateTime<Utc>, t: DateTime<Utc>) -> u32 {
    u32::try_from((t - start).num_minutes().max(0)).unwrap_or(u32::MAX)
}

/// Requests a stage throttle lets through in one minute.
fn stage_capacity(t: Throttle) -> u64 {
    (t.rate_limit * Decimal::from(60))
        .floor()
        .to_u64()
        .unwrap_or(u64::MAX)
}

/// `part × of / total`, rounded to nearest, for splitting `part` in proportion.
fn share(part: u64, of: u64, total: u64) -> u64 {
    if total == 0 {
        return 0;
    }
    if part >= total {
        return of;
    }
    if let Some(product) = part.checked_mul(of).and_then(|p| p.checked_add(total / 2)) {
        return (product / total).min(of);
    }
    let value = (u128::from(part) * u128::from(of) + u128::from(total) / 2) / u128::from(total);
    u64::try_from(value).unwrap_or(of).min(of)
}

/// The targets a budget covers (the core's own rule).
fn members(budget: &Budget, targets: &[Target]) -> Vec<usize> {
    coverage::members(budget, targets).map(|(i, _)| i).collect()
}

/// The budget's amount for the UTC day containing `now`.
fn day_equivalent(budget: &Budget, now: DateTime<Utc>) -> Money {
    match budget.period {
        Period::Day => budget.amount,
        Period::Month => {
            let (start, end) = Period::Month.bounds(now);
            let days = (end - start).num_days().max(1);
            budget.amount.mul_div(1, i128::from(days)).unwrap_or(Money::ZERO)
        }
    }
}

/// Limits that stop a target: concurrency 0, or a stage throttle of 0.
fn stopped_limits(target: &Target) -> Limits {
    match &target.limits {
        Limits::Function { async_config, .. } => Limits::Function {
            reserved_concurrency: Some(0),
            async_config: async_config.clone(),
        },
        Limits::Stage { .. } => Limits::stage(Some(Throttle {
            rate_limit: Decimal::ZERO,
            burst_limit: 0,
        })),
        other => other.clone(),
    }
}

/// The kill switch's fixed per-target alarm threshold in served requests per minute:
/// the multiple of the covering budget's even pace, shared evenly by its targets.
fn kill_thresholds(sc: &Scenario, targets: &[Target]) -> Vec<u64> {
    let units = sc.prices.list();
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let Some((_, budget)) = budgets_of(t, &sc.budgets).next() else {
                return u64::MAX;
            };
            let (start, end) = budget.period.bounds(sc.start);
            let share = i128::try_from(members(budget, targets).len().max(1)).unwrap_or(1);
            // The target's even share of the budget: the period, as many times over.
            let period_s = i128::from((end - start).num_seconds().max(1)) * share;
            let cost = units
                .of(&t.spec)
                .per_request(sc.targets[i].avg_duration_ms)
                .as_fraction();
            requests_per_minute(
                budget.amount,
                period_s,
                sc.baselines.kill_switch_multiple_millionths,
                cost,
            )
        })
        .collect()
}

/// Applies one change to a simulated target, as the executor would.
fn apply(target: &mut Target, change: &Change) {
    match (change, &mut target.limits) {
        (
            Change::ReservedConcurrency { to, .. },
            Limits::Function {
                reserved_concurrency, ..
            },
        ) => *reserved_concurrency = *to,
        (Change::AsyncInvokeConfig { to, .. }, Limits::Function { async_config, .. }) => {
            async_config.clone_from(to)
        }
        (Change::StageThrottle { to, to_overrides, .. }, Limits::Stage { throttle, overrides }) => {
            *throttle = *to;
            overrides.extend(to_overrides.iter().map(|(key, value)| (key.clone(), *value)));
        }
        (
            Change::UsagePlanLimits {
                to_throttle,
                to_quota,
                ..
            },
            Limits::UsagePlan { throttle, quota },
        ) => {
            *throttle = *to_throttle;
            *quota = *to_quota;
        }
        _ => {}
    }
}
