//! dowguard's widget function: the CloudWatch dashboard's custom widgets, for
//! finance owners who read and change budgets in the AWS console.
//!
//! The console invokes the function with the signed-in person's own credentials,
//! so who may see the widgets, and who may change a budget through them, is IAM's
//! `lambda:InvokeFunction` on this function. The event carries the widget's
//! parameters and a `widgetContext` (dashboard, time range, form values, size,
//! theme) but nothing about who is signed in ("Details about custom widgets in
//! CloudWatch", Amazon CloudWatch user guide): a change made here is audited as
//! [`ACTOR`], and the template can turn writes off (`WidgetWrites=false`).
//!
//! - `{"widget": "budgets"}`: one row per budget (spent, projected, burn rates,
//!   level, the targets and what the guard holds), from the same read-only
//!   assessment as `dowguard status`, over the guard's inventory.
//! - `{"widget": "charts"}`: a chart per budget with the guard's actions marked.
//! - `{"widget": "audit"}`: the audit trail of the dashboard's time range, budget
//!   changes included.
//! - `{"action": "edit", "budget": ID}` and `{"action": "save", "budget": ID,
//!   "version": N}`: the form to change a budget and its submission, through the
//!   same validation and optimistic lock as `dowguard budgets set`
//!   (`dowguard_guard::budget_edit`).
//! - `{"action": "release", "target": ID}`: the originals of a held target put
//!   back now and the guard held off for [`RELEASE_HOLD_HOURS`] hours, through the
//!   same path as `dowguard release` (`dowguard_guard::release`).
//!
//! [`render`] turns plain data into HTML; this module reads the data and maps the
//! event.

pub mod render;

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use dowguard_adapters::AwsStack;
use dowguard_cli::describe::{ActionView, burn, level};
use dowguard_cli::output::limits;
use dowguard_domain::{Budget, BudgetId, BudgetSpec, Scope, TargetId};
use dowguard_guard::budget_edit::{self, BudgetEdit, EditError, Prepared};
use dowguard_guard::ports::{BudgetStore, Discovered, Discovery, InventoryStore, PortResult};
use dowguard_guard::release::{ReleaseError, release_target};
use dowguard_guard::{Executor, FailureKind, Versioned, assess};
use dowguard_runtime::App;
use serde::Deserialize;
use serde_json::Value;

use render::{AuditLine, BudgetLine, Endpoint, FormValues, TargetLine};

/// The actor the audit trail names for a change made from the console: the
/// widget function cannot know who clicked.
pub const ACTOR: &str = "changed from the console; caller not attributable";

/// The variable that turns the widgets' writes on (`true`) or off (`false`).
pub const WRITES_VARIABLE: &str = "DOWGUARD_WIDGET_WRITES";

/// How long a release from the console holds the guard off, in hours (the CLI's
/// default).
pub const RELEASE_HOLD_HOURS: i64 = 1;

/// The longest time range the audit widget reads, in days.
pub const MAX_AUDIT_DAYS: i64 = 31;

/// The event the console sends: the widget's parameters at the top level and the
/// console's `widgetContext`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WidgetEvent {
    /// `true` when the console asks the function to describe itself.
    #[serde(default)]
    pub describe: bool,
    /// Which widget: `budgets`, `charts` or `audit`.
    #[serde(default)]
    pub widget: Option<String>,
    /// A click: `edit` or `save`.
    #[serde(default)]
    pub action: Option<String>,
    /// The budget an action is about.
    #[serde(default)]
    pub budget: Option<String>,
    /// The target a release is about.
    #[serde(default)]
    pub target: Option<String>,
    /// The version a form was made from.
    #[serde(default)]
    pub version: Option<u64>,
    /// The console's context.
    #[serde(default, rename = "widgetContext")]
    pub context: WidgetContext,
}

/// The part of `widgetContext` the widgets read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WidgetContext {
    /// The dashboard's time range.
    #[serde(default, rename = "timeRange")]
    pub time_range: Option<TimeRange>,
    /// The values of the widget's form fields.
    #[serde(default)]
    pub forms: Forms,
}

