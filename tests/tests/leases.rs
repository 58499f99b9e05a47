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
