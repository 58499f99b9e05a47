//! `dowguard audit`: scan every function, REST and HTTP API stage and usage plan,
//! and rank their Denial-of-Wallet exposure with the domain's pure pricing
//! ([`dowguard_domain::exposure`]). The scan is here; the money is in the core.
//!
//! Two scans feed one report: [`run`] reads the account (live), [`run_template`]
//! reads a CloudFormation or SAM template before it is deployed, offline
//! ([`crate::template`]). Each produces a [`Scanned`]: the entry points, the
//! account concurrency and where it came from, and what could not be read or
//! resolved. Ranking, the table, JSON and `--fail-above` are shared.

use std::collections::HashMap;
use std::path::PathBuf;

use dowguard_adapters::apigateway::Methods;
use dowguard_domain::exposure::{
    self, Bound, DEFAULT_BUDGET_DOLLARS, EntryPoint, Exposure, ExposureContext, Finding,
};
use dowguard_domain::source::StageAccess;
use dowguard_domain::{ApiId, Budget, Money, PriceBook, Prices, Target, TargetId, TargetKind};
use dowguard_guard::ports::{BudgetStore, Discovery, LambdaControl, Unlisted, UnreadableItem};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::context::{Context, FALLBACK_REGION, Global};
use crate::error::{CliError, CliResult, exit};
use crate::fanout::{Collected, to_json};
use crate::output::{Format, Table, limits, print_json, print_text};

/// The account concurrency assumed when Lambda's GetAccountSettings does not answer,
/// and for a template: Lambda's default quota of concurrent executions per Region
/// ("Lambda quotas").
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1_000;

/// `dowguard audit`
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dowguard audit
  dowguard audit --output json > exposure.json
  dowguard audit --fail-above '$50/h'        # in CI: exit 1 if any entry point could cost more
  dowguard audit --default-budget 250        # recommend limits for a $250/day budget where none is set
  dowguard audit --template template.yaml --fail-above '$50/h'   # before deploying: offline, no credentials
  dowguard audit --template template.yaml --parameter Stage=prod --account-concurrency 3000")]
pub struct AuditArgs {
    /// Exit with code 1 if any entry point's worst case is above this many dollars an hour.
    #[arg(long, value_name = "$X/h", value_parser = parse_per_hour)]
    pub fail_above: Option<Money>,
    /// The daily budget assumed for recommendations where no budget covers a target.
    #[arg(long, value_name = "DOLLARS", default_value_t = Money::from_dollars(DEFAULT_BUDGET_DOLLARS), value_parser = parse_money)]
    pub default_budget: Money,
    /// Audit this CloudFormation or SAM template (YAML or JSON) before it is deployed,
    /// instead of the account: offline, no credentials, no table.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// With --template: the account's concurrency limit [default: 1000, Lambda's default quota].
    #[arg(long, value_name = "N", requires = "template")]
    pub account_concurrency: Option<u32>,
    /// With --template: a template parameter's value (else its Default); repeatable.
    #[arg(long = "parameter", value_name = "KEY=VALUE", requires = "template", value_parser = parse_parameter)]
    pub parameters: Vec<(String, String)>,
}

fn parse_parameter(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE, e.g. --parameter Stage=prod")),
    }
}

fn parse_money(text: &str) -> Result<Money, String> {
    Money::parse(text).map_err(|e| e.to_string())
}

fn parse_per_hour(text: &str) -> Result<Money, String> {
    let trimmed = text.trim();
    let body = ["/h", "/hour", "/hr"]
        .iter()
        .find_map(|s| trimmed.strip_suffix(s))
        .unwrap_or(trimmed);
    Money::parse(body).map_err(|e| format!("{e}; write dollars an hour like 50, $50 or $50/h"))
}

#[derive(Debug, Serialize)]
struct AuditView {
    /// The template audited (`--template`); absent for the live account.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<String>,
    region: String,
    account_concurrency: u32,
    account_concurrency_source: &'static str,
    entry_points: Vec<Ranked>,
    total_worst_per_hour: Money,
    fail_above: Option<Money>,
    above: usize,
    /// What could not be read; the entry points there are missing from the ranking.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unread: Vec<String>,
    /// What a template left undecided; the worst case was taken for each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unresolved: Vec<String>,
}

