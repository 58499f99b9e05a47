//! Proof from observation that every AWS call a function makes is allowed by its
//! role: [`record`] captures each call as it leaves the SDK, [`operations`] turns it
//! into the IAM action(s) and resource(s) it needs, [`policy`] decides each one
//! against the function's role statements from the SAM template (resolved for the
//! test deployment by [`crate::template`]), with `aws:ResourceTag` conditions
//! checked against the tags the resources carry in the local server ([`tags`]).

pub mod operations;
pub mod policy;
pub mod record;
pub mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use aws_config::SdkConfig;
use serde_json::Value;

use crate::fixtures::FixtureResult;
use crate::template::{Deployment, resolved_statements};
use operations::{MapError, Request, requests};
use policy::{Decision, Policy};
use record::Call;
use tags::OwnTags;

/// One request of one call, decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The function that made the call.
    pub function: String,
    /// The SDK's service name.
    pub service: String,
    /// The operation.
    pub operation: String,
    /// What it needs.
    pub request: Request,
    /// What the role says.
    pub decision: Decision,
}

/// Every recorded call, decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One per request of each call.
    pub checks: Vec<Check>,
    /// Calls that could not be mapped, with their function.
    pub unmapped: Vec<(String, MapError)>,
    /// Each function's recorded operations, `(service, operation)`.
    pub operations: BTreeMap<String, BTreeSet<(String, String)>>,
}

impl Report {
    /// The checks whose request the role does not allow.
    pub fn denied(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.decision.allowed()).collect()
    }

    /// Every failure in words: unmapped calls and denied requests, one a line.
    pub fn failures(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = self.unmapped.iter().map(|(f, e)| format!("{f}: {e}")).collect();
        for c in self.denied() {
            out.insert(format!(
                "{}: {} {} needs {} on {}: {:?}",
                c.function, c.service, c.operation, c.request.action, c.request.resource, c.decision
            ));
        }
        out.into_iter().collect()
    }

    /// The operations `function` was recorded making.
    pub fn operations_of(&self, function: &str) -> BTreeSet<(String, String)> {
        self.operations.get(function).cloned().unwrap_or_default()
    }

    /// A table: function, operation, action, how many requests, and the decision
    /// (the allowing statement, or why not).
    pub fn table(&self) -> String {
        let mut rows: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
        for c in &self.checks {
            let decision = match &c.decision {
                Decision::Allowed(sid) => format!("allowed ({sid})"),
                Decision::ExplicitlyDenied(sid) => format!("DENIED by {sid} on {}", c.request.resource),
                Decision::ImplicitlyDenied(why) => format!("DENIED on {}: {why}", c.request.resource),
            };
            *rows
                .entry((
                    c.function.clone(),
                    format!("{} {}", c.service, c.operation),
                    c.request.action.clone(),
                    decision,
                ))
                .or_default() += 1;
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<15} {:<42} {:<40} {:>5}  decision",
            "function", "operation", "IAM action", "calls"
        );
        for ((function, operation, action, decision), count) in rows {
            let _ = writeln!(
                out,
                "{function:<15} {operation:<42} {action:<40} {count:>5}  {decision}"
            );
        }
        for (function, e) in &self.unmapped {
            let _ = writeln!(out, "{function:<15} UNMAPPED: {e}");
        }
        out
    }
}

/// Decides every call of `calls` against its function's policy in `policies`
/// (by the function's logical id), with `own` tags for the tag conditions.
pub fn evaluate(
    calls: &[Call],
    policies: &BTreeMap<String, Policy>,
    own: &OwnTags,
    deployment: &Deployment,
) -> Report {
    let mut report = Report::default();
    for call in calls {
        report
            .operations
            .entry(call.function.clone())
            .or_default()
            .insert((call.service.clone(), call.operation.clone()));
        let needed = match requests(call, deployment) {
            Ok(r) => r,
            Err(e) => {
                report.unmapped.push((call.function.clone(), e));
                continue;
            }
        };
        let policy = policies.get(&call.function);
        for request in needed {
            let decision = match policy {
                Some(p) => p.decide(&request, own.effective(&request.resource).as_ref()),
                None => Decision::ImplicitlyDenied(format!("no role for {}", call.function)),
            };
            report.checks.push(Check {
                function: call.function.clone(),
                service: call.service.clone(),
                operation: call.operation.clone(),
                request,
                decision,
            });
        }
    }
    report
}

