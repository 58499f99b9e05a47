//! The evaluator's handler over in-memory ports: no server, the time passed in, and
//! the production configuration (the template's variables, the 10-minute event age).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::HashMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use dowguard_domain::{Arch, Limits, Target, TargetId, TargetSpec};
use dowguard_evaluator::handle_at;
use dowguard_guard::memory::{MemoryStack, steady_traffic};
use dowguard_runtime::{App, Config};
use lambda_runtime::Context;
use serde_json::Value;

/// The fixture `scheduled-event.json`, as EventBridge delivers it.
fn scheduled_event() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/events/scheduled-event.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn event_time(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// What the template sets by default, with nothing widened for tests.
fn production_config() -> Config {
    config_with(&[])
}

/// [`production_config`] with `extra` parameters' variables set.
fn config_with(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", "dowguard"),
        ("DOWGUARD_ACCOUNT_ID", "123456789012"),
        ("AWS_REGION", "us-east-1"),
        ("DOWGUARD_MODE", "enforce"),
        (
            "DOWGUARD_SCHEDULE_RULE_ARN",
            "arn:aws:events:us-east-1:123456789012:rule/dowguard-evaluator-schedule",
        ),
        ("DOWGUARD_ALARMS", "needed"),
        ("DOWGUARD_SCHEDULE_MINUTES", "1"),
    ]
    .into();
    vars.extend(extra.iter().copied());
    Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_string())).unwrap()
}

fn checkout() -> Target {
    Target::new(
        TargetId::parse("function:checkout").unwrap(),
        TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        Default::default(),
        Limits::Function {
            reserved_concurrency: Some(500),
            async_config: None,
        },
    )
}

/// An in-memory account: `function:checkout` with a $240 day budget, flooded at
/// about 100 times its pace for the hour before `now`.
async fn flooded_app(now: DateTime<Utc>) -> App<MemoryStack> {
    flooded_app_with(now, production_config()).await
}

/// [`flooded_app`] under `config`.
async fn flooded_app_with(now: DateTime<Utc>, config: Config) -> App<MemoryStack> {
    let stack = MemoryStack::default();
    stack.cloud.data.lock().unwrap().targets.push(checkout());
    stack.cloud.set_metrics(
        &TargetId::parse("function:checkout").unwrap(),
        steady_traffic(now, 20_000_000, 100),
    );
    stack
        .put_day_budget("checkout-daily", "function:checkout", "240", now)
        .await
        .unwrap();
    stack.reconcile(now).await.unwrap();
    App::over(config, stack).unwrap()
}

/// Asserts the pass set `checkout`'s reservation; returns the calls it made.
fn assert_checkout_throttled(app: &App<MemoryStack>) -> Vec<String> {
    let calls = app.stack.cloud.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("PutFunctionConcurrency function:checkout")),
        "{calls:?}"
    );
    calls
}

#[tokio::test]
async fn a_scheduled_event_every_five_minutes_throttles_the_flood_and_syncs_one_alarm() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app_with(now, config_with(&[("DOWGUARD_SCHEDULE_MINUTES", "5")])).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert!(out.get("pass_at").is_some(), "{out}");
    assert_eq!(
        out["alarms"]["put"],
        serde_json::json!(["dowguard-function:checkout"]),
        "{out}"
    );
    assert_checkout_throttled(&app);
    let state = app
        .stack
        .store
        .state(&TargetId::parse("function:checkout").unwrap());
    assert!(state.is_some_and(|s| s.phase.is_tightened()));
}

#[tokio::test]
async fn at_the_default_schedule_the_pass_acts_alone_and_keeps_no_alarm() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app(now).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert!(out.get("pass_at").is_some(), "{out}");
    let calls = assert_checkout_throttled(&app);
    // The fixture is at 06:01: off the hour the sync does not even list alarms.
    assert_eq!(event_time(&event).minute(), 1);
    assert!(out.get("alarms").is_none(), "{out}");
    assert!(!calls.iter().any(|c| c.contains("Alarm")), "{calls:?}");
    let every_target = flooded_app_with(now, config_with(&[("DOWGUARD_ALARMS", "every-target")])).await;
    let out = handle_at(&every_target, &event, &Context::default(), now)
        .await
        .unwrap();
    assert_eq!(
        out["alarms"]["put"],
        serde_json::json!(["dowguard-function:checkout"]),
        "{out}"
    );
}

#[tokio::test]
async fn the_production_event_age_accepts_nine_minutes_and_refuses_eleven() {
    let event = scheduled_event();
    let sent = event_time(&event);
    let app = flooded_app(sent).await;
    assert_eq!(
        app.config.max_event_age,
        Duration::minutes(10),
        "the template's limit"
    );
    let late = handle_at(&app, &event, &Context::default(), sent + Duration::minutes(11))
        .await
        .unwrap();
    assert!(
        late["rejected"].as_str().is_some_and(|r| r.contains("too old")),
        "{late}"
    );
    assert!(
        app.stack.cloud.calls().is_empty(),
        "a refused event makes no call"
    );
    let on_time = handle_at(&app, &event, &Context::default(), sent + Duration::minutes(9))
        .await
        .unwrap();
    assert!(on_time.get("pass_at").is_some(), "{on_time}");
}

#[tokio::test]
async fn a_second_evaluator_finds_the_lease_held_and_skips() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app(now).await;
    use dowguard_guard::ports::Leases;
    app.stack
        .store
        .acquire("evaluator", "another-invocation", now + Duration::minutes(2), now)
        .await
        .unwrap()
        .unwrap();
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert!(
        out["skipped"]
            .as_str()
            .is_some_and(|s| s.starts_with("another evaluator pass holds the lease until")),
        "{out}"
    );
    assert!(app.stack.cloud.calls().is_empty());
}

#[tokio::test]
async fn a_steady_state_pass_reads_the_inventory_and_lists_nothing() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app(now).await;
    let reads_before = app.stack.cloud.reads().len();
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["gaps"], serde_json::json!([]), "{out}");
    assert_eq!(
        app.stack.cloud.reads().len(),
        reads_before,
        "{:?}",
        app.stack.cloud.reads()
    );
}

#[tokio::test]
async fn an_empty_inventory_is_a_gap_of_the_pass_never_a_silent_skip() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app(now).await;
    app.stack.store.data.lock().unwrap().inventory.clear();
    app.stack.store.data.lock().unwrap().inventory_meta = Default::default();
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    let gaps: Vec<String> = serde_json::from_value(out["gaps"].clone()).unwrap();
    assert!(
        gaps.iter().any(|g| g.contains("never reconciled"))
            && gaps.iter().any(|g| g.contains("never listed")),
        "{out}"
    );
    assert!(
        app.stack.cloud.calls().is_empty(),
        "nothing it cannot see is changed"
    );
}

#[tokio::test]
async fn a_stale_inventory_is_a_gap_and_the_budgets_hold() {
    let event = scheduled_event();
    let now = event_time(&event) + Duration::seconds(20);
    let app = flooded_app(now - Duration::hours(3)).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    let gaps: Vec<String> = serde_json::from_value(out["gaps"].clone()).unwrap();
    assert!(
        gaps.iter().any(|g| g.contains("more than 120 minutes ago")),
        "{out}"
    );
}
