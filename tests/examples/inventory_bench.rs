//! The inventory at scale, in the local AWS server: 1,000 guarded functions, 50 REST
//! API stages and 20 usage plans over them. The inventory is filled once outside the
//! measurement (unpaced: a new deployment's reconciliation takes a few runs of the
//! inventory function), then the evaluator runs through the quota-enforcing proxy:
//! one steady-state pass, and one full pass after a flood on 25 functions and 25 REST
//! stages. It prints
//! the calls by operation and two lines a script can read:
//!
//! ```text
//! steady-state pass, 1,000 functions: N AWS calls (target: <= 30)
//! full pass acting on 50 targets: S s, Q quota errors (target: < 60 s, 0 errors)
//! ```
//!
//! The evaluator runs at the default one-minute schedule, where no target needs an
//! alarm and the alarm sync lists the alarms only on the hour. The steady-state
//! pass is on the hour, so it counts that listing and the hourly sweep: the
//! dearest pass of the hour.
//!
//! Run: `cargo run --release --locked -p dowguard-tests --example inventory_bench`.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::time::Instant;

use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_types::Blob;
use chrono::{Duration, DurationRound, Utc};
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::stack::{AwsStack, Pacing, StackConfig};
use dowguard_guard::inventory::{Keeper, Slices};
use dowguard_guard::ports::BudgetStore;
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{TABLE, attack_end_before, day_budget, put_minutes};
use dowguard_tests::fixtures::{EMPTY_ZIP, GUARDED, LAMBDA_TRUST_POLICY, create_rest_api, create_usage_plan};
use dowguard_tests::proxy::{AWS_QUOTAS, Proxy};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use tokio::task::JoinSet;

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const FUNCTIONS: usize = 1_000;
const REST_STAGES: usize = 50;
const USAGE_PLANS: usize = 20;
/// Flooded functions: each needs a reservation from the account's unreserved pool,
/// which must keep 100 of the local server's 1,000 unreserved (the guard never
/// takes it lower), so about 30 fit; the other flooded targets are stages.
const ACTING_FUNCTIONS: usize = 25;
/// Flooded REST stages.
const ACTING_STAGES: usize = 25;

fn deployment() -> BenchResult<Config> {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
        ("AWS_REGION", dowguard_tests::REGION),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
    ]
    .into();
    Ok(Config::from_lookup(|name| {
        vars.get(name).map(|v| (*v).to_string())
    })?)
}

fn tick(at: chrono::DateTime<Utc>) -> BenchResult<LambdaEvent<Value>> {
    let path = dowguard_tests::emulator::root().join("tests/fixtures/events/scheduled-event.json");
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    Ok(LambdaEvent::new(payload, Context::default()))
}

/// `n` guarded functions `fn-0000`... sharing one execution role, 16 at a time.
async fn functions(aws: &LocalAws, n: usize) -> BenchResult<()> {
    let config = aws.sdk_config();
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("bench-role")
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await?;
    let role = role
        .role()
        .map(|r| r.arn().to_string())
        .ok_or("role without arn")?;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let mut set = JoinSet::new();
    for i in 0..n {
        let (lambda, role) = (lambda.clone(), role.clone());
        set.spawn(async move {
            lambda
                .create_function()
                .function_name(format!("fn-{i:04}"))
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .role(role)
                .memory_size(512)
                .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP)).build())
                .tags(GUARDED.0, GUARDED.1)
                .send()
                .await
                .map(|_| ())
        });
        if set.len() >= 16
            && let Some(done) = set.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

