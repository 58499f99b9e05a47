//! The alarm sync: keeps CloudWatch alarms on the guarded targets that need one
//! ([`dowguard_domain::alarm_needed`]) in step with the budgets and the evaluator's
//! schedule, through the [`Alarms`] port. What should exist is the domain's
//! [`desired_alarms`]; what to put and delete is [`plan_alarms`]; this module only
//! reads the account and the alarms, and applies the plan.

use dowguard_domain::{AlarmBasis, AlarmPlan, Budget, TargetKind, desired_alarms, plan_alarms};

use crate::ports::{Alarms, Discovered, Listed, PortResult, Versioned};

/// What one alarm sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmSyncReport {
    /// Alarms created or updated.
    pub put: Vec<String>,
    /// Alarms deleted.
    pub deleted: Vec<String>,
    /// Alarms already in step with their budgets.
    pub unchanged: usize,
}

/// Brings `alarms` in step with the `listed` budgets over the targets a pass saw
/// (`discovered`: the inventory, never another listing of the account), under
/// `basis` (the prices, the time and the evaluator's schedule).
/// The alarm of a target the inventory cannot vouch for is kept, and while a
/// stored budget is unreadable nothing is deleted: the alarm may be its.
///
/// # Errors
///
/// The first port error: listing, putting or deleting an alarm.
pub async fn sync_alarms<A: Alarms>(
    discovered: &Discovered,
    alarms: &A,
    listed: &Listed<Vec<Versioned<Budget>>>,
    basis: &AlarmBasis<'_>,
) -> PortResult<AlarmSyncReport> {
    let budgets: Vec<Budget> = listed.items.iter().map(|v| v.value.clone()).collect();
    let unlisted: Vec<TargetKind> = discovered
        .unlisted
        .iter()
        .flat_map(|u| u.kinds.iter().copied())
        .collect();
    let prefix = alarms.prefix();
    let desired = desired_alarms(prefix, &budgets, discovered, basis);
    let existing = alarms.list().await?;
    let AlarmPlan {
        put,
        delete,
        unchanged,
    } = plan_alarms(prefix, &desired, &existing, &unlisted);
    let delete = if listed.unreadable.is_empty() {
        delete
    } else {
        Vec::new()
    };
    let mut report = AlarmSyncReport {
        unchanged,
        ..AlarmSyncReport::default()
    };
    for alarm in &put {
        if let Some(target) = discovered.iter().find(|t| t.id == alarm.target) {
            alarms.put(alarm, target).await?;
            report.put.push(alarm.name.clone());
        }
    }
    alarms.delete(&delete).await?;
    report.deleted = delete;
    Ok(report)
}
