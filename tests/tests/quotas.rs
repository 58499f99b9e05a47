//! The guard's processes together stay within AWS's account-wide control-plane
//! quotas.
//!
//! AWS throttles control-plane calls per account, whoever makes them: Lambda's
//! "Remainder of the control plane API requests" at 15 a second ("Lambda quotas"),
//! API Gateway's management calls at 10 a second with a burst of 40,
//! `UpdateUsagePlan` at one every 20 seconds and `GetResources` at 5 every 2
//! seconds ("Amazon API Gateway quotas", API Gateway quotas for creating,
//! deploying and managing an API). Every process of a deployment (each evaluator
//! and alarm responder instance, and the CLI) draws on the same quotas.
//!
//! Here every SDK client goes through the loopback proxy in quota mode
//! (`dowguard_tests::proxy`, [`AWS_QUOTAS`]): a request over a quota is answered
//! 429 with the service's own `TooManyRequestsException`, as AWS would. The first
//! test proves that the proxy refuses an unpaced burst, in each service's shape;
//! the second runs two evaluators and the alarm responder at once, each its own
//! process (`App`), over an account with many guarded targets under a flood, and
//! asserts that no request was refused, that every change was applied once, that
//! every flooded target ends throttled, and that the second evaluator skipped.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::float_arithmetic,
    reason = "tests fail loudly on bad fixtures; times are printed in seconds"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration as StdDuration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_adapters::dynamodb::create_table;
use dowguard_adapters::stack::{AwsStack, Pacing, StackConfig};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::inventory::{Keeper, Meta, Slices};
use dowguard_guard::ports::{BudgetStore, Discovery, InventoryStore, StateStore};
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{TABLE, attack_end_before, day_budget, put_minutes};
use dowguard_tests::fixtures::{create_function, create_http_api, create_rest_api, create_usage_plan};
use dowguard_tests::proxy::{AWS_QUOTAS, Answer, Proxy, Request};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use tokio::task::JoinSet;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Functions in the account: `checkout` (the alarm fixture's target) and more.
const FUNCTIONS: usize = 30;
/// REST APIs, each with a stage `prod`.
const REST_APIS: usize = 4;
/// Usage plans, each over one of the REST stages: few, since AWS admits one
/// `UpdateUsagePlan` every 20 seconds, so every plan adds 20 s to the test.
const USAGE_PLANS: usize = 2;
/// HTTP APIs, each with a stage `prod`.
const HTTP_APIS: usize = 2;
/// `checkout`'s reservation before the flood, as in the example account; the
/// others have none.
const RESERVED: i32 = 50;
/// The longest the three processes may take together.
const BOUND: StdDuration = StdDuration::from_secs(300);

/// The deployment's configuration: AWS's own usage-plan interval (the default),
/// the flood hours old (as in the demo).
fn config() -> Result<Config, Error> {
    config_for("arn:aws:events:us-east-1:123456789012:rule/dowguard-evaluator-schedule")
}

/// The inventory function's reconciliation rule, as the template names it.
const INVENTORY_RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/dowguard-inventory-reconcile";

/// The configuration of a function whose schedule comes from `rule`.
fn config_for(rule: &str) -> Result<Config, Error> {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
        ("AWS_REGION", dowguard_tests::REGION),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        // A five-minute schedule: the targets need alarms, and the alarm path runs.
        ("DOWGUARD_SCHEDULE_MINUTES", "5"),
        ("DOWGUARD_SCHEDULE_RULE_ARN", rule),
    ]
    .into();
    Ok(Config::from_lookup(|name| {
        vars.get(name).map(|v| (*v).to_string())
    })?)
}

/// A fixture as Lambda hands it over, its time set to `at`, with a request id and
/// the evaluator's 120 s deadline.
fn invocation(name: &str, at: DateTime<Utc>, request_id: &str) -> Result<LambdaEvent<Value>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    let mut context = Context::default();
    context.request_id = request_id.to_string();
    context.deadline = u64::try_from((Utc::now() + Duration::seconds(120)).timestamp_millis())?;
    Ok(LambdaEvent::new(payload, context))
}

