//! In-memory implementations of every port, with the same rules as the AWS
//! adapters (optimistic locking, restore points never replaced while held), for
//! tests and the simulator. Failures can be injected per operation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use dowguard_domain::notice::{ChatNotification, Publication};
use dowguard_domain::source::{Attribution, IpSetRef, Levers, StageSources};
use dowguard_domain::{
    AccountConcurrency, AsyncConfig, Budget, BudgetId, DesiredAlarm, ExistingAlarm, FunctionName, GuardState,
    Limits, MinuteUsage, Phase, Quota, RestorePoint, Target, TargetId, TargetKind, TargetMetrics, Throttle,
    Usage, UsagePlanId, epoch_minute,
};

use crate::audit::AuditRecord;
use crate::inventory::{Entry, Inventory, Meta};
use crate::ports::{
    Alarms, AuditLog, BudgetChange, BudgetStore, CallerRanking, Deployment, Discovered, Discovery,
    FailureKind, FetchedMetrics, Found, Held, InventorySource, InventoryStore, LambdaControl, Leases, Listed,
    MetricsRequest, MetricsSource, Notifier, PortError, PortResult, Ports, RankingRules, SourceControl,
    StageControl, StateStore, TrailStatus, Unlisted, UnreadableItem, UsagePlanControl, Versioned,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this one's state.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The store's contents.
#[derive(Debug, Default)]
pub struct StoreData {
    /// Budgets by id.
    pub budgets: BTreeMap<BudgetId, Versioned<Budget>>,
    /// History by budget id.
    pub history: BTreeMap<BudgetId, Vec<BudgetChange>>,
    /// States by target.
    pub states: HashMap<TargetId, GuardState>,
    /// The audit trail.
    pub audit: Vec<AuditRecord>,
    /// Operations that fail once, with the kind of failure.
    pub fail_next: HashMap<&'static str, FailureKind>,
    /// Stored items that cannot be read (reported by every listing).
    pub unreadable: Vec<UnreadableItem>,
    /// Leases by name: holder and expiry.
    pub leases: HashMap<String, Held>,
    /// Passes counted per epoch minute.
    pub passes: HashMap<i64, u32>,
    /// The inventory's entries.
    pub inventory: BTreeMap<TargetId, Versioned<Entry>>,
    /// The inventory's own record.
    pub inventory_meta: Versioned<Meta>,
}

/// Budgets, states and audit trail in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The contents, for tests to inspect.
    pub data: Mutex<StoreData>,
}

impl MemoryStore {
    /// Makes the next call of `operation` fail with `kind`.
    pub fn fail_next(&self, operation: &'static str, kind: FailureKind) {
        lock(&self.data).fail_next.insert(operation, kind);
    }

    /// A copy of the audit trail.
    pub fn audit(&self) -> Vec<AuditRecord> {
        lock(&self.data).audit.clone()
    }

    /// A copy of one state.
    pub fn state(&self, target: &TargetId) -> Option<GuardState> {
        lock(&self.data).states.get(target).cloned()
    }
}

fn injected(data: &mut StoreData, operation: &'static str, resource: &str) -> PortResult<()> {
    match data.fail_next.remove(operation) {
        Some(kind) => Err(PortError::new(operation, resource, kind, "injected failure")),
        None => Ok(()),
    }
}

impl BudgetStore for MemoryStore {
    async fn list_budgets(&self) -> PortResult<Listed<Vec<Versioned<Budget>>>> {
        let mut data = lock(&self.data);
        injected(&mut data, "ListBudgets", "budgets")?;
        Ok(Listed {
            items: data.budgets.values().cloned().collect(),
            unreadable: data
                .unreadable
                .iter()
                .filter(|u| u.target.is_none())
                .cloned()
                .collect(),
        })
    }

