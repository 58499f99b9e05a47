//! One evaluation pass: the inventory → budgets and states → metrics → decide →
//! (rank the callers of the REST stages it tightens, and decide again with them) →
//! save states → apply → keep the inventory → audit. The order is the crash-safety
//! argument: a state (with its restore point) is stored before any change to its
//! target, and a change that did not happen is decided again on the next pass.
//!
//! A pass reads the targets from the inventory in the guard's table
//! ([`crate::inventory`]), never by listing the account: its AWS calls are the
//! table's, the metrics', and those of the targets it changes. It writes what AWS
//! accepted into the inventory, reads back a target whose change failed, and reads
//! a target again before setting limits the inventory says have drifted.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use dowguard_domain::source::Attribution;
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Action, Budget, BudgetReport, Decision, Gaps, GuardSettings,
    GuardState, Inputs, Limits, Mode, Prices, Rule, Scope, Target, TargetId, TargetKind, decide,
};

use crate::audit::{AuditRecord, Outcome};
use crate::executor::Executor;
use crate::inventory::{Entry, Ledger, Source, apply_change};
use crate::measure::{Measurement, Plan, measure};
use crate::ports::{
    AuditLog, BudgetStore, CallerRanking, Discovered, Discovery, FailureKind, FetchedMetrics,
    InventorySource, InventoryStore, LambdaControl, Listed, PortError, Ports, StateStore, Versioned,
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
    /// The stages whose callers the pass ranked, so that the core could hold the
    /// few that cause the spend ([`crate::ports::CallerRanking`]).
    pub ranked: Vec<TargetId>,
    /// Every target the inventory holds, with what it could not vouch for, as the
    /// pass read it (the alarm sync works from this, not from another listing).
    pub seen: Discovered,
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

/// The REST API stages whose callers a pass ranks: those the ladder tightens now,
/// and those that hold callers already (each pass may hold more, or find holding
/// them not enough). An HTTP API stage has neither API keys nor a web ACL, so no
/// lever to hold a caller ("Choose between REST APIs and HTTP APIs").
pub fn stages_to_rank(
    decision: &Decision,
    targets: &[Target],
    states: &HashMap<TargetId, GuardState>,
) -> Vec<Target> {
    let tightened: HashSet<&TargetId> = decision
        .actions
        .iter()
        .filter(|a| a.intent == dowguard_domain::Intent::Tighten)
        .map(|a| &a.target)
        .collect();
    targets
        .iter()
        .filter(|t| t.id.kind() == TargetKind::RestStage && t.guarded)
        .filter(|t| {
            tightened.contains(&t.id) || states.get(&t.id).is_some_and(|s| !s.held_sources.is_empty())
        })
        .cloned()
        .collect()
}

/// The REST API stages whose callers are worth a ranking rule: those the guard
/// may change and some budget covers.
pub fn stages_worth_ranking(budgets: &[Budget], targets: &[Target]) -> Vec<Target> {
    let covered = covered_targets(budgets, targets, &HashMap::new());
    targets
        .iter()
        .filter(|t| t.id.kind() == TargetKind::RestStage && t.guarded && covered.contains(&t.id))
        .cloned()
        .collect()
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
    /// The wall-clock time the inventory's age is judged at; `None`: the pass's own
    /// time (a pass may be run for an earlier minute than the clock's).
    pub as_of: Option<DateTime<Utc>>,
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
    /// shared member is lost. Only the targets `only` names are changed (states,
    /// limits, notices): the others are left to the evaluator, a minute away.
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
        let inventory = store.load_inventory().await.map_err(GuardError::Store)?;
        account.remember(&inventory.named());
        let (discovered, ledger) = inventory.into_discovered(options.as_of.unwrap_or(now));
        let listed_budgets = store.list_budgets().await.map_err(GuardError::Store)?;
        let listed_states = store.load_states().await.map_err(GuardError::Store)?;
        let mut budgets: Vec<Budget> = listed_budgets.items.iter().map(|v| v.value.clone()).collect();
        if options.dry_run_only {
            for budget in &mut budgets {
                budget.mode = Mode::DryRun;
            }
        }
        let mut states = listed_states.items.clone();
        // Every target, borrowed; a targeted pass's few, owned.
        let targets: Cow<'_, [Target]> = match &options.only {
            None => Cow::Borrowed(&discovered.targets),
            Some(only) => {
                let (kept_budgets, kept_targets) = closure(only, &budgets, discovered.targets.clone());
                budgets = kept_budgets;
                let ids: HashSet<&TargetId> = kept_targets.iter().map(|t| &t.id).collect();
                states.retain(|id, _| ids.contains(id));
                Cow::Owned(kept_targets)
            }
        };
        let detailed = covered_targets(&budgets, &targets, &states);
        let needs_account = targets.iter().any(|t| {
            t.id.kind() == TargetKind::Function
                && detailed.contains(&t.id)
                && options.only.as_ref().is_none_or(|only| only.contains(&t.id))
        });
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
        let decide_on = |fetched: &FetchedMetrics, attribution: &Attribution| {
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
                attribution,
                settings: self.settings,
            })
        };
        let Measurement {
            fetched,
            mut decision,
            trips,
        } = measure(account, &plan, |fetched| decide_on(fetched, &Attribution::NONE))
            .await
            .map_err(GuardError::Metrics)?;
        // The stages the ladder tightens, or that hold callers, are ranked; where a
        // ranking and a lever exist the core decides again, now able to hold the
        // few callers that cause the spend instead of the whole stage.
        let to_rank = stages_to_rank(&decision, &targets, &states);
        let mut ranked = Vec::new();
        if !to_rank.is_empty() {
            match account
                .rank(&to_rank, now, self.settings.short_window_minutes)
                .await
            {
                Ok(attribution) if !attribution.stages.is_empty() => {
                    ranked = attribution.stages.keys().cloned().collect();
                    decision = decide_on(&fetched, &attribution);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "callers not ranked; the stages are guarded whole"),
            }
        }
        for trip in &trips {
            tracing::info!(
                budget = trip.budget.as_ref().map(ToString::to_string),
                bound = %trip.bound,
                "tripwire: the budget's functions measured"
            );
        }
        let gaps = gaps_of(&discovered, &listed_budgets, &listed_states, &fetched);
        if let Some(only) = &options.only {
            // A targeted pass changes only what its alarm names.
            decision.states.retain(|(target, _)| only.contains(target));
            decision.actions.retain(|action| only.contains(&action.target));
        }

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
        let (preset, read_back) = self.already_in_place(&decision.actions, &blocked, &targets).await;
        let executor = Executor {
            account,
            notifier: self.ports.notifier(),
        };
        let to_run: Vec<Action> = decision
            .actions
            .iter()
            .enumerate()
            .filter(|(i, _)| !preset.contains_key(i))
            .map(|(_, a)| a.clone())
            .collect();
        let mut ran = executor.run(&to_run, &blocked).await.into_iter();
        let outcomes: Vec<Outcome> = (0..decision.actions.len())
            .map(|i| {
                preset.get(&i).cloned().unwrap_or_else(|| {
                    ran.next().unwrap_or(Outcome::Skipped {
                        why: "not run".into(),
                    })
                })
            })
            .collect();
        self.keep_inventory(
            &ledger,
            &discovered.targets,
            &decision.actions,
            &outcomes,
            read_back,
            now,
        )
        .await;
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
            ranked,
            seen: discovered,
        })
    }

    /// Before limits the inventory says have drifted are set again (the converge
    /// rule), the target is read: the inventory may be behind (a change whose answer
    /// was lost, an inventory write that failed). Actions whose change is already in
    /// place are not run; they and the targets read are returned.
    async fn already_in_place(
        &self,
        actions: &[Action],
        blocked: &HashMap<TargetId, String>,
        targets: &[Target],
    ) -> (HashMap<usize, Outcome>, BTreeMap<TargetId, crate::ports::Found>) {
        let mut preset = HashMap::new();
        let mut read: BTreeMap<TargetId, crate::ports::Found> = BTreeMap::new();
        for (i, action) in actions.iter().enumerate() {
            let limit_change = !matches!(action.change, dowguard_domain::Change::Notify { .. });
            if action.reason.rule != Rule::Converge
                || !limit_change
                || !action.apply
                || blocked.contains_key(&action.target)
            {
                continue;
            }
            if !read.contains_key(&action.target) {
                match self.ports.account().read_target(&action.target).await {
                    Ok(Some(found)) => {
                        read.insert(action.target.clone(), found);
                    }
                    Ok(None) => {
                        preset.insert(
                            i,
                            Outcome::Skipped {
                                why: "the target no longer exists".into(),
                            },
                        );
                        continue;
                    }
                    Err(e) => {
                        // Unconfirmed, a change is never sent: it may already be in
                        // place, and sending it twice is what convergence must not do.
                        preset.insert(
                            i,
                            Outcome::Skipped {
                                why: format!("could not read the target before setting it again; the next pass tries again: {e}"),
                            },
                        );
                        continue;
                    }
                }
            }
            let Some(found) = read.get(&action.target) else {
                continue;
            };
            let inventoried = targets.iter().find(|t| t.id == action.target);
            if apply_change(&found.target.limits, &action.change) == found.target.limits
                && inventoried.is_some_and(|t| t.limits != found.target.limits)
            {
                preset.insert(
                    i,
                    Outcome::Skipped {
                        why: "already in place: the inventory was behind, and is brought up to date".into(),
                    },
                );
            }
        }
        (preset, read)
    }

    /// Writes what this pass learnt into the inventory: the limits AWS accepted,
    /// and a fresh read of every target whose change failed (its outcome is not
    /// known) or that was read before a change. A write that loses to another
    /// writer (an event read after this pass's change) is left to it.
    async fn keep_inventory(
        &self,
        ledger: &Ledger,
        targets: &[Target],
        actions: &[Action],
        outcomes: &[Outcome],
        mut read: BTreeMap<TargetId, crate::ports::Found>,
        now: DateTime<Utc>,
    ) {
        let account = self.ports.account();
        let mut applied: BTreeMap<TargetId, Limits> = BTreeMap::new();
        let mut unsure: HashSet<TargetId> = HashSet::new();
        for (action, outcome) in actions.iter().zip(outcomes) {
            if matches!(action.change, dowguard_domain::Change::Notify { .. }) {
                continue;
            }
            match outcome {
                Outcome::Applied => {
                    let base = match applied.get(&action.target) {
                        Some(limits) => limits.clone(),
                        None => match read.get(&action.target) {
                            Some(found) => found.target.limits.clone(),
                            None => match targets.iter().find(|t| t.id == action.target) {
                                Some(t) => t.limits.clone(),
                                None => continue,
                            },
                        },
                    };
                    applied.insert(action.target.clone(), apply_change(&base, &action.change));
                }
                Outcome::Failed { .. } => {
                    unsure.insert(action.target.clone());
                }
                Outcome::Skipped { .. } => {}
            }
        }
        for id in &unsure {
            applied.remove(id);
            match account.read_target(id).await {
                Ok(Some(found)) => {
                    read.insert(id.clone(), found);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(target = %id, error = %e, "could not read back a target whose change failed; the next reconciliation does")
                }
            }
        }
        let mut writes: Vec<Entry> = Vec::new();
        for (id, limits) in applied {
            let (Some((_, api_name)), Some(inventoried)) =
                (ledger.get(&id), targets.iter().find(|t| t.id == id))
            else {
                continue;
            };
            let mut target = inventoried.clone();
            target.limits = limits;
            writes.push(Entry::new(
                crate::ports::Found {
                    target,
                    api_name: api_name.clone(),
                },
                now,
                Source::Applied {
                    actor: self.actor.to_string(),
                },
            ));
        }
        for (id, found) in read {
            if writes.iter().any(|e| e.target.id == id) {
                continue;
            }
            let same_target = targets.iter().find(|t| t.id == id) == Some(&found.target);
            if same_target
                && ledger
                    .get(&id)
                    .is_some_and(|(_, api_name)| *api_name == found.api_name)
            {
                continue;
            }
            writes.push(Entry::new(
                found,
                now,
                Source::ReadBack {
                    actor: self.actor.to_string(),
                },
            ));
        }
        for entry in writes {
            let expected = ledger.get(&entry.target.id).map_or(0, |(version, _)| *version);
            if let Err(e) = self.ports.store().put_entry(&entry, expected).await {
                tracing::warn!(target = %entry.target.id, error = %e, "inventory entry not written; the event or the next reconciliation brings it up to date");
            }
        }
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
