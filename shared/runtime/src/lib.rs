//! What dowguard's Lambdas share, so that each handler stays a few lines long:
//!
//! - [`app`]: what a function builds once at start, and the summary it returns.
//! - [`admission`]: which passes may run: the evaluator's lease and the
//!   deployment-wide cap on passes a minute, both in the guard's table.
//! - [`config`]: the environment parsed once into a typed [`Config`]; a missing or
//!   bad variable names itself in the error.
//! - [`telemetry`]: JSON logs through `tracing`, and errors turned into the Lambda
//!   runtime's [`lambda_runtime::Diagnostic`] without stack traces or debug dumps.
//! - [`emf`]: the guard's own figures (spend, projection, burn rate, level per
//!   budget; actions per pass) as CloudWatch embedded metric format documents.
//! - [`event`]: strict, pure, panic-free validation of the events the functions
//!   receive (EventBridge schedules, CloudWatch alarm state changes, SNS-wrapped
//!   alarm notifications), returning a typed trigger or a [`event::Rejection`].
//! - [`change`]: the inventory function's events (its schedule, and the CloudTrail
//!   API-call events of the changes it follows), validated the same way.
//! - [`roles`]: the exact IAM actions each function's role needs, derived from the
//!   adapters' calls and the domain's actions, for the template checks.

pub mod admission;
pub mod app;
pub mod change;
pub mod config;
pub mod emf;
pub mod event;
pub mod limit;
pub mod roles;
pub mod telemetry;

pub use app::{App, AppError};
pub use config::{Config, ConfigError};
pub use dowguard_adapters::stack::Role;
pub use event::{AlarmState, AlarmTrigger, Expected, Rejection, ScheduleTick};