    async fn put_budget(
        &self,
        budget: &Budget,
        expected: Option<u64>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<u64> {
        let mut data = lock(&self.data);
        let resource = format!("budget {}", budget.id);
        injected(&mut data, "PutBudget", &resource)?;
        let current = data.budgets.get(&budget.id).map(|v| v.version);
        if current != expected {
            return Err(PortError::new(
                "PutBudget",
                resource,
                FailureKind::Conflict,
                format!(
                    "the budget is at version {} but the change was made from version {}; read it again and retry",
                    current.map_or("none".into(), |v| v.to_string()),
                    expected.map_or("none".into(), |v| v.to_string())
                ),
            ));
        }
        let version = current.unwrap_or(0) + 1;
        data.budgets.insert(
            budget.id.clone(),
            Versioned {
                value: budget.clone(),
                version,
            },
        );
        data.history
            .entry(budget.id.clone())
            .or_default()
            .push(BudgetChange {
                version,
                at,
                actor: actor.to_string(),
                budget: Some(budget.clone()),
            });
        Ok(version)
    }

    async fn delete_budget(
        &self,
        id: &BudgetId,
        expected: u64,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()> {
        let mut data = lock(&self.data);
        let resource = format!("budget {id}");
        injected(&mut data, "DeleteBudget", &resource)?;
        match data.budgets.get(id).map(|v| v.version) {
            None => Err(PortError::new(
                "DeleteBudget",
                resource,
                FailureKind::NotFound,
                "no such budget",
            )),
            Some(v) if v != expected => Err(PortError::new(
                "DeleteBudget",
                resource,
                FailureKind::Conflict,
                format!("the budget is at version {v}, not {expected}; read it again and retry"),
            )),
            Some(_) => {
                data.budgets.remove(id);
                data.history.entry(id.clone()).or_default().push(BudgetChange {
                    version: 0,
                    at,
                    actor: actor.to_string(),
                    budget: None,
                });
                Ok(())
            }
        }
    }

    async fn budget_history(&self, id: &BudgetId) -> PortResult<Vec<BudgetChange>> {
        Ok(lock(&self.data).history.get(id).cloned().unwrap_or_default())
    }
}

/// The rule every state store enforces: a stored restore point is never replaced
/// by a different one while the stored phase holds the target.
pub fn restore_point_kept(stored: Option<&GuardState>, new: &GuardState) -> bool {
    match stored {
        Some(old) if old.phase != Phase::Normal && old.restore_point.is_some() => {
            new.restore_point.is_none() && new.phase == Phase::Normal
                || new.restore_point == old.restore_point
        }
        _ => true,
    }
}

impl StateStore for MemoryStore {
    async fn load_states(&self) -> PortResult<Listed<HashMap<TargetId, GuardState>>> {
        let mut data = lock(&self.data);
        injected(&mut data, "LoadStates", "states")?;
        Ok(Listed {
            items: data.states.clone(),
            unreadable: data
                .unreadable
                .iter()
                .filter(|u| u.target.is_some())
                .cloned()
                .collect(),
        })
    }

    async fn save_state(&self, target: &TargetId, state: &GuardState) -> PortResult<u64> {
        let mut data = lock(&self.data);
        let resource = format!("state of {target}");
        injected(&mut data, "SaveState", &resource)?;
        let stored = data.states.get(target);
        let stored_version = stored.map_or(0, |s| s.version);
        if stored_version != state.version {
            return Err(PortError::new(
                "SaveState",
                resource,
                FailureKind::Conflict,
                format!("stored version {stored_version}, written from {}", state.version),
            ));
        }
        if !restore_point_kept(stored, state) {
            return Err(PortError::new(
                "SaveState",
                resource,
                FailureKind::Refused,
                "the restore point of a held target cannot be replaced",
            ));
        }
        let mut saved = state.clone();
        saved.version = stored_version + 1;
        data.states.insert(target.clone(), saved);
        Ok(stored_version + 1)
    }

    async fn replace_original(
        &self,
        target: &TargetId,
        state: &GuardState,
        previous: &RestorePoint,
    ) -> PortResult<u64> {
        let mut data = lock(&self.data);
        let resource = format!("state of {target}");
        injected(&mut data, "ReplaceOriginal", &resource)?;
        let stored = data.states.get(target);
        let stored_version = stored.map_or(0, |s| s.version);
        if stored_version != state.version || stored.and_then(|s| s.restore_point.as_ref()) != Some(previous)
        {
            return Err(PortError::new(
                "ReplaceOriginal",
                resource,
                FailureKind::Conflict,
                "the state or its restore point changed since it was read",
            ));
        }
        let mut saved = state.clone();
        saved.version = stored_version + 1;
        data.states.insert(target.clone(), saved);
        Ok(stored_version + 1)
    }
}

impl InventoryStore for MemoryStore {
    async fn load_inventory(&self) -> PortResult<Inventory> {
        let mut data = lock(&self.data);
        injected(&mut data, "LoadInventory", "inventory")?;
        Ok(Inventory {
            entries: data.inventory.clone(),
            meta: data.inventory_meta.clone(),
            unreadable: Vec::new(),
        })
    }

    async fn put_entry(&self, entry: &Entry, expected: u64) -> PortResult<u64> {
        let mut data = lock(&self.data);
        let id = entry.target.id.clone();
        injected(&mut data, "PutEntry", &id.to_string())?;
        let stored = data.inventory.get(&id).map_or(0, |e| e.version);
        if stored != expected {
            return Err(PortError::new(
                "PutEntry",
                id.to_string(),
                FailureKind::Conflict,
                format!("stored version {stored}, written from {expected}"),
            ));
        }
        data.inventory.insert(
            id,
            Versioned {
                value: entry.clone(),
                version: stored + 1,
            },
        );
        Ok(stored + 1)
    }

    async fn remove_entry(&self, target: &TargetId, expected: u64) -> PortResult<()> {
        let mut data = lock(&self.data);
        injected(&mut data, "RemoveEntry", &target.to_string())?;
        let stored = data.inventory.get(target).map_or(0, |e| e.version);
        if stored != expected {
            return Err(PortError::new(
                "RemoveEntry",
                target.to_string(),
                FailureKind::Conflict,
                format!("stored version {stored}, removed from {expected}"),
            ));
        }
        data.inventory.remove(target);
        Ok(())
    }

    async fn put_meta(&self, meta: &Meta, expected: u64) -> PortResult<u64> {
        let mut data = lock(&self.data);
        injected(&mut data, "PutMeta", "inventory")?;
        let stored = data.inventory_meta.version;
        if stored != expected {
            return Err(PortError::new(
                "PutMeta",
                "inventory",
                FailureKind::Conflict,
                format!("stored version {stored}, written from {expected}"),
            ));
        }
        data.inventory_meta = Versioned {
            value: meta.clone(),
            version: stored + 1,
        };
        Ok(stored + 1)
    }
}

impl AuditLog for MemoryStore {
    async fn record(&self, records: &[AuditRecord]) -> PortResult<()> {
        let mut data = lock(&self.data);
        injected(&mut data, "RecordAudit", "audit")?;
        data.audit.extend_from_slice(records);
        Ok(())
    }
}

/// A notice that was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Topic, if any.
    pub topic: Option<String>,
    /// Subject.
    pub subject: String,
    /// Body: the plain text e-mail subscribers read.
    pub message: String,
    /// What chat subscribers read.
    pub chat: ChatNotification,
}

/// The cloud's contents.
#[derive(Debug, Default)]
pub struct CloudData {
    /// Targets and their live limits.
    pub targets: Vec<Target>,
    /// Metrics per target.
    pub metrics: HashMap<TargetId, TargetMetrics>,
    /// Account concurrency.
    pub concurrency: AccountConcurrency,
    /// Published notices.
    pub notices: Vec<Notice>,
    /// The `once` keys of the notices published.
    pub told_once: BTreeSet<String>,
    /// Every control-plane call that changes something, in order (`operation resource`).
    pub calls: Vec<String>,
    /// Operations that fail once, with the kind of failure.
    pub fail_next: HashMap<&'static str, FailureKind>,
    /// Kinds of target whose service cannot be listed, with the error.
    pub unlisted: Vec<(TargetKind, PortError)>,
    /// dowguard's alarms by name, with their thresholds.
    pub alarms: BTreeMap<String, u64>,
    /// The trail that logs the Region's management write events, if any.
    pub trail: Option<String>,
    /// Every read the inventory made (`operation resource`), in order.
    pub reads: Vec<String>,
    /// The API keys of each usage plan, by plan.
    pub plan_keys: BTreeMap<UsagePlanId, BTreeSet<String>>,
    /// The addresses (CIDR) of each WAF IP set, by its id.
    pub ip_sets: BTreeMap<String, BTreeSet<String>>,
    /// The ranking of each stage whose callers are ranked, with its levers.
    pub rankings: BTreeMap<TargetId, (StageSources, Levers)>,
    /// The stages that have ranking rules, after the last sync.
    pub ranking_rules: BTreeSet<TargetId>,
}

/// An account in memory: targets, metrics, controls and notices.
#[derive(Debug, Default)]
pub struct MemoryCloud {
    /// The contents, for tests to inspect and change.
    pub data: Mutex<CloudData>,
}

impl MemoryCloud {
    /// A cloud holding `targets`.
    pub fn with_targets(targets: Vec<Target>) -> Self {
        MemoryCloud {
            data: Mutex::new(CloudData {
                targets,
                ..CloudData::default()
            }),
        }
    }

