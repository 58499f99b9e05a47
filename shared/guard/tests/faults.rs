//! Fault injection and crash tests for one evaluation pass.
//!
//! A clean run of a flood and its recovery is recorded first: every call the guard
//! makes through its ports, pass by pass. Then, for every pass in which the guard
//! changed something and for every call of that pass, the same run is repeated with
//! that one call
//!
//! - **crashed**: the call never returns and the pass is abandoned there, as when
//!   the Lambda is killed between two steps of the actuation protocol (read original
//!   → write restore point → change → audit);
//! - **throttled**, **unavailable** (5xx, timeout), **refused**, or a lost
//!   **conflict**: the call fails without effect;
//! - **applied, then lost**: the change is made but the answer never arrives (a
//!   timeout after AWS acted);
//! - **partial**, for the metrics fetch: the newest minutes are missing and the
//!   provider says the data is incomplete.
//!
//! After every pass of every run: a target whose limits differ from its original has
//! a stored restore point, and every stored restore point is the original. At the
//! end of every run: every target is back to its original limits and normal, and no
//! change was ever sent that the target already had (no action applied twice).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::notice::Publication;
use dowguard_domain::source::{Attribution, IpSetRef};
use dowguard_domain::{
    AccountConcurrency, AsyncConfig, FunctionName, GuardSettings, Limits, Phase, Prices, Quota, RestorePoint,
    Target, TargetId, Throttle, UsagePlanId,
};
use dowguard_guard::inventory::{Entry, Inventory, Keeper, Meta, Slices};
use dowguard_guard::memory::{MemoryCloud, MemoryStore};
use dowguard_guard::ports::{
    AuditLog, BudgetChange, BudgetStore, CallerRanking, Discovered, Discovery, FetchedMetrics, Found,
    InventorySource, InventoryStore, LambdaControl, Listed, MetricsRequest, MetricsSource, Notifier,
    RankingRules, SourceControl, StageControl, StateStore, TrailStatus, UsagePlanControl, Versioned, Wired,
};
use dowguard_guard::{AuditRecord, FailureKind, Guard, PortError, PortResult};
use support::{budget, checkout, partners, prices, shop, t0, thumbnails, traffic_of};

/// What happens to the chosen call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Crash,
    Fail(FailureKind),
    AppliedThenLost,
    Partial,
}

const FAULTS: [Fault; 7] = [
    Fault::Crash,
    Fault::Fail(FailureKind::Throttled),
    Fault::Fail(FailureKind::Unavailable),
    Fault::Fail(FailureKind::Refused),
    Fault::Fail(FailureKind::Conflict),
    Fault::AppliedThenLost,
    Fault::Partial,
];

#[derive(Debug, Default)]
struct Script {
    /// (pass, call index within the pass, fault).
    fault: Option<(usize, usize, Fault)>,
    pass: usize,
    call: usize,
    /// Operations of each pass, in order.
    log: Vec<Vec<&'static str>>,
    /// Changes sent that the target already had.
    doubles: Vec<String>,
}

/// The in-memory store and cloud behind a layer that can break any one call.
struct Faulty<'a> {
    store: &'a MemoryStore,
    cloud: &'a MemoryCloud,
    script: Mutex<Script>,
}

impl Faulty<'_> {
    fn begin_pass(&self, pass: usize) {
        let mut s = self.script.lock().unwrap();
        s.pass = pass;
        s.call = 0;
        s.log.push(Vec::new());
    }

    /// Records the call and returns the fault to inject into it, if any.
    fn next(&self, operation: &'static str) -> Option<Fault> {
        let mut s = self.script.lock().unwrap();
        let (pass, call) = (s.pass, s.call);
        s.call += 1;
        s.log.last_mut().expect("a pass began").push(operation);
        match s.fault {
            Some((p, c, fault)) if p == pass && c == call => Some(fault),
            _ => None,
        }
    }

    async fn gate<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = PortResult<T>>,
    ) -> PortResult<T> {
        match self.next(operation) {
            None | Some(Fault::Partial) => call.await,
            Some(Fault::Crash) => std::future::pending().await,
            Some(Fault::Fail(kind)) => Err(PortError::new(operation, "injected", kind, "injected failure")),
            Some(Fault::AppliedThenLost) => {
                let _made = call.await;
                Err(PortError::new(
                    operation,
                    "injected",
                    FailureKind::Unavailable,
                    "timed out after the call was made",
                ))
            }
        }
    }

    /// A change that leaves the target as it is counts as a double action.
    fn check_double(&self, target: &TargetId, same: impl FnOnce(&Limits) -> bool) {
        if self.cloud.limits(target).is_some_and(|l| same(&l)) {
            let mut s = self.script.lock().unwrap();
            let pass = s.pass;
            s.doubles.push(format!("pass {pass}: {target}"));
        }
    }
}

