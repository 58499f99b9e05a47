//! The inventory against the local server: the inventory function reads the
//! account into the table (tagged functions through the Resource Groups Tagging
//! API, the API Gateway targets, the trail check); the evaluator and the alarm
//! responder read the inventory and never list the account, so their calls do not
//! grow with it; and a deploy that rewrites a held function's reservation is held
//! again, with the deploy's value kept as the original the guard restores.
//!
//! Every SDK call is recorded (`dowguard_tests::iam::record`) with the function
//! that made it.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_domain::{Limits, Phase, TargetId};
use dowguard_guard::ports::{BudgetStore, InventoryStore, StateStore};
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, TABLE, attack_end_before, day_budget, put_minutes};
use dowguard_tests::fixtures::{create_function, create_function_with, create_trail};
use dowguard_tests::iam::record::{Call, Recording};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn config() -> Result<Config, Error> {
    Ok(dowguard_tests::account::local_config(&[])?)
}

fn event(name: &str, at: DateTime<Utc>) -> Result<LambdaEvent<Value>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    Ok(LambdaEvent::new(payload, Context::default()))
}

fn app(aws: &LocalAws, recording: &Recording, function: &str, role: Role) -> Result<App, Error> {
    Ok(App::with_interceptors(
        config()?,
        &aws.sdk_config(),
        role,
        recording.interceptors(function),
    )?)
}

/// The calls `function` made, as `Service Operation`, counted.
fn counted(calls: &[Call], function: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| c.function == function) {
        *out.entry(format!("{} {}", c.service, c.operation)).or_default() += 1;
    }
    out
}

/// The example account plus `extra` more guarded functions, each with its own
/// day budget; `checkout` flooded for the ten minutes before `attack_end`.
async fn crowd(
    aws: &LocalAws,
    extra: usize,
    now: DateTime<Utc>,
    attack_end: DateTime<Utc>,
) -> Result<(), Error> {
    let example = ExampleAccount::seed(aws, now).await?;
    example.flood(aws, attack_end, 10).await?;
    let store = dowguard_adapters::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws.sdk_config()),
        TABLE,
        Duration::days(90),
    );
    for i in 0..extra {
        let name = format!("worker-{i:03}");
        create_function(aws, &name).await?;
        store
            .put_budget(
                &day_budget(&format!("{name}-daily"), &format!("function:{name}"), "240")?,
                None,
                "finance",
                now,
            )
            .await?;
    }
    Ok(())
}

async fn reconcile(inventory: &App, now: DateTime<Utc>) -> Result<Value, Error> {
    Ok(
        dowguard_inventory::handle(inventory, event("scheduled-event.json", now)?)
            .await
            .map_err(|d| d.error_message)?,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_function_keeps_the_guarded_targets_and_reports_the_trail() -> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    crowd(&aws, 3, now, attack_end_before(now)).await?;
    create_function_with(&aws, "unguarded", 128, &[]).await?;
    let recording = Recording::new();
    let inventory = app(&aws, &recording, "Inventory", Role::Inventory)?;

    let out = reconcile(&inventory, now).await?;
    assert_eq!(out["trail"]["trail"], Value::Null, "{out}");
    let kept = inventory.stack.store.load_inventory().await?;
    let ids: Vec<String> = kept.entries.keys().map(ToString::to_string).collect();
    assert!(ids.contains(&"function:checkout".to_string()), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("rest-stage:")), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("usage-plan:")), "{ids:?}");
    assert!(!ids.contains(&"function:unguarded".to_string()), "{ids:?}");
    assert!(kept.gaps(Utc::now()).is_empty(), "{:?}", kept.gaps(Utc::now()));
    let calls = counted(&recording.calls(), "Inventory");
    assert!(
        calls.contains_key("Resource Groups Tagging API GetResources"),
        "{calls:?}"
    );
    assert!(!calls.contains_key("Lambda ListFunctions"), "{calls:?}");

    // A trail that logs management events: the next check finds it.
    create_trail(&aws, "management", true).await?;
    let out = reconcile(&inventory, now).await?;
    assert_eq!(out["trail"]["trail"], "management", "{out}");
    let meta = inventory.stack.store.load_inventory().await?.meta.value;
    assert!(meta.has_trail());
    Ok(())
}