/// The dashboard's time range, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct TimeRange {
    /// Start.
    pub start: i64,
    /// End.
    pub end: i64,
}

/// The form values: `forms.all` maps each field's name to its value.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Forms {
    /// Every field.
    #[serde(default)]
    pub all: HashMap<String, Value>,
}

/// The widget function's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WidgetSettings {
    /// Whether budgets may be changed from the console.
    pub writes: bool,
}

/// Why the widget settings could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{WRITES_VARIABLE} must be `true` or `false`, not `{0}`")]
pub struct SettingsError(String);

impl WidgetSettings {
    /// Parses the value of [`WRITES_VARIABLE`] (absent: writes off).
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for anything but `true` or `false`.
    pub fn parse(writes: Option<&str>) -> Result<Self, SettingsError> {
        match writes.map(str::trim) {
            None | Some("false") => Ok(WidgetSettings { writes: false }),
            Some("true") => Ok(WidgetSettings { writes: true }),
            Some(other) => Err(SettingsError(other.to_string())),
        }
    }
}

/// What the console shows when asked to describe the function.
pub const DESCRIPTION: &str = "## dowguard widgets\n\nParameters: `{\"widget\": \"budgets\"}`, `{\"widget\": \"charts\"}` or `{\"widget\": \"audit\"}`.";

/// Handles one event at `now`, as the function invoked as `endpoint`: the HTML
/// (or, for `describe`, the markdown) the console shows.
pub async fn handle_at(
    app: &App<AwsStack>,
    settings: WidgetSettings,
    endpoint: &str,
    event: &Value,
    now: DateTime<Utc>,
) -> Value {
    let event: WidgetEvent = match serde_json::from_value(event.clone()) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(reason = %e, "event rejected");
            return Value::String(render::failure("This widget's parameters are not understood."));
        }
    };
    if event.describe {
        return serde_json::json!({ "markdown": DESCRIPTION });
    }
    let endpoint = Endpoint(endpoint.to_string());
    // Boxed: the assessment's future is deep enough to overflow the compiler's
    // layout depth once the Lambda runtime's futures wrap it.
    let html = match Box::pin(answer(app, settings, &endpoint, &event, now)).await {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "widget failed");
            render::failure("The guard's table could not be read; try again in a minute.")
        }
    };
    Value::String(html)
}

async fn answer(
    app: &App<AwsStack>,
    settings: WidgetSettings,
    endpoint: &Endpoint,
    event: &WidgetEvent,
    now: DateTime<Utc>,
) -> Result<String, dowguard_guard::PortError> {
    match event.action.as_deref() {
        Some(action @ ("edit" | "save" | "release")) if !settings.writes => {
            tracing::warn!(action, "refused: writes are off");
            return Ok(render::done(
                "Changes from the console are turned off for this deployment (WidgetWrites=false); use `dowguard budgets set`.",
                false,
                endpoint,
            ));
        }
        Some("edit") => return edit_form(app, endpoint, event).await,
        Some("save") => return Ok(save(app, endpoint, event, now).await),
        Some("release") => return release(app, endpoint, event, now).await,
        _ => {}
    }
    let range = range_of(event, now);
    // Where the budgets stood at the end of the dashboard's time range (as
    // `dowguard status --now`): now, unless the range ends earlier.
    let as_of = range.1.min(now);
    match event.widget.as_deref() {
        Some("charts") => {
            let lines = budget_lines(app, as_of).await?;
            let audit = audit_lines(app, range).await?;
            Ok(render::charts(&lines, &audit, as_of))
        }
        Some("audit") => Ok(render::audit(&audit_lines(app, range).await?)),
        _ => {
            let lines = budget_lines(app, as_of).await?;
            Ok(render::budgets(
                &lines,
                as_of,
                settings.writes.then_some(endpoint),
            ))
        }
    }
}

