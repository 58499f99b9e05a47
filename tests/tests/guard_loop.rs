//! The whole guard over real HTTP, without Lambda yet: functions, a REST API with a
//! stage and a usage plan, budgets and attack metrics in the local AWS server →
//! evaluate → throttles visible in the server → metrics back to normal → the
//! originals restored exactly.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, DurationRound, Utc};
use dowguard_adapters::AwsAccount;
use dowguard_adapters::apigateway::RestAdapter;
use dowguard_adapters::apigatewayv2::HttpAdapter;
use dowguard_adapters::cloudwatch::{CloudWatchMetrics, PlanSettings};
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::lambda::LambdaAdapter;
use dowguard_adapters::sns::SnsNotifier;
use dowguard_domain::{Budget, BudgetSpec, Floors, GuardSettings, Phase, PriceBook, TargetId};
use dowguard_guard::ports::{BudgetStore, StateStore};
use dowguard_guard::{Guard, Outcome};
use dowguard_tests::LocalAws;
use dowguard_tests::fixtures::{create_function, create_rest_api, create_usage_plan};

fn budget(id: &str, scope: &str, amount: &str) -> Budget {
    Budget::parse(BudgetSpec {
        id: id.into(),
        scope: scope.into(),
        period: "day".into(),
        amount: amount.into(),
        thresholds: vec![],
        mode: "enforce".into(),
        owner: "finance@example.com".into(),
        topic: None,
        floors: Floors::default(),
        protected: false,
    })
    .unwrap()
}

fn datum(name: &str, dims: &[(&str, &str)], at: DateTime<Utc>, value: f64) -> MetricDatum {
    let mut d = MetricDatum::builder()
        .metric_name(name)
        .timestamp(AwsDateTime::from_secs(at.timestamp()))
        .value(value);
    for (k, v) in dims {
        d = d.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    d.build()
}

#[tokio::test]
async fn an_attack_is_throttled_in_the_account_and_the_originals_come_back_exactly() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();

    // The account: a function with its own reservation, a REST API stage, a usage plan.
    create_function(&aws, "checkout").await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(50)
        .send()
        .await
        .unwrap();
    let api = create_rest_api(&aws, "shop", "prod").await.unwrap();
    let plan = create_usage_plan(&aws, &api, "prod").await.unwrap();
    let apigw = aws_sdk_apigateway::Client::new(&config);

    // The guard's table and budgets.
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, "dowguard").await.unwrap();
    let store = DynamoStore::new(dynamo, "dowguard", chrono::Duration::days(90));
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    for b in [
        budget("checkout-daily", "function:checkout", "240"),
        budget("shop-daily", &format!("rest-stage:{api}/prod"), "50"),
        budget("partners-daily", &format!("usage-plan:{plan}"), "50"),
    ] {
        store.put_budget(&b, None, "finance", now).await.unwrap();
    }

    // An attack four hours ago: ten minutes at about 100× each budget's pace.
    let attack_end = now - chrono::Duration::hours(4);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
    for m in 1..=10 {
        let at = attack_end - chrono::Duration::minutes(m);
        let f = [("FunctionName", "checkout")];
        let s = [("ApiName", "shop"), ("Stage", "prod")];
        cloudwatch
            .put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(datum("Invocations", &f, at, 16_000_000.0))
            .metric_data(datum("Duration", &f, at, 1_600_000_000.0))
            .send()
            .await
            .unwrap();
        cloudwatch
            .put_metric_data()
            .namespace("AWS/ApiGateway")
            .metric_data(datum("Count", &s, at, 1_000_000.0))
            .send()
            .await
            .unwrap();
    }

    let account = AwsAccount::new(
        LambdaAdapter::new(lambda.clone(), 15, 100),
        RestAdapter::new(apigw.clone(), 10, Duration::from_millis(10)),
        HttpAdapter::new(aws_sdk_apigatewayv2::Client::new(&config), 10),
        CloudWatchMetrics::new(cloudwatch, PlanSettings::default()),
    );
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns.create_topic().name("dowguard").send().await.unwrap();
    let notifier = SnsNotifier::new(sns, topic.topic_arn().map(str::to_string));
    let prices = PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .unwrap();
    let settings = GuardSettings::default();
    let guard = Guard {
        store: &store,
        discovery: &account,
        metrics: &account,
        lambda: &account,
        stages: &account,
        plans: &account,
        notifier: &notifier,
        prices: &prices,
        settings: &settings,
        actor: "evaluator",
    };

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
        .rest_api_id(&api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let rate = stage.method_settings().unwrap()["*/*"].throttling_rate_limit();
    assert!(rate >= 0.0 && rate < 100.0, "stage throttled to {rate}");
    let usage = apigw.get_usage_plan().usage_plan_id(&plan).send().await.unwrap();
    assert!(
        usage.throttle().unwrap().rate_limit() < 100.0,
        "usage plan throttled"
    );
    let states = store.load_states().await.unwrap();
    let checkout = &states[&TargetId::parse("function:checkout").unwrap()];
    assert!(checkout.phase.is_tightened());
    assert_eq!(
        checkout.restore_point.as_ref().map(|rp| &rp.limits),
        Some(&dowguard_domain::Limits::Function {
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
        .rest_api_id(&api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    assert!(
        stage.method_settings().unwrap()["*/*"].throttling_rate_limit() < 0.0,
        "no stage throttle, as before"
    );
    let usage = apigw.get_usage_plan().usage_plan_id(&plan).send().await.unwrap();
    assert_eq!(
        usage.throttle().map(|t| (t.rate_limit(), t.burst_limit())),
        Some((100.0, 200))
    );
    assert_eq!(usage.quota().map(|q| q.limit()), Some(10_000));
    let states = store.load_states().await.unwrap();
    assert!(states.values().all(|s| s.phase == Phase::Normal), "{states:#?}");
    let audit = store.audit_of_day(attack_end.date_naive()).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.action.intent == dowguard_domain::Intent::Restore)
    );
}
