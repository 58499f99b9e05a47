//! One evaluation pass over the in-memory ports: ordering, dry-run, conflicts,
//! failures and convergence.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::{Budget, BudgetId, Change, Intent, Limits, Phase, TargetId, TargetKind};
use dowguard_guard::evaluate::PassOptions;
use dowguard_guard::memory::{MemoryCloud, MemoryStore, restore_point_kept};
use dowguard_guard::ports::{BudgetStore, StateStore, UnreadableItem};
use dowguard_guard::{FailureKind, Outcome, PassReport, PortError};
use support::{checkout, t0, traffic};

fn budget(mode: &str) -> Budget {
    support::budget("checkout-daily", "function:checkout", "240", mode)
}

const FLOOD: u64 = 20_000_000;
const CALM: u64 = 1_000;

type Fixture = support::Deployed;

impl Fixture {
    async fn new(mode: &str) -> Self {
        let store = MemoryStore::default();
        store.put_budget(&budget(mode), None, "test", t0()).await.unwrap();
        support::Deployed::over(store, MemoryCloud::with_targets(vec![checkout()]))
    }

    async fn run(&self, now: DateTime<Utc>) -> PassReport {
        self.pass("evaluator", now, &PassOptions::default()).await
    }
}

fn id() -> TargetId {
    TargetId::parse("function:checkout").unwrap()
}

#[tokio::test]
async fn a_flood_is_throttled_with_the_restore_point_stored_first_and_audited() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    let report = f.run(t0()).await;
    let state = f.store.state(&id()).expect("state stored");
    assert!(state.phase.is_tightened());
    assert_eq!(
        state.restore_point.as_ref().map(|rp| &rp.limits),
        Some(&checkout().limits),
        "the original 500 is kept"
    );
    let Some(Limits::Function {
        reserved_concurrency: Some(n),
        ..
    }) = f.cloud.limits(&id())
    else {
        panic!("no reservation");
    };
    assert!(n < 500, "tightened to {n}");
    assert_eq!(f.cloud.calls(), ["PutFunctionConcurrency function:checkout"]);
    let audit = f.store.audit();
    assert_eq!(audit.len(), report.decision.actions.len());
    assert!(audit.iter().all(|r| r.actor == "evaluator"));
    assert!(
        audit
            .iter()
            .any(|r| r.action.intent == Intent::Tighten && r.outcome == Outcome::Applied)
    );
    assert!(!f.cloud.notices().is_empty(), "the owner is told");
}

#[tokio::test]
async fn recovery_restores_the_original_and_audits_it() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.run(t0()).await;
    let mut now = t0();
    for _ in 0..240 {
        now += Duration::minutes(1);
        f.cloud.set_metrics(&id(), traffic(now, CALM));
        f.run(now).await;
    }
    assert_eq!(f.cloud.limits(&id()), Some(checkout().limits));
    assert_eq!(f.store.state(&id()).map(|s| s.phase), Some(Phase::Normal));
    assert!(
        f.store
            .audit()
            .iter()
            .any(|r| r.action.intent == Intent::Restore && r.outcome == Outcome::Applied)
    );
}

#[tokio::test]
async fn dry_run_changes_nothing_but_records_and_tells() {
    let f = Fixture::new("dry-run").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.run(t0()).await;
    assert_eq!(f.cloud.limits(&id()), Some(checkout().limits));
    assert!(f.cloud.calls().is_empty());
    let audit = f.store.audit();
    assert!(audit.iter().any(|r| r.action.intent == Intent::Tighten
        && matches!(&r.outcome, Outcome::Skipped { why } if why.contains("dry-run"))));
    assert!(!f.cloud.notices().is_empty());
}

#[tokio::test]
async fn a_state_conflict_skips_the_change_and_the_next_pass_decides_again() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.store.fail_next("SaveState", FailureKind::Conflict);
    let report = f.run(t0()).await;
    assert_eq!(report.conflicts, [id()]);
    assert!(
        f.cloud.calls().is_empty(),
        "no change without a stored restore point"
    );
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Skipped { .. }))
    );
    let next = f.run(t0() + Duration::minutes(1)).await;
    assert!(next.conflicts.is_empty());
    assert_eq!(
        f.cloud.calls().len(),
        1,
        "applied once, on the pass that stored the state"
    );
}

