//! Alarms derived from budgets: one CloudWatch alarm per guarded target, whose
//! threshold is the request rate that would burn the strictest budget covering the
//! target faster than its first throttle level allows. No one sets alarm thresholds by
//! hand: they follow the budgets, and an alarm whose target no budget covers any
//! more is removed.
//!
//! Everything here is pure: the shell lists the alarms that exist, asks
//! [`desired_alarms`] what should exist, and applies [`plan_alarms`]'s answer.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::budget::{Budget, BudgetId};
use crate::pricebook::Prices;
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
    let (cost_num, cost_den) = cost;
    if cost_num <= 0 || cost_den <= 0 {
        return u64::MAX;
    }
    // requests/min = amount × 60 × multiple / (period_s × 10^6) ÷ (cost_num / cost_den)
    let numerator = budget
        .amount
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

/// The alarms that should exist: one per target the guard may change that some
/// unprotected budget covers (usage plans excepted: CloudWatch has no per-plan
/// request metric, and their stages carry alarms of their own; a target without the
/// guard's tag gets none, since an alarm could only wake a responder that may not
/// act on it), at the lowest threshold among those budgets.
/// A budget's alarm fires at its first throttle level (4× by default).
pub fn desired_alarms(
    prefix: &str,
    budgets: &[Budget],
    targets: &[Target],
    prices: &Prices,
    now: DateTime<Utc>,
    avg_duration_ms: u64,
) -> Vec<DesiredAlarm> {
    let mut out: BTreeMap<String, DesiredAlarm> = BTreeMap::new();
    for target in targets {
        if target.id.kind() == TargetKind::UsagePlan || !target.guarded {
            continue;
        }
        let cost = request_cost(&target.spec, prices, avg_duration_ms);
        for budget in budgets.iter().filter(|b| !b.protected && b.scope.covers(target)) {
            let multiple = budget
                .thresholds
                .levels()
                .first()
                .copied()
                .unwrap_or_else(|| budget.thresholds.watch());
            let threshold = threshold_per_minute(budget, now, multiple.0, cost);
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
        let alarms = desired_alarms("dowguard-", &budgets, &targets, &prices(), now(), 1_000);
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
        assert!(desired_alarms("dowguard-", &budgets, &[untagged], &prices(), now(), 1_000).is_empty());
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
}