impl BudgetStore for Faulty<'_> {
    async fn list_budgets(&self) -> PortResult<Listed<Vec<Versioned<dowguard_domain::Budget>>>> {
        self.gate("ListBudgets", self.store.list_budgets()).await
    }
    async fn put_budget(
        &self,
        budget: &dowguard_domain::Budget,
        expected: Option<u64>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<u64> {
        self.gate("PutBudget", self.store.put_budget(budget, expected, actor, at))
            .await
    }
    async fn delete_budget(
        &self,
        id: &dowguard_domain::BudgetId,
        expected: u64,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()> {
        self.gate("DeleteBudget", self.store.delete_budget(id, expected, actor, at))
            .await
    }
    async fn budget_history(&self, id: &dowguard_domain::BudgetId) -> PortResult<Vec<BudgetChange>> {
        self.gate("BudgetHistory", self.store.budget_history(id)).await
    }
}

impl StateStore for Faulty<'_> {
    async fn load_states(&self) -> PortResult<Listed<HashMap<TargetId, dowguard_domain::GuardState>>> {
        self.gate("LoadStates", self.store.load_states()).await
    }
    async fn save_state(&self, target: &TargetId, state: &dowguard_domain::GuardState) -> PortResult<u64> {
        self.gate("SaveState", self.store.save_state(target, state)).await
    }
    async fn replace_original(
        &self,
        target: &TargetId,
        state: &dowguard_domain::GuardState,
        previous: &RestorePoint,
    ) -> PortResult<u64> {
        self.gate(
            "ReplaceOriginal",
            self.store.replace_original(target, state, previous),
        )
        .await
    }
}

impl InventoryStore for Faulty<'_> {
    async fn load_inventory(&self) -> PortResult<Inventory> {
        self.gate("LoadInventory", self.store.load_inventory()).await
    }
    async fn put_entry(&self, entry: &Entry, expected: u64) -> PortResult<u64> {
        self.gate("PutEntry", self.store.put_entry(entry, expected)).await
    }
    async fn remove_entry(&self, target: &TargetId, expected: u64) -> PortResult<()> {
        self.gate("RemoveEntry", self.store.remove_entry(target, expected))
            .await
    }
    async fn put_meta(&self, meta: &Meta, expected: u64) -> PortResult<u64> {
        self.gate("PutMeta", self.store.put_meta(meta, expected)).await
    }
}

impl InventorySource for Faulty<'_> {
    async fn tagged_functions(&self, tags: &[(String, String)]) -> PortResult<Vec<FunctionName>> {
        self.gate("GetResources", self.cloud.tagged_functions(tags)).await
    }
    async fn read_target(&self, id: &TargetId) -> PortResult<Option<Found>> {
        self.gate("Read", self.cloud.read_target(id)).await
    }
    async fn list_apis(&self) -> PortResult<Vec<Found>> {
        self.gate("ListApis", self.cloud.list_apis()).await
    }
    async fn trail_status(&self) -> PortResult<TrailStatus> {
        self.gate("DescribeTrails", self.cloud.trail_status()).await
    }
}

impl AuditLog for Faulty<'_> {
    async fn record(&self, records: &[AuditRecord]) -> PortResult<()> {
        self.gate("RecordAudit", self.store.record(records)).await
    }
}

impl Discovery for Faulty<'_> {
    async fn discover(&self) -> PortResult<Discovered> {
        self.gate("Discover", self.cloud.discover()).await
    }
}

impl MetricsSource for Faulty<'_> {
    async fn fetch(&self, request: &MetricsRequest<'_>) -> PortResult<FetchedMetrics> {
        let partial = self
            .script
            .lock()
            .unwrap()
            .fault
            .is_some_and(|f| f.2 == Fault::Partial);
        let mut fetched = self.gate("GetMetricData", self.cloud.fetch(request)).await?;
        let s = self.script.lock().unwrap();
        if partial && s.fault.is_some_and(|(p, c, _)| p == s.pass && c + 1 == s.call) {
            // The newest five minutes are late, and the provider says so.
            for m in fetched.by_target.values_mut() {
                let m = std::sync::Arc::make_mut(m);
                let keep = m.minutes.len().saturating_sub(5);
                m.minutes.truncate(keep);
            }
            fetched.partial = true;
        }
        Ok(fetched)
    }
}

