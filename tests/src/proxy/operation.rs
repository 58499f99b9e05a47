//! Which AWS service and operation a request is, read from the request alone.
//!
//! The service is the one the request is signed for: the SigV4 `Authorization`
//! header's credential scope, `Credential=AKID/DATE/REGION/SERVICE/aws4_request`
//! ("Elements of an AWS API request signature", AWS Identity and Access Management
//! user guide). API Gateway signs its REST (V1) and HTTP (V2) management APIs
//! alike as `apigateway`, so the API is told from the path (`/v2/...`).
//!
//! The operation comes from where each protocol puts it: the method and path for
//! the REST-JSON APIs (Lambda, API Gateway V1 and V2; the request URIs of their API
//! references, listed in [`ROUTES`]), `X-Amz-Target` for DynamoDB, the path
//! `/service/<service>/operation/<Op>` for CloudWatch over Smithy RPC v2 CBOR, and
//! the form body's `Action` for SNS, STS and IAM. A request the proxy cannot name
//! is named by its method and path.

use super::wire::Message;

/// The service and operation of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    /// The signing service of the credential scope (`lambda`, `apigateway`,
    /// `dynamodb`, `monitoring`...), empty for an unsigned request.
    pub service: String,
    /// The API the operation belongs to, named as the SDK crate is
    /// (`lambda`, `apigateway`, `apigatewayv2`, `dynamodb`, `cloudwatch`, `sns`,
    /// `sts`, `iam`); the signing service for any other.
    pub api: String,
    /// The operation's name (`PutFunctionConcurrency`), or `METHOD /path` when the
    /// proxy does not know it.
    pub name: String,
}

impl Operation {
    /// `api:name`, e.g. `apigatewayv2:UpdateStage`: the key the counts use.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}:{}", self.api, self.name)
    }
}

