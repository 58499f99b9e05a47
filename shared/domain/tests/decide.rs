//! Table-driven and scenario tests of the decision function.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests and benchmarks fail loudly on bad fixtures"
)]

mod support;

use chrono::{Duration, TimeZone, Utc};
use dowguard_domain::{
    AsyncConfig, Change, Floors, Intent, Level, Limits, Money, Phase, Rule, TargetSpec, Throttle,
    epoch_minute,
};
use support::*;

const DAILY: u64 = 240;
const MB: u32 = 512;
const MS: u64 = 100;

fn checkout(reserved: Option<u32>) -> World {
    World::new()
        .with_target(function("checkout", MB, false, reserved))
        .with_budget(spec("checkout-daily", "function:checkout", "240"))
}

fn at(multiple: u64) -> Demand {
    Demand {
        requests: lambda_rate(DAILY, multiple, u64::from(MB), MS),
        ms_each: MS,
    }
}

fn half_pace() -> Demand {
    Demand {
        requests: lambda_rate(DAILY, 1, u64::from(MB), MS) / 2,
        ms_each: MS,
    }
}

/// Flood visible in the last complete minute (minute now-3).
fn flooded(mut world: World, multiple: u64) -> World {
    let f = id("function:checkout");
    world.history(&f, 60, half_pace());
    let visible = epoch_minute(world.now) - 3;
    world.record(&f, visible, at(multiple));
    world
}

#[test]
fn spend_below_pace_changes_nothing() {
    let mut world = checkout(None);
    world.history(&id("function:checkout"), 120, half_pace());
    let decision = world.decide();
    assert!(decision.actions.is_empty(), "{:#?}", decision.actions);
    assert_eq!(decision.reports[0].level, Level::Normal);
    assert!(decision.reports[0].spent.is_positive());
}

#[test]
fn budget_levels_follow_both_windows_and_the_fast_lane() {
    // (label, long-window multiple, short-window multiple, expected level, rule)
    let cases = [
        // At 06:00 with one hour spent, pace leaves more than enough for the day.
        ("on pace", 1, 1, Level::Normal, Rule::MultiWindow),
        ("short spike only", 1, 3, Level::Normal, Rule::MultiWindow),
        (
            "both windows above the remaining pace",
            2,
            2,
            Level::Watch,
            Rule::MultiWindow,
        ),
        (
            "sustained 3x: watched, the rest of the day still pays",
            3,
            3,
            Level::Watch,
            Rule::MultiWindow,
        ),
        ("sustained 5x", 5, 5, Level::Throttle(1), Rule::MultiWindow),
        ("sustained 8x", 8, 8, Level::Throttle(2), Rule::MultiWindow),
        (
            "flood in short window",
            1,
            100,
            Level::Throttle(3),
            Rule::FastLane,
        ),
    ];
    for (label, long, short, level, rule) in cases {
        let mut world = checkout(None);
        let f = id("function:checkout");
        world.history(&f, 60, at(long));
        let now = epoch_minute(world.now);
        for m in (now - 7)..(now - 2) {
            world.record(&f, m, at(short));
        }
        let report = &world.decide().reports[0];
        assert_eq!((report.level, report.rule), (level, rule), "{label}: {report:#?}");
    }
}

#[test]
fn spend_above_the_watch_threshold_watches_with_one_notice_and_changes_no_limit() {
    let mut world = checkout(None);
    let f = id("function:checkout");
    world.history(&f, 60, at(3));
    let first = world.decide();
    assert_eq!(first.reports[0].level, Level::Watch, "{:#?}", first.reports);
    assert!(changes(&first).is_empty(), "{:#?}", first.actions);
    let state = written_state(&first, &f).expect("a never-acted target starts watching");
    assert_eq!(state.phase, Phase::Watching);
    assert!(
        state.restore_point.is_none(),
        "watching captures nothing: {state:#?}"
    );
    let notices: Vec<_> = first
        .actions
        .iter()
        .filter(|a| a.intent == Intent::Notify && a.target == f)
        .collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    let Change::Notify { subject, .. } = &notices[0].change else {
        panic!("a notice: {:?}", notices[0].change);
    };
    assert!(subject.contains("watch threshold"), "{subject}");
    // The next pass at the same pace keeps watching and says nothing new.
    world.commit(&first);
    world.now += Duration::minutes(1);
    world.history(&f, 60, at(3));
    let second = world.decide();
    assert!(second.actions.is_empty(), "{:#?}", second.actions);
    assert_eq!(world.state(&f).map(|s| s.phase), Some(Phase::Watching));
}

