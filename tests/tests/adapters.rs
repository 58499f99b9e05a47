//! Every adapter over real HTTP against the local AWS server: create the resources,
//! act through the adapter, read the state back with a separate SDK call.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
use chrono::{DurationRound, Utc};
use dowguard_adapters::AwsAccount;
use dowguard_adapters::apigateway::RestAdapter;
use dowguard_adapters::apigatewayv2::HttpAdapter;
use dowguard_adapters::cloudwatch::CloudWatchMetrics;
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::lambda::LambdaAdapter;
use dowguard_adapters::pace::Pacer;
use dowguard_adapters::sns::SnsNotifier;
use dowguard_adapters::tagging::TaggingAdapter;
use dowguard_adapters::trail::TrailAdapter;
use dowguard_adapters::waf::WafAdapter;
use dowguard_domain::MetricsPlan;
use dowguard_domain::notice::Publication;
use dowguard_domain::{
    AsyncConfig, Budget, BudgetId, FunctionName, GuardState, Limits, Phase, Quota, QuotaPeriod, RestorePoint,
    Target, TargetId, TargetKind, Throttle, UsagePlanId,
};
use dowguard_guard::FailureKind;
use dowguard_guard::ports::{
    AuditLog, BudgetStore, Discovery, FetchedMetrics, InventorySource, LambdaControl, MetricsRequest,
    Notifier, StageControl, StateStore, UsagePlanControl,
};
use dowguard_tests::LocalAws;
use dowguard_tests::account::day_budget;
use dowguard_tests::fixtures::{
    GUARDED, create_function, create_http_api, create_rest_api, create_usage_plan,
};

const TABLE: &str = "dowguard-test";

fn budget(id: &str, amount: &str) -> Budget {
    day_budget(id, "function:checkout", amount).unwrap()
}

async fn store(aws: &LocalAws) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    create_table(&client, TABLE).await.unwrap();
    DynamoStore::new(client, TABLE, chrono::Duration::days(90))
}

#[tokio::test]
async fn budgets_are_versioned_stale_writes_are_refused_and_history_is_kept() {
    let aws = LocalAws::start().await.unwrap();
    let store = store(&aws).await;
    let now = Utc::now();
    let v1 = store
        .put_budget(&budget("checkout-daily", "100"), None, "alice", now)
        .await
        .unwrap();
    let v2 = store
        .put_budget(
            &budget("checkout-daily", "150"),
            Some(v1),
            "bob",
            now + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    let stale = store
        .put_budget(&budget("checkout-daily", "90"), Some(v1), "carol", now)
        .await
        .expect_err("stale write");
    assert_eq!(stale.kind, FailureKind::Conflict);
    assert!(stale.to_string().contains("at version 2"), "{stale}");
    let again = store
        .put_budget(&budget("checkout-daily", "1"), None, "dave", now)
        .await
        .expect_err("exists");
    assert!(again.to_string().contains("already exists"), "{again}");

    let listed = store.list_budgets().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].version, listed[0].value.amount.to_string()),
        (v2, "$150.00".to_string())
    );

    let id = BudgetId::parse("checkout-daily").unwrap();
    assert_eq!(
        store
            .delete_budget(&id, v1, "erin", now)
            .await
            .expect_err("stale delete")
            .kind,
        FailureKind::Conflict
    );
    store
        .delete_budget(&id, v2, "erin", now + chrono::Duration::seconds(2))
        .await
        .unwrap();
    assert!(store.list_budgets().await.unwrap().is_empty());
    let history = store.budget_history(&id).await.unwrap();
    let trail: Vec<(&str, bool)> = history
        .iter()
        .map(|h| (h.actor.as_str(), h.budget.is_some()))
        .collect();
    assert_eq!(trail, [("alice", true), ("bob", true), ("erin", false)]);
}

