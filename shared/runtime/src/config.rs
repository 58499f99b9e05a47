//! The functions' configuration: every environment variable read once, at start,
//! into a typed [`Config`]. A missing or malformed variable is an error that names
//! it and says what it should look like.

use chrono::Duration;
use dowguard_domain::{AlarmScope, Mode};

/// The DynamoDB table of budgets, states and the audit trail.
pub const TABLE: &str = "DOWGUARD_TABLE";
/// The default SNS topic for notices.
pub const TOPIC_ARN: &str = "DOWGUARD_TOPIC_ARN";
/// The account the deployment guards (events from any other are rejected).
pub const ACCOUNT_ID: &str = "DOWGUARD_ACCOUNT_ID";
/// The region, set by Lambda itself.
pub const REGION: &str = "AWS_REGION";
/// `dry-run` (decide, apply nothing) or `enforce` (each budget's own mode).
pub const MODE: &str = "DOWGUARD_MODE";
/// The name prefix of the alarms dowguard owns.
pub const ALARM_PREFIX: &str = "DOWGUARD_ALARM_PREFIX";
/// Whether the monthly free tier is counted: read only to refuse `true` (see
/// [`ConfigError::Refused`]), so it is not in [`ALL_VARIABLES`].
pub const FREE_TIER: &str = "DOWGUARD_FREE_TIER";
/// Days audit records are kept.
pub const AUDIT_RETENTION_DAYS: &str = "DOWGUARD_AUDIT_RETENTION_DAYS";
/// Oldest event (minutes) a function still acts on.
pub const MAX_EVENT_AGE_MINUTES: &str = "DOWGUARD_MAX_EVENT_AGE_MINUTES";
/// The CloudWatch namespace of the guard's own metrics.
pub const METRICS_NAMESPACE: &str = "DOWGUARD_METRICS_NAMESPACE";
/// Which targets the evaluator keeps alarms on ([`AlarmScope`]).
pub const ALARMS: &str = "DOWGUARD_ALARMS";
/// Minutes between two runs of the evaluator: its schedule, which decides which
/// targets need an alarm.
pub const SCHEDULE_MINUTES: &str = "DOWGUARD_SCHEDULE_MINUTES";

/// Least seconds between two UpdateUsagePlan calls (AWS allows about one per 20 s).
pub const USAGE_PLAN_INTERVAL_SECONDS: &str = "DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS";
/// The ARN of the evaluator's schedule rule: scheduled events from any other rule
/// are rejected.
pub const SCHEDULE_RULE_ARN: &str = "DOWGUARD_SCHEDULE_RULE_ARN";
/// The SNS topics whose alarm notifications the alarm responder accepts,
/// comma-separated; none means SNS-wrapped alarms are refused.
pub const ALARM_TOPIC_ARNS: &str = "DOWGUARD_ALARM_TOPIC_ARNS";
/// The most passes the whole deployment runs in one minute.
pub const MAX_PASSES_PER_MINUTE: &str = "DOWGUARD_MAX_PASSES_PER_MINUTE";
/// Whether the guard ranks the callers of REST API stages (`true`, the default,
/// or `false`): Contributor Insights rules over their access logs.
pub const CALLER_RANKING: &str = "DOWGUARD_CALLER_RANKING";
/// The usage plan a quarantined API key is moved to; none: no key is quarantined.
pub const QUARANTINE_PLAN_ID: &str = "DOWGUARD_QUARANTINE_PLAN_ID";
/// The most notices the whole deployment publishes in one hour: the last one the
/// cap allows says until when the rest are held (logged, not sent).
pub const NOTICES_PER_HOUR: &str = "DOWGUARD_NOTICES_PER_HOUR";

/// Every variable, for docs and tests.
pub const ALL_VARIABLES: &[&str] = &[
    TABLE,
    TOPIC_ARN,
    ACCOUNT_ID,
    REGION,
    MODE,
    ALARM_PREFIX,
    AUDIT_RETENTION_DAYS,
    MAX_EVENT_AGE_MINUTES,
    METRICS_NAMESPACE,
    ALARMS,
    SCHEDULE_MINUTES,
    USAGE_PLAN_INTERVAL_SECONDS,
    SCHEDULE_RULE_ARN,
    ALARM_TOPIC_ARNS,
    MAX_PASSES_PER_MINUTE,
    CALLER_RANKING,
    QUARANTINE_PLAN_ID,
    NOTICES_PER_HOUR,
];

