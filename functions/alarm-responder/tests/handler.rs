//! The alarm responder's handler over in-memory ports: no server, the time passed
//! in, and the production configuration (the 10-minute event age).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use dowguard_alarm_responder::handle_at;
use dowguard_domain::{Arch, Budget, BudgetSpec, Floors, Limits, Target, TargetId, TargetSpec};
use dowguard_guard::memory::{MemoryStack, steady_traffic};
use dowguard_guard::ports::BudgetStore;
use dowguard_runtime::{App, Config};
use lambda_runtime::Context;
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn event_time(event: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(event["time"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn production_config() -> Config {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", "dowguard"),
        ("DOWGUARD_ACCOUNT_ID", "123456789012"),
        ("AWS_REGION", "us-east-1"),
        ("DOWGUARD_MODE", "enforce"),
    ]
    .into();
    Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_string())).unwrap()
}

async fn flooded_app(now: DateTime<Utc>) -> App<MemoryStack> {
    let stack = MemoryStack::default();
    let id = TargetId::parse("function:checkout").unwrap();
    stack.cloud.data.lock().unwrap().targets.push(Target::new(
        id.clone(),
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
    ));
    stack.cloud.set_metrics(&id, steady_traffic(now, 20_000_000, 100));
    stack
        .put_day_budget("checkout-daily", "function:checkout", "240", now)
        .await
        .unwrap();
    stack.reconcile(now).await.unwrap();
    App::over(production_config(), stack).unwrap()
}

#[tokio::test]
async fn an_alarm_throttles_its_target_at_once() {
    let event = fixture("alarm-state-change.json");
    let now = event_time(&event) + Duration::seconds(5);
    let app = flooded_app(now).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["alarm"]["target"], "function:checkout", "{out}");
    let calls = app.stack.cloud.calls();
    assert_eq!(calls.len(), 1, "one change: {calls:?}");
    assert!(
        calls[0].starts_with("PutFunctionConcurrency function:checkout"),
        "{calls:?}"
    );
    // The same alarm again this minute: no second pass.
    let again = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert!(again.get("skipped").is_some(), "{again}");
    assert_eq!(app.stack.cloud.calls().len(), 1);
}

#[tokio::test]
async fn an_ok_alarm_leaves_recovery_to_the_evaluator() {
    let event = fixture("alarm-state-change-ok.json");
    let now = event_time(&event) + Duration::seconds(5);
    let app = flooded_app(now).await;
    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["left_to"], "evaluator", "{out}");
    assert!(app.stack.cloud.calls().is_empty());
}

#[tokio::test]
async fn the_production_event_age_refuses_an_alarm_eleven_minutes_old() {
    let event = fixture("alarm-state-change.json");
    let sent = event_time(&event);
    let app = flooded_app(sent).await;
    assert_eq!(app.config.max_event_age, Duration::minutes(10));
    let late = handle_at(&app, &event, &Context::default(), sent + Duration::minutes(11))
        .await
        .unwrap();
    assert!(
        late["rejected"].as_str().is_some_and(|r| r.contains("too old")),
        "{late}"
    );
    assert!(app.stack.cloud.calls().is_empty());
    let on_time = handle_at(&app, &event, &Context::default(), sent + Duration::minutes(9))
        .await
        .unwrap();
    assert_eq!(on_time["alarm"]["state"], "ALARM", "{on_time}");
}

/// An account of 300 flooded functions, each with its own budget, and the alarm of
/// one of them: the responder's pass reads and changes that function only. It
/// reads the targets from the inventory in the table, never from the account.
#[tokio::test]
async fn a_responder_pass_in_an_account_of_many_functions_makes_calls_for_the_alarmed_one_only() {
    let event = fixture("alarm-state-change.json");
    let now = event_time(&event) + Duration::seconds(5);
    let app = flooded_app(now).await;
    for i in 0..300 {
        let name = format!("worker-{i:03}");
        let id = TargetId::parse(&format!("function:{name}")).unwrap();
        app.stack.cloud.data.lock().unwrap().targets.push(Target::new(
            id.clone(),
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
        ));
        app.stack
            .cloud
            .set_metrics(&id, steady_traffic(now, 20_000_000, 100));
        let budget = Budget::parse(BudgetSpec {
            id: format!("{name}-daily"),
            scope: format!("function:{name}"),
            period: "day".into(),
            amount: "240".into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "finance@example.com".into(),
            topic: None,
            floors: Floors::default(),
            protected: false,
        })
        .unwrap();
        app.stack
            .store
            .put_budget(&budget, None, "finance", now)
            .await
            .unwrap();
    }
    app.stack.reconcile(now).await.unwrap();
    let reads_before = app.stack.cloud.reads().len();

    let out = handle_at(&app, &event, &Context::default(), now).await.unwrap();
    assert_eq!(out["alarm"]["target"], "function:checkout", "{out}");
    let calls = app.stack.cloud.calls();
    assert!(!calls.is_empty(), "the alarmed function is throttled");
    assert!(
        calls.iter().all(|c| c.ends_with(" function:checkout")),
        "only the alarmed function is changed: {calls:?}"
    );
    let reads = app.stack.cloud.reads();
    assert_eq!(
        &reads[reads_before..],
        &[] as &[String],
        "the pass lists nothing and reads no other target"
    );
    assert_eq!(
        out["metrics_requested"], 3,
        "the metrics of one function, not of 301: {out}"
    );
    let states = app.stack.store.data.lock().unwrap().states.len();
    assert_eq!(states, 1, "only the alarmed function's state is written");
}