/// Request URIs of the REST-JSON operations the guard, its tests and its CLI use,
/// as `(API, method, URI template, operation)`. A `{label}` matches one path
/// segment, a `{label+}` the rest of the path.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    // AWS Lambda API reference.
    ("lambda", "GET", "/2015-03-31/functions", "ListFunctions"),
    ("lambda", "POST", "/2015-03-31/functions", "CreateFunction"),
    (
        "lambda",
        "GET",
        "/2015-03-31/functions/{FunctionName}",
        "GetFunction",
    ),
    (
        "lambda",
        "DELETE",
        "/2015-03-31/functions/{FunctionName}",
        "DeleteFunction",
    ),
    (
        "lambda",
        "GET",
        "/2015-03-31/functions/{FunctionName}/configuration",
        "GetFunctionConfiguration",
    ),
    (
        "lambda",
        "GET",
        "/2015-03-31/functions/{FunctionName}/policy",
        "GetPolicy",
    ),
    (
        "lambda",
        "POST",
        "/2015-03-31/functions/{FunctionName}/invocations",
        "Invoke",
    ),
    (
        "lambda",
        "POST",
        "/2014-11-13/functions/{FunctionName}/invoke-async",
        "InvokeAsync",
    ),
    (
        "lambda",
        "POST",
        "/2021-11-15/functions/{FunctionName}/response-streaming-invocations",
        "InvokeWithResponseStream",
    ),
    (
        "lambda",
        "GET",
        "/2019-09-30/functions/{FunctionName}/concurrency",
        "GetFunctionConcurrency",
    ),
    (
        "lambda",
        "PUT",
        "/2017-10-31/functions/{FunctionName}/concurrency",
        "PutFunctionConcurrency",
    ),
    (
        "lambda",
        "DELETE",
        "/2017-10-31/functions/{FunctionName}/concurrency",
        "DeleteFunctionConcurrency",
    ),
    (
        "lambda",
        "GET",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "GetFunctionEventInvokeConfig",
    ),
    (
        "lambda",
        "PUT",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "PutFunctionEventInvokeConfig",
    ),
    (
        "lambda",
        "POST",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "UpdateFunctionEventInvokeConfig",
    ),
    (
        "lambda",
        "DELETE",
        "/2019-09-25/functions/{FunctionName}/event-invoke-config",
        "DeleteFunctionEventInvokeConfig",
    ),
    ("lambda", "GET", "/2017-03-31/tags/{Resource+}", "ListTags"),
    ("lambda", "POST", "/2017-03-31/tags/{Resource+}", "TagResource"),
    (
        "lambda",
        "DELETE",
        "/2017-03-31/tags/{Resource+}",
        "UntagResource",
    ),
    (
        "lambda",
        "GET",
        "/2016-08-19/account-settings",
        "GetAccountSettings",
    ),
    // Amazon API Gateway (V1) API reference.
    ("apigateway", "GET", "/account", "GetAccount"),
    ("apigateway", "GET", "/restapis", "GetRestApis"),
    ("apigateway", "POST", "/restapis", "CreateRestApi"),
    ("apigateway", "GET", "/restapis/{restapi_id}", "GetRestApi"),
    ("apigateway", "DELETE", "/restapis/{restapi_id}", "DeleteRestApi"),
    (
        "apigateway",
        "GET",
        "/restapis/{restapi_id}/resources",
        "GetResources",
    ),
    (
        "apigateway",
        "GET",
        "/restapis/{restapi_id}/resources/{resource_id}",
        "GetResource",
    ),
    (
        "apigateway",
        "PUT",
        "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}",
        "PutMethod",
    ),
    (
        "apigateway",
        "PUT",
        "/restapis/{restapi_id}/resources/{resource_id}/methods/{http_method}/integration",
        "PutIntegration",
    ),
    (
        "apigateway",
        "POST",
        "/restapis/{restapi_id}/deployments",
        "CreateDeployment",
    ),
    ("apigateway", "GET", "/restapis/{restapi_id}/stages", "GetStages"),
    (
        "apigateway",
        "POST",
        "/restapis/{restapi_id}/stages",
        "CreateStage",
    ),
    (
        "apigateway",
        "GET",
        "/restapis/{restapi_id}/stages/{stage_name}",
        "GetStage",
    ),
    (
        "apigateway",
        "PATCH",
        "/restapis/{restapi_id}/stages/{stage_name}",
        "UpdateStage",
    ),
    ("apigateway", "GET", "/usageplans", "GetUsagePlans"),
    ("apigateway", "POST", "/usageplans", "CreateUsagePlan"),
    ("apigateway", "GET", "/usageplans/{usageplanId}", "GetUsagePlan"),
    (
        "apigateway",
        "PATCH",
        "/usageplans/{usageplanId}",
        "UpdateUsagePlan",
    ),
    ("apigateway", "GET", "/tags/{resource_arn+}", "GetTags"),
    // Amazon API Gateway Version 2 API reference.
    ("apigatewayv2", "GET", "/v2/apis", "GetApis"),
    ("apigatewayv2", "POST", "/v2/apis", "CreateApi"),
    ("apigatewayv2", "GET", "/v2/apis/{apiId}", "GetApi"),
    ("apigatewayv2", "GET", "/v2/apis/{apiId}/stages", "GetStages"),
    ("apigatewayv2", "POST", "/v2/apis/{apiId}/stages", "CreateStage"),
    (
        "apigatewayv2",
        "GET",
        "/v2/apis/{apiId}/stages/{stageName}",
        "GetStage",
    ),
    (
        "apigatewayv2",
        "PATCH",
        "/v2/apis/{apiId}/stages/{stageName}",
        "UpdateStage",
    ),
    (
        "apigatewayv2",
        "DELETE",
        "/v2/apis/{apiId}/stages/{stageName}",
        "DeleteStage",
    ),
    ("apigatewayv2", "GET", "/v2/apis/{apiId}/routes", "GetRoutes"),
    ("apigatewayv2", "GET", "/v2/tags/{resource-arn}", "GetTags"),
];

/// The signing service of a SigV4 `Authorization` header's credential scope.
#[must_use]
pub fn signing_service(authorization: &str) -> Option<&str> {
    let credential = authorization.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    // AKID / date / region / service / aws4_request
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [.., service, "aws4_request"] if parts.len() >= 5 => Some(service),
        _ => None,
    }
}