/// What a scan found: the entry points and everything the ranking needs of the
/// account, whichever way they were read.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// Every entry point.
    pub entries: Vec<EntryPoint>,
    /// The account's concurrency limit.
    pub account_concurrency: u32,
    /// Where that limit came from.
    pub account_concurrency_source: &'static str,
    /// The budgets recommendations derive from.
    pub budgets: Vec<Budget>,
    /// What could not be read (live).
    pub unread: Vec<String>,
    /// What could not be resolved (template).
    pub unresolved: Vec<String>,
    /// The template read, if any.
    pub template: Option<String>,
}

/// `dowguard audit --template FILE`: reads the template and ranks its entry points,
/// offline; returns the exit code (1 when something is above `--fail-above`).
///
/// # Errors
///
/// [`CliError::Invalid`] (exit 2) for a file that cannot be read, is not YAML or
/// JSON, has no `Resources`, or has a property of the wrong type; for a region the
/// price book does not know.
pub fn run_template(global: &Global, args: &AuditArgs) -> CliResult<u8> {
    let Some(path) = &args.template else {
        return Err(CliError::Invalid("--template: no file given".into()));
    };
    let region = global
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| FALLBACK_REGION.to_string());
    let prices = PriceBook::bundled()?.prices(&region, false).map_err(|e| {
        CliError::Invalid(format!(
            "--region {region}: the price book has no prices for it ({e})"
        ))
    })?;
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Invalid(format!("--template {file}: cannot read it: {e}")))?;
    let options = crate::template::Options {
        region,
        parameters: args.parameters.clone(),
    };
    let scan = crate::template::read(&file, &text, &options).map_err(|e| CliError::Invalid(e.to_string()))?;
    let (account_concurrency, source) = match args.account_concurrency {
        Some(n) => (n, "--account-concurrency"),
        None => (
            DEFAULT_ACCOUNT_CONCURRENCY,
            "Lambda's default quota, assumed (set --account-concurrency)",
        ),
    };
    let scanned = Scanned {
        entries: scan.entries,
        account_concurrency,
        account_concurrency_source: source,
        budgets: Vec::new(),
        unread: Vec::new(),
        unresolved: scan.unresolved,
        template: Some(file),
    };
    let now = global.now.unwrap_or_else(chrono::Utc::now);
    report(scanned, args, &prices, now, global.output)
}

#[derive(Debug, Serialize)]
struct Ranked {
    rank: usize,
    #[serde(flatten)]
    exposure: Exposure,
}

/// Runs the scan of the account; returns the exit code (1 when something is above
/// `--fail-above`).
pub async fn run(ctx: &Context, args: &AuditArgs) -> CliResult<u8> {
    let scanned = scan_account(ctx).await?;
    report(scanned, args, &ctx.prices, ctx.now(), ctx.format())
}

/// The columns of `audit` across accounts, after ACCOUNT and REGION.
pub const FAN_OUT_COLUMNS: &[&str] = &[
    "RANK",
    "ENTRY POINT",
    "CAPACITY",
    "WORST CASE /H",
    "WITH LIMITS /H",
];

