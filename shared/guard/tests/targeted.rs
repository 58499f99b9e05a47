//! Passes scoped to a few targets (the alarm responder's) and passes of a deployment
//! capped to dry-run, over the in-memory ports.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use dowguard_domain::{Arch, Budget, Intent, Limits, Target, TargetId, TargetMetrics, TargetSpec};
use dowguard_guard::evaluate::PassOptions;
use dowguard_guard::memory::{MemoryCloud, MemoryStore};
use dowguard_guard::ports::BudgetStore;
use dowguard_guard::{Outcome, PassReport};
use support::t0;

fn function(name: &str, tags: &[(&str, &str)]) -> Target {
    Target {
        id: TargetId::parse(&format!("function:{name}")).unwrap(),
        spec: TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        tags: tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect::<BTreeMap<_, _>>(),
        limits: Limits::Function {
            reserved_concurrency: Some(500),
            async_config: None,
        },
        guarded: true,
        usage_plans: Default::default(),
    }
}

fn budget(id: &str, scope: &str) -> Budget {
    support::budget(id, scope, "240", "enforce")
}

/// An hour of 20 million requests a minute of 100 ms each.
fn flood(now: DateTime<Utc>) -> TargetMetrics {
    support::traffic(now, 20_000_000)
}

type World = support::Deployed;

impl World {
    /// `checkout` and `search` (tagged team=shop) and `report`, each with its own
    /// budget, plus a tag budget over the shop team; all three flooded.
    async fn new() -> Self {
        let store = MemoryStore::default();
        for b in [
            budget("checkout", "function:checkout"),
            budget("report", "function:report"),
            budget("shop", "tag:team=shop"),
        ] {
            store.put_budget(&b, None, "test", t0()).await.unwrap();
        }
        let cloud = MemoryCloud::with_targets(vec![
            function("checkout", &[("team", "shop")]),
            function("search", &[("team", "shop")]),
            function("report", &[]),
        ]);
        for name in ["checkout", "search", "report"] {
            cloud.set_metrics(
                &TargetId::parse(&format!("function:{name}")).unwrap(),
                flood(t0()),
            );
        }
        support::Deployed::over(store, cloud)
    }

    async fn run(&self, options: &PassOptions) -> PassReport {
        self.pass("alarm-responder", t0(), options).await
    }

    fn reserved(&self, name: &str) -> Option<u32> {
        match self
            .cloud
            .limits(&TargetId::parse(&format!("function:{name}")).unwrap())
        {
            Some(Limits::Function {
                reserved_concurrency, ..
            }) => reserved_concurrency,
            other => panic!("not a function: {other:?}"),
        }
    }
}

fn tightened(report: &PassReport) -> HashSet<String> {
    report
        .results()
        .filter(|(a, o)| a.intent == Intent::Tighten && **o == Outcome::Applied)
        .map(|(a, _)| a.target.to_string())
        .collect()
}

#[tokio::test]
async fn a_targeted_pass_judges_the_group_but_changes_only_the_alarmed_target() {
    let world = World::new().await;
    let only: HashSet<TargetId> = [TargetId::parse("function:checkout").unwrap()].into();
    let report = world
        .run(&PassOptions {
            only: Some(only),
            ..PassOptions::default()
        })
        .await;
    let budgets: HashSet<String> = report.reports().iter().map(|r| r.budget.to_string()).collect();
    assert_eq!(
        budgets,
        ["checkout".to_string(), "shop".to_string()].into(),
        "the group budget is judged whole"
    );
    assert_eq!(tightened(&report), ["function:checkout".to_string()].into());
    assert!(world.reserved("checkout").is_some_and(|r| r < 500));
    assert_eq!(
        world.reserved("search"),
        Some(500),
        "a member of the group the alarm does not name is left to the evaluator"
    );
    assert_eq!(
        world.reserved("report"),
        Some(500),
        "outside the closure: untouched"
    );
    assert!(
        world
            .cloud
            .calls()
            .iter()
            .all(|c| c.ends_with("function:checkout")),
        "{:?}",
        world.cloud.calls()
    );
}

#[tokio::test]
async fn a_full_pass_tightens_every_flooded_target() {
    let world = World::new().await;
    let report = world.run(&PassOptions::default()).await;
    assert_eq!(tightened(&report).len(), 3, "{:?}", tightened(&report));
    assert!(world.reserved("report").is_some_and(|r| r < 500));
}

#[tokio::test]
async fn a_dry_run_deployment_decides_but_changes_nothing() {
    let world = World::new().await;
    let report = world
        .run(&PassOptions {
            only: None,
            dry_run_only: true,
            ..PassOptions::default()
        })
        .await;
    let decided = report
        .results()
        .filter(|(a, _)| a.intent == Intent::Tighten)
        .count();
    assert!(decided >= 3, "the same tightening is decided");
    assert!(
        report
            .results()
            .filter(|(a, _)| a.intent == Intent::Tighten)
            .all(|(a, o)| !a.apply && matches!(o, Outcome::Skipped { .. }))
    );
    for name in ["checkout", "search", "report"] {
        assert_eq!(world.reserved(name), Some(500), "{name}");
    }
}
