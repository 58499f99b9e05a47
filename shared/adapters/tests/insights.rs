//! `GetInsightRuleReport`, which the local AWS server does not implement, tested at
//! the SDK level with `aws-smithy-mocks`: the request asks for the last complete
//! minutes ranked by `Sum`, and the report becomes the core's `StageSources`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use aws_sdk_cloudwatch::operation::get_insight_rule_report::GetInsightRuleReportOutput;
use aws_sdk_cloudwatch::types::{InsightRuleContributor, InsightRuleContributorDatapoint};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime as SmithyDateTime;
use chrono::{TimeZone, Utc};
use dowguard_adapters::insights::{CallerKind, InsightRules, MAX_CONTRIBUTORS, REPORT_PERIOD_SECONDS};
use dowguard_domain::source::{Source, StageSources};

const RULE: &str = "dowguard-callers-a1b2c3d4e5-prod-addresses";

fn contributor(key: &str, per_minute: &[f64]) -> InsightRuleContributor {
    let points = per_minute
        .iter()
        .enumerate()
        .map(|(i, n)| {
            InsightRuleContributorDatapoint::builder()
                .timestamp(SmithyDateTime::from_secs(1_796_000_000 + 60 * i as i64))
                .approximate_value(*n)
                .build()
        })
        .collect::<Vec<_>>();
    InsightRuleContributor::builder()
        .keys(key)
        .approximate_aggregate_value(per_minute.iter().sum())
        .set_datapoints(Some(points))
        .build()
}

/// 06:03:27 on 30 November 2026: the last complete minute ends at 06:03:00.
fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 27).unwrap()
}

#[tokio::test]
async fn a_report_asks_for_the_last_complete_minutes_and_ranks_the_addresses_by_requests() {
    let end = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 0).unwrap().timestamp();
    let rule = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report)
        .match_requests(move |input| {
            input.rule_name() == Some(RULE)
                && input.end_time() == Some(&SmithyDateTime::from_secs(end))
                && input.start_time() == Some(&SmithyDateTime::from_secs(end - 180))
                && input.period() == Some(REPORT_PERIOD_SECONDS)
                && input.max_contributor_count() == Some(MAX_CONTRIBUTORS)
                && input.order_by() == Some("Sum")
        })
        .then_output(|| {
            GetInsightRuleReportOutput::builder()
                .aggregation_statistic("Count")
                .aggregate_value(1_000_500.0)
                .approximate_unique_count(1_200)
                .contributors(contributor("203.0.113.9", &[1_000.0, 2_000.0]))
                .contributors(contributor("198.51.100.7", &[300_000.0, 300_000.0, 300_000.0]))
                .build()
        });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let sources = InsightRules::new(client)
        .report(RULE, CallerKind::Address, now(), 3)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1, "the request did not match the rule");
    assert_eq!(
        sources,
        StageSources {
            through_minute: end / 60,
            window_minutes: 3,
            total_requests: 1_000_500,
            distinct: 1_200,
            top: vec![
                (Source::Address("198.51.100.7".into()), 900_000),
                (Source::Address("203.0.113.9".into()), 3_000),
            ],
        }
    );
}

#[tokio::test]
async fn a_report_of_api_keys_names_the_key_ids_and_leaves_out_requests_without_a_key() {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report).then_output(|| {
        GetInsightRuleReportOutput::builder()
            .aggregate_value(98_100.0)
            .approximate_unique_count(41)
            .contributors(contributor("k7f3a9stolen", &[98_000.0]))
            .contributors(contributor("-", &[60.0]))
            .contributors(contributor("a1customer", &[40.0]))
            .build()
    });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let sources = InsightRules::new(client)
        .report(
            "dowguard-callers-a1b2c3d4e5-prod-api-keys",
            CallerKind::ApiKey,
            now(),
            1,
        )
        .await
        .unwrap();
    assert_eq!(
        sources.top,
        vec![
            (Source::ApiKey("k7f3a9stolen".into()), 98_000),
            (Source::ApiKey("a1customer".into()), 40),
        ]
    );
    assert_eq!((sources.total_requests, sources.distinct), (98_100, 41));
}

#[tokio::test]
async fn an_empty_report_is_a_stage_without_callers_in_the_window() {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report)
        .then_output(|| GetInsightRuleReportOutput::builder().build());
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let sources = InsightRules::new(client)
        .report(RULE, CallerKind::Address, now(), 2)
        .await
        .unwrap();
    let end = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 0).unwrap().timestamp();
    assert_eq!(
        sources,
        StageSources {
            through_minute: end / 60,
            window_minutes: 2,
            total_requests: 0,
            distinct: 0,
            top: Vec::new(),
        }
    );
}

#[tokio::test]
async fn a_report_without_an_aggregate_value_totals_its_datapoints_and_never_below_the_ranked() {
    use aws_sdk_cloudwatch::types::InsightRuleMetricDatapoint;
    let point = |secs: i64, sum: f64| {
        InsightRuleMetricDatapoint::builder()
            .timestamp(SmithyDateTime::from_secs(secs))
            .sum(sum)
            .build()
    };
    let rule = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report).then_output(move || {
        GetInsightRuleReportOutput::builder()
            .metric_datapoints(point(1_796_000_000, 500.0))
            .metric_datapoints(point(1_796_000_060, 700.0))
            .contributors(contributor("203.0.113.9", &[1_000.0, 600.0]))
            .build()
    });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let sources = InsightRules::new(client)
        .report(RULE, CallerKind::Address, now(), 2)
        .await
        .unwrap();
    // The datapoints say 1,200; the one ranked address alone sent 1,600.
    assert_eq!((sources.total_requests, sources.distinct), (1_600, 1));
}

#[tokio::test]
async fn a_failed_report_names_the_call_and_the_rule() {
    use aws_sdk_cloudwatch::operation::get_insight_rule_report::GetInsightRuleReportError;
    use aws_sdk_cloudwatch::types::error::ResourceNotFoundException;
    let rule = mock!(aws_sdk_cloudwatch::Client::get_insight_rule_report).then_error(|| {
        GetInsightRuleReportError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("no such rule")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
    let err = InsightRules::new(client)
        .report(RULE, CallerKind::Address, now(), 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("GetInsightRuleReport") && text.contains(RULE),
        "{text}"
    );
}
