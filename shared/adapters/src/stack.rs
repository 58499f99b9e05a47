//! The guard's adapters wired together from one SDK configuration: what the Lambdas,
//! the CLI and the integration tests all build, so each of them talks to AWS the same
//! way.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use dowguard_domain::{GuardSettings, MetricsPlan, Prices};
use dowguard_guard::Guard;
use dowguard_guard::ports::{Deployment, Ports};

use crate::account::AwsAccount;
use crate::alarms::CloudWatchAlarms;
use crate::apigateway::RestAdapter;
use crate::apigatewayv2::HttpAdapter;
use crate::cloudwatch::CloudWatchMetrics;
use crate::dynamodb::DynamoStore;
use crate::insights::InsightRules;
use crate::lambda::LambdaAdapter;
use crate::lease::TableLeases;
use crate::pace::Pacer;
use crate::ranking::Ranking;
use crate::sns::SnsNotifier;
use crate::tagging::TaggingAdapter;
use crate::trail::TrailAdapter;
use crate::waf::WafAdapter;

/// The account-wide control-plane quotas the guard shares with everyone else in the
/// account. None can be raised.
pub mod quotas {
    use std::time::Duration;

    /// Lambda: "Remainder of the control plane API requests (excludes invocation,
    /// GetFunction, and GetPolicy requests): 15 requests per second across all
    /// APIs" ("Lambda quotas"). Every Lambda call the guard makes counts.
    pub const LAMBDA_PER_SECOND: u32 = 15;
    /// API Gateway: "Total operations: 10 requests per second with a burst quota
    /// of 40" ("Amazon API Gateway quotas", API Gateway quotas for creating,
    /// deploying and managing an API), for REST and HTTP APIs together.
    pub const APIGATEWAY_PER_SECOND: u32 = 10;
    /// API Gateway `UpdateUsagePlan`: "1 request every 20 seconds per account"
    /// (the same table).
    pub const UPDATE_USAGE_PLAN_INTERVAL: Duration = Duration::from_secs(20);
    /// The Resource Groups Tagging API's `GetResources`: "Maximum of 15 calls per
    /// second" (Tag Editor user guide, "Service quotas").
    pub const GET_RESOURCES_PER_SECOND: u32 = crate::tagging::GET_RESOURCES_PER_SECOND;
}

/// Which of the guard's processes a stack is built for. Up to one of each may call
/// AWS at the same time: the evaluator holds a lease in the table, the alarm
/// responder a slot in the table (one responder pass at a time), the inventory
/// function a lease of its own, and a person runs the CLI. Each paces itself to its
/// share of each account-wide quota, and the shares of all four add up to less than
/// the quota ([`Pacing::for_role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The scheduled evaluator: every budget each pass, from the inventory.
    Evaluator,
    /// The alarm responder: one alarmed target's budgets.
    Responder,
    /// The inventory function: reconciliation and change events.
    Inventory,
    /// The `dowguard` command line.
    Cli,
}

impl Role {
    /// Every role, for checks over all of them.
    pub const ALL: [Role; 4] = [Role::Evaluator, Role::Responder, Role::Inventory, Role::Cli];
}

/// Client-side pacing of the control planes: one pacer per service in a process,
/// shared by every adapter of that service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Lambda control-plane calls per second.
    pub lambda_per_second: u32,
    /// API Gateway calls per second (REST and HTTP APIs together, `GetAccount`,
    /// `GetResources` and `UpdateUsagePlan` included).
    pub apigateway_per_second: u32,
    /// The least time between two UpdateUsagePlan calls, in this process and,
    /// through the table's slot, across every process of the stack.
    pub usage_plan_interval: Duration,
    /// Resource Groups Tagging API `GetResources` calls per second.
    pub tagging_per_second: u32,
}

impl Pacing {
    /// The share of each account-wide quota ([`quotas`]) that `role` takes. The
    /// evaluator reads the inventory instead of listing the account, so its calls
    /// are the changes it makes; the inventory function, which reads the account a
    /// slice at a time, takes most of the Lambda and tagging shares. With all four
    /// running at once the guard uses 14 of Lambda's 15 calls a second, 9 of API
    /// Gateway's 10 and 13 of `GetResources`' 15, leaving room for the account's
    /// own deploys.
    pub fn for_role(role: Role) -> Self {
        let (lambda_per_second, apigateway_per_second, tagging_per_second) = match role {
            Role::Evaluator => (5, 3, 2),
            Role::Responder => (3, 2, 1),
            Role::Inventory => (4, 2, 8),
            Role::Cli => (2, 2, 2),
        };
        Pacing {
            lambda_per_second,
            apigateway_per_second,
            usage_plan_interval: quotas::UPDATE_USAGE_PLAN_INTERVAL,
            tagging_per_second,
        }
    }
}

