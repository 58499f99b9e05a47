//! dowguard's AWS adapters: one module per service, each implementing the guard's
//! ports with the AWS SDK for Rust and turning every SDK error into a typed
//! [`dowguard_guard::PortError`] that names the call and the resource.
//!
//! | module | service | ports |
//! |---|---|---|
//! | [`cloudwatch`] | CloudWatch `GetMetricData` | metrics source, guard-cost model |
//! | [`alarms`] | CloudWatch alarms | one alarm per guarded target, kept in step with the budgets |
//! | [`insights`] | CloudWatch Contributor Insights | the rules ranking a stage's callers, and their reports as the core's `StageSources` |
//! | [`dynamodb`] | DynamoDB | budget store, state store, audit log, inventory |
//! | [`lease`] | DynamoDB | the evaluator's lease, the pass counter, account-wide pacing slots |
//! | [`lambda`] | Lambda | concurrency and async-config control, function discovery |
//! | [`apigateway`] | API Gateway (REST) | stage throttles, usage plans, API keys moved between plans, discovery |
//! | [`apigatewayv2`] | API Gateway (HTTP APIs) | stage throttles, discovery |
//! | [`sns`] | SNS | notifier |
//! | [`tagging`] | Resource Groups Tagging API | the functions carrying the guard's (or a budget's) tag |
//! | [`trail`] | CloudTrail | whether a trail delivers the change events the inventory follows |
//! | [`waf`] | AWS WAF (v2) | addresses added to and removed from an IP set a blocking rule references |
//! | [`ranking`] | Contributor Insights, API Gateway, AWS WAF | which stages get a ranking rule; a stage's ranking with its levers |
//! | [`account`] | all of the above | one account seen through every port |
//! | [`permissions`] | IAM | the actions behind every call above, for the roles |
//! | [`stack`] | all of the above | every adapter built from one SDK configuration |

pub mod account;
pub mod alarms;
pub mod apigateway;
pub mod apigatewayv2;
pub mod cloudwatch;
pub mod dynamodb;
pub mod error;
pub mod insights;
pub mod lambda;
pub mod lease;
pub mod pace;
pub mod permissions;
pub mod ranking;
pub mod sns;
pub mod stack;
pub mod tagging;
pub mod trail;
pub mod waf;

pub use account::AwsAccount;
pub use stack::{AwsStack, Interceptors, StackConfig};
