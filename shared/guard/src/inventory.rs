//! The inventory: every target the guard looks after, with its tags and limits,
//! kept in the guard's table with when and how each was last confirmed, so that a
//! pass reads one table partition instead of asking AWS about every target.
//!
//! What is in it:
//!
//! - every function tagged `dowguard-guarded=true` or carrying the tag of a tag-group
//!   budget, found with the Resource Groups Tagging API, and every function a budget
//!   names by id ([`InventorySource::tagged_functions`]);
//! - every REST API stage, usage plan and HTTP API stage ([`InventorySource::list_apis`]).
//!
//! How it stays current (docs/inventory.md):
//!
//! - the guard writes what AWS accepted from it ([`Source::Applied`]), and reads
//!   back a target whose change failed ([`Source::ReadBack`]);
//! - each AWS API call that changes a limit, a tag or a target's existence, as
//!   CloudTrail reports it through EventBridge, re-reads that target
//!   ([`Keeper::observe`], [`Source::Event`]);
//! - a reconciliation reads one slice of the account's functions per invocation
//!   ([`Keeper::reconcile`], [`Source::Reconciled`]): [`SLICES`] slices, so with the
//!   five-minute schedule every function is read again each hour, and each slice
//!   three times as often where no trail delivers the events.
//!
//! A pass never lists the account. What the inventory cannot vouch for (never
//! reconciled, or not for [`MAX_AGE_MINUTES`]) is a gap of the pass
//! ([`Inventory::discovered`]): the budgets it could cover hold their targets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dowguard_domain::{
    Action, Budget, Change, GUARD_TAG, GUARD_TAG_VALUE, GuardState, Intent, Level, Limits, Mode, Money,
    Phase, Reason, Rule, Scope, Target, TargetId, TargetKind,
    drift::{Drift, Observed, judge},
};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, Outcome};
use crate::evaluate::{Guard, GuardError};
use crate::executor::Executor;
use crate::ports::{
    AuditLog, BudgetStore, FailureKind, Found, InventorySource, InventoryStore, Ports, StateStore,
    TrailStatus, Unlisted, UnreadableItem, Versioned,
};

/// How many slices the account's functions are reconciled in.
pub const SLICES: u8 = 12;

/// Slices one reconciliation reads besides those never read, where a trail
/// delivers the change events.
pub const SLICES_WITH_TRAIL: u8 = 1;

/// Slices one reconciliation reads where no trail delivers the change events: the
/// whole account every four invocations instead of every twelve.
pub const SLICES_WITHOUT_TRAIL: u8 = 3;

/// How old the inventory's last confirmation of a slice (or of the API Gateway
/// listing) may be before a pass reports a gap: two hours, twice the time a full
/// reconciliation takes on the five-minute schedule.
pub const MAX_AGE_MINUTES: i64 = 120;

/// The slice a target is reconciled in: FNV-1a of its id, stable across builds and
/// processes.
pub fn slice_of(id: &TargetId) -> u8 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u8::try_from(hash % u64::from(SLICES)).unwrap_or(0)
}

/// How an entry's current value was learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Source {
    /// Read by a reconciliation of the account.
    Reconciled,
    /// Read after an AWS API call that CloudTrail reported.
    Event {
        /// The CloudTrail event name (`PutFunctionConcurrency20171031`).
        event: String,
        /// Who made the call: the event's `userIdentity.arn`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<String>,
    },
    /// Written by the guard (`actor`) as AWS accepted its change.
    Applied {
        /// Who acted.
        actor: String,
    },
    /// Read back by the guard (`actor`) after a change whose outcome it could not
    /// know, or before setting again limits the inventory says have drifted.
    ReadBack {
        /// Who read.
        actor: String,
    },
}

impl Source {
    /// A short word for tables.
    pub fn word(&self) -> String {
        match self {
            Source::Reconciled => "reconciled".into(),
            Source::Event { event, .. } => format!("event {event}"),
            Source::Applied { actor } => format!("applied by {actor}"),
            Source::ReadBack { actor } => format!("read back by {actor}"),
        }
    }
}

/// When and how an entry's value was learnt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// When.
    pub at: DateTime<Utc>,
    /// How.
    #[serde(flatten)]
    pub source: Source,
}

