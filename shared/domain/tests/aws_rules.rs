//! Decisions that follow what real AWS allows and what a pass could actually see:
//! the account's unreserved-concurrency minimum, the tag the guard's role needs,
//! usage plans (whose money their stages carry), and gaps in the pass's data.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::BTreeMap;

use dowguard_domain::{
    AccountConcurrency, Change, Gaps, Intent, Level, Limits, Money, Phase, Quota, QuotaPeriod, Rule, Target,
    TargetKind, TargetSpec, Throttle, epoch_minute,
};
use support::*;

const MB: u32 = 512;
const MS: u64 = 100;

fn at(daily: u64, multiple: u64) -> Demand {
    Demand {
        requests: lambda_rate(daily, multiple, u64::from(MB), MS),
        ms_each: MS,
    }
}

/// `multiple`× a $`daily` budget's pace of REST API requests, a minute.
fn rest_at(daily: u64, multiple: u64) -> Demand {
    let request = prices().list().of(&TargetSpec::RestStage).request();
    let dollars = i64::try_from(daily).expect("dollars");
    Demand {
        requests: request.units_for(Money::from_dollars(dollars)) / 1_440 * multiple,
        ms_each: 0,
    }
}

fn notes(decision: &dowguard_domain::Decision, rule: Rule) -> Vec<String> {
    decision
        .actions
        .iter()
        .filter(|a| a.intent == Intent::Notify && a.reason.rule == rule)
        .filter_map(|a| match &a.change {
            Change::Notify { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn flood_function(world: &mut World, name: &str, daily: u64, multiple: u64) {
    let f = id(&format!("function:{name}"));
    world.history(
        &f,
        60,
        Demand {
            requests: at(daily, 1).requests / 2,
            ms_each: MS,
        },
    );
    world.record(&f, epoch_minute(world.now) - 3, at(daily, multiple));
}

#[test]
fn the_unreserved_minimum_is_derived_from_the_account_limit() {
    for (limit, minimum) in [(10, 10), (50, 50), (100, 100), (1_000, 100), (5_000, 100)] {
        let c = AccountConcurrency::from_settings(limit, limit);
        assert_eq!(c.unreserved_minimum, minimum, "limit {limit}");
        assert_eq!((c.limit, c.unreserved_now), (limit, limit));
    }
}

#[test]
fn a_small_account_pool_throttles_no_function_by_reservation_and_says_why() {
    for limit in [10, 50] {
        let mut world = World::new()
            .with_target(function("checkout", MB, false, None))
            .with_budget(spec("checkout-daily", "function:checkout", "240"));
        world.concurrency = AccountConcurrency::from_settings(limit, limit);
        flood_function(&mut world, "checkout", 240, 100);
        let decision = world.decide();
        assert_eq!(decision.reports[0].level, Level::Throttle(3), "limit {limit}");
        let reservations: Vec<_> = changes(&decision)
            .into_iter()
            .filter(|a| matches!(a.change, Change::ReservedConcurrency { .. }))
            .collect();
        assert!(
            reservations.is_empty(),
            "limit {limit}: a throttle must not become a stop (reservation 0) nor cross the minimum: {reservations:#?}"
        );
        let why = notes(&decision, Rule::UnreservedMinimum);
        assert!(
            why.iter()
                .any(|m| m.contains("pool is too small to throttle by reservation")
                    && m.contains(&format!("concurrency limit is {limit}"))),
            "limit {limit}: {why:#?}"
        );
    }
}

#[test]
fn a_small_account_can_still_stop_an_exhausted_function() {
    let mut world = World::new()
        .with_target(function("checkout", MB, false, None))
        .with_budget(spec("checkout-daily", "function:checkout", "1"));
    world.concurrency = AccountConcurrency::from_settings(10, 10);
    let f = id("function:checkout");
    world.history(&f, 60, at(240, 10));
    let decision = world.decide();
    assert_eq!(decision.reports[0].level, Level::Stop);
    assert!(
        changes(&decision)
            .iter()
            .any(|a| matches!(a.change, Change::ReservedConcurrency { to: Some(0), .. })),
        "reserving 0 takes nothing from the pool: {:#?}",
        decision.actions
    );
}

fn untagged(mut target: Target) -> Target {
    target.guarded = false;
    target
}

#[test]
fn a_target_without_the_guard_tag_is_measured_and_reported_never_throttled() {
    let mut world = World::new()
        .with_target(untagged(function("checkout", MB, false, None)))
        .with_budget(spec("checkout-daily", "function:checkout", "240"));
    flood_function(&mut world, "checkout", 240, 100);
    let decision = world.decide();
    assert_eq!(
        decision.reports[0].level,
        Level::Throttle(3),
        "still measured and judged"
    );
    assert!(changes(&decision).is_empty(), "{:#?}", decision.actions);
    let why = notes(&decision, Rule::NotGuarded);
    assert_eq!(why.len(), 1, "{why:#?}");
    assert!(why[0].contains("dowguard-guarded=true"), "{}", why[0]);
    world.commit(&decision);
    // The next pass says nothing new and still changes nothing.
    let next = world.decide();
    assert!(changes(&next).is_empty() && notes(&next, Rule::NotGuarded).is_empty());
}

#[test]
fn an_http_stage_tagged_only_on_its_api_is_not_throttled_and_the_notice_says_why() {
    let mut stage = Target::new(
        id("http-stage:abc/live"),
        TargetSpec::HttpStage,
        BTreeMap::from([("dowguard-guarded".to_string(), "true".to_string())]),
        Limits::unset(TargetKind::HttpStage),
    );
    stage.guarded = false;
    let mut world =
        World::new()
            .with_target(stage)
            .with_budget(spec("live-daily", "http-stage:abc/live", "50"));
    let s = id("http-stage:abc/live");
    // HTTP API requests cost less than REST ones: flood hard enough for the fast lane.
    world.record(&s, epoch_minute(world.now) - 3, rest_at(50, 2_000));
    let decision = world.decide();
    assert!(
        decision.reports[0].level >= Level::Throttle(1),
        "{:#?}",
        decision.reports
    );
    assert!(changes(&decision).is_empty(), "{:#?}", decision.actions);
    let why = notes(&decision, Rule::NotGuarded);
    assert!(
        why.iter().any(|m| m.contains("HTTP API stages do not inherit")),
        "{why:#?}"
    );
}

fn plan(name: &str) -> Target {
    Target::new(
        id(&format!("usage-plan:{name}")),
        TargetSpec::UsagePlan,
        BTreeMap::new(),
        Limits::UsagePlan {
            throttle: Some(Throttle {
                rate_limit: 100.into(),
                burst_limit: 200,
            }),
            quota: Some(Quota {
                limit: 10_000,
                period: QuotaPeriod::Day,
                offset: 0,
            }),
        },
    )
}

fn stage_in(plans: &[&str]) -> Target {
    let mut stage = rest_stage("shop", "prod", None);
    stage.usage_plans = plans
        .iter()
        .map(|p| dowguard_domain::UsagePlanId::parse(p).unwrap())
        .collect();
    stage
}

#[test]
fn a_usage_plan_budget_caps_its_money_through_its_stages() {
    let mut world = World::new()
        .with_target(stage_in(&["partners"]))
        .with_target(plan("partners"))
        .with_budget(spec("partners-daily", "usage-plan:partners", "50"));
    let s = id("rest-stage:shop/prod");
    world.record(&s, epoch_minute(world.now) - 3, rest_at(50, 200));
    let decision = world.decide();
    let report = &decision.reports[0];
    assert_eq!(report.targets, 2, "the plan and its stage");
    assert!(report.level >= Level::Throttle(1), "{report:#?}");
    assert!(
        report.spent.is_positive(),
        "the stage's requests are the plan's spend"
    );
    let tightened: Vec<_> = tightens(&decision).iter().map(|a| a.change.clone()).collect();
    assert!(
        tightened
            .iter()
            .any(|c| matches!(c, Change::StageThrottle { stage, to: Some(_), .. } if *stage == s)),
        "the stage throttle is what caps the money: {tightened:#?}"
    );
    let plan_limits = tightened.iter().find_map(|c| match c {
        Change::UsagePlanLimits { to_throttle, .. } => *to_throttle,
        _ => None,
    });
    let stage_limit = tightened.iter().find_map(|c| match c {
        Change::StageThrottle { to, .. } => *to,
        _ => None,
    });
    assert!(
        plan_limits.is_some_and(|p| stage_limit.is_some_and(|s| p.rate_limit >= s.rate_limit)),
        "the plan's per-key throttle is the budget's whole allowance, never tighter than the stage: {plan_limits:?} {stage_limit:?}"
    );
}

#[test]
fn a_stage_in_two_plans_is_priced_once_by_each_budget() {
    let mut world = World::new()
        .with_target(stage_in(&["partners", "mobile"]))
        .with_target(plan("partners"))
        .with_target(plan("mobile"))
        .with_budget(spec("partners-daily", "usage-plan:partners", "5000"))
        .with_budget(spec("mobile-daily", "usage-plan:mobile", "5000"))
        .with_budget(spec("stage-daily", "rest-stage:shop/prod", "5000"))
        .with_budget(spec("all", "account", "5000"));
    let s = id("rest-stage:shop/prod");
    world.history(&s, 30, rest_at(50, 1));
    let decision = world.decide();
    let spent: Vec<_> = decision.reports.iter().map(|r| r.spent).collect();
    assert!(spent[0].is_positive());
    assert!(
        spent.iter().all(|s| *s == spent[0]),
        "every budget sees the stage's spend exactly once: {spent:?}"
    );
    assert_eq!(
        decision.reports[3].targets, 1,
        "the account covers the stage, not the plans"
    );
}

/// A function throttled by an account budget, ready to be restored once calm.
fn throttled_under_account_budget() -> World {
    let mut world = World::new()
        .with_target(function("checkout", MB, false, Some(400)))
        .with_budget(spec("all", "account", "240"));
    let f = id("function:checkout");
    world.history(
        &f,
        60,
        Demand {
            requests: at(240, 1).requests / 2,
            ms_each: MS,
        },
    );
    for _ in 0..10 {
        world.tick(&[(f.clone(), at(240, 100))]);
    }
    assert!(world.state(&f).is_some_and(|s| s.phase.is_tightened()));
    world
}

/// Runs `minutes` calm passes; returns how many restore actions they decided.
fn calm(world: &mut World, minutes: u32) -> usize {
    let f = id("function:checkout");
    let half = Demand {
        requests: at(240, 1).requests / 4,
        ms_each: MS,
    };
    (0..minutes)
        .map(|_| restores(&world.tick(&[(f.clone(), half)])).len())
        .sum()
}

#[test]
fn a_budget_whose_service_could_not_be_listed_never_relaxes_its_members() {
    let mut world = throttled_under_account_budget();
    world.gaps.kinds.insert(
        TargetKind::HttpStage,
        "HTTP API stages could not be listed (GetApis failed)".to_string(),
    );
    assert_eq!(
        calm(&mut world, 240),
        0,
        "held while the budget's figures may be missing"
    );
    let f = id("function:checkout");
    assert!(world.state(&f).is_some_and(|s| s.phase.is_tightened()));
    let report = &world.log.last().unwrap().reports[0];
    assert_eq!(
        report.gaps,
        vec!["HTTP API stages could not be listed (GetApis failed)".to_string()]
    );
    world.gaps = Gaps::default();
    assert!(
        calm(&mut world, 60) > 0,
        "restored once the figures are whole again"
    );
}

#[test]
fn a_member_with_partial_figures_is_held() {
    let mut world = throttled_under_account_budget();
    world.gaps.figures.insert(
        id("function:checkout"),
        "CloudWatch returned partial data".to_string(),
    );
    assert_eq!(calm(&mut world, 240), 0);
    assert!(world.log.last().unwrap().reports[0].gaps[0].contains("partial data"));
}

#[test]
fn a_target_whose_state_cannot_be_read_is_left_untouched() {
    let mut world = World::new()
        .with_target(function("checkout", MB, false, None))
        .with_budget(spec("checkout-daily", "function:checkout", "240"));
    flood_function(&mut world, "checkout", 240, 100);
    world
        .gaps
        .states
        .insert(id("function:checkout"), "stored state unreadable".to_string());
    let decision = world.decide();
    assert!(decision.actions.is_empty(), "{:#?}", decision.actions);
    assert!(decision.states.is_empty());
    assert_eq!(decision.reports[0].level, Level::Throttle(3), "still judged");
}

#[test]
fn an_unreadable_budget_keeps_a_target_that_no_readable_budget_covers() {
    let mut world = throttled_under_account_budget();
    world.budgets.clear();
    world
        .gaps
        .stored
        .push("budget `all`: stored budget unreadable".to_string());
    assert_eq!(calm(&mut world, 5), 0, "it may be the unreadable budget's");
    let f = id("function:checkout");
    assert!(world.state(&f).is_some_and(|s| s.phase.is_tightened()));
    world.gaps = Gaps::default();
    assert!(
        calm(&mut world, 30) > 0,
        "released after the cool-down once no budget covers it for sure"
    );
    assert_eq!(world.state(&f).map(|s| s.phase), Some(Phase::Recovering));
}
