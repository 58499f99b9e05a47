//! CloudWatch Contributor Insights: the rules that rank a stage's callers, and the
//! reports that read the ranking back as [`StageSources`] for the core.
//!
//! - [`rankable`] reads a stage's access-log settings (destination ARN and format)
//!   and says which callers its log names and in which log group, or why the stage
//!   cannot be ranked.
//! - [`rule_name`] and [`rule_definition`] build the rule a stage needs for one
//!   [`CallerKind`]; [`wanted_rules`] builds every rule of one stage.
//! - [`InsightRules`] keeps the account's rules in step with the wanted ones, like
//!   the alarm sync ([`crate::alarms`]): `PutInsightRule`, `DescribeInsightRules`,
//!   `DeleteInsightRules`, never touching a rule outside its name prefix; and reads
//!   a rule's ranking with `GetInsightRuleReport` ([`InsightRules::report`]).
//! - The rules' price is the domain's (`dowguard_domain::GuardCost::of_rules`,
//!   `of_matched_events`).
//!
//! The rule syntax is "Contributor Insights rule syntax in CloudWatch" (CloudWatch
//! User Guide); the calls are those of the CloudWatch API reference
//! ("PutInsightRule", "DescribeInsightRules", "DeleteInsightRules",
//! "GetInsightRuleReport").

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::operation::get_insight_rule_report::GetInsightRuleReportOutput;
use aws_smithy_types::DateTime as SmithyDateTime;
use chrono::{DateTime, Utc};
use dowguard_domain::source::{Source, StageSources};
use dowguard_guard::PortResult;
use serde_json::{Map, Value, json};

use crate::error::{invalid, port_error};

/// The name prefix of every rule dowguard keeps; only rules under it are ever
/// deleted.
pub const RULE_PREFIX: &str = "dowguard-callers-";

/// The longest rule name `PutInsightRule` takes (`RuleName`: 1 to 128 printable
/// ASCII characters, "PutInsightRule", CloudWatch API reference).
pub const MAX_RULE_NAME: usize = 128;

/// Most contributors one report returns (`MaxContributorCount`: 1 to 100,
/// "GetInsightRuleReport").
pub const MAX_CONTRIBUTORS: i32 = 100;

/// The report's period: one minute, the rule's resolution.
pub const REPORT_PERIOD_SECONDS: i32 = 60;

/// Which callers a rule ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallerKind {
    /// Client addresses (`$context.identity.sourceIp`).
    Address,
    /// API keys (`$context.identity.apiKeyId`).
    ApiKey,
}

impl CallerKind {
    /// Both kinds.
    pub const ALL: [CallerKind; 2] = [CallerKind::Address, CallerKind::ApiKey];

    /// The API Gateway context variable the access log format writes the caller
    /// with ("Set up CloudWatch logging for REST APIs in API Gateway").
    pub fn context_variable(self) -> &'static str {
        match self {
            CallerKind::Address => "$context.identity.sourceIp",
            CallerKind::ApiKey => "$context.identity.apiKeyId",
        }
    }

    /// The kind in a rule name.
    pub fn slug(self) -> &'static str {
        match self {
            CallerKind::Address => "addresses",
            CallerKind::ApiKey => "api-keys",
        }
    }

    /// The source a contributor's key names.
    pub fn source(self, key: &str) -> Source {
        match self {
            CallerKind::Address => Source::Address(key.to_string()),
            CallerKind::ApiKey => Source::ApiKey(key.to_string()),
        }
    }
}

/// A stage's access log, as far as ranking its callers goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankableLog {
    /// The CloudWatch Logs group the log goes to.
    pub log_group: String,
    /// Each caller kind the format logs, with the JSON path of its field
    /// (`$.ip`).
    pub fields: BTreeMap<CallerKind, String>,
    /// The JSON path of the integration latency, when the format logs it
    /// (`$context.integrationLatency` or `$context.integration.latency`, "API
    /// Gateway access logging variables"): the time the integration, a function
    /// behind the stage, took, so that its callers are ranked by that cost.
    pub cost_field: Option<String>,
}

