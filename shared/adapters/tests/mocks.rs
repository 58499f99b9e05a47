//! What the local AWS server cannot produce, tested at the SDK level with
//! `aws-smithy-mocks`: GetAccountSettings, ListFunctions paging, throttling and
//! retries, server errors, timeouts, GetMetricData paging and partial data, the
//! HTTP API stage update that sends only what HTTP APIs accept, and the account's
//! own API Gateway limits written to lift a throttle, an IP set update that loses
//! WAF's optimistic lock, and an API key put back in its plan when it cannot join
//! another.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::operation::get_function_event_invoke_config::GetFunctionEventInvokeConfigError;
use aws_sdk_lambda::types::error::ResourceNotFoundException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use chrono::{TimeZone, Utc};
use dowguard_adapters::apigateway::{RestAdapter, RestCatalog};
use dowguard_adapters::apigatewayv2::HttpAdapter;
use dowguard_adapters::cloudwatch::CloudWatchMetrics;
use dowguard_adapters::lambda::LambdaAdapter;
use dowguard_adapters::pace::Pacer;
use dowguard_domain::MetricsPlan;
use dowguard_domain::{Arch, FunctionName, Limits, Target, TargetId, TargetSpec, Throttle};
use dowguard_guard::FailureKind;
use dowguard_guard::ports::{LambdaControl, MetricsRequest, StageControl};

fn function(name: &str) -> FunctionName {
    FunctionName::parse(name).unwrap()
}

