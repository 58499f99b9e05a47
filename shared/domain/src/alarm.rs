//! Alarms derived from budgets: a CloudWatch alarm on a guarded target whose worst
//! case could outrun its budget between two passes of the evaluator
//! ([`alarm_needed`]), with as threshold the request rate that would burn the
//! strictest budget covering the target faster than its first throttle level allows.
//! No one sets alarm thresholds by hand: they follow the budgets, and an alarm whose
//! target no budget covers, or that the evaluator's schedule no longer needs, is
//! removed.
//!
//! At the default one-minute schedule no target needs one: every pass reads the
//! whole account's Lambda usage ([`crate::metrics_plan`]'s tripwire) and measures
//! each API stage before its worst case can spend its first-throttle allowance, so
//! an alarm on the same one-minute datapoints would see a target at about the same
//! time as the next pass. A slower schedule leaves
//! functions unseen for minutes, and stages whose cadence is shorter than the
//! schedule: those get alarms. [`AlarmScope::EveryTarget`] keeps one on every
//! guarded target whatever the schedule, for deployments that want the alarm
//! responder's path as a second, independent line at $0.10 a target a month.
//!
//! Everything here is pure: the shell lists the alarms that exist, asks
//! [`desired_alarms`] what should exist, and applies [`plan_alarms`]'s answer.
//!
//! ```
//! use std::collections::BTreeMap;
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::alarm::{AlarmBasis, AlarmScope};
//! use dowguard_domain::{
//!     Budget, BudgetSpec, GuardSettings, Limits, PriceBook, Target, TargetId, TargetSpec, desired_alarms,
//! };
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, BTreeMap::new(), Limits::unset(id.kind()));
//! let budget = Budget::parse(BudgetSpec {
//!     id: "shop".into(),
//!     scope: "rest-stage:a1b2c3/prod".into(),
//!     period: "day".into(),
//!     amount: "50".into(),
//!     thresholds: vec![],
//!     mode: "enforce".into(),
//!     owner: "finance@example.com".into(),
//!     topic: None,
//!     floors: Default::default(),
//!     protected: false,
//! })?;
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let settings = GuardSettings::default();
//! let every = |schedule_minutes| AlarmBasis {
//!     prices: &prices,
//!     now,
//!     avg_duration_ms: 1_000,
//!     schedule_minutes,
//!     scope: AlarmScope::Needed,
//!     settings: &settings,
//! };
//! let budgets = [budget];
//! // The stage can spend its first-throttle allowance in under a minute: a pass a
//! // minute sees it as soon as an alarm would, one every five minutes does not.
//! assert!(desired_alarms("dowguard", &budgets, &[stage.clone()], &every(1)).is_empty());
//! let alarms = desired_alarms("dowguard", &budgets, &[stage], &every(5));
//! // $50 a day at 4× is $200 a day: 39,682 REST requests a minute at $3.50 a million.
//! assert_eq!(alarms[0].requests_per_minute, 39_682);
//! assert_eq!(alarms[0].target, id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::budget::{Budget, BudgetId};
use crate::coverage::budgets_of;
use crate::metrics_plan::stage_every;
use crate::money::Money;
use crate::pricebook::Prices;
use crate::settings::GuardSettings;
use crate::target::{Target, TargetId, TargetKind, TargetSpec};

/// The longest alarm name CloudWatch accepts.
pub const MAX_ALARM_NAME: usize = 255;

/// The alarm name of `target` under `prefix`: `PREFIX` followed by the target id,
/// e.g. `dowguard-function:checkout`.
pub fn alarm_name(prefix: &str, target: &TargetId) -> String {
    format!("{prefix}{target}")
}

/// The target an alarm named `name` watches, if `prefix` owns it and the rest is a
/// valid target id. Anything else is not dowguard's alarm.
pub fn target_of_alarm(prefix: &str, name: &str) -> Option<TargetId> {
    if prefix.is_empty() || name.len() > MAX_ALARM_NAME {
        return None;
    }
    let rest = name.strip_prefix(prefix)?;
    // Function ARNs also parse as targets; alarm names only ever use the short form.
    if rest.starts_with("arn:") {
        return None;
    }
    let target = TargetId::parse(rest).ok()?;
    (target.to_string() == rest).then_some(target)
}

