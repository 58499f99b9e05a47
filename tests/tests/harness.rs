//! Tests of the local AWS harness itself: each starts its own server, makes real
//! SDK calls over HTTP, and reads the resulting state back with a separate call.
//! They pin down that the calls the guard's adapters make work against the
//! harness, including the patched ones listed in `docs/testing.md`.

use std::collections::HashMap;
use std::error::Error;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_apigateway::types::{Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings};
use aws_sdk_apigatewayv2::types::{ProtocolType, RouteSettings};
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy, StandardUnit,
    StateValue, Statistic,
};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_types::{Blob, DateTime};
use dowguard_tests::{ACCOUNT_ID, LocalAws};

type TestResult = Result<(), Box<dyn Error>>;

/// The start of the current minute, minus `minutes_ago` minutes, in epoch seconds.
fn minute_start(minutes_ago: i64) -> Result<i64, Box<dyn Error>> {
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())?;
    Ok(now - now % 60 - minutes_ago * 60)
}

#[tokio::test]
async fn server_starts_answers_and_reset_clears_every_resource() -> TestResult {
    let aws = LocalAws::start().await?;
    assert!(aws.endpoint().starts_with("http://127.0.0.1:"));
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    dynamodb
        .create_table()
        .table_name("guard-state")
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .send()
        .await?;
    let before = dynamodb.list_tables().send().await?;
    assert_eq!(before.table_names(), ["guard-state"]);

    aws.reset().await?;

    let after = dynamodb.list_tables().send().await?;
    assert!(
        after.table_names().is_empty(),
        "tables left after reset: {:?}",
        after.table_names()
    );
    Ok(())
}

fn invocations(function_name: &str) -> Metric {
    Metric::builder()
        .namespace("AWS/Lambda")
        .metric_name("Invocations")
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(function_name)
                .build(),
        )
        .build()
}

fn datum(function_name: &str, epoch_seconds: i64, value: f64) -> MetricDatum {
    MetricDatum::builder()
        .metric_name("Invocations")
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(function_name)
                .build(),
        )
        .timestamp(DateTime::from_secs(epoch_seconds))
        .value(value)
        .unit(StandardUnit::Count)
        .build()
}

fn sum_per_minute(id: &str, function_name: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(invocations(function_name))
                .period(60)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}