#[tokio::test]
async fn account_concurrency_comes_from_get_account_settings() {
    use aws_sdk_lambda::operation::get_account_settings::GetAccountSettingsOutput;
    use aws_sdk_lambda::types::AccountLimit;
    let rule = mock!(aws_sdk_lambda::Client::get_account_settings).then_output(|| {
        GetAccountSettingsOutput::builder()
            .account_limit(
                AccountLimit::builder()
                    .concurrent_executions(1_000)
                    .unreserved_concurrent_executions(640)
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_lambda, [&rule]);
    let lambda = LambdaAdapter::new(client, 1_000);
    let figures = lambda.account_concurrency().await.unwrap();
    assert_eq!(
        (figures.limit, figures.unreserved_now, figures.unreserved_minimum),
        (1_000, 640, 100)
    );
}

#[tokio::test]
async fn a_small_account_must_keep_its_whole_limit_unreserved() {
    use aws_sdk_lambda::operation::get_account_settings::GetAccountSettingsOutput;
    use aws_sdk_lambda::types::AccountLimit;
    for (limit, minimum) in [(10, 10), (50, 50)] {
        let rule = mock!(aws_sdk_lambda::Client::get_account_settings).then_output(move || {
            GetAccountSettingsOutput::builder()
                .account_limit(
                    AccountLimit::builder()
                        .concurrent_executions(limit)
                        .unreserved_concurrent_executions(limit)
                        .build(),
                )
                .build()
        });
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        let figures = LambdaAdapter::new(client, 1_000)
            .account_concurrency()
            .await
            .unwrap();
        assert_eq!(
            (figures.limit, figures.unreserved_minimum),
            (u32::try_from(limit).unwrap(), minimum),
            "an account limited to {limit} cannot keep 100 unreserved"
        );
    }
}

#[tokio::test]
async fn function_discovery_follows_every_page() {
    use aws_sdk_lambda::operation::get_function_concurrency::GetFunctionConcurrencyOutput;
    use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
    use aws_sdk_lambda::operation::list_tags::ListTagsOutput;
    use aws_sdk_lambda::types::{Architecture, FunctionConfiguration};
    let config = |name: &str, arm: bool| {
        FunctionConfiguration::builder()
            .function_name(name)
            .function_arn(format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"))
            .memory_size(1_024)
            .architectures(if arm {
                Architecture::Arm64
            } else {
                Architecture::X8664
            })
            .build()
    };
    let first = mock!(aws_sdk_lambda::Client::list_functions)
        .match_requests(|r| r.marker().is_none())
        .then_output(move || {
            ListFunctionsOutput::builder()
                .functions(config("a", false))
                .functions(config("b", true))
                .next_marker("page-2")
                .build()
        });
    let second = mock!(aws_sdk_lambda::Client::list_functions)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(move || {
            ListFunctionsOutput::builder()
                .functions(config("c", false))
                .build()
        });
    let tags = mock!(aws_sdk_lambda::Client::list_tags).then_output(|| {
        ListTagsOutput::builder()
            .tags("dowguard:invocation", "async")
            .build()
    });
    let concurrency = mock!(aws_sdk_lambda::Client::get_function_concurrency).then_output(|| {
        GetFunctionConcurrencyOutput::builder()
            .reserved_concurrent_executions(0)
            .build()
    });
    let no_config = mock!(aws_sdk_lambda::Client::get_function_event_invoke_config).then_error(|| {
        GetFunctionEventInvokeConfigError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .meta(ErrorMetadata::builder().code("ResourceNotFoundException").build())
                .build(),
        )
    });
    let client = mock_client!(
        aws_sdk_lambda,
        RuleMode::MatchAny,
        [&first, &second, &tags, &concurrency, &no_config]
    );
    let targets = LambdaAdapter::new(client, 1_000)
        .discover_functions()
        .await
        .unwrap();
    let names: Vec<String> = targets.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(names, ["function:a", "function:b", "function:c"]);
    assert_eq!(second.num_calls(), 1, "the second page was read");
    assert!(matches!(
        targets[1].spec,
        TargetSpec::Function {
            arch: Arch::Arm64,
            memory_mb: 1_024,
            async_invoked: true
        }
    ));
    assert_eq!(
        targets[0].limits,
        Limits::Function {
            reserved_concurrency: Some(0),
            async_config: None
        },
        "a reservation of 0 is read, not lost"
    );
}

#[tokio::test]
async fn throttled_calls_are_retried_with_backoff_then_succeed() {
    use aws_sdk_lambda::operation::put_function_concurrency::PutFunctionConcurrencyOutput;
    let rule = mock!(aws_sdk_lambda::Client::put_function_concurrency)
        .sequence()
        .http_status(
            429,
            Some(r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.into()),
        )
        .times(2)
        .output(|| {
            PutFunctionConcurrencyOutput::builder()
                .reserved_concurrent_executions(5)
                .build()
        })
        .build();
    let client = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&rule], |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    ));
    let lambda = LambdaAdapter::new(client, 1_000);
    lambda
        .set_reserved_concurrency(&function("checkout"), Some(5))
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn persistent_throttling_is_reported_as_throttled_naming_the_call_and_function() {
    let rule = mock!(aws_sdk_lambda::Client::put_function_concurrency)
        .sequence()
        .http_status(
            429,
            Some(r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.into()),
        )
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&rule], |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(2)
            .with_initial_backoff(Duration::from_millis(1))
    ));
    let err = LambdaAdapter::new(client, 1_000)
        .set_reserved_concurrency(&function("checkout"), Some(5))
        .await
        .expect_err("throttled");
    assert_eq!(err.kind, FailureKind::Throttled);
    let text = err.to_string();
    assert!(
        text.contains("PutFunctionConcurrency") && text.contains("checkout"),
        "{text}"
    );
    assert!(
        !text.contains("SdkError") && !text.contains("HttpResponse"),
        "no debug dump: {text}"
    );
    assert!(std::error::Error::source(&err).is_some(), "the cause is kept");
}

#[tokio::test]
async fn server_errors_are_reported_as_unavailable() {
    let rule = mock!(aws_sdk_apigateway::Client::update_stage)
        .sequence()
        .http_status(503, None)
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_apigateway, RuleMode::Sequential, [&rule], |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(2)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    let rest = RestAdapter::new(
        client,
        Arc::new(Pacer::per_second(1_000)),
        Duration::from_millis(1),
    );
    let stage = TargetId::parse("rest-stage:a1b2c3d4e5/prod").unwrap();
    let err = rest
        .set_stage_throttle(
            &stage,
            Some(Throttle {
                rate_limit: 10.into(),
                burst_limit: 10,
            }),
            &BTreeMap::new(),
        )
        .await
        .expect_err("503");
    assert_eq!(err.kind, FailureKind::Unavailable);
    assert!(
        err.to_string()
            .contains("UpdateStage on rest-stage:a1b2c3d4e5/prod"),
        "{err}"
    );
    assert_eq!(rule.num_calls(), 2, "retried once");
}

