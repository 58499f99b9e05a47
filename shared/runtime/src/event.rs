//! Strict validation of the events dowguard's functions receive. Pure and
//! panic-free: it reads only fixed paths of the JSON (so depth does not matter),
//! never indexes, and shows at most [`SHOWN_CHARS`] escaped characters of anything
//! it quotes back, so a hostile payload cannot flood or forge the logs.
//!
//! Accepted:
//!
//! - EventBridge `Scheduled Event` from `aws.events` ([`schedule_tick`]);
//! - EventBridge `CloudWatch Alarm State Change` from `aws.cloudwatch`
//!   ([`alarm_trigger`]);
//! - an SNS event with exactly one record whose `Message` is a CloudWatch alarm
//!   notification ([`alarm_trigger`] again).
//!
//! Each must come from the deployment's account and region; a scheduled event from
//! the deployment's schedule rule (when it names one); an SNS-wrapped alarm from a
//! topic the deployment lists; and an alarm must be one under dowguard's prefix that
//! maps to a target. Anything else is a [`Rejection`] that says why.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use dowguard_domain::{TargetId, target_of_alarm};
use serde_json::Value;

use crate::config::{ALARM_TOPIC_ARNS, SCHEDULE_RULE_ARN};

/// The largest event accepted, in bytes (EventBridge's own limit is 256 KB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// How many characters of a rejected value a message shows.
pub const SHOWN_CHARS: usize = 64;

/// The EventBridge source of alarm state changes.
pub const ALARM_SOURCE: &str = "aws.cloudwatch";
/// The EventBridge detail-type of alarm state changes.
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";
/// The EventBridge source of schedules.
pub const SCHEDULE_SOURCE: &str = "aws.events";
/// The EventBridge detail-type of schedules.
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// What an event must match: the deployment's account, region and alarm prefix,
/// its schedule rule, and the SNS topics it takes alarms from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// 12-digit account id.
    pub account: &'a str,
    /// Region code.
    pub region: &'a str,
    /// The alarm-name prefix dowguard owns.
    pub alarm_prefix: &'a str,
    /// The ARN of the evaluator's schedule rule: a scheduled event's `resources` must
    /// be exactly this ARN. `None` accepts any rule of the account and region.
    pub schedule_rule: Option<&'a str>,
    /// The SNS topics whose alarm notifications are accepted; none refuses every
    /// SNS-wrapped alarm.
    pub alarm_topics: &'a [String],
}

/// The alarm states dowguard acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// The target's request rate is above its budget's alarm threshold.
    Alarm,
    /// Back under the threshold.
    Ok,
}

/// How an alarm notification arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An EventBridge rule on alarm state changes.
    EventBridge,
    /// An SNS topic the alarm publishes to.
    Sns,
}

/// A validated alarm notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmTrigger {
    /// The alarm's name.
    pub alarm: String,
    /// The target it watches.
    pub target: TargetId,
    /// Its new state.
    pub state: AlarmState,
    /// When the state changed (EventBridge: the event's time).
    pub time: DateTime<Utc>,
    /// How it arrived.
    pub via: Via,
}

/// A validated scheduled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleTick {
    /// The scheduled time.
    pub time: DateTime<Utc>,
}

/// Why an event was not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Larger than [`MAX_EVENT_BYTES`].
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Not JSON (or nested beyond the parser's limit).
    NotJson,
    /// A field is missing.
    Missing {
        /// The field's path.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    WrongType {
        /// The field's path.
        field: &'static str,
        /// The type wanted.
        expected: &'static str,
    },
    /// A field has a value dowguard does not accept.
    Unexpected {
        /// The field's path.
        field: &'static str,
        /// The value found, escaped and cut to [`SHOWN_CHARS`].
        found: String,
        /// What was wanted.
        wanted: String,
    },
    /// From another account.
    ForeignAccount {
        /// The account found.
        found: String,
    },
    /// From another region.
    ForeignRegion {
        /// The region found.
        found: String,
    },
    /// An alarm that is not dowguard's (wrong prefix, or no target in its name).
    NotOwned {
        /// The alarm name found.
        alarm: String,
    },
    /// A state other than ALARM or OK (e.g. INSUFFICIENT_DATA).
    IgnoredState {
        /// The state found.
        state: String,
    },
    /// Older than the deployment accepts (a replay or a long-delayed retry).
    Stale {
        /// The event's time.
        time: DateTime<Utc>,
    },
    /// Later than the clock allows.
    FromTheFuture {
        /// The event's time.
        time: DateTime<Utc>,
    },
    /// A scheduled event from a rule other than the deployment's schedule rule.
    ForeignRule {
        /// The rule ARN found, escaped and cut.
        found: String,
    },
    /// An SNS-wrapped alarm while the deployment lists no topic to take them from.
    SnsNotAccepted,
    /// An SNS-wrapped alarm from a topic the deployment does not list.
    UnlistedTopic {
        /// The topic ARN found, escaped and cut.
        topic: String,
    },
}