impl LambdaControl for Faulty<'_> {
    async fn account_concurrency(&self) -> PortResult<AccountConcurrency> {
        self.gate("GetAccountSettings", self.cloud.account_concurrency())
            .await
    }
    async fn set_reserved_concurrency(&self, function: &FunctionName, value: Option<u32>) -> PortResult<()> {
        self.check_double(
            &TargetId::Function(function.clone()),
            |l| matches!(l, Limits::Function { reserved_concurrency, .. } if *reserved_concurrency == value),
        );
        self.gate(
            "PutFunctionConcurrency",
            self.cloud.set_reserved_concurrency(function, value),
        )
        .await
    }
    async fn set_async_config(&self, function: &FunctionName, to: Option<&AsyncConfig>) -> PortResult<()> {
        self.check_double(
            &TargetId::Function(function.clone()),
            |l| matches!(l, Limits::Function { async_config, .. } if async_config.as_ref() == to),
        );
        self.gate(
            "PutFunctionEventInvokeConfig",
            self.cloud.set_async_config(function, to),
        )
        .await
    }
}

impl StageControl for Faulty<'_> {
    async fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> PortResult<()> {
        self.check_double(stage, |l| {
            matches!(l, Limits::Stage { throttle, overrides: current }
                if *throttle == value && overrides.iter().all(|(k, v)| current.get(k) == Some(v)))
        });
        self.gate(
            "UpdateStage",
            self.cloud.set_stage_throttle(stage, value, overrides),
        )
        .await
    }
}

impl UsagePlanControl for Faulty<'_> {
    async fn set_plan_limits(
        &self,
        plan: &UsagePlanId,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> PortResult<()> {
        self.check_double(
            &TargetId::UsagePlan(plan.clone()),
            |l| matches!(l, Limits::UsagePlan { throttle: t, quota: q } if *t == throttle && *q == quota),
        );
        self.gate(
            "UpdateUsagePlan",
            self.cloud.set_plan_limits(plan, throttle, quota),
        )
        .await
    }
}

impl SourceControl for Faulty<'_> {
    async fn move_api_key(&self, key: &str, from: &UsagePlanId, to: &UsagePlanId) -> PortResult<()> {
        self.gate("MoveApiKey", self.cloud.move_api_key(key, from, to))
            .await
    }
    async fn update_ip_set(&self, ip_set: &IpSetRef, add: &[String], remove: &[String]) -> PortResult<()> {
        self.gate("UpdateIPSet", self.cloud.update_ip_set(ip_set, add, remove))
            .await
    }
}

impl CallerRanking for Faulty<'_> {
    async fn sync_rankings(&self, stages: &[Target]) -> PortResult<RankingRules> {
        self.gate("PutInsightRule", self.cloud.sync_rankings(stages))
            .await
    }
    async fn rank(
        &self,
        stages: &[Target],
        now: DateTime<Utc>,
        window_minutes: i64,
    ) -> PortResult<Attribution> {
        self.gate(
            "GetInsightRuleReport",
            self.cloud.rank(stages, now, window_minutes),
        )
        .await
    }
}

impl Notifier for Faulty<'_> {
    async fn publish(&self, topic: Option<&str>, notice: &Publication) -> PortResult<()> {
        self.gate("Publish", self.cloud.publish(topic, notice)).await
    }
}

/// Minutes of flood, then calm until the end of the run.
const FLOOD_MINUTES: usize = 12;
const RUN_MINUTES: usize = 240;

fn targets() -> Vec<Target> {
    vec![checkout(), thumbnails(), shop(), partners()]
}

/// Requests a minute and milliseconds each, for every target at minute `pass`.
fn load(target: &TargetId, pass: usize) -> (u64, u64) {
    let flood = pass < FLOOD_MINUTES;
    match target.to_string().as_str() {
        "function:checkout" => (if flood { 20_000_000 } else { 1_000 }, 100),
        "function:thumbnails" => (if flood { 5_000_000 } else { 500 }, 300),
        _ => (if flood { 50_000_000 } else { 10_000 }, 0),
    }
}

/// The outcome of one run.
#[derive(Debug)]
struct Run {
    log: Vec<Vec<&'static str>>,
    doubles: Vec<String>,
    /// Passes in which at least one change was applied.
    acting: Vec<usize>,
}

