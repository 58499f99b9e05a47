//! Which IAM action, on which resource, each recorded call needs: one line per
//! operation in [`OPERATIONS`], following the Service Authorization Reference
//! (pages "Actions, resources, and condition keys for AWS Lambda", "... for Amazon
//! API Gateway Management", "... for Amazon API Gateway Management V2", "... for
//! Amazon DynamoDB", "... for Amazon CloudWatch", "... for Amazon SNS" and "... for
//! AWS Security Token Service"). The resource is read from the request itself: the
//! URI path, the JSON, CBOR or form body. A call whose operation has no line here
//! is an error that names it.

use serde_json::Value;

use crate::iam::record::Call;
use crate::template::Deployment;

/// One authorisation a call needs: an action on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Request {
    /// The IAM action (`lambda:PutFunctionConcurrency`).
    pub action: String,
    /// The resource's ARN, or `*` for an action without resource-level permissions.
    pub resource: String,
}

/// Why a call could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The operation has no line in [`OPERATIONS`].
    #[error(
        "{service} {operation} has no IAM mapping: add its line to OPERATIONS in tests/src/iam/operations.rs"
    )]
    Unmapped {
        /// The SDK's service name.
        service: String,
        /// The operation.
        operation: String,
    },
    /// The request lacks what the mapping reads.
    #[error("{service} {operation}: {reason}")]
    Unreadable {
        /// The SDK's service name.
        service: String,
        /// The operation.
        operation: String,
        /// What is missing.
        reason: String,
    },
}

