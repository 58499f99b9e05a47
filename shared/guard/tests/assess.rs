//! The read-only assessment: the same figures as a pass, nothing saved or changed.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use chrono::Duration;
use dowguard_domain::{GuardSettings, Level, Phase};
use dowguard_guard::inventory::Slices;
use dowguard_guard::memory::{MemoryCloud, MemoryStore};
use dowguard_guard::ports::{BudgetStore, StateStore, Wired};
use dowguard_guard::{Guard, assess};
use support::{checkout, prices, shop, t0, traffic};

#[tokio::test]
async fn assessing_a_flood_reports_the_level_but_saves_and_changes_nothing() {
    let store = MemoryStore::default();
    let budget = support::budget("checkout-daily", "function:checkout", "240", "enforce");
    store.put_budget(&budget, None, "test", t0()).await.unwrap();
    let cloud = MemoryCloud::with_targets(vec![checkout(), shop()]);
    let now = t0() + Duration::hours(1);
    cloud.set_metrics(&checkout().id, traffic(now, 20_000_000));
    let (prices, settings) = (prices(), GuardSettings::default());

    let assessment = assess(&store, &cloud, &cloud, &prices, &settings, now)
        .await
        .unwrap();
    let report = assessment.report(&budget).expect("a report per budget");
    assert!(report.level >= Level::Throttle(1), "{report:?}");
    assert!(report.spent.is_positive());
    assert!(!assessment.decision.actions.is_empty(), "the guard would act");
    assert_eq!(assessment.members(&budget).len(), 1);
    assert!(!assessment.anything_throttled(), "nothing is held yet");
    assert!(store.load_states().await.unwrap().is_empty(), "no state saved");
    assert!(store.audit().is_empty(), "nothing audited");
    assert_eq!(
        cloud.limits(&checkout().id),
        Some(checkout().limits),
        "limits untouched"
    );

    // The same inputs through a real pass do act: the assessment saw what it would.
    let ports = Wired {
        store: &store,
        account: &cloud,
        notifier: &cloud,
    };
    let guard = Guard {
        ports: &ports,
        prices: &prices,
        settings: &settings,
        actor: "evaluator",
    };
    guard.keeper().reconcile(now, Slices::All).await.unwrap();
    let pass = guard.evaluate(now).await.unwrap();
    assert_eq!(pass.decision.reports, assessment.decision.reports);
    let after = assess(&store, &cloud, &cloud, &prices, &settings, now)
        .await
        .unwrap();
    assert!(after.anything_throttled());
    assert!(matches!(
        after.states[&checkout().id].phase,
        Phase::Throttled { .. } | Phase::Stopped
    ));
}