    /// Makes the next call of `operation` fail with `kind`.
    pub fn fail_next(&self, operation: &'static str, kind: FailureKind) {
        lock(&self.data).fail_next.insert(operation, kind);
    }

    /// The live limits of a target.
    pub fn limits(&self, target: &TargetId) -> Option<Limits> {
        lock(&self.data)
            .targets
            .iter()
            .find(|t| &t.id == target)
            .map(|t| t.limits.clone())
    }

    /// Replaces the metrics of a target.
    pub fn set_metrics(&self, target: &TargetId, metrics: TargetMetrics) {
        lock(&self.data).metrics.insert(target.clone(), metrics);
    }

    /// The control-plane calls made so far that change something.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.data).calls.clone()
    }

    /// The reads the inventory and the passes made so far.
    pub fn reads(&self) -> Vec<String> {
        lock(&self.data).reads.clone()
    }

    /// The notices published so far.
    pub fn notices(&self) -> Vec<Notice> {
        lock(&self.data).notices.clone()
    }

    /// The API keys in usage plan `plan` now.
    pub fn plan_keys(&self, plan: &UsagePlanId) -> BTreeSet<String> {
        lock(&self.data).plan_keys.get(plan).cloned().unwrap_or_default()
    }

    /// The addresses in the IP set with id `id` now.
    pub fn ip_set(&self, id: &str) -> BTreeSet<String> {
        lock(&self.data).ip_sets.get(id).cloned().unwrap_or_default()
    }

