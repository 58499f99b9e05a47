//! Hostile input to the event validation the Lambdas run before anything else:
//! arbitrary bytes, arbitrary JSON, valid events with fields replaced by wrong types,
//! foreign accounts and regions, injection strings in names, huge and deeply nested
//! payloads. Nothing panics; what is refused says why in one bounded, printable line;
//! what is accepted is this deployment's own alarm about a valid target.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::cell::Cell;

use dowguard_runtime::event::{
    AlarmState, Expected, MAX_EVENT_BYTES, Rejection, alarm_trigger, parse_json, schedule_tick,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};

/// The deployment's schedule rule.
const RULE: &str = "arn:aws:events:us-east-1:123456789012:rule/dowguard-schedule";

/// The one SNS topic the deployment takes alarms from.
static TOPICS: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| vec!["arn:aws:sns:us-east-1:123456789012:dowguard-alarms".to_string()]);

fn expected() -> Expected<'static> {
    Expected {
        account: "123456789012",
        region: "us-east-1",
        alarm_prefix: "dowguard-",
        schedule_rule: Some(RULE),
        alarm_topics: TOPICS.as_slice(),
    }
}

const CASES: u32 = 3_000;

const NASTY: &[&str] = &[
    "",
    "\0",
    "\u{202e}",
    "dowguard-function:checkout\n{\"level\":\"ERROR\"}",
    "dowguard-function:../../etc",
    "dowguard-'; DROP TABLE guard; --",
    "dowguard-${jndi:ldap://example.invalid/a}",
    "dowguard-<script>alert(1)</script>",
    "dowguard-arn:aws:lambda:us-east-1:123456789012:function:checkout",
    "dowguard-usage-plan:",
    "arn:aws:cloudwatch:us-east-1:999999999999:alarm:dowguard-function:checkout",
    "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:dowguard-function:checkout",
    "999999999999",
    "eu-west-1",
    "aws.cloudwatch ",
    "INSUFFICIENT_DATA",
    "alarm",
    "arn:aws:sns:us-east-1:123456789012:other-team-alarms",
    "arn:aws:sns:us-east-1:123456789012:dowguard-alarms",
    "arn:aws:events:us-east-1:123456789012:rule/nightly-report",
    "arn:aws:events:us-east-1:123456789012:rule/dowguard-schedule",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "not a time",
];

fn eventbridge_alarm(name: &str, state: &str) -> Value {
    json!({
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-22T06:01:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-11-22T06:01:00.000+0000"},
            "previousState": {"value": "OK"},
            "configuration": {"metrics": []}
        }
    })
}

fn sns_alarm(name: &str, state: &str) -> Value {
    let message = json!({
        "AlarmName": name,
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "StateChangeTime": "2026-11-22T06:01:00.000+0000",
        "Region": "US East (N. Virginia)"
    });
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "Sns": {
                "Type": "Notification",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:dowguard-alarms",
                "Message": message.to_string(),
                "Timestamp": "2026-11-22T06:01:00.000Z"
            }
        }]
    })
}

