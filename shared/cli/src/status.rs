//! `dowguard status [TARGET]`: where every budget stands and what the guard holds,
//! from a read-only assessment by the same core the guard acts on.

use std::collections::HashMap;

use dowguard_domain::{GuardState, Limits, Money, Target, TargetId};
use dowguard_guard::inventory::{Inventory, SLICES, SLICES_WITHOUT_TRAIL};
use dowguard_guard::ports::{InventoryStore, Unlisted};
use dowguard_guard::{AuditRecord, assess};
use serde::Serialize;

use crate::context::Context;
use crate::describe::{ActionView, burn, level};
use crate::error::{CliError, CliResult, exit};
use crate::fanout::{Collected, to_json};
use crate::output::{Format, Table, limits, print_json, print_text};

/// How many days of audit trail `status` reads for the last action.
pub const AUDIT_DAYS: i64 = 2;

#[derive(Debug, Serialize)]
struct TargetView {
    target: TargetId,
    state: String,
    since: Option<chrono::DateTime<chrono::Utc>>,
    hold_until: Option<chrono::DateTime<chrono::Utc>>,
    limits_now: Option<Limits>,
    originals: Option<Limits>,
    last_action: Option<ActionView>,
    /// Why the guard may not change it, when it may not.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_guardable: Option<String>,
}

#[derive(Debug, Serialize)]
struct BudgetStatus {
    budget: String,
    scope: String,
    period: String,
    mode: String,
    amount: Money,
    spent: Money,
    projected: Money,
    burn_short: dowguard_domain::BurnRate,
    burn_long: dowguard_domain::BurnRate,
    demand_short: dowguard_domain::BurnRate,
    demand_long: dowguard_domain::BurnRate,
    level: String,
    targets: Vec<TargetView>,
    /// Why the figures may be incomplete: the guard holds this budget's targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gaps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct StatusView {
    at: chrono::DateTime<chrono::Utc>,
    throttled: bool,
    budgets: Vec<BudgetStatus>,
    /// Targets the guard holds that no budget covers any more.
    unbudgeted: Vec<TargetView>,
    partial_metrics: bool,
    /// What could not be read: services not listed, unreadable stored items,
    /// partial or ambiguous metrics, and what the guard's inventory cannot vouch for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gaps: Vec<String>,
    /// The guard's inventory, which its passes read instead of the account.
    inventory: InventoryView,
}

/// The inventory the guard's passes read, and whether change events reach it.
#[derive(Debug, Serialize)]
struct InventoryView {
    targets: usize,
    slices_reconciled: usize,
    slices: u8,
    oldest_slice: Option<chrono::DateTime<chrono::Utc>>,
    apis_listed: Option<chrono::DateTime<chrono::Utc>>,
    /// The trail that delivers the change events, if the last check found one.
    trail: Option<String>,
    /// What the last trail check found, or that none was made.
    trail_note: String,
}

impl InventoryView {
    fn of(inventory: &Inventory) -> Self {
        let meta = &inventory.meta.value;
        InventoryView {
            targets: inventory.entries.len(),
            slices_reconciled: meta.slices.len(),
            slices: SLICES,
            oldest_slice: meta.slices.values().min().copied(),
            apis_listed: meta.apis,
            trail: meta.trail.as_ref().and_then(|t| t.status.trail.clone()),
            trail_note: match &meta.trail {
                None => "not checked yet: the inventory function has not run".into(),
                Some(check) if check.status.trail.is_some() => format!(
                    "{} (checked {}): change events keep the inventory current, and it reconciles one slice a run, the whole account each hour",
                    check.status.note,
                    check.at.format("%Y-%m-%d %H:%M UTC")
                ),
                Some(check) => format!(
                    "{} (checked {}): no change events reach the guard, so the inventory reconciles {SLICES_WITHOUT_TRAIL} slices a run, the whole account every {} minutes, and every held target each run",
                    check.status.note,
                    check.at.format("%Y-%m-%d %H:%M UTC"),
                    5 * u32::from(SLICES / SLICES_WITHOUT_TRAIL)
                ),
            },
        }
    }

    fn render(&self) -> String {
        let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or_else(|| "never".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        };
        format!(
            "inventory: {} targets; {} of {} slices of functions reconciled, the oldest {}; API Gateway listed {}\nCloudTrail: {}\n",
            self.targets,
            self.slices_reconciled,
            self.slices,
            when(self.oldest_slice),
            when(self.apis_listed),
            self.trail_note
        )
    }
}