/// The account: many functions, REST API stages, usage plans and HTTP API stages,
/// each with a day budget and flooded at about 100 times its pace for the ten
/// minutes before `attack_end` (the figures of `ExampleAccount::flood`).
struct Crowd {
    functions: Vec<String>,
    rest_apis: Vec<String>,
    plans: Vec<String>,
    http_apis: Vec<String>,
}

impl Crowd {
    async fn seed(aws: &LocalAws, now: DateTime<Utc>, attack_end: DateTime<Utc>) -> Result<Self, Error> {
        let config = aws.sdk_config();
        let lambda = aws_sdk_lambda::Client::new(&config);
        let mut functions = vec!["checkout".to_string()];
        functions.extend((1..FUNCTIONS).map(|i| format!("worker-{i:02}")));
        for name in &functions {
            create_function(aws, name).await?;
        }
        lambda
            .put_function_concurrency()
            .function_name("checkout")
            .reserved_concurrent_executions(RESERVED)
            .send()
            .await?;
        let mut rest_apis = Vec::new();
        for i in 0..REST_APIS {
            rest_apis.push(create_rest_api(aws, &format!("shop-{i}"), "prod").await?);
        }
        let mut plans = Vec::new();
        for api in rest_apis.iter().take(USAGE_PLANS) {
            plans.push(create_usage_plan(aws, api, "prod").await?);
        }
        let mut http_apis = Vec::new();
        for i in 0..HTTP_APIS {
            http_apis.push(create_http_api(aws, &format!("orders-{i}"), "prod").await?);
        }
        let crowd = Crowd {
            functions,
            rest_apis,
            plans,
            http_apis,
        };

        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        create_table(&dynamo, TABLE).await?;
        let store = dowguard_adapters::dynamodb::DynamoStore::new(dynamo, TABLE, Duration::days(90));
        for (scope, amount) in crowd.scopes() {
            let id = scope.replace([':', '/'], "-");
            store
                .put_budget(&day_budget(&id, &scope, amount)?, None, "finance", now)
                .await?;
        }

        for f in &crowd.functions {
            put_minutes(
                aws,
                "AWS/Lambda",
                &[("FunctionName", f.as_str())],
                &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
                attack_end,
                10,
            )
            .await?;
        }
        for i in 0..REST_APIS {
            let name = format!("shop-{i}");
            let dims = [("ApiName", name.as_str()), ("Stage", "prod")];
            put_minutes(
                aws,
                "AWS/ApiGateway",
                &dims,
                &[("Count", 1_000_000.0)],
                attack_end,
                10,
            )
            .await?;
        }
        for api in &crowd.http_apis {
            let dims = [("ApiId", api.as_str()), ("Stage", "prod")];
            put_minutes(
                aws,
                "AWS/ApiGateway",
                &dims,
                &[("Count", 3_000_000.0)],
                attack_end,
                10,
            )
            .await?;
        }
        Ok(crowd)
    }

    /// Every budget's scope and amount: one per target.
    fn scopes(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = Vec::new();
        out.extend(self.functions.iter().map(|f| (format!("function:{f}"), "240")));
        out.extend(
            self.rest_apis
                .iter()
                .map(|a| (format!("rest-stage:{a}/prod"), "50")),
        );
        out.extend(self.plans.iter().map(|p| (format!("usage-plan:{p}"), "50")));
        out.extend(
            self.http_apis
                .iter()
                .map(|a| (format!("http-stage:{a}/prod"), "50")),
        );
        out
    }

    fn targets(&self) -> Vec<TargetId> {
        self.scopes()
            .iter()
            .map(|(s, _)| TargetId::parse(s).unwrap())
            .collect()
    }
}

/// The target whose limit a request writes, and which limit, if it writes one.
fn written(request: &Request) -> Option<(String, &'static str)> {
    let segments: Vec<&str> = request.path().trim_matches('/').split('/').collect();
    let method = request.method.as_str();
    match (method, segments.as_slice()) {
        ("PUT" | "DELETE", [_, "functions", name, "concurrency"]) => {
            Some((format!("function:{name}"), "reserved concurrency"))
        }
        ("PUT" | "POST" | "DELETE", [_, "functions", name, "event-invoke-config"]) => {
            Some((format!("function:{name}"), "async invoke config"))
        }
        ("PATCH", ["restapis", api, "stages", stage]) => {
            Some((format!("rest-stage:{api}/{stage}"), "stage throttle"))
        }
        ("PATCH", ["v2", "apis", api, "stages", stage]) => {
            Some((format!("http-stage:{api}/{stage}"), "stage throttle"))
        }
        ("PATCH", ["usageplans", plan]) => Some((format!("usage-plan:{plan}"), "usage plan")),
        _ => None,
    }
}