#[test]
fn flood_is_throttled_on_the_first_pass_that_sees_it_and_the_original_is_kept() {
    let world = flooded(checkout(None), 100);
    let decision = world.decide();
    let f = id("function:checkout");
    let tightened = tightens(&decision);
    assert_eq!(tightened.len(), 1, "{tightened:#?}");
    let Change::ReservedConcurrency {
        from,
        to: Some(limit),
        ..
    } = &tightened[0].change
    else {
        panic!("expected reserved concurrency, got {:?}", tightened[0].change);
    };
    assert_eq!(*from, None);
    assert_eq!(tightened[0].permission(), "lambda:PutFunctionConcurrency");
    assert_eq!(tightened[0].reason.rule, Rule::FastLane);
    // The limit caps spend at or below the rate the remaining budget allows.
    let report = &decision.reports[0];
    let remaining = report.amount - report.spent;
    let (_, end) = dowguard_domain::Period::Day.bounds(world.now);
    let remaining_per_s = remaining.picos() / i128::from((end - world.now).num_seconds());
    let busy_second = world.prices.list().of(&world.target(&f).spec).per_busy_second(MS);
    assert!(*limit > 0, "a throttle, not a stop");
    assert!(
        busy_second.cost(u128::from(*limit)) <= Money::from_picos(remaining_per_s),
        "limit {limit} spends too fast"
    );
    let state = written_state(&decision, &f).expect("state written");
    assert_eq!(state.phase, Phase::Throttled { level: 3 });
    let rp = state.restore_point.as_ref().expect("restore point captured");
    assert_eq!(rp.limits, world.limits(&f));
    assert!(
        decision.actions.iter().any(|a| a.intent == Intent::Notify),
        "owners are told"
    );
}

#[test]
fn async_functions_also_get_a_short_event_age_so_the_backlog_expires() {
    let mut world = World::new()
        .with_target(function("ingest", MB, true, None))
        .with_budget(spec("ingest-daily", "function:ingest", "240"));
    let f = id("function:ingest");
    world.history(&f, 60, half_pace());
    world.record(&f, epoch_minute(world.now) - 3, at(100));
    let decision = world.decide();
    let kinds: Vec<&Change> = tightens(&decision).iter().map(|a| &a.change).collect();
    assert!(matches!(
        kinds[0],
        Change::AsyncInvokeConfig {
            to: Some(AsyncConfig {
                max_event_age_s: Some(60),
                max_retry_attempts: Some(0),
                on_success: None,
                on_failure: None,
            }),
            ..
        }
    ));
    assert!(matches!(kinds[1], Change::ReservedConcurrency { .. }));
}

#[test]
fn exhausted_budget_stops_at_the_floor() {
    let mut s = spec("checkout-daily", "function:checkout", "240");
    s.floors = Floors {
        concurrency: 5,
        rate: 0,
        burst: 0,
    };
    let mut world = World::new()
        .with_target(function("checkout", MB, false, None))
        .with_budget(s);
    // Six hours at 5x pace spends more than the whole day's budget.
    world.history(&id("function:checkout"), 360, at(5));
    let decision = world.decide();
    assert_eq!(decision.reports[0].level, Level::Stop);
    let limits: Vec<&Change> = tightens(&decision).iter().map(|a| &a.change).collect();
    assert!(
        matches!(limits[..], [Change::ReservedConcurrency { to: Some(5), .. }]),
        "{limits:?}"
    );
}

#[test]
fn dry_run_decides_the_same_actions_but_applies_none() {
    let enforce = flooded(checkout(None), 100).decide();
    let mut s = spec("checkout-daily", "function:checkout", "240");
    s.mode = "dry-run".into();
    let dry = flooded(
        World::new()
            .with_target(function("checkout", MB, false, None))
            .with_budget(s),
        100,
    )
    .decide();
    let strip = |d: &dowguard_domain::Decision| -> Vec<Change> {
        changes(d).iter().map(|a| a.change.clone()).collect()
    };
    assert_eq!(strip(&enforce), strip(&dry));
    assert!(changes(&dry).iter().all(|a| !a.apply));
    assert!(changes(&enforce).iter().all(|a| a.apply));
    assert!(
        dry.actions
            .iter()
            .filter(|a| a.intent == Intent::Notify)
            .all(|a| a.apply),
        "notices still go out"
    );
}