/// How CloudWatch evaluates a dowguard alarm: the adapter writes these settings
/// with `PutMetricAlarm`, and the simulator evaluates its alarms by them. A standard
/// alarm compares each period's statistic (here the one-minute `Sum` of requests)
/// with its threshold; with one datapoint out of one evaluation period it is in
/// ALARM while the latest period is above the threshold, and a period without data
/// counts as not breaching ("Alarm evaluation" and "Configuring how CloudWatch
/// alarms treat missing data", Amazon CloudWatch User Guide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmRule {
    /// The period the statistic is taken over, in seconds.
    pub period_seconds: i32,
    /// Periods looked at (the N of "M out of N").
    pub evaluation_periods: i32,
    /// Breaching periods among them that put the alarm in ALARM (the M).
    pub datapoints_to_alarm: i32,
    /// Whether a period without data counts as breaching.
    pub missing_breaches: bool,
}

/// The rule of every dowguard alarm: above the threshold in one one-minute period.
pub const ALARM_RULE: AlarmRule = AlarmRule {
    period_seconds: 60,
    evaluation_periods: 1,
    datapoints_to_alarm: 1,
    missing_breaches: false,
};

impl AlarmRule {
    /// Whether one period's request count (`None`: no datapoint) breaches a
    /// threshold of `requests_per_minute` (greater than, not equal).
    pub fn breaching(&self, requests_per_minute: u64, datapoint: Option<u64>) -> bool {
        datapoint.map_or(self.missing_breaches, |count| count > requests_per_minute)
    }
}

/// One alarm dowguard wants to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredAlarm {
    /// The alarm's name ([`alarm_name`]).
    pub name: String,
    /// The target it watches.
    pub target: TargetId,
    /// Requests in one minute above which the alarm fires.
    pub requests_per_minute: u64,
    /// The budget that set the threshold (the strictest one covering the target).
    pub budget: BudgetId,
}

/// An alarm that exists under dowguard's prefix, as the shell read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingAlarm {
    /// Its name.
    pub name: String,
    /// Its threshold, in requests per minute (rounded down).
    pub requests_per_minute: u64,
}

/// What to change so that the alarms match the budgets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmPlan {
    /// Alarms to create or update.
    pub put: Vec<DesiredAlarm>,
    /// Names of alarms to delete (their targets are no longer guarded).
    pub delete: Vec<String>,
    /// Alarms already right.
    pub unchanged: usize,
}

/// The cost of one request to `spec` at list price, as a fraction of pico-dollars
/// `(numerator, denominator)`: functions add the duration of `avg_duration_ms` at
/// their memory size ([`crate::TargetPrice::per_request`]).
pub fn request_cost(spec: &TargetSpec, prices: &Prices, avg_duration_ms: u64) -> (i128, i128) {
    prices.list().of(spec).per_request(avg_duration_ms).as_fraction()
}

/// The requests per minute at which `budget` would be spent `multiple_millionths`
/// (1,000,000 = 1×) times faster than its even pace, at `cost` per request
/// ([`request_cost`]). At least 1: an alarm at 0 would fire on any traffic.
pub fn threshold_per_minute(
    budget: &Budget,
    now: DateTime<Utc>,
    multiple_millionths: i64,
    cost: (i128, i128),
) -> u64 {
    let (start, end) = budget.period.bounds(now);
    let period_s = i128::from((end - start).num_seconds().max(1));
    requests_per_minute(budget.amount, period_s, multiple_millionths, cost)
}

