//! dowguard's evaluator: on each EventBridge schedule it runs one guard pass over
//! every budget (discover → metrics → decide → save states → act → audit →
//! notify), prints its figures as embedded metrics, then keeps the per-target
//! alarms in step with the budgets. The alarm sync is a step of this function, not
//! a function of its own: it needs the same discovery and budgets, runs on the same
//! schedule, and one role with `cloudwatch:PutMetricAlarm` is one fewer to audit.

use chrono::{DurationRound, TimeDelta};
use dowguard_guard::ports::BudgetStore;
use dowguard_runtime::App;
use dowguard_runtime::app::{alarm_summary, summary};
use dowguard_runtime::emf::{emit, pass_documents};
use dowguard_runtime::event::{check_age, schedule_tick};
use dowguard_runtime::telemetry::diagnostic;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// The actor named in the audit trail.
pub const ACTOR: &str = "evaluator";

/// Handles one scheduled event. A rejected event is logged and answered without
/// acting; a pass that cannot run is an error for the runtime (and the
/// on-failure destination).
pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let now = chrono::Utc::now();
    let tick = schedule_tick(&event.payload, &app.expected())
        .and_then(|t| check_age(t.time, now, app.config.max_event_age).map(|()| t));
    let tick = match tick {
        Ok(tick) => tick,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "event rejected");
            return Ok(json!({ "rejected": rejection.to_string() }));
        }
    };
    let at = tick
        .time
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or(tick.time);
    let report = app
        .guard(ACTOR)
        .evaluate_with(at, &app.options(None))
        .await
        .map_err(|e| diagnostic("GuardError", &e))?;
    emit(&pass_documents(&app.config.metrics_namespace, ACTOR, &report));
    tracing::info!(
        targets = report.targets,
        actions = report.outcomes.len(),
        "pass done"
    );
    let mut out = summary(&report);
    if app.config.alarm_sync {
        let synced = match app.stack.store.list_budgets().await {
            Ok(budgets) => {
                let avg = app.settings.default_avg_duration_ms;
                app.alarms
                    .sync(&app.stack.account, &budgets, &app.prices, at, avg)
                    .await
            }
            Err(e) => Err(e),
        };
        out["alarms"] = match synced {
            Ok(r) => alarm_summary(&r),
            Err(e) => {
                tracing::error!(error = %e, "alarm sync failed; the next pass tries again");
                json!({ "error": e.to_string() })
            }
        };
    }
    Ok(out)
}