#[tokio::test]
async fn states_use_optimistic_locking_and_a_held_restore_point_is_never_replaced() {
    let aws = LocalAws::start().await.unwrap();
    let store = store(&aws).await;
    let target = TargetId::parse("function:checkout").unwrap();
    let now = Utc::now();
    let original = Limits::Function {
        reserved_concurrency: Some(40),
        async_config: None,
    };
    let mut state = GuardState::new(now, dowguard_domain::Mode::Enforce);
    state.phase = Phase::Throttled { level: 2 };
    state.restore_point = Some(RestorePoint {
        limits: original.clone(),
        captured_at: now,
    });
    let v1 = store.save_state(&target, &state).await.unwrap();
    assert_eq!(v1, 1);
    // A writer that read nothing (version 0) loses.
    assert_eq!(
        store.save_state(&target, &state).await.expect_err("exists").kind,
        FailureKind::Conflict
    );
    // Escalating with the same restore point is fine.
    let mut escalated = state.clone();
    escalated.version = v1;
    escalated.phase = Phase::Throttled { level: 3 };
    let v2 = store.save_state(&target, &escalated).await.unwrap();
    // Replacing the restore point of a held target is refused, by the table itself.
    let mut overwrite = escalated.clone();
    overwrite.version = v2;
    overwrite.restore_point = Some(RestorePoint {
        limits: Limits::Function {
            reserved_concurrency: Some(1),
            async_config: None,
        },
        captured_at: now,
    });
    let refused = store.save_state(&target, &overwrite).await.expect_err("refused");
    assert_eq!(refused.kind, FailureKind::Refused, "{refused}");
    let stored = store.load_states().await.unwrap();
    assert_eq!(
        stored[&target].restore_point.as_ref().map(|rp| &rp.limits),
        Some(&original)
    );
    assert_eq!(stored[&target].version, v2);
    // Back to normal, the restore point may go.
    let mut normal = stored[&target].clone();
    normal.phase = Phase::Normal;
    normal.restore_point = None;
    store.save_state(&target, &normal).await.unwrap();
    assert!(
        store.load_states().await.unwrap()[&target]
            .restore_point
            .is_none()
    );
}

#[tokio::test]
async fn audit_records_are_written_with_an_expiry_and_read_back() {
    let aws = LocalAws::start().await.unwrap();
    let store = store(&aws).await;
    let at = Utc::now();
    let action = dowguard_domain::Action {
        target: TargetId::parse("function:checkout").unwrap(),
        change: dowguard_domain::Change::ReservedConcurrency {
            function: FunctionName::parse("checkout").unwrap(),
            from: None,
            to: Some(5),
        },
        intent: dowguard_domain::Intent::Tighten,
        mode: dowguard_domain::Mode::Enforce,
        apply: true,
        priority: dowguard_domain::Money::from_dollars(12),
        reason: dowguard_domain::Reason {
            budget: Some(BudgetId::parse("checkout-daily").unwrap()),
            rule: dowguard_domain::Rule::FastLane,
            level: dowguard_domain::Level::Throttle(3),
            spent: dowguard_domain::Money::from_dollars(10),
            amount: dowguard_domain::Money::from_dollars(100),
            projected: dowguard_domain::Money::from_dollars(900),
            burn_short: dowguard_domain::BurnRate(40_000_000),
            burn_long: dowguard_domain::BurnRate(9_000_000),
        },
    };
    let records: Vec<dowguard_guard::AuditRecord> = (0..30)
        .map(|_| dowguard_guard::AuditRecord {
            at,
            target: action.target.clone(),
            actor: "evaluator".into(),
            action: action.clone(),
            outcome: dowguard_guard::Outcome::Applied,
        })
        .collect();
    store.record(&records).await.unwrap();
    let back = store.audit_of_day(at.date_naive()).await.unwrap();
    assert_eq!(back.len(), 30, "more than one batch of 25");
    assert_eq!(back[0], records[0]);
    // Another pass at the same moment, about the same target (the alarm responder
    // beside the evaluator): its record is kept beside the first one, not over it.
    let other = dowguard_guard::AuditRecord {
        actor: "alarm-responder".into(),
        outcome: dowguard_guard::Outcome::Skipped {
            why: "the state changed first".into(),
        },
        ..records[0].clone()
    };
    store.record(std::slice::from_ref(&other)).await.unwrap();
    let back = store.audit_of_day(at.date_naive()).await.unwrap();
    assert_eq!(back.len(), 31, "no record overwritten");
    assert!(back.contains(&other) && back.contains(&records[0]));
}