/// The context variables that log a request's integration latency in ms.
pub const COST_VARIABLES: [&str; 2] = ["$context.integrationLatency", "$context.integration.latency"];

/// Why a stage's callers cannot be ranked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unrankable {
    /// The stage has no access logs.
    #[error("the stage has no access logs")]
    NoAccessLogs,
    /// The access logs go somewhere Contributor Insights does not read.
    #[error("access logs go to {0}, not to a CloudWatch Logs group")]
    NotCloudWatchLogs(String),
    /// The format is not a JSON object.
    #[error("the access log format is not JSON")]
    NotJson,
    /// The format logs neither the caller's address nor its API key as a field of
    /// its own.
    #[error(
        "the access log format logs neither $context.identity.sourceIp nor $context.identity.apiKeyId as a field"
    )]
    NoCallerField,
}

/// What a stage's access log settings (`accessLogSettings`: `destinationArn`,
/// `format`) offer for ranking its callers.
///
/// The format must be a JSON object (a bare `$context` variable as a value is
/// read as if quoted); a caller field is one whose whole value is the context
/// variable, at any depth, with plain names (letters, digits, `_`, `-`).
///
/// # Errors
/// [`Unrankable`] says why the stage cannot be ranked.
pub fn rankable(destination_arn: Option<&str>, format: Option<&str>) -> Result<RankableLog, Unrankable> {
    let destination = destination_arn
        .filter(|d| !d.is_empty())
        .ok_or(Unrankable::NoAccessLogs)?;
    let log_group =
        log_group_of(destination).ok_or_else(|| Unrankable::NotCloudWatchLogs(destination.into()))?;
    let format = format
        .filter(|f| !f.trim().is_empty())
        .ok_or(Unrankable::NotJson)?;
    let parsed = serde_json::from_str::<Value>(format)
        .or_else(|_| serde_json::from_str::<Value>(&quote_bare_variables(format)))
        .map_err(|_| Unrankable::NotJson)?;
    let Value::Object(object) = parsed else {
        return Err(Unrankable::NotJson);
    };
    let mut fields = BTreeMap::new();
    for kind in CallerKind::ALL {
        if let Some(path) = path_of(&object, kind.context_variable(), "$") {
            fields.insert(kind, path);
        }
    }
    if fields.is_empty() {
        return Err(Unrankable::NoCallerField);
    }
    let cost_field = COST_VARIABLES
        .iter()
        .find_map(|variable| path_of(&object, variable, "$"));
    Ok(RankableLog {
        log_group,
        fields,
        cost_field,
    })
}

/// The log group of a CloudWatch Logs ARN
/// (`arn:aws:logs:us-east-1:123456789012:log-group:NAME`, perhaps ending `:*`).
fn log_group_of(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("logs")) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let rest = parts.nth(2)?;
    let name = rest.strip_prefix("log-group:")?;
    let name = name.strip_suffix(":*").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_string())
}