/// `audit` of one account and region, for the fan-out: a row per entry point.
pub(crate) async fn collect(ctx: &Context, args: &AuditArgs) -> CliResult<Collected> {
    let scanned = scan_account(ctx).await?;
    let view = view(scanned, args, &ctx.prices, ctx.now());
    let mut rows: Vec<Vec<String>> = view
        .entry_points
        .iter()
        .map(|r| {
            vec![
                r.rank.to_string(),
                r.exposure.target.to_string(),
                capacity(&r.exposure),
                r.exposure.worst_per_hour.to_string(),
                r.exposure.recommended_per_hour.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        rows.push(vec!["-".into(), "(no entry points)".into()]);
    }
    Ok(Collected {
        json: to_json(&view)?,
        rows,
        found: view.above > 0,
        notes: view.unread.clone(),
    })
}

/// Reads the account's entry points, limits and budgets.
async fn scan_account(ctx: &Context) -> CliResult<Scanned> {
    let account = &ctx.stack.account;
    let progress = if ctx.format() == Format::Table {
        ProgressBar::with_draw_target(Some(4), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} scanning [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| CliError::Output(e.to_string()))?
            .progress_chars("=> "),
    );
    // Each service on its own: one that cannot be read is a line of the report,
    // never the end of the audit.
    let mut unread: Vec<String> = Vec::new();
    progress.set_message("Lambda functions, REST and HTTP APIs, usage plans");
    let discovered = account.discover().await?;
    unread.extend(discovered.unlisted.iter().map(Unlisted::line));
    let catalog = account.catalog();
    progress.inc(2);
    progress.set_message("function timeouts");
    let timeouts = if discovered
        .unlisted
        .iter()
        .any(|u| u.kinds.contains(&TargetKind::Function))
    {
        HashMap::new()
    } else {
        account.lambda.timeouts().await.unwrap_or_else(|e| {
            unread.push(format!("function timeouts could not be read: {e}"));
            HashMap::new()
        })
    };
    progress.inc(1);
    let targets = discovered.targets;
    let mut apis: Vec<(bool, ApiId)> = targets
        .iter()
        .filter_map(|t| match &t.id {
            TargetId::RestStage(api, _) => Some((true, api.clone())),
            TargetId::HttpStage(api, _) => Some((false, api.clone())),
            _ => None,
        })
        .collect();
    apis.sort();
    apis.dedup();
    progress.inc_length(apis.len() as u64);
    let mut open: HashMap<ApiId, Vec<String>> = HashMap::new();
    let mut keyed: HashMap<ApiId, bool> = HashMap::new();
    // Per stage: its access logs and web ACL (what the targeted levels need).
    let mut access: HashMap<TargetId, StageAccess> = HashMap::new();
    for (is_rest, api) in apis {
        progress.set_message(format!("methods and stages of {api}"));
        let methods = if is_rest {
            account.rest.methods(&api).await
        } else {
            account.http.open_routes(&api).await.map(|open| Methods {
                open,
                key_required: false,
            })
        };
        match methods {
            Ok(methods) => {
                keyed.insert(api.clone(), methods.key_required);
                open.insert(api.clone(), methods.open);
            }
            Err(e) => unread.push(format!("the methods of API {api} could not be read: {e}")),
        }
        let stages = if is_rest {
            account.rest.stage_access(&api).await.map(|stages| {
                stages
                    .into_iter()
                    .map(|(stage, logs, acl)| (TargetId::RestStage(api.clone(), stage), logs, Some(acl)))
                    .collect::<Vec<_>>()
            })
        } else {
            account.http.stage_access(&api).await.map(|stages| {
                stages
                    .into_iter()
                    .map(|(stage, logs)| (TargetId::HttpStage(api.clone(), stage), logs, None))
                    .collect()
            })
        };
        match stages {
            Ok(stages) => {
                for (id, access_logs, web_acl) in stages {
                    access.insert(
                        id,
                        StageAccess {
                            access_logs,
                            api_keys: false,
                            web_acl,
                        },
                    );
                }
            }
            Err(e) => unread.push(format!("the stages of API {api} could not be read: {e}")),
        }
        progress.inc(1);
    }
    let functions: Vec<&dowguard_domain::FunctionName> = targets
        .iter()
        .filter_map(|t| match &t.id {
            TargetId::Function(name) => Some(name),
            _ => None,
        })
        .collect();
    progress.inc_length(functions.len() as u64);
    let mut open_urls: HashMap<dowguard_domain::FunctionName, bool> = HashMap::new();
    for name in functions {
        progress.set_message(format!("function URL of {name}"));
        match account.lambda.open_url(name).await {
            Ok(open) => {
                open_urls.insert(name.clone(), open);
            }
            Err(e) => unread.push(format!("the function URL of {name} could not be read: {e}")),
        }
        progress.inc(1);
    }
    progress.set_message("account limits and budgets");
    let (account_concurrency, source) = match account.account_concurrency().await {
        Ok(a) => (a.limit, "GetAccountSettings"),
        Err(_) => (
            DEFAULT_ACCOUNT_CONCURRENCY,
            "assumed (GetAccountSettings did not answer)",
        ),
    };
    let budgets: Vec<Budget> = match ctx.stack.store.list_budgets().await {
        Ok(listed) => {
            unread.extend(listed.unreadable.iter().map(UnreadableItem::line));
            listed.items.into_iter().map(|v| v.value).collect()
        }
        Err(e) => {
            progress.suspend(|| {
                eprintln!("note: budgets not read ({e}); recommendations use the default budget")
            });
            Vec::new()
        }
    };
    progress.inc(1);
    progress.finish_and_clear();

    let plan_limits: HashMap<&TargetId, &Target> = targets
        .iter()
        .filter(|t| t.id.kind() == TargetKind::UsagePlan)
        .map(|t| (&t.id, t))
        .collect();
    let mut entries: Vec<EntryPoint> = Vec::new();
    for t in &targets {
        let open_url = match &t.id {
            TargetId::Function(name) => open_urls.get(name).copied().unwrap_or(false),
            _ => false,
        };
        let (timeout_s, open_methods, plans) = match &t.id {
            TargetId::Function(name) => (timeouts.get(name).copied(), vec![], vec![]),
            TargetId::RestStage(api, stage) => {
                let plans = catalog
                    .plan_stages
                    .iter()
                    .filter(|(_, stages)| stages.iter().any(|(a, s)| a == api && s == stage))
                    .filter_map(|(plan, _)| plan_limits.get(&TargetId::UsagePlan(plan.clone())))
                    .filter_map(|p| match &p.limits {
                        dowguard_domain::Limits::UsagePlan { throttle, quota } => Some((*throttle, *quota)),
                        _ => None,
                    })
                    .collect();
                (None, open.get(api).cloned().unwrap_or_default(), plans)
            }
            TargetId::HttpStage(api, _) => (None, open.get(api).cloned().unwrap_or_default(), vec![]),
            TargetId::UsagePlan(_) => (None, vec![], vec![]),
        };
        // Keys name a REST stage's callers when a method requires one and a usage
        // plan covers the stage (its keys are the plan's).
        let stage_access = access.get(&t.id).map(|a| StageAccess {
            api_keys: match &t.id {
                TargetId::RestStage(api, _) => !plans.is_empty() && keyed.get(api).copied().unwrap_or(false),
                _ => false,
            },
            ..*a
        });
        entries.push(EntryPoint {
            target: t.clone(),
            timeout_s,
            open_methods,
            plans,
            open_url,
            access: stage_access,
        });
    }
    Ok(Scanned {
        entries,
        account_concurrency,
        account_concurrency_source: source,
        budgets,
        unread,
        unresolved: Vec::new(),
        template: None,
    })
}

/// Ranks what a scan found and prints it; the exit code says whether anything is
/// above `--fail-above`.
fn report(
    scanned: Scanned,
    args: &AuditArgs,
    prices: &Prices,
    now: chrono::DateTime<chrono::Utc>,
    format: Format,
) -> CliResult<u8> {
    let view = view(scanned, args, prices, now);
    match format {
        Format::Json => print_json(&view)?,
        Format::Table => print_text(&render(&view, args.default_budget))?,
    }
    Ok(if view.above > 0 { exit::FOUND } else { exit::OK })
}

fn view(
    scanned: Scanned,
    args: &AuditArgs,
    prices: &Prices,
    now: chrono::DateTime<chrono::Utc>,
) -> AuditView {
    let ranked = exposure::rank(
        &scanned.entries,
        &ExposureContext {
            budgets: &scanned.budgets,
            prices,
            now,
            account_concurrency: scanned.account_concurrency,
            default_budget: args.default_budget,
        },
    );
    let above = args
        .fail_above
        .map_or(0, |bar| ranked.iter().filter(|e| e.worst_per_hour > bar).count());
    AuditView {
        template: scanned.template,
        region: prices.region.clone(),
        account_concurrency: scanned.account_concurrency,
        account_concurrency_source: scanned.account_concurrency_source,
        total_worst_per_hour: exposure::total_per_hour(&ranked),
        entry_points: ranked
            .into_iter()
            .enumerate()
            .map(|(i, exposure)| Ranked {
                rank: i + 1,
                exposure,
            })
            .collect(),
        fail_above: args.fail_above,
        above,
        unread: scanned.unread,
        unresolved: scanned.unresolved,
    }
}

fn capacity(e: &Exposure) -> String {
    let unit = match e.kind {
        dowguard_domain::TargetKind::Function => "concurrent",
        dowguard_domain::TargetKind::UsagePlan => "rps per key",
        _ => "rps",
    };
    let bound = match e.bound {
        Bound::OwnLimit => "own limit",
        Bound::AccountLimit => "account limit",
    };
    format!("{} {unit} ({bound})", e.capacity)
}

fn render(view: &AuditView, default_budget: Money) -> String {
    let of = view
        .template
        .as_ref()
        .map(|t| format!(" of {t} (not deployed)"))
        .unwrap_or_default();
    let mut out = format!(
        "Denial-of-Wallet exposure{of} in {} ({} entry points, account concurrency {} from {})\n\n",
        view.region,
        view.entry_points.len(),
        view.account_concurrency,
        view.account_concurrency_source
    );
    let mut table = Table::new(&["#", "ENTRY POINT", "WORST CASE", "AT MOST", "EXPOSURE"]);
    for r in &view.entry_points {
        let e = &r.exposure;
        let findings: Vec<String> = e.findings.iter().map(Finding::describe).collect();
        table.row(vec![
            r.rank.to_string(),
            e.target.to_string(),
            format!("{}/h", e.worst_per_hour),
            capacity(e),
            if findings.is_empty() {
                "-".into()
            } else {
                findings.join("; ")
            },
        ]);
    }
    out.push_str(&table.render());
    out.push_str(&format!(
        "\ntotal worst case (usage plans excluded: their requests are their stages'): {}/h\n\n",
        view.total_worst_per_hour
    ));
    out.push_str("Recommended limits (the worst case capped at the budget's top burn-rate threshold):\n");
    let mut table = Table::new(&["ENTRY POINT", "SET", "WORST CASE THEN", "FROM BUDGET"]);
    for r in &view.entry_points {
        let e = &r.exposure;
        let basis = match &e.basis.budget {
            Some(b) => format!("{b}: {} a {} at {}", e.basis.amount, e.basis.period, e.basis.cap),
            None => format!("default {default_budget} a day at {}", e.basis.cap),
        };
        table.row(vec![
            e.target.to_string(),
            limits(&e.recommended),
            format!("{}/h", e.recommended_per_hour),
            basis,
        ]);
    }
    out.push_str(&table.render());
    let stages: Vec<(&TargetId, &dowguard_domain::source::TargetedLevels)> = view
        .entry_points
        .iter()
        .filter_map(|r| r.exposure.targeted.as_ref().map(|t| (&r.exposure.target, t)))
        .collect();
    if !stages.is_empty() {
        out.push_str("\nTargeted levels (stop the callers behind the spend, not the whole stage):\n");
        let mut table = Table::new(&["ENTRY POINT", "CAN", "MISSING"]);
        for (id, levels) in stages {
            table.row(vec![
                id.to_string(),
                if levels.usable.is_empty() {
                    "-".into()
                } else {
                    levels.usable.join(", ")
                },
                if levels.missing.is_empty() {
                    "-".into()
                } else {
                    levels.missing.join("; ")
                },
            ]);
        }
        out.push_str(&table.render());
    }
    if !view.unread.is_empty() {
        out.push_str("\nCould not read (entry points there are missing above):\n");
        for line in &view.unread {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    if !view.unresolved.is_empty() {
        out.push_str("\nNot decided by the template (the worst case was taken for each):\n");
        for line in &view.unresolved {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    if let Some(bar) = view.fail_above {
        out.push_str(&format!(
            "\n{} entry point(s) above {bar}/h{}\n",
            view.above,
            if view.above > 0 { " (exit code 1)" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_above_reads_dollars_an_hour() {
        assert_eq!(parse_per_hour("$50/h"), Ok(Money::from_dollars(50)));
        assert_eq!(parse_per_hour("12.5"), Ok(Money::from_cents(1_250)));
        assert!(parse_per_hour("fifty").is_err());
    }

    #[test]
    fn parameters_are_key_equals_value() {
        assert_eq!(parse_parameter("Stage=prod"), Ok(("Stage".into(), "prod".into())));
        assert_eq!(parse_parameter("Empty="), Ok(("Empty".into(), String::new())));
        assert!(parse_parameter("Stage").is_err());
        assert!(parse_parameter("=x").is_err());
    }
}
