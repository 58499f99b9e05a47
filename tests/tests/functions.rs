//! The Lambda handlers, in process, against the example account in the local AWS
//! server: the same `handle` functions the binaries run, built from the same
//! configuration, over real HTTP. (The binaries themselves run under the Lambda
//! runtime emulator in `make demo`; here the handler is called directly so that each
//! test costs seconds, not a build.)

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::inventory::Slices;
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, TABLE};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn config() -> Result<Config, Error> {
    // These tests run many passes a minute; the cap has its own test.
    config_with(&[("DOWGUARD_MAX_PASSES_PER_MINUTE", "1000")])
}

/// The deployment's configuration, with `extra` variables set or replaced.
fn config_with(extra: &[(&str, &str)]) -> Result<Config, Error> {
    let mut vars: HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
        ("AWS_REGION", dowguard_tests::REGION),
        ("DOWGUARD_MODE", "enforce"),
        // The flood is written hours in the past, as in the demo.
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
        // Every five minutes, so that the targets need alarms and the responder's
        // path has something to answer; the one-minute default has its own test.
        ("DOWGUARD_SCHEDULE_MINUTES", "5"),
        // The rule and the topic the fixtures come from.
        ("DOWGUARD_SCHEDULE_RULE_ARN", SCHEDULE_RULE),
        (
            "DOWGUARD_ALARM_TOPIC_ARNS",
            "arn:aws:sns:us-east-1:123456789012:dowguard-alarms",
        ),
    ]
    .into();
    vars.extend(extra.iter().copied());
    Ok(Config::from_lookup(|name| {
        vars.get(name).map(|v| (*v).to_string())
    })?)
}

/// The schedule rule of `scheduled-event.json`.
const SCHEDULE_RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/dowguard-evaluator-schedule";

/// A fixture with its time set to `at`.
fn event(name: &str, at: DateTime<Utc>) -> Result<LambdaEvent<Value>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    Ok(LambdaEvent::new(payload, Context::default()))
}

/// A fixture as Lambda hands it over: with a request id and a deadline
/// `timeout` from now, as the evaluator's 120 s timeout gives it.
fn invocation(
    name: &str,
    at: DateTime<Utc>,
    request_id: &str,
    timeout: Duration,
) -> Result<LambdaEvent<Value>, Error> {
    let mut e = event(name, at)?;
    e.context.request_id = request_id.to_string();
    e.context.deadline = u64::try_from((Utc::now() + timeout).timestamp_millis())?;
    Ok(e)
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
        let app = App::new(config()?, &aws.sdk_config(), Role::Evaluator)?;
        // The inventory function has read the account.
        app.guard("inventory")
            .keeper()
            .reconcile(Utc::now(), Slices::All)
            .await?;
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
            .stack
            .alarms
            .list()
            .await?
            .into_iter()
            .map(|a| a.name)
            .collect())
    }
}

/// Alarm events this deployment must refuse: another account, region or owner, a
/// wrong source, an injected name, an SNS topic of another account or one the
/// deployment does not list.
const FOREIGN: [&str; 7] = [
    "alarm-other-account.json",
    "alarm-other-region.json",
    "alarm-not-owned.json",
    "alarm-wrong-source.json",
    "alarm-injection-name.json",
    "sns-alarm-other-account-topic.json",
    "sns-alarm-unlisted-topic.json",
];

