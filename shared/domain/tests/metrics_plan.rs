//! The metrics plan's tripwire and stage cadence: the residual bound is an upper
//! bound of what any budget's cold members spent, the trip fires exactly when that
//! bound could lift a budget to its first throttle level, and a stage is measured
//! before its worst case can spend its tightest budget's first-throttle allowance.

#![allow(clippy::expect_used, reason = "tests fail loudly on bad fixtures")]

mod support;

use dowguard_domain::metrics_plan::{
    MetricsPlan, Tripwire, first_throttle_spend, members_of, stage_every, stage_worst_per_minute, trip,
};
use dowguard_domain::{Budget, GuardSettings, Money, Target, Usage};
use proptest::prelude::*;
use support::{function, prices, rest_stage, spec, t0};

fn budget(id: &str, scope: &str, amount: &str) -> Budget {
    Budget::parse(spec(id, scope, amount)).expect("valid budget")
}

struct Pass {
    targets: Vec<Target>,
    budgets: Vec<Budget>,
    hot: Vec<bool>,
    watched: Vec<bool>,
    short: Vec<Money>,
    spent: Vec<Money>,
}

impl Pass {
    /// Adds a function measured this pass (not held), which spent `short`.
    fn with_measured(mut self, name: &str, memory_mb: u32, short: Money) -> Pass {
        self.targets.push(function(name, memory_mb, false, None));
        self.hot.push(true);
        self.watched.push(false);
        self.short.push(short);
        self
    }

    fn wire(
        &self,
        residual_short: Usage,
        residual_since_sweep: Usage,
    ) -> Option<dowguard_domain::metrics_plan::Trip> {
        let prices = prices();
        let settings = GuardSettings::default();
        trip(&Tripwire {
            now: t0(),
            budgets: &self.budgets,
            targets: &self.targets,
            members: &members_of(&self.budgets, &self.targets),
            hot: &self.hot,
            watched: &self.watched,
            spend: &self.short.iter().map(|s| (*s, *s)).collect::<Vec<_>>(),
            spent: &self.spent,
            residual_short,
            residual_long: residual_short,
            residual_since_sweep,
            prices: &prices,
            settings: &settings,
        })
        .into_iter()
        .next()
    }
}

fn usage(requests: u64, ms_each: u64) -> Usage {
    Usage {
        requests,
        throttled: 0,
        duration_ms: requests * ms_each,
    }
}

/// Two cold functions (128 MB and 1,024 MB) under one $100 day budget on the account.
fn account_of_two() -> Pass {
    Pass {
        targets: vec![
            function("small", 128, false, None),
            function("big", 1024, false, None),
        ],
        budgets: vec![budget("all", "account", "100")],
        hot: vec![false, false],
        watched: vec![false, false],
        short: vec![Money::ZERO; 2],
        spent: vec![Money::ZERO],
    }
}

/// The residual (requests of 100 ms) whose cost at `memory_mb` is `share` of what
/// the budget may spend in the short window before the first throttle level: 4×
/// the rate its remaining amount allows over the rest of its period.
fn residual_at(pass: &Pass, memory_mb: u32, share_millionths: i128) -> Usage {
    let settings = GuardSettings::default();
    let budget = &pass.budgets[0];
    let (_, end) = budget.period.bounds(t0());
    let remaining_s = i128::from((end - t0()).num_seconds());
    let remaining = budget.amount - pass.spent[0];
    let allowance = remaining
        .mul_div(4 * i128::from(settings.short_window_minutes * 60), remaining_s)
        .expect("fits");
    let one = prices()
        .list()
        .of(&function("x", memory_mb, false, None).spec)
        .cost(&usage(1, 100));
    let requests = allowance.picos() * share_millionths / 1_000_000 / one.picos();
    usage(u64::try_from(requests).expect("fits"), 100)
}

#[test]
fn a_residual_below_the_first_throttle_level_at_the_dearest_cold_function_measures_nothing_more() {
    let pass = account_of_two();
    // 90% of the allowance if every request ran on the 1,024 MB function.
    assert_eq!(
        pass.wire(residual_at(&pass, 1024, 900_000), Usage::default()),
        None
    );
}

#[test]
fn a_residual_that_could_reach_the_first_throttle_level_trips_a_sweep() {
    let pass = account_of_two();
    // Cheap at 128 MB, but the same requests on the 1,024 MB function would reach 4×:
    // the bound must price them at the dearest cold member.
    let residual = residual_at(&pass, 1024, 1_010_000);
    let trip = pass.wire(residual, Usage::default()).expect("trips");
    assert_eq!(trip.budget.as_ref().map(|b| b.as_str()), Some("all"));
    let small_only = prices().list().of(&pass.targets[0].spec).cost(&residual);
    assert!(
        trip.bound > small_only,
        "bound {} vs 128 MB price {small_only}",
        trip.bound
    );
}