/// The requests per minute at which `amount` over `period_s` seconds would be spent
/// `multiple_millionths` times faster than its even pace, at `cost` per request (a
/// fraction of pico-dollars, [`request_cost`]). At least 1.
///
/// ```
/// use dowguard_domain::alarm::requests_per_minute;
/// use dowguard_domain::Money;
///
/// // $14.40 a day is a cent a minute; at 2× and $0.0001 a request, 200 a minute.
/// let rpm = requests_per_minute(Money::parse("14.40")?, 86_400, 2_000_000, (100_000_000, 1));
/// assert_eq!(rpm, 200);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn requests_per_minute(
    amount: Money,
    period_s: i128,
    multiple_millionths: i64,
    cost: (i128, i128),
) -> u64 {
    let (cost_num, cost_den) = cost;
    if cost_num <= 0 || cost_den <= 0 {
        return u64::MAX;
    }
    // requests/min = amount × 60 × multiple / (period_s × 10^6) ÷ (cost_num / cost_den)
    let numerator = amount
        .picos()
        .max(0)
        .saturating_mul(60)
        .saturating_mul(i128::from(multiple_millionths.max(0)))
        .saturating_mul(cost_den);
    let denominator = period_s.saturating_mul(1_000_000).saturating_mul(cost_num);
    u64::try_from(numerator / denominator.max(1))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Which targets get an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmScope {
    /// Those whose worst case could outrun their budgets between two passes
    /// ([`alarm_needed`]): none at a one-minute schedule.
    Needed,
    /// Every guarded function and stage, at $0.10 each a month, so that the alarm
    /// responder is a second line at any schedule.
    EveryTarget,
    /// None: the alarms under the prefix are deleted.
    None,
}

/// What the alarms are derived under.
#[derive(Debug, Clone, Copy)]
pub struct AlarmBasis<'a> {
    /// The region's prices.
    pub prices: &'a Prices,
    /// The time: a month budget's pace depends on the month's length.
    pub now: DateTime<Utc>,
    /// The duration assumed for a function's request.
    pub avg_duration_ms: u64,
    /// Minutes between two passes of the evaluator (its schedule).
    pub schedule_minutes: u64,
    /// Which targets get one.
    pub scope: AlarmScope,
    /// The guard's settings (the short window sets a stage's cadence).
    pub settings: &'a GuardSettings,
}

impl AlarmBasis<'_> {
    /// Whether any target could need an alarm under this basis: not at a
    /// one-minute schedule with [`AlarmScope::Needed`], where [`alarm_needed`]
    /// answers no for every target whatever the budgets (a stage's cadence is at
    /// least a minute). The shell then needs to read nothing to know the answer.
    pub fn could_need_any(&self) -> bool {
        match self.scope {
            AlarmScope::EveryTarget => true,
            AlarmScope::Needed => self.schedule_minutes > 1,
            AlarmScope::None => false,
        }
    }
}

/// Whether `target` needs an alarm under `budgets`: whether its worst case could
/// outrun them between two passes.
///
/// - A function: when the evaluator runs less often than every minute. Every pass
///   reads the whole account's Lambda usage and measures a budget's functions as
///   soon as what they could have spent reaches its first throttle level
///   ([`crate::metrics_plan::trip`]); between passes nothing watches them.
/// - An API stage: when its cadence ([`stage_every`], the minutes its worst case
///   needs to spend its tightest budget's first-throttle allowance) is shorter than
///   the schedule, since a stage is measured at most once a pass.
/// - A usage plan: never. CloudWatch has no per-plan request metric; its stages
///   carry alarms of their own.
///
/// [`AlarmScope::EveryTarget`] answers yes for every function and stage,
/// [`AlarmScope::None`] no for all.
pub fn alarm_needed(target: &Target, budgets: &[Budget], basis: &AlarmBasis<'_>) -> bool {
    match (target.id.kind(), basis.scope) {
        (TargetKind::UsagePlan, _) | (_, AlarmScope::None) => false,
        (_, AlarmScope::EveryTarget) => true,
        (TargetKind::Function, AlarmScope::Needed) => basis.schedule_minutes > 1,
        (TargetKind::RestStage | TargetKind::HttpStage, AlarmScope::Needed) => {
            stage_every(target, budgets, basis.prices, basis.now, basis.settings) < basis.schedule_minutes
        }
    }
}

