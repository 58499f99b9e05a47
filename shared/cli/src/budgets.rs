//! `dowguard budgets`: set, list, show, remove and trace budgets. Every write goes
//! through the domain's parser (nothing invalid is written) and the store's
//! optimistic lock (a stale update is refused).

use dowguard_domain::{Budget, BudgetError, BudgetId, BudgetSpec, Floors};
use dowguard_guard::budget_edit::{self, BudgetEdit, EditError, Prepared};
use dowguard_guard::ports::{BudgetChange, BudgetStore};
use dowguard_guard::{FailureKind, Versioned};
use serde::Serialize;

use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::fanout::{Collected, to_json};
use crate::output::{Format, Table, print_json, print_text};

/// `dowguard budgets …`
#[derive(Debug, clap::Subcommand)]
pub enum BudgetsCommand {
    /// Create a budget, or change some fields of an existing one.
    #[command(after_help = "\
Examples:
  dowguard budgets set checkout-daily --scope function:checkout --period day \\
      --amount '$240' --owner finance@example.com --mode enforce
  dowguard budgets set shop-monthly --scope rest-stage:a1b2c3d4e5/prod --period month \\
      --amount 1,500 --owner shop-team --thresholds 1,2,6,14.4 --floor-rate 10
  dowguard budgets set team-shop --scope tag:team=shop --period day --amount 300 --owner shop-team
  dowguard budgets set checkout-daily --amount 300 --if-version 3   # refused if someone changed it since v3

Scopes: account, tag:KEY=VALUE, function:NAME (or a Lambda ARN),
rest-stage:API_ID/STAGE, http-stage:API_ID/STAGE, usage-plan:PLAN_ID.")]
    Set(SetArgs),
    /// List every budget.
    List,
    /// Show one budget in full.
    Show {
        /// The budget's name.
        id: String,
    },
    /// Remove a budget.
    #[command(after_help = "Example:\n  dowguard budgets rm checkout-daily --if-version 4")]
    Rm {
        /// The budget's name.
        id: String,
        /// Refuse unless the budget is still at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Every change made to a budget: when, by whom, what.
    History {
        /// The budget's name.
        id: String,
    },
    /// Suggest amounts and ladders from the account's recorded traffic (writes nothing).
    Suggest(crate::suggest::SuggestArgs),
}

/// `dowguard budgets set`
#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The budget's name: lowercase letters, digits, - and _.
    pub id: String,
    /// What it covers: account, tag:KEY=VALUE or a target.
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
    /// day or month (UTC).
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
    /// Dollars for the period, e.g. 240, $1,200.50.
    #[arg(long, value_name = "DOLLARS")]
    pub amount: Option<String>,
    /// Burn-rate multiples, comma-separated: a watch level then 1-5 throttle levels.
    #[arg(long, value_delimiter = ',', value_name = "X,Y,…")]
    pub thresholds: Option<Vec<String>>,
    /// enforce (change limits) or dry-run (only say what it would do).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Who owns the budget, e.g. finance@example.com.
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// SNS topic ARN for notices; `none` removes it.
    #[arg(long, value_name = "ARN")]
    pub topic: Option<String>,
    /// The least reserved concurrency the guard may set on covered functions.
    #[arg(long, value_name = "N")]
    pub floor_concurrency: Option<u32>,
    /// The least rate (requests a second) the guard may set on stages and plans.
    #[arg(long, value_name = "N")]
    pub floor_rate: Option<u32>,
    /// The least burst the guard may set on stages and plans.
    #[arg(long, value_name = "N")]
    pub floor_burst: Option<u32>,
    /// true: watch and report only, never throttle.
    #[arg(long, value_name = "BOOL")]
    pub protected: Option<bool>,
    /// Refuse the change unless the budget is at this version (0: must not exist yet).
    #[arg(long, value_name = "N")]
    pub if_version: Option<u64>,
}

/// A budget as the CLI prints it in JSON.
#[derive(Debug, Serialize)]
struct BudgetView {
    version: u64,
    #[serde(flatten)]
    spec: BudgetSpec,
}

fn view(v: &Versioned<Budget>) -> BudgetView {
    BudgetView {
        version: v.version,
        spec: BudgetSpec::from(v.value.clone()),
    }
}