/// One target in the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The target with its tags and limits, as last confirmed.
    pub target: Target,
    /// For a REST API stage: the `ApiName` CloudWatch gives its API's metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_name: Option<String>,
    /// When and how its value was learnt. A reconciliation that finds the same
    /// value does not rewrite it; [`Inventory::last_confirmed`] counts that too.
    pub confirmed: Confirmation,
}

impl Entry {
    /// An entry for `found`, learnt at `at` by `source`.
    pub fn new(found: Found, at: DateTime<Utc>, source: Source) -> Self {
        Entry {
            target: found.target,
            api_name: found.api_name,
            confirmed: Confirmation { at, source },
        }
    }

    /// The entry as a [`Found`].
    pub fn found(&self) -> Found {
        Found {
            target: self.target.clone(),
            api_name: self.api_name.clone(),
        }
    }
}

/// A trail check, with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailCheck {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// What it found.
    #[serde(flatten)]
    pub status: TrailStatus,
}

/// The inventory's own record: what was reconciled when, and the trail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// When each slice of the functions was last reconciled.
    #[serde(default)]
    pub slices: BTreeMap<u8, DateTime<Utc>>,
    /// When the API Gateway targets were last listed.
    #[serde(default)]
    pub apis: Option<DateTime<Utc>>,
    /// The last trail check.
    #[serde(default)]
    pub trail: Option<TrailCheck>,
    /// The slice the next reconciliation starts with.
    #[serde(default)]
    pub next_slice: u8,
    /// Why the last reconciliation could not list the functions, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions_error: Option<String>,
    /// Why the last reconciliation could not list the API Gateway targets, if it
    /// could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apis_error: Option<String>,
}

impl Meta {
    /// Whether events reach the inventory, as far as the last check knows.
    pub fn has_trail(&self) -> bool {
        self.trail.as_ref().is_some_and(|t| t.status.trail.is_some())
    }
}

/// The inventory as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every entry with its version.
    pub entries: BTreeMap<TargetId, Versioned<Entry>>,
    /// The inventory's own record, with its version (0: none stored).
    pub meta: Versioned<Meta>,
    /// Entries that cannot be read.
    pub unreadable: Vec<UnreadableItem>,
}

impl Default for Versioned<Meta> {
    fn default() -> Self {
        Versioned {
            value: Meta::default(),
            version: 0,
        }
    }
}

/// The kinds of target the API Gateway listing holds.
const API_KINDS: [TargetKind; 3] = [
    TargetKind::RestStage,
    TargetKind::UsagePlan,
    TargetKind::HttpStage,
];