    fn change(
        &self,
        operation: &'static str,
        target: &TargetId,
        edit: impl FnOnce(&mut Limits) -> bool,
    ) -> PortResult<()> {
        let mut data = lock(&self.data);
        let resource = target.to_string();
        data.calls.push(format!("{operation} {resource}"));
        injected_cloud(&mut data, operation, &resource)?;
        let Some(found) = data.targets.iter_mut().find(|t| &t.id == target) else {
            return Err(PortError::new(
                operation,
                resource,
                FailureKind::NotFound,
                "no such resource",
            ));
        };
        if edit(&mut found.limits) {
            Ok(())
        } else {
            Err(PortError::new(
                operation,
                resource,
                FailureKind::Refused,
                "limits of another kind",
            ))
        }
    }
}

fn injected_cloud(data: &mut CloudData, operation: &'static str, resource: &str) -> PortResult<()> {
    match data.fail_next.remove(operation) {
        Some(kind) => Err(PortError::new(operation, resource, kind, "injected failure")),
        None => Ok(()),
    }
}

impl Discovery for MemoryCloud {
    async fn discover(&self) -> PortResult<Discovered> {
        let mut data = lock(&self.data);
        data.reads.push("Discover account".into());
        injected_cloud(&mut data, "Discover", "account")?;
        let hidden = |t: &Target| data.unlisted.iter().any(|(kind, _)| t.id.kind() == *kind);
        Ok(Discovered {
            targets: data.targets.iter().filter(|t| !hidden(t)).cloned().collect(),
            unlisted: data
                .unlisted
                .iter()
                .map(|(kind, e)| Unlisted::new(kind.prefix(), &[*kind], e))
                .collect(),
        })
    }
}