/// Runs a budgets subcommand.
pub async fn run(ctx: &Context, command: &BudgetsCommand) -> CliResult<()> {
    match command {
        BudgetsCommand::Set(args) => set(ctx, args).await,
        BudgetsCommand::List => list(ctx).await,
        BudgetsCommand::Show { id } => show(ctx, id).await,
        BudgetsCommand::Rm { id, if_version } => rm(ctx, id, *if_version).await,
        BudgetsCommand::History { id } => history(ctx, id).await,
        BudgetsCommand::Suggest(args) => crate::suggest::run(ctx, args).await,
    }
}

fn flag_of(field: &str) -> &'static str {
    match field {
        "id" => "the budget name",
        "scope" => "--scope",
        "period" => "--period",
        "amount" => "--amount",
        "thresholds" => "--thresholds",
        "mode" => "--mode",
        "owner" => "--owner",
        "topic" => "--topic",
        "floors" => "--floor-concurrency / --floor-rate / --floor-burst",
        _ => "the budget",
    }
}

fn invalid(e: &BudgetError) -> CliError {
    CliError::Invalid(format!(
        "invalid budget: {e}. Fix {} and run again; nothing was written",
        flag_of(e.field)
    ))
}

fn parse_id(id: &str) -> CliResult<BudgetId> {
    BudgetId::parse(id).map_err(|e| invalid(&e))
}

fn edit_error(e: EditError) -> CliError {
    match e {
        EditError::Invalid(e) => invalid(&e),
        EditError::Missing { field, example } => CliError::Invalid(format!(
            "invalid budget: budget field `{field}`: a new budget needs one. Add --{field} ({example}); nothing was written"
        )),
        e @ EditError::Unreadable { .. } => CliError::Invalid(e.to_string()),
        EditError::Exists { id, version } => CliError::Conflict(format!(
            "budget {id} already exists (version {version}); nothing was written. Drop --if-version 0 to change it"
        )),
        e @ EditError::Removed { .. } => CliError::Conflict(format!("{e}. Nothing was written")),
        EditError::Store(e) => CliError::Port(e),
    }
}

async fn find(ctx: &Context, id: &BudgetId) -> CliResult<Option<Versioned<Budget>>> {
    budget_edit::find(&ctx.stack.store, id).await.map_err(edit_error)
}

impl SetArgs {
    fn edit(&self) -> BudgetEdit {
        BudgetEdit {
            id: self.id.clone(),
            scope: self.scope.clone(),
            period: self.period.clone(),
            amount: self.amount.clone(),
            thresholds: self.thresholds.clone(),
            mode: self.mode.clone(),
            owner: self.owner.clone(),
            topic: self.topic.clone(),
            floor_concurrency: self.floor_concurrency,
            floor_rate: self.floor_rate,
            floor_burst: self.floor_burst,
            protected: self.protected,
            if_version: self.if_version,
        }
    }
}

/// What `budgets set` did.
#[derive(Debug)]
pub(crate) struct Saved {
    /// `created`, `updated` or `unchanged`.
    pub verb: &'static str,
    /// The budget as stored now.
    pub budget: Versioned<Budget>,
    /// Who wrote it (`cli:` and the caller's ARN), when it was written.
    pub actor: Option<String>,
}

async fn set(ctx: &Context, args: &SetArgs) -> CliResult<()> {
    let saved = save(ctx, args).await?;
    let id = &saved.budget.value.id;
    let version = saved.budget.version;
    match (ctx.format(), saved.verb) {
        (Format::Table, "unchanged") => print_text(&format!("budget {id} unchanged (version {version})\n")),
        (Format::Json, _) => print_json(&view(&saved.budget)),
        (Format::Table, verb) => print_text(&format!(
            "budget {id} {verb} (version {version})\n{}",
            details(&saved.budget)
        )),
    }
}

/// The columns of `budgets set` across accounts, after ACCOUNT and REGION.
pub const SET_COLUMNS: &[&str] = &["BUDGET", "RESULT", "VERSION", "WRITTEN BY"];

/// `budgets set` in one account and region, for the fan-out.
pub(crate) async fn collect_set(ctx: &Context, args: &SetArgs) -> CliResult<Collected> {
    let saved = save(ctx, args).await?;
    let actor = saved.actor.clone().unwrap_or_else(|| "-".into());
    Ok(Collected {
        json: to_json(&view(&saved.budget))?,
        rows: vec![vec![
            saved.budget.value.id.to_string(),
            saved.verb.to_string(),
            saved.budget.version.to_string(),
            actor,
        ]],
        found: false,
        notes: Vec::new(),
    })
}

