//! Every event fixture under `tests/fixtures/events` through the validation the
//! functions run, with the exact outcome each must have.

use std::path::Path;

use chrono::{DateTime, Utc};
use dowguard_domain::TargetId;
use dowguard_guard::inventory::{ApiCall, Touched};
use dowguard_runtime::change::{Trigger, inventory_trigger};
use dowguard_runtime::event::{
    AlarmState, AlarmTrigger, Expected, Rejection, Via, alarm_trigger, parse_json, schedule_tick,
};

/// The deployment's schedule rule, as the template names it.
const RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/dowguard-evaluator-schedule";

/// The SNS topic the deployment takes alarm notifications from.
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:dowguard-alarms";

/// What this deployment expects, with `topics` listed and the schedule rule pinned.
fn expected(topics: &[String]) -> Expected<'_> {
    Expected {
        account: "123456789012",
        region: "us-east-1",
        alarm_prefix: "dowguard-",
        schedule_rule: Some(RULE),
        alarm_topics: topics,
    }
}

type Error = Box<dyn std::error::Error>;

fn load(name: &str) -> Result<Result<serde_json::Value, Rejection>, Error> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/events")
        .join(name);
    Ok(parse_json(&std::fs::read(&path)?))
}

fn time(text: &str) -> Result<DateTime<Utc>, Error> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

fn trigger(state: AlarmState, at: &str, via: Via) -> Result<AlarmTrigger, Error> {
    Ok(AlarmTrigger {
        alarm: "dowguard-function:checkout".into(),
        target: TargetId::parse("function:checkout")?,
        state,
        time: time(at)?,
        via,
    })
}

fn unexpected(field: &'static str, found: &str, wanted: &str) -> Rejection {
    Rejection::Unexpected {
        field,
        found: found.into(),
        wanted: wanted.into(),
    }
}