/// The alarm responder, in an account of many guarded and budgeted functions,
/// reads the inventory and touches the alarmed function only: every Lambda call
/// names `checkout`, nothing is listed, and the metrics asked for are one
/// function's (the pass holds one target). Before the inventory it listed the account (`ListFunctions`, then
/// `ListTags`, `GetFunctionConcurrency` and the async config of every function).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_pass_in_an_account_of_many_functions_calls_aws_for_the_alarmed_function_only()
-> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let attack_end = attack_end_before(now);
    crowd(&aws, 40, now, attack_end).await?;
    let recording = Recording::new();
    let inventory = app(&aws, &recording, "Inventory", Role::Inventory)?;
    reconcile(&inventory, now).await?;
    let responder = app(&aws, &recording, "AlarmResponder", Role::Responder)?;

    let out = dowguard_alarm_responder::handle(
        &responder,
        event("alarm-state-change.json", attack_end + Duration::minutes(1))?,
    )
    .await
    .map_err(|d| d.error_message)?;
    assert!(
        out["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["intent"] == "tighten")),
        "{out}"
    );
    let calls: Vec<Call> = recording
        .calls()
        .into_iter()
        .filter(|c| c.function == "AlarmResponder")
        .collect();
    let lambda: Vec<&Call> = calls.iter().filter(|c| c.service == "Lambda").collect();
    assert!(!lambda.is_empty());
    for call in &lambda {
        assert!(
            call.operation == "GetAccountSettings" || call.uri.contains("/functions/checkout/"),
            "a Lambda call for another function or the account: {} {}",
            call.operation,
            call.uri
        );
    }
    let by_operation = counted(&calls, "AlarmResponder");
    for listing in [
        "Lambda ListFunctions",
        "Lambda ListTags",
        "API Gateway GetRestApis",
    ] {
        assert!(!by_operation.contains_key(listing), "{listing}: {by_operation:?}");
    }
    assert_eq!(out["targets"], 1, "one target in the pass: {out}");
    for call in calls.iter().filter(|c| c.operation == "GetMetricData") {
        assert!(
            !call.body.windows(7).any(|w| w == b"worker-"),
            "metrics of another function were asked for"
        );
    }
    println!("responder pass, 43 targets: {by_operation:?}");
    Ok(())
}

/// A steady-state evaluator pass makes the same calls whatever the account's
/// size: the table, the metrics, the alarms; never a listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_state_pass_makes_as_many_calls_for_forty_functions_as_for_four() -> Result<(), Error> {
    let mut totals = Vec::new();
    for extra in [4, 40] {
        let aws = LocalAws::start().await?;
        let now = Utc::now().duration_trunc(Duration::minutes(1))?;
        let attack_end = attack_end_before(now);
        crowd(&aws, extra, now, attack_end).await?;
        let recording = Recording::new();
        let inventory = app(&aws, &recording, "Inventory", Role::Inventory)?;
        reconcile(&inventory, now).await?;
        let evaluator = app(&aws, &recording, "Evaluator", Role::Evaluator)?;
        // A calm pass long before the flood: the alarms are put once, then a
        // second calm pass is the steady state.
        let calm = attack_end - Duration::hours(2);
        for at in [calm, calm + Duration::minutes(1)] {
            dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", at)?)
                .await
                .map_err(|d| d.error_message)?;
        }
        let all: Vec<Call> = recording.calls();
        let steady: Vec<Call> = all
            .iter()
            .filter(|c| c.function == "Evaluator")
            .cloned()
            .collect();
        let half = steady.len()
            - counted(&steady, "Evaluator")
                .get("CloudWatch PutMetricAlarm")
                .copied()
                .unwrap_or(0);
        let by_operation = counted(&steady, "Evaluator");
        for listing in [
            "Lambda ListFunctions",
            "Lambda ListTags",
            "API Gateway GetRestApis",
        ] {
            assert!(!by_operation.contains_key(listing), "{listing}: {by_operation:?}");
        }
        println!(
            "evaluator, {} functions, two calm passes: {by_operation:?}",
            extra + 1
        );
        totals.push(half);
    }
    assert_eq!(
        totals[0], totals[1],
        "the calls besides the alarms put once do not grow with the functions"
    );
    Ok(())
}

