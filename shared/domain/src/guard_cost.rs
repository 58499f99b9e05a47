//! What the guard itself costs in CloudWatch: the metrics its evaluator requests
//! (GetMetricData bills $0.01 per 1,000 metrics requested, whatever the datapoints),
//! the alarms it keeps ($0.10 per standard-resolution alarm metric a month) and the
//! Contributor Insights rules that rank the callers of API stages ($0.50 per rule a
//! month and $0.02 per million log events a rule matches), all from "Amazon
//! CloudWatch Pricing". The metric counts come from the metrics plan
//! ([`crate::metrics_plan`]), the same code that plans the queries.

use serde::Serialize;

use crate::metrics_plan::{AGGREGATE_METRICS, MetricsPlan};
use crate::money::Money;
use crate::target::TargetKind;

/// GetMetricData's price per metric requested ($0.01 per 1,000), in pico-dollars.
pub const PRICE_PER_METRIC_PICOS: i128 = 10_000_000;
/// A standard-resolution alarm, per month, in pico-dollars ($0.10).
pub const ALARM_MONTH_PICOS: i128 = 100_000_000_000;
/// Minutes in the 30-day month CloudWatch prorates alarms over.
pub const MINUTES_PER_MONTH: u64 = 43_200;
/// A Contributor Insights rule, per month ($0.50), in pico-dollars.
pub const RULE_MONTH_PICOS: i128 = 500_000_000_000;
/// One log event a Contributor Insights rule matches ($0.02 per million), in
/// pico-dollars.
pub const MATCHED_EVENT_PICOS: i128 = 20_000;

/// The guard's own monthly CloudWatch bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GuardCost {
    /// Metrics requested a month.
    pub metrics_per_month: u64,
    /// Their cost.
    pub metrics: Money,
    /// The alarms kept ([`crate::alarm::alarm_needed`]).
    pub alarms: Money,
    /// The rules ranking the callers of API stages, and the log events they match.
    pub rankings: Money,
}

impl GuardCost {
    /// The bill for `functions` functions and API stages measured every
    /// `stage_every` minutes each ([`crate::metrics_plan::stage_every`]), all
    /// guarded, none held and none tripping a sweep, the evaluator running every
    /// `schedule_minutes`, with `alarms` alarms kept.
    pub fn estimate(
        functions: u64,
        stage_every: &[u64],
        schedule_minutes: u64,
        alarms: u64,
        plan: MetricsPlan,
    ) -> GuardCost {
        let passes = MINUTES_PER_MONTH / schedule_minutes.max(1);
        let sweeps = MINUTES_PER_MONTH / plan.sweep_every_minutes.max(1);
        let function_metrics = MetricsPlan::metrics_per_measurement(TargetKind::Function, false);
        let stage_metrics = MetricsPlan::metrics_per_measurement(TargetKind::RestStage, false);
        let tripwire = if functions > 0 {
            AGGREGATE_METRICS * passes
        } else {
            0
        };
        let stages: u64 = stage_every
            .iter()
            .map(|every| stage_metrics * (sweeps + MINUTES_PER_MONTH / (*every).max(schedule_minutes).max(1)))
            .sum();
        let metrics_per_month = tripwire + functions * function_metrics * sweeps + stages;
        GuardCost {
            metrics_per_month,
            metrics: GuardCost::of_metrics(metrics_per_month),
            alarms: Money::from_picos(i128::from(alarms) * ALARM_MONTH_PICOS),
            rankings: Money::ZERO,
        }
    }

    /// The same bill with `rules` ranking rules kept all month, matching
    /// `matched_events` log events in it.
    #[must_use]
    pub fn with_rankings(self, rules: u64, matched_events: u64) -> GuardCost {
        GuardCost {
            rankings: GuardCost::of_rules(rules, MINUTES_PER_MONTH)
                + GuardCost::of_matched_events(matched_events),
            ..self
        }
    }

    /// The price of `rules` Contributor Insights rules kept for `minutes`.
    pub fn of_rules(rules: u64, minutes: u64) -> Money {
        Money::from_picos(i128::from(rules) * RULE_MONTH_PICOS)
            .mul_div(i128::from(minutes), i128::from(MINUTES_PER_MONTH))
            .unwrap_or(Money::ZERO)
    }

