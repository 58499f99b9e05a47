//! The inventory function's events, validated as strictly as the others
//! ([`crate::event`]): its reconciliation schedule, and the "AWS API Call via
//! CloudTrail" events of the API calls that change a target's limits, tags or
//! existence. Pure and panic-free.
//!
//! The event names are CloudTrail's, which for Lambda carry the API version
//! ("Logging AWS Lambda API calls using AWS CloudTrail", Lambda developer guide,
//! which lists each name, e.g. `PutFunctionConcurrency20171031`); API Gateway's are
//! the actions' own names ("Logging calls to Amazon API Gateway APIs with AWS
//! CloudTrail"), for REST (V1) and HTTP (V2) APIs alike, told apart by their
//! request parameters (`restApiId` or `apiId`, the URI parameters of each API
//! reference). The SAM template's rule matches exactly [`LAMBDA_EVENTS`] and
//! [`APIGATEWAY_EVENTS`] (checked by the template test).

use chrono::{DateTime, Utc};
use dowguard_domain::{ApiId, FunctionName, StageName, TargetId, UsagePlanId};
use dowguard_guard::inventory::{ApiCall, Touched};
use serde_json::Value;

use crate::event::{
    Expected, Rejection, SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE, ScheduleTick, envelope, field, schedule_tick,
    shown, text,
};

/// The detail-type of every event CloudTrail delivers for an API call ("AWS
/// service events delivered via AWS CloudTrail", Amazon EventBridge user guide).
pub const API_CALL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// Lambda's events in EventBridge and CloudTrail.
pub const LAMBDA_SOURCE: (&str, &str) = ("aws.lambda", "lambda.amazonaws.com");

/// API Gateway's events in EventBridge and CloudTrail (REST and HTTP APIs).
pub const APIGATEWAY_SOURCE: (&str, &str) = ("aws.apigateway", "apigateway.amazonaws.com");

/// The Lambda calls that change what the inventory keeps, by their CloudTrail
/// event names ("Logging AWS Lambda API calls using AWS CloudTrail"):
/// existence, reservation, async invoke config, tags, and memory or
/// architecture (`UpdateFunctionConfiguration`). `DeleteFunctionEventInvokeConfig`
/// is not on that page's list; it is matched by its action name, and where
/// CloudTrail does not log it the reconciliation finds the change.
pub const LAMBDA_EVENTS: &[&str] = &[
    "CreateFunction20150331",
    "DeleteFunction20150331",
    "UpdateFunctionConfiguration20150331v2",
    "PutFunctionConcurrency20171031",
    "DeleteFunctionConcurrency20171031",
    "PutFunctionEventInvokeConfig",
    "UpdateFunctionEventInvokeConfig",
    "DeleteFunctionEventInvokeConfig",
    "TagResource20170331v2",
    "UntagResource20170331v2",
];

/// The API Gateway calls (REST and HTTP APIs) that change what the inventory
/// keeps: stages and their throttles, deployments that create stages, usage plans,
/// tags, an API's name (CloudWatch names REST API metrics by it) and deletions.
pub const APIGATEWAY_EVENTS: &[&str] = &[
    "CreateStage",
    "UpdateStage",
    "DeleteStage",
    "CreateDeployment",
    "CreateUsagePlan",
    "UpdateUsagePlan",
    "DeleteUsagePlan",
    "TagResource",
    "UntagResource",
    "UpdateRestApi",
    "DeleteRestApi",
    "DeleteApi",
];

/// What started the inventory function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Its reconciliation schedule.
    Reconcile(ScheduleTick),
    /// An API call that may have changed targets.
    Change(ApiCall),
}

