//! The whole guard over real HTTP, without Lambda yet: functions, a REST API with a
//! stage and a usage plan, budgets and attack metrics in the local AWS server →
//! evaluate → throttles visible in the server → metrics back to normal → the
//! originals restored exactly, for stages without a throttle and for methods and
//! routes with a throttle of their own too.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_apigatewayv2::types::RouteSettings;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, DurationRound, Utc};
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_domain::{Budget, Change, Intent, Limits, Phase, TargetId};
use dowguard_guard::ports::{BudgetStore, StateStore};
use dowguard_guard::{Outcome, PassReport};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard, TABLE, day_budget};
use dowguard_tests::fixtures::{create_http_api_with, create_rest_api};

fn replace(path: &str, value: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(Op::Replace)
        .path(path)
        .value(value)
        .build()
}

#[tokio::test]
async fn an_attack_is_throttled_in_the_account_and_the_originals_come_back_exactly() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let example = ExampleAccount::seed(&aws, now).await.unwrap();
    let (api, plan) = (&example.api, &example.plan);
    // An attack early in the day: ten minutes at about 100× each budget's pace.
    let attack_end = dowguard_tests::account::attack_end_before(now);
    example.flood(&aws, attack_end, 10).await.unwrap();
    let local = LocalGuard::new(&aws).await.unwrap();
    local.reconcile(Utc::now()).await.unwrap();
    let guard = local.guard("evaluator");
    let lambda = aws_sdk_lambda::Client::new(&config);
    let apigw = aws_sdk_apigateway::Client::new(&config);

    let report = guard
        .evaluate(attack_end + chrono::Duration::minutes(1))
        .await
        .unwrap();
    let applied: Vec<String> = report
        .results()
        .filter(|(_, o)| **o == Outcome::Applied)
        .map(|(a, _)| format!("{} {}", a.target, a.permission()))
        .collect();
    assert!(
        applied
            .iter()
            .any(|a| a == "function:checkout lambda:PutFunctionConcurrency"),
        "{applied:?}"
    );
    // Nothing was held yet: the account's aggregate caught the flood, and the same
    // pass measured the function's budget's members and acted.
    assert!(
        report.tripwire.iter().any(
            |t| t.budget.as_ref().is_some_and(|b| b.as_str() == "checkout-daily") && t.bound.is_positive()
        ),
        "{:?}",
        report.tripwire
    );

    // Throttles visible in the server, read with separate calls.
    let reserved = lambda
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await
        .unwrap();
    let held = reserved.reserved_concurrent_executions().unwrap();
    assert!(held < 50, "reservation tightened from 50 to {held}");
    let stage = apigw
        .get_stage()
        .rest_api_id(api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let rate = stage.method_settings().unwrap()["*/*"].throttling_rate_limit();
    assert!((0.0..100.0).contains(&rate), "stage throttled to {rate}");
    let usage = apigw.get_usage_plan().usage_plan_id(plan).send().await.unwrap();
    assert!(
        usage.throttle().unwrap().rate_limit() < 100.0,
        "usage plan throttled"
    );
    let states = local.stack.store.load_states().await.unwrap();
    let checkout = &states[&TargetId::parse("function:checkout").unwrap()];
    assert!(checkout.phase.is_tightened());
    assert_eq!(
        checkout.restore_point.as_ref().map(|rp| &rp.limits),
        Some(&Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None
        })
    );

    // The attack is over: later passes see calm minutes and restore.
    let mut at = attack_end + chrono::Duration::minutes(1);
    for _ in 0..24 {
        at += chrono::Duration::minutes(5);
        guard.evaluate(at).await.unwrap();
    }
    let reserved = lambda
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reserved.reserved_concurrent_executions(),
        Some(50),
        "exactly the original reservation"
    );
    let stage = apigw
        .get_stage()
        .rest_api_id(api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let default = &stage.method_settings().unwrap()["*/*"];
    let account = apigw.get_account().send().await.unwrap();
    let account = account.throttle_settings().unwrap();
    assert_eq!(
        (default.throttling_rate_limit(), default.throttling_burst_limit()),
        (account.rate_limit(), account.burst_limit()),
        "lifted by writing the account's own limits"
    );
    let stage_id = TargetId::parse(&format!("rest-stage:{api}/prod")).unwrap();
    assert_eq!(
        local.limits().await.unwrap()[&stage_id],
        Limits::stage(None),
        "no stage throttle, as before"
    );
    let usage = apigw.get_usage_plan().usage_plan_id(plan).send().await.unwrap();
    assert_eq!(
        usage.throttle().map(|t| (t.rate_limit(), t.burst_limit())),
        Some((100.0, 200))
    );
    assert_eq!(usage.quota().map(|q| q.limit()), Some(10_000));
    let states = local.stack.store.load_states().await.unwrap();
    assert!(states.values().all(|s| s.phase == Phase::Normal), "{states:#?}");
    let audit = local
        .stack
        .store
        .audit_of_day(attack_end.date_naive())
        .await
        .unwrap();
    assert!(audit.iter().any(|r| r.action.intent == Intent::Restore));
}

