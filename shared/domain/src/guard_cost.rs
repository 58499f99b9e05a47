//! What the guard itself costs in CloudWatch: the metrics its evaluator requests
//! (GetMetricData bills $0.01 per 1,000 metrics, whatever the datapoints) and one
//! alarm per guarded target ($0.10 a month). One model, used by the metrics
//! adapter's plan, the simulator and the docs.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::target::TargetKind;

/// GetMetricData's price per metric requested ($0.01 per 1,000), in pico-dollars.
pub const PRICE_PER_METRIC_PICOS: i128 = 10_000_000;
/// A standard-resolution alarm, per month, in pico-dollars ($0.10).
pub const ALARM_MONTH_PICOS: i128 = 100_000_000_000;
/// Minutes in the 30-day month CloudWatch prorates alarms over.
pub const MINUTES_PER_MONTH: u64 = 43_200;

/// How often the evaluator measures what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsPlan {
    /// Minutes between measurements of a target the guard is not watching or
    /// holding (its alarm catches a surge in between); watched and held targets are
    /// measured every pass.
    pub detail_every_minutes: u64,
    /// Minutes between refreshes of a target's spend-to-date (hourly sums).
    pub totals_every_minutes: u64,
}

impl Default for MetricsPlan {
    fn default() -> Self {
        MetricsPlan {
            detail_every_minutes: 5,
            totals_every_minutes: 60,
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

    /// Whether a target is measured at `minute`, given when it last was.
    pub fn detail_due(&self, minute: i64, last: Option<i64>, watched: bool) -> bool {
        watched
            || last.is_none_or(|l| minute - l >= i64::try_from(self.detail_every_minutes).unwrap_or(i64::MAX))
    }

    /// Whether a target's spend-to-date is refreshed at `minute`.
    pub fn totals_due(&self, minute: i64, last: Option<i64>) -> bool {
        last.is_none_or(|l| minute - l >= i64::try_from(self.totals_every_minutes).unwrap_or(i64::MAX))
    }
}

/// The guard's own monthly CloudWatch bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuardCost {
    /// Metrics requested a month.
    pub metrics_per_month: u64,
    /// Their cost.
    pub metrics: Money,
    /// One alarm per guarded target.
    pub alarms: Money,
}

impl GuardCost {
    /// The bill for `functions` functions and `stages` API stages, all guarded, none
    /// held, the evaluator running every `schedule_minutes`.
    pub fn estimate(functions: u64, stages: u64, schedule_minutes: u64, plan: MetricsPlan) -> GuardCost {
        let schedule = schedule_minutes.max(1);
        let detail_every = plan.detail_every_minutes.max(schedule);
        let measurements = MINUTES_PER_MONTH / detail_every;
        let totals = MINUTES_PER_MONTH / plan.totals_every_minutes.max(1);
        let function_metrics = MetricsPlan::metrics_per_measurement(TargetKind::Function, false);
        let stage_metrics = MetricsPlan::metrics_per_measurement(TargetKind::RestStage, false);
        let per_measurement = functions * function_metrics + stages * stage_metrics;
        let metrics_per_month = per_measurement * (measurements + totals);
        GuardCost {
            metrics_per_month,
            metrics: GuardCost::of_metrics(metrics_per_month),
            alarms: Money::from_picos(i128::from(functions + stages) * ALARM_MONTH_PICOS),
        }
    }

    /// The price of `metrics` metrics requested.
    pub fn of_metrics(metrics: u64) -> Money {
        Money::from_picos(i128::from(metrics) * PRICE_PER_METRIC_PICOS)
    }

    /// The price of `targets` alarms kept for `minutes`.
    pub fn of_alarms(targets: u64, minutes: u64) -> Money {
        Money::from_picos(i128::from(targets) * ALARM_MONTH_PICOS)
            .mul_div(i128::from(minutes), i128::from(MINUTES_PER_MONTH))
            .unwrap_or(Money::ZERO)
    }

    /// Metrics and alarms together.
    pub fn total(&self) -> Money {
        self.metrics + self.alarms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_cost_for_100_and_1000_functions_at_the_defaults() {
        for (functions, metrics, total) in [(100, "$18.72", "$28.72"), (1_000, "$187.20", "$287.20")] {
            let cost = GuardCost::estimate(functions, 0, 1, MetricsPlan::default());
            println!(
                "{functions} functions: {} metrics a month = {} + {} alarms = {} a month",
                cost.metrics_per_month,
                cost.metrics,
                cost.alarms,
                cost.total()
            );
            assert_eq!(cost.metrics.to_string(), metrics);
            assert_eq!(cost.total().to_string(), total);
        }
    }

    #[test]
    fn watched_targets_are_measured_every_pass_the_rest_at_the_cadence() {
        let plan = MetricsPlan::default();
        assert!(plan.detail_due(100, None, false));
        assert!(!plan.detail_due(103, Some(100), false));
        assert!(plan.detail_due(105, Some(100), false));
        assert!(plan.detail_due(101, Some(100), true));
        assert_eq!(
            MetricsPlan::metrics_per_measurement(TargetKind::Function, true),
            3
        );
    }
}