#[tokio::test]
async fn a_call_that_never_answers_times_out_as_unavailable() {
    // A loopback listener that accepts and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .endpoint_url(format!("http://{address}"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            aws_smithy_types::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(300))
                .build(),
        )
        .build();
    let lambda = LambdaAdapter::new(aws_sdk_lambda::Client::from_conf(config), 1_000);
    let started = std::time::Instant::now();
    let err = lambda
        .set_reserved_concurrency(&function("checkout"), None)
        .await
        .expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind, FailureKind::Unavailable);
    assert!(
        err.to_string().contains("DeleteFunctionConcurrency on checkout"),
        "{err}"
    );
    silent.abort();
}

#[tokio::test]
async fn metric_pages_are_followed_and_partial_data_is_reported() {
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{MetricDataResult, StatusCode};
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).single().unwrap();
    let minute = move |m: i64| DateTime::from_secs(now.timestamp() - 60 * m);
    let page = move |token: Option<&str>, m: i64, status: StatusCode| {
        let result = |id: &str, value: f64| {
            MetricDataResult::builder()
                .id(id)
                .timestamps(minute(m))
                .values(value)
                .status_code(status.clone())
                .build()
        };
        let mut out = GetMetricDataOutput::builder()
            .metric_data_results(result("q0x0", 100.0))
            .metric_data_results(result("q0x1", 12_345.5));
        if let Some(t) = token {
            out = out.next_token(t);
        }
        out.build()
    };
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || page(Some("more"), 10, StatusCode::Complete));
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("more"))
        .then_output(move || page(None, 9, StatusCode::PartialData));
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]);
    let metrics = CloudWatchMetrics::new(client, MetricsPlan::default());
    let target = Target {
        id: TargetId::parse("function:checkout").unwrap(),
        spec: TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        tags: Default::default(),
        limits: Limits::unset(dowguard_domain::TargetKind::Function),
        guarded: true,
        usage_plans: Default::default(),
    };
    let targets = [target.clone()];
    let detailed: HashSet<TargetId> = [target.id.clone()].into();
    let fetched = metrics
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
            &RestCatalog::default(),
        )
        .await
        .unwrap();
    let minutes = &fetched.by_target[&target.id].minutes;
    assert_eq!(minutes.len(), 2, "both pages: {minutes:?}");
    assert_eq!(minutes[0].usage.requests, 100);
    assert_eq!(minutes[0].usage.duration_ms, 12_346, "durations round up");
    assert!(fetched.partial);
    // Measured in full: Invocations, Duration and Throttles by the minute; and
    // Invocations and Duration as hourly sums for the spend-to-date.
    assert_eq!(fetched.metrics_requested, 5);
}

