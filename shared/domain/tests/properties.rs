//! Property tests of the decision core's invariants.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests and benchmarks fail loudly on bad fixtures"
)]

mod support;

use chrono::{Duration, TimeZone, Utc};
use dowguard_domain::{
    AsyncConfig, Change, Decision, Floors, Intent, Limits, Money, Period, Phase, Product, Target, TargetSpec,
    Throttle, epoch_minute,
};
use proptest::prelude::*;
use support::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Requests per minute that burn `budget` at `multiple_milli`/1000 of the rate its
/// remaining money allows over the rest of the period.
fn remaining_rate_demand(world: &World, multiple_milli: u64, per_request_picos: u128) -> u64 {
    let budget = &world.budgets[0];
    let decision = world.decide();
    let spent = decision.reports[0].spent;
    let (_, end) = budget.period.bounds(world.now);
    let remaining = (budget.amount - spent).non_negative().picos().max(0) as u128;
    let remaining_min = ((end - world.now).num_seconds() / 60).max(1) as u128;
    let per_minute = remaining / remaining_min * u128::from(multiple_milli) / 1_000;
    u64::try_from(per_minute / per_request_picos.max(1)).unwrap_or(u64::MAX)
}

fn per_request(memory_mb: u32, ms: u64) -> u128 {
    let spec = TargetSpec::Function {
        memory_mb,
        arch: dowguard_domain::Arch::X86_64,
        async_invoked: false,
    };
    picos_per_request(&spec, ms)
}

fn arb_function_limits() -> impl Strategy<Value = Limits> {
    (
        proptest::option::of(0u32..800),
        proptest::option::of((
            proptest::option::of(60u32..21_600),
            proptest::option::of(0u32..=2),
            any::<bool>(),
        )),
    )
        .prop_map(|(reserved, async_cfg)| Limits::Function {
            reserved_concurrency: reserved,
            async_config: async_cfg.map(|(age, retries, destination)| AsyncConfig {
                max_event_age_s: age,
                max_retry_attempts: retries,
                on_success: None,
                on_failure: destination.then(|| "arn:aws:sqs:us-east-1:123456789012:failed".to_string()),
            }),
        })
}

fn arb_throttle() -> impl Strategy<Value = Throttle> {
    (1u32..50_000, 1u32..50_000).prop_map(|(rate, burst)| Throttle {
        rate_limit: rate.into(),
        burst_limit: burst,
    })
}

/// A stage throttle and up to three method overrides, each with its own throttle
/// or none.
fn arb_stage_limits() -> impl Strategy<Value = Limits> {
    (
        proptest::option::of(arb_throttle()),
        proptest::collection::btree_map(
            prop_oneof![Just("~1orders/GET"), Just("~1orders/POST"), Just("~1pay/PUT")]
                .prop_map(String::from),
            proptest::option::of(arb_throttle()),
            0..3,
        ),
    )
        .prop_map(|(throttle, overrides)| Limits::Stage { throttle, overrides })
}

/// While a stage is tightened, no method override lets more through than the stage
/// throttle does.
fn overrides_within_stage_throttle(limits: &Limits) -> bool {
    match limits {
        Limits::Stage {
            throttle: Some(stage),
            overrides,
        } => overrides.values().all(|o| {
            o.is_some_and(|o| o.rate_limit <= stage.rate_limit && o.burst_limit <= stage.burst_limit)
        }),
        Limits::Stage { throttle: None, .. } => false,
        _ => true,
    }
}

/// A guarded target of either kind with arbitrary original limits.
fn arb_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (128u32..4_096, any::<bool>(), arb_function_limits()).prop_map(|(mb, is_async, limits)| {
            let mut t = function("subject", mb, is_async, None);
            t.limits = limits;
            t
        }),
        arb_stage_limits().prop_map(|limits| {
            let mut t = rest_stage("a1b2c3d4e5", "subject", None);
            t.limits = limits;
            t
        }),
    ]
}

fn demand_for(target: &Target, requests: u64) -> Demand {
    match target.spec {
        TargetSpec::Function { .. } => Demand {
            requests,
            ms_each: 200,
        },
        _ => Demand { requests, ms_each: 0 },
    }
}