/// The format with every unquoted `$context…` value quoted, so that a format
/// writing numbers bare (`"status": $context.status`) still parses.
fn quote_bare_variables(format: &str) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '$' => {
                out.push('"');
                out.push(c);
                while let Some(&next) = chars.peek() {
                    if next.is_ascii_alphanumeric() || matches!(next, '.' | '_' | '$') {
                        out.push(next);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push('"');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The JSON path (`$.a.b`) of the first field whose value is exactly `variable`.
fn path_of(object: &Map<String, Value>, variable: &str, prefix: &str) -> Option<String> {
    for (key, value) in object {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            continue;
        }
        let path = format!("{prefix}.{key}");
        match value {
            Value::String(s) if s.trim() == variable => return Some(path),
            Value::Object(inner) => {
                if let Some(found) = path_of(inner, variable, &path) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

/// The rule's name for `kind` on stage `stage` of API `api`:
/// `dowguard-callers-<api>-<stage>-<kind>`. A name longer than
/// [`MAX_RULE_NAME`] keeps its start and ends with a hash of the whole name, so
/// it stays unique and the same from one pass to the next.
pub fn rule_name(api: &str, stage: &str, kind: CallerKind) -> String {
    let full = format!("{RULE_PREFIX}{api}-{stage}-{}", kind.slug());
    let printable: String = full
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '_' })
        .collect();
    if printable.len() <= MAX_RULE_NAME && printable == full {
        return full;
    }
    let tail = format!("-{:016x}-{}", fnv1a(&full), kind.slug());
    let keep = MAX_RULE_NAME.saturating_sub(tail.len()).min(printable.len());
    format!("{}{tail}", &printable[..keep])
}

/// FNV-1a, 64 bits: a hash that is the same in every build and process.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The rule body that ranks the events of `log_group` by the field at
/// `field_path`: by the sum of the field at `value_of` where the log carries the
/// integration latency (the cost of the function behind the stage), else by
/// count ("Contributor Insights rule syntax in CloudWatch": `Schema`
/// `CloudWatchLogRule` version 1, `LogFormat` `JSON`, `Contribution.Keys`,
/// `Contribution.ValueOf` with `AggregateOn` `Sum`, or `AggregateOn` `Count`).
pub fn rule_definition(log_group: &str, field_path: &str, value_of: Option<&str>) -> String {
    let (contribution, aggregate) = match value_of {
        Some(value) => (json!({ "Keys": [field_path], "ValueOf": value }), "Sum"),
        None => (json!({ "Keys": [field_path] }), "Count"),
    };
    json!({
        "Schema": { "Name": "CloudWatchLogRule", "Version": 1 },
        "LogGroupNames": [log_group],
        "LogFormat": "JSON",
        "Contribution": contribution,
        "AggregateOn": aggregate,
    })
    .to_string()
}

/// A rule dowguard wants kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WantedRule {
    /// Its name ([`rule_name`]).
    pub name: String,
    /// Which callers it ranks.
    pub kind: CallerKind,
    /// Its body ([`rule_definition`]).
    pub definition: String,
}

/// The rules stage `stage` of API `api` needs: one per caller kind its log names.
pub fn wanted_rules(api: &str, stage: &str, log: &RankableLog) -> Vec<WantedRule> {
    log.fields
        .iter()
        .map(|(kind, path)| WantedRule {
            name: rule_name(api, stage, *kind),
            kind: *kind,
            definition: rule_definition(&log.log_group, path, log.cost_field.as_deref()),
        })
        .collect()
}

/// A rule of the account under dowguard's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRule {
    /// Its name.
    pub name: String,
    /// Its body as CloudWatch holds it.
    pub definition: String,
    /// `ENABLED` or `DISABLED`.
    pub state: String,
}

/// What a sync changes: the rules to put (new, changed or disabled) and the names
/// to delete (under the prefix and no longer wanted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RulePlan {
    /// Rules to put.
    pub put: Vec<WantedRule>,
    /// Rule names to delete.
    pub delete: Vec<String>,
}

/// The changes that bring `existing` to `wanted`. A rule is put again when its
/// body differs as JSON or it is not enabled; a rule outside `prefix` is never
/// deleted.
pub fn plan_rules(prefix: &str, wanted: &[WantedRule], existing: &[ExistingRule]) -> RulePlan {
    let held: BTreeMap<&str, &ExistingRule> = existing.iter().map(|r| (r.name.as_str(), r)).collect();
    let put = wanted
        .iter()
        .filter(|w| {
            held.get(w.name.as_str())
                .is_none_or(|e| e.state != "ENABLED" || !same_json(&e.definition, &w.definition))
        })
        .cloned()
        .collect();
    let names: BTreeSet<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
    let delete = existing
        .iter()
        .filter(|e| e.name.starts_with(prefix) && !names.contains(e.name.as_str()))
        .map(|e| e.name.clone())
        .collect();
    RulePlan { put, delete }
}

fn same_json(a: &str, b: &str) -> bool {
    match (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// dowguard's Contributor Insights rules in one account and region.
#[derive(Debug, Clone)]
pub struct InsightRules {
    client: Client,
    prefix: String,
}

impl InsightRules {
    /// Rules named [`RULE_PREFIX`]`…` through `client`.
    pub fn new(client: Client) -> Self {
        InsightRules {
            client,
            prefix: RULE_PREFIX.to_string(),
        }
    }

    /// The name prefix dowguard owns.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every rule under the prefix. `DescribeInsightRules` has no name filter: the
    /// account's rules are listed, page by page, and the others left out.
    pub async fn list(&self) -> PortResult<Vec<ExistingRule>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_insight_rules()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| port_error("DescribeInsightRules", &self.prefix, e))?;
            for rule in page.insight_rules() {
                let Some(name) = rule.name().filter(|n| n.starts_with(&self.prefix)) else {
                    continue;
                };
                out.push(ExistingRule {
                    name: name.to_string(),
                    definition: rule.definition().unwrap_or_default().to_string(),
                    state: rule.state().unwrap_or_default().to_string(),
                });
            }
            token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Creates or replaces `rule`, enabled.
    pub async fn put(&self, rule: &WantedRule) -> PortResult<()> {
        if !rule.name.starts_with(&self.prefix) {
            return Err(invalid(
                "PutInsightRule",
                rule.name.as_str(),
                "not under dowguard's rule prefix: refusing to write it",
            ));
        }
        self.client
            .put_insight_rule()
            .rule_name(&rule.name)
            .rule_state("ENABLED")
            .rule_definition(&rule.definition)
            .send()
            .await
            .map_err(|e| port_error("PutInsightRule", &rule.name, e))?;
        Ok(())
    }

    /// Deletes the rules named. Names outside the prefix are refused, never
    /// sent; a rule CloudWatch reports it could not delete is an error.
    pub async fn delete(&self, names: &[String]) -> PortResult<()> {
        if let Some(foreign) = names.iter().find(|n| !n.starts_with(&self.prefix)) {
            return Err(invalid(
                "DeleteInsightRules",
                foreign.as_str(),
                "not one of dowguard's rules: refusing to delete it",
            ));
        }
        if names.is_empty() {
            return Ok(());
        }
        let out = self
            .client
            .delete_insight_rules()
            .set_rule_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| port_error("DeleteInsightRules", &self.prefix, e))?;
        if let Some(failure) = out.failures().first() {
            return Err(invalid(
                "DeleteInsightRules",
                failure.failure_resource().unwrap_or(&self.prefix),
                failure
                    .failure_description()
                    .or(failure.exception_type())
                    .unwrap_or("the rule was not deleted")
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Brings the account's rules under the prefix to `wanted`: puts the new and
    /// changed ones, deletes those no longer wanted. Returns what it changed.
    pub async fn sync(&self, wanted: &[WantedRule]) -> PortResult<RulePlan> {
        let existing = self.list().await?;
        let plan = plan_rules(&self.prefix, wanted, &existing);
        for rule in &plan.put {
            self.put(rule).await?;
        }
        self.delete(&plan.delete).await?;
        Ok(plan)
    }

    /// The ranking of `rule` (which ranks `kind`) over the `window_minutes`
    /// complete minutes before `now`: the top [`MAX_CONTRIBUTORS`] ordered by
    /// `Sum` (with `AggregateOn` `Count`, their requests; `OrderBy` takes `Sum` or
    /// `Maximum`, "GetInsightRuleReport").
    pub async fn report(
        &self,
        rule: &str,
        kind: CallerKind,
        now: DateTime<Utc>,
        window_minutes: i64,
    ) -> PortResult<StageSources> {
        let window_minutes = window_minutes.max(1);
        let through_minute = now.timestamp().div_euclid(60);
        let end = through_minute * 60;
        let start = end - window_minutes * 60;
        let out = self
            .client
            .get_insight_rule_report()
            .rule_name(rule)
            .start_time(SmithyDateTime::from_secs(start))
            .end_time(SmithyDateTime::from_secs(end))
            .period(REPORT_PERIOD_SECONDS)
            .max_contributor_count(MAX_CONTRIBUTORS)
            .metrics("Sum")
            .order_by("Sum")
            .send()
            .await
            .map_err(|e| port_error("GetInsightRuleReport", rule, e))?;
        Ok(sources_of(&out, kind, through_minute, window_minutes))
    }
}

/// A report as the core's [`StageSources`]: each contributor's requests summed
/// over its datapoints (its `ApproximateAggregateValue` when it has none), the
/// total from `AggregateValue` (else the sum of the report's datapoints), the
/// distinct count from `ApproximateUniqueCount`. Neither is ever below what the
/// ranked contributors account for. A contributor whose key is empty or `-` (a
/// request that carried no key) is left out.
pub fn sources_of(
    report: &GetInsightRuleReportOutput,
    kind: CallerKind,
    through_minute: i64,
    window_minutes: i64,
) -> StageSources {
    let mut top: Vec<(Source, u64)> = report
        .contributors()
        .iter()
        .filter_map(|c| {
            let key = c.keys().first()?.trim();
            if key.is_empty() || key == "-" {
                return None;
            }
            let points = c.datapoints();
            let requests = if points.is_empty() {
                count(c.approximate_aggregate_value().unwrap_or_default())
            } else {
                points
                    .iter()
                    .map(|p| count(p.approximate_value().unwrap_or_default()))
                    .sum()
            };
            (requests > 0).then(|| (kind.source(key), requests))
        })
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let ranked: u64 = top.iter().map(|(_, n)| n).sum();
    let total = report.aggregate_value().map_or_else(
        || {
            report
                .metric_datapoints()
                .iter()
                .map(|p| count(p.sum().unwrap_or_default()))
                .sum()
        },
        count,
    );
    let distinct = report
        .approximate_unique_count()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default();
    StageSources {
        through_minute,
        window_minutes,
        total_requests: total.max(ranked),
        distinct: distinct.max(top.len() as u64),
        top,
    }
}

/// A count CloudWatch reports as a double, rounded to whole requests (negative or
/// NaN as 0).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to the u64 range first"
)]
fn count(value: f64) -> u64 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= 18_446_744_073_709_549_568.0 {
        u64::MAX
    } else {
        value.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:logs:us-east-1:123456789012:log-group:API-Gateway-Access-Logs_a1b2c3/prod";

    #[test]
    fn a_json_format_logging_the_address_and_key_ranks_both() {
        let format = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","key":{"id":"$context.identity.apiKeyId"},"status":$context.status}"#;
        let log = rankable(Some(ARN), Some(format)).unwrap();
        assert_eq!(log.log_group, "API-Gateway-Access-Logs_a1b2c3/prod");
        assert_eq!(
            log.fields.get(&CallerKind::Address).map(String::as_str),
            Some("$.ip")
        );
        assert_eq!(
            log.fields.get(&CallerKind::ApiKey).map(String::as_str),
            Some("$.key.id")
        );
    }

    #[test]
    fn a_stage_that_cannot_be_ranked_says_why() {
        let ip = r#"{"ip":"$context.identity.sourceIp"}"#;
        assert_eq!(rankable(None, Some(ip)), Err(Unrankable::NoAccessLogs));
        let firehose = "arn:aws:firehose:us-east-1:123456789012:deliverystream/amazon-apigateway-logs";
        assert!(matches!(
            rankable(Some(firehose), Some(ip)),
            Err(Unrankable::NotCloudWatchLogs(_))
        ));
        let clf = "$context.identity.sourceIp - - [$context.requestTime] \"$context.httpMethod\"";
        assert_eq!(rankable(Some(ARN), Some(clf)), Err(Unrankable::NotJson));
        let no_caller = r#"{"requestId":"$context.requestId","who":"ip $context.identity.sourceIp"}"#;
        assert_eq!(
            rankable(Some(ARN), Some(no_caller)),
            Err(Unrankable::NoCallerField)
        );
    }

    #[test]
    fn a_log_group_arn_ending_in_a_wildcard_names_the_group() {
        let log = rankable(
            Some(&format!("{ARN}:*")),
            Some(r#"{"ip":"$context.identity.sourceIp"}"#),
        )
        .unwrap();
        assert_eq!(log.log_group, "API-Gateway-Access-Logs_a1b2c3/prod");
    }

    #[test]
    fn where_the_log_carries_the_integration_latency_callers_are_ranked_by_its_sum() {
        for variable in COST_VARIABLES {
            let format = format!(r#"{{"ip":"$context.identity.sourceIp","timing":{{"ms":"{variable}"}}}}"#);
            let log = rankable(Some(ARN), Some(&format)).unwrap();
            assert_eq!(log.cost_field.as_deref(), Some("$.timing.ms"));
            let rules = wanted_rules("a1b2c3", "prod", &log);
            let body: Value = serde_json::from_str(&rules[0].definition).unwrap();
            assert_eq!(
                body["Contribution"],
                json!({ "Keys": ["$.ip"], "ValueOf": "$.timing.ms" })
            );
            assert_eq!(body["AggregateOn"], "Sum");
        }
        let plain = rankable(Some(ARN), Some(r#"{"ip":"$context.identity.sourceIp"}"#)).unwrap();
        assert_eq!(plain.cost_field, None);
        let body: Value =
            serde_json::from_str(&wanted_rules("a1b2c3", "prod", &plain)[0].definition).unwrap();
        assert_eq!(body["AggregateOn"], "Count");
    }

    #[test]
    fn the_rule_counts_the_log_groups_events_by_the_caller_field() {
        let body: Value = serde_json::from_str(&rule_definition("access/prod", "$.ip", None)).unwrap();
        assert_eq!(
            body,
            json!({
                "Schema": { "Name": "CloudWatchLogRule", "Version": 1 },
                "LogGroupNames": ["access/prod"],
                "LogFormat": "JSON",
                "Contribution": { "Keys": ["$.ip"] },
                "AggregateOn": "Count",
            })
        );
    }

    #[test]
    fn rule_names_are_deterministic_and_within_the_limit() {
        assert_eq!(
            rule_name("a1b2c3d4e5", "prod", CallerKind::Address),
            "dowguard-callers-a1b2c3d4e5-prod-addresses"
        );
        assert_eq!(
            rule_name("a1b2c3d4e5", "prod", CallerKind::ApiKey),
            "dowguard-callers-a1b2c3d4e5-prod-api-keys"
        );
        let long_a = "s".repeat(128);
        let long_b = format!("{}t", "s".repeat(127));
        let a = rule_name("a1b2c3d4e5", &long_a, CallerKind::ApiKey);
        let b = rule_name("a1b2c3d4e5", &long_b, CallerKind::ApiKey);
        assert!(a.len() <= MAX_RULE_NAME && b.len() <= MAX_RULE_NAME);
        assert!(a.starts_with(RULE_PREFIX) && a.ends_with("-api-keys"));
        assert_ne!(a, b);
        assert_eq!(a, rule_name("a1b2c3d4e5", &long_a, CallerKind::ApiKey));
    }

    #[test]
    fn the_plan_puts_new_changed_and_disabled_rules_and_deletes_only_its_own_stale_ones() {
        let log = rankable(Some(ARN), Some(r#"{"ip":"$context.identity.sourceIp"}"#)).unwrap();
        let wanted = wanted_rules("api", "prod", &log);
        let same = ExistingRule {
            name: wanted[0].name.clone(),
            // Same JSON, other spacing: not put again.
            definition: serde_json::to_string_pretty(
                &serde_json::from_str::<Value>(&wanted[0].definition).unwrap(),
            )
            .unwrap(),
            state: "ENABLED".into(),
        };
        let stale = ExistingRule {
            name: "dowguard-callers-gone-prod-addresses".into(),
            definition: "{}".into(),
            state: "ENABLED".into(),
        };
        let foreign = ExistingRule {
            name: "team-rule".into(),
            definition: "{}".into(),
            state: "ENABLED".into(),
        };
        let plan = plan_rules(RULE_PREFIX, &wanted, &[same.clone(), stale, foreign]);
        assert!(plan.put.is_empty());
        assert_eq!(
            plan.delete,
            vec!["dowguard-callers-gone-prod-addresses".to_string()]
        );
        let disabled = ExistingRule {
            state: "DISABLED".into(),
            ..same
        };
        assert_eq!(plan_rules(RULE_PREFIX, &wanted, &[disabled]).put, wanted);
    }
}