#[test]
fn protected_targets_are_reported_never_throttled() {
    let mut s = spec("checkout-daily", "function:checkout", "240");
    s.protected = true;
    let world = flooded(
        World::new()
            .with_target(function("checkout", MB, false, None))
            .with_budget(s),
        100,
    );
    let decision = world.decide();
    assert!(changes(&decision).is_empty(), "{:#?}", decision.actions);
    assert!(decision.actions.iter().any(|a| a.reason.rule == Rule::Protected));
    assert_eq!(
        decision.reports[0].level,
        Level::Throttle(3),
        "the report still says how bad it is"
    );
}

#[test]
fn unreserved_minimum_is_never_crossed() {
    let mut world = World::new()
        .with_target(function("a", MB, false, None))
        .with_target(function("b", MB, false, None))
        .with_budget(spec("a-daily", "function:a", "240"))
        .with_budget(spec("b-daily", "function:b", "240"));
    world.concurrency.unreserved_now = 130;
    world.concurrency.unreserved_minimum = 100;
    for name in ["function:a", "function:b"] {
        let f = id(name);
        world.history(&f, 60, half_pace());
        world.record(&f, epoch_minute(world.now) - 3, at(100));
    }
    let decision = world.decide();
    let reserved: u32 = tightens(&decision)
        .iter()
        .filter_map(|a| match a.change {
            Change::ReservedConcurrency {
                to: Some(n),
                from: None,
                ..
            } => Some(n),
            _ => None,
        })
        .sum();
    assert!(reserved <= 30, "reserved {reserved} of a 30 headroom");
    assert!(
        decision
            .actions
            .iter()
            .any(|a| a.reason.rule == Rule::UnreservedMinimum)
    );
}

#[test]
fn stage_throttles_are_never_looser_than_the_original() {
    // (original throttle, whether the budget needs a tighter one)
    for (original, tighter) in [
        (None, true),
        (Some((100, 200)), false),
        (Some((100_000, 5_000)), true),
    ] {
        let mut world = World::new()
            .with_target(rest_stage("a1b2c3d4e5", "prod", original))
            .with_budget(spec("api-daily", "rest-stage:a1b2c3d4e5/prod", "240"));
        let stage = id("rest-stage:a1b2c3d4e5/prod");
        let request = world.prices.list().of(&TargetSpec::RestStage).request();
        let per_minute_at_pace = request.units_for(Money::from_dollars(240)) / 1_440;
        world.history(
            &stage,
            60,
            Demand {
                requests: per_minute_at_pace / 2,
                ms_each: 0,
            },
        );
        world.record(
            &stage,
            epoch_minute(world.now) - 3,
            Demand {
                requests: per_minute_at_pace * 100,
                ms_each: 0,
            },
        );
        let decision = world.decide();
        if !tighter {
            // 100 requests a second already caps spend far below the budget.
            assert!(tightens(&decision).is_empty(), "{:#?}", decision.actions);
            continue;
        }
        let tightened = tightens(&decision);
        let Change::StageThrottle {
            to: Some(t), from, ..
        } = &tightened[0].change
        else {
            panic!("expected a stage throttle: {tightened:#?}");
        };
        assert_eq!(
            *from,
            original.map(|(r, b)| Throttle {
                rate_limit: r.into(),
                burst_limit: b
            })
        );
        if let Some((rate, burst)) = original {
            assert!(
                t.rate_limit <= rate.into() && t.burst_limit <= burst,
                "{t:?} looser than {original:?}"
            );
        }
        // The rate caps spend at or below what the remaining budget allows.
        let report = &decision.reports[0];
        let (_, end) = dowguard_domain::Period::Day.bounds(world.now);
        let remaining_per_s =
            (report.amount - report.spent).picos() / i128::from((end - world.now).num_seconds());
        let rate: u128 = t.rate_limit.try_into().expect("whole rate");
        assert!(
            rate > 0 && request.cost(rate) <= Money::from_picos(remaining_per_s),
            "{t:?} spends too fast"
        );
        assert_eq!(tightened[0].permission(), "apigateway:PATCH");
    }
}

