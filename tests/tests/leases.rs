//! The guard's coordination items in its table (`shared/adapters/src/lease.rs`)
//! over the local AWS server: the pass counter's cap, and the account-wide
//! `UpdateUsagePlan` slot shared by every process built from the stack, measured
//! at the wire between the SDK clients and the server (`dowguard_tests::proxy`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::time::{Duration, Instant};

use chrono::Utc;
use dowguard_adapters::apigateway::throttle_of;
use dowguard_adapters::dynamodb::create_table;
use dowguard_adapters::lease::TableLeases;
use dowguard_adapters::stack::{AwsStack, StackConfig};
use dowguard_domain::{Quota, QuotaPeriod, UsagePlanId};
use dowguard_guard::ports::UsagePlanControl;
use dowguard_tests::LocalAws;
use dowguard_tests::account::TABLE;
use dowguard_tests::fixtures::{create_rest_api, create_usage_plan};
use dowguard_tests::proxy::Proxy;

/// Sets the plan's throttle to each of `rates` in turn.
async fn changes(stack: &AwsStack, plan: &UsagePlanId, quota: Option<Quota>, rates: [f64; 2]) {
    for rate in rates {
        stack
            .account
            .set_plan_limits(plan, throttle_of(rate, 10), quota)
            .await
            .unwrap();
    }
}

/// Two processes (two stacks, each with its own clients and its own in-process
/// pacer) change usage plans at the same moment: through the slot in the table,
/// no two `UpdateUsagePlan` requests reach AWS closer than the interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_never_call_update_usage_plan_closer_than_the_interval() {
    let aws = LocalAws::start().await.unwrap();
    let api = create_rest_api(&aws, "shop", "prod").await.unwrap();
    let plan = UsagePlanId::parse(&create_usage_plan(&aws, &api, "prod").await.unwrap()).unwrap();
    create_table(&aws_sdk_dynamodb::Client::new(&aws.sdk_config()), TABLE)
        .await
        .unwrap();
    let proxy = Proxy::start(aws.endpoint()).await.unwrap();
    let sdk = dowguard_tests::sdk_config_for(proxy.endpoint());
    let interval = Duration::from_millis(500);
    let mut config = StackConfig::new(TABLE);
    config.pacing.usage_plan_interval = interval;
    let (a, b) = (AwsStack::new(&sdk, &config), AwsStack::new(&sdk, &config));
    let quota = Some(Quota {
        limit: 10_000,
        period: QuotaPeriod::Day,
        offset: 0,
    });
    tokio::join!(
        changes(&a, &plan, quota, [10.0, 11.0]),
        changes(&b, &plan, quota, [20.0, 21.0])
    );

    let mut updates: Vec<Instant> = proxy
        .requests()
        .iter()
        .filter(|r| r.line().starts_with("PATCH /usageplans/"))
        .map(|r| r.at)
        .collect();
    updates.sort();
    assert_eq!(updates.len(), 4, "every change was made");
    let gaps: Vec<Duration> = updates.windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        assert!(
            *gap >= interval,
            "two UpdateUsagePlan requests {gap:?} apart, less than {interval:?}: {gaps:?}"
        );
    }
    println!("usage-plan slot: 4 updates from 2 processes, gaps {gaps:?} (interval {interval:?})");
}

/// The slot answers how long until it frees, and frees after the interval.
#[tokio::test]
async fn a_taken_slot_says_how_long_until_it_frees() {
    let aws = LocalAws::start().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    create_table(&dynamo, TABLE).await.unwrap();
    let leases = TableLeases::new(dynamo, TABLE);
    let now = Utc::now();
    let interval = Duration::from_secs(20);
    assert_eq!(
        leases.take_slot("UpdateUsagePlan", interval, now).await.unwrap(),
        Ok(())
    );
    let later = now + chrono::Duration::seconds(5);
    assert_eq!(
        leases
            .take_slot("UpdateUsagePlan", interval, later)
            .await
            .unwrap(),
        Err(Duration::from_secs(15))
    );
    let after = now + chrono::Duration::seconds(20);
    assert_eq!(
        leases
            .take_slot("UpdateUsagePlan", interval, after)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        leases.take_slot("another", interval, later).await.unwrap(),
        Ok(()),
        "slots are separate"
    );
}

