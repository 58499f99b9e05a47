//! Resources the tests create in the local AWS server: functions (with the IAM role
//! they need), REST APIs with a deployed stage, usage plans, HTTP APIs.

use std::error::Error;

use aws_sdk_apigateway::types::{IntegrationType, QuotaPeriodType, QuotaSettings, ThrottleSettings};
use aws_sdk_apigatewayv2::types::{ProtocolType, RouteSettings};
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_smithy_types::Blob;

use crate::LocalAws;

/// A fixture's result.
pub type FixtureResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The smallest valid zip archive: an empty one (just the end-of-central-directory
/// record). The server stores the code without running it.
pub const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The trust policy of a Lambda execution role.
pub const LAMBDA_TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The tag that lets the guard's roles change a resource
/// (`aws:ResourceTag/dowguard-guarded = true` in the template's write permissions).
/// Every resource the fixtures create carries it unless a test says otherwise.
pub const GUARDED: (&str, &str) = ("dowguard-guarded", "true");

/// Creates an execution role and a 512 MB function `name` using it, tagged
/// [`GUARDED`]; returns its ARN.
///
/// # Errors
///
/// Any SDK error from IAM or Lambda.
pub async fn create_function(aws: &LocalAws, name: &str) -> FixtureResult<String> {
    create_function_with(aws, name, 512, &[GUARDED]).await
}

/// Creates a function with the given memory and tags; returns its ARN.
///
/// # Errors
///
/// Any SDK error from IAM or Lambda.
pub async fn create_function_with(
    aws: &LocalAws,
    name: &str,
    memory_mb: i32,
    tags: &[(&str, &str)],
) -> FixtureResult<String> {
    let config = aws.sdk_config();
    let role = aws_sdk_iam::Client::new(&config)
        .create_role()
        .role_name(format!("{name}-role"))
        .assume_role_policy_document(LAMBDA_TRUST_POLICY)
        .send()
        .await?;
    let role_arn = role
        .role()
        .map(aws_sdk_iam::types::Role::arn)
        .ok_or("role without arn")?;
    let mut create = aws_sdk_lambda::Client::new(&config)
        .create_function()
        .function_name(name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .memory_size(memory_mb)
        .role(role_arn)
        .code(FunctionCode::builder().zip_file(Blob::new(EMPTY_ZIP)).build());
    for (k, v) in tags {
        create = create.tags(*k, *v);
    }
    let function = create.send().await?;
    Ok(function.function_arn().ok_or("function without arn")?.to_owned())
}

/// Creates a REST API `name` tagged [`GUARDED`] (its stages inherit the tag for
/// IAM), with one `GET /` mock method, deploys it to `stage`; returns the API id.
///
/// # Errors
///
/// Any SDK error from API Gateway.
pub async fn create_rest_api(aws: &LocalAws, name: &str, stage: &str) -> FixtureResult<String> {
    let client = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let api = client
        .create_rest_api()
        .name(name)
        .tags(GUARDED.0, GUARDED.1)
        .send()
        .await?;
    let api_id = api.id().ok_or("api without id")?.to_owned();
    let resources = client.get_resources().rest_api_id(&api_id).send().await?;
    let root = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .ok_or("no root resource")?
        .to_owned();
    client
        .put_method()
        .rest_api_id(&api_id)
        .resource_id(&root)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await?;
    client
        .put_integration()
        .rest_api_id(&api_id)
        .resource_id(&root)
        .http_method("GET")
        .r#type(IntegrationType::Mock)
        .send()
        .await?;
    client
        .create_deployment()
        .rest_api_id(&api_id)
        .stage_name(stage)
        .send()
        .await?;
    Ok(api_id)
}

/// Creates a usage plan over `api_id`/`stage`, tagged [`GUARDED`], with a 100 rps /
/// 200 burst throttle and a 10,000-a-day quota; returns its id.
///
/// # Errors
///
/// Any SDK error from API Gateway.
pub async fn create_usage_plan(aws: &LocalAws, api_id: &str, stage: &str) -> FixtureResult<String> {
    let client = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    let plan = client
        .create_usage_plan()
        .name(format!("{api_id}-{stage}-partners"))
        .tags(GUARDED.0, GUARDED.1)
        .throttle(
            ThrottleSettings::builder()
                .rate_limit(100.0)
                .burst_limit(200)
                .build(),
        )
        .quota(
            QuotaSettings::builder()
                .limit(10_000)
                .period(QuotaPeriodType::Day)
                .build(),
        )
        .api_stages(
            aws_sdk_apigateway::types::ApiStage::builder()
                .api_id(api_id)
                .stage(stage)
                .build(),
        )
        .send()
        .await?;
    Ok(plan.id().ok_or("usage plan without id")?.to_owned())
}

/// Creates an HTTP API `name` with a stage, tagged [`GUARDED`] itself (HTTP API
/// stages do not inherit their API's tags), whose default route is throttled at
/// 50 rps / 100 burst; returns the API id.
///
/// # Errors
///
/// Any SDK error from API Gateway.
pub async fn create_http_api(aws: &LocalAws, name: &str, stage: &str) -> FixtureResult<String> {
    let default = RouteSettings::builder()
        .throttling_rate_limit(50.0)
        .throttling_burst_limit(100)
        .build();
    create_http_api_with(aws, name, stage, Some(default), &[]).await
}

/// Creates an HTTP API `name` with a stage tagged [`GUARDED`], with the given
/// default route settings (none: the server's, no throttle) and per-route
/// settings by route key; returns the API id.
///
/// # Errors
///
/// Any SDK error from API Gateway.
pub async fn create_http_api_with(
    aws: &LocalAws,
    name: &str,
    stage: &str,
    default: Option<RouteSettings>,
    routes: &[(&str, RouteSettings)],
) -> FixtureResult<String> {
    let client = aws_sdk_apigatewayv2::Client::new(&aws.sdk_config());
    let api = client
        .create_api()
        .name(name)
        .protocol_type(ProtocolType::Http)
        .send()
        .await?;
    let api_id = api.api_id().ok_or("http api without id")?.to_owned();
    let mut create = client
        .create_stage()
        .api_id(&api_id)
        .stage_name(stage)
        .tags(GUARDED.0, GUARDED.1)
        .set_default_route_settings(default);
    for (key, settings) in routes {
        create = create.route_settings(*key, settings.clone());
    }
    create.send().await?;
    Ok(api_id)
}

/// Creates an S3 bucket `name` with a bare path-style `PUT /name`: the local
/// server routes a request by the service its `Authorization` header names and
/// checks no signature, and the tests need a bucket only so that a trail can name
/// one (`CreateTrail` refuses a bucket that does not exist).
///
/// # Errors
///
/// The connection's errors, or an answer other than 200.
pub async fn create_bucket(aws: &LocalAws, name: &str) -> FixtureResult<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = aws
        .endpoint()
        .strip_prefix("http://")
        .ok_or("the endpoint is not plain http")?;
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let request = format!(
        "PUT /{name} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=AKIDLOCALTEST/20260101/{region}/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        region = crate::REGION
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.contains(" 200 ") {
        Ok(())
    } else {
        Err(format!("creating bucket {name}: {status}").into())
    }
}

/// Creates a trail `name` over a new bucket, logging if `logging`; its event
/// selectors are CloudTrail's defaults (every management event).
///
/// # Errors
///
/// Any SDK or connection error.
pub async fn create_trail(aws: &LocalAws, name: &str, logging: bool) -> FixtureResult<()> {
    let bucket = format!("{name}-logs");
    create_bucket(aws, &bucket).await?;
    let client = aws_sdk_cloudtrail::Client::new(&aws.sdk_config());
    client
        .create_trail()
        .name(name)
        .s3_bucket_name(bucket)
        .is_multi_region_trail(true)
        .send()
        .await?;
    if logging {
        client.start_logging().name(name).send().await?;
    }
    Ok(())
}

/// The account's Contributor Insights rules as (name, state), sorted.
///
/// # Errors
///
/// Any CloudWatch error.
pub async fn insight_rules(aws: &LocalAws) -> FixtureResult<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = aws_sdk_cloudwatch::Client::new(&aws.sdk_config())
        .describe_insight_rules()
        .send()
        .await?
        .insight_rules()
        .iter()
        .map(|r| {
            (
                r.name().unwrap_or_default().to_string(),
                r.state().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    Ok(out)
}