fn unit_cost(target: &Target) -> u128 {
    match target.spec {
        TargetSpec::Function { memory_mb, .. } => per_request(memory_mb, 200),
        _ => picos_per_request(&target.spec, 0),
    }
}

fn world_for(target: Target, amount: &str, mutate: impl FnOnce(&mut dowguard_domain::BudgetSpec)) -> World {
    let mut s = spec("subject-budget", &target.id.to_string(), amount);
    mutate(&mut s);
    World::new().with_target(target).with_budget(s)
}

fn tightened_values(decision: &Decision) -> Vec<(u64, u64)> {
    decision
        .actions
        .iter()
        .filter(|a| a.intent == Intent::Tighten)
        .filter_map(|a| match &a.change {
            Change::ReservedConcurrency { to: Some(n), .. } => Some(vec![(u64::from(*n), u64::MAX)]),
            Change::StageThrottle {
                to: Some(t),
                to_overrides,
                ..
            } => Some(
                std::iter::once(t)
                    .chain(to_overrides.values().flatten())
                    .map(|t| {
                        (
                            u64::try_from(t.rate_limit.trunc().mantissa()).unwrap_or(0),
                            u64::from(t.burst_limit),
                        )
                    })
                    .collect(),
            ),
            _ => None,
        })
        .flat_map(|values: Vec<(u64, u64)>| values)
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Deciding twice on the same inputs (after the first decision is persisted and
    /// applied) adds no new action.
    #[test]
    fn deciding_twice_adds_no_new_action(
        target in arb_target(),
        amount in 10u32..5_000,
        base_milli in 0u64..3_000,
        spike_milli in 0u64..200_000,
        dry_run in any::<bool>(),
        protected in any::<bool>(),
        start_minute in 0i64..1_440,
    ) {
        let mut world = world_for(target.clone(), &amount.to_string(), |s| {
            s.mode = if dry_run { "dry-run".into() } else { "enforce".into() };
            s.protected = protected;
        });
        world.now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single().expect("t") + Duration::minutes(start_minute);
        let unit = unit_cost(&target);
        let base = remaining_rate_demand(&world, base_milli, unit);
        let spike = remaining_rate_demand(&world, spike_milli, unit);
        world.history(&target.id, 60, demand_for(&target, base));
        let now = epoch_minute(world.now);
        for m in (now - 5)..now {
            world.record(&target.id, m, demand_for(&target, spike));
        }
        let first = world.decide();
        world.commit(&first);
        let second = world.decide();
        prop_assert!(second.actions.is_empty(), "second pass acted: {:#?}", second.actions);
        prop_assert!(second.states.is_empty(), "second pass changed state: {:#?}", second.states);
    }

    /// Sustained demand above the first throttle threshold is throttled, and never
    /// relaxed while it lasts. Demand is drawn both below the fast lane (the
    /// multi-window rule must act) and above it.
    #[test]
    fn sustained_burn_above_threshold_never_relaxes(
        target in arb_target(),
        above_permille in prop_oneof![1_120u64..3_600, 3_600u64..25_000],
        start_minute in 0i64..1_440,
    ) {
        let mut world = world_for(target.clone(), "500", |_| {});
        world.now = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single().expect("t") + Duration::minutes(start_minute);
        // A multiple of the first throttle threshold (4× by default), above it.
        let first = world.budgets[0].thresholds.levels()[0];
        let multiple_milli = u64::try_from(first.0).expect("threshold") / 1_000 * above_permille / 1_000;
        let unit = unit_cost(&target);
        let demand = remaining_rate_demand(&world, multiple_milli, unit);
        world.history(&target.id, 60, demand_for(&target, demand));
        let mut held = false;
        for _ in 0..240 {
            // Demand stays at the multiple of what the remaining budget allows *now*
            // (a constant request rate becomes affordable as the period runs out).
            let demand = remaining_rate_demand(&world, multiple_milli, unit);
            let d = world.tick(&[(target.id.clone(), demand_for(&target, demand))]);
            held |= world.state(&target.id).is_some_and(|s| s.phase.is_tightened());
            if held {
                prop_assert!(d.actions.iter().all(|a| a.intent != Intent::Restore), "relaxed: {:#?}", d.actions);
                prop_assert!(world.state(&target.id).is_some_and(|s| s.phase != Phase::Recovering));
            }
        }
        prop_assert!(held, "demand at {multiple_milli}/1000 of the remaining pace was never throttled");
    }

    /// With burn oscillating around a threshold (inside the hysteresis band) the guard
    /// never steps down, so its state changes at most once per level: no flapping.
    #[test]
    fn oscillating_burn_does_not_flap(
        threshold in prop_oneof![Just(1_000u64), Just(2_000u64), Just(6_000u64)],
        swing_permille in 0u64..300,
        period in 1usize..20,
    ) {
        let target = function("subject", 512, false, None);
        let mut world = world_for(target.clone(), "50000", |s| s.period = "month".into());
        world.now = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).single().expect("t");
        let unit = unit_cost(&target);
        let high = remaining_rate_demand(&world, threshold * (1_000 + swing_permille) / 1_000, unit);
        let low = remaining_rate_demand(&world, threshold * (1_000 - swing_permille) / 1_000, unit);
        let mut changes: Vec<(chrono::DateTime<Utc>, Phase)> = Vec::new();
        let mut last = Phase::Normal;
        for minute in 0..600 {
            let demand = if (minute / period) % 2 == 0 { high } else { low };
            world.tick(&[(target.id.clone(), demand_for(&target, demand))]);
            let phase = world.state(&target.id).map_or(Phase::Normal, |s| s.phase);
            if phase != last {
                changes.push((world.now, phase));
                last = phase;
            }
        }
        let rank = |p: Phase| match p {
            Phase::Normal | Phase::Recovering => 0u8,
            Phase::Watching => 1,
            Phase::Throttled { level } => 1 + level,
            Phase::Stopped => 100,
        };
        let mut previous = 0u8;
        for (at, phase) in &changes {
            prop_assert!(rank(*phase) > previous, "stepped down to {phase:?} at {at}: {changes:?}");
            previous = rank(*phase);
        }
        prop_assert!(changes.len() <= 4, "{changes:?}");
    }

    /// After an attack passes, recovery restores exactly the restore point, and the
    /// restore point is captured once and kept while the attack escalates. The
    /// attack has run for an hour when the guard first looks, between the first and
    /// the second throttle thresholds (so it is throttled on that first pass), and
    /// it may grow through the higher levels.
    #[test]
    fn recovery_restores_exactly_the_restore_point(
        target in arb_target(),
        attack_minutes in 3usize..90,
        above_permille in 1_100u64..1_950,
        growth_permille in 1_000u64..1_100,
    ) {
        let original = target.limits.clone();
        let mut world = world_for(target.clone(), "1000", |_| {});
        let first = world.budgets[0].thresholds.levels()[0];
        let attack_milli = u64::try_from(first.0).expect("threshold") / 1_000 * above_permille / 1_000;
        let unit = unit_cost(&target);
        let calm = remaining_rate_demand(&world, 100, unit);
        let attack = remaining_rate_demand(&world, attack_milli, unit);
        world.history(&target.id, 60, demand_for(&target, attack));
        // The attack ramps up, so the guard may escalate through several levels.
        let mut multiple = attack_milli;
        let mut first_captured = None;
        for _ in 0..attack_minutes {
            let attack = remaining_rate_demand(&world, multiple, unit);
            world.tick(&[(target.id.clone(), demand_for(&target, attack))]);
            multiple = multiple * growth_permille / 1_000;
            let now_captured = world.state(&target.id).and_then(|s| s.restore_point.clone());
            if first_captured.is_none() {
                first_captured = now_captured;
            } else {
                prop_assert_eq!(&now_captured, &first_captured, "restore point rewritten while held");
            }
        }
        let captured = world.state(&target.id).and_then(|s| s.restore_point.clone());
        let Some(rp) = &captured else {
            return Err(TestCaseError::fail("the attack was never throttled: no restore point"));
        };
        prop_assert_eq!(&rp.limits, &original, "restore point is the original");
        for _ in 0..360 {
            world.tick(&[(target.id.clone(), demand_for(&target, calm))]);
        }
        prop_assert_eq!(world.limits(&target.id), original);
        prop_assert_eq!(world.state(&target.id).map_or(Phase::Normal, |s| s.phase), Phase::Normal);
    }

    /// Floors and protected flags always hold, whatever the traffic.
    #[test]
    fn floors_and_protection_always_hold(
        target in arb_target(),
        floor_concurrency in 0u32..50,
        floor_rate in 0u32..50,
        floor_burst in 0u32..50,
        protected in any::<bool>(),
        attack_milli in 0u64..500_000,
    ) {
        let floors = Floors { concurrency: floor_concurrency, rate: floor_rate, burst: floor_burst };
        let mut world = world_for(target.clone(), "200", |s| {
            s.floors = floors;
            s.protected = protected;
        });
        let unit = unit_cost(&target);
        let attack = remaining_rate_demand(&world, attack_milli, unit);
        world.history(&target.id, 60, demand_for(&target, attack / 10));
        for _ in 0..120 {
            let d = world.tick(&[(target.id.clone(), demand_for(&target, attack))]);
            if protected {
                prop_assert!(d.actions.iter().all(|a| a.intent != Intent::Tighten), "{:#?}", d.actions);
            }
            if world.state(&target.id).is_some_and(|s| s.phase.is_tightened() && s.mode == dowguard_domain::Mode::Enforce) {
                let limits = world.limits(&target.id);
                prop_assert!(overrides_within_stage_throttle(&limits), "{limits:?}");
            }
            for (first, second) in tightened_values(&d) {
                match target.spec {
                    TargetSpec::Function { .. } => prop_assert!(first >= u64::from(floor_concurrency)),
                    _ => prop_assert!(first >= u64::from(floor_rate) && second >= u64::from(floor_burst)),
                }
            }
        }
    }

    /// Reservations never take the account's unreserved concurrency below its minimum.
    #[test]
    fn unreserved_minimum_always_holds(
        functions in 1usize..6,
        headroom in 0u32..300,
        attack_milli in 15_000u64..100_000,
    ) {
        let mut world = World::new();
        for i in 0..functions {
            let name = format!("f{i}");
            world.targets.push(function(&name, 1_024, false, None));
            world = world.with_budget(spec(&format!("b{i}"), &format!("function:{name}"), "5000"));
        }
        world.concurrency.unreserved_minimum = 100;
        world.concurrency.unreserved_now = 100 + headroom;
        let unit = per_request(1_024, 200);
        let attack = {
            let probe = World::new()
                .with_target(function("probe", 1_024, false, None))
                .with_budget(spec("p", "function:probe", "5000"));
            remaining_rate_demand(&probe, attack_milli, unit)
        };
        let ids: Vec<_> = world.targets.iter().map(|t| t.id.clone()).collect();
        let now = epoch_minute(world.now);
        for f in &ids {
            world.history(f, 60, Demand { requests: attack / 100, ms_each: 200 });
            for m in (now - 8)..now {
                world.record(f, m, Demand { requests: attack, ms_each: 200 });
            }
        }
        let d = world.decide();
        let reserved: u64 = d
            .actions
            .iter()
            .filter(|a| a.apply)
            .filter_map(|a| match a.change {
                Change::ReservedConcurrency { to: Some(n), from: None, .. } => Some(u64::from(n)),
                _ => None,
            })
            .sum();
        prop_assert!(reserved <= u64::from(headroom), "reserved {reserved} > headroom {headroom}");
    }

    /// Pricing is exact: splitting usage never changes the total by a cent, even on
    /// huge volumes and across tier boundaries.
    #[test]
    fn money_arithmetic_never_loses_a_cent(
        offset in 0u64..30_000_000_000,
        parts in proptest::collection::vec(0u64..2_000_000_000, 1..200),
    ) {
        let prices = prices();
        for product in [Product::LambdaRequests, Product::RestRequests, Product::HttpRequests] {
            let mut at = u128::from(offset);
            let mut sum = Money::ZERO;
            for p in &parts {
                sum += prices.cost(product, at, u128::from(*p));
                at += u128::from(*p);
            }
            let whole = prices.cost(product, u128::from(offset), at - u128::from(offset));
            prop_assert_eq!(sum, whole, "{:?}", product);
        }
        // Duration divides by 1,024,000 once per pricing: at most one pico-dollar each.
        let mut at = u128::from(offset) * 1_000;
        let mut sum = Money::ZERO;
        for p in &parts {
            let mb_ms = u128::from(*p) * 1_000;
            sum += prices.cost(Product::LambdaDurationX86, at, mb_ms);
            at += mb_ms;
        }
        let whole = prices.cost(Product::LambdaDurationX86, u128::from(offset) * 1_000, at - u128::from(offset) * 1_000);
        let drift = (whole - sum).picos().abs();
        prop_assert!(drift <= parts.len() as i128, "drift {drift} pico-dollars");
        prop_assert!(drift < 10_000_000_000, "a cent is 10^10 pico-dollars");
    }

    /// Money survives a round trip through its text form.
    #[test]
    fn money_text_round_trips(picos in any::<i64>()) {
        let m = Money::from_picos(i128::from(picos));
        prop_assert_eq!(Money::parse(&m.to_decimal().to_string()), Ok(m));
    }
}

