//! Races over real HTTP: two evaluators and an alarm responder act on the same
//! targets at the same moment, every round of a flood and its recovery. The table's
//! conditional writes decide who acts: no update is lost, no change is applied
//! twice, and the audit trail of every target is one unbroken chain from its
//! original limits back to them.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeMap, HashSet};

use chrono::{DurationRound, Utc};
use dowguard_domain::{Change, Phase, TargetId};
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_guard::{AuditRecord, Outcome};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard};
use serde_json::Value;

/// The limit a change moves, its value before and after (as JSON, to compare).
fn edge(change: &Change) -> Option<(&'static str, Value, Value)> {
    match change {
        Change::ReservedConcurrency { from, to, .. } => Some(("concurrency", json(from), json(to))),
        Change::AsyncInvokeConfig { from, to, .. } => Some(("async-config", json(from), json(to))),
        Change::StageThrottle { from, to, .. } => Some(("stage-throttle", json(from), json(to))),
        Change::UsagePlanLimits {
            from_throttle,
            to_throttle,
            from_quota,
            to_quota,
            ..
        } => Some((
            "plan-limits",
            Value::Array(vec![json(from_throttle), json(from_quota)]),
            Value::Array(vec![json(to_throttle), json(to_quota)]),
        )),
        Change::MoveApiKey {
            from_plan, to_plan, ..
        } => Some(("api-key-plan", json(from_plan), json(to_plan))),
        Change::IpSetAddresses { add, remove, .. } => Some(("ip-set", json(remove), json(add))),
        Change::Notify { .. } => None,
    }
}

/// One applied change of one limit: when, from, to, by whom.
type Step = (chrono::DateTime<Utc>, Value, Value, String);

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evaluators_and_an_alarm_responder_at_once_apply_each_change_once() {
    let aws = LocalAws::start().await.unwrap();
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let example = ExampleAccount::seed(&aws, now).await.unwrap();
    let attack_end = dowguard_tests::account::attack_end_before(now);
    example.flood(&aws, attack_end, 10).await.unwrap();
    // Three processes, each with its own clients, as three Lambdas would have.
    let (a, b, r) = (
        LocalGuard::new(&aws).await.unwrap(),
        LocalGuard::new(&aws).await.unwrap(),
        LocalGuard::new(&aws).await.unwrap(),
    );
    let (evaluator_a, evaluator_b, responder) = (
        a.guard("evaluator-a"),
        b.guard("evaluator-b"),
        r.guard("alarm-responder"),
    );
    let originals = a.limits().await.unwrap();
    a.reconcile(Utc::now()).await.unwrap();
    let checkout = TargetId::parse("function:checkout").unwrap();
    let alarmed = HashSet::from([checkout.clone()]);

    let mut at = attack_end + chrono::Duration::minutes(1);
    let mut passes = 0;
    let mut conflicts = 0;
    for _round in 0..25 {
        let (ra, rb, rr) = tokio::join!(
            evaluator_a.evaluate(at),
            evaluator_b.evaluate(at),
            responder.evaluate_targets(at, &alarmed),
        );
        for report in [ra, rb, rr] {
            let report = report.expect("a pass never fails because another one ran");
            passes += 1;
            conflicts += report.conflicts.len();
        }
        // After every round the stored states agree with the account.
        let states = a.stack.store.load_states().await.unwrap();
        for t in a.stack.account.discover().await.unwrap() {
            let original = &originals[&t.id];
            let state = states.get(&t.id);
            if let Some(rp) = state.and_then(|s| s.restore_point.as_ref()) {
                assert_eq!(&rp.limits, original, "{}: restore point overwritten", t.id);
            }
            if &t.limits != original {
                let state = state.expect("a changed target has a state");
                assert!(
                    state.restore_point.is_some(),
                    "{}: changed without a restore point",
                    t.id
                );
                assert_eq!(state.applied.as_ref(), Some(&t.limits), "{}: lost update", t.id);
            }
        }
        at += chrono::Duration::minutes(5);
    }
    assert!(
        conflicts > 0,
        "the passes did race: {conflicts} conflicts in {passes} passes"
    );

    // The end: everything restored and normal.
    let states = a.stack.store.load_states().await.unwrap();
    for t in a.stack.account.discover().await.unwrap() {
        assert_eq!(t.limits, originals[&t.id], "{} restored exactly", t.id);
        assert_eq!(
            states.get(&t.id).map(|s| s.phase),
            Some(Phase::Normal),
            "{}",
            t.id
        );
    }

    // One audit trail: per target and limit, the applied changes form one chain
    // from the original back to it, whoever applied them.
    let mut audit: Vec<AuditRecord> = Vec::new();
    let mut day = attack_end.date_naive();
    while day <= at.date_naive() {
        audit.extend(a.stack.store.audit_of_day(day).await.unwrap());
        day = day.succ_opt().unwrap();
    }
    let mut chains: BTreeMap<(String, &'static str), Vec<Step>> = BTreeMap::new();
    for record in audit.iter().filter(|r| r.outcome == Outcome::Applied) {
        if let Some((limit, from, to)) = edge(&record.action.change) {
            chains
                .entry((record.target.to_string(), limit))
                .or_default()
                .push((record.at, from, to, record.actor.clone()));
        }
    }
    assert!(!chains.is_empty(), "the flood was acted on");
    let mut applied = 0;
    for ((target, limit), mut steps) in chains {
        steps.sort_by_key(|s| s.0);
        for pair in steps.windows(2) {
            assert_eq!(
                pair[0].2, pair[1].1,
                "{target} {limit}: {:?} then {:?} (a change applied twice, or one lost)",
                pair[0], pair[1]
            );
            assert!(
                pair[0].0 < pair[1].0,
                "{target} {limit}: two changes in one round: {steps:?}"
            );
        }
        assert_eq!(
            steps.first().map(|s| &s.1),
            steps.last().map(|s| &s.2),
            "{target} {limit}: the chain ends where it began"
        );
        applied += steps.len();
    }
    println!(
        "races: {passes} concurrent passes, {conflicts} conflicts refused by the table, \
         {applied} changes applied, each once"
    );
}