fn target_view(
    id: &TargetId,
    target: Option<&Target>,
    state: Option<&GuardState>,
    last: &HashMap<TargetId, ActionView>,
) -> TargetView {
    TargetView {
        target: id.clone(),
        state: state.map_or_else(|| "normal".into(), |s| s.phase.name()),
        since: state.map(|s| s.since),
        hold_until: state.and_then(|s| s.hold_until),
        limits_now: target.map(|t| t.limits.clone()),
        originals: state
            .and_then(|s| s.restore_point.as_ref())
            .map(|rp| rp.limits.clone()),
        last_action: last.get(id).cloned(),
        not_guardable: target
            .filter(|t| !t.guarded)
            .map(|t| dowguard_domain::unguarded_why(t.id.kind()).to_string()),
    }
}

/// The latest action per target in the audit trail, changes before notices.
fn last_actions(records: &[AuditRecord]) -> HashMap<TargetId, ActionView> {
    let mut best: HashMap<TargetId, &AuditRecord> = HashMap::new();
    for r in records {
        let notice = r.action.intent == dowguard_domain::Intent::Notify;
        let replace = match best.get(&r.target) {
            None => true,
            Some(prev) => {
                let prev_notice = prev.action.intent == dowguard_domain::Intent::Notify;
                (r.at, !notice) >= (prev.at, !prev_notice)
            }
        };
        if replace {
            best.insert(r.target.clone(), r);
        }
    }
    best.into_iter().map(|(k, r)| (k, ActionView::of(r))).collect()
}

/// Runs `status`; returns the exit code (1 when a shown target is throttled or stopped).
pub async fn run(ctx: &Context, filter: Option<&str>) -> CliResult<u8> {
    let view = view(ctx, filter).await?;
    match ctx.format() {
        Format::Json => print_json(&view)?,
        Format::Table => print_text(&render(&view))?,
    }
    Ok(if view.throttled { exit::FOUND } else { exit::OK })
}

/// The columns of `status` across accounts, after ACCOUNT and REGION.
pub const FAN_OUT_COLUMNS: &[&str] = &["BUDGET", "SPENT", "AMOUNT", "PROJECTED", "LEVEL", "HELD"];