#[test]
fn group_budgets_throttle_the_biggest_contributors_only() {
    let mut world = World::new();
    for name in ["big", "small1", "small2"] {
        let mut t = function(name, MB, false, None);
        t.tags.insert("team".into(), "shop".into());
        world.targets.push(t);
    }
    world = world.with_budget(spec("shop-daily", "tag:team=shop", "240"));
    world.history(&id("function:big"), 60, half_pace());
    world.record(&id("function:big"), epoch_minute(world.now) - 3, at(100));
    for small in ["function:small1", "function:small2"] {
        world.history(
            &id(small),
            60,
            Demand {
                requests: 10,
                ms_each: MS,
            },
        );
    }
    let decision = world.decide();
    let touched: Vec<String> = tightens(&decision).iter().map(|a| a.target.to_string()).collect();
    assert_eq!(touched, ["function:big"]);
    assert_eq!(decision.reports[0].targets, 3);
}

#[test]
fn a_budget_for_an_unknown_target_is_reported_missing() {
    let world = World::new().with_budget(spec("ghost", "function:ghost", "10"));
    let decision = world.decide();
    assert!(decision.reports[0].missing_target);
    assert!(decision.actions.is_empty());
}

#[test]
fn recovery_restores_exactly_the_original_limits_after_the_cooldown() {
    let original_async = Some(AsyncConfig {
        max_event_age_s: Some(3_600),
        max_retry_attempts: Some(2),
        on_success: None,
        on_failure: None,
    });
    let mut target = function("ingest", MB, true, Some(400));
    target.limits = Limits::Function {
        reserved_concurrency: Some(400),
        async_config: original_async,
    };
    let original = target.limits.clone();
    let mut world =
        World::new()
            .with_target(target)
            .with_budget(spec("ingest-daily", "function:ingest", "240"));
    let f = id("function:ingest");
    world.history(&f, 60, half_pace());
    // 20 minutes of flood, then ordinary traffic.
    for _ in 0..20 {
        world.tick(&[(f.clone(), at(100))]);
    }
    assert!(world.state(&f).is_some_and(|s| s.phase.is_tightened()));
    assert_ne!(world.limits(&f), original);
    let mut restored_at = None;
    for minute in 0..240 {
        let decision = world.tick(&[(f.clone(), half_pace())]);
        if !restores(&decision).is_empty() && restored_at.is_none() {
            restored_at = Some(minute);
        }
    }
    let restored_at = restored_at.expect("restored");
    // Calm needs the flood out of both windows (60 min + delay) then the cool-down.
    assert!(restored_at >= 15, "restored after {restored_at} calm minutes");
    assert_eq!(world.limits(&f), original, "exactly the original limits");
    let state = world.state(&f).expect("state");
    assert_eq!(state.phase, Phase::Normal);
    assert!(state.restore_point.is_none(), "cleared once back to normal");
}

#[test]
fn relapse_while_recovering_goes_straight_back_to_the_peak_level() {
    let mut world = checkout(None);
    let f = id("function:checkout");
    world.history(&f, 60, half_pace());
    for _ in 0..10 {
        world.tick(&[(f.clone(), at(100))]);
    }
    let mut minutes = 0;
    while world.state(&f).map(|s| s.phase) != Some(Phase::Recovering) {
        world.tick(&[(f.clone(), half_pace())]);
        minutes += 1;
        assert!(minutes < 300, "never recovered");
    }
    let restore_point = world.state(&f).and_then(|s| s.restore_point.clone());
    let mut relapsed = None;
    for _ in 0..6 {
        let d = world.tick(&[(f.clone(), at(100))]);
        if !tightens(&d).is_empty() {
            relapsed = Some(d);
            break;
        }
    }
    let d = relapsed.expect("re-throttled");
    assert!(tightens(&d).iter().all(|a| a.reason.rule == Rule::Relapse));
    let state = world.state(&f).expect("state");
    assert_eq!(state.phase, Phase::Throttled { level: 3 });
    assert_eq!(
        state.restore_point, restore_point,
        "the original restore point survives"
    );
    assert_eq!(state.strikes, 1);
}