#[tokio::test]
async fn cloudwatch_metric_data_round_trips_through_the_cbor_bridge() -> TestResult {
    let aws = LocalAws::start().await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    let start = minute_start(5)?;
    cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("checkout", start + 5, 1.0))
        .metric_data(datum("checkout", start + 30, 2.0))
        .metric_data(datum("checkout", start + 65, 5.0))
        .metric_data(datum("checkout", start + 130, 7.0))
        .metric_data(datum("search", start + 10, 40.0))
        .send()
        .await?;

    let mut series: HashMap<String, (Vec<DateTime>, Vec<f64>)> = HashMap::new();
    let mut next_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = cloudwatch
            .get_metric_data()
            .metric_data_queries(sum_per_minute("checkout", "checkout"))
            .metric_data_queries(sum_per_minute("search", "search"))
            .metric_data_queries(sum_per_minute("idle", "idle"))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(start + 300))
            .scan_by(ScanBy::TimestampAscending)
            .set_next_token(next_token.take())
            .send()
            .await?;
        pages += 1;
        for result in page.metric_data_results() {
            let id = result.id().unwrap_or_default().to_owned();
            let entry = series.entry(id).or_default();
            entry.0.extend_from_slice(result.timestamps());
            entry.1.extend_from_slice(result.values());
        }
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() || pages >= 10 {
            break;
        }
    }

    let minutes = |offsets: &[i64]| {
        offsets
            .iter()
            .map(|offset| DateTime::from_secs(start + offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(series["checkout"], (minutes(&[0, 60, 120]), vec![3.0, 5.0, 7.0]));
    assert_eq!(series["search"], (minutes(&[0]), vec![40.0]));
    assert_eq!(series["idle"], (vec![], vec![]));
    Ok(())
}

/// A metric is its namespace, name and whole set of dimensions (Amazon CloudWatch
/// concepts, "Dimensions"): the series Lambda publishes across all functions,
/// without dimensions, is read alone, not with every function's series added.
#[tokio::test]
async fn a_query_without_dimensions_reads_only_the_metric_published_without_any() -> TestResult {
    let aws = LocalAws::start().await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    let start = minute_start(5)?;
    let across_all = MetricDatum::builder()
        .metric_name("Invocations")
        .timestamp(DateTime::from_secs(start + 5))
        .value(3.0)
        .build();
    cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("checkout", start + 5, 1.0))
        .metric_data(datum("search", start + 5, 2.0))
        .metric_data(across_all)
        .send()
        .await?;
    // The same name and dimension in another namespace is another metric.
    cloudwatch
        .put_metric_data()
        .namespace("Other/Service")
        .metric_data(datum("checkout", start + 5, 100.0))
        .send()
        .await?;
    let all = MetricDataQuery::builder()
        .id("all")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/Lambda")
                        .metric_name("Invocations")
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build();
    let page = cloudwatch
        .get_metric_data()
        .metric_data_queries(all)
        .metric_data_queries(sum_per_minute("checkout", "checkout"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start + 300))
        .send()
        .await?;
    let values = |id: &str| {
        page.metric_data_results()
            .iter()
            .find(|r| r.id() == Some(id))
            .map(|r| r.values().to_vec())
    };
    assert_eq!(
        values("all"),
        Some(vec![3.0]),
        "only the series without dimensions"
    );
    assert_eq!(
        values("checkout"),
        Some(vec![1.0]),
        "only AWS/Lambda's checkout series"
    );
    Ok(())
}

/// The SDK gzips a request body of 10,240 bytes or more for operations that accept
/// it ("Request compression", AWS SDKs and Tools Reference Guide): a
/// `PutMetricData` of a few hundred datapoints arrives with `Content-Encoding:
/// gzip`, and the bridge decompresses it before decoding the CBOR.
#[tokio::test]
async fn cloudwatch_accepts_a_gzip_compressed_put_metric_data() -> TestResult {
    let aws = LocalAws::start().await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    let start = minute_start(300)?;
    // 300 datapoints, one a minute: some 30 KB of CBOR, well over the threshold.
    let data: Vec<MetricDatum> = (0..300).map(|m| datum("bulk", start + m * 60, 2.0)).collect();
    cloudwatch
        .put_metric_data()
        .namespace("AWS/Lambda")
        .set_metric_data(Some(data))
        .send()
        .await?;
    let page = cloudwatch
        .get_metric_data()
        .metric_data_queries(sum_per_minute("bulk", "bulk"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start + 300 * 60))
        .send()
        .await?;
    let values: Vec<f64> = page
        .metric_data_results()
        .iter()
        .flat_map(|r| r.values().iter().copied())
        .collect();
    assert_eq!(values.len(), 300, "every datapoint arrived");
    assert!(
        values.iter().all(|v| (*v - 2.0).abs() < f64::EPSILON),
        "{values:?}"
    );
    Ok(())
}

#[tokio::test]
async fn cloudwatch_alarm_is_created_described_and_deleted_through_the_cbor_bridge() -> TestResult {
    let aws = LocalAws::start().await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    cloudwatch
        .put_metric_alarm()
        .alarm_name("checkout-invocations-high")
        .namespace("AWS/Lambda")
        .metric_name("Invocations")
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value("checkout")
                .build(),
        )
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1500.5)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await?;

    let described = cloudwatch
        .describe_alarms()
        .alarm_names("checkout-invocations-high")
        .send()
        .await?;
    let [alarm] = described.metric_alarms() else {
        panic!("expected one alarm, got {:?}", described.metric_alarms());
    };
    assert_eq!(alarm.threshold(), Some(1500.5));
    assert_eq!(alarm.evaluation_periods(), Some(3));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(alarm.statistic(), Some(&Statistic::Sum));
    assert_eq!(alarm.state_value(), Some(&StateValue::Ok));
    assert!(
        alarm.alarm_configuration_updated_timestamp().is_some(),
        "timestamp lost in the bridge"
    );

    cloudwatch
        .delete_alarms()
        .alarm_names("checkout-invocations-high")
        .send()
        .await?;
    let after = cloudwatch
        .describe_alarms()
        .alarm_names("checkout-invocations-high")
        .send()
        .await?;
    assert!(after.metric_alarms().is_empty());
    Ok(())
}