/// For each quota, the most requests it counted (forwarded ones) within any
/// window of its period, and its bucket size.
fn peaks(requests: &[Request]) -> Vec<(&'static str, usize, StdDuration, u32)> {
    AWS_QUOTAS
        .iter()
        .map(|q| {
            let times: Vec<Instant> = requests
                .iter()
                .filter(|r| r.answer == Answer::Forwarded && q.covers(&r.operation))
                .map(|r| r.at)
                .collect();
            let mut peak = 0;
            let mut first = 0;
            for (last, at) in times.iter().enumerate() {
                while at.duration_since(times[first]) >= q.per {
                    first += 1;
                }
                peak = peak.max(last + 1 - first);
            }
            (q.name, peak, q.per, q.burst)
        })
        .collect()
}

/// An SDK configuration through `proxy` whose calls are never retried, so that
/// each call is one request.
fn unretried(proxy: &Proxy) -> aws_config::SdkConfig {
    dowguard_tests::sdk_config_for(proxy.endpoint())
        .into_builder()
        .retry_config(RetryConfig::disabled())
        .build()
}

/// Sends `n` calls at once (each made by `call` from a clone of `client`);
/// returns how many were refused with the service's throttling error, and the
/// others' errors, if any.
async fn burst<C, F, Fut>(client: &C, n: usize, call: F) -> (usize, Vec<String>)
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut,
    Fut: std::future::Future<Output = Result<(), Option<String>>> + Send + 'static,
{
    let mut calls = JoinSet::new();
    for _ in 0..n {
        calls.spawn(call(client.clone()));
    }
    let (mut throttled, mut others) = (0, Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.unwrap() {
            Ok(()) => {}
            Err(None) => throttled += 1,
            Err(Some(other)) => others.push(other),
        }
    }
    (throttled, others)
}