/// The dashboard's time range, or the last day; at most [`MAX_AUDIT_DAYS`].
pub fn range_of(event: &WidgetEvent, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let fallback = (now - Duration::days(1), now);
    let Some(r) = event.context.time_range else {
        return fallback;
    };
    match (
        Utc.timestamp_millis_opt(r.start).single(),
        Utc.timestamp_millis_opt(r.end).single(),
    ) {
        (Some(start), Some(end)) if start < end => (start.max(end - Duration::days(MAX_AUDIT_DAYS)), end),
        _ => fallback,
    }
}

/// The inventory the guard's passes read, as the assessment's discovery: the
/// widget never lists the account.
struct FromInventory(Discovered);

impl Discovery for FromInventory {
    async fn discover(&self) -> PortResult<Discovered> {
        Ok(self.0.clone())
    }
}

async fn budget_lines(
    app: &App<AwsStack>,
    now: DateTime<Utc>,
) -> Result<Vec<BudgetLine>, dowguard_guard::PortError> {
    let store = &app.stack.store;
    let inventory = store.load_inventory().await?;
    dowguard_guard::ports::Discovery::remember(&app.stack.account, &inventory.named());
    let discovery = FromInventory(inventory.discovered(now));
    let assessment = assess(
        store,
        &discovery,
        &app.stack.account,
        &app.prices,
        &app.settings,
        now,
    )
    .await
    .map_err(|e| {
        dowguard_guard::PortError::new("assess", "budgets", FailureKind::Unavailable, e.to_string())
    })?;
    let mut lines = Vec::new();
    for versioned in &assessment.budgets {
        let b = &versioned.value;
        let report = assessment.report(b);
        let mut ids: Vec<_> = assessment.members(b).iter().map(|t| t.id.clone()).collect();
        if let Scope::Target(id) = &b.scope
            && ids.is_empty()
        {
            ids.push(id.clone());
        }
        let targets = ids
            .iter()
            .map(|id| {
                let state = assessment.states.get(id);
                let now_limits = assessment.target(id).map(|t| limits(&t.limits));
                let originals = state
                    .and_then(|s| s.restore_point.as_ref())
                    .map(|rp| limits(&rp.limits));
                TargetLine {
                    target: id.to_string(),
                    state: state.map_or_else(|| "normal".into(), |s| s.phase.name()),
                    holds: match (now_limits, originals) {
                        (Some(n), Some(o)) if state.is_some_and(|s| s.phase.is_tightened()) => {
                            format!("holds {n} (originals {o})")
                        }
                        (Some(n), _) => n,
                        (None, _) => "not in the inventory".into(),
                    },
                    releasable: state.is_some_and(|s| s.restore_point.is_some()),
                }
            })
            .collect();
        lines.push(line_of(versioned, report, targets, now));
    }
    lines.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(lines)
}

fn thresholds_text(b: &Budget) -> String {
    BudgetSpec::from(b.clone()).thresholds.join(",")
}

fn line_of(
    v: &Versioned<Budget>,
    report: Option<&dowguard_domain::BudgetReport>,
    targets: Vec<TargetLine>,
    now: DateTime<Utc>,
) -> BudgetLine {
    let b = &v.value;
    BudgetLine {
        id: b.id.to_string(),
        version: v.version,
        scope: b.scope.to_string(),
        period: b.period.to_string(),
        period_bounds: b.period.bounds(now),
        amount: b.amount,
        thresholds: thresholds_text(b),
        mode: b.mode.to_string(),
        owner: b.owner.clone(),
        spent: report.map(|r| r.spent),
        projected: report.map(|r| r.projected),
        burn: report.map_or_else(
            || ("-".into(), "-".into()),
            |r| (burn(r.burn_short), burn(r.burn_long)),
        ),
        level: report.map_or_else(|| "normal".into(), |r| level(r.level)),
        targets,
    }
}

