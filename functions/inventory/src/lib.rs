//! dowguard's inventory function: keeps the inventory of targets, tags and limits
//! in the guard's table (`dowguard_guard::inventory`), so that the evaluator and
//! the alarm responder never list the account.
//!
//! - On an "AWS API Call via CloudTrail" event of a call that changes a limit, a
//!   tag or a target's existence (`dowguard_runtime::change`), it reads that target
//!   again and updates its entry; a change by someone else to a limit the guard
//!   holds is drift (`dowguard_domain::drift`): audited under its author's name,
//!   the new value kept as the original, the guard's limit set again.
//! - On its schedule it reconciles the next slice of the account's functions (the
//!   whole account each hour; three times as fast where no CloudTrail trail
//!   delivers the events), every held target, the API Gateway targets, and checks
//!   the trail.
//!
//! One invocation at a time, through a lease in the table: a reconciliation finding
//! it held skips; a change event waits for it a while, then leaves the change to
//! the next reconciliation.

use chrono::{DateTime, Utc};
use dowguard_domain::TargetId;
use dowguard_guard::inventory::{InventoryReport, Slices};
use dowguard_guard::ports::Deployment;
use dowguard_runtime::App;
use dowguard_runtime::admission::{INVENTORY_LEASE, INVENTORY_WAIT};
use dowguard_runtime::change::{Trigger, inventory_trigger, time_of};
use dowguard_runtime::event::check_age;
use dowguard_runtime::telemetry::diagnostic;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// The actor named in the audit trail for what the guard sets again.
pub const ACTOR: &str = "inventory";

/// Handles one event.
pub async fn handle<D: Deployment>(app: &App<D>, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    handle_at(app, &event.payload, &event.context, Utc::now()).await
}

/// [`handle`] with the time of arrival given: the handler itself reads no clock.
pub async fn handle_at<D: Deployment>(
    app: &App<D>,
    payload: &Value,
    context: &Context,
    now: DateTime<Utc>,
) -> Result<Value, Diagnostic> {
    let trigger = inventory_trigger(payload, &app.expected())
        .and_then(|t| check_age(time_of(&t), now, app.config.max_event_age).map(|()| t));
    let trigger = match trigger {
        Ok(trigger) => trigger,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "event rejected");
            return Ok(json!({ "rejected": rejection.to_string() }));
        }
    };
    let lease = match &trigger {
        Trigger::Reconcile(_) => app.take_lease(INVENTORY_LEASE, context, now).await,
        Trigger::Change(_) => app.wait_for_lease(INVENTORY_LEASE, context, INVENTORY_WAIT).await,
    };
    let lease = match lease {
        Ok(Ok(lease)) => lease,
        Ok(Err(held)) => {
            tracing::info!(reason = %held, "skipped; the next reconciliation reads what changed");
            return Ok(json!({ "skipped": held }));
        }
        Err(e) => return Err(diagnostic("LeaseError", &e)),
    };
    let keeper = app.guard(ACTOR).keeper();
    let out = match &trigger {
        Trigger::Reconcile(_) => keeper.reconcile(now, Slices::Next).await,
        Trigger::Change(call) => keeper.observe(call, now).await,
    };
    app.release(lease).await;
    let report = out.map_err(|e| diagnostic("GuardError", &e))?;
    for error in &report.errors {
        tracing::warn!(error = %error, "not read; the next reconciliation tries again");
    }
    for drift in &report.drift {
        tracing::warn!(target = %drift.target, by = drift.by.as_deref().unwrap_or("unknown"), summary = %drift.summary, "changed by someone else while held");
    }
    Ok(summary(&trigger, &report))
}

/// The JSON an invocation returns: what it read and wrote.
fn summary(trigger: &Trigger, report: &InventoryReport) -> Value {
    let names = |ids: &[TargetId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>();
    json!({
        "trigger": match trigger {
            Trigger::Reconcile(_) => "reconcile".to_string(),
            Trigger::Change(call) => call.event.clone(),
        },
        "slices": report.slices,
        "read": report.read,
        "written": names(&report.written),
        "removed": names(&report.removed),
        "superseded": names(&report.superseded),
        "drift": report.drift.iter().map(|d| json!({
            "target": d.target.to_string(),
            "by": d.by,
            "summary": d.summary,
            "reapplied": d.reapplied,
        })).collect::<Vec<_>>(),
        "trail": report.trail.as_ref().map(|t| json!({ "trail": t.trail, "note": t.note })),
        "errors": report.errors,
    })
}