/// Validates the inventory function's event: its schedule (from the rule
/// `expected` names), or an API call of [`LAMBDA_EVENTS`] or [`APIGATEWAY_EVENTS`]
/// from the deployment's account and Region that succeeded.
///
/// # Errors
///
/// A [`Rejection`] saying which check failed.
pub fn inventory_trigger(event: &Value, expected: &Expected<'_>) -> Result<Trigger, Rejection> {
    let source = text(event, "source", "source")?;
    if source == SCHEDULE_SOURCE {
        return schedule_tick(event, expected).map(Trigger::Reconcile);
    }
    let (events, (source, event_source)) = match source {
        s if s == LAMBDA_SOURCE.0 => (LAMBDA_EVENTS, LAMBDA_SOURCE),
        s if s == APIGATEWAY_SOURCE.0 => (APIGATEWAY_EVENTS, APIGATEWAY_SOURCE),
        other => {
            return Err(Rejection::Unexpected {
                field: "source",
                found: shown(other),
                wanted: format!(
                    "\"{SCHEDULE_SOURCE}\" ({SCHEDULE_DETAIL_TYPE}), \"{}\" or \"{}\"",
                    LAMBDA_SOURCE.0, APIGATEWAY_SOURCE.0
                ),
            });
        }
    };
    let time = envelope(event, expected, source, API_CALL_DETAIL_TYPE)?;
    let detail = field(event, "detail", "detail")?;
    let found_source = text(detail, "eventSource", "detail.eventSource")?;
    if found_source != event_source {
        return Err(Rejection::Unexpected {
            field: "detail.eventSource",
            found: shown(found_source),
            wanted: format!("\"{event_source}\""),
        });
    }
    let name = text(detail, "eventName", "detail.eventName")?;
    if !events.contains(&name) {
        return Err(Rejection::Unexpected {
            field: "detail.eventName",
            found: shown(name),
            wanted: format!("one of the calls the inventory follows ({})", events.join(", ")),
        });
    }
    if let Some(code) = detail.get("errorCode").filter(|c| !c.is_null()) {
        return Err(Rejection::Unexpected {
            field: "detail.errorCode",
            found: shown(code.as_str().unwrap_or("(not a string)")),
            wanted: "no error code: a call that failed changed nothing".into(),
        });
    }
    if let Some(recipient) = detail.get("recipientAccountId").and_then(Value::as_str)
        && recipient != expected.account
    {
        return Err(Rejection::ForeignAccount {
            found: shown(recipient),
        });
    }
    let principal = detail
        .get("userIdentity")
        .and_then(|u| u.get("arn").or_else(|| u.get("invokedBy")))
        .and_then(Value::as_str)
        .map(|p| p.chars().take(256).collect());
    let parameters = detail.get("requestParameters").unwrap_or(&Value::Null);
    let touched = if source == LAMBDA_SOURCE.0 {
        vec![Touched::Target(TargetId::Function(lambda_function(parameters)?))]
    } else {
        vec![api_gateway_target(name, parameters)?]
    };
    Ok(Trigger::Change(ApiCall {
        event: name.to_string(),
        principal,
        at: time,
        touched,
    }))
}

/// The function a Lambda call names: `functionName` (a name, an ARN or a partial
/// ARN, with or without a qualifier; the API reference's `FunctionName` formats),
/// or `resource` (an ARN) for tags.
fn lambda_function(parameters: &Value) -> Result<FunctionName, Rejection> {
    let (raw, path) = match (parameters.get("functionName"), parameters.get("resource")) {
        (Some(Value::String(name)), _) => (name.as_str(), "detail.requestParameters.functionName"),
        (_, Some(Value::String(arn))) => (arn.as_str(), "detail.requestParameters.resource"),
        _ => {
            return Err(Rejection::Missing {
                field: "detail.requestParameters.functionName",
            });
        }
    };
    let name = match raw.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or_default(),
        None => raw.split(':').next().unwrap_or_default(),
    };
    FunctionName::parse(name).map_err(|_| Rejection::Unexpected {
        field: path,
        found: shown(raw),
        wanted: "a Lambda function name or ARN".into(),
    })
}

fn string<'v>(parameters: &'v Value, key: &str) -> Option<&'v str> {
    parameters.get(key).and_then(Value::as_str)
}

/// What an API Gateway call may have changed: a stage or a usage plan it names,
/// else the whole API Gateway listing (few targets, and a rare call).
fn api_gateway_target(name: &str, parameters: &Value) -> Result<Touched, Rejection> {
    let bad = |field: &'static str, raw: &str| Rejection::Unexpected {
        field,
        found: shown(raw),
        wanted: "an API Gateway identifier".into(),
    };
    let stage = string(parameters, "stageName")
        .map(|s| StageName::parse(s).map_err(|_| bad("detail.requestParameters.stageName", s)))
        .transpose()?;
    match (name, stage) {
        ("UpdateStage", Some(stage)) => {
            if let Some(api) = string(parameters, "restApiId") {
                let api = ApiId::parse(api).map_err(|_| bad("detail.requestParameters.restApiId", api))?;
                return Ok(Touched::Target(TargetId::RestStage(api, stage)));
            }
            if let Some(api) = string(parameters, "apiId") {
                let api = ApiId::parse(api).map_err(|_| bad("detail.requestParameters.apiId", api))?;
                return Ok(Touched::Target(TargetId::HttpStage(api, stage)));
            }
            Ok(Touched::Apis)
        }
        ("UpdateUsagePlan", _) => match string(parameters, "usagePlanId") {
            Some(plan) => Ok(Touched::Target(TargetId::UsagePlan(
                UsagePlanId::parse(plan).map_err(|_| bad("detail.requestParameters.usagePlanId", plan))?,
            ))),
            None => Ok(Touched::Apis),
        },
        _ => Ok(Touched::Apis),
    }
}