#[test]
fn alarm_fixtures_give_exactly_their_outcome() -> Result<(), Error> {
    let arn_wanted = "the ARN of the named alarm in this account and region";
    let cases: Vec<(&str, Result<AlarmTrigger, Rejection>)> = vec![
        (
            "alarm-state-change.json",
            Ok(trigger(
                AlarmState::Alarm,
                "2026-11-22T06:01:00Z",
                Via::EventBridge,
            )?),
        ),
        (
            "alarm-state-change-ok.json",
            Ok(trigger(AlarmState::Ok, "2026-11-22T06:01:00Z", Via::EventBridge)?),
        ),
        (
            "sns-alarm.json",
            Ok(trigger(AlarmState::Alarm, "2026-11-22T06:00:40.989Z", Via::Sns)?),
        ),
        (
            "sns-alarm-ok.json",
            Ok(trigger(AlarmState::Ok, "2026-11-22T06:00:40.989Z", Via::Sns)?),
        ),
        (
            "alarm-state-change-insufficient-data.json",
            Err(Rejection::IgnoredState {
                state: "INSUFFICIENT_DATA".into(),
            }),
        ),
        (
            "alarm-wrong-source.json",
            Err(unexpected("source", "aws.events", "\"aws.cloudwatch\"")),
        ),
        (
            "alarm-wrong-detail-type.json",
            Err(unexpected(
                "detail-type",
                "EC2 Instance State-change Notification",
                "\"CloudWatch Alarm State Change\"",
            )),
        ),
        (
            "alarm-other-account.json",
            Err(Rejection::ForeignAccount {
                found: "999999999999".into(),
            }),
        ),
        (
            "alarm-other-region.json",
            Err(Rejection::ForeignRegion {
                found: "eu-west-1".into(),
            }),
        ),
        (
            "alarm-arn-other-region.json",
            Err(Rejection::ForeignRegion {
                found: "eu-west-1".into(),
            }),
        ),
        (
            "alarm-not-owned.json",
            Err(Rejection::NotOwned {
                alarm: "ServerCpuTooHigh".into(),
            }),
        ),
        (
            "alarm-arn-mismatch.json",
            Err(unexpected(
                "resources[0]",
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:dowguard-functio…",
                arn_wanted,
            )),
        ),
        (
            "alarm-name-not-a-string.json",
            Err(Rejection::WrongType {
                field: "detail.alarmName",
                expected: "a string",
            }),
        ),
        (
            "alarm-state-not-an-object.json",
            Err(Rejection::WrongType {
                field: "detail.state",
                expected: "an object",
            }),
        ),
        (
            "alarm-missing-detail.json",
            Err(Rejection::Missing { field: "detail" }),
        ),
        (
            "alarm-injection-name.json",
            Err(Rejection::NotOwned {
                alarm: "dowguard-function:checkout\\\"; rm -rf / #\\n{\\\"forged\\\":true}".into(),
            }),
        ),
        (
            "sns-alarm-other-account-topic.json",
            Err(Rejection::ForeignAccount {
                found: "999999999999".into(),
            }),
        ),
        (
            "sns-alarm-other-account-message.json",
            Err(Rejection::ForeignAccount {
                found: "999999999999".into(),
            }),
        ),
        ("sns-alarm-message-not-json.json", Err(Rejection::NotJson)),
        (
            "sns-alarm-not-owned.json",
            Err(Rejection::NotOwned {
                alarm: "ServerCpuTooHigh".into(),
            }),
        ),
        (
            "sns-two-records.json",
            Err(unexpected("Records", "2 records", "exactly one record")),
        ),
        (
            "sns-wrong-event-source.json",
            Err(unexpected("Records[0].EventSource", "aws:sqs", "\"aws:sns\"")),
        ),
        (
            "sns-alarm-unlisted-topic.json",
            Err(Rejection::UnlistedTopic {
                topic: "arn:aws:sns:us-east-1:123456789012:other-team-alarms".into(),
            }),
        ),
        (
            "scheduled-event.json",
            Err(unexpected("source", "aws.events", "\"aws.cloudwatch\"")),
        ),
    ];
    let topics = [TOPIC.to_string()];
    for (name, want) in cases {
        let got = load(name)?.and_then(|event| alarm_trigger(&event, &expected(&topics)));
        assert_eq!(got, want, "{name}");
    }
    Ok(())
}

#[test]
fn sns_wrapped_alarms_are_refused_when_the_deployment_lists_no_topic() -> Result<(), Error> {
    for name in [
        "sns-alarm.json",
        "sns-alarm-ok.json",
        "sns-alarm-unlisted-topic.json",
    ] {
        let got = load(name)?.and_then(|event| alarm_trigger(&event, &expected(&[])));
        assert_eq!(got, Err(Rejection::SnsNotAccepted), "{name}");
        assert!(
            Rejection::SnsNotAccepted
                .to_string()
                .contains("DOWGUARD_ALARM_TOPIC_ARNS"),
            "the refusal names the variable"
        );
    }
    // The EventBridge path does not depend on the list.
    let got = load("alarm-state-change.json")?.and_then(|event| alarm_trigger(&event, &expected(&[])));
    assert!(got.is_ok(), "{got:?}");
    Ok(())
}

#[test]
fn schedule_fixtures_give_exactly_their_outcome() -> Result<(), Error> {
    let cases: Vec<(&str, Result<DateTime<Utc>, Rejection>)> = vec![
        ("scheduled-event.json", Ok(time("2026-11-22T06:01:00Z")?)),
        (
            "scheduled-event-wrong-source.json",
            Err(unexpected("source", "aws.ec2", "\"aws.events\"")),
        ),
        (
            "scheduled-event-other-account.json",
            Err(Rejection::ForeignAccount {
                found: "999999999999".into(),
            }),
        ),
        (
            "scheduled-event-bad-time.json",
            Err(unexpected("time", "yesterday at noon", "an RFC 3339 time")),
        ),
        (
            "alarm-state-change.json",
            Err(unexpected("source", "aws.cloudwatch", "\"aws.events\"")),
        ),
        ("malformed-truncated.json", Err(Rejection::NotJson)),
        (
            "scheduled-event-other-rule.json",
            Err(Rejection::ForeignRule {
                found: "arn:aws:events:us-east-1:123456789012:rule/nightly-report".into(),
            }),
        ),
    ];
    for (name, want) in cases {
        let got = load(name)?
            .and_then(|event| schedule_tick(&event, &expected(&[])))
            .map(|t| t.time);
        assert_eq!(got, want, "{name}");
    }
    Ok(())
}