/// A day budget in enforce mode on `scope`.
fn stage_budget(id: &str, scope: &str) -> Budget {
    day_budget(id, scope, "50").unwrap()
}

/// Writes `minutes` of a million requests a minute ending at `end` for each set of
/// `AWS/ApiGateway` dimensions.
async fn flood_stages(aws: &LocalAws, end: DateTime<Utc>, minutes: i64, stages: &[&[(&str, &str)]]) {
    let mut data = Vec::new();
    for dims in stages {
        for m in 1..=minutes {
            let mut d = MetricDatum::builder()
                .metric_name("Count")
                .timestamp(AwsDateTime::from_secs(
                    (end - chrono::Duration::minutes(m)).timestamp(),
                ))
                .value(1_000_000.0);
            for (k, v) in *dims {
                d = d.dimensions(Dimension::builder().name(*k).value(*v).build());
            }
            data.push(d.build());
        }
    }
    aws_sdk_cloudwatch::Client::new(&aws.sdk_config())
        .put_metric_data()
        .namespace("AWS/ApiGateway")
        .set_metric_data(Some(data))
        .send()
        .await
        .unwrap();
}

/// The guard's table with `budgets` in it.
async fn table_with(aws: &LocalAws, budgets: &[Budget], now: DateTime<Utc>) {
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    create_table(&dynamo, TABLE).await.unwrap();
    let store = DynamoStore::new(dynamo, TABLE, chrono::Duration::days(90));
    for b in budgets {
        store.put_budget(b, None, "finance", now).await.unwrap();
    }
}

fn stage_changes(report: &PassReport) -> Vec<&Change> {
    report
        .decision
        .actions
        .iter()
        .map(|a| &a.change)
        .filter(|c| matches!(c, Change::StageThrottle { .. }))
        .collect()
}

/// An HTTP stage's default route and one route's throttle, as GetStage shows them.
async fn http_throttles(
    client: &aws_sdk_apigatewayv2::Client,
    api: &str,
    route: &str,
) -> (Option<(f64, i32)>, Option<(f64, i32)>) {
    let stage = client
        .get_stage()
        .api_id(api)
        .stage_name("live")
        .send()
        .await
        .unwrap();
    let of = |s: &RouteSettings| Some((s.throttling_rate_limit()?, s.throttling_burst_limit()?));
    (
        stage.default_route_settings().and_then(of),
        stage.route_settings().and_then(|r| r.get(route)).and_then(of),
    )
}

#[tokio::test]
async fn an_unthrottled_http_stage_is_restored_to_no_throttle_and_the_next_pass_changes_nothing() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let api = create_http_api_with(&aws, "edge", "live", None, &[])
        .await
        .unwrap();
    let id = TargetId::parse(&format!("http-stage:{api}/live")).unwrap();
    table_with(&aws, &[stage_budget("edge-daily", &id.to_string())], now).await;
    let attack_end = dowguard_tests::account::attack_end_before(now);
    flood_stages(&aws, attack_end, 10, &[&[("ApiId", &api), ("Stage", "live")]]).await;
    let local = LocalGuard::new(&aws).await.unwrap();
    local.reconcile(Utc::now()).await.unwrap();
    assert_eq!(local.limits().await.unwrap()[&id], Limits::stage(None));
    let guard = local.guard("evaluator");
    let v2 = aws_sdk_apigatewayv2::Client::new(&config);

    let mut at = attack_end + chrono::Duration::minutes(1);
    guard.evaluate(at).await.unwrap();
    let (throttled, _) = http_throttles(&v2, &api, "-").await;
    assert!(
        throttled.is_some_and(|(rate, _)| rate < 1_000.0),
        "tightened: {throttled:?}"
    );
    for _ in 0..30 {
        at += chrono::Duration::minutes(5);
        guard.evaluate(at).await.unwrap();
    }
    let account = aws_sdk_apigateway::Client::new(&config)
        .get_account()
        .send()
        .await
        .unwrap();
    let account = account.throttle_settings().unwrap();
    assert_eq!(
        http_throttles(&v2, &api, "-").await.0,
        Some((account.rate_limit(), account.burst_limit())),
        "lifted by writing the account's own limits"
    );
    assert_eq!(
        local.limits().await.unwrap()[&id],
        Limits::stage(None),
        "read back as no stage throttle, as before"
    );
    let states = local.stack.store.load_states().await.unwrap();
    assert_eq!(states[&id].phase, Phase::Normal, "{:#?}", states[&id]);
    at += chrono::Duration::minutes(5);
    let next = guard.evaluate(at).await.unwrap();
    assert!(stage_changes(&next).is_empty(), "{:#?}", next.decision.actions);
}

