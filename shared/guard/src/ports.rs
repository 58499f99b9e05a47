//! Ports: the narrow capabilities the guard needs from the outside world, one trait
//! per capability, speaking only domain types. AWS adapters implement them with the
//! SDK; [`crate::memory`] implements them in memory for tests and the simulator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dowguard_domain::notice::Publication;
use dowguard_domain::source::{Attribution, IpSetRef};
use dowguard_domain::{
    AccountConcurrency, AsyncConfig, Budget, BudgetId, DesiredAlarm, ExistingAlarm, FunctionName, GuardState,
    MinuteUsage, Quota, RestorePoint, Target, TargetId, TargetKind, TargetMetrics, Throttle, UsagePlanId,
};
use serde::{Deserialize, Serialize};

use crate::audit::AuditRecord;
use crate::inventory::{Entry, Inventory, Meta};

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

/// A part of the account that could not be listed, and why: its targets are absent
/// from the pass, and every budget that could cover them holds its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlisted {
    /// What could not be listed, for people (e.g. `HTTP API stages`).
    pub what: String,
    /// The kinds of target it holds.
    pub kinds: Vec<TargetKind>,
    /// The kind of failure.
    pub failure: FailureKind,
    /// The error, with the call and the resource.
    pub error: String,
}

impl Unlisted {
    /// The services behind `kinds` could not be listed because of `error`.
    pub fn new(what: &str, kinds: &[TargetKind], error: &PortError) -> Self {
        Unlisted {
            what: what.to_string(),
            kinds: kinds.to_vec(),
            failure: error.kind,
            error: error.to_string(),
        }
    }

    /// One line for people.
    pub fn line(&self) -> String {
        format!("{} could not be listed: {}", self.what, self.error)
    }
}

/// What discovery found: every target of the services it could list, and the
/// services it could not. Reads as the slice of targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// The targets, with tags and current limits.
    pub targets: Vec<Target>,
    /// What could not be listed.
    pub unlisted: Vec<Unlisted>,
}

impl From<Vec<Target>> for Discovered {
    fn from(targets: Vec<Target>) -> Self {
        Discovered {
            targets,
            unlisted: Vec::new(),
        }
    }
}

impl Deref for Discovered {
    type Target = [Target];
    fn deref(&self) -> &[Target] {
        &self.targets
    }
}

impl IntoIterator for Discovered {
    type Item = Target;
    type IntoIter = std::vec::IntoIter<Target>;
    fn into_iter(self) -> Self::IntoIter {
        self.targets.into_iter()
    }
}

/// Lists the account's targets with their current limits.
pub trait Discovery: Send + Sync {
    /// Every function, REST/HTTP API stage and usage plan, with tags and limits,
    /// service by service: a service that cannot be listed is reported in
    /// [`Discovered::unlisted`] and the others are still returned.
    fn discover(&self) -> impl Future<Output = PortResult<Discovered>> + Send;

    /// Learns, without calling AWS, what the inventory keeps about targets that the
    /// other ports need and a pass no longer discovers (the CloudWatch names of REST
    /// APIs, the stages of each usage plan). Nothing by default.
    fn remember(&self, _found: &[Found]) {}
}

/// A target as read from the account, with what the metrics need besides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The target, with its tags and current limits.
    pub target: Target,
    /// For a REST API stage: the `ApiName` CloudWatch gives its API's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_name: Option<String>,
}

impl Found {
    /// A target that needs nothing else.
    pub fn of(target: Target) -> Self {
        Found {
            target,
            api_name: None,
        }
    }
}

/// Whether this Region's management write events reach EventBridge: they do only
/// where a CloudTrail trail logs them ("Events from AWS services", Amazon
/// EventBridge user guide: a trail with logging enabled is required for events
/// whose detail-type is `AWS API Call via CloudTrail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailStatus {
    /// A trail that is logging and records this Region's management write events,
    /// if there is one.
    pub trail: Option<String>,
    /// What was found, for people: the trails seen and why none qualifies.
    pub note: String,
}

