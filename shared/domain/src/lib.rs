//! dowguard's decision core: the pure functions that turn budgets, guard states,
//! metric windows and prices into new states and actions.
//!
//! Nothing here performs I/O, reads the clock or the environment, or knows an AWS
//! SDK type: the Lambdas, the CLI and the simulator all call [`decide`] with the
//! same inputs and get the same answer. Money is exact ([`Money`], integer
//! pico-dollars); prices come from a versioned [`PriceBook`].

pub mod action;
pub mod alarm;
pub mod budget;
pub mod decide;
pub mod drift;
pub mod exposure;
pub mod gaps;
pub mod guard_cost;
pub mod money;
pub mod pricebook;
pub mod release;
pub mod state;
pub mod target;
pub mod usage;

pub use action::{ALL_PERMISSIONS, Action, Change, Intent, Reason, Rule, limit_changes};
pub use alarm::{
    AlarmPlan, DesiredAlarm, ExistingAlarm, alarm_name, desired_alarms, plan_alarms, target_of_alarm,
};
pub use budget::{
    Budget, BudgetError, BudgetId, BudgetSpec, BurnRate, Floors, Mode, Period, Scope, Thresholds,
};
pub use decide::{AccountConcurrency, BudgetReport, ByTarget, Decision, GuardSettings, Inputs, decide};
pub use gaps::Gaps;
pub use guard_cost::{GuardCost, MetricsPlan};
pub use money::{Money, MoneyError};
pub use pricebook::{PriceBook, PriceBookError, Prices, Product};
pub use release::{Release, ReleaseOutcome, release};
pub use state::{GuardState, Level, Phase, RestorePoint};
pub use target::{
    ApiId, Arch, AsyncConfig, FunctionName, GUARD_TAG, GUARD_TAG_VALUE, IdError, Limits, Quota, QuotaPeriod,
    StageName, Target, TargetId, TargetKind, TargetSpec, Throttle, UsagePlanId, tags_allow_guard,
};
pub use usage::{AccountUsage, MinuteUsage, PeriodUsage, TargetMetrics, Usage, epoch_minute};