#[tokio::test]
async fn method_and_route_overrides_are_capped_while_throttled_and_restored_exactly() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let v2 = aws_sdk_apigatewayv2::Client::new(&config);
    // A REST stage with no stage throttle whose `GET /` has a looser one of its own.
    let rest = create_rest_api(&aws, "shop", "prod").await.unwrap();
    apigw
        .update_stage()
        .rest_api_id(&rest)
        .stage_name("prod")
        .patch_operations(replace("/~1/GET/throttling/rateLimit", "500"))
        .patch_operations(replace("/~1/GET/throttling/burstLimit", "1000"))
        .send()
        .await
        .unwrap();
    // An HTTP stage with a throttled default route, one route with a looser throttle
    // and one route whose settings carry no throttle.
    let route = |rate: f64, burst: i32| {
        RouteSettings::builder()
            .throttling_rate_limit(rate)
            .throttling_burst_limit(burst)
            .build()
    };
    let metrics_only = RouteSettings::builder().detailed_metrics_enabled(true).build();
    let http = create_http_api_with(
        &aws,
        "edge",
        "live",
        Some(route(3_000.0, 3_000)),
        &[
            ("GET /orders", route(4_000.0, 8_000)),
            ("GET /health", metrics_only.clone()),
        ],
    )
    .await
    .unwrap();
    let rest_id = TargetId::parse(&format!("rest-stage:{rest}/prod")).unwrap();
    let http_id = TargetId::parse(&format!("http-stage:{http}/live")).unwrap();
    table_with(
        &aws,
        &[
            stage_budget("shop-daily", &rest_id.to_string()),
            stage_budget("edge-daily", &http_id.to_string()),
        ],
        now,
    )
    .await;
    let attack_end = dowguard_tests::account::attack_end_before(now);
    flood_stages(
        &aws,
        attack_end,
        10,
        &[
            &[("ApiName", "shop"), ("Stage", "prod")],
            &[("ApiId", &http), ("Stage", "live")],
        ],
    )
    .await;
    let local = LocalGuard::new(&aws).await.unwrap();
    local.reconcile(Utc::now()).await.unwrap();
    let originals = local.limits().await.unwrap();
    let rest_original = &originals[&rest_id];
    let Limits::Stage {
        throttle: None,
        overrides,
    } = rest_original
    else {
        panic!("{rest_original:?}");
    };
    assert_eq!(overrides.keys().collect::<Vec<_>>(), ["~1/GET"]);
    let Limits::Stage { overrides, .. } = &originals[&http_id] else {
        panic!("{:?}", originals[&http_id]);
    };
    assert_eq!(
        overrides.keys().collect::<Vec<_>>(),
        ["GET /orders"],
        "a route without a throttle is not an override"
    );
    let guard = local.guard("evaluator");
    let rest_throttles = || async {
        let stage = apigw
            .get_stage()
            .rest_api_id(&rest)
            .stage_name("prod")
            .send()
            .await
            .unwrap();
        let of = |key: &str| {
            let s = &stage.method_settings().unwrap()[key];
            (s.throttling_rate_limit(), s.throttling_burst_limit())
        };
        (of("*/*"), of("~1/GET"))
    };

    let mut at = attack_end + chrono::Duration::minutes(1);
    let first = guard.evaluate(at).await.unwrap();
    assert_eq!(stage_changes(&first).len(), 2, "one update per stage");
    let (stage, method) = rest_throttles().await;
    assert!(stage.0 < 100.0, "REST stage throttled: {stage:?}");
    assert!(
        method.0 <= stage.0 && method.1 <= stage.1,
        "GET / capped at the stage's throttle: {method:?} over {stage:?}"
    );
    let (default, orders) = http_throttles(&v2, &http, "GET /orders").await;
    let (default, orders) = (default.unwrap(), orders.unwrap());
    assert!(default.0 < 1_000.0, "HTTP stage throttled: {default:?}");
    assert!(
        orders.0 <= default.0 && orders.1 <= default.1,
        "GET /orders capped at the stage's throttle: {orders:?} over {default:?}"
    );

    for _ in 0..30 {
        at += chrono::Duration::minutes(5);
        guard.evaluate(at).await.unwrap();
    }
    let account = apigw.get_account().send().await.unwrap();
    let account = account.throttle_settings().unwrap();
    assert_eq!(
        rest_throttles().await,
        ((account.rate_limit(), account.burst_limit()), (500.0, 1_000)),
        "GET / exactly as it was; the stage unthrottled again"
    );
    assert_eq!(
        http_throttles(&v2, &http, "GET /orders").await,
        (Some((3_000.0, 3_000)), Some((4_000.0, 8_000))),
        "the default route and GET /orders exactly as they were"
    );
    let health = v2
        .get_stage()
        .api_id(&http)
        .stage_name("live")
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.route_settings().and_then(|r| r.get("GET /health")),
        Some(&metrics_only),
        "a route without a throttle is never touched"
    );
    let now_limits = local.limits().await.unwrap();
    assert_eq!(now_limits[&rest_id], originals[&rest_id]);
    assert_eq!(now_limits[&http_id], originals[&http_id]);
    at += chrono::Duration::minutes(5);
    let next = guard.evaluate(at).await.unwrap();
    assert!(stage_changes(&next).is_empty(), "{:#?}", next.decision.actions);
}