#[tokio::test]
async fn a_scheduled_evaluation_every_five_minutes_throttles_the_flood_and_alarms_each_target()
-> Result<(), Error> {
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

/// At the default one-minute schedule every pass sees every function, and no
/// target needs an alarm: the sync stays away from CloudWatch's alarms except once
/// an hour, when it deletes those a slower schedule left.
#[tokio::test]
async fn at_a_one_minute_schedule_the_alarms_a_slower_one_left_are_deleted_on_the_hour() -> Result<(), Error>
{
    let w = World::flooded().await?;
    let slow = event("scheduled-event.json", w.attack_end + Duration::minutes(1))?;
    dowguard_evaluator::handle(&w.app, slow)
        .await
        .map_err(|d| d.error_message)?;
    assert_eq!(w.alarm_names().await?.len(), 2);
    let every_minute = App::new(
        config_with(&[
            ("DOWGUARD_MAX_PASSES_PER_MINUTE", "1000"),
            ("DOWGUARD_SCHEDULE_MINUTES", "1"),
        ])?,
        &w.aws.sdk_config(),
        Role::Evaluator,
    )?;
    let next_hour = (w.attack_end + Duration::hours(1)).duration_trunc(Duration::hours(1))?;
    let off_the_hour = event("scheduled-event.json", next_hour - Duration::minutes(1))?;
    let out = dowguard_evaluator::handle(&every_minute, off_the_hour)
        .await
        .map_err(|d| d.error_message)?;
    assert!(
        out.get("rejected").is_none() && out.get("alarms").is_none(),
        "{out}"
    );
    assert_eq!(w.alarm_names().await?.len(), 2, "untouched off the hour");
    let on_the_hour = event("scheduled-event.json", next_hour)?;
    let out = dowguard_evaluator::handle(&every_minute, on_the_hour)
        .await
        .map_err(|d| d.error_message)?;
    assert_eq!(
        out["alarms"]["deleted"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );
    assert!(w.alarm_names().await?.is_empty());
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
    for name in [
        "alarm-state-change.json",
        "scheduled-event-other-account.json",
        "scheduled-event-other-rule.json",
    ] {
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
    let app = App::new(
        config()?,
        &dowguard_tests::sdk_config_for("http://127.0.0.1:9"),
        Role::Responder,
    )?;
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

/// The evaluator's single flight without reserved concurrency: two invocations at
/// once (two instances, as Lambda would run them) run one pass; the other skips,
/// saying until when the lease is held. Once the lease is given back, the next
/// invocation runs a pass.
#[tokio::test]
async fn two_evaluator_invocations_at_once_run_one_pass_and_the_other_skips() -> Result<(), Error> {
    let w = World::flooded().await?;
    let other = App::new(config()?, &w.aws.sdk_config(), Role::Evaluator)?;
    let at = w.attack_end + Duration::minutes(1);
    let timeout = Duration::seconds(120);
    let (a, b) = tokio::join!(
        dowguard_evaluator::handle(
            &w.app,
            invocation("scheduled-event.json", at, "request-a", timeout)?
        ),
        dowguard_evaluator::handle(
            &other,
            invocation("scheduled-event.json", at, "request-b", timeout)?
        ),
    );
    let outs = [a.map_err(|d| d.error_message)?, b.map_err(|d| d.error_message)?];
    let passes = outs.iter().filter(|o| o.get("pass_at").is_some()).count();
    let skips: Vec<&str> = outs.iter().filter_map(|o| o["skipped"].as_str()).collect();
    assert_eq!((passes, skips.len()), (1, 1), "{outs:?}");
    assert!(
        skips[0].starts_with("another evaluator pass holds the lease until 20"),
        "{}",
        skips[0]
    );
    assert!(w.reserved().await?.is_some_and(|r| r < 50), "the one pass acted");

    // The lease was given back: the next invocation runs a pass at once.
    let next = invocation(
        "scheduled-event.json",
        at + Duration::minutes(1),
        "request-c",
        timeout,
    )?;
    let out = dowguard_evaluator::handle(&other, next)
        .await
        .map_err(|d| d.error_message)?;
    assert!(out.get("pass_at").is_some(), "{out}");
    Ok(())
}

/// A holder that crashed (or timed out) never gives its lease back: it expires at
/// the holder's deadline, and the next evaluator takes it over. One still within its
/// deadline is respected, and cannot be given back by anyone else.
#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_live_one_is_respected() -> Result<(), Error> {
    let w = World::flooded().await?;
    let leases = &w.app.stack.leases;
    let now = Utc::now();
    let crashed = now - Duration::seconds(1);
    assert_eq!(
        leases
            .acquire("evaluator", "crashed", crashed, crashed - Duration::seconds(120))
            .await?,
        Ok(())
    );
    let at = w.attack_end + Duration::minutes(1);
    let out = dowguard_evaluator::handle(
        &w.app,
        invocation("scheduled-event.json", at, "after-crash", Duration::seconds(120))?,
    )
    .await
    .map_err(|d| d.error_message)?;
    assert!(out.get("pass_at").is_some(), "an expired lease blocks: {out}");

    let until = Utc::now() + Duration::seconds(90);
    assert_eq!(
        leases.acquire("evaluator", "live", until, Utc::now()).await?,
        Ok(())
    );
    let out = dowguard_evaluator::handle(
        &w.app,
        invocation("scheduled-event.json", at, "second", Duration::seconds(120))?,
    )
    .await
    .map_err(|d| d.error_message)?;
    let shown = until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        out["skipped"].as_str(),
        Some(format!("another evaluator pass holds the lease until {shown}").as_str()),
        "{out}"
    );
    assert!(
        !leases.release("evaluator", "someone-else").await?,
        "released by another"
    );
    assert!(leases.release("evaluator", "live").await?);
    Ok(())
}

/// Anyone allowed `lambda:InvokeFunction` can send valid events at will. A burst of
/// scheduled and alarm events across three instances of each function runs at most
/// the deployment's cap of passes in a minute (counted in the table); the rest are
/// refused with the reason, before any other call.
#[tokio::test]
async fn a_burst_across_evaluators_and_responders_runs_at_most_the_cap_of_passes_a_minute()
-> Result<(), Error> {
    const CAP: usize = 3;
    let w = World::flooded().await?;
    let cap = CAP.to_string();
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(App::new(
            config_with(&[("DOWGUARD_MAX_PASSES_PER_MINUTE", cap.as_str())])?,
            &w.aws.sdk_config(),
            Role::Evaluator,
        )?);
    }
    let at = w.attack_end + Duration::minutes(1);
    let first_minute = dowguard_domain::epoch_minute(Utc::now());
    let (mut passes, mut refused) = (0, 0);
    for round in 0..4 {
        for (i, app) in apps.iter().enumerate() {
            let tick = invocation(
                "scheduled-event.json",
                at,
                &format!("tick-{round}-{i}"),
                Duration::seconds(120),
            )?;
            let alarm = event("alarm-state-change.json", at)?;
            for out in [
                dowguard_evaluator::handle(app, tick).await,
                dowguard_alarm_responder::handle(app, alarm).await,
            ] {
                let out = out.map_err(|d| d.error_message)?;
                assert!(out.get("rejected").is_none(), "{out}");
                if out.get("pass_at").is_some() {
                    passes += 1;
                } else if let Some(why) = out["refused"].as_str() {
                    assert!(why.contains("DOWGUARD_MAX_PASSES_PER_MINUTE"), "{why}");
                    refused += 1;
                }
            }
        }
    }
    let last_minute = dowguard_domain::epoch_minute(Utc::now());
    let minutes = usize::try_from(last_minute - first_minute + 1)?;
    assert!(
        passes <= CAP * minutes,
        "{passes} passes in {minutes} minute(s) with a cap of {CAP} a minute"
    );
    assert!(refused > 0, "nothing was refused");
    // The table counted exactly the passes that ran, none above the cap.
    let dynamo = aws_sdk_dynamodb::Client::new(&w.aws.sdk_config());
    let mut counted = 0;
    for minute in first_minute..=last_minute {
        let item = dynamo
            .get_item()
            .table_name(TABLE)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("LEASE".into()))
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S(format!("PASSES#{minute}")),
            )
            .consistent_read(true)
            .send()
            .await?;
        let count: usize = item
            .item()
            .and_then(|i| i.get("count"))
            .and_then(|v| v.as_n().ok())
            .map_or(Ok(0), |n| n.parse())?;
        assert!(count <= CAP, "minute {minute}: {count} passes");
        counted += count;
    }
    assert_eq!(counted, passes, "the table counts every pass that ran");
    println!(
        "pass cap: 24 valid events on 3 instances each, {passes} passes, {refused} refused (cap {CAP} a minute)"
    );
    Ok(())
}