#[tokio::test]
async fn cloudwatch_errors_come_back_as_typed_sdk_errors() -> TestResult {
    let aws = LocalAws::start().await?;
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    let start = minute_start(5)?;

    let inverted_window = cloudwatch
        .get_metric_data()
        .metric_data_queries(sum_per_minute("checkout", "checkout"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start - 60))
        .send()
        .await;
    let error = inverted_window
        .err()
        .ok_or("an end before the start was accepted")?
        .into_service_error();
    assert_eq!(
        aws_sdk_cloudwatch::error::ProvideErrorMetadata::code(&error),
        Some("ValidationError")
    );
    let message = aws_sdk_cloudwatch::error::ProvideErrorMetadata::message(&error).unwrap_or_default();
    assert!(message.contains("EndTime"), "unexpected message {message:?}");

    let missing_alarm = cloudwatch
        .set_alarm_state()
        .alarm_name("no-such-alarm")
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await;
    let error = missing_alarm
        .err()
        .ok_or("a missing alarm was found")?
        .into_service_error();
    assert!(
        error.is_resource_not_found(),
        "expected ResourceNotFound, got {error:?}"
    );
    Ok(())
}

async fn usage_plan_with_quota(apigateway: &aws_sdk_apigateway::Client) -> Result<String, Box<dyn Error>> {
    let plan = apigateway
        .create_usage_plan()
        .name("partners")
        .throttle(
            ThrottleSettings::builder()
                .rate_limit(10.0)
                .burst_limit(20)
                .build(),
        )
        .quota(
            QuotaSettings::builder()
                .limit(1000)
                .period(QuotaPeriodType::Day)
                .build(),
        )
        .send()
        .await?;
    Ok(plan.id().ok_or("usage plan without id")?.to_owned())
}

fn replace(path: &str, value: &str) -> PatchOperation {
    PatchOperation::builder()
        .op(Op::Replace)
        .path(path)
        .value(value)
        .build()
}

#[tokio::test]
async fn usage_plans_still_parse_after_a_quota_limit_update() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigateway = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let plan_id = usage_plan_with_quota(&apigateway).await?;

    apigateway
        .update_usage_plan()
        .usage_plan_id(&plan_id)
        .patch_operations(replace("/quota/limit", "250"))
        .send()
        .await?;

    let plans = apigateway.get_usage_plans().send().await?;
    let [plan] = plans.items() else {
        panic!("expected one usage plan, got {:?}", plans.items());
    };
    let quota = plan.quota().ok_or("quota lost")?;
    assert_eq!(quota.limit(), 250);
    assert_eq!(quota.period(), Some(&QuotaPeriodType::Day));
    let single = apigateway.get_usage_plan().usage_plan_id(&plan_id).send().await?;
    assert_eq!(single.quota().map(QuotaSettings::limit), Some(250));
    Ok(())
}

#[tokio::test]
async fn usage_plan_accepts_a_fractional_rate_limit() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigateway = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let plan_id = usage_plan_with_quota(&apigateway).await?;

    apigateway
        .update_usage_plan()
        .usage_plan_id(&plan_id)
        .patch_operations(replace("/throttle/rateLimit", "2.5"))
        .patch_operations(replace("/throttle/burstLimit", "5"))
        .send()
        .await?;

    let plan = apigateway.get_usage_plan().usage_plan_id(&plan_id).send().await?;
    let throttle = plan.throttle().ok_or("throttle lost")?;
    assert_eq!(throttle.rate_limit(), 2.5);
    assert_eq!(throttle.burst_limit(), 5);
    Ok(())
}

