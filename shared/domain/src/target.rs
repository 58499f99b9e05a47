//! Targets: the things that cost money and can be throttled, their identifiers, and
//! the limits they carry.
//!
//! Identifiers are parsed, never assumed: `function:NAME` (or a Lambda function ARN),
//! `rest-stage:API_ID/STAGE`, `http-stage:API_ID/STAGE` and `usage-plan:PLAN_ID`.
//!
//! ```
//! use dowguard_domain::{TargetId, TargetKind};
//!
//! let from_arn = TargetId::parse("arn:aws:lambda:us-east-1:123456789012:function:checkout")?;
//! assert_eq!(from_arn, TargetId::parse("function:checkout")?);
//! assert_eq!(TargetId::parse("http-stage:a1b2c3/$default")?.kind(), TargetKind::HttpStage);
//! assert!(TargetId::parse("rest-stage:missing-a-stage").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why an identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {what}: {reason}")]
pub struct IdError {
    /// What kind of identifier was expected.
    pub what: &'static str,
    /// The rejected text (truncated if very long).
    pub value: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

fn id_error(what: &'static str, value: &str, reason: impl Into<String>) -> IdError {
    let mut shown: String = value.chars().take(80).collect();
    if value.chars().count() > 80 {
        shown.push('…');
    }
    IdError {
        what,
        value: shown,
        reason: reason.into(),
    }
}

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates the identifier.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(value).map_err(|reason| id_error($what, value, reason))?;
                Ok(Self(value.to_string()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

fn charset(value: &str, min: usize, max: usize, allowed: fn(char) -> bool, hint: &str) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(format!("must be {min} to {max} characters long ({hint})"));
    }
    if let Some(bad) = value.chars().find(|c| !allowed(*c)) {
        return Err(format!("character {bad:?} is not allowed ({hint})"));
    }
    Ok(())
}

string_newtype!(
    /// A Lambda function name (1–64 letters, digits, `-` or `_`).
    FunctionName,
    "Lambda function name",
    |v| charset(v, 1, 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_', "letters, digits, - and _")
);

string_newtype!(
    /// An API Gateway API id (REST or HTTP): lowercase letters and digits.
    ApiId,
    "API id",
    |v| charset(v, 1, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), "lowercase letters and digits, e.g. a1b2c3d4e5")
);

impl ApiId {
    /// The logical id of an API declared in a CloudFormation or SAM template, standing
    /// for the API id it will get when deployed (`dowguard audit --template`). A
    /// logical id is alphanumeric (`A-Za-z0-9`, "Resources" in the CloudFormation
    /// template anatomy), so it may hold capitals a deployed API id never has.
    pub fn logical(value: &str) -> Result<Self, IdError> {
        charset(
            value,
            1,
            255,
            |c| c.is_ascii_alphanumeric(),
            "letters and digits: a template's logical id",
        )
        .map_err(|reason| id_error("logical id", value, reason))?;
        Ok(ApiId(value.to_string()))
    }
}

string_newtype!(
    /// An API Gateway stage name (`$default` is allowed for HTTP APIs).
    StageName,
    "stage name",
    |v| if v == "$default" {
        Ok(())
    } else {
        charset(v, 1, 128, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_', "letters, digits, - and _")
    }
);

string_newtype!(
    /// An API Gateway usage plan id.
    UsagePlanId,
    "usage plan id",
    |v| charset(v, 1, 32, |c| c.is_ascii_alphanumeric(), "letters and digits, e.g. a1b2c3")
);

/// What kind of thing a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A Lambda function.
    Function,
    /// A REST API stage.
    RestStage,
    /// An HTTP API stage.
    HttpStage,
    /// An API Gateway usage plan.
    UsagePlan,
}

impl TargetKind {
    /// The prefix used in target identifiers.
    pub fn prefix(self) -> &'static str {
        match self {
            TargetKind::Function => "function",
            TargetKind::RestStage => "rest-stage",
            TargetKind::HttpStage => "http-stage",
            TargetKind::UsagePlan => "usage-plan",
        }
    }
}

/// The identity of a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TargetId {
    /// A Lambda function (unqualified: the function's own reserved concurrency).
    Function(FunctionName),
    /// A REST API stage.
    RestStage(ApiId, StageName),
    /// An HTTP API stage.
    HttpStage(ApiId, StageName),
    /// A usage plan.
    UsagePlan(UsagePlanId),
}