fn when(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Inventory {
    /// Every target with what the metrics need.
    pub fn found(&self) -> Vec<Found> {
        self.entries.values().map(|e| e.value.found()).collect()
    }

    /// When `target`'s value was last confirmed: written, or found unchanged by the
    /// reconciliation of its slice.
    pub fn last_confirmed(&self, target: &TargetId) -> Option<DateTime<Utc>> {
        let entry = self.entries.get(target)?;
        let listed = if target.kind() == TargetKind::Function {
            self.meta.value.slices.get(&slice_of(target)).copied()
        } else {
            self.meta.value.apis
        };
        Some(listed.map_or(entry.value.confirmed.at, |l| l.max(entry.value.confirmed.at)))
    }

    /// What the inventory cannot vouch for at `as_of` (the wall-clock time, not the
    /// pass's): slices never reconciled or not for [`MAX_AGE_MINUTES`], an API
    /// Gateway listing likewise, entries that cannot be read.
    pub fn gaps(&self, as_of: DateTime<Utc>) -> Vec<Unlisted> {
        let meta = &self.meta.value;
        let max_age = Duration::minutes(MAX_AGE_MINUTES);
        let mut out = Vec::new();
        let missing: Vec<u8> = (0..SLICES).filter(|s| !meta.slices.contains_key(s)).collect();
        let stale: Vec<(u8, DateTime<Utc>)> = meta
            .slices
            .iter()
            .filter(|(_, at)| as_of - **at > max_age)
            .map(|(s, at)| (*s, *at))
            .collect();
        if let Some(error) = &meta.functions_error {
            out.push(gap(
                "Lambda functions",
                &[TargetKind::Function],
                format!("the inventory's last reconciliation could not list them: {error}"),
            ));
        } else if !missing.is_empty() || !stale.is_empty() {
            let mut why = Vec::new();
            if !missing.is_empty() {
                why.push(format!(
                    "{} of its {SLICES} slices of Lambda functions were never reconciled (is the inventory function running?)",
                    missing.len()
                ));
            }
            if let Some((_, oldest)) = stale.iter().min_by_key(|(_, at)| *at) {
                why.push(format!(
                    "{} slices were last reconciled more than {MAX_AGE_MINUTES} minutes ago (the oldest at {})",
                    stale.len(),
                    when(*oldest)
                ));
            }
            out.push(gap(
                "Lambda functions (inventory)",
                &[TargetKind::Function],
                format!(
                    "the inventory cannot vouch for every function: {}",
                    why.join("; ")
                ),
            ));
        }
        match meta.apis {
            _ if meta.apis_error.is_some() => out.push(gap(
                "API Gateway stages and usage plans",
                &API_KINDS,
                format!(
                    "the inventory's last reconciliation could not list them: {}",
                    meta.apis_error.as_deref().unwrap_or_default()
                ),
            )),
            None => out.push(gap(
                "API Gateway stages and usage plans (inventory)",
                &API_KINDS,
                "the inventory has never listed the API Gateway stages and usage plans (is the inventory function running?)"
                    .into(),
            )),
            Some(at) if as_of - at > max_age => out.push(gap(
                "API Gateway stages and usage plans (inventory)",
                &API_KINDS,
                format!(
                    "the inventory last listed the API Gateway stages and usage plans at {}, more than {MAX_AGE_MINUTES} minutes ago",
                    when(at)
                ),
            )),
            Some(_) => {}
        }
        for item in &self.unreadable {
            let kinds: Vec<TargetKind> = item
                .target
                .as_ref()
                .map_or_else(|| vec![TargetKind::Function], |t| vec![t.kind()]);
            out.push(gap("an inventory entry", &kinds, item.line()));
        }
        out
    }

    /// The targets and gaps a pass sees at `as_of`.
    pub fn discovered(&self, as_of: DateTime<Utc>) -> crate::ports::Discovered {
        crate::ports::Discovered {
            targets: self.entries.values().map(|e| e.value.target.clone()).collect(),
            unlisted: self.gaps(as_of),
        }
    }

    /// The entries whose metric names or plans the metrics adapter must know (an
    /// API name, usage plans): [`crate::ports::Account::remember`]'s input.
    pub fn named(&self) -> Vec<Found> {
        self.entries
            .values()
            .filter(|e| e.value.api_name.is_some() || !e.value.target.usage_plans.is_empty())
            .map(|e| e.value.found())
            .collect()
    }

    /// [`Inventory::discovered`], taking the targets out of the inventory rather
    /// than copying them (ten thousand targets are megabytes a copy), with what a
    /// pass needs to write entries back: each entry's version and API name.
    pub fn into_discovered(self, as_of: DateTime<Utc>) -> (crate::ports::Discovered, Ledger) {
        let unlisted = self.gaps(as_of);
        let mut ledger = Ledger::new();
        let mut targets = Vec::with_capacity(self.entries.len());
        for (id, entry) in self.entries {
            ledger.insert(id, (entry.version, entry.value.api_name));
            targets.push(entry.value.target);
        }
        (crate::ports::Discovered { targets, unlisted }, ledger)
    }
}

/// Each inventory entry's stored version and API name, by target
/// ([`Inventory::into_discovered`]).
pub type Ledger = BTreeMap<TargetId, (u64, Option<String>)>;

fn gap(what: &str, kinds: &[TargetKind], error: String) -> Unlisted {
    Unlisted {
        what: what.to_string(),
        kinds: kinds.to_vec(),
        failure: FailureKind::Unavailable,
        error,
    }
}

/// The limits a target has after `change` (a change of another target, or a
/// notice, leaves them as they are).
pub fn apply_change(limits: &Limits, change: &Change) -> Limits {
    let mut out = limits.clone();
    match (&mut out, change) {
        (
            Limits::Function {
                reserved_concurrency, ..
            },
            Change::ReservedConcurrency { to, .. },
        ) => *reserved_concurrency = *to,
        (Limits::Function { async_config, .. }, Change::AsyncInvokeConfig { to, .. }) => {
            async_config.clone_from(to);
        }
        (Limits::Stage { throttle, overrides }, Change::StageThrottle { to, to_overrides, .. }) => {
            *throttle = *to;
            overrides.extend(to_overrides.iter().map(|(k, v)| (k.clone(), *v)));
        }
        (
            Limits::UsagePlan { throttle, quota },
            Change::UsagePlanLimits {
                to_throttle,
                to_quota,
                ..
            },
        ) => {
            *throttle = *to_throttle;
            *quota = *to_quota;
        }
        _ => {}
    }
    out
}

/// The tags whose functions belong in the inventory: the guard's own, and each
/// tag-group budget's.
pub fn wanted_tags(budgets: &[Budget]) -> Vec<(String, String)> {
    let mut tags: BTreeSet<(String, String)> = [(GUARD_TAG.to_string(), GUARD_TAG_VALUE.to_string())].into();
    for budget in budgets {
        if let Scope::Tag { key, value } = &budget.scope {
            tags.insert((key.clone(), value.clone()));
        }
    }
    tags.into_iter().collect()
}

/// Whether a function read from AWS belongs in the inventory: tagged for the guard
/// or for a tag-group budget, or named by a budget.
fn wanted_function(target: &Target, tags: &[(String, String)], named: &HashSet<TargetId>) -> bool {
    named.contains(&target.id) || tags.iter().any(|(k, v)| target.tags.get(k) == Some(v))
}

/// Which slices one reconciliation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slices {
    /// The next ones in turn ([`SLICES_WITH_TRAIL`] or [`SLICES_WITHOUT_TRAIL`]),
    /// and every slice never read.
    Next,
    /// Every slice: the whole account at once.
    All,
}