/// `status` of one account and region, for the fan-out: a row per budget.
pub(crate) async fn collect(ctx: &Context, filter: Option<&str>) -> CliResult<Collected> {
    let view = view(ctx, filter).await?;
    let held = |targets: &[TargetView]| {
        let held: Vec<String> = targets
            .iter()
            .filter(|t| t.state.starts_with("throttled") || t.state == "stopped")
            .map(|t| format!("{} ({})", t.target, t.state))
            .collect();
        if held.is_empty() {
            "-".into()
        } else {
            held.join(", ")
        }
    };
    let mut rows: Vec<Vec<String>> = view
        .budgets
        .iter()
        .map(|b| {
            vec![
                b.budget.clone(),
                b.spent.to_string(),
                b.amount.to_string(),
                b.projected.to_string(),
                b.level.clone(),
                held(&b.targets),
            ]
        })
        .collect();
    if !view.unbudgeted.is_empty() {
        rows.push(vec![
            "(no budget)".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            held(&view.unbudgeted),
        ]);
    }
    if rows.is_empty() {
        rows.push(vec![
            "(no budgets)".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    Ok(Collected {
        json: to_json(&view)?,
        rows,
        found: view.throttled,
        notes: view.gaps.clone(),
    })
}

async fn view(ctx: &Context, filter: Option<&str>) -> CliResult<StatusView> {
    let filter = filter
        .map(|t| TargetId::parse(t).map_err(|e| CliError::Invalid(format!("TARGET: {e}"))))
        .transpose()?;
    let now = ctx.now();
    let account = &ctx.stack.account;
    let assessment = assess(
        &ctx.stack.store,
        account,
        account,
        &ctx.prices,
        &ctx.settings,
        now,
    )
    .await?;
    let mut records = Vec::new();
    for back in 0..AUDIT_DAYS {
        let day = (now - chrono::Duration::days(back)).date_naive();
        records.extend(ctx.stack.store.audit_of_day(day).await?);
    }
    let last = last_actions(&records);

    let mut budgets = Vec::new();
    let mut shown: Vec<TargetId> = Vec::new();
    for versioned in &assessment.budgets {
        let budget = &versioned.value;
        let mut ids: Vec<TargetId> = assessment.members(budget).iter().map(|t| t.id.clone()).collect();
        if let dowguard_domain::Scope::Target(id) = &budget.scope
            && ids.is_empty()
        {
            ids.push(id.clone());
        }
        if let Some(f) = &filter {
            if !ids.contains(f) {
                continue;
            }
            ids.retain(|id| id == f);
        }
        let Some(report) = assessment.report(budget) else {
            continue;
        };
        let targets: Vec<TargetView> = ids
            .iter()
            .map(|id| target_view(id, assessment.target(id), assessment.states.get(id), &last))
            .collect();
        shown.extend(ids);
        budgets.push(BudgetStatus {
            budget: budget.id.to_string(),
            scope: budget.scope.to_string(),
            period: budget.period.to_string(),
            mode: budget.mode.to_string(),
            amount: report.amount,
            spent: report.spent,
            projected: report.projected,
            burn_short: report.burn_short,
            burn_long: report.burn_long,
            demand_short: report.demand_short,
            demand_long: report.demand_long,
            level: level(report.level),
            targets,
            gaps: report.gaps.clone(),
        });
    }
    let mut unbudgeted: Vec<TargetView> = assessment
        .states
        .iter()
        .filter(|(id, s)| {
            !shown.contains(id)
                && (s.restore_point.is_some() || s.phase.is_tightened())
                && filter.as_ref().is_none_or(|f| f == *id)
        })
        .map(|(id, s)| target_view(id, assessment.target(id), Some(s), &last))
        .collect();
    unbudgeted.sort_by(|a, b| a.target.cmp(&b.target));
    if let Some(f) = &filter
        && budgets.is_empty()
        && unbudgeted.is_empty()
    {
        if assessment.target(f).is_none() {
            return Err(CliError::NotFound(format!(
                "{f}: no such target in this account and region, and the guard holds no state for it"
            )));
        }
        unbudgeted.push(target_view(f, assessment.target(f), None, &last));
    }
    let throttled = budgets
        .iter()
        .flat_map(|b| &b.targets)
        .chain(&unbudgeted)
        .any(|t| t.state.starts_with("throttled") || t.state == "stopped");
    let inventory = ctx.stack.store.load_inventory().await?;
    let mut gaps = assessment.gaps.lines();
    gaps.extend(inventory.gaps(now).iter().map(Unlisted::line));
    let view = StatusView {
        at: now,
        throttled,
        budgets,
        unbudgeted,
        partial_metrics: assessment.partial_metrics,
        gaps,
        inventory: InventoryView::of(&inventory),
    };
    Ok(view)
}

fn targets_table(targets: &[TargetView]) -> String {
    let mut table = Table::new(&["TARGET", "STATE", "LIMITS NOW", "ORIGINALS", "HOLD UNTIL"]);
    for t in targets {
        table.row(vec![
            t.target.to_string(),
            t.state.clone(),
            t.limits_now.as_ref().map_or_else(|| "(not found)".into(), limits),
            t.originals.as_ref().map_or_else(|| "-".into(), limits),
            t.hold_until
                .map_or_else(|| "-".into(), |h| h.format("%Y-%m-%d %H:%M UTC").to_string()),
        ]);
    }
    let mut out: String = table.render().lines().map(|l| format!("  {l}\n")).collect();
    for t in targets {
        if let Some(why) = &t.not_guardable {
            out.push_str(&format!("  {}: not guardable: {why}\n", t.target));
        }
        if let Some(a) = &t.last_action {
            out.push_str(&format!(
                "  last action on {} at {} by {}: {} ({})\n    why: {}\n",
                t.target,
                a.at.format("%Y-%m-%d %H:%M UTC"),
                a.actor,
                a.what,
                a.outcome,
                a.why
            ));
        }
    }
    out
}

fn render(view: &StatusView) -> String {
    let mut out = String::new();
    if view.budgets.is_empty() && view.unbudgeted.is_empty() {
        out.push_str("no budgets yet: add one with `dowguard budgets set`\n");
    }
    for b in &view.budgets {
        out.push_str(&format!(
            "budget {}  ({} a {} on {}, {})\n",
            b.budget, b.amount, b.period, b.scope, b.mode
        ));
        out.push_str(&format!(
            "  spent {} of {}, projected {} at period end, level {}\n",
            b.spent, b.amount, b.projected, b.level
        ));
        out.push_str(&format!(
            "  burn rate {} short / {} long (spend vs even pace); demand {} / {} (vs remaining budget)\n",
            burn(b.burn_short),
            burn(b.burn_long),
            burn(b.demand_short),
            burn(b.demand_long)
        ));
        if !b.gaps.is_empty() {
            out.push_str(
                "  figures may be incomplete, so its targets are held (never relaxed):
",
            );
            for g in &b.gaps {
                out.push_str(&format!("    - {g}\n"));
            }
        }
        out.push_str(&targets_table(&b.targets));
        out.push('\n');
    }
    if !view.unbudgeted.is_empty() {
        out.push_str("targets no budget covers\n");
        out.push_str(&targets_table(&view.unbudgeted));
        out.push('\n');
    }
    out.push_str(&view.inventory.render());
    if !view.gaps.is_empty() {
        out.push_str("could not read everything:\n");
        for g in &view.gaps {
            out.push_str(&format!("  - {g}\n"));
        }
    } else if view.partial_metrics {
        out.push_str("note: CloudWatch returned partial data; figures may be low\n");
    }
    out.push_str(if view.throttled {
        "the guard is holding at least one target (exit code 1)\n"
    } else {
        "nothing is throttled\n"
    });
    out
}
