//! Ranking a stage's callers ([`CallerRanking::rank`]) at the SDK level with
//! `aws-smithy-mocks`, since the local AWS server serves no
//! `GetInsightRuleReport`: the levers are read (the keys of the stage's plans, the
//! web ACL), the rule of each caller kind a lever can hold is reported, and a
//! stage whose rule is not made yet is left out.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_apigateway::operation::get_usage_plan_keys::GetUsagePlanKeysOutput;
use aws_sdk_apigateway::types::UsagePlanKey;
use aws_sdk_cloudwatch::operation::get_insight_rule_report::{
    GetInsightRuleReportError, GetInsightRuleReportOutput,
};
use aws_sdk_cloudwatch::types::InsightRuleContributor;
use aws_sdk_cloudwatch::types::error::ResourceNotFoundException;
use aws_sdk_wafv2::operation::get_web_acl_for_resource::GetWebAclForResourceOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use chrono::{TimeZone, Utc};
use dowguard_adapters::account::AwsAccount;
use dowguard_adapters::apigateway::RestAdapter;
use dowguard_adapters::apigatewayv2::HttpAdapter;
use dowguard_adapters::cloudwatch::CloudWatchMetrics;
use dowguard_adapters::insights::InsightRules;
use dowguard_adapters::lambda::LambdaAdapter;
use dowguard_adapters::pace::Pacer;
use dowguard_adapters::ranking::Ranking;
use dowguard_adapters::tagging::TaggingAdapter;
use dowguard_adapters::trail::TrailAdapter;
use dowguard_adapters::waf::WafAdapter;
use dowguard_domain::source::{Levers, Source};
use dowguard_domain::{Limits, MetricsPlan, Target, TargetId, TargetSpec, UsagePlanId};
use dowguard_guard::ports::CallerRanking;

const KEYS_RULE: &str = "dowguard-callers-a1b2c3d4e5-prod-api-keys";

fn plan(id: &str) -> UsagePlanId {
    UsagePlanId::parse(id).unwrap()
}

/// `rest-stage:a1b2c3d4e5/prod`, in usage plan `gold`.
fn stage() -> Target {
    let id = TargetId::parse("rest-stage:a1b2c3d4e5/prod").unwrap();
    let mut stage = Target::new(
        id.clone(),
        TargetSpec::RestStage,
        BTreeMap::new(),
        Limits::unset(id.kind()),
    );
    stage.usage_plans = BTreeSet::from([plan("gold")]);
    stage
}

fn region() -> aws_config::Region {
    aws_config::Region::new("us-east-1")
}

/// The account with mocked API Gateway, WAF and CloudWatch clients (the others are
/// never called), ranking with quarantine plan `quarantine`.
fn account(gateway: &[&Rule], waf: &[&Rule], cloudwatch: &[&Rule]) -> AwsAccount {
    let apigateway = mock_client!(aws_sdk_apigateway, RuleMode::MatchAny, gateway);
    let waf = mock_client!(aws_sdk_wafv2, RuleMode::MatchAny, waf);
    let cloudwatch = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cloudwatch);
    let unused: [&Rule; 0] = [];
    let lambda = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, &unused);
    let v2 = mock_client!(aws_sdk_apigatewayv2, RuleMode::MatchAny, &unused);
    let tagging = aws_sdk_resourcegroupstagging::Client::from_conf(
        aws_sdk_resourcegroupstagging::Config::builder()
            .behavior_version_latest()
            .region(region())
            .build(),
    );
    let trail = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::Config::builder()
            .behavior_version_latest()
            .region(region())
            .build(),
    );
    let pacer = Arc::new(Pacer::per_second(1_000));
    AwsAccount::new(
        LambdaAdapter::new(lambda, 1_000),
        RestAdapter::new(apigateway.clone(), pacer.clone(), Duration::ZERO),
        HttpAdapter::new(v2, apigateway, pacer),
        CloudWatchMetrics::new(cloudwatch.clone(), MetricsPlan::default()),
        (
            TaggingAdapter::new(tagging, 1_000),
            TrailAdapter::new(trail),
            WafAdapter::new(waf),
        ),
    )
    .with_ranking(Ranking {
        rules: InsightRules::new(cloudwatch),
        enabled: true,
        quarantine_plan: Some(plan("quarantine")),
        region: "us-east-1".into(),
    })
}

