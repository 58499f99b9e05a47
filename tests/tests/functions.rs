//! The Lambda handlers, in process, against the example account in the local AWS
//! server: the same `handle` functions the binaries run, built from the same
//! configuration, over real HTTP. (The binaries themselves run under the Lambda
//! runtime emulator in `make demo`; here the handler is called directly so that each
//! test costs seconds, not a build.)

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_runtime::{App, Config};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, TABLE};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn config() -> Result<Config, Error> {
    let vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
        ("AWS_REGION", dowguard_tests::REGION),
        ("DOWGUARD_MODE", "enforce"),
        // The flood is written hours in the past, as in the demo.
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
    ]
    .into();
    Ok(Config::from_lookup(|name| {
        vars.get(name).map(|v| (*v).to_string())
    })?)
}

/// A fixture with its time set to `at`.
fn event(name: &str, at: DateTime<Utc>) -> Result<LambdaEvent<Value>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    Ok(LambdaEvent::new(payload, Context::default()))
}

struct World {
    aws: LocalAws,
    app: App,
    example: ExampleAccount,
    attack_end: DateTime<Utc>,
}

impl World {
    /// The example account, flooded for 10 minutes ending early in the day.
    async fn flooded() -> Result<Self, Error> {
        let aws = LocalAws::start().await?;
        let now = Utc::now().duration_trunc(Duration::minutes(1))?;
        let example = ExampleAccount::seed(&aws, now).await?;
        let attack_end = dowguard_tests::account::attack_end_before(now);
        example.flood(&aws, attack_end, 10).await?;
        let app = App::new(config()?, &aws.sdk_config())?;
        Ok(World {
            aws,
            app,
            example,
            attack_end,
        })
    }

    async fn limits(&self, id: &str) -> Result<Option<Limits>, Error> {
        let id = TargetId::parse(id)?;
        let targets = self.app.stack.account.discover().await?;
        Ok(targets.into_iter().find(|t| t.id == id).map(|t| t.limits))
    }

    async fn reserved(&self) -> Result<Option<u32>, Error> {
        match self.limits("function:checkout").await? {
            Some(Limits::Function {
                reserved_concurrency, ..
            }) => Ok(reserved_concurrency),
            other => Err(format!("checkout: {other:?}").into()),
        }
    }

    async fn stage_throttled(&self) -> Result<bool, Error> {
        let stage = format!("rest-stage:{}/prod", self.example.api);
        match self.limits(&stage).await? {
            Some(Limits::Stage { throttle, .. }) => Ok(throttle.is_some()),
            other => Err(format!("{stage}: {other:?}").into()),
        }
    }

    async fn alarm_names(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .app
            .alarms
            .list()
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect())
    }
}

/// Alarm events this deployment must refuse: another account, region or owner, a
/// wrong source, an injected name, an SNS topic of another account.
const FOREIGN: [&str; 6] = [
    "alarm-other-account.json",
    "alarm-other-region.json",
    "alarm-not-owned.json",
    "alarm-wrong-source.json",
    "alarm-injection-name.json",
    "sns-alarm-other-account-topic.json",
];

#[tokio::test]
async fn a_scheduled_evaluation_throttles_the_flood_and_syncs_one_alarm_per_target() -> Result<(), Error> {
    let w = World::flooded().await?;
    assert_eq!(w.reserved().await?, Some(50));
    let tick = event("scheduled-event.json", w.attack_end + Duration::minutes(1))?;
    let out = dowguard_evaluator::handle(&w.app, tick)
        .await
        .map_err(|d| d.error_message)?;
    assert!(out.get("rejected").is_none(), "{out}");
    assert!(w.reserved().await?.is_some_and(|r| r < 50), "{out}");
    assert!(w.stage_throttled().await?, "{out}");
    let mut alarms = w.alarm_names().await?;
    alarms.sort();
    assert_eq!(
        alarms,
        vec![
            "dowguard-function:checkout".to_string(),
            format!("dowguard-rest-stage:{}/prod", w.example.api)
        ]
    );
    assert_eq!(out["alarms"]["put"].as_array().map(Vec::len), Some(2), "{out}");
    drop(w.aws);
    Ok(())
}

#[tokio::test]
async fn an_alarm_event_throttles_its_target_before_the_next_schedule() -> Result<(), Error> {
    let w = World::flooded().await?;
    let alarm = event("alarm-state-change.json", w.attack_end + Duration::minutes(1))?;
    let out = dowguard_alarm_responder::handle(&w.app, alarm)
        .await
        .map_err(|d| d.error_message)?;
    assert_eq!(out["alarm"]["target"], "function:checkout", "{out}");
    assert!(w.reserved().await?.is_some_and(|r| r < 50), "{out}");
    assert!(
        !w.stage_throttled().await?,
        "the stage's budget is not the alarm's: left to the schedule"
    );
    // OK leaves recovery to the evaluator: nothing changes.
    let reserved = w.reserved().await?;
    let ok = event("alarm-state-change-ok.json", w.attack_end + Duration::minutes(2))?;
    let out = dowguard_alarm_responder::handle(&w.app, ok)
        .await
        .map_err(|d| d.error_message)?;
    assert_eq!(out["left_to"], "evaluator", "{out}");
    assert_eq!(w.reserved().await?, reserved);
    Ok(())
}

