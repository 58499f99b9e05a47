//! A pass's metrics by the plan ([`dowguard_domain::metrics_plan`]): the tripwire,
//! the hot set and the API stages due first; a decision on those figures; and, when
//! the tripwire says the functions it did not measure could change that decision,
//! those functions measured (in up to [`MAX_ROUNDS`] rounds, the last one every
//! function) and the decision taken again on exact figures.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use dowguard_domain::metrics_plan::{MAX_ROUNDS, Measured, Trip, hot_set, members_of, stage_every, widen};
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
    /// The budgets whose functions the tripwire had measured, and why (none when
    /// the aggregate ruled every decision out).
    pub trips: Vec<Trip>,
}

/// Measures and decides one pass: `decide_on` turns fetched metrics into a decision
/// (the caller's gaps, concurrency and states go with it).
pub async fn measure<M, F>(source: &M, plan: &Plan<'_>, decide_on: F) -> PortResult<Measurement>
where
    M: MetricsSource + ?Sized,
    F: Fn(&FetchedMetrics) -> Decision,
{
    let hot = hot_set(plan.states, plan.also);
    let members = members_of(plan.budgets, plan.targets);
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
    let mut trips = Vec::new();
    for round in 0..MAX_ROUNDS {
        let (next, why) = widen(
            &Measured {
                now: plan.now,
                budgets: plan.budgets,
                targets: plan.targets,
                members: &members,
                metrics: &fetched.by_target,
                fresh: &fetched.fresh,
                watched: &hot,
                aggregate: fetched.aggregate.as_deref(),
                reports: &decision.reports,
                prices: plan.prices,
                settings: plan.settings,
            },
            plan.detailed,
            round,
        );
        if next.is_empty() {
            break;
        }
        trips.extend(why);
        // Their figures are fetched again: the old ones go first, not alongside.
        fetched.by_target.retain(|id, _| !next.contains(id));
        let more = source
            .fetch(&MetricsRequest {
                now: plan.now,
                targets: plan.targets,
                detailed: plan.detailed,
                urgent: &next,
                every: &HashMap::new(),
                aggregate: false,
                window_minutes,
            })
            .await?;
        fetched.absorb(more);
    }
    if trips.is_empty() {
        return Ok(Measurement {
            fetched,
            decision,
            trips,
        });
    }
    let decision = decide_on(&fetched);
    Ok(Measurement {
        fetched,
        decision,
        trips,
    })
}