    /// The price of `events` log events matched by Contributor Insights rules.
    pub fn of_matched_events(events: u64) -> Money {
        Money::from_picos(i128::from(events) * MATCHED_EVENT_PICOS)
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

    /// Metrics, alarms and rankings together.
    pub fn total(&self) -> Money {
        self.metrics + self.alarms + self.rankings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(n: u64) -> Vec<crate::Target> {
        (0..n)
            .map(|i| {
                let id = crate::TargetId::parse(&format!("function:f{i}")).expect("id");
                crate::Target::new(
                    id,
                    crate::TargetSpec::Function {
                        memory_mb: 512,
                        arch: crate::Arch::Arm64,
                        async_invoked: false,
                    },
                    std::collections::BTreeMap::new(),
                    crate::Limits::unset(TargetKind::Function),
                )
            })
            .collect()
    }

    /// The alarms the evaluator's alarm sync keeps on `targets`, all covered by a
    /// $1,000 month budget, at `schedule_minutes`.
    fn alarms_kept(targets: &[crate::Target], schedule_minutes: u64) -> u64 {
        let prices = crate::PriceBook::bundled()
            .and_then(|b| b.prices("us-east-1", false))
            .expect("bundled prices");
        let budget = crate::Budget::parse(crate::BudgetSpec {
            id: "account".into(),
            scope: "account".into(),
            period: "month".into(),
            amount: "1000".into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "finance@example.com".into(),
            topic: None,
            floors: crate::Floors::default(),
            protected: false,
        })
        .expect("budget");
        let settings = crate::GuardSettings::default();
        let basis = crate::AlarmBasis {
            prices: &prices,
            now: chrono::DateTime::UNIX_EPOCH,
            avg_duration_ms: settings.default_avg_duration_ms,
            schedule_minutes,
            scope: crate::AlarmScope::Needed,
            settings: &settings,
        };
        crate::desired_alarms("dowguard-", &[budget], targets, &basis).len() as u64
    }

    #[test]
    fn guard_cost_for_100_and_1000_functions_at_the_defaults() {
        // At most $3 a month for 100 functions, $30 for 1,000, at the default
        // one-minute schedule: the tripwire sees every function every run, so the
        // alarm sync keeps no alarm.
        for (count, target) in [(100, 3), (1_000, 30)] {
            let targets = functions(count);
            let alarms = alarms_kept(&targets, 1);
            let cost = GuardCost::estimate(count, &[], 1, alarms, MetricsPlan::default());
            println!(
                "{count} functions: {} metrics a month = {} + {alarms} alarms {} = {} a month (target: <= ${target})",
                cost.metrics_per_month,
                cost.metrics,
                cost.alarms,
                cost.total()
            );
            // Two aggregate metrics a minute; each function's two metrics once an hour.
            let expected = AGGREGATE_METRICS * MINUTES_PER_MONTH + count * 2 * (MINUTES_PER_MONTH / 60);
            assert_eq!(cost.metrics_per_month, expected);
            assert_eq!(alarms, 0);
            assert!(cost.total() <= Money::from_dollars(target), "{}", cost.total());
            // A five-minute schedule leaves functions unseen between runs: each
            // gets an alarm, and the bill says so.
            let slower = alarms_kept(&targets, 5);
            assert_eq!(slower, count);
            let cost = GuardCost::estimate(count, &[], 5, slower, MetricsPlan::default());
            assert_eq!(cost.alarms, GuardCost::of_alarms(count, MINUTES_PER_MONTH));
        }
    }

    #[test]
    fn ranking_rules_cost_fifty_cents_a_month_and_two_cents_a_million_matched_events() {
        assert_eq!(GuardCost::of_rules(0, MINUTES_PER_MONTH), Money::ZERO);
        assert_eq!(GuardCost::of_rules(2, MINUTES_PER_MONTH), Money::from_dollars(1));
        assert_eq!(
            GuardCost::of_rules(1, MINUTES_PER_MONTH / 2),
            Money::from_picos(250_000_000_000)
        );
        assert_eq!(
            GuardCost::of_matched_events(1_000_000),
            Money::from_picos(20_000_000_000)
        );
        assert_eq!(GuardCost::of_matched_events(1), Money::from_picos(20_000));
        // One stage at 1,000 requests a minute with both rules, each matching every
        // request of a 30-day month: $1.00 of rules and $1.728 of events.
        let base = GuardCost::estimate(0, &[], 1, 0, MetricsPlan::default());
        let ranked = base.with_rankings(2, 2 * 1_000 * MINUTES_PER_MONTH);
        assert_eq!(ranked.rankings, Money::from_picos(2_728_000_000_000));
        assert_eq!(ranked.total(), base.total() + ranked.rankings);
    }

    #[test]
    fn the_tripwire_costs_the_same_for_ten_functions_as_for_ten_thousand() {
        let plan = MetricsPlan {
            sweep_every_minutes: u64::MAX,
        };
        let few = GuardCost::estimate(10, &[], 1, 0, plan);
        let many = GuardCost::estimate(10_000, &[], 1, 0, plan);
        assert_eq!(few.metrics_per_month, AGGREGATE_METRICS * MINUTES_PER_MONTH);
        assert_eq!(few, many);
    }
}