/// Decides every call of `calls` against its function's role in the translated
/// `template`, resolved for `deployment`, with the tags the resources carry now in
/// the server behind `sdk`.
///
/// # Errors
///
/// When a role cannot be resolved or read, or the tags cannot be read.
pub async fn check(
    calls: &[Call],
    template: &Value,
    deployment: &Deployment,
    sdk: &SdkConfig,
) -> FixtureResult<Report> {
    let mut policies = BTreeMap::new();
    for function in calls.iter().map(|c| c.function.as_str()).collect::<BTreeSet<_>>() {
        let statements = resolved_statements(template, function, deployment)?;
        policies.insert(function.to_string(), Policy::parse(&statements)?);
    }
    let resources: BTreeSet<String> = calls
        .iter()
        .filter_map(|c| requests(c, deployment).ok())
        .flatten()
        .map(|r| r.resource)
        .collect();
    let own = OwnTags::load(sdk, resources.iter().map(String::as_str)).await?;
    Ok(evaluate(calls, &policies, &own, deployment))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ACCOUNT: &str = "123456789012";

    fn deployment() -> Deployment {
        Deployment::new(
            ACCOUNT,
            "us-east-1",
            "dowguard",
            "arn:aws:sns:us-east-1:123456789012:dowguard",
        )
    }

    /// A role shaped like the template's, already resolved.
    fn policies() -> BTreeMap<String, Policy> {
        let statements = [
            json!({"Sid": "GuardTable", "Effect": "Allow",
                   "Action": ["dynamodb:Query", "dynamodb:PutItem"],
                   "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/dowguard"}),
            json!({"Sid": "ThrottleGuardedFunctions", "Effect": "Allow",
                   "Action": "lambda:PutFunctionConcurrency",
                   "Resource": "arn:aws:lambda:us-east-1:123456789012:function:*",
                   "Condition": {"StringEquals": {"aws:ResourceTag/dowguard-guarded": "true"}}}),
            json!({"Sid": "ThrottleGuardedApis", "Effect": "Allow", "Action": "apigateway:PATCH",
                   "Resource": ["arn:aws:apigateway:us-east-1::/restapis/*/stages/*",
                                "arn:aws:apigateway:us-east-1::/apis/*/stages/*"],
                   "Condition": {"StringEquals": {"aws:ResourceTag/dowguard-guarded": "true"}}}),
        ];
        BTreeMap::from([("Evaluator".to_string(), Policy::parse(&statements).unwrap())])
    }

    fn call(operation: &str, service: &str, method: &str, uri: &str, body: &str) -> Call {
        Call {
            function: "Evaluator".into(),
            service: service.into(),
            operation: operation.into(),
            method: method.into(),
            uri: format!("http://127.0.0.1:5000{uri}"),
            body: body.as_bytes().to_vec(),
        }
    }

    fn guarded() -> policy::Tags {
        policy::Tags::from([("dowguard-guarded".to_string(), "true".to_string())])
    }

    fn one(calls: &[Call], own: &OwnTags) -> Decision {
        let report = evaluate(calls, &policies(), own, &deployment());
        assert!(report.unmapped.is_empty(), "{:?}", report.unmapped);
        assert_eq!(report.checks.len(), 1, "{report:?}");
        report.checks[0].decision.clone()
    }

    #[test]
    fn a_call_the_role_allows_is_allowed_by_its_statement() {
        let query = call("Query", "DynamoDB", "POST", "/", r#"{"TableName":"dowguard"}"#);
        assert_eq!(
            one(&[query], &OwnTags::default()),
            Decision::Allowed("GuardTable".into())
        );
    }

    #[test]
    fn an_action_the_role_lacks_is_denied() {
        let get = call("GetItem", "DynamoDB", "POST", "/", r#"{"TableName":"dowguard"}"#);
        let decision = one(&[get], &OwnTags::default());
        assert!(!decision.allowed(), "{decision:?}");
        assert_eq!(
            decision,
            Decision::ImplicitlyDenied("no statement has the action".into())
        );
    }

    #[test]
    fn an_allowed_action_on_another_resource_is_denied() {
        let query = call(
            "Query",
            "DynamoDB",
            "POST",
            "/",
            r#"{"TableName":"someone-elses"}"#,
        );
        let decision = one(&[query], &OwnTags::default());
        assert_eq!(
            decision,
            Decision::ImplicitlyDenied("GuardTable allows the action on other resources".into())
        );
    }

    #[test]
    fn a_write_on_a_resource_without_the_tag_is_denied() {
        let put = call(
            "PutFunctionConcurrency",
            "Lambda",
            "PUT",
            "/2017-10-31/functions/checkout/concurrency",
            "{}",
        );
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        let mut own = OwnTags::default();
        own.insert(
            arn,
            policy::Tags::from([("dowguard-guarded".to_string(), "false".to_string())]),
        );
        assert!(!one(std::slice::from_ref(&put), &own).allowed());
        assert!(
            !one(std::slice::from_ref(&put), &OwnTags::default()).allowed(),
            "no tags at all"
        );
        own.insert(arn, guarded());
        assert_eq!(
            one(&[put], &own),
            Decision::Allowed("ThrottleGuardedFunctions".into())
        );
    }

    #[test]
    fn a_rest_stage_update_passes_on_the_tag_its_api_carries() {
        let update = call(
            "UpdateStage",
            "API Gateway",
            "PATCH",
            "/restapis/a1/stages/prod",
            "{}",
        );
        let mut own = OwnTags::default();
        own.insert("arn:aws:apigateway:us-east-1::/restapis/a1", guarded());
        own.insert(
            "arn:aws:apigateway:us-east-1::/restapis/a1/stages/prod",
            policy::Tags::new(),
        );
        assert_eq!(
            one(&[update], &own),
            Decision::Allowed("ThrottleGuardedApis".into())
        );
    }

    #[test]
    fn an_http_stage_update_fails_when_only_its_api_carries_the_tag() {
        let update = call(
            "UpdateStage",
            "ApiGatewayV2",
            "PATCH",
            "/v2/apis/h1/stages/prod",
            "{}",
        );
        let mut own = OwnTags::default();
        own.insert("arn:aws:apigateway:us-east-1::/apis/h1", guarded());
        own.insert(
            "arn:aws:apigateway:us-east-1::/apis/h1/stages/prod",
            policy::Tags::new(),
        );
        assert!(!one(std::slice::from_ref(&update), &own).allowed());
        own.insert("arn:aws:apigateway:us-east-1::/apis/h1/stages/prod", guarded());
        assert_eq!(
            one(&[update], &own),
            Decision::Allowed("ThrottleGuardedApis".into())
        );
    }

    #[test]
    fn an_explicit_deny_wins_over_an_allow() {
        let mut statements =
            vec![json!({"Sid": "All", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"})];
        statements
            .push(json!({"Sid": "NoQuery", "Effect": "Deny", "Action": "dynamodb:Query", "Resource": "*"}));
        let policies = BTreeMap::from([("Evaluator".to_string(), Policy::parse(&statements).unwrap())]);
        let query = call("Query", "DynamoDB", "POST", "/", r#"{"TableName":"dowguard"}"#);
        let report = evaluate(&[query], &policies, &OwnTags::default(), &deployment());
        assert_eq!(
            report.checks[0].decision,
            Decision::ExplicitlyDenied("NoQuery".into())
        );
    }

    #[test]
    fn an_unmapped_call_and_a_function_without_a_role_are_failures() {
        let mut invoke = call(
            "Invoke",
            "Lambda",
            "POST",
            "/2015-03-31/functions/x/invocations",
            "",
        );
        let mut other = call("Query", "DynamoDB", "POST", "/", r#"{"TableName":"dowguard"}"#);
        other.function = "Stranger".into();
        invoke.function = "Evaluator".into();
        let report = evaluate(&[invoke, other], &policies(), &OwnTags::default(), &deployment());
        let failures = report.failures();
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(
            failures[0].contains("Lambda Invoke has no IAM mapping"),
            "{failures:?}"
        );
        assert!(failures[1].contains("no role for Stranger"), "{failures:?}");
        assert!(report.table().contains("UNMAPPED"), "{}", report.table());
    }
}
