//! The inventory function's handler over in-memory ports: no server, the time
//! passed in, and the production configuration.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::{Arch, GUARD_TAG, GUARD_TAG_VALUE, Limits, Phase, Target, TargetId, TargetSpec};
use dowguard_guard::inventory::{SLICES, Source};
use dowguard_guard::memory::{MemoryStack, steady_traffic};
use dowguard_guard::ports::InventoryStore;
use dowguard_inventory::handle_at;
use dowguard_runtime::{App, Config};
use lambda_runtime::Context;
use serde_json::Value;

const RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/dowguard-inventory-reconcile";

/// The deploy role of the fixture's CloudTrail event.
const DEPLOY: &str = "arn:aws:sts::123456789012:assumed-role/cfn-deploy/AWSCloudFormation";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The schedule fixture, sent by the inventory's own reconciliation rule.
fn reconcile_event() -> Value {
    let mut event = fixture("scheduled-event.json");
    event["resources"] = serde_json::json!([RULE]);
    event
}

fn event_time(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// What the template sets for the inventory function.
fn production_config() -> Config {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", "dowguard"),
        ("DOWGUARD_ACCOUNT_ID", "123456789012"),
        ("AWS_REGION", "us-east-1"),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_SCHEDULE_RULE_ARN", RULE),
    ]
    .into();
    Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_string())).unwrap()
}

fn function(name: &str, tags: &[(&str, &str)], reserved: Option<u32>) -> Target {
    let tags: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Target::new(
        TargetId::parse(&format!("function:{name}")).unwrap(),
        TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        tags,
        Limits::Function {
            reserved_concurrency: reserved,
            async_config: None,
        },
    )
}

fn checkout() -> TargetId {
    TargetId::parse("function:checkout").unwrap()
}

fn reserved(app: &App<MemoryStack>, id: &TargetId) -> Option<u32> {
    match app.stack.cloud.limits(id) {
        Some(Limits::Function {
            reserved_concurrency, ..
        }) => reserved_concurrency,
        other => panic!("{other:?}"),
    }
}

/// `checkout` (tagged for the guard, reserved 50, a $240 day budget) and
/// `search` (tagged), `legacy` (untagged, no budget).
async fn app(now: DateTime<Utc>) -> App<MemoryStack> {
    let stack = MemoryStack::default();
    let guarded = [(GUARD_TAG, GUARD_TAG_VALUE)];
    stack.cloud.data.lock().unwrap().targets.extend([
        function("checkout", &guarded, Some(50)),
        function("search", &guarded, None),
        function("legacy", &[], None),
    ]);
    stack
        .put_day_budget("checkout-daily", "function:checkout", "240", now)
        .await
        .unwrap();
    App::over(production_config(), stack).unwrap()
}

#[tokio::test]
async fn a_schedule_reconciles_the_guarded_functions_and_reports_the_trail() {
    let event = reconcile_event();
    let now = event_time(&event) + Duration::seconds(10);
    let app = app(now).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["trigger"], "reconcile", "{out}");
    assert_eq!(
        out["slices"].as_array().map(Vec::len),
        Some(usize::from(SLICES)),
        "a small account is read whole at once: {out}"
    );
    assert_eq!(
        out["trail"]["trail"],
        Value::Null,
        "no trail in the in-memory account"
    );
    let inventory = app.stack.store.load_inventory().await.unwrap();
    let ids: Vec<String> = inventory.entries.keys().map(ToString::to_string).collect();
    assert_eq!(
        ids,
        ["function:checkout", "function:search"],
        "untagged functions stay out"
    );
    assert!(inventory.gaps(now).is_empty(), "{:?}", inventory.gaps(now));
    assert!(!inventory.meta.value.has_trail());
    assert!(app.stack.cloud.calls().is_empty(), "a reconciliation only reads");
}