#[tokio::test]
async fn deleting_a_key_a_usage_plan_does_not_hold_is_not_found() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigateway = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let plan_id = usage_plan_with_quota(&apigateway).await?;
    let key = apigateway
        .create_api_key()
        .name("stolen")
        .enabled(true)
        .send()
        .await?;
    let key_id = key.id().ok_or("key without id")?;
    for _ in 0..2 {
        // Not in the plan: never added, or already removed by an earlier call.
        let err = apigateway
            .delete_usage_plan_key()
            .usage_plan_id(&plan_id)
            .key_id(key_id)
            .send()
            .await
            .expect_err("the plan does not hold the key");
        let service = err.as_service_error().ok_or("not a service error")?;
        assert!(service.is_not_found_exception(), "{service:?}");
        apigateway
            .create_usage_plan_key()
            .usage_plan_id(&plan_id)
            .key_id(key_id)
            .key_type("API_KEY")
            .send()
            .await?;
        apigateway
            .delete_usage_plan_key()
            .usage_plan_id(&plan_id)
            .key_id(key_id)
            .send()
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn usage_plan_throttle_and_quota_can_be_removed() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigateway = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let plan_id = usage_plan_with_quota(&apigateway).await?;

    apigateway
        .update_usage_plan()
        .usage_plan_id(&plan_id)
        .patch_operations(PatchOperation::builder().op(Op::Remove).path("/throttle").build())
        .patch_operations(PatchOperation::builder().op(Op::Remove).path("/quota").build())
        .send()
        .await?;

    let plan = apigateway.get_usage_plan().usage_plan_id(&plan_id).send().await?;
    assert!(
        plan.throttle().is_none(),
        "throttle still set: {:?}",
        plan.throttle()
    );
    assert!(plan.quota().is_none(), "quota still set: {:?}", plan.quota());
    assert_eq!(plan.name(), Some("partners"));
    Ok(())
}

#[tokio::test]
async fn rest_api_stage_throttles_are_updated_and_read_back_as_method_settings() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigateway = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let api = apigateway.create_rest_api().name("shop").send().await?;
    let api_id = api.id().ok_or("rest api without id")?;
    let root = api.root_resource_id().ok_or("rest api without root resource")?;
    apigateway
        .put_method()
        .rest_api_id(api_id)
        .resource_id(root)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await?;
    apigateway
        .put_integration()
        .rest_api_id(api_id)
        .resource_id(root)
        .http_method("GET")
        .r#type(aws_sdk_apigateway::types::IntegrationType::Mock)
        .send()
        .await?;
    apigateway
        .create_deployment()
        .rest_api_id(api_id)
        .stage_name("prod")
        .send()
        .await?;

    apigateway
        .update_stage()
        .rest_api_id(api_id)
        .stage_name("prod")
        .patch_operations(replace("/*/*/throttling/rateLimit", "7.5"))
        .patch_operations(replace("/*/*/throttling/burstLimit", "15"))
        .send()
        .await?;

    let stage = apigateway
        .get_stage()
        .rest_api_id(api_id)
        .stage_name("prod")
        .send()
        .await?;
    let settings = stage
        .method_settings()
        .and_then(|settings| settings.get("*/*"))
        .ok_or("no */* method settings")?;
    assert_eq!(settings.throttling_rate_limit(), 7.5);
    assert_eq!(settings.throttling_burst_limit(), 15);
    Ok(())
}

fn route_throttle(rate: f64, burst: i32) -> RouteSettings {
    RouteSettings::builder()
        .throttling_rate_limit(rate)
        .throttling_burst_limit(burst)
        .build()
}

