//! The whole guard over real HTTP, without Lambda yet: functions, a REST API with a
//! stage and a usage plan, budgets and attack metrics in the local AWS server →
//! evaluate → throttles visible in the server → metrics back to normal → the
//! originals restored exactly.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use chrono::{DurationRound, Utc};
use dowguard_domain::{Intent, Limits, Phase, TargetId};
use dowguard_guard::Outcome;
use dowguard_guard::ports::StateStore;
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard};

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
    assert!(
        stage.method_settings().unwrap()["*/*"].throttling_rate_limit() < 0.0,
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
