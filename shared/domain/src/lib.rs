//! dowguard's decision core: the pure functions that turn budgets, guard states,
//! metric windows and prices into new states and actions.
//!
//! Nothing here performs I/O, reads the clock or the environment, or knows an AWS
//! SDK type: the Lambdas, the CLI and the simulator all call [`decide()`] with the
//! same inputs and get the same answer. Money is exact ([`Money`], integer
//! pico-dollars); prices come from a versioned [`PriceBook`].
//!
//! # Following one datapoint
//!
//! A pass ([`decide()`], in [`mod@decide`]) takes every datapoint through the same
//! steps, one module each:
//!
//! 1. [`usage`]: a one-minute count of a target's requests, throttles and duration,
//!    as CloudWatch reports it, with optional period-to-date totals.
//! 2. [`pricebook`]: what the target is billed at, from the versioned price book at
//!    the point of the month the account has reached ([`Prices::at`],
//!    [`UnitPrices::of`]).
//! 3. [`window`]: the pass sums the target's minutes over the short and long
//!    windows, the day and the month, and prices them: its [`window::Figures`],
//!    served spend and demand (throttled requests included).
//! 4. [`coverage`]: which budgets cover the target (one rule, [`Scope::covers`]);
//!    a budget's figures are the sum of its members'.
//! 5. [`judge`]: each budget's spend, projection and burn rates, and the level they
//!    call for: multi-window thresholds, the fast lane, calm with hysteresis.
//! 6. [`wish`]: what all the budgets covering a target ask of it together: the
//!    highest level, the smallest allowance, enforcing budgets before dry-run ones.
//! 7. [`transition`]: the target's [`GuardState`] ([`state`]) moves one step of the
//!    state machine: tighten, hold, relax, recover; restore points, cool-downs and
//!    strikes.
//! 8. [`limits`]: a tightening becomes concrete limits (reserved concurrency, stage
//!    and usage plan throttles, quotas), clamped by floors and originals, reserved
//!    from the account's pool.
//! 9. [`act`]: the outcome becomes [`Action`]s ([`action`]), changes and notices,
//!    in the order the executor applies them.
//!
//! Around the pass: [`budget`] and [`target`] parse what is guarded, [`settings`]
//! holds the tunables, [`gaps`] says what a pass could not see (a figure that may be
//! missing never relaxes a limit), [`mod@release`] is an on-call engineer's manual
//! release, [`alarm`] derives each target's CloudWatch alarm from its budgets,
//! [`exposure`] ranks what each entry point could cost and recommends limits, and
//! [`guard_cost`] prices the guard's own CloudWatch use.
//!
//! # Example: one pass
//!
//! The worked example of the burn-rate notes: a $240-a-day budget for a 512 MB
//! function whose traffic doubled in the last five minutes.
//!
//! ```
//! use std::collections::HashMap;
//! use chrono::{Duration, TimeZone, Utc};
//! use dowguard_domain::*;
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let id = TargetId::parse("function:checkout")?;
//! let spec = TargetSpec::Function { memory_mb: 512, arch: Arch::X86_64, async_invoked: false };
//! let unreserved = Limits::Function { reserved_concurrency: None, async_config: None };
//! let checkout = Target::new(id.clone(), spec, Default::default(), unreserved.clone());
//! let budget = Budget::parse(BudgetSpec {
//!     id: "checkout-daily".into(),
//!     scope: "function:checkout".into(),
//!     period: "day".into(),
//!     amount: "240".into(),
//!     thresholds: vec![], // watch at 1×, throttle at 4×, 8× and 14.4×
//!     mode: "enforce".into(),
//!     owner: "finance@example.com".into(),
//!     topic: None,
//!     floors: Floors::default(),
//!     protected: false,
//! })?;
//!
//! // 1. Usage: the newest complete minute at 06:00 is 05:57. Ten million requests
//! // of 100 ms up to 04:57, then 55 minutes at 650,000 and 5 at 1,300,000.
//! let end = epoch_minute(now) - 3;
//! let minute = |minute, requests| MinuteUsage {
//!     minute,
//!     usage: Usage { requests, throttled: 0, duration_ms: requests * 100 },
//! };
//! let metrics = TargetMetrics {
//!     minutes: (end - 59..=end).map(|m| minute(m, if m > end - 5 { 1_300_000 } else { 650_000 })).collect(),
//!     to_date: vec![PeriodUsage {
//!         period: Period::Day,
//!         start: now - Duration::hours(6),
//!         through_minute: end - 60,
//!         usage: Usage { requests: 10_000_000, throttled: 0, duration_ms: 1_000_000_000 },
//!     }],
//! };
//!
//! let decision = decide(&Inputs {
//!     now,
//!     budgets: &[budget],
//!     targets: &[checkout],
//!     states: &HashMap::new(),
//!     metrics: &HashMap::from([(id.clone(), metrics)]),
//!     prices: &prices,
//!     account_usage: AccountUsage::default(),
//!     concurrency: AccountConcurrency::default(),
//!     gaps: &Gaps::NONE,
//!     attribution: &source::Attribution::NONE,
//!     settings: &GuardSettings::default(),
//! });
//!
//! // 2–5. Priced, the budget has $53.99 spent, and demand runs at 7.80× (short
//! // window) and 4.22× (long window) the pace the remaining $186 allows over the
//! // remaining 18 hours: both at or above 4×, so throttle level 1.
//! let report = &decision.reports[0];
//! assert_eq!(report.spent.display_dp(2), "$53.99");
//! assert_eq!((report.demand_short.to_string(), report.demand_long.to_string()), ("7.80x".into(), "4.22x".into()));
//! assert_eq!((report.level, report.rule), (Level::Throttle(1), Rule::MultiWindow));
//!
//! // 7. The state machine captures the restore point and throttles.
//! let (_, state) = &decision.states[0];
//! assert_eq!(state.phase, Phase::Throttled { level: 1 });
//! assert_eq!(state.restore_point.as_ref().map(|rp| &rp.limits), Some(&unreserved));
//!
//! // 8–9. Level 1 allows the whole remaining pace, $10.33 an hour: what 277 execution
//! // environments of 100 ms requests spend. One change, then the owners' notice.
//! assert_eq!(
//!     decision.actions[0].change,
//!     Change::ReservedConcurrency { function: FunctionName::parse("checkout")?, from: None, to: Some(277) }
//! );
//! assert_eq!(decision.actions[0].permission(), "lambda:PutFunctionConcurrency");
//! assert_eq!(decision.actions[1].intent, Intent::Notify);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod act;
pub mod action;
pub mod alarm;
pub mod budget;
pub mod coverage;
pub mod decide;
pub mod drift;
pub mod exposure;
pub mod gaps;
pub mod guard_cost;
pub mod judge;
pub mod limits;
pub mod metrics_plan;
pub mod money;
pub mod notice;
pub mod pricebook;
pub mod release;
pub mod settings;
pub mod source;
pub mod state;
pub mod target;
pub mod targeted;
pub mod transition;
pub mod usage;
pub mod window;
pub mod wish;