#[tokio::test]
async fn a_refused_change_is_reported_with_call_and_resource_then_converges() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.cloud
        .fail_next("PutFunctionConcurrency", FailureKind::Throttled);
    let report = f.run(t0()).await;
    let failed: Vec<&Outcome> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed { .. }))
        .collect();
    let [Outcome::Failed { kind, error }] = failed.as_slice() else {
        panic!("one failure expected: {:?}", report.outcomes);
    };
    assert_eq!(*kind, FailureKind::Throttled);
    assert!(
        error.contains("PutFunctionConcurrency") && error.contains("function:checkout"),
        "{error}"
    );
    assert_eq!(
        f.cloud.limits(&id()),
        Some(checkout().limits),
        "nothing half-done"
    );
    // The state says throttled; the next pass sees the limit missing and sets it.
    let next = f.run(t0() + Duration::minutes(1)).await;
    assert!(
        next.results()
            .any(|(a, o)| matches!(a.change, Change::ReservedConcurrency { .. }) && *o == Outcome::Applied)
    );
    assert_ne!(f.cloud.limits(&id()), Some(checkout().limits));
    let rp = f
        .store
        .state(&id())
        .and_then(|s| s.restore_point)
        .expect("restore point");
    assert_eq!(
        rp.limits,
        checkout().limits,
        "the restore point is still the original"
    );
}

#[tokio::test]
async fn stale_budget_writes_are_refused_and_history_is_kept() {
    let store = MemoryStore::default();
    let b = budget("enforce");
    let v1 = store.put_budget(&b, None, "alice", t0()).await.unwrap();
    let v2 = store.put_budget(&b, Some(v1), "bob", t0()).await.unwrap();
    let err = store
        .put_budget(&b, Some(v1), "carol", t0())
        .await
        .expect_err("stale");
    assert_eq!(err.kind, FailureKind::Conflict);
    assert!(err.to_string().contains("version 2"), "{err}");
    let again = store
        .put_budget(&b, None, "dave", t0())
        .await
        .expect_err("exists");
    assert_eq!(again.kind, FailureKind::Conflict);
    let history = store
        .budget_history(&BudgetId::parse("checkout-daily").unwrap())
        .await
        .unwrap();
    let who: Vec<&str> = history.iter().map(|h| h.actor.as_str()).collect();
    assert_eq!(who, ["alice", "bob"]);
    assert_eq!(v2, 2);
}

#[tokio::test]
async fn the_store_refuses_to_replace_a_held_targets_restore_point() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.run(t0()).await;
    let mut held = f.store.state(&id()).unwrap();
    let original = held.clone();
    held.restore_point.as_mut().unwrap().limits = Limits::Function {
        reserved_concurrency: Some(1),
        async_config: None,
    };
    assert!(!restore_point_kept(Some(&original), &held));
    let err = f.store.save_state(&id(), &held).await.expect_err("refused");
    assert_eq!(err.kind, FailureKind::Refused);
    assert_eq!(f.store.state(&id()), Some(original));
}

#[tokio::test]
async fn a_change_written_this_minute_is_not_sent_again_by_a_second_pass_that_minute() {
    let f = Fixture::new("enforce").await;
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    // The first pass stores its state and its change fails (or is still in flight).
    f.cloud
        .fail_next("PutFunctionConcurrency", FailureKind::Unavailable);
    f.run(t0()).await;
    assert_eq!(f.cloud.calls().len(), 1);
    // Another pass in the same minute (the alarm responder beside the evaluator)
    // must not send the same change a second time.
    f.run(t0()).await;
    assert_eq!(f.cloud.calls().len(), 1, "{:?}", f.cloud.calls());
    // The next minute's pass converges.
    f.run(t0() + Duration::minutes(1)).await;
    assert_eq!(f.cloud.calls().len(), 2, "{:?}", f.cloud.calls());
    assert_ne!(f.cloud.limits(&id()), Some(checkout().limits));
}

fn unavailable(operation: &'static str) -> PortError {
    PortError::new(
        operation,
        "account",
        FailureKind::Refused,
        "denied by a service control policy",
    )
}