/// An API Gateway (REST) client whose `GetAccount` answers with `rate` / `burst`,
/// the limits of an account in a Region with smaller quotas than the usual.
fn account_with_limits(rate: f64, burst: i32) -> (aws_smithy_mocks::Rule, aws_sdk_apigateway::Client) {
    use aws_sdk_apigateway::operation::get_account::GetAccountOutput;
    use aws_sdk_apigateway::types::ThrottleSettings;
    let rule = mock!(aws_sdk_apigateway::Client::get_account).then_output(move || {
        GetAccountOutput::builder()
            .throttle_settings(
                ThrottleSettings::builder()
                    .rate_limit(rate)
                    .burst_limit(burst)
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_apigateway, [&rule]);
    (rule, client)
}

#[tokio::test]
async fn an_http_stage_update_sends_only_what_http_apis_accept() {
    use aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput;
    use aws_sdk_apigatewayv2::operation::update_stage::UpdateStageOutput;
    use aws_sdk_apigatewayv2::types::{LoggingLevel, RouteSettings};
    // What a stage set up for WebSocket-style logging reads back as.
    let get = mock!(aws_sdk_apigatewayv2::Client::get_stage).then_output(|| {
        GetStageOutput::builder()
            .stage_name("$default")
            .default_route_settings(
                RouteSettings::builder()
                    .detailed_metrics_enabled(true)
                    .data_trace_enabled(true)
                    .logging_level(LoggingLevel::Info)
                    .throttling_rate_limit(500.0)
                    .throttling_burst_limit(1_000)
                    .build(),
            )
            .route_settings(
                "GET /orders",
                RouteSettings::builder()
                    .detailed_metrics_enabled(false)
                    .data_trace_enabled(true)
                    .logging_level(LoggingLevel::Error)
                    .throttling_rate_limit(900.0)
                    .throttling_burst_limit(900)
                    .build(),
            )
            .build()
    });
    let http_only = |s: &RouteSettings| s.data_trace_enabled().is_none() && s.logging_level().is_none();
    let update = mock!(aws_sdk_apigatewayv2::Client::update_stage)
        .match_requests(move |r| {
            let route = r.route_settings().and_then(|m| m.get("GET /orders"));
            r.default_route_settings().is_some_and(|s| {
                http_only(s)
                    && s.detailed_metrics_enabled() == Some(true)
                    && s.throttling_rate_limit() == Some(20.0)
                    && s.throttling_burst_limit() == Some(20)
            }) && route.is_some_and(|s| {
                http_only(s)
                    && s.detailed_metrics_enabled() == Some(false)
                    && s.throttling_rate_limit() == Some(20.0)
                    && s.throttling_burst_limit() == Some(20)
            }) && r.route_settings().is_some_and(|m| m.len() == 1)
        })
        .then_output(|| UpdateStageOutput::builder().build());
    let client = mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, [&get, &update]);
    let (account, account_client) = account_with_limits(10_000.0, 5_000);
    let http = HttpAdapter::new(client, account_client, Arc::new(Pacer::per_second(1_000)));
    let tight = Throttle {
        rate_limit: 20.into(),
        burst_limit: 20,
    };
    http.set_stage_throttle(
        &TargetId::parse("http-stage:a1b2c3d4e5/$default").unwrap(),
        Some(tight),
        &BTreeMap::from([("GET /orders".to_string(), Some(tight))]),
    )
    .await
    .unwrap();
    assert_eq!(
        update.num_calls(),
        1,
        "one update: the throttles set, detailed metrics kept, no WebSocket-only setting sent"
    );
    assert_eq!(
        account.num_calls(),
        0,
        "nothing written as unthrottled, so no GetAccount"
    );
}

#[tokio::test]
async fn lifting_an_http_stage_throttle_writes_the_accounts_own_limits() {
    use aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput;
    use aws_sdk_apigatewayv2::operation::update_stage::UpdateStageOutput;
    use aws_sdk_apigatewayv2::types::RouteSettings;
    let get = mock!(aws_sdk_apigatewayv2::Client::get_stage).then_output(|| {
        GetStageOutput::builder()
            .stage_name("prod")
            .default_route_settings(
                RouteSettings::builder()
                    .throttling_rate_limit(20.0)
                    .throttling_burst_limit(20)
                    .build(),
            )
            .build()
    });
    // Some Regions' accounts get 2,500 requests a second and a burst of 1,250.
    let update = mock!(aws_sdk_apigatewayv2::Client::update_stage)
        .match_requests(|r| {
            r.default_route_settings().is_some_and(|s| {
                s.throttling_rate_limit() == Some(2_500.0) && s.throttling_burst_limit() == Some(1_250)
            })
        })
        .then_output(|| UpdateStageOutput::builder().build());
    let client = mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, [&get, &update]);
    let (account, account_client) = account_with_limits(2_500.0, 1_250);
    let http = HttpAdapter::new(client, account_client, Arc::new(Pacer::per_second(1_000)));
    http.set_stage_throttle(
        &TargetId::parse("http-stage:a1b2c3d4e5/prod").unwrap(),
        None,
        &BTreeMap::new(),
    )
    .await
    .unwrap();
    assert_eq!(account.num_calls(), 1);
    assert_eq!(update.num_calls(), 1, "the account's own limits written");
}

