//! The source actuators through the executor, over the in-memory account: an API
//! key quarantined and released, addresses blocked and unblocked, each exactly,
//! retried passes, a failed move, and dry-run.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeSet, HashMap};

use dowguard_domain::source::{HeldSource, IpSetRef, cidr_of};
use dowguard_domain::{
    Action, BurnRate, Change, Intent, Level, Mode, Money, Reason, Rule, TargetId, UsagePlanId, targeted,
};
use dowguard_guard::memory::MemoryCloud;
use dowguard_guard::{Executor, FailureKind, Outcome};

fn stage() -> TargetId {
    TargetId::parse("rest-stage:a1b2c3/prod").unwrap()
}

fn plan(id: &str) -> UsagePlanId {
    UsagePlanId::parse(id).unwrap()
}

fn blocked_set() -> IpSetRef {
    IpSetRef {
        name: "dowguard-blocked".into(),
        id: "set1".into(),
        scope: "REGIONAL".into(),
    }
}

fn action(change: Change, intent: Intent, apply: bool) -> Action {
    Action {
        target: stage(),
        change,
        intent,
        mode: if apply { Mode::Enforce } else { Mode::DryRun },
        apply,
        priority: Money::ZERO,
        reason: Reason {
            budget: None,
            rule: Rule::MultiWindow,
            level: Level::Normal,
            spent: Money::ZERO,
            amount: Money::ZERO,
            projected: Money::ZERO,
            burn_short: BurnRate(0),
            burn_long: BurnRate(0),
        },
    }
}

fn actions(changes: Vec<Change>, intent: Intent, apply: bool) -> Vec<Action> {
    changes.into_iter().map(|c| action(c, intent, apply)).collect()
}

/// `gold` holds the stolen key and a customer's; `quarantine` holds another
/// quarantined key; the IP set holds two addresses someone else blocked.
fn cloud() -> MemoryCloud {
    let cloud = MemoryCloud::default();
    {
        let mut data = cloud.data.lock().unwrap();
        data.plan_keys
            .insert(plan("gold"), BTreeSet::from(["stolen".into(), "customer".into()]));
        data.plan_keys
            .insert(plan("quarantine"), BTreeSet::from(["earlier".into()]));
        data.ip_sets.insert(
            "set1".into(),
            BTreeSet::from(["192.0.2.0/24".into(), "198.51.100.1/32".into()]),
        );
    }
    cloud
}

/// When the guard took hold of the sources below.
fn since() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_500_000, 0).unwrap_or_default()
}

fn stolen_key() -> HeldSource {
    HeldSource::Quarantined {
        since: since(),
        key: "stolen".into(),
        original_plan: plan("gold"),
        quarantine_plan: plan("quarantine"),
    }
}

fn attackers() -> Vec<HeldSource> {
    ["203.0.113.7", "203.0.113.8", "2001:db8::1"]
        .into_iter()
        .map(|ip| HeldSource::Blocked {
            since: since(),
            address: cidr_of(ip),
            ip_set: blocked_set(),
        })
        .collect()
}

async fn run(cloud: &MemoryCloud, actions: &[Action]) -> Vec<Outcome> {
    let executor = Executor {
        account: cloud,
        notifier: cloud,
    };
    executor.run(actions, &HashMap::new()).await
}

#[tokio::test]
async fn a_quarantined_key_is_released_back_to_its_own_plan_exactly() {
    let cloud = cloud();
    let (gold, quarantine) = (
        cloud.plan_keys(&plan("gold")),
        cloud.plan_keys(&plan("quarantine")),
    );

    let hold = actions(targeted::hold(&stage(), &[stolen_key()]), Intent::Tighten, true);
    assert_eq!(run(&cloud, &hold).await, vec![Outcome::Applied]);
    assert_eq!(
        cloud.plan_keys(&plan("gold")),
        BTreeSet::from(["customer".into()])
    );
    assert_eq!(
        cloud.plan_keys(&plan("quarantine")),
        BTreeSet::from(["earlier".into(), "stolen".into()])
    );

    let release = actions(
        targeted::release(&stage(), &[stolen_key()]),
        Intent::Restore,
        true,
    );
    assert_eq!(run(&cloud, &release).await, vec![Outcome::Applied]);
    assert_eq!(cloud.plan_keys(&plan("gold")), gold);
    assert_eq!(cloud.plan_keys(&plan("quarantine")), quarantine);
}

#[tokio::test]
async fn a_retried_key_move_succeeds_and_changes_nothing_more() {
    let cloud = cloud();
    let hold = actions(targeted::hold(&stage(), &[stolen_key()]), Intent::Tighten, true);
    run(&cloud, &hold).await;
    let after_first = (
        cloud.plan_keys(&plan("gold")),
        cloud.plan_keys(&plan("quarantine")),
    );
    assert_eq!(run(&cloud, &hold).await, vec![Outcome::Applied]);
    assert_eq!(
        (
            cloud.plan_keys(&plan("gold")),
            cloud.plan_keys(&plan("quarantine"))
        ),
        after_first
    );
}

#[tokio::test]
async fn a_key_that_cannot_join_the_quarantine_plan_goes_back_to_its_own() {
    let cloud = cloud();
    let gold = cloud.plan_keys(&plan("gold"));
    cloud.fail_next("CreateUsagePlanKey", FailureKind::Throttled);
    let hold = actions(targeted::hold(&stage(), &[stolen_key()]), Intent::Tighten, true);
    let outcomes = run(&cloud, &hold).await;
    assert!(
        matches!(
            &outcomes[..],
            [Outcome::Failed {
                kind: FailureKind::Throttled,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert_eq!(cloud.plan_keys(&plan("gold")), gold);
    assert!(!cloud.plan_keys(&plan("quarantine")).contains("stolen"));
}

#[tokio::test]
async fn blocked_addresses_are_unblocked_exactly_and_other_entries_are_kept() {
    let cloud = cloud();
    let before = cloud.ip_set("set1");

    let hold = actions(targeted::hold(&stage(), &attackers()), Intent::Tighten, true);
    assert_eq!(hold.len(), 1, "one update for one IP set");
    assert_eq!(run(&cloud, &hold).await, vec![Outcome::Applied]);
    let mut expected = before.clone();
    expected.extend([
        "203.0.113.7/32".into(),
        "203.0.113.8/32".into(),
        "2001:db8::1/128".into(),
    ]);
    assert_eq!(cloud.ip_set("set1"), expected);

    // A retried pass adds nothing twice.
    assert_eq!(run(&cloud, &hold).await, vec![Outcome::Applied]);
    assert_eq!(cloud.ip_set("set1"), expected);

    let release = actions(targeted::release(&stage(), &attackers()), Intent::Restore, true);
    assert_eq!(run(&cloud, &release).await, vec![Outcome::Applied]);
    assert_eq!(cloud.ip_set("set1"), before);
}

#[tokio::test]
async fn dry_run_moves_no_key_and_blocks_no_address() {
    let cloud = cloud();
    let (gold, set) = (cloud.plan_keys(&plan("gold")), cloud.ip_set("set1"));
    let mut held = attackers();
    held.push(stolen_key());
    let hold = actions(targeted::hold(&stage(), &held), Intent::Tighten, false);
    let outcomes = run(&cloud, &hold).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Skipped { .. })),
        "{outcomes:?}"
    );
    assert_eq!(cloud.plan_keys(&plan("gold")), gold);
    assert_eq!(cloud.ip_set("set1"), set);
    assert!(cloud.calls().is_empty());
}