/// Whether `path` matches the URI `template`.
fn matches(template: &str, path: &str) -> bool {
    let mut want = template.trim_matches('/').split('/');
    let mut got = path.trim_matches('/').split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with("+}") => return !g.is_empty(),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

/// The operation of `request` (method and request target as sent).
pub(crate) fn classify(method: &str, target: &str, request: &Message) -> Operation {
    let path = target.split('?').next().unwrap_or_default();
    let service = request
        .header("authorization")
        .and_then(signing_service)
        .unwrap_or_default()
        .to_string();
    let unknown = || format!("{method} {path}");
    let (api, name) = match service.as_str() {
        "lambda" | "apigateway" => ROUTES
            .iter()
            .find(|(api, m, t, _)| {
                *m == method && matches(t, path) && (service == "lambda") == (*api == "lambda")
            })
            .map_or_else(
                || {
                    let api = if service == "apigateway" && path.starts_with("/v2/") {
                        "apigatewayv2"
                    } else {
                        service.as_str()
                    };
                    (api.to_string(), unknown())
                },
                |(api, _, _, op)| ((*api).to_string(), (*op).to_string()),
            ),
        // awsJson: the operation is the `X-Amz-Target` after its prefix.
        "tagging" | "cloudtrail" => (
            service.clone(),
            request
                .header("x-amz-target")
                .and_then(|t| t.rsplit_once('.'))
                .map_or_else(unknown, |(_, op)| op.to_string()),
        ),
        "dynamodb" => (
            "dynamodb".into(),
            request
                .header("x-amz-target")
                .and_then(|t| t.split_once('.'))
                .map_or_else(unknown, |(_, op)| op.to_string()),
        ),
        "monitoring" => (
            "cloudwatch".into(),
            path.rsplit_once("/operation/")
                .map(|(_, op)| op.to_string())
                .or_else(|| {
                    request
                        .header("x-amz-target")
                        .and_then(|t| t.split_once('.'))
                        .map(|(_, op)| op.to_string())
                })
                .unwrap_or_else(unknown),
        ),
        other => (
            other.to_string(),
            form_action(&request.body).unwrap_or_else(unknown),
        ),
    };
    Operation { service, api, name }
}

/// The `Action` of a form-encoded (AWS query protocol) body.
fn form_action(body: &[u8]) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (String, String, Message) {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let message = Message {
            head,
            body: body.as_bytes().to_vec(),
        };
        (method.to_string(), target.to_string(), message)
    }

    fn signed(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/20261122/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
        )
    }

    fn key(method: &str, target: &str, service: &str, extra: &[(&str, &str)], body: &str) -> String {
        let auth = signed(service);
        let mut headers = vec![("Authorization", auth.as_str())];
        headers.extend_from_slice(extra);
        let (m, t, r) = request(method, target, &headers, body);
        let op = classify(&m, &t, &r);
        assert_eq!(op.service, service);
        op.key()
    }

    #[test]
    fn the_signing_service_is_read_from_the_credential_scope() {
        assert_eq!(signing_service(&signed("lambda")), Some("lambda"));
        assert_eq!(signing_service(&signed("apigateway")), Some("apigateway"));
        assert_eq!(signing_service("Bearer token"), None);
        assert_eq!(
            signing_service("AWS4-HMAC-SHA256 Credential=AKID/aws4_request, Signature=x"),
            None
        );
    }

    #[test]
    fn rest_json_operations_are_named_from_method_and_path() {
        assert_eq!(
            key(
                "PUT",
                "/2017-10-31/functions/checkout/concurrency",
                "lambda",
                &[],
                "{}"
            ),
            "lambda:PutFunctionConcurrency"
        );
        assert_eq!(
            key("GET", "/2015-03-31/functions/?MaxItems=50", "lambda", &[], ""),
            "lambda:ListFunctions"
        );
        assert_eq!(
            key(
                "GET",
                "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Acheckout",
                "lambda",
                &[],
                ""
            ),
            "lambda:ListTags"
        );
        assert_eq!(
            key("GET", "/2015-03-31/functions/checkout", "lambda", &[], ""),
            "lambda:GetFunction"
        );
        assert_eq!(
            key("PATCH", "/usageplans/abc123", "apigateway", &[], "{}"),
            "apigateway:UpdateUsagePlan"
        );
        assert_eq!(
            key(
                "GET",
                "/restapis/a1b2/resources?embed=methods",
                "apigateway",
                &[],
                ""
            ),
            "apigateway:GetResources"
        );
        assert_eq!(
            key("PATCH", "/restapis/a1b2/stages/prod", "apigateway", &[], "{}"),
            "apigateway:UpdateStage"
        );
        assert_eq!(
            key("PATCH", "/v2/apis/x9/stages/prod", "apigateway", &[], "{}"),
            "apigatewayv2:UpdateStage"
        );
        assert_eq!(
            key("GET", "/v2/apis/x9/integrations", "apigateway", &[], ""),
            "apigatewayv2:GET /v2/apis/x9/integrations"
        );
    }

    #[test]
    fn rpc_and_query_operations_are_named_from_their_target_path_or_action() {
        assert_eq!(
            key(
                "POST",
                "/",
                "dynamodb",
                &[("X-Amz-Target", "DynamoDB_20120810.PutItem")],
                "{}"
            ),
            "dynamodb:PutItem"
        );
        assert_eq!(
            key(
                "POST",
                "/service/GraniteServiceVersion20100801/operation/GetMetricData",
                "monitoring",
                &[],
                ""
            ),
            "cloudwatch:GetMetricData"
        );
        assert_eq!(
            key("POST", "/", "sns", &[], "Action=Publish&Version=2010-03-31"),
            "sns:Publish"
        );
    }
}