#[tokio::test]
async fn http_api_stage_update_changes_default_and_route_throttles() -> TestResult {
    let aws = LocalAws::start().await?;
    let apigatewayv2 = aws_sdk_apigatewayv2::Client::new(&aws.sdk_config());
    let api = apigatewayv2
        .create_api()
        .name("catalog")
        .protocol_type(ProtocolType::Http)
        .send()
        .await?;
    let api_id = api.api_id().ok_or("http api without id")?;
    apigatewayv2
        .create_stage()
        .api_id(api_id)
        .stage_name("live")
        .default_route_settings(route_throttle(100.0, 200))
        .send()
        .await?;

    let updated = apigatewayv2
        .update_stage()
        .api_id(api_id)
        .stage_name("live")
        .default_route_settings(route_throttle(0.5, 1))
        .route_settings("GET /items", route_throttle(2.0, 4))
        .description("throttled by the guard")
        .send()
        .await?;
    assert_eq!(updated.stage_name(), Some("live"));

    let stage = apigatewayv2
        .get_stage()
        .api_id(api_id)
        .stage_name("live")
        .send()
        .await?;
    let default = stage
        .default_route_settings()
        .ok_or("default route settings lost")?;
    assert_eq!(default.throttling_rate_limit(), Some(0.5));
    assert_eq!(default.throttling_burst_limit(), Some(1));
    let route = stage
        .route_settings()
        .and_then(|routes| routes.get("GET /items"))
        .ok_or("route settings lost")?;
    assert_eq!(route.throttling_rate_limit(), Some(2.0));
    assert_eq!(route.throttling_burst_limit(), Some(4));
    assert_eq!(stage.description(), Some("throttled by the guard"));
    Ok(())
}

/// The smallest valid zip archive: an empty one (just the end-of-central-directory
/// record). moto stores the code without running it.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// Creates an IAM role and a function using it; returns the function name.
async fn create_function(aws: &LocalAws, name: &str) -> Result<String, Box<dyn Error>> {
    let config = aws.sdk_config();
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("guarded-function")
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await?;
    let role_arn = role
        .role()
        .map(aws_sdk_iam::types::Role::arn)
        .ok_or("role without arn")?;
    assert!(role_arn.contains(ACCOUNT_ID));
    aws_sdk_lambda::Client::new(&config)
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role_arn)
        .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP)).build())
        .send()
        .await?;
    Ok(name.to_owned())
}

#[tokio::test]
async fn lambda_reserved_concurrency_is_set_to_zero_restored_and_removed() -> TestResult {
    let aws = LocalAws::start().await?;
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    let function = create_function(&aws, "checkout").await?;

    for reserved in [0, 25] {
        let put = lambda
            .put_function_concurrency()
            .function_name(&function)
            .reserved_concurrent_executions(reserved)
            .send()
            .await?;
        assert_eq!(put.reserved_concurrent_executions(), Some(reserved));
        let read = lambda
            .get_function_concurrency()
            .function_name(&function)
            .send()
            .await?;
        assert_eq!(read.reserved_concurrent_executions(), Some(reserved));
    }

    lambda
        .delete_function_concurrency()
        .function_name(&function)
        .send()
        .await?;
    let read = lambda
        .get_function_concurrency()
        .function_name(&function)
        .send()
        .await?;
    assert_eq!(read.reserved_concurrent_executions(), None);
    Ok(())
}

