//! The real Lambda binaries (the inventory function, the evaluator, the alarm
//! responder), once each, under the Lambda runtime emulator
//! (`cargo lambda watch`, from `.venv-sam`), invoked with the event fixtures
//! (`cargo lambda invoke`) against a flooded example account in the
//! local AWS server: the binaries read their configuration from the environment,
//! act, and answer; a foreign event is rejected. `make demo` tells the whole story
//! on the same path.

use chrono::{Duration, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::ports::Discovery;
use dowguard_tests::account::{ExampleAccount, LocalGuard, TABLE};
use dowguard_tests::emulator::{Emulator, fixture_at};
use dowguard_tests::{ACCOUNT_ID, LocalAws, REGION};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::test]
async fn the_binaries_throttle_a_flood_and_reject_a_foreign_event() -> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let example = ExampleAccount::seed(&aws, now).await?;
    let local = LocalGuard::new(&aws).await?;
    let attack_end = dowguard_tests::account::attack_end_before(now);
    example.flood(&aws, attack_end, 10).await?;
    let emulator = Emulator::start(
        &[
            ("DOWGUARD_TABLE", TABLE),
            ("DOWGUARD_ACCOUNT_ID", ACCOUNT_ID),
            ("DOWGUARD_MODE", "enforce"),
            ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
            ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL", aws.endpoint()),
            ("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST"),
            ("AWS_SECRET_ACCESS_KEY", "local-test-secret"),
            ("AWS_LAMBDA_LOG_LEVEL", "warn"),
        ],
        None,
    )
    .await?;

    let foreign = emulator
        .invoke(
            "dowguard-alarm-responder",
            &fixture_at("alarm-other-account.json", attack_end)?,
        )
        .await?;
    assert_eq!(
        foreign["rejected"], "event from account \"999999999999\", not this deployment's",
        "{foreign}"
    );

    // The inventory function reads the account into the table first.
    let inventory = emulator
        .invoke("dowguard-inventory", &fixture_at("scheduled-event.json", now)?)
        .await?;
    assert_eq!(inventory["trigger"], "reconcile", "{inventory}");
    assert!(
        inventory["written"]
            .as_array()
            .is_some_and(|w| w.iter().any(|t| t == "function:checkout")),
        "{inventory}"
    );

    let answer = emulator
        .invoke(
            "dowguard-evaluator",
            &fixture_at("scheduled-event.json", attack_end + Duration::minutes(1))?,
        )
        .await?;
    let tightened: Vec<&str> = answer["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["intent"] == "tighten" && a["outcome"]["outcome"] == "applied")
        .filter_map(|a| a["target"].as_str())
        .collect();
    assert!(tightened.contains(&"function:checkout"), "{answer}");

    let checkout = TargetId::parse("function:checkout")?;
    let limits = local
        .stack
        .account
        .discover()
        .await?
        .into_iter()
        .find(|t| t.id == checkout)
        .map(|t| t.limits);
    assert!(
        matches!(limits, Some(Limits::Function { reserved_concurrency: Some(n), .. }) if n < 50),
        "{limits:?}"
    );
    drop(emulator);
    Ok(())
}