#[test]
fn a_schedule_from_another_rule_is_refused_only_when_the_rule_is_pinned() -> Result<(), Error> {
    let refused = load("scheduled-event-other-rule.json")?.and_then(|e| schedule_tick(&e, &expected(&[])));
    let Err(rejection) = refused else {
        return Err("a schedule from another rule was accepted".into());
    };
    assert!(
        rejection.to_string().contains("DOWGUARD_SCHEDULE_RULE_ARN"),
        "{rejection}"
    );
    let unpinned = Expected {
        schedule_rule: None,
        ..expected(&[])
    };
    let got = load("scheduled-event-other-rule.json")?.and_then(|e| schedule_tick(&e, &unpinned));
    assert_eq!(got.map(|t| t.time), Ok(time("2026-11-22T06:01:00Z")?));
    Ok(())
}

#[test]
fn change_fixtures_give_exactly_their_outcome() -> Result<(), Error> {
    let call = |event: &str, by: &str, target: &str| -> Result<Trigger, Error> {
        Ok(Trigger::Change(ApiCall {
            event: event.into(),
            principal: Some(by.into()),
            at: time("2026-11-22T06:03:00Z")?,
            touched: vec![Touched::Target(TargetId::parse(target)?)],
        }))
    };
    let cases: Vec<(&str, Result<Trigger, Rejection>)> = vec![
        (
            "cloudtrail-put-function-concurrency.json",
            Ok(call(
                "PutFunctionConcurrency20171031",
                "arn:aws:sts::123456789012:assumed-role/cfn-deploy/AWSCloudFormation",
                "function:checkout",
            )?),
        ),
        (
            "cloudtrail-update-stage.json",
            Ok(call(
                "UpdateStage",
                "arn:aws:iam::123456789012:user/alice",
                "rest-stage:a1b2c3d4e5/prod",
            )?),
        ),
        (
            "cloudtrail-failed-call.json",
            Err(unexpected(
                "detail.errorCode",
                "AccessDenied",
                "no error code: a call that failed changed nothing",
            )),
        ),
        (
            "cloudtrail-other-account.json",
            Err(Rejection::ForeignAccount {
                found: "999999999999".into(),
            }),
        ),
    ];
    for (name, want) in cases {
        let got = load(name)?.and_then(|event| inventory_trigger(&event, &expected(&[])));
        assert_eq!(got, want, "{name}");
    }
    let unfollowed =
        load("cloudtrail-unfollowed-call.json")?.and_then(|e| inventory_trigger(&e, &expected(&[])));
    assert!(
        matches!(&unfollowed, Err(Rejection::Unexpected { field: "detail.eventName", found, .. }) if found == "Invoke"),
        "{unfollowed:?}"
    );
    // Its schedule, from the rule the deployment pins.
    let tick = load("scheduled-event.json")?.and_then(|e| inventory_trigger(&e, &expected(&[])));
    assert!(
        matches!(tick, Ok(Trigger::Reconcile(t)) if t.time == time("2026-11-22T06:01:00Z")?),
        "a schedule reconciles"
    );
    Ok(())
}

#[test]
fn every_fixture_is_covered_by_a_case() -> Result<(), Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events");
    let sources = include_str!("events.rs");
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        count += 1;
        assert!(sources.contains(&format!("\"{name}\"")), "{name} has no case");
    }
    assert!(count >= 20, "only {count} fixtures");
    Ok(())
}