/// How an operation's action and resources are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The action, on `*`: the reference lists no resource type for it
    /// (`lambda:ListFunctions`, `lambda:GetAccountSettings`,
    /// `cloudwatch:GetMetricData`).
    Everywhere(&'static str),
    /// The action on the function named in the URI path, after `functions/` (a
    /// name or an ARN) or `tags/` (an ARN); a `Qualifier` makes it the qualified
    /// ARN. Resource type `function`.
    LambdaFunction(&'static str),
    /// `apigateway:<HTTP method>` on `arn:<partition>:apigateway:<region>::<path>`,
    /// the request's path; HTTP API paths drop their `/v2` prefix (resource types
    /// `RestApis`, `Stages`, `Stage`, `UsagePlans`, `UsagePlan`, `Apis`, `Api`,
    /// `Routes`...).
    ApiGatewayPath,
    /// The action on the table of `TableName` (or its index, with `IndexName`).
    /// Resource type `table` (`index`).
    DynamoTable(&'static str),
    /// The action on every table named in `RequestItems` (`BatchWriteItem`,
    /// `BatchGetItem`).
    DynamoTables(&'static str),
    /// `TransactWriteItems` has no action of its own: each item needs its own
    /// (`dynamodb:PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`) on its
    /// table.
    DynamoTransaction,
    /// The action on every alarm in `AlarmName` / `AlarmNames` of the CBOR body.
    /// A request that names no alarm (a `DescribeAlarms` by prefix) is a request on
    /// every alarm, `alarm:*`: the reference names no narrower resource for it, and
    /// CloudWatch's own pages ("Amazon CloudWatch permissions reference") write `*`.
    CloudWatchAlarms(&'static str),
    /// The action on the form body's `TopicArn`. Resource type `topic`.
    SnsTopic(&'static str),
    /// The action on the trail the JSON body names in `key` (a name or an ARN; a
    /// name is the deployment Region's trail). Resource type `trail` ("Actions,
    /// resources, and condition keys for AWS CloudTrail").
    CloudTrailTrail(&'static str, &'static str),
    /// The action on the WAF IP set the JSON body names (`Name`, `Scope`, `Id`):
    /// `arn:<partition>:wafv2:<region>:<account>:<scope>/ipset/<name>/<id>`, the
    /// scope in lower case ("Actions, resources, and condition keys for AWS WAF
    /// V2", resource type `ipset`).
    WafIpSet(&'static str),
    /// The action on the resource the JSON body's `ResourceArn` names (a REST API
    /// stage for `GetWebACLForResource`). The call also checks `wafv2:GetWebACL` on
    /// the web ACL it finds ("GetWebACLForResource", AWS WAFV2 API Reference),
    /// which the request does not name: the roles grant it on `regional/webacl/*/*`.
    WafResource(&'static str),
    /// The action on every Contributor Insights rule in `RuleName` / `RuleNames`
    /// of the CBOR body, `insight-rule/<name>`; a request that names none (a
    /// `DescribeInsightRules`) is on `*`, the only resource the reference allows it
    /// ("Actions, resources, and condition keys for Amazon CloudWatch").
    CloudWatchInsightRules(&'static str),
    /// No permission is needed (`sts:GetCallerIdentity`: "No permissions are
    /// required to perform this operation", AWS STS API Reference).
    Nothing,
}

use Rule::{
    ApiGatewayPath, CloudTrailTrail, CloudWatchAlarms, CloudWatchInsightRules, DynamoTable, DynamoTables,
    DynamoTransaction, Everywhere, LambdaFunction, Nothing, SnsTopic, WafIpSet, WafResource,
};

/// Every operation the tests know, as `(SDK service, operation, rule)`.
pub const OPERATIONS: &[(&str, &str, Rule)] = &[
    ("Lambda", "ListFunctions", Everywhere("lambda:ListFunctions")),
    (
        "Lambda",
        "GetAccountSettings",
        Everywhere("lambda:GetAccountSettings"),
    ),
    ("Lambda", "ListTags", LambdaFunction("lambda:ListTags")),
    ("Lambda", "GetFunction", LambdaFunction("lambda:GetFunction")),
    (
        "Lambda",
        "GetFunctionConfiguration",
        LambdaFunction("lambda:GetFunctionConfiguration"),
    ),
    (
        "Lambda",
        "GetFunctionConcurrency",
        LambdaFunction("lambda:GetFunctionConcurrency"),
    ),
    (
        "Lambda",
        "PutFunctionConcurrency",
        LambdaFunction("lambda:PutFunctionConcurrency"),
    ),
    (
        "Lambda",
        "DeleteFunctionConcurrency",
        LambdaFunction("lambda:DeleteFunctionConcurrency"),
    ),
    (
        "Lambda",
        "GetFunctionEventInvokeConfig",
        LambdaFunction("lambda:GetFunctionEventInvokeConfig"),
    ),
    (
        "Lambda",
        "PutFunctionEventInvokeConfig",
        LambdaFunction("lambda:PutFunctionEventInvokeConfig"),
    ),
    (
        "Lambda",
        "UpdateFunctionEventInvokeConfig",
        LambdaFunction("lambda:UpdateFunctionEventInvokeConfig"),
    ),
    (
        "Lambda",
        "DeleteFunctionEventInvokeConfig",
        LambdaFunction("lambda:DeleteFunctionEventInvokeConfig"),
    ),
    ("API Gateway", "GetAccount", ApiGatewayPath),
    ("API Gateway", "GetRestApis", ApiGatewayPath),
    ("API Gateway", "GetRestApi", ApiGatewayPath),
    ("API Gateway", "GetResources", ApiGatewayPath),
    ("API Gateway", "GetStages", ApiGatewayPath),
    ("API Gateway", "GetStage", ApiGatewayPath),
    ("API Gateway", "GetUsagePlans", ApiGatewayPath),
    ("API Gateway", "GetUsagePlan", ApiGatewayPath),
    ("API Gateway", "UpdateStage", ApiGatewayPath),
    ("API Gateway", "UpdateUsagePlan", ApiGatewayPath),
    ("API Gateway", "GetUsagePlanKey", ApiGatewayPath),
    ("API Gateway", "DeleteUsagePlanKey", ApiGatewayPath),
    ("API Gateway", "CreateUsagePlanKey", ApiGatewayPath),
    ("WAFV2", "GetIPSet", WafIpSet("wafv2:GetIPSet")),
    ("WAFV2", "UpdateIPSet", WafIpSet("wafv2:UpdateIPSet")),
    (
        "WAFV2",
        "GetWebACLForResource",
        WafResource("wafv2:GetWebACLForResource"),
    ),
    ("API Gateway", "GetUsagePlanKeys", ApiGatewayPath),
    ("ApiGatewayV2", "GetApis", ApiGatewayPath),
    ("ApiGatewayV2", "GetApi", ApiGatewayPath),
    ("ApiGatewayV2", "GetStages", ApiGatewayPath),
    ("ApiGatewayV2", "GetStage", ApiGatewayPath),
    ("ApiGatewayV2", "GetRoutes", ApiGatewayPath),
    ("ApiGatewayV2", "UpdateStage", ApiGatewayPath),
    ("DynamoDB", "Query", DynamoTable("dynamodb:Query")),
    ("DynamoDB", "GetItem", DynamoTable("dynamodb:GetItem")),
    ("DynamoDB", "PutItem", DynamoTable("dynamodb:PutItem")),
    ("DynamoDB", "UpdateItem", DynamoTable("dynamodb:UpdateItem")),
    ("DynamoDB", "DeleteItem", DynamoTable("dynamodb:DeleteItem")),
    (
        "DynamoDB",
        "BatchWriteItem",
        DynamoTables("dynamodb:BatchWriteItem"),
    ),
    ("DynamoDB", "BatchGetItem", DynamoTables("dynamodb:BatchGetItem")),
    ("DynamoDB", "TransactWriteItems", DynamoTransaction),
    (
        "CloudWatch",
        "GetMetricData",
        Everywhere("cloudwatch:GetMetricData"),
    ),
    (
        "CloudWatch",
        "DescribeAlarms",
        CloudWatchAlarms("cloudwatch:DescribeAlarms"),
    ),
    (
        "CloudWatch",
        "PutMetricAlarm",
        CloudWatchAlarms("cloudwatch:PutMetricAlarm"),
    ),
    (
        "CloudWatch",
        "DeleteAlarms",
        CloudWatchAlarms("cloudwatch:DeleteAlarms"),
    ),
    (
        "CloudWatch",
        "DescribeInsightRules",
        CloudWatchInsightRules("cloudwatch:DescribeInsightRules"),
    ),
    (
        "CloudWatch",
        "PutInsightRule",
        CloudWatchInsightRules("cloudwatch:PutInsightRule"),
    ),
    (
        "CloudWatch",
        "DeleteInsightRules",
        CloudWatchInsightRules("cloudwatch:DeleteInsightRules"),
    ),
    (
        "CloudWatch",
        "GetInsightRuleReport",
        CloudWatchInsightRules("cloudwatch:GetInsightRuleReport"),
    ),
    ("SNS", "Publish", SnsTopic("sns:Publish")),
    ("STS", "GetCallerIdentity", Nothing),
    // The Resource Groups Tagging API names no resource ("Actions, resources, and
    // condition keys for Resource Group Tagging API").
    (
        "Resource Groups Tagging API",
        "GetResources",
        Everywhere("tag:GetResources"),
    ),
    // Listing the Region's trails names none: a request on every trail.
    (
        "CloudTrail",
        "DescribeTrails",
        Everywhere("cloudtrail:DescribeTrails"),
    ),
    (
        "CloudTrail",
        "GetTrailStatus",
        CloudTrailTrail("cloudtrail:GetTrailStatus", "Name"),
    ),
    (
        "CloudTrail",
        "GetEventSelectors",
        CloudTrailTrail("cloudtrail:GetEventSelectors", "TrailName"),
    ),
];

/// The line of `OPERATIONS` for a service's operation.
pub fn rule(service: &str, operation: &str) -> Option<Rule> {
    OPERATIONS
        .iter()
        .find(|(s, o, _)| *s == service && *o == operation)
        .map(|(_, _, r)| *r)
}

/// What `call` needs authorised, in `deployment`'s partition, region and account.
///
/// # Errors
///
/// [`MapError`] when the operation is not in [`OPERATIONS`] or its request lacks
/// what the rule reads.
pub fn requests(call: &Call, deployment: &Deployment) -> Result<Vec<Request>, MapError> {
    let Some(rule) = rule(&call.service, &call.operation) else {
        return Err(MapError::Unmapped {
            service: call.service.clone(),
            operation: call.operation.clone(),
        });
    };
    let unreadable = |reason: String| MapError::Unreadable {
        service: call.service.clone(),
        operation: call.operation.clone(),
        reason,
    };
    let one = |action: &str, resource: String| Request {
        action: action.to_string(),
        resource,
    };
    let Deployment {
        partition,
        region,
        account,
        ..
    } = deployment;
    let (path, query) = path_and_query(&call.uri);
    match rule {
        Everywhere(action) => Ok(vec![one(action, "*".into())]),
        Nothing => Ok(vec![]),
        LambdaFunction(action) => {
            let segments: Vec<String> = path.split('/').map(percent_decode).collect();
            let named = segments
                .windows(2)
                .find(|w| w[0] == "functions" || w[0] == "tags")
                .map(|w| w[1].clone())
                .ok_or_else(|| unreadable(format!("no function in {path}")))?;
            let mut arn = if named.starts_with("arn:") {
                named
            } else {
                format!("arn:{partition}:lambda:{region}:{account}:function:{named}")
            };
            if let Some(q) = query_value(query, "Qualifier") {
                arn = format!("{arn}:{q}");
            }
            Ok(vec![one(action, arn)])
        }
        ApiGatewayPath => {
            let resource_path = if call.service == "ApiGatewayV2" {
                path.strip_prefix("/v2")
                    .ok_or_else(|| unreadable(format!("{path} is not under /v2")))?
            } else {
                path
            };
            Ok(vec![one(
                &format!("apigateway:{}", call.method.to_ascii_uppercase()),
                format!("arn:{partition}:apigateway:{region}::{resource_path}"),
            )])
        }
        DynamoTable(action) => {
            let body = json(&call.body).map_err(unreadable)?;
            let table = body["TableName"]
                .as_str()
                .ok_or_else(|| unreadable("no TableName".into()))?;
            let mut arn = table_arn(deployment, table);
            if let Some(index) = body["IndexName"].as_str() {
                arn = format!("{arn}/index/{index}");
            }
            Ok(vec![one(action, arn)])
        }
        DynamoTables(action) => {
            let body = json(&call.body).map_err(unreadable)?;
            let tables = body["RequestItems"]
                .as_object()
                .ok_or_else(|| unreadable("no RequestItems".into()))?;
            Ok(tables
                .keys()
                .map(|t| one(action, table_arn(deployment, t)))
                .collect())
        }
        DynamoTransaction => {
            let body = json(&call.body).map_err(unreadable)?;
            let items = body["TransactItems"]
                .as_array()
                .ok_or_else(|| unreadable("no TransactItems".into()))?;
            items
                .iter()
                .map(|item| {
                    let (kind, action) = [
                        ("Put", "dynamodb:PutItem"),
                        ("Update", "dynamodb:UpdateItem"),
                        ("Delete", "dynamodb:DeleteItem"),
                        ("ConditionCheck", "dynamodb:ConditionCheckItem"),
                    ]
                    .into_iter()
                    .find(|(k, _)| item.get(k).is_some())
                    .ok_or_else(|| unreadable(format!("a transaction item of no known kind: {item}")))?;
                    let table = item[kind]["TableName"]
                        .as_str()
                        .ok_or_else(|| unreadable(format!("{kind} without TableName")))?;
                    Ok(one(action, table_arn(deployment, table)))
                })
                .collect()
        }
        CloudWatchInsightRules(action) => {
            let names = cbor_names(&call.body, "RuleName", "RuleNames").map_err(unreadable)?;
            if names.is_empty() {
                Ok(vec![one(action, "*".into())])
            } else {
                Ok(names
                    .iter()
                    .map(|n| {
                        one(
                            action,
                            format!("arn:{partition}:cloudwatch:{region}:{account}:insight-rule/{n}"),
                        )
                    })
                    .collect())
            }
        }
        WafResource(action) => {
            let body = json(&call.body).map_err(unreadable)?;
            let arn = body["ResourceArn"]
                .as_str()
                .ok_or_else(|| unreadable("no ResourceArn".into()))?;
            Ok(vec![one(action, arn.to_string())])
        }
        CloudWatchAlarms(action) => {
            let names = cbor_names(&call.body, "AlarmName", "AlarmNames").map_err(unreadable)?;
            let alarm = |name: &str| format!("arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}");
            if names.is_empty() {
                Ok(vec![one(action, alarm("*"))])
            } else {
                Ok(names.iter().map(|n| one(action, alarm(n))).collect())
            }
        }
        CloudTrailTrail(action, key) => {
            let body = json(&call.body).map_err(unreadable)?;
            let named = body[key]
                .as_str()
                .ok_or_else(|| unreadable(format!("no {key}")))?;
            let arn = if named.starts_with("arn:") {
                named.to_string()
            } else {
                format!("arn:{partition}:cloudtrail:{region}:{account}:trail/{named}")
            };
            Ok(vec![one(action, arn)])
        }
        WafIpSet(action) => {
            let body = json(&call.body).map_err(unreadable)?;
            let field = |key: &str| {
                body[key]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| unreadable(format!("no {key}")))
            };
            let (name, scope, id) = (field("Name")?, field("Scope")?, field("Id")?);
            let scope = scope.to_ascii_lowercase();
            Ok(vec![one(
                action,
                format!("arn:{partition}:wafv2:{region}:{account}:{scope}/ipset/{name}/{id}"),
            )])
        }
        SnsTopic(action) => {
            let form = String::from_utf8_lossy(&call.body);
            let topic = query_value(Some(&form), "TopicArn")
                .ok_or_else(|| unreadable("no TopicArn in the form body".into()))?;
            Ok(vec![one(action, topic)])
        }
    }
}

fn table_arn(deployment: &Deployment, table: &str) -> String {
    format!(
        "arn:{}:dynamodb:{}:{}:table/{table}",
        deployment.partition, deployment.region, deployment.account
    )
}

fn json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// `one` and the members of `many` in a CloudWatch rpcv2Cbor body (`AlarmName`
/// and `AlarmNames`, `RuleName` and `RuleNames`).
fn cbor_names(body: &[u8], one: &str, many: &str) -> Result<Vec<String>, String> {
    if body.is_empty() {
        return Ok(vec![]);
    }
    let value: ciborium::Value =
        ciborium::de::from_reader(body).map_err(|e| format!("the body is not CBOR: {e}"))?;
    let map = value.as_map().ok_or("the CBOR body is not a map")?;
    let mut names = Vec::new();
    for (key, value) in map {
        match key.as_text() {
            Some(k) if k == one => names.extend(value.as_text().map(str::to_string)),
            Some(k) if k == many => names.extend(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_text().map(str::to_string)),
            ),
            _ => {}
        }
    }
    Ok(names)
}

/// The path and the query of a URI (`scheme://authority/path?query` or `/path`).
pub fn path_and_query(uri: &str) -> (&str, Option<&str>) {
    let without_scheme = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let path_start = if uri.contains("://") {
        without_scheme.find('/').unwrap_or(without_scheme.len())
    } else {
        0
    };
    let rest = &without_scheme[path_start..];
    match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    }
}

/// A value of an `application/x-www-form-urlencoded` text (a query or a form body).
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(&v.replace('+', " ")))
    })
}

/// `%XX` escapes decoded (invalid ones kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &str, operation: &str, method: &str, uri: &str, body: &[u8]) -> Call {
        Call {
            function: "Evaluator".into(),
            service: service.into(),
            operation: operation.into(),
            method: method.into(),
            uri: uri.into(),
            body: body.to_vec(),
        }
    }

    fn deployment() -> Deployment {
        Deployment::new(
            "123456789012",
            "us-east-1",
            "dowguard",
            "arn:aws:sns:us-east-1:123456789012:dowguard",
        )
    }

    fn request(action: &str, resource: &str) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
        }
    }

    #[test]
    fn lambda_calls_name_the_function_from_the_path() {
        let d = deployment();
        let put = call(
            "Lambda",
            "PutFunctionConcurrency",
            "PUT",
            "http://127.0.0.1:5000/2017-10-31/functions/checkout/concurrency",
            b"{}",
        );
        assert_eq!(
            requests(&put, &d),
            Ok(vec![request(
                "lambda:PutFunctionConcurrency",
                "arn:aws:lambda:us-east-1:123456789012:function:checkout"
            )])
        );
        let tags = call(
            "Lambda",
            "ListTags",
            "GET",
            "http://127.0.0.1:5000/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Acheckout",
            b"",
        );
        assert_eq!(
            requests(&tags, &d),
            Ok(vec![request(
                "lambda:ListTags",
                "arn:aws:lambda:us-east-1:123456789012:function:checkout"
            )])
        );
        let qualified = call(
            "Lambda",
            "GetFunctionEventInvokeConfig",
            "GET",
            "/2019-09-25/functions/checkout/event-invoke-config?Qualifier=live",
            b"",
        );
        assert_eq!(
            requests(&qualified, &d).map(|r| r[0].resource.clone()),
            Ok("arn:aws:lambda:us-east-1:123456789012:function:checkout:live".into())
        );
    }

    #[test]
    fn a_key_move_is_delete_and_post_under_the_plan_and_an_ip_set_is_named_by_its_body() {
        let d = deployment();
        let delete = call(
            "API Gateway",
            "DeleteUsagePlanKey",
            "DELETE",
            "http://127.0.0.1:5000/usageplans/gold/keys/k1",
            b"",
        );
        let create = call(
            "API Gateway",
            "CreateUsagePlanKey",
            "POST",
            "http://127.0.0.1:5000/usageplans/quarantine/keys",
            br#"{"keyId":"k1","keyType":"API_KEY"}"#,
        );
        let update = call(
            "WAFV2",
            "UpdateIPSet",
            "POST",
            "http://127.0.0.1:5000/",
            br#"{"Name":"blocked","Scope":"REGIONAL","Id":"a1","Addresses":[],"LockToken":"t"}"#,
        );
        assert_eq!(
            requests(&delete, &d),
            Ok(vec![request(
                "apigateway:DELETE",
                "arn:aws:apigateway:us-east-1::/usageplans/gold/keys/k1"
            )])
        );
        assert_eq!(
            requests(&create, &d),
            Ok(vec![request(
                "apigateway:POST",
                "arn:aws:apigateway:us-east-1::/usageplans/quarantine/keys"
            )])
        );
        assert_eq!(
            requests(&update, &d),
            Ok(vec![request(
                "wafv2:UpdateIPSet",
                "arn:aws:wafv2:us-east-1:123456789012:regional/ipset/blocked/a1"
            )])
        );
    }

    #[test]
    fn api_gateway_calls_are_the_verb_on_the_path_and_http_apis_drop_v2() {
        let d = deployment();
        let rest = call(
            "API Gateway",
            "UpdateStage",
            "PATCH",
            "http://127.0.0.1:5000/restapis/a1b2c3/stages/prod",
            b"{}",
        );
        assert_eq!(
            requests(&rest, &d),
            Ok(vec![request(
                "apigateway:PATCH",
                "arn:aws:apigateway:us-east-1::/restapis/a1b2c3/stages/prod"
            )])
        );
        let http = call(
            "ApiGatewayV2",
            "GetApis",
            "GET",
            "http://127.0.0.1:5000/v2/apis?nextToken=x",
            b"",
        );
        assert_eq!(
            requests(&http, &d),
            Ok(vec![request(
                "apigateway:GET",
                "arn:aws:apigateway:us-east-1::/apis"
            )])
        );
    }

    #[test]
    fn dynamodb_calls_name_their_tables_and_transactions_their_item_actions() {
        let d = deployment();
        let get = call(
            "DynamoDB",
            "GetItem",
            "POST",
            "/",
            br#"{"TableName":"dowguard","Key":{}}"#,
        );
        assert_eq!(
            requests(&get, &d),
            Ok(vec![request(
                "dynamodb:GetItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/dowguard"
            )])
        );
        let batch = call(
            "DynamoDB",
            "BatchWriteItem",
            "POST",
            "/",
            br#"{"RequestItems":{"dowguard":[]}}"#,
        );
        assert_eq!(
            requests(&batch, &d),
            Ok(vec![request(
                "dynamodb:BatchWriteItem",
                "arn:aws:dynamodb:us-east-1:123456789012:table/dowguard"
            )])
        );
        let transaction = call(
            "DynamoDB",
            "TransactWriteItems",
            "POST",
            "/",
            br#"{"TransactItems":[{"Put":{"TableName":"t"}},{"Delete":{"TableName":"t"}}]}"#,
        );
        assert_eq!(
            requests(&transaction, &d).map(|r| r.into_iter().map(|r| r.action).collect::<Vec<_>>()),
            Ok(vec!["dynamodb:PutItem".into(), "dynamodb:DeleteItem".into()])
        );
    }

    #[test]
    fn cloudwatch_alarm_calls_name_their_alarms_from_the_cbor_body() {
        let d = deployment();
        let mut body = Vec::new();
        let value = ciborium::Value::Map(vec![(
            ciborium::Value::Text("AlarmNames".into()),
            ciborium::Value::Array(vec![ciborium::Value::Text("dowguard-function:checkout".into())]),
        )]);
        ciborium::ser::into_writer(&value, &mut body).unwrap();
        let delete = call(
            "CloudWatch",
            "DeleteAlarms",
            "POST",
            "/service/GraniteServiceVersion20100801/operation/DeleteAlarms",
            &body,
        );
        assert_eq!(
            requests(&delete, &d),
            Ok(vec![request(
                "cloudwatch:DeleteAlarms",
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:dowguard-function:checkout"
            )])
        );
        let mut by_prefix = Vec::new();
        let value = ciborium::Value::Map(vec![(
            ciborium::Value::Text("AlarmNamePrefix".into()),
            ciborium::Value::Text("dowguard-".into()),
        )]);
        ciborium::ser::into_writer(&value, &mut by_prefix).unwrap();
        let describe = call("CloudWatch", "DescribeAlarms", "POST", "/", &by_prefix);
        assert_eq!(
            requests(&describe, &d),
            Ok(vec![request(
                "cloudwatch:DescribeAlarms",
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:*"
            )])
        );
    }

    #[test]
    fn sns_publish_names_the_topic_of_the_form_body() {
        let d = deployment();
        let publish = call(
            "SNS",
            "Publish",
            "POST",
            "/",
            b"Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Abudget&Message=a+b",
        );
        assert_eq!(
            requests(&publish, &d),
            Ok(vec![request(
                "sns:Publish",
                "arn:aws:sns:us-east-1:123456789012:budget"
            )])
        );
    }

    #[test]
    fn an_operation_without_a_line_is_an_error_naming_it() {
        let d = deployment();
        let invoke = call(
            "Lambda",
            "Invoke",
            "POST",
            "/2015-03-31/functions/x/invocations",
            b"",
        );
        let err = requests(&invoke, &d).unwrap_err();
        assert_eq!(
            err,
            MapError::Unmapped {
                service: "Lambda".into(),
                operation: "Invoke".into()
            }
        );
        assert!(err.to_string().contains("Lambda Invoke"), "{err}");
    }
}