pub use action::{ALL_PERMISSIONS, Action, Change, Intent, Reason, Rule, SOURCE_PERMISSIONS, limit_changes};
pub use alarm::{
    ALARM_RULE, AlarmBasis, AlarmPlan, AlarmRule, AlarmScope, DesiredAlarm, ExistingAlarm, alarm_name,
    alarm_needed, desired_alarms, plan_alarms, target_of_alarm,
};
pub use budget::{
    Budget, BudgetError, BudgetId, BudgetSpec, BurnRate, Floors, Mode, Period, Scope, Thresholds,
};
pub use coverage::Coverage;
pub use decide::{AccountConcurrency, BudgetReport, ByTarget, Decision, GuardSettings, Inputs, decide};
pub use gaps::Gaps;
pub use guard_cost::GuardCost;
pub use metrics_plan::MetricsPlan;
pub use money::{Money, MoneyError};
pub use pricebook::{PriceBook, PriceBookError, Prices, Product, TargetPrice, UnitPrice, UnitPrices};
pub use release::{Release, ReleaseOutcome, release};
pub use state::{GuardState, Level, Phase, RestorePoint};
pub use target::{
    ApiId, Arch, AsyncConfig, FunctionName, GUARD_TAG, GUARD_TAG_VALUE, IdError, Limits, Quota, QuotaPeriod,
    StageName, Target, TargetId, TargetKind, TargetSpec, Throttle, UsagePlanId, tags_allow_guard,
    unguarded_why,
};
pub use usage::{AccountUsage, MinuteUsage, PeriodUsage, TargetMetrics, Usage, epoch_minute};