/// The pass counter admits exactly the cap in a minute, numbers the passes, and
/// starts again the next minute.
#[tokio::test]
async fn the_pass_counter_admits_the_cap_and_starts_again_each_minute() {
    let aws = LocalAws::start().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    create_table(&dynamo, TABLE).await.unwrap();
    let leases = TableLeases::new(dynamo, TABLE);
    let minute = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut admitted = Vec::new();
    for second in 0..5 {
        admitted.push(
            leases
                .count_pass(minute + chrono::Duration::seconds(second), 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(admitted, vec![Some(1), Some(2), Some(3), None, None]);
    let next = minute + chrono::Duration::seconds(60);
    assert_eq!(leases.count_pass(next, 3).await.unwrap(), Some(1));
}

/// The notice counter admits the cap in an hour and starts again the next hour.
#[tokio::test]
async fn the_notice_counter_admits_the_cap_and_starts_again_each_hour() {
    let aws = LocalAws::start().await.unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    create_table(&dynamo, TABLE).await.unwrap();
    let leases = TableLeases::new(dynamo, TABLE);
    let hour = chrono::DateTime::from_timestamp(1_800_000_000 / 3_600 * 3_600, 0).unwrap();
    let mut admitted = Vec::new();
    for minute in [0, 10, 30, 59] {
        admitted.push(
            leases
                .count_notice(hour + chrono::Duration::minutes(minute), 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(admitted, vec![Some(1), Some(2), Some(3), None]);
    let next = hour + chrono::Duration::hours(1);
    assert_eq!(leases.count_notice(next, 3).await.unwrap(), Some(1));
}

/// A storm of notices: with a cap of 3 an hour, 6 notices make 3 publishes, the
/// last of which says the rest are held; the other 3 are only logged.
#[tokio::test]
async fn a_storm_of_notices_publishes_at_most_the_cap_an_hour() {
    use dowguard_adapters::sns::SnsNotifier;
    use dowguard_domain::notice::Publication;
    use dowguard_guard::ports::Notifier;

    // Not across an hour's end, where the count starts again.
    let into_hour = Utc::now().timestamp().rem_euclid(3_600);
    if into_hour > 3_590 {
        tokio::time::sleep(Duration::from_secs(11)).await;
    }
    let aws = LocalAws::start().await.unwrap();
    create_table(&aws_sdk_dynamodb::Client::new(&aws.sdk_config()), TABLE)
        .await
        .unwrap();
    let proxy = Proxy::start(aws.endpoint()).await.unwrap();
    let sdk = dowguard_tests::sdk_config_for(proxy.endpoint());
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns.create_topic().name("dowguard-alerts").send().await.unwrap();
    let arn = topic.topic_arn().unwrap().to_string();
    let leases = TableLeases::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let notifier = SnsNotifier::new(sns, Some(arn)).with_cap(leases, 3);
    for i in 0..6 {
        let notice = Publication::plain(
            &format!("dowguard: function:f{i} normal → throttled(1)"),
            "figures",
        );
        notifier.publish(None, &notice).await.unwrap();
    }
    let calls = proxy.calls();
    assert_eq!(calls.get("sns:Publish").copied(), Some(3), "{calls:?}");
    assert_eq!(calls.get("dynamodb:UpdateItem").copied(), Some(6), "{calls:?}");
}

/// A failure that every pass retries is told once: the second notice with the
/// same `once` key within the day is logged, not published.
#[tokio::test]
async fn a_notice_with_a_once_key_is_published_once() {
    use dowguard_adapters::sns::SnsNotifier;
    use dowguard_domain::notice::Publication;
    use dowguard_guard::ports::Notifier;

    let aws = LocalAws::start().await.unwrap();
    create_table(&aws_sdk_dynamodb::Client::new(&aws.sdk_config()), TABLE)
        .await
        .unwrap();
    let proxy = Proxy::start(aws.endpoint()).await.unwrap();
    let sdk = dowguard_tests::sdk_config_for(proxy.endpoint());
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns.create_topic().name("dowguard-alerts").send().await.unwrap();
    let arn = topic.topic_arn().unwrap().to_string();
    let leases = TableLeases::new(aws_sdk_dynamodb::Client::new(&sdk), TABLE);
    let notifier = SnsNotifier::new(sns, Some(arn)).with_cap(leases, 60);
    let mut failed = Publication::plain("dowguard: function:f change failed", "figures");
    failed.once = Some("failed/function:f/throttle-1".into());
    let mut other = failed.clone();
    other.once = Some("failed/function:g/throttle-1".into());
    for notice in [&failed, &failed, &other, &failed] {
        notifier.publish(None, notice).await.unwrap();
    }
    let calls = proxy.calls();
    assert_eq!(calls.get("sns:Publish").copied(), Some(2), "{calls:?}");
    assert_eq!(calls.get("dynamodb:PutItem").copied(), Some(4), "{calls:?}");
}