#[tokio::test]
async fn a_foreign_or_malformed_event_changes_nothing() -> Result<(), Error> {
    let w = World::flooded().await?;
    let at = w.attack_end + Duration::minutes(1);
    for name in FOREIGN {
        let out = dowguard_alarm_responder::handle(&w.app, event(name, at)?)
            .await
            .map_err(|d| d.error_message)?;
        assert!(out["rejected"].is_string(), "{name}: {out}");
    }
    for name in ["alarm-state-change.json", "scheduled-event-other-account.json"] {
        let out = dowguard_evaluator::handle(&w.app, event(name, at)?)
            .await
            .map_err(|d| d.error_message)?;
        assert!(out["rejected"].is_string(), "{name}: {out}");
    }
    // A scheduled event from last week is a replay: refused.
    let stale = event("scheduled-event.json", at - Duration::days(7))?;
    let out = dowguard_evaluator::handle(&w.app, stale)
        .await
        .map_err(|d| d.error_message)?;
    assert!(
        out["rejected"].as_str().is_some_and(|r| r.contains("too old")),
        "{out}"
    );

    assert_eq!(w.reserved().await?, Some(50));
    assert!(!w.stage_throttled().await?);
    assert!(
        w.app.stack.store.load_states().await?.is_empty(),
        "no state written"
    );
    assert!(w.alarm_names().await?.is_empty(), "no alarm synced");
    Ok(())
}

#[tokio::test]
async fn recovery_restores_the_original_limits_exactly() -> Result<(), Error> {
    let w = World::flooded().await?;
    let mut at = w.attack_end + Duration::minutes(1);
    dowguard_evaluator::handle(&w.app, event("scheduled-event.json", at)?)
        .await
        .map_err(|d| d.error_message)?;
    assert!(w.reserved().await?.is_some_and(|r| r < 50));
    for _ in 0..24 {
        at += Duration::minutes(5);
        dowguard_evaluator::handle(&w.app, event("scheduled-event.json", at)?)
            .await
            .map_err(|d| d.error_message)?;
    }
    assert_eq!(
        w.limits("function:checkout").await?,
        Some(Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None
        })
    );
    assert!(!w.stage_throttled().await?);
    Ok(())
}

/// A burst of alarm events (a flapping alarm, EventBridge retries, a flood) cannot
/// multiply the responder's passes: one pass per target a minute, the rest skipped
/// before any AWS call, and the target's limit changed once.
#[tokio::test]
async fn a_burst_of_alarm_events_runs_one_pass_per_target_a_minute() -> Result<(), Error> {
    let w = World::flooded().await?;
    let (mut passes, mut skipped) = (0, 0);
    for _ in 0..BURST {
        let alarm = event("alarm-state-change.json", w.attack_end)?;
        let out = dowguard_alarm_responder::handle(&w.app, alarm)
            .await
            .map_err(|d| d.error_message)?;
        assert!(out.get("rejected").is_none(), "{out}");
        if out.get("skipped").is_some() {
            skipped += 1;
        } else {
            passes += 1;
        }
    }
    // The burst takes well under a minute; crossing one minute boundary allows two.
    assert!((1..=2).contains(&passes), "{passes} passes for {BURST} events");
    assert_eq!(passes + skipped, BURST);
    assert!(
        w.reserved().await?.is_some_and(|r| r < 50),
        "the first pass acted"
    );
    let audit = w.app.stack.store.audit_of_day(w.attack_end.date_naive()).await?;
    let changes = audit
        .iter()
        .filter(|r| {
            r.outcome == dowguard_guard::Outcome::Applied
                && r.action.change.permission() == "lambda:PutFunctionConcurrency"
        })
        .count();
    assert_eq!(changes, 1, "one change to checkout's concurrency: {audit:#?}");
    println!("alarm responder: {BURST} alarm events, {passes} pass(es), {skipped} skipped, {changes} change");
    Ok(())
}

const BURST: usize = 200;

/// A flood of forged or foreign events is refused before anything is called: the
/// responder here talks to an endpoint where nothing listens, so a single AWS call
/// would fail the handler.
#[tokio::test]
async fn a_flood_of_foreign_events_is_refused_without_a_single_aws_call() -> Result<(), Error> {
    let app = App::new(config()?, &dowguard_tests::sdk_config_for("http://127.0.0.1:9"))?;
    let mut refused = 0;
    for round in 0..100 {
        for name in FOREIGN {
            let out = dowguard_alarm_responder::handle(&app, event(name, Utc::now())?)
                .await
                .map_err(|d| format!("round {round}, {name}: {}", d.error_message))?;
            assert!(out.get("rejected").is_some(), "{name}: {out}");
            refused += 1;
        }
    }
    println!("alarm responder: {refused} foreign events refused, 0 AWS calls");
    Ok(())
}