/// The audit records and budget changes of `range`, newest first.
async fn audit_lines(
    app: &App<AwsStack>,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<AuditLine>, dowguard_guard::PortError> {
    let store = &app.stack.store;
    let mut lines = Vec::new();
    let mut day = start.date_naive();
    while day <= end.date_naive() {
        for r in store.audit_of_day(day).await? {
            if r.at < start || r.at > end {
                continue;
            }
            let v = ActionView::of(&r);
            lines.push(AuditLine {
                at: v.at,
                subject: r.target.to_string(),
                actor: v.actor,
                what: v.what,
                outcome: v.outcome,
                why: v.why,
            });
        }
        day = day.succ_opt().unwrap_or(day + chrono::Days::new(1));
    }
    for b in store.list_budgets().await?.items {
        for c in store.budget_history(&b.value.id).await? {
            if c.at < start || c.at > end {
                continue;
            }
            lines.push(AuditLine {
                at: c.at,
                subject: b.value.id.to_string(),
                actor: c.actor.clone(),
                what: c.budget.as_ref().map_or_else(
                    || "budget removed".into(),
                    |n| {
                        format!(
                            "budget set: {} a {}, {}, thresholds {}, owner {}",
                            n.amount,
                            n.period,
                            n.mode,
                            thresholds_text(n),
                            n.owner
                        )
                    },
                ),
                outcome: format!("version {}", c.version),
                why: "budget change".into(),
            });
        }
    }
    lines.sort_by_key(|l| std::cmp::Reverse(l.at));
    Ok(lines)
}

fn values_of(b: &Budget) -> FormValues {
    FormValues {
        amount: b.amount.to_decimal().normalize().to_string(),
        period: b.period.to_string(),
        thresholds: thresholds_text(b),
        mode: b.mode.to_string(),
        owner: b.owner.clone(),
    }
}

async fn edit_form(
    app: &App<AwsStack>,
    endpoint: &Endpoint,
    event: &WidgetEvent,
) -> Result<String, dowguard_guard::PortError> {
    let Some(id) = event.budget.as_deref().and_then(|b| BudgetId::parse(b).ok()) else {
        return Ok(render::done("No such budget.", false, endpoint));
    };
    match budget_edit::find(&app.stack.store, &id).await {
        Ok(Some(v)) => Ok(render::form(
            id.as_str(),
            v.version,
            &values_of(&v.value),
            &[],
            None,
            endpoint,
        )),
        Ok(None) => Ok(render::done(
            &format!("No budget {id}: it may have been removed."),
            false,
            endpoint,
        )),
        Err(EditError::Store(e)) => Err(e),
        Err(e) => Ok(render::done(&e.to_string(), false, endpoint)),
    }
}

/// The form's values as an edit of `budget` from `version`.
pub fn edit_of(budget: &str, version: u64, forms: &Forms) -> (BudgetEdit, FormValues) {
    let field = |name: &str| {
        forms.all.get(name).map(|v| match v {
            Value::String(s) => s.trim().to_string(),
            other => other.to_string(),
        })
    };
    let values = FormValues {
        amount: field("amount").unwrap_or_default(),
        period: field("period").unwrap_or_default(),
        thresholds: field("thresholds").unwrap_or_default(),
        mode: field("mode").unwrap_or_default(),
        owner: field("owner").unwrap_or_default(),
    };
    let edit = BudgetEdit {
        id: budget.to_string(),
        amount: field("amount"),
        period: field("period"),
        thresholds: field("thresholds").map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }),
        mode: field("mode"),
        owner: field("owner"),
        if_version: Some(version),
        ..BudgetEdit::default()
    };
    (edit, values)
}