impl InventorySource for MemoryCloud {
    async fn tagged_functions(&self, tags: &[(String, String)]) -> PortResult<Vec<FunctionName>> {
        let mut data = lock(&self.data);
        data.reads.push("GetResources account".into());
        injected_cloud(&mut data, "GetResources", "account")?;
        if let Some((_, e)) = data.unlisted.iter().find(|(k, _)| *k == TargetKind::Function) {
            return Err(PortError::new(
                e.operation,
                e.resource.clone(),
                e.kind,
                e.message.clone(),
            ));
        }
        Ok(data
            .targets
            .iter()
            .filter(|t| tags.iter().any(|(k, v)| t.tags.get(k) == Some(v)))
            .filter_map(|t| match &t.id {
                TargetId::Function(name) => Some(name.clone()),
                _ => None,
            })
            .collect())
    }

    async fn read_target(&self, id: &TargetId) -> PortResult<Option<Found>> {
        let mut data = lock(&self.data);
        data.reads.push(format!("Read {id}"));
        injected_cloud(&mut data, "Read", &id.to_string())?;
        Ok(data.targets.iter().find(|t| &t.id == id).cloned().map(Found::of))
    }

    async fn list_apis(&self) -> PortResult<Vec<Found>> {
        let mut data = lock(&self.data);
        data.reads.push("ListApis account".into());
        injected_cloud(&mut data, "ListApis", "account")?;
        if let Some((_, e)) = data.unlisted.iter().find(|(k, _)| *k != TargetKind::Function) {
            return Err(PortError::new(
                e.operation,
                e.resource.clone(),
                e.kind,
                e.message.clone(),
            ));
        }
        Ok(data
            .targets
            .iter()
            .filter(|t| t.id.kind() != TargetKind::Function)
            .cloned()
            .map(Found::of)
            .collect())
    }

    async fn trail_status(&self) -> PortResult<TrailStatus> {
        let mut data = lock(&self.data);
        data.reads.push("DescribeTrails account".into());
        injected_cloud(&mut data, "DescribeTrails", "account")?;
        Ok(TrailStatus {
            trail: data.trail.clone(),
            note: data
                .trail
                .as_ref()
                .map_or_else(|| "no trail".to_string(), |t| format!("trail {t}")),
        })
    }
}

impl MetricsSource for MemoryCloud {
    async fn fetch(&self, request: &MetricsRequest<'_>) -> PortResult<FetchedMetrics> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "GetMetricData", "metrics")?;
        let by_target: HashMap<TargetId, Arc<TargetMetrics>> = data
            .metrics
            .iter()
            .filter(|(id, _)| request.detailed.contains(*id))
            .map(|(id, m)| (id.clone(), Arc::new(m.clone())))
            .collect();
        // Like CloudWatch: the aggregate is every function's minutes added up.
        let aggregate = request.aggregate.then(|| {
            let mut per_minute: std::collections::BTreeMap<i64, dowguard_domain::Usage> = Default::default();
            for (id, m) in &data.metrics {
                if id.kind() == dowguard_domain::TargetKind::Function {
                    for point in &m.minutes {
                        per_minute.entry(point.minute).or_default().add(&point.usage);
                    }
                }
            }
            per_minute
                .into_iter()
                .map(|(minute, usage)| dowguard_domain::MinuteUsage { minute, usage })
                .collect()
        });
        Ok(FetchedMetrics {
            metrics_requested: by_target.len() as u64 * 3,
            fresh: by_target.keys().cloned().collect(),
            by_target,
            partial: false,
            gaps: Default::default(),
            aggregate,
        })
    }
}

