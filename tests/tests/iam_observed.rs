//! Every AWS call the Lambdas make is allowed by their roles: proven from the calls
//! themselves, not from a list. Each function's handler runs in process (as
//! `functions.rs` does) with a recording interceptor on every SDK client; each
//! recorded call is mapped to the IAM action(s) and resource(s) it needs
//! (`dowguard_tests::iam::operations`), and decided against that function's role
//! in the SAM template, transformed offline and resolved for this deployment, with
//! the `aws:ResourceTag/dowguard-guarded` conditions checked against the tags the
//! resources carry in the local server.
//!
//! The scenarios reach every call path of the functions: the inventory function's
//! reconciliation (tagged functions, the API Gateway listing, the trail check), a
//! calm pass with the alarm sync (alarms put, a stale one deleted), a flood that
//! throttles every kind of target, two alarm responders and two evaluators racing
//! so that a conditional state write loses (a gate holds one pass's first state
//! write until the other pass has written), change events while the targets are
//! held (a deploy that rewrites a held reservation, set again by the inventory
//! function; a stage update; a function untagged and dropped from the inventory),
//! the calm after and the restore, and a budget that notifies its own SNS topic.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_adapters::Interceptors;
use dowguard_domain::{Budget, Limits, TargetId};
use dowguard_guard::ports::{BudgetStore, Discovery};
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, TABLE, attack_end_before, day_budget, put_minutes};
use dowguard_tests::fixtures::{GUARDED, create_function, create_http_api, create_trail};
use dowguard_tests::iam::record::{GateControl, Recording, gate};
use dowguard_tests::iam::{Report, check};
use dowguard_tests::template::{Deployment, translated};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The template's logical ids of the three functions.
const EVALUATOR: &str = "Evaluator";
const RESPONDER: &str = "AlarmResponder";
const INVENTORY: &str = "Inventory";

/// The alarm prefix (the template's default).
const PREFIX: &str = "dowguard-";

/// What the evaluator must be seen doing in these scenarios: metrics, the table (a
/// lost race's read-back included), the audit, notices, every kind of throttle and
/// its restore, the alarm sync, the ranking rules kept and a tightened stage's
/// web ACL read for a lever. It lists nothing: its targets come from the
/// inventory.
const EVALUATOR_MUST: &[(&str, &str)] = &[
    ("Lambda", "PutFunctionConcurrency"),
    ("Lambda", "DeleteFunctionConcurrency"),
    ("API Gateway", "UpdateStage"),
    ("API Gateway", "UpdateUsagePlan"),
    ("ApiGatewayV2", "UpdateStage"),
    ("CloudWatch", "GetMetricData"),
    ("CloudWatch", "DescribeAlarms"),
    ("CloudWatch", "PutMetricAlarm"),
    ("CloudWatch", "DeleteAlarms"),
    ("CloudWatch", "DescribeInsightRules"),
    ("WAFV2", "GetWebACLForResource"),
    ("DynamoDB", "Query"),
    ("DynamoDB", "PutItem"),
    ("DynamoDB", "GetItem"),
    ("DynamoDB", "BatchWriteItem"),
    ("SNS", "Publish"),
];

/// What the alarm responder must be seen doing: metrics, the table (a lost race's
/// read-back included), the audit, a notice, and the function's throttle.
const RESPONDER_MUST: &[(&str, &str)] = &[
    ("Lambda", "PutFunctionConcurrency"),
    ("CloudWatch", "GetMetricData"),
    ("DynamoDB", "Query"),
    ("DynamoDB", "PutItem"),
    ("DynamoDB", "GetItem"),
    ("DynamoDB", "BatchWriteItem"),
    ("SNS", "Publish"),
];