const TARGET_FORMS: &str = "function:NAME, rest-stage:API_ID/STAGE, http-stage:API_ID/STAGE, usage-plan:PLAN_ID or a Lambda function ARN";

impl TargetId {
    /// Parses `function:NAME`, `rest-stage:API/STAGE`, `http-stage:API/STAGE`,
    /// `usage-plan:ID` or `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.starts_with("arn:") {
            return parse_lambda_arn(value);
        }
        let Some((kind, rest)) = value.split_once(':') else {
            return Err(id_error(
                "target",
                value,
                format!("expected one of {TARGET_FORMS}"),
            ));
        };
        let stage = |rest: &str| -> Result<(ApiId, StageName), IdError> {
            let (api, stage) = rest
                .split_once('/')
                .ok_or_else(|| id_error("target", value, "a stage is written API_ID/STAGE"))?;
            Ok((ApiId::parse(api)?, StageName::parse(stage)?))
        };
        match kind {
            "function" | "lambda" => Ok(TargetId::Function(FunctionName::parse(rest)?)),
            "rest-stage" => stage(rest).map(|(a, s)| TargetId::RestStage(a, s)),
            "http-stage" => stage(rest).map(|(a, s)| TargetId::HttpStage(a, s)),
            "usage-plan" => Ok(TargetId::UsagePlan(UsagePlanId::parse(rest)?)),
            other => Err(id_error(
                "target",
                value,
                format!("unknown target kind `{other}`; expected one of {TARGET_FORMS}"),
            )),
        }
    }

    /// The kind of target.
    pub fn kind(&self) -> TargetKind {
        match self {
            TargetId::Function(_) => TargetKind::Function,
            TargetId::RestStage(..) => TargetKind::RestStage,
            TargetId::HttpStage(..) => TargetKind::HttpStage,
            TargetId::UsagePlan(_) => TargetKind::UsagePlan,
        }
    }
}

fn parse_lambda_arn(value: &str) -> Result<TargetId, IdError> {
    let parts: Vec<&str> = value.split(':').collect();
    let bad = |reason: &str| id_error("Lambda function ARN", value, reason.to_string());
    if parts.len() < 7 || parts.len() > 8 {
        return Err(bad("expected arn:aws:lambda:REGION:ACCOUNT:function:NAME"));
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov") {
        return Err(bad("the partition must be aws, aws-cn or aws-us-gov"));
    }
    if parts[2] != "lambda" || parts[5] != "function" {
        return Err(bad("only Lambda function ARNs name a function target"));
    }
    if parts[3].is_empty()
        || !parts[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(bad("the region is missing or malformed"));
    }
    if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("the account must be 12 digits"));
    }
    if parts.len() == 8 {
        return Err(bad(
            "qualified ARNs (versions, aliases) are not guarded; use the function itself",
        ));
    }
    Ok(TargetId::Function(FunctionName::parse(parts[6])?))
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetId::Function(name) => write!(f, "function:{name}"),
            TargetId::RestStage(api, stage) => write!(f, "rest-stage:{api}/{stage}"),
            TargetId::HttpStage(api, stage) => write!(f, "http-stage:{api}/{stage}"),
            TargetId::UsagePlan(id) => write!(f, "usage-plan:{id}"),
        }
    }
}

impl FromStr for TargetId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for TargetId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<TargetId> for String {
    fn from(value: TargetId) -> String {
        value.to_string()
    }
}

/// Instruction set architecture of a Lambda function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// x86_64 (the Lambda default).
    #[default]
    X86_64,
    /// arm64 (Graviton).
    Arm64,
}

/// What the guard knows about a target's shape, from discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetSpec {
    /// A Lambda function.
    Function {
        /// Configured memory in MB.
        memory_mb: u32,
        /// Architecture, which decides the GB-second price.
        arch: Arch,
        /// True if the function is invoked asynchronously (events are queued by
        /// Lambda and replayed after throttling ends).
        async_invoked: bool,
    },
    /// A REST API stage.
    RestStage,
    /// An HTTP API stage.
    HttpStage,
    /// A usage plan; its requests are priced at REST API rates.
    UsagePlan,
}