fn schedule() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T06:01:00Z",
        "region": "us-east-1",
        "resources": [RULE],
        "detail": {}
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(NASTY).prop_map(Value::from),
        ".{0,30}".prop_map(Value::String),
        (1_usize..300_000).prop_map(|n| Value::String("a".repeat(n))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON paths into the events, for replacing one part.
const PATHS: &[&[&str]] = &[
    &["source"],
    &["detail-type"],
    &["account"],
    &["region"],
    &["time"],
    &["resources"],
    &["detail"],
    &["detail", "alarmName"],
    &["detail", "state"],
    &["detail", "state", "value"],
    &["Records"],
    &["Records", "0", "EventSource"],
    &["Records", "0", "Sns", "Type"],
    &["Records", "0", "Sns", "TopicArn"],
    &["Records", "0", "Sns", "Message"],
];

fn replace(doc: &mut Value, path: &[&str], with: Value) {
    let mut at = doc;
    for key in path {
        at = match at {
            Value::Object(m) => match m.get_mut(*key) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match key.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    *at = with;
}

/// An event: a valid one of each kind (EventBridge alarm, SNS alarm, schedule) with
/// one part replaced, or anything at all.
fn event() -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        Just("dowguard-function:checkout".to_string()),
        prop::sample::select(NASTY).prop_map(str::to_string),
        "dowguard-[a-z:/-]{0,20}",
    ];
    prop_oneof![
        value(),
        (
            name,
            prop::sample::select(&["ALARM", "OK", "INSUFFICIENT_DATA", ""][..]),
            0_u8..3,
            prop::sample::select(PATHS),
            prop::option::of(value()),
        )
            .prop_map(|(name, state, kind, path, with)| {
                let mut doc = match kind {
                    0 => eventbridge_alarm(&name, state),
                    1 => sns_alarm(&name, state),
                    _ => schedule(),
                };
                if let Some(with) = with {
                    replace(&mut doc, path, with);
                }
                doc
            }),
    ]
}

/// A refusal is one short printable line that cannot forge a log record.
fn check_rejection(r: &Rejection) {
    let text = r.to_string();
    assert!(!text.trim().is_empty(), "a rejection without a reason: {r:?}");
    assert!(
        text.chars().count() <= 400,
        "an unbounded message: {} chars",
        text.chars().count()
    );
    assert!(
        !text.chars().any(char::is_control),
        "a control character in {text:?}"
    );
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn arbitrary_events_never_panic_and_only_our_own_alarms_are_accepted() {
    let (accepted, refused, ticks) = (Cell::new(0_u32), Cell::new(0_u32), Cell::new(0_u32));
    runner()
        .run(&event(), |doc| {
            match alarm_trigger(&doc, &expected()) {
                Ok(t) => {
                    accepted.set(accepted.get() + 1);
                    prop_assert!(t.alarm.starts_with(expected().alarm_prefix), "{}", t.alarm);
                    prop_assert_eq!(format!("dowguard-{}", t.target), t.alarm.clone());
                    prop_assert!(matches!(t.state, AlarmState::Alarm | AlarmState::Ok));
                    if let Some(topic) = doc.pointer("/Records/0/Sns/TopicArn") {
                        prop_assert!(
                            TOPICS.iter().any(|listed| topic == listed.as_str()),
                            "an SNS alarm from an unlisted topic {topic} was accepted"
                        );
                    }
                }
                Err(r) => {
                    refused.set(refused.get() + 1);
                    check_rejection(&r);
                }
            }
            match schedule_tick(&doc, &expected()) {
                Ok(_) => {
                    ticks.set(ticks.get() + 1);
                    prop_assert_eq!(
                        doc.get("resources"),
                        Some(&json!([RULE])),
                        "a tick from another rule was accepted"
                    );
                }
                Err(r) => check_rejection(&r),
            }
            Ok(())
        })
        .unwrap();
    assert!(accepted.get() > 0, "the generator never produced a valid alarm");
    assert!(ticks.get() > 0, "the generator never produced a valid schedule");
    assert!(refused.get() > accepted.get());
    println!(
        "hostile events: {CASES} alarm/schedule events, {} accepted, {} refused with a reason",
        accepted.get(),
        refused.get()
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..4_096), |bytes| {
            if let Err(r) = parse_json(&bytes) {
                check_rejection(&r);
            }
            Ok(())
        })
        .unwrap();
    println!("hostile events: {CASES} arbitrary byte strings");
}

#[test]
fn foreign_accounts_regions_and_alarms_are_refused_by_name() {
    let ours = eventbridge_alarm("dowguard-function:checkout", "ALARM");
    assert!(alarm_trigger(&ours, &expected()).is_ok());
    assert!(alarm_trigger(&sns_alarm("dowguard-function:checkout", "ALARM"), &expected()).is_ok());
    let mut foreign = ours.clone();
    foreign["account"] = json!("999999999999");
    assert!(matches!(
        alarm_trigger(&foreign, &expected()),
        Err(Rejection::ForeignAccount { .. })
    ));
    let mut elsewhere = ours.clone();
    elsewhere["region"] = json!("eu-west-1");
    assert!(matches!(
        alarm_trigger(&elsewhere, &expected()),
        Err(Rejection::ForeignRegion { .. })
    ));
    let theirs = eventbridge_alarm("billing-alarm", "ALARM");
    assert!(matches!(
        alarm_trigger(&theirs, &expected()),
        Err(Rejection::NotOwned { .. })
    ));
    let injected = eventbridge_alarm("dowguard-function:checkout\n{\"level\":\"ERROR\"}", "ALARM");
    let refused = alarm_trigger(&injected, &expected()).unwrap_err();
    check_rejection(&refused);
    assert!(schedule_tick(&schedule(), &expected()).is_ok());
    let mut other_rule = schedule();
    other_rule["resources"] = json!(["arn:aws:events:us-east-1:123456789012:rule/nightly-report"]);
    assert!(matches!(
        schedule_tick(&other_rule, &expected()),
        Err(Rejection::ForeignRule { .. })
    ));
    let mut unlisted = sns_alarm("dowguard-function:checkout", "ALARM");
    unlisted["Records"][0]["Sns"]["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:other-team-alarms");
    assert!(matches!(
        alarm_trigger(&unlisted, &expected()),
        Err(Rejection::UnlistedTopic { .. })
    ));
    assert!(
        schedule_tick(&ours, &expected()).is_err(),
        "an alarm is not a schedule tick"
    );
}

#[test]
fn huge_and_deeply_nested_payloads_are_refused_without_panic() {
    let huge = vec![b' '; MAX_EVENT_BYTES + 1];
    assert!(matches!(parse_json(&huge), Err(Rejection::TooLarge { .. })));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(
        parse_json(deep.as_bytes()),
        Err(Rejection::NotJson),
        "nested beyond the parser's limit"
    );
    let nested = format!(
        "{}{}",
        "{\"a\":".repeat(10_000),
        "1".to_string() + &"}".repeat(10_000)
    );
    assert_eq!(parse_json(nested.as_bytes()), Err(Rejection::NotJson));
    let mut wrapped = sns_alarm("dowguard-function:checkout", "ALARM");
    wrapped["Records"][0]["Sns"]["Message"] = json!(format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)));
    check_rejection(&alarm_trigger(&wrapped, &expected()).unwrap_err());
}