#[tokio::test(start_paused = true)]
async fn audit_writes_back_off_between_attempts_and_never_after_the_last() {
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use dowguard_adapters::dynamodb::{AUDIT_ATTEMPTS, DynamoStore};
    use dowguard_guard::ports::AuditLog;
    // DynamoDB leaves every item unprocessed, every time.
    let rule = mock!(aws_sdk_dynamodb::Client::batch_write_item)
        .sequence()
        .output(|| {
            let item = PutRequest::builder()
                .item("pk", AttributeValue::S("AUDIT#x".into()))
                .build()
                .unwrap();
            BatchWriteItemOutput::builder()
                .unprocessed_items(
                    "dowguard",
                    vec![WriteRequest::builder().put_request(item).build()],
                )
                .build()
        })
        .repeatedly()
        .build();
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&rule]);
    let store = DynamoStore::new(client, "dowguard", chrono::Duration::days(1));
    let record = dowguard_guard::AuditRecord {
        at: Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap(),
        target: TargetId::parse("function:checkout").unwrap(),
        actor: "evaluator".into(),
        action: dowguard_domain::Action {
            target: TargetId::parse("function:checkout").unwrap(),
            change: dowguard_domain::Change::ReservedConcurrency {
                function: function("checkout"),
                from: None,
                to: Some(5),
            },
            intent: dowguard_domain::Intent::Tighten,
            mode: dowguard_domain::Mode::Enforce,
            apply: true,
            priority: dowguard_domain::Money::ZERO,
            reason: dowguard_domain::Reason {
                budget: None,
                rule: dowguard_domain::Rule::Calm,
                level: dowguard_domain::Level::Normal,
                spent: dowguard_domain::Money::ZERO,
                amount: dowguard_domain::Money::ZERO,
                projected: dowguard_domain::Money::ZERO,
                burn_short: dowguard_domain::BurnRate(0),
                burn_long: dowguard_domain::BurnRate(0),
            },
        },
        outcome: dowguard_guard::Outcome::Applied,
    };
    let start = tokio::time::Instant::now();
    let err = store.record(&[record]).await.expect_err("never processed");
    assert_eq!(err.kind, FailureKind::Throttled);
    assert_eq!(rule.num_calls(), AUDIT_ATTEMPTS as usize);
    // 100 + 200 + 400 + 800 ms between five attempts, nothing after the last.
    assert_eq!(start.elapsed(), Duration::from_millis(1_500));
}

/// The alarm CloudWatch is asked to keep is the one the simulator evaluates: the
/// domain's `ALARM_RULE` (period, one datapoint of one period, greater than the
/// threshold, missing data not breaching) at the threshold `desired_alarms`
/// computed. A change to the adapter's request without the rule, or the other way
/// round, fails here.
#[tokio::test]
async fn an_alarm_is_put_with_the_rule_and_threshold_the_simulator_evaluates() {
    use aws_sdk_cloudwatch::operation::put_metric_alarm::PutMetricAlarmOutput;
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    use dowguard_adapters::alarms::CloudWatchAlarms;
    use dowguard_adapters::cloudwatch::metrics_of;
    use dowguard_domain::{ALARM_RULE, BudgetId, DesiredAlarm};
    let requests_per_minute = 39_682;
    let rule = mock!(aws_sdk_cloudwatch::Client::put_metric_alarm)
        .match_requests(move |input| {
            let missing = if ALARM_RULE.missing_breaches {
                "breaching"
            } else {
                "notBreaching"
            };
            input.period() == Some(ALARM_RULE.period_seconds)
                && input.evaluation_periods() == Some(ALARM_RULE.evaluation_periods)
                && input.datapoints_to_alarm() == Some(ALARM_RULE.datapoints_to_alarm)
                && input.comparison_operator() == Some(&ComparisonOperator::GreaterThanThreshold)
                && input.treat_missing_data() == Some(missing)
                && input.statistic() == Some(&Statistic::Sum)
                && input.threshold() == Some(39_682.0)
                && input.metric_name() == Some("Invocations")
        })
        .then_output(|| PutMetricAlarmOutput::builder().build());
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let alarms = CloudWatchAlarms::new(client, "dowguard-", Default::default());
    let target = Target::new(
        TargetId::parse("function:checkout").unwrap(),
        TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        Default::default(),
        Limits::unset(dowguard_domain::TargetKind::Function),
    );
    let desired = DesiredAlarm {
        name: "dowguard-function:checkout".into(),
        target: target.id.clone(),
        requests_per_minute,
        budget: BudgetId::parse("checkout-daily").unwrap(),
    };
    let (metric, _) = metrics_of(&target, &RestCatalog::default(), false)
        .into_iter()
        .next()
        .unwrap();
    alarms.put_on(&desired, &metric).await.unwrap();
    assert_eq!(rule.num_calls(), 1, "the request did not match the rule");
    // The simulator's side of the same rule.
    assert!(ALARM_RULE.breaching(requests_per_minute, Some(requests_per_minute + 1)));
    assert!(!ALARM_RULE.breaching(requests_per_minute, Some(requests_per_minute)));
}

