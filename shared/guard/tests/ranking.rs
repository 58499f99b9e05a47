//! A pass ranks the callers of the REST API stages it tightens and holds the few
//! that cause the spend, over the in-memory account: the stage is left open when a
//! ranking and a lever exist, and is tightened whole when there is no ranking rule
//! yet or the ranking cannot be read.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use dowguard_domain::source::{HeldSource, Levers, Source, StageSources};
use dowguard_domain::{
    Change, Intent, MinuteUsage, Money, Prices, Target, TargetId, TargetMetrics, TargetSpec, Usage,
    UsagePlanId, epoch_minute,
};
use dowguard_guard::evaluate::{PassOptions, stages_to_rank, stages_worth_ranking};
use dowguard_guard::memory::{MemoryCloud, MemoryStore};
use dowguard_guard::ports::{BudgetStore, CallerRanking, StateStore};
use dowguard_guard::{FailureKind, Outcome, PassReport};
use support::{budget, shop, t0};

fn plan(id: &str) -> UsagePlanId {
    UsagePlanId::parse(id).unwrap()
}

fn stage_id() -> TargetId {
    shop().id
}

/// `rest-stage:shop/prod`, in usage plan `gold`.
fn stage() -> Target {
    let mut stage = shop();
    stage.usage_plans = BTreeSet::from([plan("gold")]);
    stage
}

/// Requests of the stage a minute at the day budget's pace.
fn pace(prices: &Prices) -> u64 {
    prices
        .list()
        .of(&TargetSpec::RestStage)
        .request()
        .units_for(Money::from_dollars(240))
        / 1_440
}

/// An hour at half the pace, its last three minutes flooded at 100 times it.
fn flooded(now: DateTime<Utc>, pace: u64) -> TargetMetrics {
    let last = epoch_minute(now) - 1;
    TargetMetrics {
        minutes: (0..60)
            .map(|k| {
                let requests = if k >= 57 { pace * 100 } else { pace / 2 };
                MinuteUsage {
                    minute: last - 59 + k,
                    usage: Usage {
                        requests,
                        throttled: 0,
                        duration_ms: 0,
                    },
                }
            })
            .collect(),
        to_date: vec![],
    }
}

/// One stolen key sends nearly all of the stage's requests; 99 customers' keys
/// one each.
fn stolen_key_ranking(now: DateTime<Utc>, pace: u64) -> StageSources {
    let mut top = vec![(Source::ApiKey("stolen".into()), pace * 100 - 99)];
    top.extend((0..99).map(|i| (Source::ApiKey(format!("customer{i}")), 1)));
    StageSources {
        through_minute: epoch_minute(now),
        window_minutes: 5,
        total_requests: pace * 100,
        distinct: 100,
        top,
    }
}

fn levers() -> Levers {
    Levers {
        quarantine_plan: Some(plan("quarantine")),
        key_plans: BTreeMap::from([("stolen".to_string(), plan("gold"))]),
        ip_set: None,
    }
}

type World = support::Deployed;

impl World {
    /// The stage flooded by one key, its day budget of $240 in enforce, and (if
    /// `ranked`) its ranking with the quarantine lever, its rule kept.
    async fn new(ranked: bool) -> Self {
        let store = MemoryStore::default();
        store
            .put_budget(
                &budget("api", "rest-stage:shop/prod", "240", "enforce"),
                None,
                "test",
                t0(),
            )
            .await
            .unwrap();
        let prices = support::prices();
        let pace = pace(&prices);
        let cloud = MemoryCloud::with_targets(vec![stage()]);
        cloud.set_metrics(&stage_id(), flooded(t0(), pace));
        {
            let mut data = cloud.data.lock().unwrap();
            data.plan_keys.insert(
                plan("gold"),
                BTreeSet::from(["stolen".to_string(), "customer0".to_string()]),
            );
            data.plan_keys.insert(plan("quarantine"), BTreeSet::new());
            if ranked {
                data.rankings
                    .insert(stage_id(), (stolen_key_ranking(t0(), pace), levers()));
            }
        }
        cloud.sync_rankings(&[stage()]).await.unwrap();
        support::Deployed::over(store, cloud)
    }