/// During an attack a deploy rewrites the reservation the guard holds on
/// `checkout`; CloudTrail reports the call. The inventory function sets the
/// guard's limit again, keeps the deploy's value as the original, and audits the
/// change under the deploy's role; when the attack is over the evaluator restores
/// the deploy's value, not the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_that_rewrites_a_held_reservation_is_held_again_and_its_value_restored_later()
-> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let attack_end = attack_end_before(now);
    crowd(&aws, 0, now, attack_end).await?;
    let recording = Recording::new();
    let inventory = app(&aws, &recording, "Inventory", Role::Inventory)?;
    reconcile(&inventory, now).await?;
    let evaluator = app(&aws, &recording, "Evaluator", Role::Evaluator)?;
    let at = attack_end + Duration::minutes(1);
    dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", at)?)
        .await
        .map_err(|d| d.error_message)?;
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    let reserved = async || -> Result<Option<i32>, Error> {
        Ok(lambda
            .get_function_concurrency()
            .function_name("checkout")
            .send()
            .await?
            .reserved_concurrent_executions())
    };
    let held = reserved().await?;
    assert!(held.is_some_and(|n| n < 50), "throttled: {held:?}");

    // The deploy.
    lambda
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(80)
        .send()
        .await?;
    let out = dowguard_inventory::handle(
        &inventory,
        event("cloudtrail-put-function-concurrency.json", Utc::now())?,
    )
    .await
    .map_err(|d| d.error_message)?;
    assert_eq!(
        out["drift"][0]["by"], "arn:aws:sts::123456789012:assumed-role/cfn-deploy/AWSCloudFormation",
        "{out}"
    );
    assert_eq!(reserved().await?, held, "the guard's limit is set again");
    let checkout = TargetId::parse("function:checkout")?;
    let state = inventory
        .stack
        .store
        .load_one(&checkout)
        .await?
        .ok_or("a state")?;
    assert!(state.phase.is_tightened());
    assert_eq!(
        state.restore_point.map(|rp| rp.limits),
        Some(Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None
        })
    );
    let audit = inventory.stack.store.audit_of_day(now.date_naive()).await?;
    assert!(
        audit
            .iter()
            .any(|r| r.actor.contains("cfn-deploy") && r.target == checkout),
        "{audit:?}"
    );

    // The flood is over: calm passes until the original is back.
    let mut at = at;
    for _ in 0..40 {
        at += Duration::minutes(10);
        dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", at)?)
            .await
            .map_err(|d| d.error_message)?;
        let states = evaluator.stack.store.load_states().await?;
        if states.get(&checkout).is_some_and(|s| s.phase == Phase::Normal) {
            break;
        }
    }
    assert_eq!(reserved().await?, Some(80), "the deploy's value is restored");
    Ok(())
}

/// The same deploy while the guard does not hold `checkout`: the inventory is
/// updated and nothing is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_while_the_target_is_normal_updates_the_inventory_and_sets_nothing() -> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    crowd(&aws, 0, now, attack_end_before(now)).await?;
    let recording = Recording::new();
    let inventory = app(&aws, &recording, "Inventory", Role::Inventory)?;
    reconcile(&inventory, now).await?;
    aws_sdk_lambda::Client::new(&aws.sdk_config())
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(80)
        .send()
        .await?;
    let before = recording.len();
    let out = dowguard_inventory::handle(
        &inventory,
        event("cloudtrail-put-function-concurrency.json", Utc::now())?,
    )
    .await
    .map_err(|d| d.error_message)?;
    assert_eq!(out["written"], serde_json::json!(["function:checkout"]), "{out}");
    let after: Vec<Call> = recording.calls().into_iter().skip(before).collect();
    assert!(
        after.iter().all(|c| c.method == "GET" || c.service == "DynamoDB"),
        "only reads and the table: {:?}",
        after
            .iter()
            .map(|c| format!("{} {}", c.method, c.uri))
            .collect::<Vec<_>>()
    );
    let checkout = TargetId::parse("function:checkout")?;
    let entry = &inventory.stack.store.load_inventory().await?.entries[&checkout];
    assert_eq!(
        entry.value.target.limits,
        Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None
        }
    );
    // Flooded afterwards, the guard's restore point is the deploy's 80.
    put_minutes(
        &aws,
        "AWS/Lambda",
        &[("FunctionName", "checkout")],
        &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
        now,
        10,
    )
    .await?;
    let evaluator = app(&aws, &recording, "Evaluator", Role::Evaluator)?;
    dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", now)?)
        .await
        .map_err(|d| d.error_message)?;
    let state = evaluator
        .stack
        .store
        .load_one(&checkout)
        .await?
        .ok_or("a state")?;
    assert_eq!(
        state.restore_point.map(|rp| rp.limits),
        Some(Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None
        })
    );
    Ok(())
}