/// A change by someone else to a target the guard holds, as the inventory found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftNote {
    /// The target.
    pub target: TargetId,
    /// Who changed it (`None`: found by a reconciliation).
    pub by: Option<String>,
    /// What was said about it.
    pub summary: String,
    /// The changes the guard made to put its limits back.
    pub reapplied: Vec<Outcome>,
}

/// What one reconciliation or one event did to the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryReport {
    /// The slices reconciled (none for an event).
    pub slices: Vec<u8>,
    /// Targets read from AWS.
    pub read: usize,
    /// Entries added or changed.
    pub written: Vec<TargetId>,
    /// Entries removed.
    pub removed: Vec<TargetId>,
    /// Entries another writer changed since this one read the inventory: theirs
    /// stand.
    pub superseded: Vec<TargetId>,
    /// Changes by others to held targets.
    pub drift: Vec<DriftNote>,
    /// The trail check, if one was made.
    pub trail: Option<TrailStatus>,
    /// What could not be done, for logs; the next reconciliation tries again.
    pub errors: Vec<String>,
}

/// One AWS API call CloudTrail reported, reduced to what the inventory needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    /// The event name (`PutFunctionConcurrency20171031`).
    pub event: String,
    /// Who made it: `userIdentity.arn`.
    pub principal: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The targets it may have changed.
    pub touched: Vec<Touched>,
}

/// What an API call may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// One target.
    Target(TargetId),
    /// Some API Gateway target the event does not name exactly (a stage created or
    /// deleted, a tag on an API): the API Gateway listing is read again.
    Apis,
}

/// What a reconciliation knows before it reads a function.
struct Known<'a> {
    inventory: &'a Inventory,
    states: &'a HashMap<TargetId, GuardState>,
    tags: &'a [(String, String)],
    named: &'a HashSet<TargetId>,
}

/// How many functions one reconciliation reads at most before it stops adding
/// slices never read (two Lambda control-plane calls each: under two minutes at
/// the inventory function's share).
pub const BOOTSTRAP_READS: usize = 200;

/// The stored state of a target that the guard holds or is restoring.
fn held(states: &HashMap<TargetId, GuardState>, id: &TargetId) -> bool {
    states.get(id).is_some_and(|s| s.phase != Phase::Normal)
}

/// What keeps the inventory: the ports, and who acts (for the audit trail of
/// what it sets again when someone else changed a held limit).
#[derive(Debug)]
pub struct Keeper<'a, P> {
    /// The store, the account and the notifier.
    pub ports: &'a P,
    /// Who acts, for the audit trail.
    pub actor: &'a str,
}

impl<P> Clone for Keeper<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Keeper<'_, P> {}

impl<'a, P> Guard<'a, P> {
    /// The inventory's keeper over the same ports, acting as the same actor.
    pub fn keeper(&self) -> Keeper<'a, P> {
        Keeper {
            ports: self.ports,
            actor: self.actor,
        }
    }
}