#[tokio::test]
async fn a_deploy_that_rewrites_a_held_reservation_during_an_attack_is_held_again_and_restored_later() {
    let event = fixture("cloudtrail-put-function-concurrency.json");
    let t0 = event_time(&event) - Duration::minutes(2);
    let app = app(t0).await;
    app.stack.reconcile(t0).await.unwrap();
    // The attack: the evaluator throttles checkout.
    app.stack
        .cloud
        .set_metrics(&checkout(), steady_traffic(t0, 20_000_000, 100));
    app.guard("evaluator").evaluate(t0).await.unwrap();
    let held = reserved(&app, &checkout());
    assert!(held.is_some_and(|n| n < 50), "throttled: {held:?}");

    // A deploy rewrites the reservation to 80 while the attack goes on.
    if let Some(Target {
        limits: Limits::Function {
            reserved_concurrency, ..
        },
        ..
    }) = app
        .stack
        .cloud
        .data
        .lock()
        .unwrap()
        .targets
        .iter_mut()
        .find(|t| t.id == checkout())
    {
        *reserved_concurrency = Some(80);
    }
    let now = event_time(&event) + Duration::seconds(30);
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["drift"][0]["by"], DEPLOY, "{out}");
    assert_eq!(
        reserved(&app, &checkout()),
        held,
        "the guard's limit is set again"
    );
    let state = app.stack.store.state(&checkout()).unwrap();
    assert!(state.phase.is_tightened(), "the hold stays");
    assert_eq!(
        state.restore_point.map(|rp| rp.limits),
        Some(Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None
        }),
        "the deploy's value is the original to restore"
    );
    let audit = app.stack.store.audit();
    assert!(
        audit.iter().any(|r| r.actor == DEPLOY && r.target == checkout()),
        "the change is audited under its author: {audit:?}"
    );
    let entry = &app.stack.store.load_inventory().await.unwrap().entries[&checkout()];
    assert_eq!(
        entry.value.target.limits,
        app.stack.cloud.limits(&checkout()).unwrap()
    );

    // The calm after: the evaluator restores the deploy's value, not the old one.
    let mut at = t0;
    for _ in 0..300 {
        at += Duration::minutes(1);
        app.stack
            .cloud
            .set_metrics(&checkout(), steady_traffic(at, 1_000, 100));
        app.guard("evaluator").evaluate(at).await.unwrap();
        if app
            .stack
            .store
            .state(&checkout())
            .is_some_and(|s| s.phase == Phase::Normal)
        {
            break;
        }
    }
    assert_eq!(
        reserved(&app, &checkout()),
        Some(80),
        "restored to the deploy's value"
    );
}

#[tokio::test]
async fn a_change_to_a_target_the_guard_does_not_hold_updates_the_inventory_and_applies_nothing() {
    let event = fixture("cloudtrail-put-function-concurrency.json");
    let now = event_time(&event) + Duration::seconds(30);
    let app = app(now).await;
    app.stack.reconcile(now).await.unwrap();
    if let Some(Target {
        limits: Limits::Function {
            reserved_concurrency, ..
        },
        ..
    }) = app
        .stack
        .cloud
        .data
        .lock()
        .unwrap()
        .targets
        .iter_mut()
        .find(|t| t.id == checkout())
    {
        *reserved_concurrency = Some(80);
    }
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["written"], serde_json::json!(["function:checkout"]), "{out}");
    assert_eq!(out["drift"], serde_json::json!([]), "{out}");
    assert!(app.stack.cloud.calls().is_empty(), "nothing applied");
    assert!(app.stack.store.audit().is_empty(), "nothing to audit");
    let entry = &app.stack.store.load_inventory().await.unwrap().entries[&checkout()];
    assert_eq!(
        entry.value.target.limits,
        Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None
        }
    );
    assert_eq!(
        entry.value.confirmed.source,
        Source::Event {
            event: "PutFunctionConcurrency20171031".into(),
            principal: Some(DEPLOY.into()),
        }
    );
    assert_eq!(reserved(&app, &checkout()), Some(80));
}

#[tokio::test]
async fn failed_foreign_and_stale_calls_are_rejected_and_change_nothing() {
    let event = fixture("cloudtrail-put-function-concurrency.json");
    let now = event_time(&event) + Duration::seconds(30);
    let app = app(now).await;
    for name in ["cloudtrail-failed-call.json", "cloudtrail-other-account.json"] {
        let out = handle_at(&app, &fixture(name), &Context::default(), now)
            .await
            .unwrap();
        assert!(out.get("rejected").is_some(), "{name}: {out}");
    }
    let late = handle_at(&app, &event, &Context::default(), now + Duration::minutes(11))
        .await
        .unwrap();
    assert!(
        late["rejected"].as_str().is_some_and(|r| r.contains("too old")),
        "{late}"
    );
    assert!(
        app.stack.cloud.reads().is_empty(),
        "a refused event reads nothing"
    );
    assert!(app.stack.store.load_inventory().await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn a_second_reconciliation_finds_the_lease_held_and_skips() {
    let event = reconcile_event();
    let now = event_time(&event) + Duration::seconds(10);
    let app = app(now).await;
    use dowguard_guard::ports::Leases;
    app.stack
        .store
        .acquire("inventory", "another-invocation", now + Duration::minutes(5), now)
        .await
        .unwrap()
        .unwrap();
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert!(out.get("skipped").is_some(), "{out}");
    assert!(app.stack.cloud.reads().is_empty());
}
