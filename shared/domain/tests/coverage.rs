//! One coverage rule for the whole product: the budgets the audit derives a
//! recommendation from are the budgets whose allowance the guard enforces.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use chrono::{TimeZone, Utc};
use dowguard_domain::exposure::{self, EntryPoint, ExposureContext};
use dowguard_domain::{Change, Mode, Money, Period, TargetId, TargetSpec, epoch_minute};
use support::*;

fn tagged_stage(api: &str, team: &str) -> dowguard_domain::Target {
    let mut t = rest_stage(api, "prod", None);
    t.tags.insert("team".into(), team.into());
    t
}

/// Demand on every stage, for the whole hour before `world.now`, that costs
/// `dollars_a_day` at its pace.
fn flood_every_stage(world: &mut World, dollars_a_day: i64) {
    let rest = world.prices.list().of(&TargetSpec::RestStage);
    let per_minute = rest.request().units_for(Money::from_dollars(dollars_a_day)) / 1_440;
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
}

/// Decides, audits, and checks for each `(api, binding budget, mode)` that the audit
/// names that budget and that the guard throttles the stage, in that mode, to
/// exactly the audit's share of the money left.
fn assert_audit_and_guard_agree(world: &World, expected: &[(&str, &str, Mode)]) {
    let decision = world.decide();
    let entries: Vec<EntryPoint> = world
        .targets
        .iter()
        .map(|t| EntryPoint {
            target: t.clone(),
            timeout_s: None,
            open_methods: vec![],
            plans: vec![],
            open_url: false,
            access: None,
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
    let rest = world.prices.list().of(&TargetSpec::RestStage);
    let (_, day_end) = Period::Day.bounds(world.now);
    let remaining_s = i128::from((day_end - world.now).num_seconds());
    for (api, binding, mode) in expected {
        let id = id(&format!("rest-stage:{api}/prod"));
        let recommended = audit.iter().find(|e| e.target == id).expect("audited");
        assert_eq!(
            recommended.basis.budget.as_ref().map(|b| b.as_str()),
            Some(*binding),
            "{id}: {recommended:#?}"
        );
        let (rate, action) = decision
            .actions
            .iter()
            .find_map(|a| match &a.change {
                Change::StageThrottle {
                    stage, to: Some(t), ..
                } if *stage == id => Some((t.rate_limit, a)),
                _ => None,
            })
            .expect("throttled");
        assert_eq!(
            (action.mode, action.apply),
            (*mode, *mode == Mode::Enforce),
            "{id}"
        );
        let share_per_s = Money::from_picos(recommended.basis.amount.picos() / remaining_s);
        assert_eq!(
            rate,
            rest.request().units_for(share_per_s).into(),
            "{id}: the guard's allowance is the audit's share of what is left"
        );
    }
}

/// A world three minutes into a day, where each throttle level allows the whole
/// remaining pace (so the throttle is the share itself) and nothing is spent yet
/// (so every budget has its whole amount left).
fn start_of_day() -> World {
    let mut world = World::new();
    world.settings.level_allowance_millionths = vec![1_000_000];
    world.now = Utc
        .with_ymd_and_hms(2026, 11, 23, 0, 3, 0)
        .single()
        .expect("time");
    world
}

/// Four stages under several budgets each: one of their own, their team's, the
/// account's, and a dry-run budget tighter than all of them. For every stage the
/// audit names the budget whose share binds it, and the guard's throttle spends
/// exactly that share of the money left, no more.
#[test]
fn the_audit_recommends_from_the_budget_whose_allowance_the_guard_enforces() {
    let mut world = start_of_day();
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
    // Five times what the loosest budget's share ($200 a day) pays for.
    flood_every_stage(&mut world, 200 * 5);
    assert_audit_and_guard_agree(
        &world,
        &[
            ("a1", "shop", Mode::Enforce),
            ("b2", "shop", Mode::Enforce),
            ("c3", "account", Mode::Enforce),
            ("d4", "account", Mode::Enforce),
        ],
    );
}

/// Enforcing and dry-run budgets mixed at every scope: a target budget, tag budgets
/// and the account budget, some enforcing and some dry-run. Where an enforcing
/// budget covers a stage, the tightest enforcing one binds it and dry-run ones do
/// not count, however tight; where only dry-run budgets cover it, the tightest of
/// those binds it, in dry-run. The audit and the guard agree on every stage.
#[test]
fn the_audit_and_the_guard_agree_when_dry_run_and_enforcing_budgets_mix() {
    let mut world = start_of_day();
    for (api, team) in [
        ("a1", "shop"),
        ("b2", "shop"),
        ("c3", "search"),
        ("d4", "search"),
        ("e5", "lab"),
    ] {
        world.targets.push(tagged_stage(api, team));
    }
    let dry_run = |mut s: dowguard_domain::BudgetSpec| {
        s.mode = "dry-run".into();
        s
    };
    world = world
        .with_budget(spec("own-a", "rest-stage:a1/prod", "200"))
        .with_budget(spec("shop", "tag:team=shop", "60"))
        .with_budget(dry_run(spec("search", "tag:team=search", "40")))
        .with_budget(dry_run(spec("account", "account", "500")))
        .with_budget(spec("own-c", "rest-stage:c3/prod", "120"))
        .with_budget(dry_run(spec("lab", "tag:team=lab", "25")))
        .with_budget(dry_run(spec("own-d", "rest-stage:d4/prod", "10")));
    // Every stage spends ten times its loosest share ($100 a day of the account's).
    flood_every_stage(&mut world, 100 * 10);
    assert_audit_and_guard_agree(
        &world,
        &[
            ("a1", "shop", Mode::Enforce),
            ("b2", "shop", Mode::Enforce),
            ("c3", "own-c", Mode::Enforce),
            ("d4", "own-d", Mode::DryRun),
            ("e5", "lab", Mode::DryRun),
        ],
    );
}