/// The account read a target or a few at a time: what the inventory is kept from.
pub trait InventorySource: Send + Sync {
    /// The functions carrying any of `tags` (key and value), with the Resource
    /// Groups Tagging API, whose tags are their own.
    fn tagged_functions(
        &self,
        tags: &[(String, String)],
    ) -> impl Future<Output = PortResult<Vec<FunctionName>>> + Send;
    /// One target as it is now; `None` when it does not exist (any more).
    fn read_target(&self, id: &TargetId) -> impl Future<Output = PortResult<Option<Found>>> + Send;
    /// Every REST API stage, usage plan and HTTP API stage: there are few of them.
    fn list_apis(&self) -> impl Future<Output = PortResult<Vec<Found>>> + Send;
    /// Whether a CloudTrail trail logs this Region's management write events.
    fn trail_status(&self) -> impl Future<Output = PortResult<TrailStatus>> + Send;
}

/// A stored item that could not be read (a field missing, a value that no longer
/// parses): reported, never silently skipped, and never a reason to drop the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableItem {
    /// The item's key in the store.
    pub key: String,
    /// The target it belongs to, when the key still says.
    pub target: Option<TargetId>,
    /// What is wrong with it.
    pub why: String,
}

impl UnreadableItem {
    /// One line for people.
    pub fn line(&self) -> String {
        format!("stored item {} is unreadable: {}", self.key, self.why)
    }
}

/// Items read from a store, and the ones that could not be read. Reads as the items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed<C> {
    /// What could be read.
    pub items: C,
    /// What could not.
    pub unreadable: Vec<UnreadableItem>,
}

impl<C> Listed<C> {
    /// Everything read, nothing unreadable.
    pub fn complete(items: C) -> Self {
        Listed {
            items,
            unreadable: Vec::new(),
        }
    }
}

impl<C> Deref for Listed<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.items
    }
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
    /// Targets measured in full this pass: the hot set
    /// ([`dowguard_domain::metrics_plan::hot_set`]), or every function when the
    /// tripwire asks for them.
    pub urgent: &'a HashSet<TargetId>,
    /// Minutes between measurements of targets with a cadence of their own (API
    /// stages, [`dowguard_domain::metrics_plan::stage_every`]). A target neither
    /// urgent nor listed here gets only its spend-to-date, at each sweep.
    pub every: &'a HashMap<TargetId, u64>,
    /// Whether to read the account's Lambda usage across all functions (the
    /// tripwire).
    pub aggregate: bool,
    /// Minutes of one-minute history wanted for detailed targets.
    pub window_minutes: i64,
}

/// What a metrics fetch returned.
#[derive(Debug, Clone, Default)]
pub struct FetchedMetrics {
    /// Metrics per target, shared with the source's cache (ten thousand targets'
    /// hour of one-minute points is 20 MB a copy).
    pub by_target: HashMap<TargetId, Arc<TargetMetrics>>,
    /// Metrics requested from the provider (CloudWatch bills $0.01 per 1,000).
    pub metrics_requested: u64,
    /// True if the provider said some data was incomplete.
    pub partial: bool,
    /// Targets whose figures are partial or cannot be attributed to them, with why.
    pub gaps: BTreeMap<TargetId, String>,
    /// Targets measured with fresh one-minute figures by this fetch.
    pub fresh: HashSet<TargetId>,
    /// The account's Lambda usage per minute across all functions, when asked for
    /// and complete; `None` when not asked for, or when CloudWatch returned it
    /// partial (the tripwire then measures every function).
    pub aggregate: Option<Vec<MinuteUsage>>,
}

impl FetchedMetrics {
    /// Takes in a later fetch of the same pass: its targets' figures replace
    /// these, its counts add up.
    pub fn absorb(&mut self, later: FetchedMetrics) {
        self.by_target.extend(later.by_target);
        self.metrics_requested += later.metrics_requested;
        self.partial |= later.partial;
        self.gaps.extend(later.gaps);
        self.fresh.extend(later.fresh);
        if later.aggregate.is_some() {
            self.aggregate = later.aggregate;
        }
    }