#[test]
fn measured_spend_of_hot_members_counts_toward_the_trip() {
    let mut pass = account_of_two().with_measured("hot", 512, Money::ZERO);
    let residual = residual_at(&pass, 1024, 600_000);
    let half = residual_at(&pass, 1024, 500_000);
    pass.short[2] = prices().list().of(&pass.targets[1].spec).cost(&half);
    assert_eq!(
        pass.wire(residual, Usage::default())
            .and_then(|t| t.budget)
            .map(|b| b.to_string()),
        Some("all".to_string())
    );
    pass.short[2] = Money::ZERO;
    assert_eq!(pass.wire(residual, Usage::default()), None);
}

#[test]
fn a_budget_holding_a_member_trips_at_its_calm_bar_so_no_hold_is_lifted_on_missing_figures() {
    let mut pass = account_of_two().with_measured("held", 512, Money::ZERO);
    // 30% of the first throttle level (4×) is 1.2×: above the calm bar (1×, the
    // watch level), far below a throttle.
    let residual = residual_at(&pass, 1024, 300_000);
    assert_eq!(
        pass.wire(residual, Usage::default()),
        None,
        "nothing held: no trip"
    );
    pass.watched[2] = true;
    let trip = pass
        .wire(residual, Usage::default())
        .expect("a held member: trip");
    assert_eq!(trip.budget.map(|b| b.to_string()), Some("all".to_string()));
    // Below the calm bar the hold may be judged on what was measured.
    assert_eq!(
        pass.wire(residual_at(&pass, 1024, 200_000), Usage::default()),
        None
    );
}

#[test]
fn a_budget_exhausted_by_what_cold_functions_may_have_spent_since_the_sweep_trips() {
    let mut pass = account_of_two();
    pass.spent[0] = Money::parse("99.99").expect("money");
    let since = usage(1_000_000, 100);
    assert!(pass.wire(Usage::default(), since).is_some());
    pass.spent[0] = Money::parse("10").expect("money");
    assert_eq!(pass.wire(Usage::default(), since), None);
}

#[test]
fn a_budget_whose_members_are_all_measured_never_trips() {
    let mut pass = account_of_two();
    pass.hot = vec![true, true];
    pass.watched = vec![true, true];
    assert_eq!(pass.wire(usage(u64::MAX / 1_000, 1_000), Usage::default()), None);
}

#[test]
fn an_unthrottled_stage_under_a_small_budget_is_measured_every_minute_and_a_slow_one_hourly() {
    let settings = GuardSettings::default();
    let prices = prices();
    let open = rest_stage("a1", "prod", None);
    let small = [budget("shop", "rest-stage:a1/prod", "50")];
    assert_eq!(stage_every(&open, &small, &prices, t0(), &settings), 1);
    let slow = rest_stage("a1", "prod", Some((1, 1)));
    let large = [budget("shop", "rest-stage:a1/prod", "5000")];
    assert_eq!(stage_every(&slow, &large, &prices, t0(), &settings), 60);
    assert_eq!(stage_every(&slow, &[], &prices, t0(), &settings), 60);
}

#[test]
fn sweeps_fall_due_at_their_cadence() {
    let plan = MetricsPlan::default();
    assert!(plan.sweep_due(100, None));
    assert!(!plan.sweep_due(159, Some(100)));
    assert!(plan.sweep_due(160, Some(100)));
}