impl<P: Ports> Keeper<'_, P> {
    /// Reconciles the inventory with the account at `now` (the wall-clock time):
    /// `slices` of the functions (and every held function, whatever its slice),
    /// the API Gateway targets, and the trail check. Entries that changed are
    /// written, and a change to a held target is handled as drift.
    ///
    /// # Errors
    ///
    /// [`GuardError::Store`] when the inventory, the budgets or the states cannot
    /// be read. What cannot be read from AWS is in the report's errors, and the
    /// slices it concerns are not marked reconciled.
    pub async fn reconcile(&self, now: DateTime<Utc>, slices: Slices) -> Result<InventoryReport, GuardError> {
        let store = self.ports.store();
        let account = self.ports.account();
        let (inventory, budgets, states) = self.read_table().await?;
        let mut report = InventoryReport::default();
        let mut meta = inventory.meta.value.clone();

        match account.trail_status().await {
            Ok(status) => {
                meta.trail = Some(TrailCheck {
                    at: now,
                    status: status.clone(),
                });
                report.trail = Some(status);
            }
            Err(e) => report.errors.push(format!("trail check: {e}")),
        }
        let count = if meta.has_trail() {
            SLICES_WITH_TRAIL
        } else {
            SLICES_WITHOUT_TRAIL
        };
        let (due, never): (Vec<u8>, Vec<u8>) = match slices {
            Slices::All => ((0..SLICES).collect(), Vec::new()),
            Slices::Next => {
                let due: Vec<u8> = (0..count).map(|k| (meta.next_slice + k) % SLICES).collect();
                let never = (0..SLICES)
                    .filter(|s| !meta.slices.contains_key(s) && !due.contains(s))
                    .collect();
                (due, never)
            }
        };

        // Functions.
        let tags = wanted_tags(&budgets);
        let named: HashSet<TargetId> = budgets
            .iter()
            .filter_map(|b| match &b.scope {
                Scope::Target(id @ TargetId::Function(_)) => Some(id.clone()),
                _ => None,
            })
            .collect();
        match account.tagged_functions(&tags).await {
            Ok(tagged) => {
                let mut ids: BTreeSet<TargetId> = tagged.into_iter().map(TargetId::Function).collect();
                ids.extend(named.iter().cloned());
                ids.extend(
                    inventory
                        .entries
                        .keys()
                        .filter(|id| id.kind() == TargetKind::Function)
                        .cloned(),
                );
                let mut by_slice: BTreeMap<u8, Vec<TargetId>> = BTreeMap::new();
                for id in &ids {
                    by_slice.entry(slice_of(id)).or_default().push(id.clone());
                }
                let known = Known {
                    inventory: &inventory,
                    states: &states,
                    tags: &tags,
                    named: &named,
                };
                let mut read: HashSet<TargetId> = HashSet::new();
                let mut done = Vec::new();
                // The slices due, then slices never read while this invocation has
                // read few functions (a new deployment fills its inventory in a few
                // invocations, a small account in one).
                for slice in due.iter().chain(&never) {
                    if never.contains(slice) && report.read >= BOOTSTRAP_READS {
                        break;
                    }
                    let mut complete = true;
                    for id in by_slice.get(slice).into_iter().flatten() {
                        read.insert(id.clone());
                        complete &= self.reconcile_function(&known, id, now, &mut report).await;
                    }
                    if complete {
                        done.push(*slice);
                    }
                }
                // Held functions are read every time, whatever their slice: a change
                // to a limit the guard holds is found within one invocation even
                // where no trail delivers the events.
                for id in ids.iter().filter(|id| held(&states, id) && !read.contains(*id)) {
                    self.reconcile_function(&known, id, now, &mut report).await;
                }
                for slice in &done {
                    meta.slices.insert(*slice, now);
                }
                report.slices = done;
                meta.functions_error = None;
            }
            Err(e) => {
                report.errors.push(format!("listing tagged functions: {e}"));
                meta.functions_error = Some(e.to_string());
            }
        }
        if slices == Slices::Next {
            meta.next_slice = (meta.next_slice + count) % SLICES;
        }

        // API Gateway.
        match self.refresh_apis(&inventory, &states, now, &mut report).await {
            Ok(()) => {
                meta.apis = Some(now);
                meta.apis_error = None;
            }
            Err(e) => meta.apis_error = Some(e),
        }

        if let Err(e) = store.put_meta(&meta, inventory.meta.version).await {
            // Another reconciliation wrote first: its record stands, this one's
            // entries are written all the same.
            report.errors.push(format!("inventory record not written: {e}"));
        }
        Ok(report)
    }

    /// Reads one function and settles it against the inventory: kept if it still
    /// belongs there (or the guard holds it), removed if not. False when it could
    /// not be read.
    async fn reconcile_function(
        &self,
        known: &Known<'_>,
        id: &TargetId,
        now: DateTime<Utc>,
        report: &mut InventoryReport,
    ) -> bool {
        report.read += 1;
        match self.ports.account().read_target(id).await {
            Ok(Some(found))
                if wanted_function(&found.target, known.tags, known.named) || held(known.states, id) =>
            {
                self.settle(
                    known.inventory,
                    known.states,
                    found,
                    Source::Reconciled,
                    None,
                    "reconciliation",
                    now,
                    report,
                )
                .await;
                true
            }
            Ok(_) => {
                self.drop_entry(known.inventory, id, report).await;
                true
            }
            Err(e) => {
                report.errors.push(e.to_string());
                false
            }
        }
    }

    /// Lists the API Gateway targets and settles each against the inventory;
    /// entries of API Gateway kinds no longer listed are removed. The error when
    /// the listing failed.
    async fn refresh_apis(
        &self,
        inventory: &crate::inventory::Inventory,
        states: &HashMap<TargetId, GuardState>,
        now: DateTime<Utc>,
        report: &mut InventoryReport,
    ) -> Result<(), String> {
        match self.ports.account().list_apis().await {
            Ok(apis) => {
                let listed: HashSet<TargetId> = apis.iter().map(|f| f.target.id.clone()).collect();
                report.read += apis.len();
                for found in apis {
                    self.settle(
                        inventory,
                        states,
                        found,
                        Source::Reconciled,
                        None,
                        "reconciliation",
                        now,
                        report,
                    )
                    .await;
                }
                let gone: Vec<TargetId> = inventory
                    .entries
                    .keys()
                    .filter(|id| API_KINDS.contains(&id.kind()) && !listed.contains(*id))
                    .cloned()
                    .collect();
                for id in gone {
                    self.drop_entry(inventory, &id, report).await;
                }
                Ok(())
            }
            Err(e) => {
                report.errors.push(format!("listing API Gateway targets: {e}"));
                Err(e.to_string())
            }
        }
    }

    /// The inventory, the budgets and the guard states, as the table holds them.
    async fn read_table(
        &self,
    ) -> Result<(Inventory, Vec<Budget>, HashMap<TargetId, GuardState>), GuardError> {
        let store = self.ports.store();
        let inventory = store.load_inventory().await.map_err(GuardError::Store)?;
        let budgets = store
            .list_budgets()
            .await
            .map_err(GuardError::Store)?
            .items
            .into_iter()
            .map(|v| v.value)
            .collect();
        let states = store.load_states().await.map_err(GuardError::Store)?.items;
        Ok((inventory, budgets, states))
    }

    /// Handles one API call CloudTrail reported: each target it may have changed is
    /// read again, its entry written, added or removed, and a change by someone
    /// else to a held target handled as drift.
    ///
    /// # Errors
    ///
    /// [`GuardError::Store`] when the inventory, the budgets or the states cannot
    /// be read.
    pub async fn observe(&self, call: &ApiCall, now: DateTime<Utc>) -> Result<InventoryReport, GuardError> {
        let account = self.ports.account();
        let (inventory, budgets, states) = self.read_table().await?;
        let tags = wanted_tags(&budgets);
        let named: HashSet<TargetId> = budgets
            .iter()
            .filter_map(|b| match &b.scope {
                Scope::Target(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let mut report = InventoryReport::default();
        let source = Source::Event {
            event: call.event.clone(),
            principal: call.principal.clone(),
        };
        for touched in &call.touched {
            match touched {
                Touched::Apis => {
                    // A failed listing is in the report; the reconciliation lists again.
                    let _listed = self.refresh_apis(&inventory, &states, now, &mut report).await;
                }
                Touched::Target(id) => {
                    report.read += 1;
                    match account.read_target(id).await {
                        Ok(Some(found)) => {
                            let keep = id.kind() != TargetKind::Function
                                || wanted_function(&found.target, &tags, &named)
                                || held(&states, id);
                            if keep {
                                self.settle(
                                    &inventory,
                                    &states,
                                    found,
                                    source.clone(),
                                    call.principal.as_deref(),
                                    &call.event,
                                    now,
                                    &mut report,
                                )
                                .await;
                            } else {
                                self.drop_entry(&inventory, id, &mut report).await;
                            }
                        }
                        Ok(None) => self.drop_entry(&inventory, id, &mut report).await,
                        Err(e) => report.errors.push(e.to_string()),
                    }
                }
            }
        }
        Ok(report)
    }

    /// Removes `id`'s entry, if there is one.
    async fn drop_entry(
        &self,
        inventory: &crate::inventory::Inventory,
        id: &TargetId,
        report: &mut InventoryReport,
    ) {
        let Some(entry) = inventory.entries.get(id) else {
            return;
        };
        match self.ports.store().remove_entry(id, entry.version).await {
            Ok(()) => report.removed.push(id.clone()),
            // Another writer (a pass, an event) wrote it since: the next
            // reconciliation judges it again.
            Err(e) if e.kind == FailureKind::Conflict => report.superseded.push(id.clone()),
            Err(e) => report.errors.push(e.to_string()),
        }
    }

    /// Compares a target read from AWS with its entry: the same value is left
    /// alone; a new value is written, after handling it as drift when someone
    /// else changed a limit the guard holds.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        inventory: &crate::inventory::Inventory,
        states: &HashMap<TargetId, GuardState>,
        found: Found,
        source: Source,
        by: Option<&str>,
        what: &str,
        now: DateTime<Utc>,
        report: &mut InventoryReport,
    ) {
        let id = found.target.id.clone();
        let stored = inventory.entries.get(&id);
        if stored.is_some_and(|e| e.value.target == found.target && e.value.api_name == found.api_name) {
            return;
        }
        let mut found = found;
        if let (Some(before), Some(state)) = (stored, states.get(&id)) {
            let observed = Observed {
                target: &id,
                before: &before.value.target.limits,
                after: &found.target.limits,
                by,
                what,
            };
            if let Drift::Held {
                state: next,
                changes,
                summary,
            } = judge(Some(state), &observed)
            {
                let reapplied = self
                    .handle_drift(&id, state, &next, &changes, &summary, by, now)
                    .await;
                for (change, outcome) in changes.iter().zip(&reapplied) {
                    if *outcome == Outcome::Applied {
                        found.target.limits = apply_change(&found.target.limits, change);
                    }
                }
                report.drift.push(DriftNote {
                    target: id.clone(),
                    by: by.map(str::to_string),
                    summary,
                    reapplied,
                });
            }
        }
        let entry = Entry::new(found, now, source);
        match self
            .ports
            .store()
            .put_entry(&entry, stored.map_or(0, |e| e.version))
            .await
        {
            Ok(_) => report.written.push(id),
            // Another writer (the pass that changed it, an event read after the
            // change) wrote it since this one read the inventory: its value is at
            // least as fresh, and stands.
            Err(e) if e.kind == FailureKind::Conflict => report.superseded.push(id),
            Err(e) => report.errors.push(e.to_string()),
        }
    }

    /// Someone else changed a limit the guard holds: their value becomes the
    /// original (stored before anything is changed), the guard's own limit is set
    /// again where the budget still needs it, and both are audited, the change
    /// under its author's name, and told to the owners.
    #[allow(clippy::too_many_arguments)]
    async fn handle_drift(
        &self,
        id: &TargetId,
        state: &GuardState,
        next: &GuardState,
        changes: &[Change],
        summary: &str,
        by: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<Outcome> {
        let store = self.ports.store();
        let Some(previous) = state.restore_point.as_ref() else {
            return Vec::new();
        };
        let mode = state.mode;
        let reason = Reason {
            budget: None,
            rule: Rule::Converge,
            level: match state.phase {
                Phase::Stopped => Level::Stop,
                Phase::Throttled { level } => Level::Throttle(level),
                _ => Level::Normal,
            },
            spent: Money::ZERO,
            amount: Money::ZERO,
            projected: Money::ZERO,
            burn_short: dowguard_domain::BurnRate::default(),
            burn_long: dowguard_domain::BurnRate::default(),
        };
        let told = dowguard_domain::notice::Notice::new(
            id,
            &format!("changed by someone else while held: {summary}"),
            mode,
            &reason,
            changes.to_vec(),
        );
        let notice = Action {
            target: id.clone(),
            change: Change::Notify {
                topic: None,
                subject: format!("dowguard: {id} changed by someone else while held"),
                message: told.text(),
                notice: Some(Box::new(told)),
            },
            intent: Intent::Notify,
            mode,
            apply: true,
            priority: Money::ZERO,
            reason: reason.clone(),
        };
        let reapply: Vec<Action> = changes
            .iter()
            .map(|change| Action {
                target: id.clone(),
                change: change.clone(),
                intent: Intent::Tighten,
                mode,
                apply: mode == Mode::Enforce,
                priority: Money::ZERO,
                reason: reason.clone(),
            })
            .collect();
        let mut blocked = HashMap::new();
        if let Err(e) = store.replace_original(id, next, previous).await {
            tracing::warn!(target = %id, error = %e, "the new original could not be stored; nothing is set again");
            blocked.insert(
                id.clone(),
                format!("the new original was not stored, so nothing was changed: {e}"),
            );
        }
        let executor = Executor {
            account: self.ports.account(),
            notifier: self.ports.notifier(),
        };
        let mut actions = vec![notice];
        actions.extend(reapply);
        let outcomes = executor.run(&actions, &blocked).await;
        let author = by.unwrap_or("unknown (found by a reconciliation)");
        let records: Vec<AuditRecord> = actions
            .iter()
            .zip(&outcomes)
            .enumerate()
            .map(|(i, (action, outcome))| AuditRecord {
                at: now,
                target: id.clone(),
                actor: if i == 0 {
                    author.to_string()
                } else {
                    self.actor.to_string()
                },
                action: action.clone(),
                outcome: outcome.clone(),
            })
            .collect();
        if let Err(e) = store.record(&records).await {
            tracing::error!(error = %e, records = records.len(), "audit records not written");
        }
        outcomes.into_iter().skip(1).collect()
    }
}

#[cfg(test)]
mod tests {
    use dowguard_domain::FunctionName;

    use super::*;

    #[test]
    fn slices_are_stable_and_spread() {
        let id = TargetId::parse("function:checkout").expect("id");
        assert_eq!(slice_of(&id), slice_of(&id));
        let used: BTreeSet<u8> = (0..200)
            .map(|i| slice_of(&TargetId::parse(&format!("function:f-{i}")).expect("id")))
            .collect();
        assert_eq!(used.len(), usize::from(SLICES), "every slice gets functions");
        assert!(used.iter().all(|s| *s < SLICES));
    }

    #[test]
    fn an_empty_inventory_is_a_gap_for_every_kind() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let gaps = Inventory::default().gaps(now);
        let kinds: BTreeSet<TargetKind> = gaps.iter().flat_map(|g| g.kinds.iter().copied()).collect();
        assert_eq!(kinds.len(), 4, "{gaps:?}");
        assert!(gaps[0].error.contains("never reconciled"), "{gaps:?}");
    }

    #[test]
    fn a_stale_slice_is_a_gap_and_a_fresh_inventory_is_none() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut inventory = Inventory::default();
        inventory.meta.value.slices = (0..SLICES).map(|s| (s, now - Duration::minutes(5))).collect();
        inventory.meta.value.apis = Some(now - Duration::minutes(5));
        assert!(inventory.gaps(now).is_empty());
        inventory
            .meta
            .value
            .slices
            .insert(3, now - Duration::minutes(MAX_AGE_MINUTES + 1));
        let gaps = inventory.gaps(now);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].kinds, vec![TargetKind::Function]);
        assert!(gaps[0].error.contains("more than 120 minutes ago"), "{gaps:?}");
    }

    #[test]
    fn a_change_applied_is_the_new_value_of_its_limit_only() {
        let function = FunctionName::parse("checkout").expect("name");
        let limits = Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None,
        };
        let after = apply_change(
            &limits,
            &Change::ReservedConcurrency {
                function,
                from: Some(50),
                to: Some(5),
            },
        );
        assert_eq!(
            after,
            Limits::Function {
                reserved_concurrency: Some(5),
                async_config: None
            }
        );
        let notice = Change::Notify {
            topic: None,
            subject: String::new(),
            message: String::new(),
            notice: None,
        };
        assert_eq!(apply_change(&after, &notice), after);
    }
}
