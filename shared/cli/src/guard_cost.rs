//! `dowguard guard-cost`: what the guard itself costs a month at the current
//! settings and target count: CloudWatch metrics requested, alarms and the rules
//! that rank the callers of REST API stages (the domain's [`GuardCost`] model) and
//! the evaluator's own Lambda invocations.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use dowguard_adapters::cloudwatch::Field;
use dowguard_adapters::insights::{CallerKind, rule_name};
use dowguard_domain::guard_cost::MINUTES_PER_MONTH;
use dowguard_domain::metrics_plan::stage_every;
use dowguard_domain::{
    AlarmBasis, AlarmScope, Budget, GuardCost, GuardSettings, MetricsPlan, Money, Product, Target, TargetId,
    TargetKind, UsagePlanId, alarm_needed,
};
use dowguard_guard::assess::members;
use dowguard_guard::ports::{BudgetStore, Discovery};
use serde::Serialize;

use crate::context::Context;
use crate::error::CliResult;
use crate::fanout::{Collected, to_json};
use crate::output::{Format, Table, print_json, print_text};

/// `dowguard guard-cost`
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dowguard guard-cost
  dowguard guard-cost --schedule-minutes 5 --all-targets
  dowguard guard-cost --alarms-every-target
  dowguard guard-cost --quarantine-plan-id q1w2e3")]
pub struct GuardCostArgs {
    /// Minutes between evaluator runs (the EventBridge schedule).
    #[arg(long, default_value_t = 1, value_name = "MIN")]
    pub schedule_minutes: u64,
    /// Minutes between sweeps that refresh every target's spend-to-date.
    #[arg(long, default_value_t = MetricsPlan::default().sweep_every_minutes, value_name = "MIN")]
    pub sweep_every_minutes: u64,
    /// The evaluator's memory (MB, arm64).
    #[arg(long, default_value_t = 256, value_name = "MB")]
    pub evaluator_memory_mb: u32,
    /// The evaluator's average run time (ms) per invocation.
    #[arg(long, default_value_t = 1_000, value_name = "MS")]
    pub evaluator_ms: u64,
    /// Count every discovered target, as if an account-wide budget covered them all.
    #[arg(long)]
    pub all_targets: bool,
    /// Price an alarm on every guarded function and stage (DOWGUARD_ALARMS=every-target),
    /// not only where the schedule needs one.
    #[arg(long)]
    pub alarms_every_target: bool,
    /// The usage plan quarantined API keys are moved to, as deployed (the template's
    /// QuarantinePlanId): the stages in a usage plan then get a rule ranking their keys.
    #[arg(long, value_name = "ID", value_parser = parse_plan)]
    pub quarantine_plan_id: Option<UsagePlanId>,
    /// Price no ranking rules (the template's CallerRanking=false).
    #[arg(long)]
    pub no_caller_ranking: bool,
}

