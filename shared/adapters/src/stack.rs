//! The guard's adapters wired together from one SDK configuration: what the Lambdas,
//! the CLI and the integration tests all build, so each of them talks to AWS the same
//! way.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use dowguard_domain::{GuardSettings, MetricsPlan, Prices};
use dowguard_guard::Guard;

use crate::account::AwsAccount;
use crate::apigateway::RestAdapter;
use crate::apigatewayv2::HttpAdapter;
use crate::cloudwatch::CloudWatchMetrics;
use crate::dynamodb::DynamoStore;
use crate::lambda::LambdaAdapter;
use crate::lease::TableLeases;
use crate::sns::SnsNotifier;

/// Client-side pacing of the control planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Lambda control-plane calls per second (AWS: about 15 shared per account).
    pub lambda_per_second: u32,
    /// API Gateway calls per second other than UpdateUsagePlan (AWS: about 10).
    pub apigateway_per_second: u32,
    /// The least time between two UpdateUsagePlan calls (AWS: about 20 s), in this
    /// process and, through the table's slot, across every process of the stack.
    pub usage_plan_interval: Duration,
}

impl Default for Pacing {
    /// AWS's documented limits, with a little room for other callers.
    fn default() -> Self {
        Pacing {
            lambda_per_second: 10,
            apigateway_per_second: 8,
            usage_plan_interval: Duration::from_secs(20),
        }
    }
}

/// SDK interceptors installed on every client the guard builds, in order. Empty by
/// default, and then each client is exactly the one `Client::new(sdk)` builds; the
/// tests install recorders here to see every call the guard makes.
#[derive(Debug, Clone, Default)]
pub struct Interceptors(Vec<SharedInterceptor>);

/// Builds one service's client from `sdk` with the interceptors pushed onto its
/// configuration.
macro_rules! client_with {
    ($(#[$doc:meta])* $name:ident, $sdk_crate:ident) => {
        $(#[$doc])*
        pub fn $name(&self, sdk: &SdkConfig) -> $sdk_crate::Client {
            let mut builder = $sdk_crate::config::Builder::from(sdk);
            for interceptor in &self.0 {
                builder.push_interceptor(interceptor.clone());
            }
            $sdk_crate::Client::from_conf(builder.build())
        }
    };
}

impl Interceptors {
    /// These interceptors, in the order given.
    pub fn new(interceptors: impl IntoIterator<Item = SharedInterceptor>) -> Self {
        Interceptors(interceptors.into_iter().collect())
    }

    client_with!(
        /// A DynamoDB client.
        dynamodb,
        aws_sdk_dynamodb
    );
    client_with!(
        /// A Lambda client.
        lambda,
        aws_sdk_lambda
    );
    client_with!(
        /// An API Gateway (REST APIs and usage plans) client.
        apigateway,
        aws_sdk_apigateway
    );
    client_with!(
        /// An API Gateway V2 (HTTP APIs) client.
        apigatewayv2,
        aws_sdk_apigatewayv2
    );
    client_with!(
        /// A CloudWatch client.
        cloudwatch,
        aws_sdk_cloudwatch
    );
    client_with!(
        /// An SNS client.
        sns,
        aws_sdk_sns
    );
}

/// Where the guard keeps its records and sends its notices.
#[derive(Debug, Clone)]
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
    /// Interceptors on every client (none in the functions and the CLI).
    pub interceptors: Interceptors,
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
            interceptors: Interceptors::default(),
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
    /// Leases, the pass counter and the account-wide pacing slots, in the table.
    pub leases: TableLeases,
}

/// The guard over an [`AwsStack`].
pub type AwsGuard<'a> =
    Guard<'a, DynamoStore, AwsAccount, AwsAccount, AwsAccount, AwsAccount, AwsAccount, SnsNotifier>;

impl AwsStack {
    /// Builds every client and adapter from one SDK configuration, each client with
    /// the configuration's interceptors.
    pub fn new(sdk: &SdkConfig, config: &StackConfig) -> Self {
        let pacing = config.pacing;
        let clients = &config.interceptors;
        let dynamo = clients.dynamodb(sdk);
        let leases = TableLeases::new(dynamo.clone(), config.table.clone());
        AwsStack {
            store: DynamoStore::new(dynamo, config.table.clone(), config.audit_retention),
            account: AwsAccount::new(
                LambdaAdapter::new(clients.lambda(sdk), pacing.lambda_per_second),
                RestAdapter::new(
                    clients.apigateway(sdk),
                    pacing.apigateway_per_second,
                    pacing.usage_plan_interval,
                )
                .with_plan_slot(leases.clone()),
                HttpAdapter::new(
                    clients.apigatewayv2(sdk),
                    clients.apigateway(sdk),
                    pacing.apigateway_per_second,
                ),
                CloudWatchMetrics::new(clients.cloudwatch(sdk), config.metrics_plan),
            ),
            notifier: SnsNotifier::new(clients.sns(sdk), config.topic_arn.clone()),
            leases,
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