fn ip_set_read(addresses: &[&str], token: &str) -> aws_sdk_wafv2::operation::get_ip_set::GetIpSetOutput {
    use aws_sdk_wafv2::types::{IpAddressVersion, IpSet};
    aws_sdk_wafv2::operation::get_ip_set::GetIpSetOutput::builder()
        .ip_set(
            IpSet::builder()
                .name("dowguard-blocked")
                .id("set1")
                .arn("arn:aws:wafv2:us-east-1:123456789012:regional/ipset/dowguard-blocked/set1")
                .description("blocked by the on-call team and the guard")
                .ip_address_version(IpAddressVersion::Ipv4)
                .set_addresses(Some(addresses.iter().map(|a| (*a).to_string()).collect()))
                .build()
                .unwrap(),
        )
        .lock_token(token)
        .build()
}

#[tokio::test]
async fn an_ip_set_update_that_loses_the_lock_reads_again_and_keeps_the_other_writers_address() {
    use aws_sdk_wafv2::operation::update_ip_set::{UpdateIPSetError, UpdateIpSetOutput};
    use aws_sdk_wafv2::types::error::WafOptimisticLockException;
    use dowguard_adapters::waf::WafAdapter;
    use dowguard_domain::source::IpSetRef;

    // Someone else adds 192.0.2.0/24 between the guard's first read and its update.
    let reads = mock!(aws_sdk_wafv2::Client::get_ip_set)
        .sequence()
        .output(|| ip_set_read(&["198.51.100.1/32"], "t1"))
        .output(|| ip_set_read(&["198.51.100.1/32", "192.0.2.0/24"], "t2"))
        .build();
    let stale = mock!(aws_sdk_wafv2::Client::update_ip_set)
        .match_requests(|r| r.lock_token() == Some("t1"))
        .then_error(|| {
            UpdateIPSetError::WafOptimisticLockException(
                WafOptimisticLockException::builder()
                    .message("stale lock token")
                    .meta(
                        ErrorMetadata::builder()
                            .code("WAFOptimisticLockException")
                            .build(),
                    )
                    .build(),
            )
        });
    let fresh = mock!(aws_sdk_wafv2::Client::update_ip_set)
        .match_requests(|r| {
            r.lock_token() == Some("t2")
                && r.addresses() == ["198.51.100.1/32", "192.0.2.0/24", "203.0.113.7/32"]
                && r.description() == Some("blocked by the on-call team and the guard")
        })
        .then_output(|| UpdateIpSetOutput::builder().next_lock_token("t3").build());
    let client = mock_client!(aws_sdk_wafv2, RuleMode::MatchAny, [&reads, &stale, &fresh]);
    let waf = WafAdapter::with_interval(client, Duration::ZERO);
    let set = IpSetRef {
        name: "dowguard-blocked".into(),
        id: "set1".into(),
        scope: "REGIONAL".into(),
    };
    waf.update_ip_set(&set, &["203.0.113.7/32".to_string()], &[])
        .await
        .unwrap();
    assert_eq!(
        (reads.num_calls(), stale.num_calls(), fresh.num_calls()),
        (2, 1, 1),
        "read, lost the lock, read again, wrote the whole list once"
    );
}