impl LambdaControl for MemoryCloud {
    async fn account_concurrency(&self) -> PortResult<AccountConcurrency> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "GetAccountSettings", "account")?;
        Ok(data.concurrency)
    }

    async fn set_reserved_concurrency(&self, function: &FunctionName, value: Option<u32>) -> PortResult<()> {
        let operation = if value.is_some() {
            "PutFunctionConcurrency"
        } else {
            "DeleteFunctionConcurrency"
        };
        self.change(
            operation,
            &TargetId::Function(function.clone()),
            |limits| match limits {
                Limits::Function {
                    reserved_concurrency, ..
                } => {
                    *reserved_concurrency = value;
                    true
                }
                _ => false,
            },
        )
    }

    async fn set_async_config(&self, function: &FunctionName, value: Option<&AsyncConfig>) -> PortResult<()> {
        let operation = match value {
            None => "DeleteFunctionEventInvokeConfig",
            Some(_) => "PutFunctionEventInvokeConfig",
        };
        self.change(
            operation,
            &TargetId::Function(function.clone()),
            |limits| match limits {
                Limits::Function { async_config, .. } => {
                    *async_config = value.cloned();
                    true
                }
                _ => false,
            },
        )
    }
}

impl StageControl for MemoryCloud {
    async fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> PortResult<()> {
        self.change("UpdateStage", stage, |limits| match limits {
            Limits::Stage {
                throttle,
                overrides: current,
            } => {
                *throttle = value;
                current.extend(overrides.iter().map(|(key, value)| (key.clone(), *value)));
                true
            }
            _ => false,
        })
    }
}

impl UsagePlanControl for MemoryCloud {
    async fn set_plan_limits(
        &self,
        plan: &UsagePlanId,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> PortResult<()> {
        self.change(
            "UpdateUsagePlan",
            &TargetId::UsagePlan(plan.clone()),
            |limits| match limits {
                Limits::UsagePlan {
                    throttle: t,
                    quota: q,
                } => {
                    *t = throttle;
                    *q = quota;
                    true
                }
                _ => false,
            },
        )
    }
}

impl SourceControl for MemoryCloud {
    /// As the API Gateway adapter does it: the key leaves `from`, then joins `to`;
    /// when it cannot join (`CreateUsagePlanKey` fails), it goes back to `from`.
    async fn move_api_key(&self, key: &str, from: &UsagePlanId, to: &UsagePlanId) -> PortResult<()> {
        let mut data = lock(&self.data);
        let resource = format!("usage-plan:{to}/key:{key}");
        data.calls.push(format!("MoveApiKey {key} {from}->{to}"));
        injected_cloud(&mut data, "DeleteUsagePlanKey", &resource)?;
        if !data.plan_keys.contains_key(from) || !data.plan_keys.contains_key(to) {
            return Err(PortError::new(
                "CreateUsagePlanKey",
                resource,
                FailureKind::NotFound,
                "no such usage plan",
            ));
        }
        let left = data.plan_keys.get_mut(from).is_some_and(|keys| keys.remove(key));
        if data.plan_keys.get(to).is_some_and(|keys| keys.contains(key)) {
            return Ok(());
        }
        if let Err(e) = injected_cloud(&mut data, "CreateUsagePlanKey", &resource) {
            if left {
                data.plan_keys
                    .entry(from.clone())
                    .or_default()
                    .insert(key.to_string());
            }
            return Err(e);
        }
        data.plan_keys
            .entry(to.clone())
            .or_default()
            .insert(key.to_string());
        Ok(())
    }