/// Creates or changes a budget through the one edit path the console shares
/// (`dowguard_guard::budget_edit`); writes nothing when nothing changes.
async fn save(ctx: &Context, args: &SetArgs) -> CliResult<Saved> {
    parse_id(&args.id)?;
    let (budget, expected, existed) = match budget_edit::prepare(&ctx.stack.store, &args.edit())
        .await
        .map_err(edit_error)?
    {
        Prepared::Unchanged(v) => {
            return Ok(Saved {
                verb: "unchanged",
                budget: v,
                actor: None,
            });
        }
        Prepared::Write {
            budget,
            expected,
            existed,
        } => (budget, expected, existed),
    };
    let caller = ctx.caller().await;
    let saved = budget_edit::commit(&ctx.stack.store, budget, expected, &caller.actor, ctx.now())
        .await
        .map_err(|e| match e.kind {
            FailureKind::Conflict => CliError::Conflict(format!("{}. Nothing was written", e.message)),
            _ => CliError::Port(e),
        })?;
    Ok(Saved {
        verb: if existed { "updated" } else { "created" },
        budget: saved,
        actor: Some(caller.actor),
    })
}

/// The columns of `budgets list` across accounts, after ACCOUNT and REGION.
pub const FAN_OUT_COLUMNS: &[&str] = &["BUDGET", "SCOPE", "PERIOD", "AMOUNT", "MODE", "OWNER", "VERSION"];

fn list_row(b: &Versioned<Budget>) -> Vec<String> {
    let v = &b.value;
    let mode = if v.protected {
        format!("{} (protected)", v.mode)
    } else {
        v.mode.to_string()
    };
    vec![
        v.id.to_string(),
        v.scope.to_string(),
        v.period.to_string(),
        v.amount.to_string(),
        mode,
        v.owner.clone(),
        b.version.to_string(),
    ]
}

/// Every budget, sorted by name, and a line for each stored item that cannot be read.
async fn listed(ctx: &Context) -> CliResult<(Vec<Versioned<Budget>>, Vec<String>)> {
    let listed = ctx.stack.store.list_budgets().await?;
    let unreadable = listed.unreadable.iter().map(|i| i.line()).collect();
    let mut budgets = listed.items;
    budgets.sort_by(|a, b| a.value.id.cmp(&b.value.id));
    Ok((budgets, unreadable))
}

/// `budgets list` of one account and region, for the fan-out.
pub(crate) async fn collect_list(ctx: &Context) -> CliResult<Collected> {
    let (budgets, unreadable) = listed(ctx).await?;
    let mut rows: Vec<Vec<String>> = budgets.iter().map(list_row).collect();
    if rows.is_empty() {
        rows.push(vec!["(no budgets)".into()]);
    }
    Ok(Collected {
        json: to_json(&budgets.iter().map(view).collect::<Vec<_>>())?,
        rows,
        found: false,
        notes: unreadable,
    })
}

async fn list(ctx: &Context) -> CliResult<()> {
    let (budgets, unreadable) = listed(ctx).await?;
    for line in &unreadable {
        eprintln!("warning: {line}");
    }
    if ctx.format() == Format::Json {
        return print_json(&budgets.iter().map(view).collect::<Vec<_>>());
    }
    if budgets.is_empty() {
        return print_text("no budgets yet: add one with `dowguard budgets set`\n");
    }
    let mut table = Table::new(&["BUDGET", "SCOPE", "PERIOD", "AMOUNT", "MODE", "OWNER", "VERSION"]);
    for b in &budgets {
        table.row(list_row(b));
    }
    print_text(&table.render())
}

fn thresholds(b: &Budget) -> String {
    let t = &b.thresholds;
    let levels: Vec<String> = t.levels().iter().map(ToString::to_string).collect();
    format!("watch at {}, throttle at {}", t.watch(), levels.join(" / "))
}

fn floors_text(f: Floors) -> String {
    format!(
        "concurrency {}, rate {} rps, burst {}",
        f.concurrency, f.rate, f.burst
    )
}