/// Why [`FREE_TIER`]`=true` is refused, and what to do instead.
pub const FREE_TIER_REFUSAL: &str = "the free tier covers the whole account's month-to-date usage, which the guard \
     cannot read cheaply; priced from zero usage, every unit would fall inside the free tier and the guard \
     would see $0 of spend. Leave it false (or unset): prices then err on the high side by at most the \
     free tier's value";

/// A variable that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("environment variable {name} is not set: {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {name}={value:?} is invalid: {hint}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value (cut to 80 characters).
        value: String,
        /// What it should hold.
        hint: &'static str,
    },
    /// A variable is set to a value the functions understand but refuse.
    #[error("environment variable {name}={value:?} is refused: {reason}")]
    Refused {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
}

/// The configuration of every dowguard function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// [`TABLE`].
    pub table: String,
    /// [`TOPIC_ARN`].
    pub topic_arn: Option<String>,
    /// [`ACCOUNT_ID`]: 12 digits.
    pub account_id: String,
    /// [`REGION`].
    pub region: String,
    /// [`MODE`], default `dry-run`.
    pub mode: Mode,
    /// [`ALARM_PREFIX`], default `dowguard-`.
    pub alarm_prefix: String,
    /// [`AUDIT_RETENTION_DAYS`], default 90.
    pub audit_retention: Duration,
    /// [`MAX_EVENT_AGE_MINUTES`], default 10.
    pub max_event_age: Duration,
    /// [`METRICS_NAMESPACE`], default `Dowguard`.
    pub metrics_namespace: String,
    /// [`ALARMS`]: `needed` (the default), `every-target` or `none`.
    pub alarms: AlarmScope,
    /// [`SCHEDULE_MINUTES`], default 1.
    pub schedule_minutes: u64,
    /// [`USAGE_PLAN_INTERVAL_SECONDS`], default 20.
    pub usage_plan_interval: std::time::Duration,
    /// [`SCHEDULE_RULE_ARN`], default none (scheduled events from any rule of the
    /// account and region are accepted).
    pub schedule_rule_arn: Option<String>,
    /// [`ALARM_TOPIC_ARNS`], default none (SNS-wrapped alarms are refused).
    pub alarm_topic_arns: Vec<String>,
    /// [`MAX_PASSES_PER_MINUTE`], default [`DEFAULT_MAX_PASSES_PER_MINUTE`].
    pub max_passes_per_minute: u32,
    /// [`CALLER_RANKING`], default `true`.
    pub caller_ranking: bool,
    /// [`QUARANTINE_PLAN_ID`], default none.
    pub quarantine_plan: Option<dowguard_domain::UsagePlanId>,
    /// [`NOTICES_PER_HOUR`], default [`DEFAULT_NOTICES_PER_HOUR`].
    pub notices_per_hour: u32,
}

/// The default of [`NOTICES_PER_HOUR`]. Every notice is one SNS publish and one
/// delivery per subscriber: at the prices the template's `NoticesPerHour`
/// parameter documents as its assumption ($0.50 per million publishes, $2.00 per
/// 100,000 e-mail deliveries), 60 notices an hour to one e-mail subscriber come to
/// at most about $0.90 a month.
pub const DEFAULT_NOTICES_PER_HOUR: u32 = 60;

/// The default of [`MAX_PASSES_PER_MINUTE`]: the evaluator's one pass a minute and
/// room for five alarm passes.
pub const DEFAULT_MAX_PASSES_PER_MINUTE: u32 = 6;

/// True if `arn` is `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` with that service,
/// region and account, and a resource that `resource_ok` accepts.
fn arn_of(arn: &str, service: &str, region: &str, account: &str, resource_ok: impl Fn(&str) -> bool) -> bool {
    match arn.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", partition, s, r, a, resource] => {
            ["aws", "aws-cn", "aws-us-gov"].contains(partition)
                && *s == service
                && *r == region
                && *a == account
                && resource_ok(resource)
        }
        _ => false,
    }
}