fn print_calls(label: &str, calls: &BTreeMap<String, usize>) -> usize {
    let total: usize = calls.values().sum();
    for (op, n) in calls {
        println!("{label}: calls {op} {n}");
    }
    total
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let aws = LocalAws::start().await.map_err(|e| e.to_string())?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let attack_end = attack_end_before(now);
    let started = Instant::now();
    let config = aws.sdk_config();
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, TABLE).await?;
    let store = DynamoStore::new(dynamo, TABLE, Duration::days(90));
    functions(&aws, FUNCTIONS).await?;
    let mut apis = Vec::new();
    for i in 0..REST_STAGES {
        apis.push(create_rest_api(&aws, &format!("api-{i:02}"), "prod").await?);
    }
    for api in apis.iter().take(USAGE_PLANS) {
        create_usage_plan(&aws, api, "prod").await?;
    }
    // Every function and stage budgeted: those that will be flooded at $240 (a
    // function) or $50 (a stage) a day, the rest at $1,000,000 a day (measured,
    // never throttled).
    for i in 0..FUNCTIONS {
        let amount = if i < ACTING_FUNCTIONS { "240" } else { "1000000" };
        store
            .put_budget(
                &day_budget(&format!("fn-{i:04}"), &format!("function:fn-{i:04}"), amount)?,
                None,
                "finance",
                now,
            )
            .await?;
    }
    for (i, api) in apis.iter().enumerate() {
        let amount = if i < ACTING_STAGES { "50" } else { "1000000" };
        store
            .put_budget(
                &day_budget(&format!("stage-{api}"), &format!("rest-stage:{api}/prod"), amount)?,
                None,
                "finance",
                now,
            )
            .await?;
    }
    println!(
        "bench: {FUNCTIONS} functions, {REST_STAGES} REST stages, {USAGE_PLANS} usage plans created in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // The inventory, filled unpaced (setup, not measured).
    let mut unpaced = StackConfig::new(TABLE);
    unpaced.pacing = Pacing {
        lambda_per_second: 1_000,
        apigateway_per_second: 1_000,
        usage_plan_interval: std::time::Duration::ZERO,
        tagging_per_second: 1_000,
    };
    let observer = AwsStack::new(&config, &unpaced);
    let filled = Instant::now();
    let report = Keeper {
        ports: &observer,
        actor: "inventory",
    }
    .reconcile(Utc::now(), Slices::All)
    .await?;
    println!(
        "bench: inventory filled with {} targets in {:.0} s ({} errors)",
        report.written.len(),
        filled.elapsed().as_secs_f64(),
        report.errors.len()
    );

    // A steady-state pass through the quota proxy, before any flood.
    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let evaluator = App::new(
        deployment()?,
        &dowguard_tests::sdk_config_for(proxy.endpoint()),
        Role::Evaluator,
    )?;
    let calm = (attack_end - Duration::hours(2)).duration_trunc(Duration::hours(1))?;
    let steady_started = Instant::now();
    dowguard_evaluator::handle(&evaluator, tick(calm)?)
        .await
        .map_err(|d| d.error_message)?;
    println!(
        "bench: the steady-state pass took {:.1} s",
        steady_started.elapsed().as_secs_f64()
    );
    let steady = print_calls("steady", &proxy.calls());
    let steady_throttled: usize = proxy.throttled().values().sum();

    // A flood on 25 functions and 25 stages, then the full pass that acts on them.
    for i in 0..ACTING_STAGES {
        put_minutes(
            &aws,
            "AWS/ApiGateway",
            &[("ApiName", &format!("api-{i:02}")), ("Stage", "prod")],
            &[("Count", 1_000_000.0)],
            attack_end,
            10,
        )
        .await?;
    }
    for i in 0..ACTING_FUNCTIONS {
        put_minutes(
            &aws,
            "AWS/Lambda",
            &[("FunctionName", &format!("fn-{i:04}"))],
            &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
            attack_end,
            10,
        )
        .await?;
    }
    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let evaluator = App::new(
        deployment()?,
        &dowguard_tests::sdk_config_for(proxy.endpoint()),
        Role::Evaluator,
    )?;
    let acting_started = Instant::now();
    let out = dowguard_evaluator::handle(&evaluator, tick(attack_end + Duration::minutes(1))?)
        .await
        .map_err(|d| d.error_message)?;
    let acting_seconds = acting_started.elapsed().as_secs_f64();
    print_calls("acting", &proxy.calls());
    let acted = out["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["intent"] == "tighten" && a["outcome"]["outcome"] == "applied")
        .count();
    let quota_errors: usize = proxy.throttled().values().sum::<usize>() + steady_throttled;
    println!("bench: gaps {}", out["gaps"]);

    println!("steady-state pass, 1,000 functions: {steady} AWS calls (target: <= 30)");
    println!(
        "full pass acting on {acted} targets: {acting_seconds:.1} s, {quota_errors} quota errors (target: < 60 s, 0 errors)"
    );
    drop(aws);
    Ok(())
}