#[tokio::test]
async fn a_service_that_cannot_be_listed_leaves_the_rest_guarded_and_reported() {
    let f = Fixture::new("enforce").await;
    let http = support::http_stage();
    f.cloud.data.lock().unwrap().targets.push(http.clone());
    f.cloud
        .data
        .lock()
        .unwrap()
        .unlisted
        .push((TargetKind::HttpStage, unavailable("GetApis")));
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    let report = f.run(t0()).await;
    assert_eq!(report.targets, 1, "the function is still discovered");
    assert!(
        f.store.state(&id()).is_some_and(|s| s.phase.is_tightened()),
        "and still guarded"
    );
    let why = report.gaps.kinds.get(&TargetKind::HttpStage).expect("reported");
    assert!(
        why.contains("GetApis") && why.contains("service control policy"),
        "{why}"
    );
    assert!(
        f.store.state(&http.id).is_none(),
        "nothing is decided about what could not be seen"
    );
}

#[tokio::test]
async fn an_account_budget_holds_its_targets_while_a_service_cannot_be_listed() {
    let f = Fixture::new("enforce").await;
    f.store
        .put_budget(
            &support::budget("all", "account", "240", "enforce"),
            None,
            "test",
            t0(),
        )
        .await
        .unwrap();
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    f.run(t0()).await;
    f.cloud
        .data
        .lock()
        .unwrap()
        .unlisted
        .push((TargetKind::HttpStage, unavailable("GetApis")));
    let mut now = t0();
    for _ in 0..240 {
        now += Duration::minutes(1);
        f.cloud.set_metrics(&id(), traffic(now, CALM));
        let report = f.run(now).await;
        assert!(
            report.results().all(|(a, _)| a.intent != Intent::Restore),
            "no restore while the account budget cannot see everything"
        );
    }
    assert!(f.store.state(&id()).is_some_and(|s| s.phase.is_tightened()));
    f.cloud.data.lock().unwrap().unlisted.clear();
    for _ in 0..60 {
        now += Duration::minutes(1);
        f.cloud.set_metrics(&id(), traffic(now, CALM));
        f.run(now).await;
    }
    assert_eq!(
        f.cloud.limits(&id()),
        Some(checkout().limits),
        "restored once whole again"
    );
}

#[tokio::test]
async fn unreadable_stored_items_are_reported_and_their_target_is_left_alone() {
    let f = Fixture::new("enforce").await;
    f.store.data.lock().unwrap().unreadable.push(UnreadableItem {
        key: "STATES/S#function:checkout".into(),
        target: Some(id()),
        why: "stored state unreadable: missing field `phase`".into(),
    });
    f.store.data.lock().unwrap().unreadable.push(UnreadableItem {
        key: "BUDGETS/B#old".into(),
        target: None,
        why: "budget item without spec".into(),
    });
    f.cloud.set_metrics(&id(), traffic(t0(), FLOOD));
    let report = f.run(t0()).await;
    assert!(f.cloud.calls().is_empty(), "{:?}", f.cloud.calls());
    assert!(report.gaps.states[&id()].contains("missing field"));
    assert_eq!(report.gaps.stored.len(), 1, "{:?}", report.gaps);
    assert!(!report.decision.reports[0].gaps.is_empty());
}

#[tokio::test]
async fn a_change_that_fails_on_every_pass_is_told_once_with_the_error_and_the_release_command() {
    let f = Fixture::new("enforce").await;
    for minute in 0..5 {
        let now = t0() + Duration::minutes(minute);
        f.cloud.set_metrics(&id(), traffic(now, FLOOD));
        f.cloud
            .fail_next("PutFunctionConcurrency", FailureKind::Throttled);
        let report = f.run(now).await;
        assert!(
            report
                .outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Failed { .. })),
            "pass {minute} tries the change again and it fails: {:#?}",
            report.outcomes
        );
    }
    let failed: Vec<_> = f
        .cloud
        .notices()
        .into_iter()
        .filter(|n| n.subject.contains("change failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].message.contains("dowguard release function:checkout"),
        "{}",
        failed[0].message
    );
    assert_eq!(failed[0].chat.metadata.event_type, "dowguard.failed");
    assert_eq!(
        f.cloud.limits(&id()),
        Some(checkout().limits),
        "nothing was changed"
    );
}
