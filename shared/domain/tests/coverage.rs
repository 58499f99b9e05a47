//! One coverage rule for the whole product: the budgets the audit derives a
//! recommendation from are the budgets whose allowance the guard enforces.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use chrono::{Duration, TimeZone, Utc};
use dowguard_domain::exposure::{self, EntryPoint, ExposureContext};
use dowguard_domain::{Change, Money, Period, TargetId, TargetSpec, epoch_minute};
use support::*;

fn tagged_stage(api: &str, team: &str) -> dowguard_domain::Target {
    let mut t = rest_stage(api, "prod", None);
    t.tags.insert("team".into(), team.into());
    t
}

/// Four stages under several budgets each: one of their own, their team's, the
/// account's, and a dry-run budget tighter than all of them. For every stage the
/// audit names the budget whose share binds it, and the guard's throttle spends
/// exactly that share of the money left, no more.
#[test]
fn the_audit_recommends_from_the_budget_whose_allowance_the_guard_enforces() {
    let mut world = World::new();
    for (api, team) in [("a1", "shop"), ("b2", "shop"), ("c3", "search"), ("d4", "search")] {
        world.targets.push(tagged_stage(api, team));
    }
    let mut dry = spec("dry", "rest-stage:d4/prod", "10");
    dry.mode = "dry-run".into();
    world = world
        .with_budget(spec("own-a", "rest-stage:a1/prod", "200"))
        .with_budget(spec("shop", "tag:team=shop", "60"))
        .with_budget(spec("search", "tag:team=search", "400"))
        .with_budget(spec("account", "account", "160"))
        .with_budget(dry);
    // Each level allows the whole remaining pace, so the throttle is the share itself.
    world.settings.level_allowance_millionths = vec![1_000_000];
    // Three minutes into a day: the demand of the hour before counts in both
    // windows and nothing is spent yet, so every budget has its whole amount left.
    world.now = Utc
        .with_ymd_and_hms(2026, 11, 23, 0, 3, 0)
        .single()
        .expect("time");
    let rest = world.prices.list().of(&TargetSpec::RestStage);
    // Five times what the loosest budget's share ($200 a day) pays for.
    let per_minute = rest.request().units_for(Money::from_dollars(200 * 5)) / 1_440;
    let ids: Vec<TargetId> = world.targets.iter().map(|t| t.id.clone()).collect();
    let last = epoch_minute(world.now) - 4;
    for id in &ids {
        for m in (last - 59)..=last {
            world.record(
                id,
                m,
                Demand {
                    requests: per_minute,
                    ms_each: 0,
                },
            );
        }
    }
    let decision = world.decide();
    let entries: Vec<EntryPoint> = world
        .targets
        .iter()
        .map(|t| EntryPoint {
            target: t.clone(),
            timeout_s: None,
            open_methods: vec![],
            plans: vec![],
        })
        .collect();
    let audit = exposure::rank(
        &entries,
        &ExposureContext {
            budgets: &world.budgets,
            prices: &world.prices,
            now: world.now,
            account_concurrency: 1_000,
            default_budget: Money::from_dollars(100),
        },
    );
    let (_, day_end) = Period::Day.bounds(world.now);
    let remaining_s = i128::from((day_end - world.now).num_seconds());
    let expected = [
        ("a1", "shop"),
        ("b2", "shop"),
        ("c3", "account"),
        ("d4", "account"),
    ];
    for (api, binding) in expected {
        let id = id(&format!("rest-stage:{api}/prod"));
        let recommended = audit.iter().find(|e| e.target == id).expect("audited");
        assert_eq!(
            recommended.basis.budget.as_ref().map(|b| b.as_str()),
            Some(binding),
            "{id}: {recommended:#?}"
        );
        let rate = decision
            .actions
            .iter()
            .find_map(|a| match &a.change {
                Change::StageThrottle {
                    stage, to: Some(t), ..
                } if *stage == id => Some(t.rate_limit),
                _ => None,
            })
            .expect("throttled");
        let share_per_s = Money::from_picos(recommended.basis.amount.picos() / remaining_s);
        assert_eq!(
            rate,
            rest.request().units_for(share_per_s).into(),
            "{id}: the guard's allowance is the audit's share of what is left"
        );
    }
    assert!(world.now + Duration::hours(1) < day_end);
}
