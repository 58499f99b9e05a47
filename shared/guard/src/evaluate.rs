//! One evaluation pass: discover → budgets and states → metrics → decide → save
//! states → apply → audit. The order is the crash-safety argument: a state (with its
//! restore point) is stored before any change to its target, and a change that did
//! not happen is decided again on the next pass.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Action, Budget, BudgetReport, Decision, Gaps, GuardSettings,
    GuardState, Inputs, Mode, Prices, Scope, Target, TargetId, TargetKind, decide,
};

use crate::audit::{AuditRecord, Outcome};
use crate::executor::Executor;
use crate::measure::{Measurement, Plan, measure};
use crate::ports::{
    AuditLog, BudgetStore, Discovered, Discovery, FailureKind, FetchedMetrics, LambdaControl, Listed,
    PortError, Ports, StateStore, Versioned,
};

/// Why a pass could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Listing the account's targets failed.
    #[error("discovering targets: {0}")]
    Discovery(#[source] PortError),
    /// Reading budgets or states failed.
    #[error("reading the guard's table: {0}")]
    Store(#[source] PortError),
    /// Fetching metrics failed.
    #[error("fetching metrics: {0}")]
    Metrics(#[source] PortError),
    /// Reading the account's concurrency failed.
    #[error("reading the account's concurrency: {0}")]
    Account(#[source] PortError),
}

/// Everything one pass did, for logs, metrics and the CLI.
#[derive(Debug, Clone)]
pub struct PassReport {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// Targets discovered.
    pub targets: usize,
    /// The core's decision.
    pub decision: Decision,
    /// One outcome per action of the decision, in the same order.
    pub outcomes: Vec<Outcome>,
    /// Targets whose state another writer changed first (their actions were skipped).
    pub conflicts: Vec<TargetId>,
    /// Metrics requested from CloudWatch in this pass.
    pub metrics_requested: u64,
    /// Whether the metrics provider reported partial data.
    pub partial_metrics: bool,
    /// The budgets whose functions the pass measured because the account's
    /// aggregate could not rule them out ([`dowguard_domain::metrics_plan::widen`]).
    pub tripwire: Vec<dowguard_domain::metrics_plan::Trip>,
    /// What the pass could not see (services not listed, unreadable stored items,
    /// partial or ambiguous metrics): budgets with a gap held their members.
    pub gaps: Gaps,
}

impl PassReport {
    /// The budget reports of the pass.
    pub fn reports(&self) -> &[BudgetReport] {
        &self.decision.reports
    }

    /// Actions with their outcomes.
    pub fn results(&self) -> impl Iterator<Item = (&Action, &Outcome)> {
        self.decision.actions.iter().zip(&self.outcomes)
    }
}

/// How one pass is scoped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassOptions {
    /// Evaluate only these targets (and the budgets and members they share);
    /// `None`: every target.
    pub only: Option<HashSet<TargetId>>,
    /// Treat every budget as `dry-run` (a deployment in dry-run mode): actions are
    /// decided and recorded, none is applied, and targets held in `enforce` mode
    /// get their originals back.
    pub dry_run_only: bool,
}

/// The targets of `only`, every budget covering one of them, every member of those
/// budgets, and so on until nothing is added.
fn closure(only: &HashSet<TargetId>, budgets: &[Budget], targets: Vec<Target>) -> (Vec<Budget>, Vec<Target>) {
    let mut members: HashSet<TargetId> = only.clone();
    let mut chosen = vec![false; budgets.len()];
    loop {
        let mut grew = false;
        for (i, budget) in budgets.iter().enumerate() {
            if chosen[i] {
                continue;
            }
            let covered: Vec<&Target> = dowguard_domain::coverage::members(budget, &targets)
                .map(|(_, t)| t)
                .collect();
            let own = matches!(&budget.scope, Scope::Target(id) if members.contains(id));
            let touches = own || covered.iter().any(|t| members.contains(&t.id));
            if touches {
                chosen[i] = true;
                grew = true;
                members.extend(covered.into_iter().map(|t| t.id.clone()));
            }
        }
        if !grew {
            break;
        }
    }
    let kept_budgets = budgets
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .map(|(b, _)| b.clone())
        .collect();
    let kept_targets = targets.into_iter().filter(|t| members.contains(&t.id)).collect();
    (kept_budgets, kept_targets)
}

/// What a pass could not see, from what discovery, the store and the metrics
/// source reported.
pub fn gaps_of(
    discovered: &Discovered,
    budgets: &Listed<Vec<Versioned<Budget>>>,
    states: &Listed<HashMap<TargetId, GuardState>>,
    fetched: &FetchedMetrics,
) -> Gaps {
    let mut gaps = Gaps::default();
    for unlisted in &discovered.unlisted {
        for kind in &unlisted.kinds {
            gaps.kinds.insert(*kind, unlisted.line());
        }
    }
    for item in budgets.unreadable.iter().chain(&states.unreadable) {
        match &item.target {
            Some(target) => {
                gaps.states.insert(target.clone(), item.line());
            }
            None => gaps.stored.push(item.line()),
        }
    }
    gaps.figures
        .extend(fetched.gaps.iter().map(|(t, why)| (t.clone(), why.clone())));
    for line in gaps.lines() {
        tracing::warn!(gap = %line, "the pass could not see everything; budgets with a gap hold their targets");
    }
    gaps
}

/// The guard: the ports it acts through and the figures it decides with.
#[derive(Debug)]
pub struct Guard<'a, P> {
    /// The store, the account and the notifier.
    pub ports: &'a P,
    /// Prices of the deployment's region.
    pub prices: &'a Prices,
    /// Tunables.
    pub settings: &'a GuardSettings,
    /// Who is acting, for the audit trail.
    pub actor: &'a str,
}

impl<P> Clone for Guard<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Guard<'_, P> {}

impl<P: Ports> Guard<'_, P> {
    /// Runs one evaluation pass at `now` over every target and budget.
    pub async fn evaluate(&self, now: DateTime<Utc>) -> Result<PassReport, GuardError> {
        self.evaluate_with(now, &PassOptions::default()).await
    }

    /// Runs one evaluation pass at `now` over the targets `only` names, measured at
    /// once (the alarm responder's pass). The budgets covering them are judged whole:
    /// every member of those budgets, and every budget covering those members, takes
    /// part, so a group budget sees all its spend and no other budget's hold on a
    /// shared member is lost. Targets outside that closure are left as they are.
    pub async fn evaluate_targets(
        &self,
        now: DateTime<Utc>,
        only: &HashSet<TargetId>,
    ) -> Result<PassReport, GuardError> {
        self.evaluate_with(
            now,
            &PassOptions {
                only: Some(only.clone()),
                ..PassOptions::default()
            },
        )
        .await
    }

    /// Runs one evaluation pass at `now` with `options`.
    pub async fn evaluate_with(
        &self,
        now: DateTime<Utc>,
        options: &PassOptions,
    ) -> Result<PassReport, GuardError> {
        let (store, account) = (self.ports.store(), self.ports.account());
        let discovered = account.discover().await.map_err(GuardError::Discovery)?;
        let listed_budgets = store.list_budgets().await.map_err(GuardError::Store)?;
        let listed_states = store.load_states().await.map_err(GuardError::Store)?;
        let mut budgets: Vec<Budget> = listed_budgets.items.iter().map(|v| v.value.clone()).collect();
        if options.dry_run_only {
            for budget in &mut budgets {
                budget.mode = Mode::DryRun;
            }
        }
        let mut states = listed_states.items.clone();
        let all_targets = discovered.targets.clone();
        let targets = match &options.only {
            None => all_targets,
            Some(only) => {
                let (kept_budgets, kept_targets) = closure(only, &budgets, all_targets);
                budgets = kept_budgets;
                let ids: HashSet<&TargetId> = kept_targets.iter().map(|t| &t.id).collect();
                states.retain(|id, _| ids.contains(id));
                kept_targets
            }
        };
        let detailed = covered_targets(&budgets, &targets, &states);
        let needs_account = targets
            .iter()
            .any(|t| t.id.kind() == TargetKind::Function && detailed.contains(&t.id));
        let concurrency = if needs_account {
            account.account_concurrency().await.map_err(GuardError::Account)?
        } else {
            AccountConcurrency::default()
        };
        let also = options.only.clone().unwrap_or_default();
        let plan = Plan {
            now,
            budgets: &budgets,
            targets: &targets,
            states: &states,
            detailed: &detailed,
            also: &also,
            prices: self.prices,
            settings: self.settings,
        };
        let Measurement {
            fetched,
            decision,
            trips,
        } = measure(account, &plan, |fetched| {
            let gaps = gaps_of(&discovered, &listed_budgets, &listed_states, fetched);
            decide(&Inputs {
                now,
                budgets: &budgets,
                targets: &targets,
                states: &states,
                metrics: &fetched.by_target,
                prices: self.prices,
                account_usage: AccountUsage::default(),
                concurrency,
                gaps: &gaps,
                settings: self.settings,
            })
        })
        .await
        .map_err(GuardError::Metrics)?;
        for trip in &trips {
            tracing::info!(
                budget = trip.budget.as_ref().map(ToString::to_string),
                bound = %trip.bound,
                "tripwire: the budget's functions measured"
            );
        }
        let gaps = gaps_of(&discovered, &listed_budgets, &listed_states, &fetched);

        // States (restore points included) are stored before any change.
        let mut blocked: HashMap<TargetId, String> = HashMap::new();
        let mut conflicts = Vec::new();
        for (target, state) in &decision.states {
            if let Err(e) = store.save_state(target, state).await {
                let why = if e.kind == FailureKind::Conflict {
                    conflicts.push(target.clone());
                    "another pass changed this target's state first; the next pass decides again".to_string()
                } else {
                    format!("state not saved, so nothing was changed: {e}")
                };
                tracing::warn!(target = %target, error = %e, "state not saved");
                blocked.insert(target.clone(), why);
            }
        }
        let executor = Executor {
            account,
            notifier: self.ports.notifier(),
        };
        let outcomes = executor.run(&decision.actions, &blocked).await;
        let records: Vec<AuditRecord> = decision
            .actions
            .iter()
            .zip(&outcomes)
            .map(|(action, outcome)| AuditRecord {
                at: now,
                target: action.target.clone(),
                actor: self.actor.to_string(),
                action: action.clone(),
                outcome: outcome.clone(),
            })
            .collect();
        if !records.is_empty()
            && let Err(e) = store.record(&records).await
        {
            // The changes stand and the states say so; losing the trail is reported loudly.
            tracing::error!(error = %e, records = records.len(), "audit records not written");
        }
        Ok(PassReport {
            now,
            targets: targets.len(),
            decision,
            outcomes,
            conflicts,
            metrics_requested: fetched.metrics_requested,
            partial_metrics: fetched.partial,
            tripwire: trips,
            gaps,
        })
    }
}

/// Targets some budget covers, plus any the guard still holds: these need
/// one-minute detail; the rest need none.
pub fn covered_targets(
    budgets: &[Budget],
    targets: &[Target],
    states: &HashMap<TargetId, dowguard_domain::GuardState>,
) -> HashSet<TargetId> {
    let mut out: HashSet<TargetId> = states
        .iter()
        .filter(|(_, s)| s.phase != dowguard_domain::Phase::Normal)
        .map(|(id, _)| id.clone())
        .collect();
    for budget in budgets {
        if let Scope::Target(id) = &budget.scope {
            out.insert(id.clone());
        }
        out.extend(dowguard_domain::coverage::members(budget, targets).map(|(_, t)| t.id.clone()));
    }
    out
}