#[tokio::test]
async fn lambda_event_invoke_config_is_put_replaced_and_deleted() -> TestResult {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
    let aws = LocalAws::start().await?;
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    let function = create_function(&aws, "checkout").await?;
    let failed = "arn:aws:sqs:us-east-1:123456789012:failed";

    lambda
        .put_function_event_invoke_config()
        .function_name(&function)
        .maximum_event_age_in_seconds(3600)
        .maximum_retry_attempts(2)
        .destination_config(
            DestinationConfig::builder()
                .on_failure(OnFailure::builder().destination(failed).build())
                .build(),
        )
        .send()
        .await?;
    let read = lambda
        .get_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await?;
    assert_eq!(read.maximum_event_age_in_seconds(), Some(3600));
    assert_eq!(read.maximum_retry_attempts(), Some(2));
    assert_eq!(
        read.destination_config()
            .and_then(|d| d.on_failure())
            .and_then(|d| d.destination()),
        Some(failed)
    );

    lambda
        .put_function_event_invoke_config()
        .function_name(&function)
        .maximum_event_age_in_seconds(60)
        .send()
        .await?;
    let read = lambda
        .get_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await?;
    assert_eq!(read.maximum_event_age_in_seconds(), Some(60));
    assert_eq!(
        (read.maximum_retry_attempts(), read.destination_config()),
        (None, None),
        "put must replace the whole config"
    );

    lambda
        .delete_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await?;
    let gone = lambda
        .get_function_event_invoke_config()
        .function_name(&function)
        .send()
        .await;
    let error = gone
        .err()
        .ok_or("config still there after delete")?
        .into_service_error();
    assert!(
        error.is_resource_not_found_exception(),
        "expected ResourceNotFound, got {error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn sns_topic_is_created_and_accepts_a_message() -> TestResult {
    let aws = LocalAws::start().await?;
    let sns = aws_sdk_sns::Client::new(&aws.sdk_config());
    let topic = sns.create_topic().name("guard-alerts").send().await?;
    let topic_arn = topic.topic_arn().ok_or("topic without arn")?;

    let listed = sns.list_topics().send().await?;
    assert!(
        listed
            .topics()
            .iter()
            .any(|listed| listed.topic_arn() == Some(topic_arn))
    );
    let published = sns
        .publish()
        .topic_arn(topic_arn)
        .subject("checkout throttled")
        .message(r#"{"target":"checkout","action":"throttle"}"#)
        .send()
        .await?;
    assert!(published.message_id().is_some_and(|id| !id.is_empty()));

    let missing = sns
        .publish()
        .topic_arn(format!("arn:aws:sns:us-east-1:{ACCOUNT_ID}:no-such-topic"))
        .message("lost")
        .send()
        .await;
    let error = missing
        .err()
        .ok_or("published to a missing topic")?
        .into_service_error();
    assert!(error.is_not_found_exception(), "expected NotFound, got {error:?}");
    Ok(())
}

/// Patch i: `AssumeRole` into a role that does not exist, or without the external
/// id its trust policy requires, is refused with `AccessDenied`, as AWS does
/// ("AssumeRole", AWS STS API Reference; "Access to AWS accounts owned by third
/// parties", IAM User Guide); moto 5.2.5 hands out credentials for both.
#[tokio::test]
async fn assume_role_needs_the_role_and_its_external_id() -> TestResult {
    let aws = LocalAws::start().await?;
    let config = aws.sdk_config();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}
        }]
    });
    aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name("reader")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await?;
    let sts = aws_sdk_sts::Client::new(&config);
    let assume = |arn: String, external: Option<&str>| {
        sts.assume_role()
            .role_arn(arn)
            .role_session_name("harness")
            .set_external_id(external.map(ToString::to_string))
            .send()
    };
    let reader = format!("arn:aws:iam::{ACCOUNT_ID}:role/reader");
    let ok = assume(reader.clone(), Some("ext-1")).await?;
    assert!(ok.credentials.is_some());
    for (arn, external) in [
        (reader.clone(), Some("guess")),
        (reader, None),
        ("arn:aws:iam::111122223333:role/reader".to_string(), Some("ext-1")),
    ] {
        let refused = assume(arn.clone(), external).await.err().ok_or("assumed")?;
        assert_eq!(
            aws_sdk_sts::error::ProvideErrorMetadata::code(&refused),
            Some("AccessDenied"),
            "{arn} {external:?}"
        );
    }
    Ok(())
}