/// What the inventory function must be seen doing: the tagged functions, one
/// function and one REST stage read whole, the API Gateway listing, the trail
/// check, its entries written and removed, a held reservation set again with its
/// audit and notice, and its lease.
const INVENTORY_MUST: &[(&str, &str)] = &[
    ("Resource Groups Tagging API", "GetResources"),
    ("CloudTrail", "DescribeTrails"),
    ("CloudTrail", "GetTrailStatus"),
    ("CloudTrail", "GetEventSelectors"),
    ("Lambda", "GetFunction"),
    ("Lambda", "GetFunctionConcurrency"),
    ("Lambda", "GetFunctionEventInvokeConfig"),
    ("Lambda", "PutFunctionConcurrency"),
    ("API Gateway", "GetRestApis"),
    ("API Gateway", "GetRestApi"),
    ("API Gateway", "GetStages"),
    ("API Gateway", "GetStage"),
    ("API Gateway", "GetUsagePlans"),
    ("ApiGatewayV2", "GetApis"),
    ("ApiGatewayV2", "GetStages"),
    ("DynamoDB", "Query"),
    ("DynamoDB", "PutItem"),
    ("DynamoDB", "UpdateItem"),
    ("DynamoDB", "DeleteItem"),
    ("DynamoDB", "BatchWriteItem"),
    ("SNS", "Publish"),
];

/// The functions' configuration for the local deployment, notices to `topic`.
fn config(topic: &str) -> Result<Config, Error> {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
        ("AWS_REGION", dowguard_tests::REGION),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_TOPIC_ARN", topic),
        ("DOWGUARD_ALARM_PREFIX", PREFIX),
        // The flood is written hours in the past, as in the demo.
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
        // An alarm on every target, so that the alarm path runs on each kind.
        ("DOWGUARD_ALARMS", "every-target"),
        // Many passes run in one real minute here; the cap has its own test.
        ("DOWGUARD_MAX_PASSES_PER_MINUTE", "1000"),
    ]
    .into();
    Ok(Config::from_lookup(|name| {
        vars.get(name).map(|v| (*v).to_string())
    })?)
}

/// A fixture with its time set to `at`; for an alarm, `alarm` names the alarm.
fn event(name: &str, at: DateTime<Utc>, alarm: Option<&str>) -> Result<LambdaEvent<Value>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    if let Some(alarm) = alarm {
        payload["detail"]["alarmName"] = Value::from(alarm);
        payload["resources"] = Value::from(vec![format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{alarm}",
            dowguard_tests::REGION,
            dowguard_tests::ACCOUNT_ID
        )]);
    }
    Ok(LambdaEvent::new(payload, Context::default()))
}

fn budget(id: &str, scope: &str, amount: &str, topic: Option<&str>) -> Result<Budget, Error> {
    let mut budget = day_budget(id, scope, amount)?;
    budget.topic = topic.map(str::to_string);
    Ok(budget)
}

async fn topic(aws: &LocalAws, name: &str, tags: &[(&str, &str)]) -> Result<String, Error> {
    let mut create = aws_sdk_sns::Client::new(&aws.sdk_config())
        .create_topic()
        .name(name);
    for (k, v) in tags {
        create = create.tags(aws_sdk_sns::types::Tag::builder().key(*k).value(*v).build()?);
    }
    Ok(create
        .send()
        .await?
        .topic_arn()
        .ok_or("topic without arn")?
        .to_string())
}

/// The local deployment: the server, the example account and what this test adds
/// to it, the recording, and an unrecorded app to read the account back.
struct World {
    aws: LocalAws,
    recording: Recording,
    observer: App,
    notices: String,
    attack_end: DateTime<Utc>,
}

impl World {
    async fn start() -> Result<Self, Error> {
        let aws = LocalAws::start().await?;
        let now = Utc::now().duration_trunc(Duration::minutes(1))?;
        let attack_end = attack_end_before(now);
        let notices = topic(&aws, "dowguard", &[]).await?;
        let observer = App::new(config(&notices)?, &aws.sdk_config(), Role::Cli)?;
        Ok(World {
            aws,
            recording: Recording::new(),
            observer,
            notices,
            attack_end,
        })
    }

    /// A function's app: its calls recorded as `function`'s, plus `extra`
    /// interceptors.
    fn app(&self, function: &str, extra: Vec<SharedInterceptor>) -> Result<App, Error> {
        let mut all = vec![self.recording.interceptor(function)];
        all.extend(extra);
        let role = match function {
            EVALUATOR => Role::Evaluator,
            INVENTORY => Role::Inventory,
            _ => Role::Responder,
        };
        Ok(App::with_interceptors(
            config(&self.notices)?,
            &self.aws.sdk_config(),
            role,
            Interceptors::new(all),
        )?)
    }