#[tokio::test]
async fn lambda_limits_are_set_read_back_and_removed() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    create_function(&aws, "checkout").await.unwrap();
    let client = aws_sdk_lambda::Client::new(&config);
    let lambda = LambdaAdapter::new(client.clone(), 15);
    let f = FunctionName::parse("checkout").unwrap();

    lambda.set_reserved_concurrency(&f, Some(30)).await.unwrap();
    let account = lambda.account_concurrency().await.unwrap();
    assert_eq!(
        (account.limit, account.unreserved_now),
        (1_000, 970),
        "reservations leave the pool"
    );
    lambda.set_reserved_concurrency(&f, Some(0)).await.unwrap();
    let read = client
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await
        .unwrap();
    assert_eq!(read.reserved_concurrent_executions(), Some(0));
    lambda.set_reserved_concurrency(&f, None).await.unwrap();
    let read = client
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await
        .unwrap();
    assert_eq!(read.reserved_concurrent_executions(), None);

    let short = AsyncConfig {
        max_event_age_s: Some(60),
        max_retry_attempts: Some(0),
        on_success: None,
        on_failure: None,
    };
    lambda.set_async_config(&f, Some(&short)).await.unwrap();
    let read = client
        .get_function_event_invoke_config()
        .function_name("checkout")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (read.maximum_event_age_in_seconds(), read.maximum_retry_attempts()),
        (Some(60), Some(0))
    );
    let longer = AsyncConfig {
        max_event_age_s: Some(3_600),
        max_retry_attempts: Some(2),
        on_success: None,
        on_failure: None,
    };
    lambda.set_async_config(&f, Some(&longer)).await.unwrap();
    assert_eq!(lambda.async_config(&f).await.unwrap(), Some(longer));
    lambda.set_async_config(&f, None).await.unwrap();
    assert_eq!(lambda.async_config(&f).await.unwrap(), None);

    let missing = lambda
        .set_reserved_concurrency(&FunctionName::parse("ghost").unwrap(), Some(1))
        .await
        .expect_err("no such function");
    assert_eq!(missing.kind, FailureKind::NotFound);
    assert!(
        missing.to_string().contains("PutFunctionConcurrency on ghost"),
        "{missing}"
    );
}

#[tokio::test]
async fn async_config_is_restored_exactly_unset_retries_and_destination_included() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    create_function(&aws, "ingest").await.unwrap();
    let client = aws_sdk_lambda::Client::new(&config);
    let lambda = LambdaAdapter::new(client.clone(), 15);
    let f = FunctionName::parse("ingest").unwrap();
    let failed = "arn:aws:sqs:us-east-1:123456789012:failed-ingest";
    // The function's own config: a one-hour event age, the default retries (unset)
    // and an on-failure destination.
    client
        .put_function_event_invoke_config()
        .function_name("ingest")
        .maximum_event_age_in_seconds(3_600)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(OnFailure::builder().destination(failed).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let original = lambda.async_config(&f).await.unwrap().expect("a config");
    assert_eq!(
        original,
        AsyncConfig {
            max_event_age_s: Some(3_600),
            max_retry_attempts: None,
            on_success: None,
            on_failure: Some(failed.into()),
        }
    );
    let read_raw = || async {
        let out = client
            .get_function_event_invoke_config()
            .function_name("ingest")
            .send()
            .await
            .unwrap();
        (
            out.maximum_event_age_in_seconds(),
            out.maximum_retry_attempts(),
            out.destination_config()
                .and_then(|d| d.on_failure())
                .and_then(|d| d.destination())
                .map(str::to_string),
            out.destination_config().and_then(|d| d.on_success()).is_some(),
        )
    };

    let tight = AsyncConfig {
        max_event_age_s: Some(60),
        max_retry_attempts: Some(0),
        ..original.clone()
    };
    lambda.set_async_config(&f, Some(&tight)).await.unwrap();
    assert_eq!(
        read_raw().await,
        (Some(60), Some(0), Some(failed.to_string()), false),
        "tightened, the destination kept"
    );
    lambda.set_async_config(&f, Some(&original)).await.unwrap();
    assert_eq!(
        read_raw().await,
        (Some(3_600), None, Some(failed.to_string()), false),
        "exactly the original: no retry count the function never had"
    );
    assert_eq!(lambda.async_config(&f).await.unwrap(), Some(original));
}