/// A client that ignores the quotas is refused as AWS would refuse it: a burst of
/// 30 Lambda control-plane calls (15 a second, no burst beyond) and one of 50 API
/// Gateway calls (10 a second, burst 40) get 429s that the SDK reports as the
/// service's own `TooManyRequestsException` (Lambda's with reason
/// `CallerRateLimitExceeded`), REST (V1) and HTTP (V2) API calls share one
/// bucket, a second `UpdateUsagePlan` within 20 seconds is refused, and calls
/// outside the quota (`GetFunction`) are never refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaced_burst_gets_each_services_own_throttling_error() -> Result<(), Error> {
    let aws = LocalAws::start().await?;
    create_function(&aws, "checkout").await?;
    let api = create_rest_api(&aws, "shop", "prod").await?;
    let plan = create_usage_plan(&aws, &api, "prod").await?;
    create_http_api(&aws, "orders", "prod").await?;

    // Lambda: 30 control-plane calls at once.
    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let lambda = aws_sdk_lambda::Client::new(&unretried(&proxy));
    let (throttled, others) = burst(&lambda, 30, |c| async move {
        use aws_sdk_lambda::operation::get_function_concurrency::GetFunctionConcurrencyError as E;
        use aws_sdk_lambda::types::ThrottleReason;
        match c
            .get_function_concurrency()
            .function_name("checkout")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(E::TooManyRequestsException(t))
                    if t.reason() == Some(&ThrottleReason::CallerRateLimitExceeded) =>
                {
                    Err(None)
                }
                _ => Err(Some(format!("{e:?}"))),
            },
        }
    })
    .await;
    assert!(others.is_empty(), "{others:?}");
    let requests = proxy.requests();
    let span = requests.last().unwrap().at - requests[0].at;
    let forwarded = 30 - throttled;
    println!(
        "quota-proxy: lambda burst=30 forwarded={forwarded} throttled={throttled} span_ms={}",
        span.as_millis()
    );
    assert!(throttled > 0, "30 Lambda calls in {span:?}: none refused");
    assert_eq!(
        proxy.throttled().get("lambda:GetFunctionConcurrency"),
        Some(&throttled)
    );
    assert!(
        forwarded as f64 <= 15.0 + 15.0 * span.as_secs_f64() + 1.0,
        "{forwarded} forwarded in {span:?}"
    );
    // GetFunction is outside the quota: never refused, even right after.
    let (throttled, others) = burst(&lambda, 30, |c| async move {
        c.get_function()
            .function_name("checkout")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| Some(format!("{e:?}")))
    })
    .await;
    assert_eq!((throttled, others.len()), (0, 0), "{others:?}");

    // API Gateway: 50 REST calls at once, then HTTP API calls on the same bucket.
    let rest = aws_sdk_apigateway::Client::new(&unretried(&proxy));
    let (throttled, others) = burst(&rest, 50, |c| async move {
        use aws_sdk_apigateway::operation::get_rest_apis::GetRestApisError as E;
        match c.get_rest_apis().send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(E::TooManyRequestsException(_)) => Err(None),
                _ => Err(Some(format!("{e:?}"))),
            },
        }
    })
    .await;
    assert!(others.is_empty(), "{others:?}");
    println!("quota-proxy: apigateway burst=50 throttled={throttled}");
    assert!(throttled > 0, "50 API Gateway calls at once: none refused");
    let http = aws_sdk_apigatewayv2::Client::new(&unretried(&proxy));
    let (throttled, others) = burst(&http, 20, |c| async move {
        use aws_sdk_apigatewayv2::operation::get_apis::GetApisError as E;
        match c.get_apis().send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(E::TooManyRequestsException(_)) => Err(None),
                _ => Err(Some(format!("{e:?}"))),
            },
        }
    })
    .await;
    assert!(others.is_empty(), "{others:?}");
    println!("quota-proxy: apigatewayv2 burst=20 after it throttled={throttled}");
    assert!(
        throttled > 0,
        "HTTP API calls right after 50 REST calls: none refused"
    );

    // The Tagging API: 30 GetResources at once, 15 a second.
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&unretried(&proxy));
    let (throttled, others) = burst(&tagging, 30, |c| async move {
        use aws_sdk_resourcegroupstagging::operation::get_resources::GetResourcesError as E;
        match c
            .get_resources()
            .resource_type_filters("lambda:function")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(E::ThrottledException(_)) => Err(None),
                _ => Err(Some(format!("{e:?}"))),
            },
        }
    })
    .await;
    assert!(others.is_empty(), "{others:?}");
    println!("quota-proxy: tagging burst=30 throttled={throttled}");
    assert!(throttled > 0, "30 GetResources at once: none refused");

    // UpdateUsagePlan: one every 20 seconds, on a fresh account-wide bucket.
    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let rest = aws_sdk_apigateway::Client::new(&unretried(&proxy));
    let mut refused = Vec::new();
    for rate in [90.0, 80.0] {
        let out = rest
            .update_usage_plan()
            .usage_plan_id(&plan)
            .patch_operations(
                aws_sdk_apigateway::types::PatchOperation::builder()
                    .op(aws_sdk_apigateway::types::Op::Replace)
                    .path("/throttle/rateLimit")
                    .value(format!("{rate}"))
                    .build(),
            )
            .send()
            .await;
        refused.push(
            out.err()
                .map(|e| e.into_service_error().is_too_many_requests_exception()),
        );
    }
    assert_eq!(refused, vec![None, Some(true)], "the second update within 20 s");
    assert_eq!(proxy.throttled().get("apigateway:UpdateUsagePlan"), Some(&1));
    assert_eq!(
        proxy.requests()[1].answer,
        Answer::Throttled("apigateway-UpdateUsagePlan")
    );

    // CloudWatch alarms: 10 PutMetricAlarm at once (3 a second), refused with
    // CloudWatch's own throttling error, in the CBOR protocol the SDK speaks.
    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&unretried(&proxy));
    let (throttled, others) = burst(&cloudwatch, 10, |c| async move {
        let out = c
            .put_metric_alarm()
            .alarm_name("burst")
            .namespace("AWS/Lambda")
            .metric_name("Invocations")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ThrottlingException") => Err(None),
            Err(e) => Err(Some(format!("{e:?}"))),
        }
    })
    .await;
    assert!(others.is_empty(), "{others:?}");
    println!("quota-proxy: cloudwatch PutMetricAlarm burst=10 throttled={throttled}");
    assert!(throttled > 0, "10 PutMetricAlarm at once: none refused");
    assert_eq!(
        proxy.throttled().get("cloudwatch:PutMetricAlarm"),
        Some(&throttled)
    );
    Ok(())
}

