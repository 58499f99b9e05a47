//! The Contributor Insights rule sync over real HTTP against the local AWS server:
//! rules are put, listed under dowguard's prefix, replaced when their body
//! changes, and deleted when no longer wanted, while a rule of someone else is
//! never touched. (`GetInsightRuleReport` is not served locally: it is tested at
//! the SDK level in `shared/adapters/tests/insights.rs`.)

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use dowguard_adapters::insights::{InsightRules, RULE_PREFIX, rankable, wanted_rules};
use dowguard_tests::LocalAws;
use dowguard_tests::fixtures::insight_rules;

const ARN: &str = "arn:aws:logs:us-east-1:123456789012:log-group:API-Gateway-Access-Logs_a1b2c3d4e5/prod";
const BOTH: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","key":"$context.identity.apiKeyId"}"#;

#[tokio::test]
async fn rule_sync_puts_the_wanted_rules_and_deletes_only_its_own_stale_ones() {
    let aws = LocalAws::start().await.unwrap();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    cloudwatch
        .put_insight_rule()
        .rule_name("team-errors")
        .rule_state("ENABLED")
        .rule_definition("{}")
        .send()
        .await
        .unwrap();
    let rules = InsightRules::new(cloudwatch.clone());

    // Two stages: both caller kinds on one, addresses only on the other.
    let prod = rankable(Some(ARN), Some(BOTH)).unwrap();
    let beta = rankable(Some(ARN), Some(r#"{"ip":"$context.identity.sourceIp"}"#)).unwrap();
    let mut wanted = wanted_rules("a1b2c3d4e5", "prod", &prod);
    wanted.extend(wanted_rules("a1b2c3d4e5", "beta", &beta));
    let first = rules.sync(&wanted).await.unwrap();
    assert_eq!(first.put.len(), 3);
    assert!(first.delete.is_empty());
    assert_eq!(
        insight_rules(&aws).await.unwrap(),
        vec![
            (
                "dowguard-callers-a1b2c3d4e5-beta-addresses".into(),
                "ENABLED".into()
            ),
            (
                "dowguard-callers-a1b2c3d4e5-prod-addresses".into(),
                "ENABLED".into()
            ),
            (
                "dowguard-callers-a1b2c3d4e5-prod-api-keys".into(),
                "ENABLED".into()
            ),
            ("team-errors".into(), "ENABLED".into()),
        ]
    );
    let listed = rules.list().await.unwrap();
    assert_eq!(listed.len(), 3, "the team's rule is not dowguard's");
    assert!(listed.iter().all(|r| r.name.starts_with(RULE_PREFIX)));

    // Nothing changed: nothing is written.
    let again = rules.sync(&wanted).await.unwrap();
    assert!(again.put.is_empty() && again.delete.is_empty(), "{again:?}");

    // The beta stage is gone: its rule is deleted, the team's rule stays.
    wanted.retain(|w| !w.name.contains("-beta-"));
    let after = rules.sync(&wanted).await.unwrap();
    assert_eq!(
        after.delete,
        vec!["dowguard-callers-a1b2c3d4e5-beta-addresses".to_string()]
    );
    assert_eq!(
        insight_rules(&aws)
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        vec![
            "dowguard-callers-a1b2c3d4e5-prod-addresses".to_string(),
            "dowguard-callers-a1b2c3d4e5-prod-api-keys".to_string(),
            "team-errors".to_string(),
        ]
    );

    // A name outside the prefix is refused before any call.
    let refused = rules.delete(&["team-errors".to_string()]).await.unwrap_err();
    assert!(refused.to_string().contains("team-errors"), "{refused}");
    assert_eq!(insight_rules(&aws).await.unwrap().len(), 3);
}