async fn run(fault: Option<(usize, usize, Fault)>, settings: &GuardSettings, prices: &Prices) -> Run {
    let store = MemoryStore::default();
    for (i, t) in targets().iter().enumerate() {
        let b = budget(&format!("b{i}"), &t.id.to_string(), "100", "enforce");
        store.put_budget(&b, None, "test", t0()).await.unwrap();
    }
    let cloud = MemoryCloud::with_targets(targets());
    let faulty = Faulty {
        store: &store,
        cloud: &cloud,
        script: Mutex::new(Script {
            fault,
            ..Script::default()
        }),
    };
    let ports = Wired {
        store: &faulty,
        account: &faulty,
        notifier: &faulty,
    };
    let guard = Guard {
        ports: &ports,
        prices,
        settings,
        actor: "evaluator",
    };
    // The inventory, reconciled once without faults, as the inventory function would.
    let plain = Wired {
        store: &store,
        account: &cloud,
        notifier: &cloud,
    };
    Keeper {
        ports: &plain,
        actor: "inventory",
    }
    .reconcile(t0(), Slices::All)
    .await
    .unwrap();
    let originals: HashMap<TargetId, Limits> = targets().into_iter().map(|t| (t.id, t.limits)).collect();
    let mut acting = Vec::new();
    for pass in 0..RUN_MINUTES {
        let now = t0() + Duration::minutes(i64::try_from(pass).unwrap());
        for id in originals.keys() {
            let (rpm, ms) = load(id, pass);
            cloud.set_metrics(id, traffic_of(now, rpm, ms));
        }
        faulty.begin_pass(pass);
        // A crashed call never returns: the pass is abandoned where it stood.
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(60), guard.evaluate(now)).await;
        if let Ok(Ok(report)) = outcome
            && report.outcomes.contains(&dowguard_guard::Outcome::Applied)
        {
            acting.push(pass);
        }
        let case = format!("{fault:?}, after pass {pass}");
        let states = store.load_states().await.unwrap();
        for (id, original) in &originals {
            let stored = states.get(id).and_then(|s| s.restore_point.as_ref());
            if let Some(rp) = stored {
                assert_eq!(
                    &rp.limits, original,
                    "{case}: {id}'s restore point is not the original"
                );
            }
            if cloud.limits(id).as_ref() != Some(original) {
                assert!(
                    stored.is_some(),
                    "{case}: {id} is changed without a restore point"
                );
            }
        }
    }
    let case = format!("{fault:?}");
    let states = store.load_states().await.unwrap();
    for (id, original) in &originals {
        assert_eq!(
            cloud.limits(id).as_ref(),
            Some(original),
            "{case}: {id} is not restored"
        );
        assert_eq!(
            states.get(id).map(|s| s.phase),
            Some(Phase::Normal),
            "{case}: {id} is not normal"
        );
    }
    let script = faulty.script.into_inner().unwrap();
    Run {
        log: script.log,
        doubles: script.doubles,
        acting,
    }
}

#[tokio::test(start_paused = true)]
async fn every_fault_at_every_call_of_an_acting_pass_converges_without_losing_a_restore_point() {
    let settings = GuardSettings::default();
    let prices = prices();
    let clean = run(None, &settings, &prices).await;
    assert!(clean.doubles.is_empty(), "clean run: {:?}", clean.doubles);
    assert!(
        clean.acting.len() >= 2,
        "the flood must be tightened and later restored: {:?}",
        clean.acting
    );
    let mut cases = 0_usize;
    let mut by_fault: HashMap<String, usize> = HashMap::new();
    for &pass in &clean.acting {
        for (call, &operation) in clean.log[pass].iter().enumerate() {
            for fault in FAULTS {
                if fault == Fault::Partial && operation != "GetMetricData" {
                    continue;
                }
                let r = run(Some((pass, call, fault)), &settings, &prices).await;
                assert!(
                    r.doubles.is_empty(),
                    "{fault:?} at call {call} ({operation}) of pass {pass}: changes sent twice: {:?}",
                    r.doubles
                );
                cases += 1;
                *by_fault.entry(format!("{fault:?}")).or_default() += 1;
            }
        }
    }
    let mut kinds: Vec<_> = by_fault.into_iter().collect();
    kinds.sort();
    println!(
        "fault injection: {cases} cases over {} acting passes ({kinds:?}); 0 lost restore points, \
         0 stuck throttles, 0 double actions",
        clean.acting.len()
    );
    assert!(cases > 50, "too few cases to mean anything: {cases}");
}