/// A request-rate throttle (API Gateway stage or usage plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Steady-state requests per second. AWS stores a double; the original value is
    /// kept exactly so that a restore writes back what was there.
    pub rate_limit: Decimal,
    /// Bucket size (burst) in requests.
    pub burst_limit: u32,
}

/// The period a usage-plan quota counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuotaPeriod {
    /// Per day.
    Day,
    /// Per week.
    Week,
    /// Per month.
    Month,
}

/// A usage-plan quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// Requests allowed per period, per API key.
    pub limit: u64,
    /// The period the limit counts over.
    pub period: QuotaPeriod,
    /// Days (or weeks) the period is offset by.
    #[serde(default)]
    pub offset: u32,
}

/// A Lambda function's asynchronous invocation config, whole: Lambda's
/// `PutFunctionEventInvokeConfig` replaces the config and removes every setting it
/// is not given, so the guard models every setting it must give back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncConfig {
    /// Maximum age of a queued event in seconds (60–21,600), `None` for the default.
    pub max_event_age_s: Option<u32>,
    /// Retry attempts (0–2), `None` for the default.
    pub max_retry_attempts: Option<u32>,
    /// Where Lambda sends a record of each successful invocation (an ARN), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<String>,
    /// Where Lambda sends a record of each event that failed every attempt or
    /// expired (an ARN), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
}

/// The limits a target carries: what the guard reads, changes and restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Limits {
    /// A Lambda function's limits.
    Function {
        /// Reserved concurrency; `None` means the function draws on the unreserved pool.
        reserved_concurrency: Option<u32>,
        /// Asynchronous invocation config; `None` means none is set.
        async_config: Option<AsyncConfig>,
    },
    /// A stage's default (`/*/*` or default-route) throttle and the throttles of its
    /// methods or routes that override it. `None` means unthrottled at that level
    /// (the account's limits still apply).
    Stage {
        /// The stage throttle.
        throttle: Option<Throttle>,
        /// Each method (REST: its method-settings key, e.g. `~1orders/GET`) or route
        /// (HTTP: its route key, e.g. `GET /orders`) that carries a throttle of its
        /// own, which applies to it instead of the stage's.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        overrides: BTreeMap<String, Option<Throttle>>,
    },
    /// A usage plan's throttle and quota.
    UsagePlan {
        /// The plan's throttle.
        throttle: Option<Throttle>,
        /// The plan's quota.
        quota: Option<Quota>,
    },
}

impl Limits {
    /// A stage's limits with no method or route overrides.
    pub fn stage(throttle: Option<Throttle>) -> Limits {
        Limits::Stage {
            throttle,
            overrides: BTreeMap::new(),
        }
    }

    /// The limits a target of this kind has when nothing is set.
    pub fn unset(kind: TargetKind) -> Limits {
        match kind {
            TargetKind::Function => Limits::Function {
                reserved_concurrency: None,
                async_config: None,
            },
            TargetKind::RestStage | TargetKind::HttpStage => Limits::stage(None),
            TargetKind::UsagePlan => Limits::UsagePlan {
                throttle: None,
                quota: None,
            },
        }
    }
}

/// The tag key that lets the guard change a resource. The SAM template's write
/// permissions carry the condition `aws:ResourceTag/dowguard-guarded = true`, so AWS
/// refuses the guard's changes to a resource whose tags, as IAM reads them, lack it.
pub const GUARD_TAG: &str = "dowguard-guarded";

/// The value [`GUARD_TAG`] must have. IAM's `StringEquals` is case-sensitive.
pub const GUARD_TAG_VALUE: &str = "true";

/// True when `tags` (the tags IAM evaluates on a resource) allow the guard's writes.
pub fn tags_allow_guard(tags: &BTreeMap<String, String>) -> bool {
    tags.get(GUARD_TAG).is_some_and(|v| v == GUARD_TAG_VALUE)
}

/// Why a target without the guard's tag cannot be throttled, for its kind.
pub fn unguarded_why(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::HttpStage => {
            "the stage itself is not tagged dowguard-guarded=true (HTTP API stages do not inherit their API's tags): the guard may not change it"
        }
        TargetKind::RestStage => {
            "neither the stage nor its REST API is tagged dowguard-guarded=true: the guard may not change it"
        }
        TargetKind::Function | TargetKind::UsagePlan => {
            "not tagged dowguard-guarded=true: the guard may not change it"
        }
    }
}