fn details(v: &Versioned<Budget>) -> String {
    let b = &v.value;
    let f = b.floors;
    let rows = [
        ("budget", format!("{} (version {})", b.id, v.version)),
        ("scope", b.scope.to_string()),
        ("period", b.period.to_string()),
        ("amount", b.amount.to_string()),
        ("thresholds", thresholds(b)),
        ("mode", b.mode.to_string()),
        ("owner", b.owner.clone()),
        ("topic", b.topic.clone().unwrap_or_else(|| "-".into())),
        ("floors", floors_text(f)),
        ("protected", if b.protected { "yes" } else { "no" }.into()),
    ];
    rows.iter().map(|(k, v)| format!("  {k:<11} {v}\n")).collect()
}

async fn show(ctx: &Context, id: &str) -> CliResult<()> {
    let id = parse_id(id)?;
    let budget = find(ctx, &id).await?.ok_or_else(|| {
        CliError::NotFound(format!("no budget {id}; `dowguard budgets list` shows them all"))
    })?;
    match ctx.format() {
        Format::Json => print_json(&view(&budget)),
        Format::Table => print_text(&details(&budget)),
    }
}

async fn rm(ctx: &Context, id: &str, if_version: Option<u64>) -> CliResult<()> {
    let id = parse_id(id)?;
    let budget = find(ctx, &id)
        .await?
        .ok_or_else(|| CliError::NotFound(format!("no budget {id}")))?;
    let expected = if_version.unwrap_or(budget.version);
    let caller = ctx.caller().await;
    ctx.stack
        .store
        .delete_budget(&id, expected, &caller.actor, ctx.now())
        .await
        .map_err(|e| match e.kind {
            FailureKind::Conflict => CliError::Conflict(format!("{}. Nothing was removed", e.message)),
            _ => CliError::Port(e),
        })?;
    print_text(&format!("budget {id} removed (was version {})\n", budget.version))
}

/// What one change did, compared with the one before.
fn describe_change(before: Option<&Budget>, after: Option<&Budget>) -> String {
    let (Some(a), Some(b)) = (before, after) else {
        return match (before, after) {
            (_, None) => "removed".into(),
            (None, Some(b)) => format!(
                "created: {} {} a {} on {}, {}",
                b.amount, b.mode, b.period, b.scope, b.owner
            ),
            _ => String::new(),
        };
    };
    let (sa, sb) = (BudgetSpec::from(a.clone()), BudgetSpec::from(b.clone()));
    let mut parts = Vec::new();
    let mut diff = |name: &str, x: String, y: String| {
        if x != y {
            parts.push(format!("{name} {x} -> {y}"));
        }
    };
    diff("scope", sa.scope, sb.scope);
    diff("period", sa.period, sb.period);
    diff("amount", a.amount.to_string(), b.amount.to_string());
    diff("thresholds", thresholds(a), thresholds(b));
    diff("mode", sa.mode, sb.mode);
    diff("owner", sa.owner, sb.owner);
    diff(
        "topic",
        sa.topic.unwrap_or_else(|| "-".into()),
        sb.topic.unwrap_or_else(|| "-".into()),
    );
    diff("floors", floors_text(sa.floors), floors_text(sb.floors));
    diff("protected", sa.protected.to_string(), sb.protected.to_string());
    if parts.is_empty() {
        "no change".into()
    } else {
        parts.join("; ")
    }
}

#[derive(Debug, Serialize)]
struct ChangeView<'a> {
    #[serde(flatten)]
    change: &'a BudgetChange,
    summary: String,
}

async fn history(ctx: &Context, id: &str) -> CliResult<()> {
    let id = parse_id(id)?;
    let changes = ctx.stack.store.budget_history(&id).await?;
    if changes.is_empty() {
        return Err(CliError::NotFound(format!(
            "budget {id} has no history: it never existed"
        )));
    }
    let summaries: Vec<String> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let before = i.checked_sub(1).and_then(|p| changes[p].budget.as_ref());
            describe_change(before, c.budget.as_ref())
        })
        .collect();
    if ctx.format() == Format::Json {
        let views: Vec<ChangeView<'_>> = changes
            .iter()
            .zip(summaries)
            .map(|(change, summary)| ChangeView { change, summary })
            .collect();
        return print_json(&views);
    }
    let mut table = Table::new(&["VERSION", "AT", "BY", "CHANGE"]);
    for (c, summary) in changes.iter().zip(summaries) {
        table.row(vec![
            c.version.to_string(),
            c.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            c.actor.clone(),
            summary,
        ]);
    }
    print_text(&table.render())
}