#[tokio::test]
async fn an_ip_set_that_keeps_changing_is_reported_as_a_conflict_after_a_few_tries() {
    use aws_sdk_wafv2::operation::update_ip_set::UpdateIPSetError;
    use aws_sdk_wafv2::types::error::WafOptimisticLockException;
    use dowguard_adapters::waf::{LOCK_RETRIES, WafAdapter};
    use dowguard_domain::source::IpSetRef;

    let reads =
        mock!(aws_sdk_wafv2::Client::get_ip_set).then_output(|| ip_set_read(&["198.51.100.1/32"], "t1"));
    let stale = mock!(aws_sdk_wafv2::Client::update_ip_set).then_error(|| {
        UpdateIPSetError::WafOptimisticLockException(
            WafOptimisticLockException::builder()
                .message("stale lock token")
                .meta(
                    ErrorMetadata::builder()
                        .code("WAFOptimisticLockException")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_wafv2, RuleMode::MatchAny, [&reads, &stale]);
    let waf = WafAdapter::with_interval(client, Duration::ZERO);
    let set = IpSetRef {
        name: "dowguard-blocked".into(),
        id: "set1".into(),
        scope: "REGIONAL".into(),
    };
    let err = waf
        .update_ip_set(&set, &["203.0.113.7/32".to_string()], &[])
        .await
        .expect_err("the lock is lost every time");
    assert_eq!(err.kind, FailureKind::Conflict);
    assert_eq!(stale.num_calls(), LOCK_RETRIES as usize + 1);
}

#[tokio::test]
async fn a_key_that_cannot_join_its_new_plan_is_put_back_in_its_own() {
    use aws_sdk_apigateway::operation::create_usage_plan_key::{
        CreateUsagePlanKeyError, CreateUsagePlanKeyOutput,
    };
    use aws_sdk_apigateway::operation::delete_usage_plan_key::DeleteUsagePlanKeyOutput;
    use aws_sdk_apigateway::operation::get_usage_plan_key::GetUsagePlanKeyError;
    use aws_sdk_apigateway::types::error::{ConflictException, NotFoundException};
    use dowguard_domain::UsagePlanId;

    let not_there = mock!(aws_sdk_apigateway::Client::get_usage_plan_key)
        .match_requests(|r| r.usage_plan_id() == Some("quarantine"))
        .then_error(|| {
            GetUsagePlanKeyError::NotFoundException(
                NotFoundException::builder()
                    .message("Invalid Usage Plan Key")
                    .meta(ErrorMetadata::builder().code("NotFoundException").build())
                    .build(),
            )
        });
    let left = mock!(aws_sdk_apigateway::Client::delete_usage_plan_key)
        .match_requests(|r| r.usage_plan_id() == Some("gold") && r.key_id() == Some("stolen"))
        .then_output(|| DeleteUsagePlanKeyOutput::builder().build());
    let refused = mock!(aws_sdk_apigateway::Client::create_usage_plan_key)
        .match_requests(|r| r.usage_plan_id() == Some("quarantine"))
        .then_error(|| {
            CreateUsagePlanKeyError::ConflictException(
                ConflictException::builder()
                    .message("the key is already in a plan of this stage")
                    .meta(ErrorMetadata::builder().code("ConflictException").build())
                    .build(),
            )
        });
    let back = mock!(aws_sdk_apigateway::Client::create_usage_plan_key)
        .match_requests(|r| {
            r.usage_plan_id() == Some("gold")
                && r.key_id() == Some("stolen")
                && r.key_type() == Some("API_KEY")
        })
        .then_output(|| CreateUsagePlanKeyOutput::builder().id("stolen").build());
    let client = mock_client!(
        aws_sdk_apigateway,
        RuleMode::MatchAny,
        [&not_there, &left, &refused, &back]
    );
    let rest = RestAdapter::new(
        client,
        Arc::new(Pacer::per_second(1_000)),
        Duration::from_millis(1),
    );
    let err = rest
        .move_api_key(
            "stolen",
            &UsagePlanId::parse("gold").unwrap(),
            &UsagePlanId::parse("quarantine").unwrap(),
        )
        .await
        .expect_err("the create is refused");
    assert_eq!(err.kind, FailureKind::Conflict);
    assert_eq!(err.operation, "CreateUsagePlanKey");
    assert!(err.message.contains("put back in usage plan gold"), "{err}");
    assert_eq!(
        (left.num_calls(), refused.num_calls(), back.num_calls()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_key_already_in_its_new_plan_only_leaves_the_old_one() {
    use aws_sdk_apigateway::operation::create_usage_plan_key::CreateUsagePlanKeyOutput;
    use aws_sdk_apigateway::operation::delete_usage_plan_key::DeleteUsagePlanKeyError;
    use aws_sdk_apigateway::operation::get_usage_plan_key::GetUsagePlanKeyOutput;
    use aws_sdk_apigateway::types::error::NotFoundException;
    use dowguard_domain::UsagePlanId;

    let there = mock!(aws_sdk_apigateway::Client::get_usage_plan_key)
        .match_requests(|r| r.usage_plan_id() == Some("quarantine"))
        .then_output(|| {
            GetUsagePlanKeyOutput::builder()
                .id("stolen")
                .r#type("API_KEY")
                .build()
        });
    let gone = mock!(aws_sdk_apigateway::Client::delete_usage_plan_key).then_error(|| {
        DeleteUsagePlanKeyError::NotFoundException(
            NotFoundException::builder()
                .message("Invalid Usage Plan Key")
                .meta(ErrorMetadata::builder().code("NotFoundException").build())
                .build(),
        )
    });
    let create = mock!(aws_sdk_apigateway::Client::create_usage_plan_key)
        .then_output(|| CreateUsagePlanKeyOutput::builder().id("stolen").build());
    let client = mock_client!(aws_sdk_apigateway, RuleMode::MatchAny, [&there, &gone, &create]);
    let rest = RestAdapter::new(
        client,
        Arc::new(Pacer::per_second(1_000)),
        Duration::from_millis(1),
    );
    rest.move_api_key(
        "stolen",
        &UsagePlanId::parse("gold").unwrap(),
        &UsagePlanId::parse("quarantine").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!((gone.num_calls(), create.num_calls()), (1, 0));
}

/// A notice is published once with `MessageStructure=json` ("Publish", Amazon SNS
/// API Reference): a JSON object whose `default` (required) is the chat custom
/// notification and whose `email` is the plain text, with the ASCII subject.
#[tokio::test]
async fn a_notice_is_published_as_json_with_the_chat_notification_as_default_and_text_for_email() {
    use aws_sdk_sns::operation::publish::PublishOutput;
    use dowguard_adapters::sns::SnsNotifier;
    use dowguard_domain::notice::Notice;
    use dowguard_domain::{BurnRate, Change, Level, Mode, Money, Reason, Rule};
    use dowguard_guard::ports::Notifier;

    /// MessageStructure, Subject and Message of a publish request.
    type Seen = (Option<String>, Option<String>, String);
    let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    let rule = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |input| {
            record.lock().unwrap().push((
                input.message_structure().map(str::to_string),
                input.subject().map(str::to_string),
                input.message().unwrap_or_default().to_string(),
            ));
            true
        })
        .then_output(|| PublishOutput::builder().message_id("m-1").build());
    let client = mock_client!(aws_sdk_sns, [&rule]);
    let notifier = SnsNotifier::new(client, Some("arn:aws:sns:us-east-1:123456789012:dowguard".into()));
    let f = TargetId::parse("function:checkout").unwrap();
    let reason = Reason {
        budget: None,
        rule: Rule::FastLane,
        level: Level::Throttle(3),
        spent: Money::from_dollars(12),
        amount: Money::from_dollars(240),
        projected: Money::from_dollars(900),
        burn_short: BurnRate(40_000_000),
        burn_long: BurnRate(2_000_000),
    };
    let change = Change::ReservedConcurrency {
        function: function("checkout"),
        from: None,
        to: Some(5),
    };
    let notice = Notice::new(&f, "normal → throttled(3)", Mode::Enforce, &reason, vec![change]);
    notifier.publish(None, &notice.publication()).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let (structure, subject, message) = &seen[0];
    assert_eq!(structure.as_deref(), Some("json"));
    assert_eq!(
        subject.as_deref(),
        Some("dowguard: function:checkout normal -> throttled(3)")
    );
    let message: serde_json::Value = serde_json::from_str(message).unwrap();
    assert_eq!(message["email"].as_str(), Some(notice.text().as_str()));
    let chat: serde_json::Value = serde_json::from_str(message["default"].as_str().unwrap()).unwrap();
    assert_eq!(chat, serde_json::to_value(notice.chat()).unwrap());
    assert_eq!(chat["source"], "custom");
    assert!(
        chat["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("dowguard release function:checkout"),
        "{chat}"
    );
}