/// Escapes and cuts a value for a message.
pub fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::TooLarge { bytes } => {
                write!(
                    f,
                    "event of {bytes} bytes exceeds the {MAX_EVENT_BYTES}-byte limit"
                )
            }
            Rejection::NotJson => f.write_str("event is not a JSON document (or is nested too deeply)"),
            Rejection::Missing { field } => write!(f, "field `{field}` is missing"),
            Rejection::WrongType { field, expected } => write!(f, "field `{field}` is not {expected}"),
            Rejection::Unexpected { field, found, wanted } => {
                write!(f, "field `{field}` is \"{found}\", expected {wanted}")
            }
            Rejection::ForeignAccount { found } => {
                write!(f, "event from account \"{found}\", not this deployment's")
            }
            Rejection::ForeignRegion { found } => {
                write!(f, "event from region \"{found}\", not this deployment's")
            }
            Rejection::NotOwned { alarm } => write!(f, "alarm \"{alarm}\" is not one of dowguard's"),
            Rejection::IgnoredState { state } => {
                write!(
                    f,
                    "alarm state \"{state}\" is neither ALARM nor OK: nothing to do"
                )
            }
            Rejection::Stale { time } => write!(f, "event time {time} is too old to act on"),
            Rejection::FromTheFuture { time } => write!(f, "event time {time} is in the future"),
            Rejection::ForeignRule { found } => write!(
                f,
                "scheduled event from rule \"{found}\", not this deployment's schedule rule ({SCHEDULE_RULE_ARN})"
            ),
            Rejection::SnsNotAccepted => write!(
                f,
                "SNS-wrapped alarms are refused: this deployment lists no topic in {ALARM_TOPIC_ARNS}"
            ),
            Rejection::UnlistedTopic { topic } => write!(
                f,
                "alarm from SNS topic \"{topic}\", which is not listed in {ALARM_TOPIC_ARNS}"
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// Parses raw bytes as JSON, refusing anything above [`MAX_EVENT_BYTES`] first.
///
/// # Errors
///
/// [`Rejection::TooLarge`] or [`Rejection::NotJson`].
pub fn parse_json(bytes: &[u8]) -> Result<Value, Rejection> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Rejection::TooLarge { bytes: bytes.len() });
    }
    serde_json::from_slice(bytes).map_err(|_| Rejection::NotJson)
}

pub(crate) fn field<'v>(value: &'v Value, key: &str, path: &'static str) -> Result<&'v Value, Rejection> {
    match value {
        Value::Object(map) => map.get(key).ok_or(Rejection::Missing { field: path }),
        _ => Err(Rejection::WrongType {
            field: path.rsplit_once('.').map_or("(event)", |(parent, _)| parent),
            expected: "an object",
        }),
    }
}

pub(crate) fn text<'v>(value: &'v Value, key: &str, path: &'static str) -> Result<&'v str, Rejection> {
    field(value, key, path)?.as_str().ok_or(Rejection::WrongType {
        field: path,
        expected: "a string",
    })
}

fn exactly(value: &Value, key: &str, path: &'static str, wanted: &str) -> Result<(), Rejection> {
    let found = text(value, key, path)?;
    if found == wanted {
        Ok(())
    } else {
        Err(Rejection::Unexpected {
            field: path,
            found: shown(found),
            wanted: format!("\"{wanted}\""),
        })
    }
}

fn check_origin(account: &str, region: &str, expected: &Expected<'_>) -> Result<(), Rejection> {
    if account != expected.account {
        return Err(Rejection::ForeignAccount {
            found: shown(account),
        });
    }
    if region != expected.region {
        return Err(Rejection::ForeignRegion { found: shown(region) });
    }
    Ok(())
}

fn rfc3339(raw: &str, path: &'static str) -> Result<DateTime<Utc>, Rejection> {
    let bad = || Rejection::Unexpected {
        field: path,
        found: shown(raw),
        wanted: "an RFC 3339 time".into(),
    };
    if raw.len() > 40 {
        return Err(bad());
    }
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| bad())
}

/// The common envelope of EventBridge events: source, detail-type, account, region
/// and time.
pub(crate) fn envelope(
    event: &Value,
    expected: &Expected<'_>,
    source: &str,
    detail_type: &str,
) -> Result<DateTime<Utc>, Rejection> {
    exactly(event, "source", "source", source)?;
    exactly(event, "detail-type", "detail-type", detail_type)?;
    let account = text(event, "account", "account")?;
    let region = text(event, "region", "region")?;
    check_origin(account, region, expected)?;
    rfc3339(text(event, "time", "time")?, "time")
}

