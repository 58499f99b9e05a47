//! A read-only assessment: the same discover → budgets and states → metrics → decide
//! as an evaluation pass, stopping before anything is saved or changed. What
//! `dowguard status` shows, computed by the same core the guard acts on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Budget, BudgetReport, Decision, Gaps, GuardSettings, GuardState,
    Inputs, Prices, Target, TargetId, coverage, decide,
};

use crate::evaluate::{GuardError, covered_targets, gaps_of};
use crate::ports::{BudgetStore, Discovery, MetricsRequest, MetricsSource, StateStore, Versioned};

/// Where every budget and guarded target stands, without acting.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// The time of the assessment.
    pub now: DateTime<Utc>,
    /// Budgets with their versions, in the store's order.
    pub budgets: Vec<Versioned<Budget>>,
    /// Discovered targets with their current limits.
    pub targets: Vec<Target>,
    /// Stored guard states.
    pub states: HashMap<TargetId, GuardState>,
    /// What the guard would decide now (nothing of it is saved or applied).
    pub decision: Decision,
    /// Metrics requested from the provider.
    pub metrics_requested: u64,
    /// Whether the provider reported partial data.
    pub partial_metrics: bool,
    /// What could not be seen: services not listed, unreadable stored items,
    /// partial or ambiguous metrics.
    pub gaps: Gaps,
}

impl Assessment {
    /// The report of one budget.
    pub fn report(&self, budget: &Budget) -> Option<&BudgetReport> {
        self.decision.reports.iter().find(|r| r.budget == budget.id)
    }

    /// The discovered targets a budget covers.
    pub fn members(&self, budget: &Budget) -> Vec<&Target> {
        members(budget, &self.targets)
    }

    /// The target with this id, if discovered.
    pub fn target(&self, id: &TargetId) -> Option<&Target> {
        self.targets.iter().find(|t| t.id == *id)
    }

    /// True when the guard holds any target tighter than its originals.
    pub fn anything_throttled(&self) -> bool {
        self.states.values().any(|s| s.phase.is_tightened())
    }
}

/// The targets of `targets` that `budget` covers (usage plans only by name).
pub fn members<'a>(budget: &Budget, targets: &'a [Target]) -> Vec<&'a Target> {
    coverage::members(budget, targets).map(|(_, t)| t).collect()
}

/// Assesses the account at `now`: reads budgets, states, targets and metrics and
/// runs the core's decision, saving nothing and applying nothing.
pub async fn assess<S, D, M>(
    store: &S,
    discovery: &D,
    metrics: &M,
    prices: &Prices,
    settings: &GuardSettings,
    now: DateTime<Utc>,
) -> Result<Assessment, GuardError>
where
    S: BudgetStore + StateStore,
    D: Discovery,
    M: MetricsSource,
{
    let discovered = discovery.discover().await.map_err(GuardError::Discovery)?;
    let listed_budgets = store.list_budgets().await.map_err(GuardError::Store)?;
    let plain: Vec<Budget> = listed_budgets.iter().map(|v| v.value.clone()).collect();
    let listed_states = store.load_states().await.map_err(GuardError::Store)?;
    let targets = discovered.targets.clone();
    let states = listed_states.items.clone();
    let detailed = covered_targets(&plain, &targets, &states);
    // A person asking: every covered target measured in full, no tripwire.
    let fetched = metrics
        .fetch(&MetricsRequest {
            now,
            targets: &targets,
            detailed: &detailed,
            urgent: &detailed,
            every: &HashMap::new(),
            aggregate: false,
            window_minutes: settings.long_window_minutes + settings.metric_delay_minutes + 1,
        })
        .await
        .map_err(GuardError::Metrics)?;
    let gaps = gaps_of(&discovered, &listed_budgets, &listed_states, &fetched);
    let decision = decide(&Inputs {
        now,
        budgets: &plain,
        targets: &targets,
        states: &states,
        metrics: &fetched.by_target,
        prices,
        account_usage: AccountUsage::default(),
        concurrency: AccountConcurrency::default(),
        gaps: &gaps,
        attribution: &dowguard_domain::source::Attribution::NONE,
        settings,
    });
    Ok(Assessment {
        now,
        budgets: listed_budgets.items,
        targets,
        states,
        decision,
        metrics_requested: fetched.metrics_requested,
        partial_metrics: fetched.partial,
        gaps,
    })
}