/// The alarms that should exist: one per target that [`alarm_needed`] and that some
/// unprotected budget covers (a target without the guard's tag gets none, since an
/// alarm could only wake a responder that may not act on it), at the lowest
/// threshold among those budgets. A budget's alarm fires at its first throttle
/// level (4× by default).
pub fn desired_alarms(
    prefix: &str,
    budgets: &[Budget],
    targets: &[Target],
    basis: &AlarmBasis<'_>,
) -> Vec<DesiredAlarm> {
    let mut out: BTreeMap<String, DesiredAlarm> = BTreeMap::new();
    for target in targets {
        if !target.guarded || !alarm_needed(target, budgets, basis) {
            continue;
        }
        let cost = request_cost(&target.spec, basis.prices, basis.avg_duration_ms);
        for (_, budget) in budgets_of(target, budgets).filter(|(_, b)| !b.protected) {
            let multiple = budget
                .thresholds
                .levels()
                .first()
                .copied()
                .unwrap_or_else(|| budget.thresholds.watch());
            let threshold = threshold_per_minute(budget, basis.now, multiple.0, cost);
            let name = alarm_name(prefix, &target.id);
            if name.len() > MAX_ALARM_NAME {
                continue;
            }
            let keep = out.get(&name).is_some_and(|d| d.requests_per_minute <= threshold);
            if !keep {
                out.insert(
                    name.clone(),
                    DesiredAlarm {
                        name,
                        target: target.id.clone(),
                        requests_per_minute: threshold,
                        budget: budget.id.clone(),
                    },
                );
            }
        }
    }
    out.into_values().collect()
}