fn yes() -> bool {
    true
}

/// A discovered target: identity, shape, tags and current limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Identity.
    pub id: TargetId,
    /// Shape (memory, architecture, API type).
    pub spec: TargetSpec,
    /// Resource tags, for tag-group budgets. A stage also carries its API's tags here.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The limits the target has right now.
    pub limits: Limits,
    /// Whether the guard may change the target: the tags IAM evaluates on the
    /// resource itself carry `dowguard-guarded=true`. A REST API stage inherits its
    /// API's tags for that purpose; an HTTP API stage does not (AWS: "API Gateway
    /// resources that can be tagged"). A target the guard may not change is
    /// measured, priced and reported, and never throttled.
    #[serde(default = "yes")]
    pub guarded: bool,
    /// For a REST API stage, the usage plans whose API stages include it. A budget
    /// on a usage plan covers these stages: AWS applies a plan's throttle and quota
    /// per API key, as targets it does not promise to keep, so the stage throttle is
    /// what caps the plan's money.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub usage_plans: BTreeSet<UsagePlanId>,
}

impl Target {
    /// A target the guard may change, in no usage plan.
    pub fn new(id: TargetId, spec: TargetSpec, tags: BTreeMap<String, String>, limits: Limits) -> Self {
        Target {
            id,
            spec,
            tags,
            limits,
            guarded: true,
            usage_plans: BTreeSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_target_form_and_prints_it_back() {
        for text in [
            "function:checkout-api",
            "rest-stage:a1b2c3d4e5/prod",
            "http-stage:a1b2c3d4e5/$default",
            "usage-plan:abc123",
        ] {
            let id = TargetId::parse(text).expect(text);
            assert_eq!(id.to_string(), text);
        }
        let arn = TargetId::parse("arn:aws:lambda:eu-west-1:123456789012:function:resize").expect("arn");
        assert_eq!(arn.to_string(), "function:resize");
    }

    #[test]
    fn rejects_malformed_targets_with_a_reason() {
        let cases = [
            ("function:", "1 to 64"),
            ("function:has space", "not allowed"),
            ("function:name;rm -rf", "not allowed"),
            ("queue:orders", "unknown target kind"),
            ("rest-stage:a1b2c3d4e5", "API_ID/STAGE"),
            ("rest-stage:UPPER/prod", "lowercase"),
            ("arn:aws:s3:::bucket", "expected arn:aws:lambda"),
            ("arn:aws:lambda:us-east-1:123:function:f", "12 digits"),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:live",
                "qualified",
            ),
            ("checkout", "expected one of"),
        ];
        for (text, needle) in cases {
            let err = TargetId::parse(text).expect_err(text);
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn limits_stored_before_overrides_and_destinations_still_load() {
        let stage: Limits =
            serde_json::from_str(r#"{"kind":"stage","throttle":{"rate_limit":"10.5","burst_limit":20}}"#)
                .expect("a stage stored without overrides");
        assert_eq!(
            stage,
            Limits::stage(Some(Throttle {
                rate_limit: Decimal::new(105, 1),
                burst_limit: 20
            }))
        );
        let function: Limits = serde_json::from_str(
            r#"{"kind":"function","reserved_concurrency":5,"async_config":{"max_event_age_s":60,"max_retry_attempts":null}}"#,
        )
        .expect("an async config stored without destinations");
        let Limits::Function {
            async_config: Some(config),
            ..
        } = &function
        else {
            panic!("{function:?}");
        };
        assert_eq!((&config.on_success, &config.on_failure), (&None, &None));
        // And what has none is written as before.
        assert_eq!(
            serde_json::to_string(&Limits::stage(None)).expect("json"),
            r#"{"kind":"stage","throttle":null}"#
        );
    }

    #[test]
    fn long_rejected_values_are_truncated_in_messages() {
        let long = format!("function:{}", "x".repeat(5000));
        let err = TargetId::parse(&long).expect_err("too long");
        assert!(err.to_string().len() < 300, "{err}");
    }
}