impl Default for Pacing {
    /// The evaluator's share.
    fn default() -> Self {
        Pacing::for_role(Role::Evaluator)
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
    client_with!(
        /// A Resource Groups Tagging API client.
        tagging,
        aws_sdk_resourcegroupstagging
    );
    client_with!(
        /// A CloudTrail client.
        cloudtrail,
        aws_sdk_cloudtrail
    );
    client_with!(
        /// An AWS WAF (v2) client.
        wafv2,
        aws_sdk_wafv2
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
    /// The name prefix of the alarms the deployment owns.
    pub alarm_prefix: String,
    /// Whether the guard ranks the callers of REST API stages (Contributor
    /// Insights rules over their access logs), to hold the few that cause the
    /// spend.
    pub caller_ranking: bool,
    /// The usage plan a quarantined API key is moved to, if the deployment has one.
    pub quarantine_plan: Option<dowguard_domain::UsagePlanId>,
    /// The most notices the deployment publishes an hour, counted in the table
    /// (none: no cap, as for the CLI's release notices).
    pub notices_per_hour: Option<u32>,
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
            alarm_prefix: "dowguard-".to_string(),
            caller_ranking: true,
            quarantine_plan: None,
            notices_per_hour: None,
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
    /// dowguard's alarms.
    pub alarms: CloudWatchAlarms,
}

/// The guard over an [`AwsStack`].
pub type AwsGuard<'a> = Guard<'a, AwsStack>;

impl Ports for AwsStack {
    type Store = DynamoStore;
    type Account = AwsAccount;
    type Notifier = SnsNotifier;
    fn store(&self) -> &DynamoStore {
        &self.store
    }
    fn account(&self) -> &AwsAccount {
        &self.account
    }
    fn notifier(&self) -> &SnsNotifier {
        &self.notifier
    }
}

impl Deployment for AwsStack {
    type Leases = TableLeases;
    type Alarms = CloudWatchAlarms;
    fn leases(&self) -> &TableLeases {
        &self.leases
    }
    fn alarms(&self) -> &CloudWatchAlarms {
        &self.alarms
    }
}

impl AwsStack {
    /// Builds every client and adapter from one SDK configuration, each client with
    /// the configuration's interceptors.
    pub fn new(sdk: &SdkConfig, config: &StackConfig) -> Self {
        let pacing = config.pacing;
        let clients = &config.interceptors;
        // One pacer for API Gateway's control plane, shared by REST and HTTP APIs.
        let gateway = Arc::new(Pacer::per_second(pacing.apigateway_per_second));
        let dynamo = clients.dynamodb(sdk);
        let leases = TableLeases::new(dynamo.clone(), config.table.clone());
        let account = AwsAccount::new(
            LambdaAdapter::new(clients.lambda(sdk), pacing.lambda_per_second),
            RestAdapter::new(
                clients.apigateway(sdk),
                gateway.clone(),
                pacing.usage_plan_interval,
            )
            .with_plan_slot(leases.clone()),
            HttpAdapter::new(clients.apigatewayv2(sdk), clients.apigateway(sdk), gateway),
            CloudWatchMetrics::new(clients.cloudwatch(sdk), config.metrics_plan),
            (
                TaggingAdapter::new(clients.tagging(sdk), pacing.tagging_per_second),
                TrailAdapter::new(clients.cloudtrail(sdk)),
                WafAdapter::new(clients.wafv2(sdk)),
            ),
        )
        .with_ranking(Ranking {
            rules: InsightRules::new(clients.cloudwatch(sdk)),
            enabled: config.caller_ranking,
            quarantine_plan: config.quarantine_plan.clone(),
            region: sdk
                .region()
                .map_or_else(|| "us-east-1".to_string(), ToString::to_string),
        });
        let alarms = CloudWatchAlarms::new(
            clients.cloudwatch(sdk),
            config.alarm_prefix.clone(),
            account.shared_catalog(),
        );
        AwsStack {
            store: DynamoStore::new(dynamo, config.table.clone(), config.audit_retention),
            account,
            notifier: match config.notices_per_hour {
                Some(cap) => {
                    SnsNotifier::new(clients.sns(sdk), config.topic_arn.clone()).with_cap(leases.clone(), cap)
                }
                None => SnsNotifier::new(clients.sns(sdk), config.topic_arn.clone()),
            },
            leases,
            alarms,
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
            ports: self,
            prices,
            settings,
            actor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_of_every_role_together_stay_within_each_account_quota() {
        let all = Role::ALL.map(Pacing::for_role);
        let lambda: u32 = all.iter().map(|p| p.lambda_per_second).sum();
        let gateway: u32 = all.iter().map(|p| p.apigateway_per_second).sum();
        let tagging: u32 = all.iter().map(|p| p.tagging_per_second).sum();
        assert!(lambda < quotas::LAMBDA_PER_SECOND, "{lambda}");
        assert!(gateway < quotas::APIGATEWAY_PER_SECOND, "{gateway}");
        assert!(tagging < quotas::GET_RESOURCES_PER_SECOND, "{tagging}");
        assert!(
            all.iter()
                .all(|p| p.usage_plan_interval >= quotas::UPDATE_USAGE_PLAN_INTERVAL)
        );
        assert!(
            all.iter()
                .all(|p| p.lambda_per_second > 0 && p.apigateway_per_second > 0 && p.tagging_per_second > 0)
        );
    }
}