    /// Records that the provider returned partial data for `metric` of each target.
    pub fn note_partial(&mut self, partial: &[(TargetId, String)]) {
        for (target, metric) in partial {
            self.partial = true;
            self.gaps.entry(target.clone()).or_insert_with(|| {
                format!("CloudWatch returned partial data for {metric}: its spend may be higher than shown")
            });
        }
    }
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
    /// All budgets that can be read, and those that cannot.
    fn list_budgets(&self) -> impl Future<Output = PortResult<Listed<Vec<Versioned<Budget>>>>> + Send;
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
    /// Every stored state that can be read (with `version` set from the store), and
    /// those that cannot.
    fn load_states(&self) -> impl Future<Output = PortResult<Listed<HashMap<TargetId, GuardState>>>> + Send;
    /// Writes a state if the stored version still equals `state.version` (0: none
    /// stored). A stored restore point is never replaced by a different one while
    /// the stored phase holds the target. Returns the new version.
    fn save_state(
        &self,
        target: &TargetId,
        state: &GuardState,
    ) -> impl Future<Output = PortResult<u64>> + Send;
    /// The one way a held target's restore point is replaced: someone else changed
    /// a limit the guard holds, and their value is the original to restore
    /// (`dowguard_domain::drift`). Writes `state` if the stored version still equals
    /// `state.version` and the stored restore point is still `previous`.
    fn replace_original(
        &self,
        target: &TargetId,
        state: &GuardState,
        previous: &RestorePoint,
    ) -> impl Future<Output = PortResult<u64>> + Send;
}

