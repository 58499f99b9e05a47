//! The guard's adapters wired together from one SDK configuration: what the Lambdas,
//! the CLI and the integration tests all build, so each of them talks to AWS the same
//! way.

use std::time::Duration;

use aws_config::SdkConfig;
use dowguard_domain::{GuardSettings, MetricsPlan, Prices};
use dowguard_guard::Guard;

use crate::account::AwsAccount;
use crate::apigateway::RestAdapter;
use crate::apigatewayv2::HttpAdapter;
use crate::cloudwatch::CloudWatchMetrics;
use crate::dynamodb::DynamoStore;
use crate::lambda::LambdaAdapter;
use crate::sns::SnsNotifier;

/// Client-side pacing of the control planes, and the account's own figures the
/// adapters need before they can ask AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Lambda control-plane calls per second (AWS: about 15 shared per account).
    pub lambda_per_second: u32,
    /// The unreserved concurrency the account must keep (AWS: 100, some accounts 50).
    pub unreserved_minimum: u32,
    /// API Gateway calls per second other than UpdateUsagePlan (AWS: about 10).
    pub apigateway_per_second: u32,
    /// The least time between two UpdateUsagePlan calls (AWS: about 20 s).
    pub usage_plan_interval: Duration,
}

impl Default for Pacing {
    /// AWS's documented limits, with a little room for other callers.
    fn default() -> Self {
        Pacing {
            lambda_per_second: 10,
            unreserved_minimum: 100,
            apigateway_per_second: 8,
            usage_plan_interval: Duration::from_secs(20),
        }
    }
}

/// Where the guard keeps its records and sends its notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackConfig {
    /// The DynamoDB table's name.
    pub table: String,
    /// The default SNS topic for notices (a budget may name its own).
    pub topic_arn: Option<String>,
    /// How long audit records are kept before DynamoDB's TTL removes them.
    pub audit_retention: chrono::Duration,
    /// Control-plane pacing.
    pub pacing: Pacing,
    /// Which metrics are fetched how often.
    pub metrics_plan: MetricsPlan,
}

impl StackConfig {
    /// A configuration with the defaults for everything but the table's name.
    pub fn new(table: impl Into<String>) -> Self {
        StackConfig {
            table: table.into(),
            topic_arn: None,
            audit_retention: chrono::Duration::days(90),
            pacing: Pacing::default(),
            metrics_plan: MetricsPlan::default(),
        }
    }
}

/// Every adapter the guard acts through, built once per process.
#[derive(Debug)]
pub struct AwsStack {
    /// Budgets, states and the audit trail.
    pub store: DynamoStore,
    /// Discovery, metrics and the actuators.
    pub account: AwsAccount,
    /// Notices.
    pub notifier: SnsNotifier,
}

/// The guard over an [`AwsStack`].
pub type AwsGuard<'a> =
    Guard<'a, DynamoStore, AwsAccount, AwsAccount, AwsAccount, AwsAccount, AwsAccount, SnsNotifier>;

impl AwsStack {
    /// Builds every client and adapter from one SDK configuration.
    pub fn new(sdk: &SdkConfig, config: &StackConfig) -> Self {
        let pacing = config.pacing;
        AwsStack {
            store: DynamoStore::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config.table.clone(),
                config.audit_retention,
            ),
            account: AwsAccount::new(
                LambdaAdapter::new(
                    aws_sdk_lambda::Client::new(sdk),
                    pacing.lambda_per_second,
                    pacing.unreserved_minimum,
                ),
                RestAdapter::new(
                    aws_sdk_apigateway::Client::new(sdk),
                    pacing.apigateway_per_second,
                    pacing.usage_plan_interval,
                ),
                HttpAdapter::new(
                    aws_sdk_apigatewayv2::Client::new(sdk),
                    aws_sdk_apigateway::Client::new(sdk),
                    pacing.apigateway_per_second,
                ),
                CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(sdk), config.metrics_plan),
            ),
            notifier: SnsNotifier::new(aws_sdk_sns::Client::new(sdk), config.topic_arn.clone()),
        }
    }

    /// The guard over these adapters, acting as `actor` with `prices` and `settings`.
    pub fn guard<'a>(
        &'a self,
        actor: &'a str,
        prices: &'a Prices,
        settings: &'a GuardSettings,
    ) -> AwsGuard<'a> {
        Guard {
            store: &self.store,
            discovery: &self.account,
            metrics: &self.account,
            lambda: &self.account,
            stages: &self.account,
            plans: &self.account,
            notifier: &self.notifier,
            prices,
            settings,
            actor,
        }
    }
}