#[test]
fn switching_an_enforced_budget_to_dry_run_restores_the_originals() {
    let mut world = checkout(Some(300));
    let f = id("function:checkout");
    world.history(&f, 60, half_pace());
    world.tick(&[(f.clone(), at(100))]);
    for _ in 0..3 {
        world.tick(&[(f.clone(), at(100))]);
    }
    assert!(world.state(&f).is_some_and(|s| s.phase.is_tightened()));
    let mut s = spec("checkout-daily", "function:checkout", "240");
    s.mode = "dry-run".into();
    world.budgets = vec![dowguard_domain::Budget::parse(s).expect("budget")];
    let d = world.tick(&[(f.clone(), at(100))]);
    assert_eq!(restores(&d).len(), 1);
    assert!(restores(&d)[0].apply, "the restore itself is applied");
    assert_eq!(
        world.limits(&f),
        Limits::Function {
            reserved_concurrency: Some(300),
            async_config: None
        }
    );
}

#[test]
fn limits_changed_behind_the_guards_back_are_set_again() {
    let mut world = flooded(checkout(None), 100);
    let first = world.decide();
    world.commit(&first);
    let f = id("function:checkout");
    let held = world.limits(&f);
    // Someone removes the reservation by hand during the attack.
    world.targets[0].limits = Limits::Function {
        reserved_concurrency: None,
        async_config: None,
    };
    world.now += Duration::minutes(1);
    let again = world.decide();
    let reapplied = changes(&again);
    assert_eq!(reapplied.len(), 1);
    assert_eq!(reapplied[0].reason.rule, Rule::Converge);
    world.commit(&again);
    assert_eq!(world.limits(&f), held);
}

#[test]
fn an_exhausted_day_lifts_after_midnight_once_calm() {
    let mut world = checkout(None);
    world.now = Utc
        .with_ymd_and_hms(2026, 11, 22, 23, 30, 0)
        .single()
        .expect("time");
    let f = id("function:checkout");
    world.history(&f, 600, at(3));
    let d = world.tick(&[(f.clone(), at(3))]);
    assert_eq!(d.reports[0].level, Level::Stop);
    assert_eq!(world.state(&f).map(|s| s.phase), Some(Phase::Stopped));
    let mut restored = false;
    for _ in 0..180 {
        let d = world.tick(&[(
            f.clone(),
            Demand {
                requests: 100,
                ms_each: MS,
            },
        )]);
        restored |= !restores(&d).is_empty();
    }
    assert!(
        world.now.date_naive()
            > Utc
                .with_ymd_and_hms(2026, 11, 22, 0, 0, 0)
                .single()
                .expect("t")
                .date_naive()
    );
    assert!(restored, "a new day with calm traffic restores the originals");
    assert_eq!(
        world.limits(&f),
        Limits::Function {
            reserved_concurrency: None,
            async_config: None
        }
    );
}

#[test]
fn missing_minutes_are_zero_traffic_not_a_reason_to_act() {
    let mut world = checkout(None);
    let f = id("function:checkout");
    let now = epoch_minute(world.now);
    // Only two minutes in the last hour have any data at all.
    world.record(&f, now - 40, half_pace());
    world.record(&f, now - 10, half_pace());
    let decision = world.decide();
    assert_eq!(decision.reports[0].level, Level::Normal);
    let report = &decision.reports[0];
    assert!(report.spent > Money::ZERO && report.spent < Money::from_dollars(1));
}

#[test]
fn restore_actions_carry_the_delete_permission_when_the_original_had_no_reservation() {
    let mut world = checkout(None);
    let f = id("function:checkout");
    world.history(&f, 60, half_pace());
    for _ in 0..5 {
        world.tick(&[(f.clone(), at(100))]);
    }
    let mut restore = None;
    for _ in 0..300 {
        let d = world.tick(&[(f.clone(), half_pace())]);
        if let Some(a) = restores(&d).first() {
            restore = Some((*a).clone());
            break;
        }
    }
    let restore = restore.expect("restored");
    assert_eq!(restore.permission(), "lambda:DeleteFunctionConcurrency");
    assert!(matches!(
        restore.change,
        Change::ReservedConcurrency { to: None, .. }
    ));
}