/// The inventory in the guard's table (`crate::inventory`).
pub trait InventoryStore: Send + Sync {
    /// Every entry and the inventory's own record; entries that cannot be read are
    /// reported, never dropped silently.
    fn load_inventory(&self) -> impl Future<Output = PortResult<Inventory>> + Send;
    /// Writes `entry` if the stored version still equals `expected` (0: none
    /// stored); a stale version fails with [`FailureKind::Conflict`]. Returns the
    /// new version.
    fn put_entry(&self, entry: &Entry, expected: u64) -> impl Future<Output = PortResult<u64>> + Send;
    /// Removes the entry of `target` if the stored version still equals `expected`.
    fn remove_entry(&self, target: &TargetId, expected: u64) -> impl Future<Output = PortResult<()>> + Send;
    /// Writes the inventory's own record if its stored version still equals
    /// `expected`. Returns the new version.
    fn put_meta(&self, meta: &Meta, expected: u64) -> impl Future<Output = PortResult<u64>> + Send;
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

/// Holding one caller of a stage without touching the others: an API key moved
/// between usage plans, addresses added to or removed from a WAF IP set.
pub trait SourceControl: Send + Sync {
    /// Moves API key `key` from usage plan `from` to usage plan `to`, so that it is
    /// in `to` and no longer in `from`. A key already there (a retried pass) is
    /// success; a key in neither plan (a pass cut off between the two steps) is put
    /// in `to`. If it cannot join `to` after leaving `from`, it is put back in
    /// `from` and the failure is reported.
    fn move_api_key(
        &self,
        key: &str,
        from: &UsagePlanId,
        to: &UsagePlanId,
    ) -> impl Future<Output = PortResult<()>> + Send;
    /// Adds the addresses `add` to IP set `ip_set` and removes the addresses
    /// `remove` (CIDR, as the set holds them); every other entry of the set is
    /// kept as it is. Adding an address already there, or removing one that is
    /// not, is success.
    fn update_ip_set(
        &self,
        ip_set: &IpSetRef,
        add: &[String],
        remove: &[String],
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// Ranking a stage's callers: the rules that rank them (kept like the alarms) and
/// the rankings themselves, with the levers each stage offers ([`Attribution`]).
pub trait CallerRanking: Send + Sync {
    /// Keeps one ranking rule per stage of `stages` and caller kind that the
    /// stage's access log names and a lever can act on; removes the rules no stage
    /// wants any more. Returns how many rules are kept.
    fn sync_rankings(&self, stages: &[Target]) -> impl Future<Output = PortResult<RankingRules>> + Send;
    /// The callers of each of `stages` over the `window_minutes` complete minutes
    /// before `now`, with its levers; a stage without a ranking rule or without a
    /// lever is left out (the core then guards it whole).
    fn rank(
        &self,
        stages: &[Target],
        now: DateTime<Utc>,
        window_minutes: i64,
    ) -> impl Future<Output = PortResult<Attribution>> + Send;
}

/// What one sync of the ranking rules did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RankingRules {
    /// Rules kept (existing and written).
    pub kept: usize,
    /// Rules written this time (new or changed).
    pub written: usize,
    /// Rules deleted.
    pub deleted: usize,
    /// Stages whose callers cannot be ranked, and why.
    pub unrankable: Vec<(TargetId, String)>,
}

/// Notifications to budget owners.
pub trait Notifier: Send + Sync {
    /// Publishes a notice, in every rendering its subscribers read, to `topic` (or
    /// the deployment's default topic).
    fn publish(
        &self,
        topic: Option<&str>,
        notice: &Publication,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// The account as a pass acts on it: discovery, the inventory's reads, metrics and
/// every actuator.
pub trait Account:
    Discovery
    + InventorySource
    + MetricsSource
    + LambdaControl
    + StageControl
    + UsagePlanControl
    + SourceControl
    + CallerRanking
{
}

impl<T> Account for T where
    T: Discovery
        + InventorySource
        + MetricsSource
        + LambdaControl
        + StageControl
        + UsagePlanControl
        + SourceControl
        + CallerRanking
{
}

/// Everything one pass acts through: the guard's table, the account, notices.
pub trait Ports: Send + Sync {
    /// Budgets, states, the audit trail and the inventory.
    type Store: BudgetStore + StateStore + AuditLog + InventoryStore;
    /// Discovery, metrics and the actuators.
    type Account: Account;
    /// Notices.
    type Notifier: Notifier;
    /// The store.
    fn store(&self) -> &Self::Store;
    /// The account.
    fn account(&self) -> &Self::Account;
    /// The notifier.
    fn notifier(&self) -> &Self::Notifier;
}

/// Three references that together are [`Ports`]: how tests and tools wire a pass
/// from separate parts.
#[derive(Debug, Clone, Copy)]
pub struct Wired<'a, S, A, N> {
    /// The store.
    pub store: &'a S,
    /// The account.
    pub account: &'a A,
    /// The notifier.
    pub notifier: &'a N,
}

impl<S, A, N> Ports for Wired<'_, S, A, N>
where
    S: BudgetStore + StateStore + AuditLog + InventoryStore,
    A: Account,
    N: Notifier,
{
    type Store = S;
    type Account = A;
    type Notifier = N;
    fn store(&self) -> &S {
        self.store
    }
    fn account(&self) -> &A {
        self.account
    }
    fn notifier(&self) -> &N {
        self.notifier
    }
}

/// A lease another invocation holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its holder's token.
    pub holder: String,
    /// When it expires if it is not given back.
    pub until: DateTime<Utc>,
}

/// Coordination between the guard's processes: leases (one holder at a time until
/// an expiry) and the deployment's count of passes a minute.
pub trait Leases: Send + Sync {
    /// Takes lease `name` for `holder` until `until`, if it is free or expired at
    /// `now`; `Ok(Err)` says who holds it until when.
    fn acquire(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = PortResult<Result<(), Held>>> + Send;
    /// Gives lease `name` back if `holder` still holds it; false when someone took
    /// it over after it expired.
    fn release(&self, name: &str, holder: &str) -> impl Future<Output = PortResult<bool>> + Send;
    /// Counts one pass in the minute of `now` unless `cap` already ran in it;
    /// returns the pass's number in its minute, or `None` when the minute is full.
    fn count_pass(
        &self,
        now: DateTime<Utc>,
        cap: u32,
    ) -> impl Future<Output = PortResult<Option<u32>>> + Send;
}

/// dowguard's alarms: one per guarded target, named under a prefix the
/// deployment owns.
pub trait Alarms: Send + Sync {
    /// The name prefix the deployment owns.
    fn prefix(&self) -> &str;
    /// Every alarm under the prefix, with its threshold.
    fn list(&self) -> impl Future<Output = PortResult<Vec<ExistingAlarm>>> + Send;
    /// Creates or updates `alarm` on `target`'s request metric.
    fn put(&self, alarm: &DesiredAlarm, target: &Target) -> impl Future<Output = PortResult<()>> + Send;
    /// Deletes the alarms named (all under the prefix).
    fn delete(&self, names: &[String]) -> impl Future<Output = PortResult<()>> + Send;
}

/// What the Lambdas act through: a pass's [`Ports`], plus the leases and the
/// alarms.
pub trait Deployment: Ports {
    /// Leases and the pass counter.
    type Leases: Leases;
    /// The alarms.
    type Alarms: Alarms;
    /// The leases.
    fn leases(&self) -> &Self::Leases;
    /// The alarms.
    fn alarms(&self) -> &Self::Alarms;
}
