//! dowguard's evaluator: on each EventBridge schedule it runs one guard pass over
//! every budget (the inventory → metrics → decide → save states → act → audit →
//! notify), prints its figures as embedded metrics, then keeps the alarms in step
//! with the budgets and its own schedule (alarms only where a target's worst case
//! could outrun its budget between two runs: none at the default one-minute
//! schedule). It never lists the account: the targets and
//! their limits come from the inventory in the table (`dowguard_guard::inventory`,
//! kept by the inventory function), and what the inventory cannot vouch for is a
//! gap of the pass. The alarm sync is a step of this function, not a function of
//! its own: it works from the same targets and budgets, runs on the same schedule,
//! and one role with `cloudwatch:PutMetricAlarm` is one fewer to audit.
//!
//! Once an hour it also keeps the Contributor Insights rules that rank the callers
//! of the REST API stages a budget covers, where the stage's access log names
//! them and a lever can hold one (`dowguard_adapters::ranking`).
//!
//! One pass at a time: the evaluator takes a lease in the table before its pass and
//! gives it back after (a second evaluator skips), and every pass counts against
//! the deployment's cap on passes a minute (`dowguard_runtime::admission`).

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use dowguard_domain::AlarmBasis;
use dowguard_guard::alarms::sync_alarms;
use dowguard_guard::evaluate::stages_worth_ranking;
use dowguard_guard::ports::{BudgetStore, CallerRanking, Deployment};
use dowguard_runtime::App;
use dowguard_runtime::admission::EVALUATOR_LEASE;
use dowguard_runtime::app::{alarm_summary, ranking_summary, summary};
use dowguard_runtime::emf::{emit, pass_documents};
use dowguard_runtime::event::{check_age, schedule_tick};
use dowguard_runtime::telemetry::diagnostic;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// The actor named in the audit trail.
pub const ACTOR: &str = "evaluator";

/// Handles one scheduled event. A rejected event is logged and answered without
/// acting; so is a pass skipped because another holds the lease, or refused by the
/// cap; a pass that cannot run is an error for the runtime (and the on-failure
/// destination).
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
    let tick = schedule_tick(payload, &app.expected())
        .and_then(|t| check_age(t.time, now, app.config.max_event_age).map(|()| t));
    let tick = match tick {
        Ok(tick) => tick,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "event rejected");
            return Ok(json!({ "rejected": rejection.to_string() }));
        }
    };
    let lease = match app.take_lease(EVALUATOR_LEASE, context, now).await {
        Ok(Ok(lease)) => lease,
        Ok(Err(held)) => {
            tracing::info!(reason = %held, "pass skipped");
            return Ok(json!({ "skipped": held }));
        }
        Err(e) => return Err(diagnostic("LeaseError", &e)),
    };
    let at = tick
        .time
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(tick.time);
    let out = admitted_pass(app, at, now).await;
    app.release(lease).await;
    out
}

/// The pass at `at` and the alarm sync, if the deployment's cap admits a pass now.
async fn admitted_pass<D: Deployment>(
    app: &App<D>,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Value, Diagnostic> {
    if let Err(refused) = app
        .admit_pass(now)
        .await
        .map_err(|e| diagnostic("AdmissionError", &e))?
    {
        tracing::warn!(reason = %refused, "pass refused");
        return Ok(json!({ "refused": refused }));
    }
    let mut options = app.options(None);
    options.as_of = Some(now);
    let report = app
        .guard(ACTOR)
        .evaluate_with(at, &options)
        .await
        .map_err(|e| diagnostic("GuardError", &e))?;
    emit(&pass_documents(&app.config.metrics_namespace, ACTOR, &report));
    tracing::info!(
        targets = report.targets,
        actions = report.outcomes.len(),
        "pass done"
    );
    let mut out = summary(&report);
    let basis = AlarmBasis {
        prices: &app.prices,
        now: at,
        avg_duration_ms: app.settings.default_avg_duration_ms,
        schedule_minutes: app.config.schedule_minutes,
        scope: app.config.alarms,
        settings: &app.settings,
    };
    // Where no target could need an alarm (the default one-minute schedule), the
    // sync runs once an hour, only to delete alarms an earlier schedule left. The
    // callers' ranking rules are kept once an hour too.
    let hourly = at.minute() == 0;
    if basis.could_need_any() || hourly {
        let budgets = app.stack.store().list_budgets().await;
        let synced = match &budgets {
            Ok(budgets) => sync_alarms(&report.seen, app.stack.alarms(), budgets, &basis)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out["alarms"] = match synced {
            Ok(r) => alarm_summary(&r),
            Err(e) => {
                tracing::error!(error = %e, "alarm sync failed; the next pass tries again");
                json!({ "error": e })
            }
        };
        if hourly {
            let ranked = match &budgets {
                Ok(budgets) => {
                    let budgets: Vec<_> = budgets.items.iter().map(|v| v.value.clone()).collect();
                    let stages = stages_worth_ranking(&budgets, &report.seen.targets);
                    app.stack
                        .account()
                        .sync_rankings(&stages)
                        .await
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            out["ranking_rules"] = match ranked {
                Ok(r) => ranking_summary(&r),
                Err(e) => {
                    tracing::error!(error = %e, "ranking rules not synced; the next hour tries again");
                    json!({ "error": e })
                }
            };
        }
    }
    Ok(out)
}