/// Two evaluators and the alarm responder at once, each its own process, over an
/// account of 30 functions, 4 REST API stages, 2 usage plans and 2 HTTP API
/// stages, all flooded, every client through the proxy in quota mode: AWS refuses
/// none of their requests, every change is applied once, every flooded target
/// ends throttled, and the second evaluator skips, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evaluators_the_responder_and_the_inventory_function_together_stay_within_the_control_plane_quotas()
-> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let attack_end = attack_end_before(now);
    let crowd = Crowd::seed(&aws, now, attack_end).await?;
    let targets = crowd.targets();
    // Read straight from the server, unpaced: these calls are not the guard's.
    let mut unpaced = StackConfig::new(TABLE);
    unpaced.pacing = Pacing {
        lambda_per_second: 1_000,
        apigateway_per_second: 1_000,
        usage_plan_interval: StdDuration::ZERO,
        tagging_per_second: 1_000,
    };
    let observer = AwsStack::new(&aws.sdk_config(), &unpaced);
    let limits = async || -> Result<BTreeMap<TargetId, Limits>, Error> {
        Ok(observer
            .account
            .discover()
            .await?
            .into_iter()
            .map(|t| (t.id, t.limits))
            .collect())
    };
    let originals = limits().await?;
    for t in &targets {
        assert!(originals.contains_key(t), "{t} was not created");
    }
    // The inventory as the inventory function left it, then its record cleared so
    // that its run below reads the whole account again, beside the passes.
    let kept = Keeper {
        ports: &observer,
        actor: "inventory",
    }
    .reconcile(Utc::now(), Slices::All)
    .await?;
    assert!(kept.errors.is_empty(), "{:?}", kept.errors);
    let record = observer.store.load_inventory().await?.meta;
    let cleared = Meta {
        apis: record.value.apis,
        ..Meta::default()
    };
    observer.store.put_meta(&cleared, record.version).await?;

    let proxy = Proxy::start_with_quotas(aws.endpoint(), &AWS_QUOTAS).await?;
    let sdk = dowguard_tests::sdk_config_for(proxy.endpoint());
    let (first, second, responder, inventory) = (
        App::new(config()?, &sdk, Role::Evaluator)?,
        App::new(config()?, &sdk, Role::Evaluator)?,
        App::new(config()?, &sdk, Role::Responder)?,
        App::new(config_for(INVENTORY_RULE)?, &sdk, Role::Inventory)?,
    );
    let mut reconciliation = invocation("scheduled-event.json", Utc::now(), "inventory")?;
    reconciliation.payload["resources"] = serde_json::json!([INVENTORY_RULE]);
    // A person changes a REST stage while the guard works: its change event too.
    let mut stage_update = invocation("cloudtrail-update-stage.json", Utc::now(), "inventory-event")?;
    stage_update.payload["detail"]["requestParameters"]["restApiId"] =
        Value::from(crowd.rest_apis[1].clone());
    let at = attack_end + Duration::minutes(1);
    let started = Instant::now();
    let outs = tokio::time::timeout(BOUND, async {
        tokio::join!(
            dowguard_evaluator::handle(
                &first,
                invocation("scheduled-event.json", at, "evaluator-a").unwrap()
            ),
            dowguard_evaluator::handle(
                &second,
                invocation("scheduled-event.json", at, "evaluator-b").unwrap()
            ),
            dowguard_alarm_responder::handle(
                &responder,
                invocation("alarm-state-change.json", at, "responder").unwrap()
            ),
            dowguard_inventory::handle(&inventory, reconciliation),
            // The event arrives while the reconciliation runs, and waits for its lease.
            async {
                tokio::time::sleep(StdDuration::from_millis(500)).await;
                dowguard_inventory::handle(&inventory, stage_update).await
            },
        )
    })
    .await
    .map_err(|_| format!("the three processes took longer than {BOUND:?}"))?;
    let elapsed = started.elapsed();

    // The figures, in lines a script can read.
    let requests = proxy.requests();
    let calls = proxy.calls();
    let throttled = proxy.throttled();
    for (op, n) in &calls {
        println!("quotas: calls {op} {n}");
    }
    for (op, n) in &throttled {
        println!("quotas: throttled {op} {n}");
    }
    for (quota, peak, per, burst) in peaks(&requests) {
        println!(
            "quotas: peak quota={quota} requests={peak} window_ms={} bucket={burst}",
            per.as_millis()
        );
    }
    let plan_updates: Vec<Instant> = requests
        .iter()
        .filter(|r| r.operation.key() == "apigateway:UpdateUsagePlan" && r.answer == Answer::Forwarded)
        .map(|r| r.at)
        .collect();
    let gaps: Vec<String> = plan_updates
        .windows(2)
        .map(|w| format!("{}", (w[1] - w[0]).as_millis()))
        .collect();
    println!("quotas: usage-plan-update-gaps ms={}", gaps.join(","));
    let total_throttled: usize = throttled.values().sum();
    println!(
        "quotas: total calls={} throttled={total_throttled} seconds={:.1}",
        requests.len(),
        elapsed.as_secs_f64()
    );

    assert_eq!(
        total_throttled, 0,
        "AWS would have refused {total_throttled} of the guard's requests: {throttled:?}"
    );
    let outs: Vec<Value> = [outs.0, outs.1, outs.2, outs.3, outs.4]
        .into_iter()
        .map(|o| o.map_err(|d| format!("{}: {}", d.error_type, d.error_message)))
        .collect::<Result<_, _>>()?;
    let evaluators = &outs[..2];
    let passes = evaluators.iter().filter(|o| o.get("pass_at").is_some()).count();
    let skips: Vec<&str> = evaluators.iter().filter_map(|o| o["skipped"].as_str()).collect();
    assert_eq!(
        (passes, skips.len()),
        (1, 1),
        "one evaluator pass, one skip: {evaluators:?}"
    );
    assert!(
        skips[0].starts_with("another evaluator pass holds the lease until 20"),
        "{}",
        skips[0]
    );
    assert!(
        outs[2].get("pass_at").is_some(),
        "the responder ran its pass: {}",
        outs[2]
    );
    assert_eq!(outs[3]["trigger"], "reconcile", "{}", outs[3]);
    assert!(
        outs[3]["read"].as_u64().is_some_and(|n| n >= FUNCTIONS as u64),
        "the inventory read the whole account again: {}",
        outs[3]
    );
    assert_eq!(outs[3]["errors"], serde_json::json!([]), "{}", outs[3]);
    assert_eq!(
        outs[4]["trigger"], "UpdateStage",
        "the change event ran: {}",
        outs[4]
    );

    // Every change applied once: per target and kind of limit, at most one write
    // reached the server.
    let mut writes: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.reached_server()) {
        if let Some(key) = written(r) {
            *writes.entry(key).or_default() += 1;
        }
    }
    let twice: Vec<_> = writes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "limits written more than once: {twice:?}");

    // Every flooded target ends throttled: below its original limits, and held.
    let after = limits().await?;
    let states = observer.store.load_states().await?;
    for t in &targets {
        assert_ne!(after.get(t), originals.get(t), "{t} is not throttled");
        assert!(
            states.get(t).is_some_and(|s| s.phase.is_tightened()),
            "{t}'s state is not tightened: {:?}",
            states.get(t)
        );
        let key = t.to_string();
        assert!(
            writes.keys().any(|(target, _)| *target == key),
            "{t} changed without a write the proxy saw"
        );
    }
    println!(
        "quotas: targets={} throttled={} writes={}",
        targets.len(),
        targets.len(),
        writes.values().sum::<usize>()
    );
    Ok(())
}