/// 1 to `max` letters, digits, or characters of `extra`.
fn name_ok(name: &str, max: usize, extra: &str) -> bool {
    (1..=max).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first missing or malformed variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required =
            |name: &'static str, hint: &'static str| get(name).ok_or(ConfigError::Missing { name, hint });
        let invalid = |name: &'static str, value: &str, hint: &'static str| ConfigError::Invalid {
            name,
            value: value.chars().take(80).collect(),
            hint,
        };
        let number = |name: &'static str, default: i64, max: i64, hint: &'static str| match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| invalid(name, &v, hint)),
        };

        let table_hint = "the guard's DynamoDB table name (3-255 letters, digits, _ - .)";
        let table = required(TABLE, table_hint)?;
        if !(3..=255).contains(&table.len())
            || !table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(invalid(TABLE, &table, table_hint));
        }
        let topic_hint = "an SNS topic ARN, arn:aws:sns:REGION:ACCOUNT:NAME";
        let topic_arn = match get(TOPIC_ARN) {
            None => None,
            Some(arn) if arn.starts_with("arn:") && arn.split(':').count() == 6 && arn.contains(":sns:") => {
                Some(arn)
            }
            Some(other) => return Err(invalid(TOPIC_ARN, &other, topic_hint)),
        };
        let account_hint = "the 12-digit AWS account id";
        let account_id = required(ACCOUNT_ID, account_hint)?;
        if account_id.len() != 12 || !account_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(ACCOUNT_ID, &account_id, account_hint));
        }
        let region_hint = "an AWS region code such as us-east-1 (Lambda sets it)";
        let region = required(REGION, region_hint)?;
        if !region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(REGION, &region, region_hint));
        }
        let mode = match get(MODE) {
            None => Mode::DryRun,
            Some(v) => Mode::parse(&v).map_err(|_| invalid(MODE, &v, "dry-run or enforce"))?,
        };
        let prefix_hint = "1-64 letters, digits, - _ or . (e.g. dowguard-)";
        let alarm_prefix = get(ALARM_PREFIX).unwrap_or_else(|| "dowguard-".to_string());
        if !(1..=64).contains(&alarm_prefix.len())
            || !alarm_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(ALARM_PREFIX, &alarm_prefix, prefix_hint));
        }
        let namespace_hint =
            "a CloudWatch namespace: 1-255 letters, digits, . - _ / # :, not starting with AWS/";
        let metrics_namespace = get(METRICS_NAMESPACE).unwrap_or_else(|| "Dowguard".to_string());
        if metrics_namespace.len() > 255
            || metrics_namespace.starts_with("AWS/")
            || !metrics_namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_/#:".contains(c))
        {
            return Err(invalid(METRICS_NAMESPACE, &metrics_namespace, namespace_hint));
        }
        if let Some(value) = get(FREE_TIER) {
            match value.as_str() {
                "false" | "0" | "no" => {}
                "true" | "1" | "yes" => {
                    return Err(ConfigError::Refused {
                        name: FREE_TIER,
                        value,
                        reason: FREE_TIER_REFUSAL,
                    });
                }
                other => return Err(invalid(FREE_TIER, other, "false (true is refused)")),
            }
        }
        let rule_hint = "the ARN of the evaluator's EventBridge rule in this account and region, \
                         arn:aws:events:REGION:ACCOUNT:rule/NAME";
        let schedule_rule_arn = match get(SCHEDULE_RULE_ARN) {
            None => None,
            Some(arn)
                if arn_of(&arn, "events", &region, &account_id, |r| {
                    r.strip_prefix("rule/").is_some_and(|n| name_ok(n, 64, ".-_"))
                }) =>
            {
                Some(arn)
            }
            Some(other) => return Err(invalid(SCHEDULE_RULE_ARN, &other, rule_hint)),
        };
        let topics_hint = "comma-separated SNS topic ARNs of this account and region, \
                           arn:aws:sns:REGION:ACCOUNT:NAME";
        let mut alarm_topic_arns = Vec::new();
        for arn in get(ALARM_TOPIC_ARNS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
        {
            if arn.is_empty() {
                continue;
            }
            if !arn_of(arn, "sns", &region, &account_id, |n| name_ok(n, 256, "-_.")) {
                return Err(invalid(ALARM_TOPIC_ARNS, arn, topics_hint));
            }
            alarm_topic_arns.push(arn.to_string());
        }
        let alarms = match get(ALARMS).as_deref() {
            None | Some("needed") => AlarmScope::Needed,
            Some("every-target") => AlarmScope::EveryTarget,
            Some("none") => AlarmScope::None,
            Some(other) => return Err(invalid(ALARMS, other, "needed, every-target or none")),
        };
        let schedule_minutes = u64::try_from(number(
            SCHEDULE_MINUTES,
            1,
            60,
            "whole minutes between evaluator runs, 1 to 60, as in the schedule rule",
        )?)
        .unwrap_or(1);
        let max_passes_per_minute = u32::try_from(number(
            MAX_PASSES_PER_MINUTE,
            i64::from(DEFAULT_MAX_PASSES_PER_MINUTE),
            1_000,
            "whole passes a minute, 1 to 1000",
        )?)
        .unwrap_or(DEFAULT_MAX_PASSES_PER_MINUTE);
        let caller_ranking = match get(CALLER_RANKING).as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(invalid(CALLER_RANKING, other, "true or false")),
        };
        let quarantine_plan = match get(QUARANTINE_PLAN_ID) {
            None => None,
            Some(id) => Some(dowguard_domain::UsagePlanId::parse(&id).map_err(|_| {
                invalid(
                    QUARANTINE_PLAN_ID,
                    &id,
                    "the id of a usage plan of this account (as GetUsagePlans lists it), or empty for none",
                )
            })?),
        };
        let notices_per_hour = u32::try_from(number(
            NOTICES_PER_HOUR,
            i64::from(DEFAULT_NOTICES_PER_HOUR),
            100_000,
            "whole notices an hour, 2 to 100000",
        )?)
        .unwrap_or(DEFAULT_NOTICES_PER_HOUR);
        if notices_per_hour < 2 {
            return Err(invalid(
                NOTICES_PER_HOUR,
                &notices_per_hour.to_string(),
                "whole notices an hour, 2 to 100000 (the last one says the rest are held)",
            ));
        }
        Ok(Config {
            table,
            topic_arn,
            account_id,
            region,
            mode,
            alarm_prefix,
            audit_retention: Duration::days(number(AUDIT_RETENTION_DAYS, 90, 3650, "whole days, 1 to 3650")?),
            max_event_age: Duration::minutes(number(
                MAX_EVENT_AGE_MINUTES,
                10,
                10_080,
                "whole minutes, 1 to 10080",
            )?),
            metrics_namespace,
            alarms,
            caller_ranking,
            quarantine_plan,
            schedule_minutes,
            usage_plan_interval: std::time::Duration::from_secs(match get(USAGE_PLAN_INTERVAL_SECONDS) {
                None => 20,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 300)
                    .ok_or_else(|| invalid(USAGE_PLAN_INTERVAL_SECONDS, &v, "whole seconds, 0 to 300"))?,
            }),
            schedule_rule_arn,
            alarm_topic_arns,
            max_passes_per_minute,
            notices_per_hour,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        (TABLE, "dowguard"),
        (ACCOUNT_ID, "123456789012"),
        (REGION, "us-east-1"),
    ];

    #[test]
    fn defaults_fill_everything_but_the_required_three() {
        let c = env(BASE).expect("valid");
        assert_eq!(c.mode, Mode::DryRun);
        assert_eq!(c.alarm_prefix, "dowguard-");
        assert_eq!(c.topic_arn, None);
        assert_eq!(c.alarms, AlarmScope::Needed);
        assert_eq!(c.schedule_minutes, 1);
        assert_eq!(c.audit_retention, Duration::days(90));
        assert_eq!(c.max_event_age, Duration::minutes(10));
        assert_eq!(c.metrics_namespace, "Dowguard");
        assert_eq!(c.usage_plan_interval, std::time::Duration::from_secs(20));
        assert_eq!(c.schedule_rule_arn, None);
        assert!(c.alarm_topic_arns.is_empty(), "SNS-wrapped alarms refused");
        assert_eq!(c.max_passes_per_minute, 6);
        assert!(c.caller_ranking, "callers ranked unless turned off");
        assert_eq!(c.quarantine_plan, None);
    }

    #[test]
    fn every_variable_is_read() {
        let c = env(&[
            (TABLE, "guard-table"),
            (ACCOUNT_ID, "210987654321"),
            (REGION, "eu-west-1"),
            (TOPIC_ARN, "arn:aws:sns:eu-west-1:210987654321:dowguard"),
            (MODE, "enforce"),
            (ALARM_PREFIX, "dg-"),
            (FREE_TIER, "false"),
            (AUDIT_RETENTION_DAYS, "30"),
            (MAX_EVENT_AGE_MINUTES, "1440"),
            (METRICS_NAMESPACE, "Team/Dowguard"),
            (ALARMS, "every-target"),
            (SCHEDULE_MINUTES, "5"),
            (USAGE_PLAN_INTERVAL_SECONDS, "0"),
            (
                SCHEDULE_RULE_ARN,
                "arn:aws:events:eu-west-1:210987654321:rule/dowguard-evaluator-schedule",
            ),
            (
                ALARM_TOPIC_ARNS,
                " arn:aws:sns:eu-west-1:210987654321:alarms , arn:aws:sns:eu-west-1:210987654321:more.fifo,",
            ),
            (MAX_PASSES_PER_MINUTE, "12"),
            (CALLER_RANKING, "false"),
            (QUARANTINE_PLAN_ID, "q1w2e3"),
        ])
        .expect("valid");
        assert!(!c.caller_ranking);
        assert_eq!(c.quarantine_plan.as_ref().map(|p| p.as_str()), Some("q1w2e3"));
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(
            c.topic_arn.as_deref(),
            Some("arn:aws:sns:eu-west-1:210987654321:dowguard")
        );
        assert_eq!(c.alarm_prefix, "dg-");
        assert_eq!(c.alarms, AlarmScope::EveryTarget);
        assert_eq!(c.schedule_minutes, 5);
        assert_eq!(c.audit_retention, Duration::days(30));
        assert_eq!(c.max_event_age, Duration::minutes(1440));
        assert_eq!(c.metrics_namespace, "Team/Dowguard");
        assert_eq!(c.usage_plan_interval, std::time::Duration::ZERO);
        assert_eq!(
            c.schedule_rule_arn.as_deref(),
            Some("arn:aws:events:eu-west-1:210987654321:rule/dowguard-evaluator-schedule")
        );
        assert_eq!(
            c.alarm_topic_arns,
            vec![
                "arn:aws:sns:eu-west-1:210987654321:alarms".to_string(),
                "arn:aws:sns:eu-west-1:210987654321:more.fifo".to_string()
            ]
        );
        assert_eq!(c.max_passes_per_minute, 12);
    }

    #[test]
    fn the_free_tier_is_refused_naming_the_variable_why_and_what_to_do() {
        for value in ["true", "1", "yes"] {
            let mut pairs = BASE.to_vec();
            pairs.push((FREE_TIER, value));
            let err = env(&pairs).expect_err(value);
            assert!(
                matches!(err, ConfigError::Refused { name: FREE_TIER, .. }),
                "{err}"
            );
            let text = err.to_string();
            for needed in [
                FREE_TIER,
                "is refused",
                "whole account's month-to-date usage",
                "$0 of spend",
                "Leave it false",
                "err on the high side by at most the free tier's value",
            ] {
                assert!(text.contains(needed), "{needed:?} missing from: {text}");
            }
        }
        for fine in ["false", "0", "no", ""] {
            let mut pairs = BASE.to_vec();
            pairs.push((FREE_TIER, fine));
            assert!(env(&pairs).is_ok(), "{fine:?}");
        }
        assert!(env(BASE).is_ok(), "unset");
    }

    #[test]
    fn a_missing_variable_names_itself() {
        for missing in [TABLE, ACCOUNT_ID, REGION] {
            let pairs: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != missing).collect();
            let err = env(&pairs).expect_err(missing);
            assert!(
                matches!(err, ConfigError::Missing { name, .. } if name == missing),
                "{err}"
            );
            assert!(err.to_string().contains(missing), "{err}");
        }
    }

    #[test]
    fn a_bad_variable_names_itself_and_says_what_is_expected() {
        let cases = [
            (ACCOUNT_ID, "12345", "12-digit"),
            (TABLE, "a b", "table name"),
            (MODE, "yolo", "dry-run or enforce"),
            (FREE_TIER, "maybe", "false (true is refused)"),
            (
                SCHEDULE_RULE_ARN,
                "dowguard-evaluator-schedule",
                "rule in this account and region",
            ),
            (
                SCHEDULE_RULE_ARN,
                "arn:aws:events:us-east-1:999999999999:rule/dowguard",
                "rule in this account and region",
            ),
            (
                ALARM_TOPIC_ARNS,
                "arn:aws:sns:us-east-1:123456789012:ok,arn:aws:sns:eu-west-1:123456789012:elsewhere",
                "SNS topic ARNs of this account and region",
            ),
            (MAX_PASSES_PER_MINUTE, "0", "1 to 1000"),
            (AUDIT_RETENTION_DAYS, "0", "1 to 3650"),
            (MAX_EVENT_AGE_MINUTES, "ten", "1 to 10080"),
            (ALARM_PREFIX, "bad prefix*", "letters"),
            (TOPIC_ARN, "not-an-arn", "SNS topic ARN"),
            (METRICS_NAMESPACE, "AWS/Lambda", "not starting with AWS/"),
            (REGION, "US EAST", "region code"),
            (USAGE_PLAN_INTERVAL_SECONDS, "-1", "0 to 300"),
            (ALARMS, "true", "needed, every-target or none"),
            (SCHEDULE_MINUTES, "0", "1 to 60"),
            (SCHEDULE_MINUTES, "90", "1 to 60"),
        ];
        for (name, value, hint) in cases {
            let mut pairs: Vec<(&str, &str)> = BASE.iter().copied().filter(|(k, _)| *k != name).collect();
            pairs.push((name, value));
            let err = env(&pairs).expect_err(name);
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(hint), "{text}");
        }
    }
}