    async fn update_ip_set(&self, ip_set: &IpSetRef, add: &[String], remove: &[String]) -> PortResult<()> {
        let mut data = lock(&self.data);
        let resource = format!("ip-set:{}", ip_set.name);
        data.calls.push(format!("UpdateIPSet {}", ip_set.name));
        injected_cloud(&mut data, "UpdateIPSet", &resource)?;
        let Some(set) = data.ip_sets.get_mut(&ip_set.id) else {
            return Err(PortError::new(
                "GetIPSet",
                resource,
                FailureKind::NotFound,
                "no such IP set",
            ));
        };
        set.extend(add.iter().cloned());
        for address in remove {
            set.remove(address);
        }
        Ok(())
    }
}

impl CallerRanking for MemoryCloud {
    /// Keeps a rule for each stage named that has a ranking with a lever.
    async fn sync_rankings(&self, stages: &[Target]) -> PortResult<RankingRules> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "PutInsightRule", "insight-rules")?;
        let wanted: BTreeSet<TargetId> = stages
            .iter()
            .filter(|t| {
                data.rankings
                    .get(&t.id)
                    .is_some_and(|(_, levers)| levers.quarantine_plan.is_some() || levers.ip_set.is_some())
            })
            .map(|t| t.id.clone())
            .collect();
        let written = wanted.difference(&data.ranking_rules).count();
        let deleted = data.ranking_rules.difference(&wanted).count();
        let kept = wanted.len();
        data.ranking_rules = wanted;
        Ok(RankingRules {
            kept,
            written,
            deleted,
            unrankable: Vec::new(),
        })
    }

    /// The rankings of the stages named that have a rule.
    async fn rank(
        &self,
        stages: &[Target],
        _now: DateTime<Utc>,
        _window_minutes: i64,
    ) -> PortResult<Attribution> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "GetInsightRuleReport", "insight-rules")?;
        let mut attribution = Attribution::default();
        for stage in stages {
            data.reads.push(format!("GetInsightRuleReport {}", stage.id));
            if data.ranking_rules.contains(&stage.id)
                && let Some(ranked) = data.rankings.get(&stage.id)
            {
                attribution.stages.insert(stage.id.clone(), ranked.clone());
            }
        }
        Ok(attribution)
    }
}

impl Notifier for MemoryCloud {
    async fn publish(&self, topic: Option<&str>, notice: &Publication) -> PortResult<()> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "Publish", topic.unwrap_or("default topic"))?;
        // A notice sent once per key: remembered for the cloud's life.
        if let Some(key) = &notice.once
            && !data.told_once.insert(key.clone())
        {
            return Ok(());
        }
        data.notices.push(Notice {
            topic: topic.map(str::to_string),
            subject: notice.subject.clone(),
            message: notice.text.clone(),
            chat: notice.chat.clone(),
        });
        Ok(())
    }
}

impl Leases for MemoryStore {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<Result<(), Held>> {
        let mut data = lock(&self.data);
        injected(&mut data, "AcquireLease", name)?;
        if let Some(held) = data.leases.get(name).filter(|h| h.until > now) {
            return Ok(Err(held.clone()));
        }
        data.leases.insert(
            name.to_string(),
            Held {
                holder: holder.to_string(),
                until,
            },
        );
        Ok(Ok(()))
    }

    async fn release(&self, name: &str, holder: &str) -> PortResult<bool> {
        let mut data = lock(&self.data);
        injected(&mut data, "ReleaseLease", name)?;
        let mine = data.leases.get(name).is_some_and(|h| h.holder == holder);
        if mine {
            data.leases.remove(name);
        }
        Ok(mine)
    }

    async fn count_pass(&self, now: DateTime<Utc>, cap: u32) -> PortResult<Option<u32>> {
        let mut data = lock(&self.data);
        injected(&mut data, "CountPass", "passes")?;
        let count = data.passes.entry(epoch_minute(now)).or_insert(0);
        if *count >= cap {
            return Ok(None);
        }
        *count += 1;
        Ok(Some(*count))
    }
}

/// The alarm prefix of an in-memory account.
pub const MEMORY_ALARM_PREFIX: &str = "dowguard-";

