//! Ports: the narrow capabilities the guard needs from the outside world, one trait
//! per capability, speaking only domain types. AWS adapters implement them with the
//! SDK; [`crate::memory`] implements them in memory for tests and the simulator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use dowguard_domain::{
    AccountConcurrency, AsyncConfig, Budget, BudgetId, FunctionName, GuardState, Quota, Target, TargetId,
    TargetMetrics, Throttle, UsagePlanId,
};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;

/// What kind of failure a port reports; callers decide on this, never on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// A conditional write lost: someone else changed the item first.
    Conflict,
    /// The resource does not exist.
    NotFound,
    /// AWS throttled the call (after the client's own retries).
    Throttled,
    /// AWS refused the call: permissions, validation, limits.
    Refused,
    /// AWS did not answer usefully: 5xx, timeouts, connection errors.
    Unavailable,
    /// The stored or returned data is not what the guard can use.
    Invalid,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Conflict => "conflict",
            FailureKind::NotFound => "not found",
            FailureKind::Throttled => "throttled",
            FailureKind::Refused => "refused",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Invalid => "invalid data",
        })
    }
}

/// A failed call through a port: the operation, the resource, the kind, a message
/// for people, and the underlying cause.
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {resource} failed ({kind}): {message}")]
pub struct PortError {
    /// The operation, e.g. `PutFunctionConcurrency`.
    pub operation: &'static str,
    /// The resource it concerned.
    pub resource: String,
    /// The kind of failure.
    pub kind: FailureKind,
    /// What went wrong and, where it helps, what to do.
    pub message: String,
    /// The cause, kept for logs.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl PortError {
    /// A failure without an underlying cause.
    pub fn new(
        operation: &'static str,
        resource: impl Into<String>,
        kind: FailureKind,
        message: impl Into<String>,
    ) -> Self {
        PortError {
            operation,
            resource: resource.into(),
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

/// A port's result.
pub type PortResult<T> = Result<T, PortError>;

/// A stored value with its optimistic-lock version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Version, incremented by every write.
    pub version: u64,
}

/// Lists the account's targets with their current limits.
pub trait Discovery: Send + Sync {
    /// Every function, REST/HTTP API stage and usage plan, with tags and limits.
    fn discover(&self) -> impl Future<Output = PortResult<Vec<Target>>> + Send;
}

/// What metrics one pass asks for.
#[derive(Debug, Clone)]
pub struct MetricsRequest<'a> {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// Targets to measure.
    pub targets: &'a [Target],
    /// Targets some budget needs figures for (the rest are not measured).
    pub detailed: &'a HashSet<TargetId>,
    /// Targets the guard is watching or holding: these are measured every pass,
    /// the others at the adapter's own cadence.
    pub urgent: &'a HashSet<TargetId>,
    /// Minutes of one-minute history wanted for detailed targets.
    pub window_minutes: i64,
}

/// What a metrics fetch returned.
#[derive(Debug, Clone, Default)]
pub struct FetchedMetrics {
    /// Metrics per target.
    pub by_target: HashMap<TargetId, TargetMetrics>,
    /// Metrics requested from the provider (CloudWatch bills $0.01 per 1,000).
    pub metrics_requested: u64,
    /// True if the provider said some data was incomplete.
    pub partial: bool,
}

/// Reads invocation metrics.
pub trait MetricsSource: Send + Sync {
    /// Fetches the metrics of one pass.
    fn fetch(&self, request: &MetricsRequest<'_>) -> impl Future<Output = PortResult<FetchedMetrics>> + Send;
}

/// One change in a budget's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetChange {
    /// The version this change produced (0 for a deletion).
    pub version: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (CLI user, role).
    pub actor: String,
    /// The budget after the change; `None` for a deletion.
    pub budget: Option<Budget>,
}

/// Budgets, with optimistic locking and a history of changes.
pub trait BudgetStore: Send + Sync {
    /// All budgets.
    fn list_budgets(&self) -> impl Future<Output = PortResult<Vec<Versioned<Budget>>>> + Send;
    /// Writes a budget. `expected` is the version the writer read (`None`: the
    /// budget must not exist yet); a stale version fails with [`FailureKind::Conflict`].
    fn put_budget(
        &self,
        budget: &Budget,
        expected: Option<u64>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<u64>> + Send;
    /// Deletes a budget at the version the caller read.
    fn delete_budget(
        &self,
        id: &BudgetId,
        expected: u64,
        actor: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// The budget's changes, oldest first.
    fn budget_history(&self, id: &BudgetId) -> impl Future<Output = PortResult<Vec<BudgetChange>>> + Send;
}

/// Guard states and their restore points.
pub trait StateStore: Send + Sync {
    /// Every stored state (with `version` set from the store).
    fn load_states(&self) -> impl Future<Output = PortResult<HashMap<TargetId, GuardState>>> + Send;
    /// Writes a state if the stored version still equals `state.version` (0: none
    /// stored). A stored restore point is never replaced by a different one while
    /// the stored phase holds the target. Returns the new version.
    fn save_state(
        &self,
        target: &TargetId,
        state: &GuardState,
    ) -> impl Future<Output = PortResult<u64>> + Send;
}

/// The audit trail.
pub trait AuditLog: Send + Sync {
    /// Appends records.
    fn record(&self, records: &[AuditRecord]) -> impl Future<Output = PortResult<()>> + Send;
}

/// Lambda concurrency and async-invocation controls.
pub trait LambdaControl: Send + Sync {
    /// The account's concurrency figures.
    fn account_concurrency(&self) -> impl Future<Output = PortResult<AccountConcurrency>> + Send;
    /// Sets (`Some`) or removes (`None`) reserved concurrency.
    fn set_reserved_concurrency(
        &self,
        function: &FunctionName,
        value: Option<u32>,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Makes the function's async invoke config exactly `to`: the whole config
    /// (age, retries, destinations) when `Some`, none at all when `None`.
    fn set_async_config(
        &self,
        function: &FunctionName,
        to: Option<&AsyncConfig>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// REST and HTTP API stage throttles.
pub trait StageControl: Send + Sync {
    /// Sets (`Some`) or clears (`None`) the stage's default throttle, and the
    /// throttle of each method or route in `overrides` (by method-settings key or
    /// route key), in one update. Overrides not named are left as they are.
    fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Usage plan limits.
pub trait UsagePlanControl: Send + Sync {
    /// Sets a plan's throttle and quota in one update.
    fn set_plan_limits(
        &self,
        plan: &UsagePlanId,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Notifications to budget owners.
pub trait Notifier: Send + Sync {
    /// Publishes a notice to `topic` (or the deployment's default topic).
    fn publish(
        &self,
        topic: Option<&str>,
        subject: &str,
        message: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;
}