fn parse_plan(text: &str) -> Result<UsagePlanId, String> {
    UsagePlanId::parse(text).map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
struct CostView {
    functions: u64,
    stages: u64,
    evaluator_runs_per_month: u64,
    metrics_per_month: u64,
    metrics: Money,
    alarm_count: u64,
    alarms: Money,
    ranking_rules: u64,
    matched_events_per_month: u64,
    rankings: Money,
    lambda: Money,
    total: Money,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unread: Vec<String>,
}

/// The ranking rules the evaluator keeps on the guarded REST API stages, and the
/// log events they match a month: each rule matches every request of its stage,
/// taken from the stage's last 24 hours (`Count`) times 30.
async fn rankings(
    ctx: &Context,
    args: &GuardCostArgs,
    guarded: &[&Target],
    now: DateTime<Utc>,
) -> Result<(u64, u64), String> {
    let stages: Vec<Target> = guarded
        .iter()
        .filter(|t| t.id.kind() == TargetKind::RestStage && t.guarded)
        .map(|t| (*t).clone())
        .collect();
    let account = &ctx.stack.account;
    let Some(mut ranking) = account.ranking().cloned() else {
        return Ok((0, 0));
    };
    ranking.enabled = !args.no_caller_ranking;
    ranking.quarantine_plan.clone_from(&args.quarantine_plan_id);
    let (rules, _unrankable) = account
        .wanted_rankings_with(&ranking, &stages)
        .await
        .map_err(|e| format!("ranking rules not counted: {e}"))?;
    let per_stage: Vec<(&Target, u64)> = stages
        .iter()
        .filter_map(|t| {
            let TargetId::RestStage(api, stage) = &t.id else {
                return None;
            };
            let names = CallerKind::ALL.map(|k| rule_name(api.as_str(), stage.as_str(), k));
            let count = rules.iter().filter(|r| names.contains(&r.name)).count() as u64;
            (count > 0).then_some((t, count))
        })
        .collect();
    let ranked: Vec<&Target> = per_stage.iter().map(|(t, _)| *t).collect();
    let mut requests: HashMap<TargetId, u64> = HashMap::new();
    if !ranked.is_empty() {
        account
            .metrics
            .history(
                &ranked,
                &account.catalog(),
                3_600,
                (now - Duration::days(1), now),
                |id, _, field, amount| {
                    if field == Field::Requests {
                        *requests.entry(id.clone()).or_default() += amount;
                    }
                },
            )
            .await
            .map_err(|e| format!("matched log events not counted: {e}"))?;
    }
    let events = per_stage
        .iter()
        .map(|(t, count)| requests.get(&t.id).copied().unwrap_or(0) * 30 * count)
        .sum();
    Ok((rules.len() as u64, events))
}

/// Runs `guard-cost`.
pub async fn run(ctx: &Context, args: &GuardCostArgs) -> CliResult<()> {
    let (view, stage_every) = view(ctx, args).await?;
    if ctx.format() == Format::Json {
        return print_json(&view);
    }
    print_text(&render(&view, &stage_every, args))
}

/// The columns of `guard-cost` across accounts, after ACCOUNT and REGION.
pub const FAN_OUT_COLUMNS: &[&str] = &["TARGETS", "METRICS A MONTH", "ALARMS", "COST A MONTH"];

/// `guard-cost` of one account and region, for the fan-out.
pub(crate) async fn collect(ctx: &Context, args: &GuardCostArgs) -> CliResult<Collected> {
    let (view, _) = view(ctx, args).await?;
    Ok(Collected {
        json: to_json(&view)?,
        rows: vec![vec![
            (view.functions + view.stages).to_string(),
            view.metrics_per_month.to_string(),
            view.alarm_count.to_string(),
            view.total.to_string(),
        ]],
        found: false,
        notes: view
            .unread
            .iter()
            .map(|line| format!("not counted: {line}"))
            .collect(),
    })
}

async fn view(ctx: &Context, args: &GuardCostArgs) -> CliResult<(CostView, Vec<u64>)> {
    let targets = ctx.stack.account.discover().await?;
    let budgets: Vec<Budget> = ctx
        .stack
        .store
        .list_budgets()
        .await?
        .items
        .into_iter()
        .map(|v| v.value)
        .collect();
    let mut guarded: Vec<&dowguard_domain::Target> = if args.all_targets {
        targets.iter().collect()
    } else {
        budgets.iter().flat_map(|b| members(b, &targets)).collect()
    };
    guarded.sort_by(|a, b| a.id.cmp(&b.id));
    guarded.dedup_by(|a, b| a.id == b.id);
    let functions = guarded
        .iter()
        .filter(|t| t.id.kind() == TargetKind::Function)
        .count() as u64;
    let stages = guarded.len() as u64 - functions;
    let now = ctx.now();
    let settings = GuardSettings::default();
    // Each stage at the cadence the evaluator derives from its worst case and budgets.
    let stage_every: Vec<u64> = guarded
        .iter()
        .filter(|t| matches!(t.id.kind(), TargetKind::RestStage | TargetKind::HttpStage))
        .map(|t| stage_every(t, &budgets, &ctx.prices, now, &settings))
        .collect();
    let plan = MetricsPlan {
        sweep_every_minutes: args.sweep_every_minutes,
    };
    // The alarms the evaluator's alarm sync keeps at this schedule.
    let basis = AlarmBasis {
        prices: &ctx.prices,
        now,
        avg_duration_ms: settings.default_avg_duration_ms,
        schedule_minutes: args.schedule_minutes,
        scope: if args.alarms_every_target {
            AlarmScope::EveryTarget
        } else {
            AlarmScope::Needed
        },
        settings: &settings,
    };
    let alarms = guarded
        .iter()
        .filter(|t| alarm_needed(t, &budgets, &basis))
        .count() as u64;
    let mut unread = Vec::new();
    let (rules, events) = rankings(ctx, args, &guarded, now).await.unwrap_or_else(|why| {
        unread.push(why);
        (0, 0)
    });
    let cw = GuardCost::estimate(functions, &stage_every, args.schedule_minutes, alarms, plan)
        .with_rankings(rules, events);
    let runs = MINUTES_PER_MONTH / args.schedule_minutes.max(1);
    let lambda = ctx.prices.cost(Product::LambdaRequests, 0, u128::from(runs))
        + ctx.prices.cost(
            Product::LambdaDurationArm,
            0,
            u128::from(runs) * u128::from(args.evaluator_memory_mb) * u128::from(args.evaluator_ms),
        );
    let view = CostView {
        functions,
        stages,
        evaluator_runs_per_month: runs,
        metrics_per_month: cw.metrics_per_month,
        metrics: cw.metrics,
        alarm_count: alarms,
        alarms: cw.alarms,
        ranking_rules: rules,
        matched_events_per_month: events,
        rankings: cw.rankings,
        lambda,
        total: cw.total() + lambda,
        unread,
    };
    Ok((view, stage_every))
}

fn render(view: &CostView, stage_every: &[u64], args: &GuardCostArgs) -> String {
    let (functions, stages, runs, alarms) = (
        view.functions,
        view.stages,
        view.evaluator_runs_per_month,
        view.alarm_count,
    );
    let mut out = format!(
        "The guard's own cost a month for {} guarded target(s): {} function(s), {} API stage(s) or plan(s)\n\
         evaluator every {} min: the account's Lambda usage every run (2 metrics), functions the guard\n\
         holds or has just released every run, API stages every {} min (from each one's worst case and budgets),\n\
         every target's spend-to-date every {} min\n\n",
        functions + stages,
        functions,
        stages,
        args.schedule_minutes,
        match (stage_every.iter().min(), stage_every.iter().max()) {
            (Some(low), Some(high)) if low != high => format!("{low} to {high}"),
            (Some(every), _) => every.to_string(),
            _ => "-".to_string(),
        },
        args.sweep_every_minutes
    );
    let mut table = Table::new(&["ITEM", "QUANTITY A MONTH", "COST A MONTH"]);
    table.row(vec![
        "CloudWatch GetMetricData".into(),
        format!("{} metrics", view.metrics_per_month),
        view.metrics.to_string(),
    ]);
    table.row(vec![
        "CloudWatch alarms".into(),
        format!("{alarms} alarms"),
        view.alarms.to_string(),
    ]);
    table.row(vec![
        "CloudWatch Contributor Insights".into(),
        format!(
            "{} rules, {} matched log events",
            view.ranking_rules, view.matched_events_per_month
        ),
        view.rankings.to_string(),
    ]);
    table.row(vec![
        "evaluator Lambda (arm64)".into(),
        format!(
            "{runs} runs x {} MB x {} ms",
            args.evaluator_memory_mb, args.evaluator_ms
        ),
        view.lambda.to_string(),
    ]);
    table.row(vec!["total".into(), String::new(), view.total.to_string()]);
    out.push_str(&table.render());
    out.push_str(
        "\nWithout the free tier; DynamoDB and SNS requests are not counted (cents at these volumes).\n\
         Exposure: every function is covered every run by the account's aggregate; when what the functions\n\
         not measured served, priced at the dearest of them, could lift a budget to its first throttle level,\n\
         the same run measures them all. So an attack is seen as soon as a full measurement would see it.\n\
         Alarms: only where a target's worst case could outrun its budget between two runs - every function\n\
         when the evaluator runs less often than every minute, and the API stages whose cadence is shorter\n\
         than the schedule.\n\
         Contributor Insights: one rule per guarded REST API stage and kind of caller its access log names\n\
         and a lever can hold (an IP set its web ACL blocks; a quarantine plan for its keys), each matching\n\
         every request of the stage (its last 24 hours times 30).\n",
    );
    for line in &view.unread {
        out.push_str(&format!("Not counted: {line}\n"));
    }
    out
}