#[tokio::test]
async fn discovery_finds_functions_stages_and_usage_plans_with_their_limits() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    create_function(&aws, "checkout").await.unwrap();
    let rest_api = create_rest_api(&aws, "shop", "prod").await.unwrap();
    let plan = create_usage_plan(&aws, &rest_api, "prod").await.unwrap();
    let http_api = create_http_api(&aws, "edge", "live").await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&config);
    lambda
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(25)
        .send()
        .await
        .unwrap();
    let gateway = Arc::new(Pacer::per_second(10));
    let account = AwsAccount::new(
        LambdaAdapter::new(lambda, 15),
        RestAdapter::new(
            aws_sdk_apigateway::Client::new(&config),
            gateway.clone(),
            Duration::from_millis(10),
        ),
        HttpAdapter::new(
            aws_sdk_apigatewayv2::Client::new(&config),
            aws_sdk_apigateway::Client::new(&config),
            gateway,
        ),
        CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&config), MetricsPlan::default()),
        (
            TaggingAdapter::new(aws_sdk_resourcegroupstagging::Client::new(&config), 15),
            TrailAdapter::new(aws_sdk_cloudtrail::Client::new(&config)),
            WafAdapter::new(aws_sdk_wafv2::Client::new(&config)),
        ),
    );
    let targets = account.discover().await.unwrap();
    // Each target read alone is what the listing says of it.
    for target in targets.iter() {
        let read = account.read_target(&target.id).await.unwrap();
        assert_eq!(read.map(|f| f.target).as_ref(), Some(target), "{}", target.id);
    }
    let listed: Vec<Target> = account
        .list_apis()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.target)
        .collect();
    assert_eq!(
        listed.len(),
        targets
            .iter()
            .filter(|t| t.id.kind() != TargetKind::Function)
            .count()
    );
    assert_eq!(
        account
            .read_target(&TargetId::parse("function:gone").unwrap())
            .await
            .unwrap(),
        None,
        "a function that does not exist reads as none"
    );
    let find = |id: &str| {
        let id = TargetId::parse(id).unwrap();
        targets
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("{id} not found in {targets:#?}"))
            .clone()
    };
    assert_eq!(
        find("function:checkout").limits,
        Limits::Function {
            reserved_concurrency: Some(25),
            async_config: None
        }
    );
    assert_eq!(
        find(&format!("rest-stage:{rest_api}/prod")).limits,
        Limits::stage(None)
    );
    let Limits::UsagePlan { throttle, quota } = find(&format!("usage-plan:{plan}")).limits else {
        panic!("usage plan limits");
    };
    assert_eq!(throttle.map(|t| t.burst_limit), Some(200));
    assert_eq!(
        quota.map(|q| (q.limit, q.period)),
        Some((10_000, QuotaPeriod::Day))
    );
    assert_eq!(
        find(&format!("http-stage:{http_api}/live")).limits,
        Limits::stage(Some(Throttle {
            rate_limit: 50.into(),
            burst_limit: 100
        }))
    );
}