/// The one entry of an EventBridge event's `resources`, as text; `wanted` says what
/// it should be when there is not exactly one.
fn only_resource<'v>(event: &'v Value, wanted: &str) -> Result<&'v str, Rejection> {
    let resources = field(event, "resources", "resources")?
        .as_array()
        .ok_or(Rejection::WrongType {
            field: "resources",
            expected: "an array",
        })?;
    let [arn] = resources.as_slice() else {
        return Err(Rejection::Unexpected {
            field: "resources",
            found: format!("{} entries", resources.len()),
            wanted: wanted.into(),
        });
    };
    arn.as_str().ok_or(Rejection::WrongType {
        field: "resources[0]",
        expected: "a string",
    })
}

/// Validates an EventBridge scheduled event.
///
/// # Errors
///
/// A [`Rejection`] saying which check failed.
pub fn schedule_tick(event: &Value, expected: &Expected<'_>) -> Result<ScheduleTick, Rejection> {
    let time = envelope(event, expected, SCHEDULE_SOURCE, SCHEDULE_DETAIL_TYPE)?;
    if let Some(rule) = expected.schedule_rule {
        // A rule's scheduled event names the rule's ARN as its only resource
        // ("Using AWS Lambda with Amazon EventBridge (CloudWatch Events)").
        let arn = only_resource(event, "exactly the schedule rule's ARN")?;
        if arn != rule {
            return Err(Rejection::ForeignRule { found: shown(arn) });
        }
    }
    Ok(ScheduleTick { time })
}

fn state_of(raw: &str, path: &'static str) -> Result<AlarmState, Rejection> {
    match raw {
        "ALARM" => Ok(AlarmState::Alarm),
        "OK" => Ok(AlarmState::Ok),
        "INSUFFICIENT_DATA" => Err(Rejection::IgnoredState { state: raw.into() }),
        other => Err(Rejection::Unexpected {
            field: path,
            found: shown(other),
            wanted: "ALARM, OK or INSUFFICIENT_DATA".into(),
        }),
    }
}

fn owned(name: &str, expected: &Expected<'_>) -> Result<TargetId, Rejection> {
    target_of_alarm(expected.alarm_prefix, name).ok_or_else(|| Rejection::NotOwned { alarm: shown(name) })
}

/// The alarm ARN must be this deployment's alarm of that name.
fn check_alarm_arn(
    arn: &str,
    name: &str,
    path: &'static str,
    expected: &Expected<'_>,
) -> Result<(), Rejection> {
    let wanted = format!(
        "arn:aws:cloudwatch:{}:{}:alarm:{name}",
        expected.region, expected.account
    );
    let partitions = ["aws", "aws-cn", "aws-us-gov"];
    let matches = partitions.iter().any(|p| {
        arn.strip_prefix("arn:")
            .and_then(|r| r.strip_prefix(p))
            .is_some_and(|r| Some(r) == wanted.strip_prefix("arn:aws"))
    });
    if matches {
        return Ok(());
    }
    // Say which part differs, where it can be told.
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if let [_, _, _, region, account, _, _] = parts.as_slice() {
        check_origin(account, region, expected)?;
    }
    Err(Rejection::Unexpected {
        field: path,
        found: shown(arn),
        wanted: "the ARN of the named alarm in this account and region".into(),
    })
}

/// Validates an alarm notification: an EventBridge alarm state change, or an SNS
/// event wrapping a CloudWatch alarm notification.
///
/// # Errors
///
/// A [`Rejection`] saying which check failed.
pub fn alarm_trigger(event: &Value, expected: &Expected<'_>) -> Result<AlarmTrigger, Rejection> {
    match event {
        Value::Object(map) if map.contains_key("Records") => sns_alarm(event, expected),
        Value::Object(_) => eventbridge_alarm(event, expected),
        _ => Err(Rejection::WrongType {
            field: "(event)",
            expected: "an object",
        }),
    }
}

fn eventbridge_alarm(event: &Value, expected: &Expected<'_>) -> Result<AlarmTrigger, Rejection> {
    let time = envelope(event, expected, ALARM_SOURCE, ALARM_DETAIL_TYPE)?;
    let detail = field(event, "detail", "detail")?;
    let name = text(detail, "alarmName", "detail.alarmName")?;
    let target = owned(name, expected)?;
    let arn = only_resource(event, "exactly the alarm's ARN")?;
    check_alarm_arn(arn, name, "resources[0]", expected)?;
    let state = field(detail, "state", "detail.state")?;
    let state = state_of(text(state, "value", "detail.state.value")?, "detail.state.value")?;
    Ok(AlarmTrigger {
        alarm: name.to_string(),
        target,
        state,
        time,
        via: Via::EventBridge,
    })
}