async fn save(app: &App<AwsStack>, endpoint: &Endpoint, event: &WidgetEvent, now: DateTime<Utc>) -> String {
    let (Some(id), Some(version)) = (event.budget.as_deref(), event.version.filter(|v| *v > 0)) else {
        return render::done(
            "The change names no budget and version; nothing was written.",
            false,
            endpoint,
        );
    };
    let (edit, values) = edit_of(id, version, &event.context.forms);
    let store = &app.stack.store;
    let refuse = |errors: &[(String, String)], message: &str| {
        render::form(id, version, &values, errors, Some(message), endpoint)
    };
    let (budget, expected) = match budget_edit::prepare(store, &edit).await {
        Ok(Prepared::Unchanged(v)) => {
            return render::done(
                &format!("Budget {id} unchanged (version {}).", v.version),
                true,
                endpoint,
            );
        }
        Ok(Prepared::Write { budget, expected, .. }) => (budget, expected),
        Err(EditError::Invalid(e)) => {
            return refuse(
                &[(e.field.to_string(), e.reason.clone())],
                "Nothing was written: fix the field below and save again.",
            );
        }
        // The form only changes budgets: one that is not stored (removed, or never
        // there) is refused rather than created.
        Err(EditError::Removed { .. } | EditError::Missing { .. }) => {
            return render::done(
                &format!("No budget {id}: it was removed or never existed. Nothing was written."),
                false,
                endpoint,
            );
        }
        Err(e) => {
            tracing::warn!(budget = id, error = %e, "change refused");
            return render::done(&format!("{e}. Nothing was written."), false, endpoint);
        }
    };
    match budget_edit::commit(store, budget, expected, ACTOR, now).await {
        Ok(saved) => {
            tracing::info!(
                budget = id,
                version = saved.version,
                actor = ACTOR,
                "budget changed from the console"
            );
            render::done(
                &format!(
                    "Budget {id} saved (version {}). The audit trail records it as {ACTOR}.",
                    saved.version
                ),
                true,
                endpoint,
            )
        }
        Err(e) if e.kind == FailureKind::Conflict => refuse(
            &[],
            &format!(
                "Someone changed budget {id} since this form was opened (version {version}); nothing was written. Open the form again to see the current values."
            ),
        ),
        Err(e) => {
            tracing::error!(budget = id, error = %e, "budget not saved");
            render::done(
                "The budget could not be saved; nothing was written. Try again in a minute.",
                false,
                endpoint,
            )
        }
    }
}

async fn release(
    app: &App<AwsStack>,
    endpoint: &Endpoint,
    event: &WidgetEvent,
    now: DateTime<Utc>,
) -> Result<String, dowguard_guard::PortError> {
    let Some(id) = event.target.as_deref().and_then(|t| TargetId::parse(t).ok()) else {
        return Ok(render::done(
            "No such target; nothing was changed.",
            false,
            endpoint,
        ));
    };
    let store = &app.stack.store;
    let inventory = store.load_inventory().await?;
    let Some(target) = inventory.discovered(now).targets.into_iter().find(|t| t.id == id) else {
        return Ok(render::done(
            &format!("{id} is not in the guard's inventory; nothing was changed."),
            false,
            endpoint,
        ));
    };
    let state = store.load_one(&id).await?;
    let executor = Executor {
        account: &app.stack.account,
        notifier: &app.stack.notifier,
    };
    let hold = Duration::hours(RELEASE_HOLD_HOURS);
    let message = match release_target(store, &executor, &target, state.as_ref(), (now, hold), ACTOR).await {
        Ok(None) => (
            format!("dowguard never changed {id}: there is nothing to release. Nothing was changed."),
            false,
        ),
        Ok(Some(run)) if run.failed() => (
            format!(
                "{id}: a restore failed; the guard's next pass restores it again. The audit trail has the details."
            ),
            false,
        ),
        Ok(Some(run)) => (
            format!(
                "{id}: original limits restored ({}); the guard holds off tightening it until {}.",
                limits(&run.release.originals),
                run.release
                    .state
                    .hold_until
                    .unwrap_or(now + hold)
                    .format("%Y-%m-%d %H:%M UTC")
            ),
            true,
        ),
        Err(ReleaseError::State(e)) if e.kind == FailureKind::Conflict => (
            format!("The guard changed {id}'s state while it was released; nothing was changed. Try again."),
            false,
        ),
        Err(ReleaseError::State(e) | ReleaseError::Audit(e)) => return Err(e),
    };
    tracing::info!(target = %id, actor = ACTOR, ok = message.1, "release from the console");
    Ok(render::done(&message.0, message.1, endpoint))
}