#[tokio::test]
async fn stage_throttles_and_usage_plans_are_set_and_restored_exactly() {
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    let rest_api = create_rest_api(&aws, "shop", "prod").await.unwrap();
    let plan = create_usage_plan(&aws, &rest_api, "prod").await.unwrap();
    let http_api = create_http_api(&aws, "edge", "live").await.unwrap();
    let gateway = Arc::new(Pacer::per_second(10));
    let rest = RestAdapter::new(
        aws_sdk_apigateway::Client::new(&config),
        gateway.clone(),
        Duration::from_millis(10),
    );
    let http = HttpAdapter::new(
        aws_sdk_apigatewayv2::Client::new(&config),
        aws_sdk_apigateway::Client::new(&config),
        gateway,
    );
    let apigw = aws_sdk_apigateway::Client::new(&config);
    let none = BTreeMap::new();
    let account = apigw.get_account().send().await.unwrap();
    let account = account
        .throttle_settings()
        .map(|t| (t.rate_limit(), t.burst_limit()))
        .unwrap();
    let tight = Throttle {
        rate_limit: 7.into(),
        burst_limit: 9,
    };

    let stage = TargetId::parse(&format!("rest-stage:{rest_api}/prod")).unwrap();
    rest.set_stage_throttle(&stage, Some(tight), &none).await.unwrap();
    let read = apigw
        .get_stage()
        .rest_api_id(&rest_api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let default = &read.method_settings().unwrap()["*/*"];
    assert_eq!(
        (default.throttling_rate_limit(), default.throttling_burst_limit()),
        (7.0, 9)
    );
    rest.set_stage_throttle(&stage, None, &none).await.unwrap();
    let read = apigw
        .get_stage()
        .rest_api_id(&rest_api)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    let default = &read.method_settings().unwrap()["*/*"];
    assert_eq!(
        (default.throttling_rate_limit(), default.throttling_burst_limit()),
        account,
        "lifted to the account's own limits"
    );

    let plan_id = UsagePlanId::parse(&plan).unwrap();
    let quota = Quota {
        limit: 321,
        period: QuotaPeriod::Day,
        offset: 0,
    };
    rest.set_plan_limits(&plan_id, Some(tight), Some(quota))
        .await
        .unwrap();
    let read = apigw.get_usage_plan().usage_plan_id(&plan).send().await.unwrap();
    assert_eq!(
        read.throttle().map(|t| (t.rate_limit(), t.burst_limit())),
        Some((7.0, 9))
    );
    assert_eq!(read.quota().map(|q| q.limit()), Some(321));
    let original = Throttle {
        rate_limit: "100.5".parse().unwrap(),
        burst_limit: 200,
    };
    rest.set_plan_limits(&plan_id, Some(original), None)
        .await
        .unwrap();
    let read = apigw.get_usage_plan().usage_plan_id(&plan).send().await.unwrap();
    assert_eq!(
        read.throttle().map(|t| t.rate_limit()),
        Some(100.5),
        "fractional rates restore exactly"
    );
    assert!(read.quota().is_none_or(|q| q.limit() == 0), "quota removed");

    let http_stage = TargetId::parse(&format!("http-stage:{http_api}/live")).unwrap();
    http.set_stage_throttle(&http_stage, Some(tight), &none)
        .await
        .unwrap();
    let read = aws_sdk_apigatewayv2::Client::new(&config)
        .get_stage()
        .api_id(&http_api)
        .stage_name("live")
        .send()
        .await
        .unwrap();
    let settings = read.default_route_settings().unwrap();
    assert_eq!(
        (
            settings.throttling_rate_limit(),
            settings.throttling_burst_limit()
        ),
        (Some(7.0), Some(9))
    );
    http.set_stage_throttle(&http_stage, None, &none).await.unwrap();
    let read = aws_sdk_apigatewayv2::Client::new(&config)
        .get_stage()
        .api_id(&http_api)
        .stage_name("live")
        .send()
        .await
        .unwrap();
    let settings = read.default_route_settings().unwrap();
    assert_eq!(
        (
            settings.throttling_rate_limit(),
            settings.throttling_burst_limit()
        ),
        (Some(account.0), Some(account.1)),
        "lifted to the account's own limits (GetAccount), never to 0"
    );

    let wrong = rest
        .set_stage_throttle(&http_stage, Some(tight), &none)
        .await
        .expect_err("wrong kind");
    assert_eq!(wrong.kind, FailureKind::Refused);
}

#[tokio::test]
async fn metrics_are_fetched_per_minute_and_counted() {
    let aws = LocalAws::start().await.unwrap();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    for minutes_ago in 1..=3 {
        put_checkout_minute(
            &cloudwatch,
            now - chrono::Duration::minutes(minutes_ago),
            120.0,
            6_000.0,
        )
        .await;
    }
    let metrics = CloudWatchMetrics::new(cloudwatch, MetricsPlan::default());
    let fetched = fetch_checkout(&metrics, now).await;
    let minutes = &fetched.by_target[&checkout_target().id].minutes;
    assert_eq!(minutes.len(), 3, "{minutes:?}");
    assert!(
        minutes
            .iter()
            .all(|m| m.usage.requests == 120 && m.usage.duration_ms == 6_000)
    );
    assert!(fetched.metrics_requested >= 2);
}

/// Between two refreshes of the hourly spend-to-date (every 60 minutes), a pass's
/// one-minute detail must reach back to where the cached total ends: a flood that
/// fell between the two would otherwise count as no spend.
#[tokio::test]
async fn spend_to_date_has_no_gap_between_the_cached_total_and_the_minutes() {
    let aws = LocalAws::start().await.unwrap();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    // A fixed hour well inside a day and a month: the passes below must not cross
    // into the next period, whatever the hour the test runs.
    let hour = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 9, 0, 0).unwrap();
    for m in 10..=20 {
        put_checkout_minute(
            &cloudwatch,
            hour + chrono::Duration::minutes(m),
            1_000.0,
            100_000.0,
        )
        .await;
    }
    let metrics = CloudWatchMetrics::new(cloudwatch, MetricsPlan::default());
    let id = checkout_target().id;
    // The first pass fetches the total through the previous hour, the second comes
    // 58 minutes later, before the next refresh of the total.
    for at in [22, 80] {
        let now = hour + chrono::Duration::minutes(at);
        let fetched = fetch_checkout(&metrics, now).await;
        let got = &fetched.by_target[&id];
        let total = got
            .to_date
            .iter()
            .find(|p| p.period == dowguard_domain::Period::Month)
            .expect("a month-to-date total");
        let after: u64 = got
            .minutes
            .iter()
            .filter(|m| m.minute > total.through_minute)
            .map(|m| m.usage.requests)
            .sum();
        assert_eq!(
            total.usage.requests + after,
            11_000,
            "pass at minute {at}: total through {} plus the minutes after it",
            total.through_minute
        );
    }
}