impl Alarms for MemoryCloud {
    fn prefix(&self) -> &str {
        MEMORY_ALARM_PREFIX
    }

    async fn list(&self) -> PortResult<Vec<ExistingAlarm>> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "DescribeAlarms", MEMORY_ALARM_PREFIX)?;
        Ok(data
            .alarms
            .iter()
            .map(|(name, threshold)| ExistingAlarm {
                name: name.clone(),
                requests_per_minute: *threshold,
            })
            .collect())
    }

    async fn put(&self, alarm: &DesiredAlarm, _target: &Target) -> PortResult<()> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "PutMetricAlarm", &alarm.name)?;
        data.calls.push(format!("PutMetricAlarm {}", alarm.name));
        data.alarms.insert(alarm.name.clone(), alarm.requests_per_minute);
        Ok(())
    }

    async fn delete(&self, names: &[String]) -> PortResult<()> {
        let mut data = lock(&self.data);
        injected_cloud(&mut data, "DeleteAlarms", MEMORY_ALARM_PREFIX)?;
        for name in names {
            data.calls.push(format!("DeleteAlarms {name}"));
            data.alarms.remove(name);
        }
        Ok(())
    }
}

/// A whole deployment in memory: the store (with the leases) and the account
/// (with the alarms and the notices), for the handlers' tests.
#[derive(Debug, Default)]
pub struct MemoryStack {
    /// Budgets, states, audit, leases and the pass counter.
    pub store: MemoryStore,
    /// Targets, metrics, controls, alarms and notices.
    pub cloud: MemoryCloud,
}

impl Ports for MemoryStack {
    type Store = MemoryStore;
    type Account = MemoryCloud;
    type Notifier = MemoryCloud;
    fn store(&self) -> &MemoryStore {
        &self.store
    }
    fn account(&self) -> &MemoryCloud {
        &self.cloud
    }
    fn notifier(&self) -> &MemoryCloud {
        &self.cloud
    }
}

impl Deployment for MemoryStack {
    type Leases = MemoryStore;
    type Alarms = MemoryCloud;
    fn leases(&self) -> &MemoryStore {
        &self.store
    }
    fn alarms(&self) -> &MemoryCloud {
        &self.cloud
    }
}

impl MemoryStack {
    /// Reconciles the whole inventory with the in-memory account at `now`, as the
    /// inventory function would over a few invocations.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn reconcile(
        &self,
        now: DateTime<Utc>,
    ) -> Result<crate::inventory::InventoryReport, crate::GuardError> {
        crate::inventory::Keeper {
            ports: self,
            actor: "inventory",
        }
        .reconcile(now, crate::inventory::Slices::All)
        .await
    }

    /// Stores an `enforce` day budget `id` of `amount` dollars over `scope`, set by
    /// `finance` at `now`, owned by finance@example.com: the budget the handlers'
    /// tests start from.
    ///
    /// # Errors
    ///
    /// The budget's own error if it does not parse, or the store's.
    pub async fn put_day_budget(
        &self,
        id: &str,
        scope: &str,
        amount: &str,
        now: DateTime<Utc>,
    ) -> Result<Budget, String> {
        let budget = Budget::parse(dowguard_domain::BudgetSpec::day(
            id,
            scope,
            amount,
            "finance@example.com",
        ))
        .map_err(|e| e.to_string())?;
        self.store
            .put_budget(&budget, None, "finance", now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(budget)
    }
}

/// An hour of `per_minute` requests of `ms_each` milliseconds each, ending the minute
/// before `now`: steady traffic for an in-memory account.
pub fn steady_traffic(now: DateTime<Utc>, per_minute: u64, ms_each: u64) -> TargetMetrics {
    let last = epoch_minute(now) - 1;
    TargetMetrics {
        minutes: (0..60)
            .map(|k| MinuteUsage {
                minute: last - 59 + k,
                usage: Usage {
                    requests: per_minute,
                    throttled: 0,
                    duration_ms: per_minute.saturating_mul(ms_each),
                },
            })
            .collect(),
        to_date: vec![],
    }
}