    /// A function's app whose first state write waits at a gate.
    fn gated_app(&self, function: &str) -> Result<(App, GateControl), Error> {
        let (interceptor, control) = gate("PutItem", "\"STATES\"");
        Ok((self.app(function, vec![interceptor])?, control))
    }

    async fn limits(&self) -> Result<Vec<(TargetId, Limits)>, Error> {
        let mut out: Vec<_> = self
            .observer
            .stack
            .account
            .discover()
            .await?
            .into_iter()
            .map(|t| (t.id, t.limits))
            // `spare` has no budget: the guard never changes it.
            .filter(|(id, _)| id.to_string() != "function:spare")
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Every recorded call decided against the template's roles.
    async fn report(&self) -> Result<Report, Error> {
        let template = translated()?;
        let deployment = Deployment::new(
            dowguard_tests::ACCOUNT_ID,
            dowguard_tests::REGION,
            TABLE,
            &self.notices,
        );
        check(
            &self.recording.calls(),
            &template,
            &deployment,
            &self.aws.sdk_config(),
        )
        .await
    }
}

/// Runs the handler of `function` (the evaluator, the alarm responder or the
/// inventory function).
async fn run(app: &App, function: &str, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let out = match function {
        EVALUATOR => dowguard_evaluator::handle(app, event).await,
        INVENTORY => dowguard_inventory::handle(app, event).await,
        _ => dowguard_alarm_responder::handle(app, event).await,
    };
    Ok(out.map_err(|d| d.error_message)?)
}

/// A CloudTrail event of `name` (Lambda's or API Gateway's) with `parameters`,
/// made by `principal`, from the fixture's shape.
fn change(source: &str, name: &str, parameters: Value, principal: &str) -> Result<LambdaEvent<Value>, Error> {
    let mut event = event("cloudtrail-put-function-concurrency.json", Utc::now(), None)?;
    let payload = &mut event.payload;
    payload["source"] = Value::from(format!("aws.{source}"));
    payload["detail"]["eventSource"] = Value::from(format!("{source}.amazonaws.com"));
    payload["detail"]["eventName"] = Value::from(name);
    payload["detail"]["requestParameters"] = parameters;
    payload["detail"]["userIdentity"]["arn"] = Value::from(principal);
    Ok(event)
}

/// Runs `gated` (a `gated_function` pass) until its first state write waits at the
/// gate, then `winner` (a `winner_function`) over each of `winner_events` to the
/// end, then lets the gated pass write (and lose) and finish.
async fn race(
    (gated, mut control, gated_function, gated_event): (Arc<App>, GateControl, &str, LambdaEvent<Value>),
    (winner, winner_function, winner_events): (&App, &str, Vec<LambdaEvent<Value>>),
) -> Result<(Value, Value), Error> {
    let handler = gated_function.to_string();
    let held = tokio::spawn(async move {
        run(&gated, &handler, gated_event)
            .await
            .map_err(|e| e.to_string())
    });
    tokio::time::timeout(StdDuration::from_secs(60), control.reached())
        .await
        .map_err(|_| format!("the gated {gated_function} pass wrote no state within 60 s"))??;
    let mut won = Value::Null;
    for event in winner_events {
        won = run(winner, winner_function, event).await?;
    }
    control.release();
    let lost = held.await??;
    Ok((won, lost))
}

fn assert_observed(report: &Report, function: &str, must: &[(&str, &str)]) {
    let seen = report.operations_of(function);
    assert!(!seen.is_empty(), "{function}: no call recorded");
    let missing: BTreeSet<_> = must
        .iter()
        .filter(|(s, o)| !seen.contains(&((*s).to_string(), (*o).to_string())))
        .collect();
    assert!(
        missing.is_empty(),
        "{function}: the scenarios did not reach {missing:?}; seen {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_the_three_functions_is_allowed_by_their_roles() -> Result<(), Error> {
    let w = World::start().await?;
    let aws = &w.aws;
    let now = w.attack_end + Duration::hours(1);
    // The example account: checkout (reserved 50), REST API shop/prod, a usage
    // plan over it; a second function without a reservation; an HTTP API stage
    // tagged itself, whose budget notifies its own (tagged) topic.
    let example = ExampleAccount::seed(aws, now).await?;
    create_function(aws, "search").await?;
    create_function(aws, "late").await?;
    // Guarded, without a budget: untagged later, and dropped from the inventory.
    create_function(aws, "spare").await?;
    // A trail that logs management events: the inventory's trail check reads it.
    create_trail(aws, "management", true).await?;
    let orders = create_http_api(aws, "orders", "prod").await?;
    let finance = topic(aws, "finance-alerts", &[GUARDED]).await?;
    let store = &w.observer.stack.store;
    store
        .put_budget(
            &budget("search-daily", "function:search", "240", None)?,
            None,
            "finance",
            now,
        )
        .await?;
    store
        .put_budget(
            &budget("late-daily", "function:late", "240", None)?,
            None,
            "finance",
            now,
        )
        .await?;
    store
        .put_budget(
            &budget(
                "orders-daily",
                &format!("http-stage:{orders}/prod"),
                "50",
                Some(&finance),
            )?,
            None,
            "finance",
            now,
        )
        .await?;
    // An alarm of dowguard's whose budget is gone: the sync deletes it.
    aws_sdk_cloudwatch::Client::new(&aws.sdk_config())
        .put_metric_alarm()
        .alarm_name(format!("{PREFIX}function:retired"))
        .namespace("AWS/Lambda")
        .metric_name("Invocations")
        .dimensions(Dimension::builder().name("FunctionName").value("retired").build())
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await?;
    // The flood: about 100x each budget's pace on every target.
    example.flood(aws, w.attack_end, 10).await?;
    // `late` floods four minutes after the rest: its minutes are not yet visible to
    // the first minute's passes.
    put_minutes(
        aws,
        "AWS/Lambda",
        &[("FunctionName", "late")],
        &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
        w.attack_end + Duration::minutes(4),
        5,
    )
    .await?;
    put_minutes(
        aws,
        "AWS/Lambda",
        &[("FunctionName", "search")],
        &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
        w.attack_end,
        10,
    )
    .await?;
    put_minutes(
        aws,
        "AWS/ApiGateway",
        &[("ApiId", orders.as_str()), ("Stage", "prod")],
        &[("Count", 3_000_000.0)],
        w.attack_end,
        10,
    )
    .await?;
    let originals = w.limits().await?;
    let evaluator = w.app(EVALUATOR, vec![])?;
    let responder = w.app(RESPONDER, vec![])?;
    let inventory = w.app(INVENTORY, vec![])?;

    // 0. The inventory function reads the account into the table.
    let out = run(
        &inventory,
        INVENTORY,
        event("scheduled-event.json", Utc::now(), None)?,
    )
    .await?;
    assert_eq!(out["trail"]["trail"], "management", "{out}");

    // 1. A calm pass before the flood, on the hour: alarms put, the stale one
    // deleted, the callers' ranking rules kept.
    let on_the_hour = (w.attack_end - Duration::hours(2)).duration_trunc(Duration::hours(1))?;
    let calm = event("scheduled-event.json", on_the_hour, None)?;
    let out = dowguard_evaluator::handle(&evaluator, calm)
        .await
        .map_err(|d| d.error_message)?;
    assert!(
        out["alarms"]["deleted"]
            .as_array()
            .is_some_and(|d| d.contains(&Value::from(format!("{PREFIX}function:retired")))),
        "{out}"
    );
    assert!(
        out["alarms"]["put"].as_array().is_some_and(|p| p.len() == 5),
        "{out}"
    );

    // 2. The flood's first minute: the evaluator and the responders at once. Two
    // evaluators never run together (the second finds the lease held), nor two
    // responders (their slot), but an evaluator can lose a state write to a
    // responder: alarms on every flooded target throttle them first, and the
    // evaluator's own writes lose.
    let at = w.attack_end + Duration::minutes(1);
    let alarm = |target: &str| event("alarm-state-change.json", at, Some(&format!("{PREFIX}{target}")));
    let alarmed = [
        "function:checkout".to_string(),
        "function:search".to_string(),
        format!("rest-stage:{}/prod", example.api),
        format!("http-stage:{orders}/prod"),
    ];
    let (gated, control) = w.gated_app(EVALUATOR)?;
    let (won, lost) = race(
        (
            Arc::new(gated),
            control,
            EVALUATOR,
            event("scheduled-event.json", at, None)?,
        ),
        (
            &responder,
            RESPONDER,
            alarmed.iter().map(|t| alarm(t)).collect::<Result<Vec<_>, _>>()?,
        ),
    )
    .await?;
    assert!(won["actions"].as_array().is_some_and(|a| !a.is_empty()), "{won}");
    assert!(
        lost.get("rejected").is_none() && lost.get("skipped").is_none(),
        "{lost}"
    );

    // 3. Five minutes on, a late flood on `late`: its alarm and the schedule at once;
    // the evaluator throttles it first and the responder's state write loses.
    let late_at = at + Duration::minutes(5);
    let (gated, control) = w.gated_app(RESPONDER)?;
    let (won, lost) = race(
        (
            Arc::new(gated),
            control,
            RESPONDER,
            event(
                "alarm-state-change.json",
                late_at,
                Some(&format!("{PREFIX}function:late")),
            )?,
        ),
        (
            &evaluator,
            EVALUATOR,
            vec![event("scheduled-event.json", late_at, None)?],
        ),
    )
    .await?;
    assert!(won["actions"].as_array().is_some_and(|a| !a.is_empty()), "{won}");
    assert!(
        lost.get("rejected").is_none() && lost.get("skipped").is_none(),
        "{lost}"
    );
    let throttled = w.limits().await?;
    for ((id, before), (_, after)) in originals.iter().zip(&throttled) {
        assert_ne!(before, after, "{id} was not throttled: {won}");
    }

    // 4. Change events while the targets are held: a deploy rewrites checkout's
    // reservation (the inventory function sets the guard's limit again), a person
    // updates the REST stage, and `spare` loses its guard tag.
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    lambda
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(80)
        .send()
        .await?;
    let deploy = "arn:aws:sts::123456789012:assumed-role/cfn-deploy/AWSCloudFormation";
    let out = run(
        &inventory,
        INVENTORY,
        change(
            "lambda",
            "PutFunctionConcurrency20171031",
            serde_json::json!({"functionName": "checkout", "reservedConcurrentExecutions": 80}),
            deploy,
        )?,
    )
    .await?;
    assert_eq!(out["drift"][0]["by"], deploy, "{out}");
    let out = run(
        &inventory,
        INVENTORY,
        change(
            "apigateway",
            "UpdateStage",
            serde_json::json!({"restApiId": example.api, "stageName": "prod"}),
            "arn:aws:iam::123456789012:user/alice",
        )?,
    )
    .await?;
    assert!(out.get("rejected").is_none(), "{out}");
    let spare = lambda
        .get_function()
        .function_name("spare")
        .send()
        .await?
        .configuration()
        .and_then(|c| c.function_arn())
        .ok_or("spare without an ARN")?
        .to_string();
    lambda
        .untag_resource()
        .resource(&spare)
        .tag_keys(GUARDED.0)
        .send()
        .await?;
    let out = run(
        &inventory,
        INVENTORY,
        change(
            "lambda",
            "UntagResource20170331v2",
            serde_json::json!({"resource": spare, "tagKeys": [GUARDED.0]}),
            "arn:aws:iam::123456789012:user/alice",
        )?,
    )
    .await?;
    assert_eq!(out["removed"], serde_json::json!(["function:spare"]), "{out}");
    // The deploy's 80 is the original the calm brings back.
    let mut originals = originals;
    for (id, limits) in &mut originals {
        if id.to_string() == "function:checkout" {
            *limits = Limits::Function {
                reserved_concurrency: Some(80),
                async_config: None,
            };
        }
    }

    // 5. The calm after, until every original limit is back.
    let mut at = at;
    let mut passes = 0;
    loop {
        let now = w.limits().await?;
        if now == originals {
            break;
        }
        passes += 1;
        assert!(
            passes <= 30,
            "not restored after {passes} passes: {now:?}, originally {originals:?}"
        );
        at += Duration::minutes(10);
        dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", at, None)?)
            .await
            .map_err(|d| d.error_message)?;
    }

    let report = w.report().await?;
    println!("{}", report.table());
    println!(
        "{} calls recorded, {} requests decided, restored after {passes} calm passes",
        w.recording.len(),
        report.checks.len()
    );
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "calls the roles do not allow:\n{}",
        failures.join("\n")
    );
    assert_observed(&report, EVALUATOR, EVALUATOR_MUST);
    assert_observed(&report, RESPONDER, RESPONDER_MUST);
    assert_observed(&report, INVENTORY, INVENTORY_MUST);
    for function in [EVALUATOR, RESPONDER] {
        let seen = report.operations_of(function);
        for listing in [("Lambda", "ListFunctions"), ("Lambda", "ListTags")] {
            assert!(
                !seen.contains(&(listing.0.to_string(), listing.1.to_string())),
                "{function} listed the account: {listing:?}"
            );
        }
    }
    assert!(
        report
            .checks
            .iter()
            .any(|c| c.request.action == "sns:Publish" && c.request.resource == finance),
        "no notice reached the budget's own topic"
    );
    Ok(())
}

/// An HTTP API tagged `dowguard-guarded=true` on the API only, not on its stage,
/// with a budget on that stage. HTTP API stages do not inherit their API's tags
/// ("API Gateway resources that can be tagged"), so on AWS the roles' tag
/// condition refuses any write to that stage: the guard must never try one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_stage_tagged_only_on_its_api_is_never_written() -> Result<(), Error> {
    let w = World::start().await?;
    let aws = &w.aws;
    let now = w.attack_end + Duration::hours(1);
    let http = aws_sdk_apigatewayv2::Client::new(&aws.sdk_config());
    let api = http
        .create_api()
        .name("legacy")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Http)
        .tags(GUARDED.0, GUARDED.1)
        .send()
        .await?
        .api_id()
        .ok_or("api without id")?
        .to_string();
    http.create_stage()
        .api_id(&api)
        .stage_name("prod")
        .default_route_settings(
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .throttling_rate_limit(50.0)
                .throttling_burst_limit(100)
                .build(),
        )
        .send()
        .await?;
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    dowguard_adapters::dynamodb::create_table(&dynamo, TABLE).await?;
    let scope = format!("http-stage:{api}/prod");
    w.observer
        .stack
        .store
        .put_budget(&budget("legacy-daily", &scope, "50", None)?, None, "finance", now)
        .await?;
    put_minutes(
        aws,
        "AWS/ApiGateway",
        &[("ApiId", api.as_str()), ("Stage", "prod")],
        &[("Count", 10_000_000.0)],
        w.attack_end,
        10,
    )
    .await?;
    let evaluator = w.app(EVALUATOR, vec![])?;
    let responder = w.app(RESPONDER, vec![])?;
    let inventory = w.app(INVENTORY, vec![])?;
    run(
        &inventory,
        INVENTORY,
        event("scheduled-event.json", Utc::now(), None)?,
    )
    .await?;
    let at = w.attack_end + Duration::minutes(1);
    let alarm = format!("{PREFIX}{scope}");
    dowguard_alarm_responder::handle(&responder, event("alarm-state-change.json", at, Some(&alarm))?)
        .await
        .map_err(|d| d.error_message)?;
    dowguard_evaluator::handle(&evaluator, event("scheduled-event.json", at, None)?)
        .await
        .map_err(|d| d.error_message)?;

    let report = w.report().await?;
    println!("{}", report.table());
    assert!(
        report
            .operations_of(INVENTORY)
            .contains(&("ApiGatewayV2".to_string(), "GetStages".to_string())),
        "the inventory did not list the HTTP API's stages"
    );
    for function in [EVALUATOR, RESPONDER] {
        assert!(
            !report
                .operations_of(function)
                .contains(&("ApiGatewayV2".to_string(), "UpdateStage".to_string())),
            "{function} wrote the stage its role may not change"
        );
    }
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "calls the roles do not allow:\n{}",
        failures.join("\n")
    );
    Ok(())
}