    async fn run(&self) -> PassReport {
        self.pass("evaluator", t0(), &PassOptions::default()).await
    }
}

fn applied_tightenings(report: &PassReport) -> Vec<Change> {
    report
        .results()
        .filter(|(a, o)| a.intent == Intent::Tighten && **o == Outcome::Applied)
        .map(|(a, _)| a.change.clone())
        .collect()
}

#[tokio::test]
async fn a_stage_flooded_by_one_key_has_the_key_quarantined_and_stays_open() {
    let world = World::new(true).await;
    let before = world.cloud.limits(&stage_id());
    let report = world.run().await;
    assert_eq!(report.ranked, vec![stage_id()]);
    assert_eq!(
        applied_tightenings(&report),
        vec![Change::MoveApiKey {
            stage: stage_id(),
            key: "stolen".into(),
            from_plan: plan("gold"),
            to_plan: plan("quarantine"),
        }]
    );
    assert_eq!(world.cloud.limits(&stage_id()), before, "the stage is left open");
    assert_eq!(
        world.cloud.plan_keys(&plan("quarantine")),
        BTreeSet::from(["stolen".to_string()])
    );
    assert_eq!(
        world.cloud.plan_keys(&plan("gold")),
        BTreeSet::from(["customer0".to_string()])
    );
    let states = world.store.load_states().await.unwrap();
    let held = &states.items[&stage_id()].held_sources;
    assert!(
        matches!(held.as_slice(), [HeldSource::Quarantined { key, .. }] if key == "stolen"),
        "{held:?}"
    );
}

#[tokio::test]
async fn without_a_ranking_rule_the_stage_is_tightened_whole() {
    let world = World::new(false).await;
    let before = world.cloud.limits(&stage_id());
    let report = world.run().await;
    assert!(report.ranked.is_empty());
    let changes = applied_tightenings(&report);
    assert!(
        changes.iter().any(|c| matches!(c, Change::StageThrottle { .. })),
        "{changes:?}"
    );
    assert_ne!(world.cloud.limits(&stage_id()), before);
    assert!(world.cloud.plan_keys(&plan("quarantine")).is_empty());
}

#[tokio::test]
async fn a_ranking_that_cannot_be_read_leaves_the_stage_to_the_backstop() {
    let world = World::new(true).await;
    world
        .cloud
        .fail_next("GetInsightRuleReport", FailureKind::Throttled);
    let before = world.cloud.limits(&stage_id());
    let report = world.run().await;
    assert!(report.ranked.is_empty());
    assert_ne!(world.cloud.limits(&stage_id()), before, "tightened whole");
    assert!(world.cloud.plan_keys(&plan("quarantine")).is_empty());
}

#[tokio::test]
async fn only_tightened_or_holding_rest_stages_are_ranked_and_only_covered_ones_get_rules() {
    let world = World::new(true).await;
    let report = world.run().await;
    let states = world.store.load_states().await.unwrap().items;
    // After the pass the stage holds a key: the next pass ranks it again, even
    // with nothing to tighten.
    let calm = dowguard_domain::Decision::default();
    assert_eq!(
        stages_to_rank(&calm, &[stage()], &states)
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>(),
        vec![stage_id()]
    );
    assert!(stages_to_rank(&calm, &[stage()], &Default::default()).is_empty());
    assert_eq!(
        stages_to_rank(&report.decision, &[support::http_stage()], &states),
        Vec::<Target>::new(),
        "an HTTP API stage has no lever"
    );
    let budgets = vec![budget("api", "rest-stage:shop/prod", "240", "enforce")];
    let mut other = stage();
    other.id = TargetId::parse("rest-stage:other/prod").unwrap();
    let mut unguarded = stage();
    unguarded.id = TargetId::parse("rest-stage:shop/test").unwrap();
    unguarded.guarded = false;
    let worth: Vec<TargetId> = stages_worth_ranking(&budgets, &[stage(), other, unguarded])
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(worth, vec![stage_id()]);
}
