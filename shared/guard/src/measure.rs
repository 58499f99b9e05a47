//! A pass's metrics by the plan ([`dowguard_domain::metrics_plan`]): the tripwire,
//! the hot set and the API stages due first; a decision on those figures; and, when
//! the tripwire says the functions it did not measure could change that decision,
//! every function measured and the decision taken again on exact figures.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dowguard_domain::metrics_plan::{Measured, Trip, hot_set, stage_every, tripwire};
use dowguard_domain::{Budget, Decision, GuardSettings, GuardState, Prices, Target, TargetId, TargetKind};

use crate::ports::{FetchedMetrics, MetricsRequest, MetricsSource, PortResult};

/// What one pass measures from.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// The budgets.
    pub budgets: &'a [Budget],
    /// The targets.
    pub targets: &'a [Target],
    /// The stored states.
    pub states: &'a HashMap<TargetId, GuardState>,
    /// Targets some budget needs figures for.
    pub detailed: &'a HashSet<TargetId>,
    /// Targets measured in full whatever their state (a responder's alarmed target).
    pub also: &'a HashSet<TargetId>,
    /// List prices, for the tripwire's bound and the stages' cadence.
    pub prices: &'a Prices,
    /// The guard's settings.
    pub settings: &'a GuardSettings,
}

/// The figures a pass decided on.
#[derive(Debug)]
pub struct Measurement {
    /// The metrics.
    pub fetched: FetchedMetrics,
    /// The decision on them.
    pub decision: Decision,
    /// Why every function was measured, if the tripwire tripped; `None` also when
    /// it was not needed.
    pub trip: Option<Trip>,
}

/// Measures and decides one pass: `decide_on` turns fetched metrics into a decision
/// (the caller's gaps, concurrency and states go with it).
pub async fn measure<M, F>(source: &M, plan: &Plan<'_>, decide_on: F) -> PortResult<Measurement>
where
    M: MetricsSource + ?Sized,
    F: Fn(&FetchedMetrics) -> Decision,
{
    let hot = hot_set(plan.budgets, plan.targets, plan.states, plan.also);
    let every: HashMap<TargetId, u64> = plan
        .targets
        .iter()
        .filter(|t| matches!(t.id.kind(), TargetKind::RestStage | TargetKind::HttpStage))
        .map(|t| {
            let minutes = stage_every(t, plan.budgets, plan.prices, plan.now, plan.settings);
            (t.id.clone(), minutes)
        })
        .collect();
    let window_minutes = plan.settings.long_window_minutes + plan.settings.metric_delay_minutes + 1;
    let mut fetched = source
        .fetch(&MetricsRequest {
            now: plan.now,
            targets: plan.targets,
            detailed: plan.detailed,
            urgent: &hot,
            every: &every,
            aggregate: true,
            window_minutes,
        })
        .await?;
    let decision = decide_on(&fetched);
    let cold: HashSet<TargetId> = plan
        .targets
        .iter()
        .filter(|t| t.id.kind() == TargetKind::Function)
        .filter(|t| plan.detailed.contains(&t.id) && !fetched.fresh.contains(&t.id))
        .map(|t| t.id.clone())
        .collect();
    if cold.is_empty() {
        return Ok(Measurement {
            fetched,
            decision,
            trip: None,
        });
    }
    let trip = match &fetched.aggregate {
        Some(aggregate) => tripwire(&Measured {
            now: plan.now,
            budgets: plan.budgets,
            targets: plan.targets,
            metrics: &fetched.by_target,
            fresh: &fetched.fresh,
            aggregate,
            reports: &decision.reports,
            prices: plan.prices,
            settings: plan.settings,
        }),
        // No complete aggregate: nothing bounds what the others spent.
        None => Some(Trip::unbounded()),
    };
    let Some(trip) = trip else {
        return Ok(Measurement {
            fetched,
            decision,
            trip: None,
        });
    };
    let more = source
        .fetch(&MetricsRequest {
            now: plan.now,
            targets: plan.targets,
            detailed: plan.detailed,
            urgent: &cold,
            every: &HashMap::new(),
            aggregate: false,
            window_minutes,
        })
        .await?;
    fetched.absorb(more);
    let decision = decide_on(&fetched);
    Ok(Measurement {
        fetched,
        decision,
        trip: Some(trip),
    })
}