/// The worked example of docs/burn-rate.md, figure for figure.
#[test]
fn worked_example_in_the_docs_holds() {
    use dowguard_domain::{Period, PeriodUsage, Usage};
    let mut world = checkout(None);
    let f = id("function:checkout");
    let now = epoch_minute(world.now); // 06:00 UTC
    let end = now - 3; // the last complete minute, 05:57
    let (day_start, _) = Period::Day.bounds(world.now);
    // Day so far up to 04:57: 10 million requests of 100 ms.
    let series = world.metrics.entry(f.clone()).or_default();
    series.to_date.push(PeriodUsage {
        period: Period::Day,
        start: day_start,
        through_minute: end - 60,
        usage: Usage {
            requests: 10_000_000,
            throttled: 0,
            duration_ms: 1_000_000_000,
        },
    });
    // The last hour: 55 minutes at 650,000 requests, then 5 minutes at 1,300,000.
    for m in (end - 59)..=end {
        let requests = if m > end - 5 { 1_300_000 } else { 650_000 };
        world.record(
            &f,
            m,
            Demand {
                requests,
                ms_each: MS,
            },
        );
    }
    let decision = world.decide();
    let r = &decision.reports[0];
    let show = |label: &str, value: String| println!("{label:>14}: {value}");
    show("spent", r.spent.display_dp(2));
    show("projected", r.projected.display_dp(2));
    show("burn short", r.burn_short.to_string());
    show("burn long", r.burn_long.to_string());
    show("demand short", r.demand_short.to_string());
    show("demand long", r.demand_long.to_string());
    show("level", format!("{:?} {:?}", r.level, r.rule));
    let limit = tightens(&decision)
        .iter()
        .find_map(|a| match a.change {
            Change::ReservedConcurrency { to, .. } => to,
            _ => None,
        })
        .expect("a reservation");
    show("concurrency", limit.to_string());
    assert_eq!(r.spent.display_dp(2), "$53.99");
    assert_eq!(r.projected.display_dp(2), "$839.84");
    assert_eq!(r.burn_short.to_string(), "8.06x");
    assert_eq!(r.burn_long.to_string(), "4.37x");
    assert_eq!(r.demand_short.to_string(), "7.80x");
    assert_eq!(r.demand_long.to_string(), "4.22x");
    assert_eq!((r.level, r.rule), (Level::Throttle(1), Rule::MultiWindow));
    assert_eq!(limit, 277);
}

#[test]
fn an_exhausted_group_budget_stops_every_member_and_a_throttled_one_leaves_no_gap() {
    let mut world = World::new();
    for i in 0..5 {
        let mut t = function(&format!("shop-{i}"), MB, false, None);
        t.tags.insert("team".into(), "shop".into());
        world.targets.push(t);
    }
    world = world.with_budget(spec("shop-daily", "tag:team=shop", "240"));
    let ids: Vec<_> = world.targets.iter().map(|t| t.id.clone()).collect();
    // Five functions sharing a spread-out attack, each well below 80 % of the total.
    for f in &ids {
        world.history(f, 360, at(3));
    }
    let decision = world.decide();
    assert_eq!(decision.reports[0].level, Level::Stop);
    let stopped: Vec<String> = tightens(&decision).iter().map(|a| a.target.to_string()).collect();
    assert_eq!(stopped.len(), 5, "{stopped:?}");

    // A fresh day (nothing spent) with the same spread at 20× pace: every member is
    // held, or the ones left alone keep spending what the budget does not have.
    let mut fresh = World::new();
    fresh.targets = world.targets.clone();
    fresh.budgets = world.budgets.clone();
    for f in &ids {
        fresh.history(f, 60, at(1));
        fresh.record(f, epoch_minute(fresh.now) - 3, at(20));
    }
    let decision = fresh.decide();
    assert_eq!(tightens(&decision).len(), 5, "{:#?}", decision.reports);
}