/// The puts and deletes that turn `existing` into `desired`. Only names under
/// `prefix` are ever deleted, and never the alarm of a target whose kind could not
/// be listed (`unlisted`): its absence from `desired` says nothing.
pub fn plan_alarms(
    prefix: &str,
    desired: &[DesiredAlarm],
    existing: &[ExistingAlarm],
    unlisted: &[TargetKind],
) -> AlarmPlan {
    let have: HashMap<&str, u64> = existing
        .iter()
        .map(|a| (a.name.as_str(), a.requests_per_minute))
        .collect();
    let mut plan = AlarmPlan::default();
    for d in desired {
        if have.get(d.name.as_str()) == Some(&d.requests_per_minute) {
            plan.unchanged += 1;
        } else {
            plan.put.push(d.clone());
        }
    }
    let wanted: std::collections::HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
    plan.delete = existing
        .iter()
        .filter(|a| a.name.starts_with(prefix) && !wanted.contains(a.name.as_str()))
        .filter(|a| target_of_alarm(prefix, &a.name).is_none_or(|t| !unlisted.contains(&t.kind())))
        .map(|a| a.name.clone())
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::budget::{BudgetSpec, Floors};
    use crate::pricebook::PriceBook;
    use crate::target::{Arch, Limits};

    fn prices() -> Prices {
        PriceBook::bundled()
            .and_then(|b| b.prices("us-east-1", false))
            .expect("bundled us-east-1 prices")
    }

    fn budget(id: &str, scope: &str, period: &str, amount: &str, protected: bool) -> Budget {
        Budget::parse(BudgetSpec {
            id: id.into(),
            scope: scope.into(),
            period: period.into(),
            amount: amount.into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "finance@example.com".into(),
            topic: None,
            floors: Floors::default(),
            protected,
        })
        .expect("valid budget")
    }

    fn target(id: &str, spec: TargetSpec, tags: &[(&str, &str)]) -> Target {
        let id = TargetId::parse(id).expect("target id");
        Target {
            limits: Limits::unset(id.kind()),
            id,
            spec,
            tags: tags
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect::<BTreeMap<_, _>>(),
            guarded: true,
            usage_plans: Default::default(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0)
            .single()
            .expect("time")
    }

    /// Alarms on every guarded target, for the tests of thresholds.
    fn everywhere<'a>(prices: &'a Prices, settings: &'a GuardSettings) -> AlarmBasis<'a> {
        AlarmBasis {
            prices,
            now: now(),
            avg_duration_ms: 1_000,
            schedule_minutes: 1,
            scope: AlarmScope::EveryTarget,
            settings,
        }
    }

    fn function(id: &str) -> Target {
        target(
            id,
            TargetSpec::Function {
                memory_mb: 512,
                arch: Arch::X86_64,
                async_invoked: false,
            },
            &[],
        )
    }

    /// A stage whose own throttle allows `rps` requests a second.
    fn stage(id: &str, rps: u32) -> Target {
        let mut t = target(id, TargetSpec::RestStage, &[]);
        t.limits = Limits::Stage {
            throttle: Some(crate::target::Throttle {
                rate_limit: rust_decimal::Decimal::from(rps),
                burst_limit: 100,
            }),
            overrides: BTreeMap::new(),
        };
        t
    }

    #[test]
    fn at_a_one_minute_schedule_no_target_needs_an_alarm() {
        let (prices, settings) = (prices(), GuardSettings::default());
        let basis = AlarmBasis {
            scope: AlarmScope::Needed,
            ..everywhere(&prices, &settings)
        };
        // A small budget on a stage that can take 10,000 requests a second: its
        // allowance goes in under a minute, and a pass a minute is as soon as any.
        let targets = [
            function("function:checkout"),
            stage("rest-stage:a1b2c3/prod", 10_000),
        ];
        let budgets = [
            budget("f", "function:checkout", "day", "1", false),
            budget("s", "rest-stage:a1b2c3/prod", "day", "50", false),
        ];
        assert!(desired_alarms("dowguard-", &budgets, &targets, &basis).is_empty());
        assert!(!basis.could_need_any());
        for (schedule_minutes, scope, could) in [
            (2, AlarmScope::Needed, true),
            (1, AlarmScope::EveryTarget, true),
            (5, AlarmScope::None, false),
        ] {
            let other = AlarmBasis {
                schedule_minutes,
                scope,
                ..basis
            };
            assert_eq!(other.could_need_any(), could, "{schedule_minutes} {scope:?}");
            let wanted = !desired_alarms("dowguard-", &budgets, &targets, &other).is_empty();
            assert_eq!(wanted, could, "{schedule_minutes} {scope:?}");
        }
    }

    #[test]
    fn a_slower_schedule_alarms_every_function_and_the_stages_that_could_outrun_it() {
        let (prices, settings) = (prices(), GuardSettings::default());
        let basis = AlarmBasis {
            schedule_minutes: 5,
            scope: AlarmScope::Needed,
            ..everywhere(&prices, &settings)
        };
        let fast = stage("rest-stage:fast/prod", 10_000);
        let slow = stage("rest-stage:slow/prod", 1);
        let budgets = [
            budget("f", "function:checkout", "day", "1000", false),
            budget("fast", "rest-stage:fast/prod", "day", "50", false),
            budget("slow", "rest-stage:slow/prod", "day", "50", false),
        ];
        // The slow stage: 60 requests a minute cost $0.00021, its allowance $0.69.
        assert_eq!(stage_every(&slow, &budgets, &prices, now(), &settings), 60);
        assert_eq!(stage_every(&fast, &budgets, &prices, now(), &settings), 1);
        let targets = [function("function:checkout"), fast, slow];
        let names: Vec<String> = desired_alarms("dowguard-", &budgets, &targets, &basis)
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(
            names,
            ["dowguard-function:checkout", "dowguard-rest-stage:fast/prod"]
        );
    }

    #[test]
    fn every_target_keeps_an_alarm_on_each_function_and_stage_at_any_schedule() {
        let (prices, settings) = (prices(), GuardSettings::default());
        let basis = everywhere(&prices, &settings);
        let budgets = [budget("all", "account", "month", "10000", false)];
        for (t, needed) in [
            (function("function:checkout"), true),
            (stage("rest-stage:slow/prod", 1), true),
            (target("usage-plan:p1", TargetSpec::UsagePlan, &[]), false),
        ] {
            assert_eq!(alarm_needed(&t, &budgets, &basis), needed, "{}", t.id);
            let slower = AlarmBasis {
                schedule_minutes: 15,
                scope: AlarmScope::Needed,
                ..basis
            };
            let kind_needs = t.id.kind() == TargetKind::Function;
            assert_eq!(alarm_needed(&t, &budgets, &slower), kind_needs, "{}", t.id);
            let none = AlarmBasis {
                scope: AlarmScope::None,
                ..slower
            };
            assert!(!alarm_needed(&t, &budgets, &none), "{}", t.id);
        }
    }

    #[test]
    fn alarm_names_round_trip_to_their_targets() {
        for id in [
            "function:checkout",
            "rest-stage:a1b2c3/prod",
            "http-stage:a1b2c3/$default",
        ] {
            let target = TargetId::parse(id).expect("id");
            let name = alarm_name("dowguard-", &target);
            assert_eq!(name, format!("dowguard-{id}"));
            assert_eq!(target_of_alarm("dowguard-", &name), Some(target));
        }
    }

    #[test]
    fn foreign_and_malformed_alarm_names_have_no_target() {
        let cases = [
            "other-function:checkout",
            "dowguard-",
            "dowguard-function:",
            "dowguard-queue:orders",
            "dowguard-arn:aws:lambda:us-east-1:123456789012:function:f",
            "dowguard-lambda:checkout",
            "function:checkout",
        ];
        for name in cases {
            assert_eq!(target_of_alarm("dowguard-", name), None, "{name}");
        }
        assert_eq!(target_of_alarm("", "function:checkout"), None);
        let long = format!("dowguard-function:{}", "x".repeat(300));
        assert_eq!(target_of_alarm("dowguard-", &long), None);
    }

    #[test]
    fn rest_stage_threshold_is_four_times_the_day_pace_in_requests() {
        // $50 a day at 4× is $200 a day = $0.138888… a minute; at $3.50 per million
        // requests that is 39,682.5 requests a minute, rounded down.
        let b = budget("shop", "rest-stage:a1b2c3/prod", "day", "50", false);
        let cost = request_cost(&TargetSpec::RestStage, &prices(), 1_000);
        assert_eq!(threshold_per_minute(&b, now(), 4_000_000, cost), 39_682);
    }

    #[test]
    fn function_threshold_counts_duration_at_the_assumed_average() {
        // $240 a day at 4× = $0.666… a minute. One 512 MB x86 request of 1 s costs
        // $0.0000002 + 0.5 GB-s × $0.0000166667 = $0.00000853335: 78,124.6 a minute.
        let b = budget("checkout", "function:checkout", "day", "240", false);
        let spec = TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        };
        let cost = request_cost(&spec, &prices(), 1_000);
        assert_eq!(threshold_per_minute(&b, now(), 4_000_000, cost), 78_124);
        // Twice the duration: $0.0000168667 a request, 39,525.3 a minute.
        let slower = request_cost(&spec, &prices(), 2_000);
        assert_eq!(threshold_per_minute(&b, now(), 4_000_000, slower), 39_525);
    }

    #[test]
    fn month_budgets_use_the_length_of_the_current_month() {
        // March has 31 days: $3,100 a month is $100 a day, the same pace as a $100 day budget.
        let month = budget("m", "rest-stage:a1b2c3/prod", "month", "3100", false);
        let day = budget("d", "rest-stage:a1b2c3/prod", "day", "100", false);
        let cost = request_cost(&TargetSpec::RestStage, &prices(), 0);
        assert_eq!(
            threshold_per_minute(&month, now(), 4_000_000, cost),
            threshold_per_minute(&day, now(), 4_000_000, cost)
        );
    }

    #[test]
    fn tiny_budgets_still_alarm_at_one_request_or_more() {
        let b = budget("tiny", "rest-stage:a1b2c3/prod", "month", "0.01", false);
        let cost = request_cost(&TargetSpec::RestStage, &prices(), 0);
        assert_eq!(threshold_per_minute(&b, now(), 4_000_000, cost), 1);
    }

    #[test]
    fn the_strictest_covering_budget_sets_the_threshold_and_plans_get_no_alarm() {
        let targets = [
            target(
                "rest-stage:a1b2c3/prod",
                TargetSpec::RestStage,
                &[("team", "shop")],
            ),
            target("usage-plan:p1", TargetSpec::UsagePlan, &[("team", "shop")]),
            target("http-stage:h1/$default", TargetSpec::HttpStage, &[]),
        ];
        let budgets = [
            budget("wide", "tag:team=shop", "day", "500", false),
            budget("narrow", "rest-stage:a1b2c3/prod", "day", "50", false),
            budget("plan", "usage-plan:p1", "day", "5", false),
            budget("guarded-off", "http-stage:h1/$default", "day", "5", true),
        ];
        let (prices, settings) = (prices(), GuardSettings::default());
        let alarms = desired_alarms("dowguard-", &budgets, &targets, &everywhere(&prices, &settings));
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!(alarms[0].name, "dowguard-rest-stage:a1b2c3/prod");
        assert_eq!(alarms[0].budget.as_str(), "narrow");
        assert_eq!(alarms[0].requests_per_minute, 39_682);
    }

    #[test]
    fn plan_puts_changed_alarms_and_deletes_those_of_deleted_budgets() {
        let t = TargetId::parse("function:checkout").expect("id");
        let desired = vec![DesiredAlarm {
            name: alarm_name("dowguard-", &t),
            target: t,
            requests_per_minute: 100,
            budget: BudgetId::parse("b").expect("id"),
        }];
        let existing = vec![
            ExistingAlarm {
                name: "dowguard-function:checkout".into(),
                requests_per_minute: 90,
            },
            ExistingAlarm {
                name: "dowguard-function:gone".into(),
                requests_per_minute: 5,
            },
            ExistingAlarm {
                name: "someone-elses".into(),
                requests_per_minute: 5,
            },
        ];
        let plan = plan_alarms("dowguard-", &desired, &existing, &[]);
        assert_eq!(plan.put, desired);
        assert_eq!(plan.delete, vec!["dowguard-function:gone".to_string()]);
        assert_eq!(plan.unchanged, 0);

        let settled = vec![ExistingAlarm {
            name: "dowguard-function:checkout".into(),
            requests_per_minute: 100,
        }];
        let plan = plan_alarms("dowguard-", &desired, &settled, &[]);
        assert!(plan.put.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.unchanged, 1);
    }

    #[test]
    fn a_target_the_guard_may_not_change_gets_no_alarm() {
        let mut untagged = target(
            "function:checkout",
            TargetSpec::Function {
                memory_mb: 512,
                arch: Arch::X86_64,
                async_invoked: false,
            },
            &[],
        );
        untagged.guarded = false;
        let budgets = [budget("b", "function:checkout", "day", "50", false)];
        let (prices, settings) = (prices(), GuardSettings::default());
        let basis = everywhere(&prices, &settings);
        assert!(desired_alarms("dowguard-", &budgets, &[untagged], &basis).is_empty());
    }

    #[test]
    fn the_alarm_of_a_target_whose_service_could_not_be_listed_is_kept() {
        let existing = vec![
            ExistingAlarm {
                name: "dowguard-http-stage:h1/live".into(),
                requests_per_minute: 5,
            },
            ExistingAlarm {
                name: "dowguard-function:gone".into(),
                requests_per_minute: 5,
            },
        ];
        let plan = plan_alarms("dowguard-", &[], &existing, &[TargetKind::HttpStage]);
        assert_eq!(plan.delete, vec!["dowguard-function:gone".to_string()]);
    }

    #[test]
    fn an_alarm_breaches_above_its_threshold_and_not_on_missing_data() {
        assert!(!ALARM_RULE.breaching(100, Some(100)));
        assert!(ALARM_RULE.breaching(100, Some(101)));
        assert!(!ALARM_RULE.breaching(100, None));
        assert_eq!(
            (ALARM_RULE.evaluation_periods, ALARM_RULE.datapoints_to_alarm),
            (1, 1)
        );
    }
}