#[test]
fn period_bounds_cover_every_minute_exactly_once() {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("t");
    for period in [Period::Day, Period::Month] {
        let mut t = start;
        while t < start + Duration::days(400) {
            let (s, e) = period.bounds(t);
            assert!(s <= t && t < e, "{period} {t}");
            t += Duration::minutes(97);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..config() })]

    /// The one-walk window sums equal separate sums over the same minutes, whatever
    /// the order, gaps, duplicates and period totals of the input.
    #[test]
    fn window_sums_agree_with_separate_sums(
        mut minutes in prop::collection::vec((0i64..300, 0u64..1_000, 0u64..50, 0u64..100_000), 0..120),
        shuffle in any::<bool>(),
        end in 0i64..320,
        short in 1i64..30,
        long in 1i64..200,
        day_offset in 0i64..300,
        month_offset in 0i64..300,
        totals in prop::collection::vec((any::<bool>(), any::<bool>(), 0i64..320, 0u64..1_000), 0..4),
    ) {
        use dowguard_domain::{MinuteUsage, PeriodUsage, TargetMetrics, Usage};
        let base = epoch_minute(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("t"));
        if !shuffle {
            minutes.sort_by_key(|m| m.0);
        }
        let at = |minute: i64| Utc.timestamp_opt((base + minute) * 60, 0).single().expect("t");
        let (day_start, month_start) = (at(day_offset), at(month_offset.min(day_offset)));
        let metrics = TargetMetrics {
            minutes: minutes
                .iter()
                .map(|&(minute, requests, throttled, duration_ms)| MinuteUsage {
                    minute: base + minute,
                    usage: Usage { requests, throttled, duration_ms },
                })
                .collect(),
            to_date: totals
                .iter()
                .map(|&(day, matching, through, requests)| {
                    let start = if day { day_start } else { month_start };
                    PeriodUsage {
                        period: if day { Period::Day } else { Period::Month },
                        start: if matching { start } else { start - Duration::days(1) },
                        through_minute: base + through,
                        usage: Usage { requests, ..Usage::default() },
                    }
                })
                .collect(),
        };
        let end = base + end;
        let (short_from, long_from) = (end - short + 1, end - long + 1);
        let w = metrics.windows(end, short_from, long_from, day_start, month_start);
        prop_assert_eq!(w.short, metrics.sum(short_from, end));
        prop_assert_eq!(w.long, metrics.sum(long_from, end));
        prop_assert_eq!(w.day, metrics.to_date(Period::Day, day_start, end));
        prop_assert_eq!(w.month, metrics.to_date(Period::Month, month_start, end));
    }
}
