//! The functions' configuration: every environment variable read once, at start,
//! into a typed [`Config`]. A missing or malformed variable is an error that names
//! it and says what it should look like.

use chrono::Duration;
use dowguard_domain::Mode;

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
/// Whether the monthly free tier is counted.
pub const FREE_TIER: &str = "DOWGUARD_FREE_TIER";
/// Days audit records are kept.
pub const AUDIT_RETENTION_DAYS: &str = "DOWGUARD_AUDIT_RETENTION_DAYS";
/// Oldest event (minutes) a function still acts on.
pub const MAX_EVENT_AGE_MINUTES: &str = "DOWGUARD_MAX_EVENT_AGE_MINUTES";
/// The CloudWatch namespace of the guard's own metrics.
pub const METRICS_NAMESPACE: &str = "DOWGUARD_METRICS_NAMESPACE";
/// Whether the evaluator keeps the alarms in step with the budgets.
pub const ALARM_SYNC: &str = "DOWGUARD_ALARM_SYNC";

/// Least seconds between two UpdateUsagePlan calls (AWS allows about one per 20 s).
pub const USAGE_PLAN_INTERVAL_SECONDS: &str = "DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS";

/// Every variable, for docs and tests.
pub const ALL_VARIABLES: &[&str] = &[
    TABLE,
    TOPIC_ARN,
    ACCOUNT_ID,
    REGION,
    MODE,
    ALARM_PREFIX,
    FREE_TIER,
    AUDIT_RETENTION_DAYS,
    MAX_EVENT_AGE_MINUTES,
    METRICS_NAMESPACE,
    ALARM_SYNC,
    USAGE_PLAN_INTERVAL_SECONDS,
];

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
    /// [`FREE_TIER`], default false.
    pub free_tier: bool,
    /// [`AUDIT_RETENTION_DAYS`], default 90.
    pub audit_retention: Duration,
    /// [`MAX_EVENT_AGE_MINUTES`], default 10.
    pub max_event_age: Duration,
    /// [`METRICS_NAMESPACE`], default `Dowguard`.
    pub metrics_namespace: String,
    /// [`ALARM_SYNC`], default true.
    pub alarm_sync: bool,
    /// [`USAGE_PLAN_INTERVAL_SECONDS`], default 20.
    pub usage_plan_interval: std::time::Duration,
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
        let boolean = |name: &'static str, default: bool| match get(name).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(other) => Err(invalid(name, other, "true or false")),
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
        Ok(Config {
            table,
            topic_arn,
            account_id,
            region,
            mode,
            alarm_prefix,
            free_tier: boolean(FREE_TIER, false)?,
            audit_retention: Duration::days(number(AUDIT_RETENTION_DAYS, 90, 3650, "whole days, 1 to 3650")?),
            max_event_age: Duration::minutes(number(
                MAX_EVENT_AGE_MINUTES,
                10,
                10_080,
                "whole minutes, 1 to 10080",
            )?),
            metrics_namespace,
            alarm_sync: boolean(ALARM_SYNC, true)?,
            usage_plan_interval: std::time::Duration::from_secs(match get(USAGE_PLAN_INTERVAL_SECONDS) {
                None => 20,
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 300)
                    .ok_or_else(|| invalid(USAGE_PLAN_INTERVAL_SECONDS, &v, "whole seconds, 0 to 300"))?,
            }),
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
        assert!(!c.free_tier && c.alarm_sync);
        assert_eq!(c.audit_retention, Duration::days(90));
        assert_eq!(c.max_event_age, Duration::minutes(10));
        assert_eq!(c.metrics_namespace, "Dowguard");
        assert_eq!(c.usage_plan_interval, std::time::Duration::from_secs(20));
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
            (FREE_TIER, "true"),
            (AUDIT_RETENTION_DAYS, "30"),
            (MAX_EVENT_AGE_MINUTES, "1440"),
            (METRICS_NAMESPACE, "Team/Dowguard"),
            (ALARM_SYNC, "false"),
            (USAGE_PLAN_INTERVAL_SECONDS, "0"),
        ])
        .expect("valid");
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(
            c.topic_arn.as_deref(),
            Some("arn:aws:sns:eu-west-1:210987654321:dowguard")
        );
        assert_eq!(c.alarm_prefix, "dg-");
        assert!(c.free_tier && !c.alarm_sync);
        assert_eq!(c.audit_retention, Duration::days(30));
        assert_eq!(c.max_event_age, Duration::minutes(1440));
        assert_eq!(c.metrics_namespace, "Team/Dowguard");
        assert_eq!(c.usage_plan_interval, std::time::Duration::ZERO);
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
            (FREE_TIER, "maybe", "true or false"),
            (AUDIT_RETENTION_DAYS, "0", "1 to 3650"),
            (MAX_EVENT_AGE_MINUTES, "ten", "1 to 10080"),
            (ALARM_PREFIX, "bad prefix*", "letters"),
            (TOPIC_ARN, "not-an-arn", "SNS topic ARN"),
            (METRICS_NAMESPACE, "AWS/Lambda", "not starting with AWS/"),
            (REGION, "US EAST", "region code"),
            (USAGE_PLAN_INTERVAL_SECONDS, "-1", "0 to 300"),
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