fn sns_alarm(event: &Value, expected: &Expected<'_>) -> Result<AlarmTrigger, Rejection> {
    if expected.alarm_topics.is_empty() {
        return Err(Rejection::SnsNotAccepted);
    }
    let records = field(event, "Records", "Records")?
        .as_array()
        .ok_or(Rejection::WrongType {
            field: "Records",
            expected: "an array",
        })?;
    let [record] = records.as_slice() else {
        return Err(Rejection::Unexpected {
            field: "Records",
            found: format!("{} records", records.len()),
            wanted: "exactly one record".into(),
        });
    };
    exactly(record, "EventSource", "Records[0].EventSource", "aws:sns")?;
    let sns = field(record, "Sns", "Records[0].Sns")?;
    exactly(sns, "Type", "Records[0].Sns.Type", "Notification")?;
    let topic = text(sns, "TopicArn", "Records[0].Sns.TopicArn")?;
    match topic.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "sns", region, account, _] => check_origin(account, region, expected)?,
        _ => {
            return Err(Rejection::Unexpected {
                field: "Records[0].Sns.TopicArn",
                found: shown(topic),
                wanted: "an SNS topic ARN".into(),
            });
        }
    }
    if !expected.alarm_topics.iter().any(|t| t == topic) {
        return Err(Rejection::UnlistedTopic { topic: shown(topic) });
    }
    let raw = text(sns, "Message", "Records[0].Sns.Message")?;
    let message = parse_json(raw.as_bytes())?;
    let account = text(&message, "AWSAccountId", "Message.AWSAccountId")?;
    if account != expected.account {
        return Err(Rejection::ForeignAccount {
            found: shown(account),
        });
    }
    let name = text(&message, "AlarmName", "Message.AlarmName")?;
    let target = owned(name, expected)?;
    let arn = text(&message, "AlarmArn", "Message.AlarmArn")?;
    check_alarm_arn(arn, name, "Message.AlarmArn", expected)?;
    let state = state_of(
        text(&message, "NewStateValue", "Message.NewStateValue")?,
        "Message.NewStateValue",
    )?;
    let time = rfc3339(
        text(&message, "StateChangeTime", "Message.StateChangeTime")?,
        "Message.StateChangeTime",
    )?;
    Ok(AlarmTrigger {
        alarm: name.to_string(),
        target,
        state,
        time,
        via: Via::Sns,
    })
}

/// Refuses an event older than `max_age` or more than a minute ahead of `now`.
///
/// # Errors
///
/// [`Rejection::Stale`] or [`Rejection::FromTheFuture`].
pub fn check_age(time: DateTime<Utc>, now: DateTime<Utc>, max_age: Duration) -> Result<(), Rejection> {
    if time < now - max_age {
        Err(Rejection::Stale { time })
    } else if time > now + Duration::minutes(1) {
        Err(Rejection::FromTheFuture { time })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const EXPECTED: Expected<'static> = Expected {
        account: "123456789012",
        region: "us-east-1",
        alarm_prefix: "dowguard-",
        schedule_rule: None,
        alarm_topics: &[],
    };

    #[test]
    fn deep_nesting_and_huge_payloads_are_rejected_without_panicking() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_json(deep.as_bytes()), Err(Rejection::NotJson));
        let deep_small = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
        assert_eq!(parse_json(deep_small.as_bytes()), Err(Rejection::NotJson));
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(
            parse_json(&huge),
            Err(Rejection::TooLarge {
                bytes: MAX_EVENT_BYTES + 1
            })
        );
    }

    #[test]
    fn non_objects_are_rejected() {
        for v in [json!(null), json!([]), json!("x"), json!(1)] {
            assert!(alarm_trigger(&v, &EXPECTED).is_err(), "{v}");
            assert!(schedule_tick(&v, &EXPECTED).is_err(), "{v}");
        }
    }

    #[test]
    fn quoted_values_are_escaped_and_cut() {
        let s = shown(&format!("a\nb\u{1b}[31m{}", "x".repeat(500)));
        assert!(s.starts_with("a\\nb\\u{1b}[31m"), "{s}");
        assert!(s.chars().count() < 200 && s.ends_with('…'), "{s}");
    }

    #[test]
    fn age_window_refuses_stale_and_future_events() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T06:00:00Z").map(|t| t.with_timezone(&Utc));
        let Ok(now) = now else { panic!("time") };
        let ten = Duration::minutes(10);
        assert!(check_age(now - Duration::minutes(9), now, ten).is_ok());
        assert!(matches!(
            check_age(now - Duration::minutes(11), now, ten),
            Err(Rejection::Stale { .. })
        ));
        assert!(matches!(
            check_age(now + Duration::minutes(2), now, ten),
            Err(Rejection::FromTheFuture { .. })
        ));
    }
}