fn checkout_target() -> dowguard_domain::Target {
    dowguard_domain::Target {
        id: TargetId::parse("function:checkout").unwrap(),
        spec: dowguard_domain::TargetSpec::Function {
            memory_mb: 512,
            arch: dowguard_domain::Arch::X86_64,
            async_invoked: false,
        },
        tags: Default::default(),
        limits: Limits::unset(dowguard_domain::TargetKind::Function),
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// One minute of `function:checkout`: `invocations` lasting `duration_ms` in all.
async fn put_checkout_minute(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    at: chrono::DateTime<Utc>,
    invocations: f64,
    duration_ms: f64,
) {
    for (metric, value, unit) in [
        ("Invocations", invocations, StandardUnit::Count),
        ("Duration", duration_ms, StandardUnit::Milliseconds),
    ] {
        cloudwatch
            .put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(
                MetricDatum::builder()
                    .metric_name(metric)
                    .dimensions(
                        Dimension::builder()
                            .name("FunctionName")
                            .value("checkout")
                            .build(),
                    )
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                        at.timestamp(),
                    ))
                    .value(value)
                    .unit(unit)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

/// One urgent fetch of `function:checkout` at `now`.
async fn fetch_checkout(metrics: &CloudWatchMetrics, now: chrono::DateTime<Utc>) -> FetchedMetrics {
    let targets = [checkout_target()];
    let detailed: HashSet<TargetId> = [targets[0].id.clone()].into();
    metrics
        .fetch_with(
            &MetricsRequest {
                now,
                targets: &targets,
                detailed: &detailed,
                urgent: &detailed,
                every: &Default::default(),
                aggregate: false,
                window_minutes: 63,
            },
            &Default::default(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn notices_are_published_to_the_budget_topic_or_the_default() {
    let aws = LocalAws::start().await.unwrap();
    let sns = aws_sdk_sns::Client::new(&aws.sdk_config());
    let topic = sns.create_topic().name("dowguard-alerts").send().await.unwrap();
    let arn = topic.topic_arn().unwrap().to_string();
    let notifier = SnsNotifier::new(sns.clone(), Some(arn.clone()));
    let plain = |subject: &str| Publication::plain(subject, "figures");
    // Published with MessageStructure=json: for each subscriber the server reads
    // the message as JSON and takes the subscriber protocol's key or "default",
    // refusing a message with neither (moto's SNS `_parse_message_structure`).
    sns.subscribe()
        .topic_arn(&arn)
        .protocol("email")
        .endpoint("finance@example.com")
        .send()
        .await
        .unwrap();
    notifier
        .publish(None, &plain("dowguard: function:x normal → throttled(3)"))
        .await
        .unwrap();
    notifier.publish(Some(&arn), &plain("again")).await.unwrap();
    let missing = notifier
        .publish(Some("arn:aws:sns:us-east-1:123456789012:nope"), &plain("s"))
        .await
        .expect_err("no such topic");
    assert!(
        missing
            .to_string()
            .contains("Publish on arn:aws:sns:us-east-1:123456789012:nope"),
        "{missing}"
    );
}

#[tokio::test]
async fn unreadable_budgets_and_states_are_reported_and_the_rest_are_read() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let aws = LocalAws::start().await.unwrap();
    let store = store(&aws).await;
    let now = Utc::now();
    store
        .put_budget(&budget("checkout-daily", "240"), None, "finance", now)
        .await
        .unwrap();
    let good = TargetId::parse("function:checkout").unwrap();
    store
        .save_state(&good, &GuardState::new(now, dowguard_domain::Mode::Enforce))
        .await
        .unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    let put = |pk: &str, sk: &str, extra: Option<(&str, &str)>| {
        let mut request = dynamo
            .put_item()
            .table_name(TABLE)
            .item("pk", AttributeValue::S(pk.into()))
            .item("sk", AttributeValue::S(sk.into()));
        if let Some((k, v)) = extra {
            request = request.item(k, AttributeValue::S(v.into()));
        }
        request.send()
    };
    // A budget without its spec, one whose spec no longer parses, a state without
    // its state, one that no longer parses, and one whose key names no target.
    put("BUDGETS", "B#lost", None).await.unwrap();
    put("BUDGETS", "B#garbled", Some(("spec", "{not json")))
        .await
        .unwrap();
    put("STATES", "S#function:resize", None).await.unwrap();
    put("STATES", "S#function:thumbs", Some(("state", "{\"phase\":")))
        .await
        .unwrap();
    put("STATES", "S#not a target", Some(("state", "{}")))
        .await
        .unwrap();

    let budgets = store.list_budgets().await.unwrap();
    assert_eq!(budgets.items.len(), 1, "the readable budget is still read");
    let keys: Vec<&str> = budgets.unreadable.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["BUDGETS/B#garbled", "BUDGETS/B#lost"]);
    assert!(budgets.unreadable.iter().all(|u| !u.why.is_empty()));

    let states = store.load_states().await.unwrap();
    assert!(states.items.contains_key(&good) && states.items.len() == 1);
    let unread: Vec<(Option<String>, &str)> = states
        .unreadable
        .iter()
        .map(|u| (u.target.as_ref().map(ToString::to_string), u.why.as_str()))
        .collect();
    assert_eq!(unread.len(), 3, "{unread:?}");
    assert!(
        unread.contains(&(Some("function:resize".into()), "it has no state")),
        "{unread:?}"
    );
    assert!(
        unread
            .iter()
            .any(|(t, why)| t.as_deref() == Some("function:thumbs") && why.contains("unreadable")),
        "{unread:?}"
    );
    assert!(unread.contains(&(None, "its key names no target")), "{unread:?}");
}

/// The tripwire's cost does not grow with the account: after the first pass's
/// sweep of every function's spend-to-date, a pass over 40 quiet functions asks for
/// the account's two aggregate metrics and nothing else, and the aggregate it
/// reads is every function's minutes added up (as Lambda publishes them across all
/// functions).
#[tokio::test]
async fn a_steady_pass_over_many_functions_asks_for_two_metrics_whatever_their_number() {
    let aws = LocalAws::start().await.unwrap();
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let targets: Vec<dowguard_domain::Target> = (0..40)
        .map(|i| dowguard_domain::Target {
            id: TargetId::parse(&format!("function:fn-{i:02}")).unwrap(),
            ..checkout_target()
        })
        .collect();
    for target in &targets[..3] {
        let name = target.id.to_string().replace("function:", "");
        dowguard_tests::account::put_minutes(
            &aws,
            "AWS/Lambda",
            &[("FunctionName", name.as_str())],
            &[("Invocations", 10.0), ("Duration", 1_000.0)],
            now,
            5,
        )
        .await
        .unwrap();
    }
    let metrics = CloudWatchMetrics::new(
        aws_sdk_cloudwatch::Client::new(&aws.sdk_config()),
        MetricsPlan::default(),
    );
    let detailed: HashSet<TargetId> = targets.iter().map(|t| t.id.clone()).collect();
    let pass = |at: chrono::DateTime<Utc>| {
        let (targets, detailed, metrics) = (&targets, &detailed, &metrics);
        async move {
            metrics
                .fetch_with(
                    &MetricsRequest {
                        now: at,
                        targets,
                        detailed,
                        urgent: &HashSet::new(),
                        every: &Default::default(),
                        aggregate: true,
                        window_minutes: 63,
                    },
                    &Default::default(),
                )
                .await
                .unwrap()
        }
    };
    let first = pass(now).await;
    // The sweep: each function's Invocations and Duration as hourly sums.
    assert_eq!(first.metrics_requested, 2 + 40 * 2);
    let second = pass(now + chrono::Duration::minutes(1)).await;
    assert_eq!(second.metrics_requested, 2, "only the aggregate");
    assert!(second.fresh.is_empty());
    let aggregate = second.aggregate.expect("the aggregate was asked for");
    assert_eq!(aggregate.len(), 5, "{aggregate:?}");
    assert!(
        aggregate
            .iter()
            .all(|m| m.usage.requests == 30 && m.usage.duration_ms == 3_000),
        "three functions' minutes added up: {aggregate:?}"
    );
}

/// The inventory in the table: entries and the inventory's record written at the
/// version read, a stale writer refused, an entry removed; and a held target's
/// restore point replaced only by `replace_original`, only from the point read.
#[tokio::test]
async fn the_inventory_is_versioned_and_a_held_original_is_replaced_only_on_purpose() {
    use dowguard_guard::inventory::{Entry, Meta, Source};
    use dowguard_guard::ports::{Found, InventoryStore};
    let aws = LocalAws::start().await.unwrap();
    let store = store(&aws).await;
    let now = Utc::now();
    let id = TargetId::parse("function:checkout").unwrap();
    let target = dowguard_domain::Target::new(
        id.clone(),
        dowguard_domain::TargetSpec::Function {
            memory_mb: 512,
            arch: dowguard_domain::Arch::Arm64,
            async_invoked: false,
        },
        Default::default(),
        Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None,
        },
    );
    let entry = Entry::new(Found::of(target.clone()), now, Source::Reconciled);
    let v1 = store.put_entry(&entry, 0).await.unwrap();
    assert_eq!(
        store.put_entry(&entry, 0).await.expect_err("exists").kind,
        FailureKind::Conflict
    );
    let v2 = store.put_entry(&entry, v1).await.unwrap();
    let mut meta = Meta::default();
    meta.slices.insert(3, now);
    store.put_meta(&meta, 0).await.unwrap();
    let read = store.load_inventory().await.unwrap();
    assert_eq!(read.entries[&id].version, v2);
    assert_eq!(read.entries[&id].value, entry);
    assert_eq!(read.meta.value, meta);
    assert!(read.unreadable.is_empty());
    assert_eq!(
        store.remove_entry(&id, v1).await.expect_err("stale").kind,
        FailureKind::Conflict
    );
    store.remove_entry(&id, v2).await.unwrap();
    assert!(store.load_inventory().await.unwrap().entries.is_empty());

    // A held state: only replace_original may change its restore point.
    let original = RestorePoint {
        limits: target.limits.clone(),
        captured_at: now,
    };
    let mut state = GuardState::new(now, dowguard_domain::Mode::Enforce);
    state.phase = Phase::Throttled { level: 1 };
    state.restore_point = Some(original.clone());
    state.version = store.save_state(&id, &state).await.unwrap();
    let mut rebased = state.clone();
    rebased.restore_point = Some(RestorePoint {
        limits: Limits::Function {
            reserved_concurrency: Some(80),
            async_config: None,
        },
        captured_at: now,
    });
    assert_eq!(
        store.save_state(&id, &rebased).await.expect_err("held").kind,
        FailureKind::Refused
    );
    let wrong = RestorePoint {
        limits: Limits::Function {
            reserved_concurrency: Some(7),
            async_config: None,
        },
        captured_at: now,
    };
    assert_eq!(
        store
            .replace_original(&id, &rebased, &wrong)
            .await
            .expect_err("not the point read")
            .kind,
        FailureKind::Conflict
    );
    store.replace_original(&id, &rebased, &original).await.unwrap();
    let stored = store.load_states().await.unwrap();
    assert_eq!(stored[&id].restore_point, rebased.restore_point);
}

/// The tagging API finds the functions carrying a tag, a hundred a page; and
/// the trail check tells a trail that logs management events from none.
#[tokio::test]
async fn tagged_functions_are_found_by_tag_and_a_logging_trail_is_detected() {
    use dowguard_tests::fixtures::{create_function_with, create_trail};
    let aws = LocalAws::start().await.unwrap();
    let config = aws.sdk_config();
    for i in 0..120 {
        create_function_with(&aws, &format!("guarded-{i:03}"), 128, &[GUARDED])
            .await
            .unwrap();
    }
    create_function_with(&aws, "team-a", 128, &[("team", "a")])
        .await
        .unwrap();
    create_function_with(&aws, "untagged", 128, &[]).await.unwrap();
    let tagging = TaggingAdapter::new(aws_sdk_resourcegroupstagging::Client::new(&config), 1_000);
    let found = tagging
        .functions_tagged(&[(GUARDED.0.into(), GUARDED.1.into()), ("team".into(), "a".into())])
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        121,
        "every guarded function and the team's, across pages"
    );
    assert!(found.iter().any(|f| f.as_str() == "team-a"));
    assert!(!found.iter().any(|f| f.as_str() == "untagged"));

    let trail = TrailAdapter::new(aws_sdk_cloudtrail::Client::new(&config));
    assert_eq!(trail.status().await.unwrap().trail, None, "no trail yet");
    create_trail(&aws, "stopped", false).await.unwrap();
    let stopped = trail.status().await.unwrap();
    assert_eq!(stopped.trail, None, "{}", stopped.note);
    assert!(stopped.note.contains("not logging"), "{}", stopped.note);
    create_trail(&aws, "management", true).await.unwrap();
    assert_eq!(trail.status().await.unwrap().trail.as_deref(), Some("management"));
}

#[tokio::test]
async fn a_function_url_is_open_only_when_its_auth_type_is_none() {
    let aws = LocalAws::start().await.unwrap();
    let client = aws_sdk_lambda::Client::new(&aws.sdk_config());
    let lambda = LambdaAdapter::new(client.clone(), 15);
    for (name, auth) in [
        ("open", Some(aws_sdk_lambda::types::FunctionUrlAuthType::None)),
        ("signed", Some(aws_sdk_lambda::types::FunctionUrlAuthType::AwsIam)),
        ("without", None),
    ] {
        create_function(&aws, name).await.unwrap();
        if let Some(auth) = auth {
            client
                .create_function_url_config()
                .function_name(name)
                .auth_type(auth)
                .send()
                .await
                .unwrap();
        }
    }
    let open = |name: &str| FunctionName::parse(name).unwrap();
    assert!(lambda.open_url(&open("open")).await.unwrap());
    assert!(!lambda.open_url(&open("signed")).await.unwrap());
    assert!(!lambda.open_url(&open("without")).await.unwrap(), "no URL");
    let missing = lambda.open_url(&open("ghost")).await;
    assert!(missing.is_ok_and(|o| !o), "a function that is gone has no URL");
}
