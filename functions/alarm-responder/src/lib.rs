//! dowguard's alarm responder: receives a CloudWatch alarm state change (from
//! EventBridge, or wrapped in an SNS notification), validates it strictly, and on
//! ALARM runs a guard pass over the alarmed target at once, so a surge is throttled
//! within a minute instead of at the next schedule. The pass reads the targets
//! from the inventory in the table and changes only the alarmed target: its AWS
//! calls concern that target alone. On OK it does nothing: recovery
//! is the evaluator's, after the cool-down. Anything foreign or malformed is
//! rejected with the reason logged, and changes nothing. A pass runs only if this
//! instance ran none over the target this minute, it holds the responders' slot in
//! the table (one responder pass at a time), and the deployment's cap on passes a
//! minute admits it (`dowguard_runtime::admission`).

use std::collections::HashSet;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use dowguard_guard::ports::Deployment;
use dowguard_runtime::App;
use dowguard_runtime::admission::{RESPONDER_LEASE, RESPONDER_WAIT};
use dowguard_runtime::app::summary;
use dowguard_runtime::emf::{emit, pass_documents};
use dowguard_runtime::event::{AlarmState, AlarmTrigger, alarm_trigger, check_age};
use dowguard_runtime::telemetry::diagnostic;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// The actor named in the audit trail.
pub const ACTOR: &str = "alarm-responder";

/// Handles one alarm notification.
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
    let trigger = alarm_trigger(payload, &app.expected())
        .and_then(|t| check_age(t.time, now, app.config.max_event_age).map(|()| t));
    let trigger = match trigger {
        Ok(trigger) => trigger,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "event rejected");
            return Ok(json!({ "rejected": rejection.to_string() }));
        }
    };
    let target = trigger.target.to_string();
    if trigger.state == AlarmState::Ok {
        tracing::info!(target = %target, alarm = %trigger.alarm, "alarm OK: recovery is left to the evaluator");
        return Ok(json!({ "target": target, "state": "OK", "left_to": "evaluator" }));
    }
    if !app.limiter.admit(&trigger.target, now) {
        tracing::info!(target = %target, alarm = %trigger.alarm, "a pass over this target already ran this minute");
        return Ok(json!({ "target": target, "skipped": "a pass over this target already ran this minute" }));
    }
    let lease = match app.wait_for_lease(RESPONDER_LEASE, context, RESPONDER_WAIT).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(held)) => {
            tracing::info!(target = %target, alarm = %trigger.alarm, reason = %held, "pass skipped");
            return Ok(json!({ "target": target, "skipped": held }));
        }
        Err(e) => return Err(diagnostic("LeaseError", &e)),
    };
    let out = admitted_pass(app, &trigger, now).await;
    app.release(lease).await;
    out
}

/// The pass over the alarmed target, if the deployment's cap admits a pass now.
async fn admitted_pass<D: Deployment>(
    app: &App<D>,
    trigger: &AlarmTrigger,
    now: DateTime<Utc>,
) -> Result<Value, Diagnostic> {
    let target = trigger.target.to_string();
    if let Err(refused) = app
        .admit_pass(now)
        .await
        .map_err(|e| diagnostic("AdmissionError", &e))?
    {
        tracing::warn!(target = %target, alarm = %trigger.alarm, reason = %refused, "pass refused");
        return Ok(json!({ "target": target, "refused": refused }));
    }
    let at = trigger
        .time
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(trigger.time);
    let only: HashSet<_> = [trigger.target.clone()].into();
    let mut options = app.options(Some(only));
    options.as_of = Some(now);
    let report = app
        .guard(ACTOR)
        .evaluate_with(at, &options)
        .await
        .map_err(|e| diagnostic("GuardError", &e))?;
    emit(&pass_documents(&app.config.metrics_namespace, ACTOR, &report));
    tracing::info!(target = %target, actions = report.outcomes.len(), "alarm pass done");
    let mut out = summary(&report);
    out["alarm"] = json!({ "name": trigger.alarm, "target": target, "state": "ALARM" });
    Ok(out)
}