#[test]
fn method_overrides_are_capped_at_the_stage_throttle_and_restored_exactly() {
    let throttle = |rate: u32, burst: u32| Throttle {
        rate_limit: rate.into(),
        burst_limit: burst,
    };
    let mut target = rest_stage("a1b2c3d4e5", "prod", None);
    // One method with a looser throttle of its own, one unthrottled, one tighter
    // than anything the budget asks for.
    target.limits = Limits::Stage {
        throttle: None,
        overrides: [
            ("~1orders/GET".to_string(), Some(throttle(50_000, 20_000))),
            ("~1orders/POST".to_string(), None),
            ("~1health/GET".to_string(), Some(throttle(2, 1))),
        ]
        .into(),
    };
    let original = target.limits.clone();
    let mut world =
        World::new()
            .with_target(target)
            .with_budget(spec("api-daily", "rest-stage:a1b2c3d4e5/prod", "240"));
    let stage = id("rest-stage:a1b2c3d4e5/prod");
    let request = world.prices.list().of(&TargetSpec::RestStage).request();
    let per_minute_at_pace = request.units_for(Money::from_dollars(240)) / 1_440;
    let calm = Demand {
        requests: per_minute_at_pace / 2,
        ms_each: 0,
    };
    world.history(&stage, 60, calm);
    let flood = Demand {
        requests: per_minute_at_pace * 100,
        ms_each: 0,
    };
    world.record(&stage, epoch_minute(world.now) - 3, flood);
    let decision = world.tick(&[(stage.clone(), flood)]);
    let tightened = tightens(&decision);
    assert_eq!(tightened.len(), 1, "one update for the stage: {tightened:#?}");
    let Change::StageThrottle {
        to: Some(cap),
        from_overrides,
        to_overrides,
        ..
    } = &tightened[0].change
    else {
        panic!("expected a stage throttle: {tightened:#?}");
    };
    assert_eq!(
        to_overrides["~1orders/GET"],
        Some(*cap),
        "capped at the stage's throttle"
    );
    assert_eq!(
        to_overrides["~1orders/POST"],
        Some(*cap),
        "an unthrottled method is capped too"
    );
    assert!(
        !to_overrides.contains_key("~1health/GET"),
        "a method already tighter is left as it is"
    );
    assert_eq!(from_overrides["~1orders/POST"], None);
    for _ in 0..10 {
        world.tick(&[(stage.clone(), flood)]);
    }
    let Limits::Stage {
        throttle: Some(stage_throttle),
        overrides,
    } = world.limits(&stage)
    else {
        panic!("throttled");
    };
    assert!(
        overrides.values().all(|o| o.is_some_and(
            |o| o.rate_limit <= stage_throttle.rate_limit && o.burst_limit <= stage_throttle.burst_limit
        )),
        "{overrides:?} under {stage_throttle:?}"
    );
    assert_eq!(overrides["~1health/GET"], Some(throttle(2, 1)));
    for _ in 0..240 {
        world.tick(&[(stage.clone(), calm)]);
    }
    assert_eq!(world.limits(&stage), original, "every override exactly as it was");
    assert_eq!(world.state(&stage).map(|s| s.phase), Some(Phase::Normal));
}

#[test]
fn async_destinations_stay_while_tightened_and_an_unset_retry_count_comes_back_unset() {
    let original_async = AsyncConfig {
        max_event_age_s: Some(3_600),
        max_retry_attempts: None,
        on_success: None,
        on_failure: Some("arn:aws:sqs:us-east-1:123456789012:failed-orders".into()),
    };
    let mut target = function("ingest", MB, true, None);
    target.limits = Limits::Function {
        reserved_concurrency: None,
        async_config: Some(original_async.clone()),
    };
    let original = target.limits.clone();
    let mut world =
        World::new()
            .with_target(target)
            .with_budget(spec("ingest-daily", "function:ingest", "240"));
    let f = id("function:ingest");
    world.history(&f, 60, half_pace());
    world.record(&f, epoch_minute(world.now) - 3, at(100));
    let decision = world.tick(&[(f.clone(), at(100))]);
    let Some(Change::AsyncInvokeConfig { to: Some(tight), .. }) = tightens(&decision)
        .iter()
        .map(|a| &a.change)
        .find(|c| matches!(c, Change::AsyncInvokeConfig { .. }))
    else {
        panic!("the event age is shortened: {:#?}", decision.actions);
    };
    assert_eq!(
        tight,
        &AsyncConfig {
            max_event_age_s: Some(60),
            max_retry_attempts: Some(0),
            ..original_async.clone()
        },
        "the whole config, the original's destination kept"
    );
    for _ in 0..240 {
        world.tick(&[(f.clone(), half_pace())]);
    }
    assert_eq!(world.limits(&f), original);
}