/// When the event says the call was made (the envelope's time).
pub fn time_of(trigger: &Trigger) -> DateTime<Utc> {
    match trigger {
        Trigger::Reconcile(tick) => tick.time,
        Trigger::Change(call) => call.at,
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

    fn call(source: &str, event_source: &str, name: &str, parameters: Value) -> Value {
        json!({
            "version": "0",
            "id": "6f1a9c4e-0000-4000-8000-000000000000",
            "detail-type": API_CALL_DETAIL_TYPE,
            "source": source,
            "account": "123456789012",
            "time": "2026-11-22T06:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci"},
                "eventSource": event_source,
                "eventName": name,
                "awsRegion": "us-east-1",
                "requestParameters": parameters,
                "eventType": "AwsApiCall",
                "recipientAccountId": "123456789012"
            }
        })
    }

    #[test]
    fn a_lambda_call_names_its_function_and_its_author() {
        let event = call(
            "aws.lambda",
            "lambda.amazonaws.com",
            "PutFunctionConcurrency20171031",
            json!({"functionName": "arn:aws:lambda:us-east-1:123456789012:function:checkout", "reservedConcurrentExecutions": 80}),
        );
        let Ok(Trigger::Change(call)) = inventory_trigger(&event, &EXPECTED) else {
            panic!("accepted");
        };
        assert_eq!(
            call.touched,
            vec![Touched::Target(TargetId::parse("function:checkout").unwrap())]
        );
        assert_eq!(
            call.principal.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/deploy/ci")
        );
        let tagged = call_of(
            "aws.lambda",
            "lambda.amazonaws.com",
            "TagResource20170331v2",
            json!({"resource": "arn:aws:lambda:us-east-1:123456789012:function:search"}),
        );
        assert_eq!(
            tagged.touched,
            vec![Touched::Target(TargetId::parse("function:search").unwrap())]
        );
    }

    fn call_of(source: &str, event_source: &str, name: &str, parameters: Value) -> ApiCall {
        match inventory_trigger(&call(source, event_source, name, parameters), &EXPECTED) {
            Ok(Trigger::Change(call)) => call,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn rest_and_http_stage_updates_are_told_apart_and_others_reread_the_listing() {
        let rest = call_of(
            "aws.apigateway",
            "apigateway.amazonaws.com",
            "UpdateStage",
            json!({"restApiId": "a1b2c3", "stageName": "prod"}),
        );
        assert_eq!(
            rest.touched,
            vec![Touched::Target(
                TargetId::parse("rest-stage:a1b2c3/prod").unwrap()
            )]
        );
        let http = call_of(
            "aws.apigateway",
            "apigateway.amazonaws.com",
            "UpdateStage",
            json!({"apiId": "d4e5f6", "stageName": "$default"}),
        );
        assert_eq!(
            http.touched,
            vec![Touched::Target(
                TargetId::parse("http-stage:d4e5f6/$default").unwrap()
            )]
        );
        let plan = call_of(
            "aws.apigateway",
            "apigateway.amazonaws.com",
            "UpdateUsagePlan",
            json!({"usagePlanId": "p1q2r3"}),
        );
        assert_eq!(
            plan.touched,
            vec![Touched::Target(TargetId::parse("usage-plan:p1q2r3").unwrap())]
        );
        let created = call_of(
            "aws.apigateway",
            "apigateway.amazonaws.com",
            "CreateStage",
            json!({"restApiId": "a1b2c3"}),
        );
        assert_eq!(created.touched, vec![Touched::Apis]);
    }

    #[test]
    fn foreign_failed_and_unfollowed_calls_are_rejected() {
        let mut failed = call(
            "aws.lambda",
            "lambda.amazonaws.com",
            "PutFunctionConcurrency20171031",
            json!({"functionName": "checkout"}),
        );
        failed["detail"]["errorCode"] = json!("AccessDenied");
        assert!(matches!(
            inventory_trigger(&failed, &EXPECTED),
            Err(Rejection::Unexpected {
                field: "detail.errorCode",
                ..
            })
        ));
        let unfollowed = call(
            "aws.lambda",
            "lambda.amazonaws.com",
            "Invoke",
            json!({"functionName": "checkout"}),
        );
        assert!(matches!(
            inventory_trigger(&unfollowed, &EXPECTED),
            Err(Rejection::Unexpected {
                field: "detail.eventName",
                ..
            })
        ));
        let mut foreign = call(
            "aws.lambda",
            "lambda.amazonaws.com",
            "DeleteFunction20150331",
            json!({"functionName": "checkout"}),
        );
        foreign["account"] = json!("999999999999");
        assert!(matches!(
            inventory_trigger(&foreign, &EXPECTED),
            Err(Rejection::ForeignAccount { .. })
        ));
        let mismatched = call("aws.lambda", "apigateway.amazonaws.com", "UpdateStage", json!({}));
        assert!(inventory_trigger(&mismatched, &EXPECTED).is_err());
        assert!(inventory_trigger(&json!({"source": "aws.s3"}), &EXPECTED).is_err());
    }
}