fn gold_keys() -> Rule {
    mock!(aws_sdk_apigateway::Client::get_usage_plan_keys)
        .match_requests(|input| input.usage_plan_id() == Some("gold"))
        .then_output(|| {
            GetUsagePlanKeysOutput::builder()
                .items(UsagePlanKey::builder().id("stolen").build())
                .items(UsagePlanKey::builder().id("customer").build())
                .build()
        })
}

/// The stage has no web ACL: WAF answers with none.
fn no_web_acl() -> Rule {
    mock!(aws_sdk_wafv2::Client::get_web_acl_for_resource)
        .match_requests(|input| {
            input.resource_arn() == Some("arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod")
        })
        .then_output(|| GetWebAclForResourceOutput::builder().build())
}

#[tokio::test]
async fn a_stage_with_a_quarantine_lever_is_ranked_by_api_key_with_each_keys_plan() {
    let keys = gold_keys();
    let acl = no_web_acl();
    let report = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report)
        .match_requests(|input| input.rule_name() == Some(KEYS_RULE))
        .then_output(|| {
            GetInsightRuleReportOutput::builder()
                .aggregate_value(100_000.0)
                .approximate_unique_count(2)
                .contributors(
                    InsightRuleContributor::builder()
                        .keys("stolen")
                        .approximate_aggregate_value(99_000.0)
                        .build(),
                )
                .contributors(
                    InsightRuleContributor::builder()
                        .keys("customer")
                        .approximate_aggregate_value(1_000.0)
                        .build(),
                )
                .build()
        });
    let account = account(&[&keys], &[&acl], &[&report]);
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 27).unwrap();
    let attribution = account.rank(&[stage()], now, 5).await.unwrap();
    assert_eq!((keys.num_calls(), acl.num_calls(), report.num_calls()), (1, 1, 1));
    let (sources, levers) = &attribution.stages[&stage().id];
    assert_eq!(
        sources.top,
        vec![
            (Source::ApiKey("stolen".into()), 99_000),
            (Source::ApiKey("customer".into()), 1_000)
        ]
    );
    assert_eq!(sources.window_minutes, 5);
    assert_eq!(
        levers,
        &Levers {
            quarantine_plan: Some(plan("quarantine")),
            key_plans: BTreeMap::from([
                ("customer".to_string(), plan("gold")),
                ("stolen".to_string(), plan("gold")),
            ]),
            ip_set: None,
        }
    );
}

#[tokio::test]
async fn a_stage_whose_rule_is_not_made_yet_is_left_out_and_the_pass_goes_on() {
    let keys = gold_keys();
    let acl = no_web_acl();
    let missing = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report).then_error(|| {
        GetInsightRuleReportError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .meta(ErrorMetadata::builder().code("ResourceNotFoundException").build())
                .build(),
        )
    });
    let account = account(&[&keys], &[&acl], &[&missing]);
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 27).unwrap();
    let attribution = account.rank(&[stage()], now, 5).await.unwrap();
    assert_eq!(missing.num_calls(), 1);
    assert!(attribution.stages.is_empty(), "{attribution:?}");
}

#[tokio::test]
async fn a_stage_without_any_lever_is_never_reported() {
    let acl = no_web_acl();
    let report = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report)
        .then_output(|| GetInsightRuleReportOutput::builder().build());
    let account = account(&[], &[&acl], &[&report]);
    let mut planless = stage();
    planless.usage_plans.clear();
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 27).unwrap();
    let attribution = account.rank(&[planless], now, 5).await.unwrap();
    assert_eq!(report.num_calls(), 0, "no rule is read where nothing could act");
    assert!(attribution.stages.is_empty());
}