proptest! {
    /// However the residual is split among cold functions, no budget's cold members
    /// spent more than the trip's bound for it.
    #[test]
    fn the_bound_covers_any_split_of_the_residual(
        memories in proptest::collection::vec(128u32..=10_240, 2..6),
        shares in proptest::collection::vec(0u64..1_000, 2..6),
        requests in 1u64..5_000_000,
        ms_each in 1u64..900_000,
    ) {
        let n = memories.len().min(shares.len());
        let targets: Vec<Target> = (0..n).map(|i| function(&format!("f{i}"), memories[i], false, None)).collect();
        let total: u64 = shares[..n].iter().sum::<u64>().max(1);
        let residual = usage(requests, ms_each);
        let prices = prices();
        let spent: Money = (0..n).fold(Money::ZERO, |sum, i| {
            let part = Usage {
                requests: residual.requests * shares[i] / total,
                throttled: 0,
                duration_ms: residual.duration_ms * shares[i] / total,
            };
            sum + prices.list().of(&targets[i].spec).cost(&part)
        });
        // An exhausted budget always trips, so its trip shows the bound.
        let pass = Pass {
            targets,
            budgets: vec![budget("all", "account", "1")],
            hot: vec![false; n],
            watched: vec![false; n],
            short: vec![Money::ZERO; n],
            spent: vec![Money::from_dollars(1)],
        };
        let trip = pass.wire(residual, Usage::default()).expect("an exhausted budget trips");
        prop_assert!(trip.bound >= spent, "bound {} < spent {}", trip.bound, spent);
    }

    /// Measured every `stage_every` minutes, a stage's worst case never spends more
    /// than its tightest budget's first-throttle allowance in between (unless the
    /// cadence is already every minute).
    #[test]
    fn a_stage_is_measured_before_its_worst_case_spends_its_allowance(
        rate in 1u32..20_000,
        amount in 1u32..100_000,
    ) {
        let settings = GuardSettings::default();
        let stage = rest_stage("a1", "prod", Some((rate, rate)));
        let budgets = [budget("b", "rest-stage:a1/prod", &amount.to_string())];
        let prices = prices();
        let every = stage_every(&stage, &budgets, &prices, t0(), &settings);
        let worst = stage_worst_per_minute(&stage, &prices);
        let allowance = first_throttle_spend(&budgets[0], t0(), &settings);
        let unseen = worst.mul_div(i128::from(every), 1).expect("fits");
        prop_assert!(every == 1 || unseen <= allowance, "every {every}: {unseen} > {allowance}");
        prop_assert!((1..=60).contains(&every));
    }
}

/// In an account of many functions, a budget on one function is tighter than what
/// all of them serve together: the tripwire has that function measured, not the
/// whole account, and the next round, with it off the residual, is satisfied.
#[test]
fn a_tight_budget_on_one_function_has_only_that_function_measured() {
    use std::collections::{HashMap, HashSet};

    use dowguard_domain::metrics_plan::{Measured, widen};
    use dowguard_domain::{MinuteUsage, TargetMetrics};

    let targets: Vec<Target> = (0..40)
        .map(|i| function(&format!("f-{i:02}"), 128, false, None))
        .collect();
    let budgets = vec![
        budget("tight", "function:f-00", "1"),
        budget("account", "account", "1000"),
    ];
    let settings = GuardSettings::default();
    let prices = prices();
    let frame = dowguard_domain::window::Frame::new(t0(), &settings);
    let (from, to) = (frame.short_from, frame.end);
    // Every function serves 400 requests of 100 ms a minute; the aggregate adds them:
    // $0.033 in the short window, above the tight budget's $0.019 at its first throttle
    // level, far below the account budget's.
    let minute = |m: i64| MinuteUsage {
        minute: m,
        usage: usage(400, 100),
    };
    let metrics: HashMap<_, _> = targets
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                TargetMetrics {
                    minutes: (from - 60..=to).map(minute).collect(),
                    to_date: vec![],
                },
            )
        })
        .collect();
    let aggregate: Vec<MinuteUsage> = (from - 60..=to)
        .map(|m| MinuteUsage {
            minute: m,
            usage: usage(400 * 40, 100),
        })
        .collect();
    let detailed: HashSet<_> = targets.iter().map(|t| t.id.clone()).collect();
    let members = members_of(&budgets, &targets);
    let mut fresh = HashSet::new();
    let pass = |fresh: &HashSet<_>, round| {
        widen(
            &Measured {
                now: t0(),
                budgets: &budgets,
                targets: &targets,
                members: &members,
                metrics: &metrics,
                fresh,
                watched: &HashSet::new(),
                aggregate: Some(&aggregate),
                reports: &[],
                prices: &prices,
                settings: &settings,
            },
            &detailed,
            round,
        )
    };
    let (next, why) = pass(&fresh, 0);
    assert_eq!(next, HashSet::from([targets[0].id.clone()]), "{why:?}");
    fresh.extend(next);
    let (next, why) = pass(&fresh, 1);
    assert!(next.is_empty() && why.is_empty(), "{next:?} {why:?}");
    // Without the aggregate nothing bounds the others: all of them, at once.
    let (all, _) = widen(
        &Measured {
            now: t0(),
            budgets: &budgets,
            targets: &targets,
            members: &members,
            metrics: &metrics,
            fresh: &HashSet::new(),
            watched: &HashSet::new(),
            aggregate: None,
            reports: &[],
            prices: &prices,
            settings: &settings,
        },
        &detailed,
        0,
    );
    assert_eq!(all.len(), 40);
}
