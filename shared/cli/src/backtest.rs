//! `dowguard backtest`: what would the guard have done to us? Fetches the guarded
//! targets' recorded traffic from CloudWatch (priced and confirmed first, cached so
//! the next run with other budgets is free) and replays it through the
//! simulator's dowguard strategy ([`dowguard_sim::backtest`]) with the budgets in
//! the table or in a budgets file, every budget enforced.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_adapters::apigateway::RestCatalog;
use dowguard_adapters::cloudwatch::Field;
use dowguard_domain::{
    AlarmScope, Budget, GuardCost, MetricsPlan, Money, Target, TargetId, TargetKind, coverage, epoch_minute,
};
use dowguard_guard::ports::{BudgetStore, Discovery, LambdaControl, Unlisted, UnreadableItem};
use dowguard_sim::backtest::{self, Backtest, History, Recorded, Replay};
use dowguard_sim::scenario::{DEFAULT_MAX_RPS, GuardConfig, SimTarget};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::audit::DEFAULT_ACCOUNT_CONCURRENCY;
use crate::context::Context;
use crate::error::{CliError, CliResult, exit};
use crate::output::{Format, Table, print_json, print_text};

/// CloudWatch keeps one-minute points this long ("GetMetricData", Amazon
/// CloudWatch API Reference).
const ONE_MINUTE_DAYS: i64 = 15;
/// Five-minute points.
const FIVE_MINUTE_DAYS: i64 = 63;
/// Hourly points.
const HOURLY_DAYS: i64 = 455;
/// Most datapoints one GetMetricData page returns (same page).
const POINTS_PER_PAGE: u64 = 100_800;
/// Targets fetched per step of the progress bar.
const TARGETS_PER_STEP: usize = 50;

/// `dowguard backtest`
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit codes: 0 nothing would have been throttled, 1 the guard would have throttled
something (gate the switch to enforce on it), 2 invalid input, 5 AWS refused a call.

Examples:
  dowguard backtest                              # the last 14 days, the budgets in the table
  dowguard backtest --budgets try.toml           # other amounts, from the cached history
  dowguard backtest --days 60 --yes              # five-minute points, no question asked
  dowguard backtest --output json | jq '.budgets[] | {budget, refused, saved}'
  dowguard backtest && dowguard budgets set checkout-daily --mode enforce")]
pub struct BacktestArgs {
    /// Budgets to try instead of the table's: a TOML file of [[budgets]] tables
    /// (id, scope, period, amount; thresholds, floors, protected optional).
    #[arg(long, value_name = "FILE")]
    pub budgets: Option<PathBuf>,
    /// Only these budgets (repeatable).
    #[arg(long = "budget", value_name = "ID")]
    pub only: Vec<String>,
    /// The history replayed.
    #[command(flatten)]
    pub history: HistoryArgs,
    /// Write a plot of cumulative spend against the first budget (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Which history to replay, and how to get it: shared by `backtest` and
/// `budgets suggest`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Replay the last N whole UTC days and today so far.
    #[arg(long, default_value_t = 14, conflicts_with = "from")]
    pub days: u32,
    /// Start of the range (RFC 3339, e.g. 2026-11-01T00:00:00Z) instead of --days.
    #[arg(long, requires = "to")]
    pub from: Option<DateTime<Utc>>,
    /// End of the range (RFC 3339).
    #[arg(long, requires = "from")]
    pub to: Option<DateTime<Utc>>,
    /// The evaluator's schedule in minutes, as deployed (the template's ScheduleMinutes).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=15))]
    pub schedule_minutes: u32,
    /// Ask before fetching history that costs more than this.
    #[arg(long, value_name = "DOLLARS", default_value = "0.10", value_parser = parse_money)]
    pub max_fetch_cost: Money,
    /// Fetch without asking, whatever it costs.
    #[arg(long)]
    pub yes: bool,
    /// Where fetched history is kept (default: $XDG_CACHE_HOME/dowguard or ~/.cache/dowguard).
    #[arg(long, value_name = "DIR", env = "DOWGUARD_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

fn parse_money(text: &str) -> Result<Money, String> {
    Money::parse(text).map_err(|e| e.to_string())
}

/// The range replayed and the resolution its points exist at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Start (a whole point).
    pub start: DateTime<Utc>,
    /// End (exclusive, a whole point).
    pub end: DateTime<Utc>,
    /// Seconds per point: 60, 300 or 3600.
    pub period_s: i32,
}

impl Range {
    /// The range to replay: `--from/--to`, else the last `days` whole UTC days and
    /// today up to a few minutes ago (the metric delay). The resolution is the
    /// finest CloudWatch still keeps for the range's start.
    pub fn of(
        now: DateTime<Utc>,
        days: u32,
        explicit: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Range, String> {
        let (start, end) = match explicit {
            Some((from, to)) => (from, to.min(now)),
            None => {
                let today = now.duration_trunc(Duration::days(1)).map_err(|e| e.to_string())?;
                (
                    today - Duration::days(i64::from(days)),
                    now - Duration::minutes(5),
                )
            }
        };
        let age = now - start;
        let period_s = if age <= Duration::days(ONE_MINUTE_DAYS) {
            60
        } else if age <= Duration::days(FIVE_MINUTE_DAYS) {
            300
        } else if age <= Duration::days(HOURLY_DAYS) {
            3_600
        } else {
            return Err(format!(
                "--from {start}: CloudWatch keeps hourly points {HOURLY_DAYS} days; start later than {}",
                now - Duration::days(HOURLY_DAYS)
            ));
        };
        let step = Duration::seconds(i64::from(period_s));
        let start = start.duration_trunc(step).map_err(|e| e.to_string())?;
        let end = end.duration_trunc(step).map_err(|e| e.to_string())?;
        if end <= start {
            return Err(format!(
                "the range {start} – {end} holds no whole {}-second point; widen it",
                period_s
            ));
        }
        Ok(Range { start, end, period_s })
    }

    fn minutes(&self) -> u32 {
        u32::try_from((self.end - self.start).num_minutes()).unwrap_or(u32::MAX)
    }

    fn points(&self) -> u64 {
        u64::try_from((self.end - self.start).num_seconds() / i64::from(self.period_s)).unwrap_or(0)
    }

    /// The points' resolution in words.
    pub fn resolution(&self) -> &'static str {
        match self.period_s {
            60 => "one-minute",
            300 => "five-minute",
            _ => "hourly",
        }
    }
}

/// What fetching a history costs at most, given the metrics of each call: every
/// metric of a call counted again on each of its pages of at most 100,800
/// datapoints ("GetMetricData", Amazon CloudWatch API Reference), at $0.01 per
/// 1,000 metrics requested ("Amazon CloudWatch Pricing").
pub fn fetch_cost(calls: &[u64], range: &Range) -> (u64, Money) {
    let requested = calls
        .iter()
        .map(|&metrics| metrics * (metrics * range.points()).div_ceil(POINTS_PER_PAGE).max(1))
        .sum();
    (requested, GuardCost::of_metrics(requested))
}

/// The metrics a target's history takes: Invocations and Duration for a function,
/// Count for a stage, none for a usage plan (its money is its stages').
fn metrics_of(kind: TargetKind) -> u64 {
    match kind {
        TargetKind::Function => 2,
        TargetKind::RestStage | TargetKind::HttpStage => 1,
        TargetKind::UsagePlan => 0,
    }
}

#[derive(Debug, Serialize)]
struct BacktestView<'a> {
    #[serde(flatten)]
    backtest: &'a Backtest,
    resolution: &'static str,
    fetched_metrics: u64,
    fetch_cost: Money,
    cached_targets: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unread: Vec<String>,
}

/// A history ready to replay, and how it was got.
#[derive(Debug)]
pub struct Loaded {
    /// The range.
    pub range: Range,
    /// The recorded traffic of the covered targets.
    pub history: History,
    /// The deployment's settings for the replay.
    pub replay: Replay,
    /// Metrics fetched (0 when everything came from the cache).
    pub fetched: u64,
    /// Their cost.
    pub cost: Money,
    /// Targets read from the cache.
    pub cached: usize,
    /// What could not be read.
    pub unread: Vec<String>,
}

/// The recorded history of every discovered target one of `budgets` covers, over
/// the range `args` gives.
pub async fn load(ctx: &Context, args: &HistoryArgs, budgets: &[Budget]) -> CliResult<Loaded> {
    let range = Range::of(ctx.now(), args.days, args.from.zip(args.to)).map_err(CliError::Invalid)?;
    let account = &ctx.stack.account;
    let discovered = account.discover().await?;
    let mut unread: Vec<String> = discovered.unlisted.iter().map(Unlisted::line).collect();
    let catalog = account.catalog();
    // The guarded targets: those a budget covers.
    let mut covered = vec![false; discovered.targets.len()];
    for b in budgets {
        for (i, _) in coverage::members(b, &discovered.targets) {
            covered[i] = true;
        }
    }
    let targets: Vec<Target> = discovered
        .targets
        .into_iter()
        .zip(covered)
        .filter_map(|(t, c)| c.then_some(t))
        .collect();
    if targets.is_empty() {
        return Err(CliError::NotFound(format!(
            "no discovered target is covered by {}: nothing to replay",
            budgets
                .iter()
                .map(|b| b.scope.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let account_concurrency = match account.account_concurrency().await {
        Ok(a) => a.limit,
        Err(e) => {
            unread.push(format!(
                "account concurrency (GetAccountSettings: {e}); assumed {DEFAULT_ACCOUNT_CONCURRENCY}"
            ));
            DEFAULT_ACCOUNT_CONCURRENCY
        }
    };
    let cache = Cache::new(ctx, args).await;
    let (history, fetched, cost, cached) =
        history(ctx, args, &range, &targets, &catalog, &cache, account_concurrency).await?;
    if history.recorded.iter().all(|r| r.requests == 0) {
        let option = if args.from.is_some() {
            "--from/--to"
        } else {
            "--days"
        };
        return Err(CliError::Invalid(format!(
            "{option}: CloudWatch holds no requests for the {} covered target(s) between {} and {}; pick a range with traffic (one-minute points are kept {ONE_MINUTE_DAYS} days, five-minute points {FIVE_MINUTE_DAYS})",
            targets.len(),
            range.start,
            range.end
        )));
    }
    let replay = Replay {
        guard: GuardConfig {
            interval_minutes: args.schedule_minutes,
            settings: ctx.settings.clone(),
            metrics_plan: MetricsPlan::default(),
            alarms: AlarmScope::Needed,
            attribution_delay_minutes: dowguard_sim::scenario::DEFAULT_ATTRIBUTION_DELAY_MINUTES,
        },
        prices: ctx.prices.clone(),
        account_concurrency,
    };
    Ok(Loaded {
        range,
        history,
        replay,
        fetched,
        cost,
        cached,
        unread,
    })
}

/// Runs the backtest; exit code 1 when the guard would have throttled something.
pub async fn run(ctx: &Context, args: &BacktestArgs) -> CliResult<u8> {
    let mut budgets = budgets(ctx, args).await?;
    if !args.only.is_empty() {
        budgets.retain(|b| args.only.iter().any(|id| *id == b.id.to_string()));
        if budgets.is_empty() {
            return Err(CliError::NotFound(format!(
                "no budget named {}",
                args.only.join(", ")
            )));
        }
    }
    let loaded = load(ctx, &args.history, &budgets).await?;
    let scenario = backtest::scenario(&loaded.history, &budgets, &loaded.replay)?;
    let result = backtest::run(&scenario, &budgets, loaded.history.resolution_minutes);
    if let Some(path) = &args.plot {
        dowguard_sim::plot::write_svg(&result.report, path)?;
    }
    let view = BacktestView {
        backtest: &result,
        resolution: loaded.range.resolution(),
        fetched_metrics: loaded.fetched,
        fetch_cost: loaded.cost,
        cached_targets: loaded.cached,
        unread: loaded.unread,
    };
    match ctx.format() {
        Format::Json => print_json(&view)?,
        Format::Table => print_text(&render(&view))?,
    }
    Ok(if result.throttled { exit::FOUND } else { exit::OK })
}

async fn budgets(ctx: &Context, args: &BacktestArgs) -> CliResult<Vec<Budget>> {
    if let Some(path) = &args.budgets {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Invalid(format!("--budgets {}: {e}", path.display())))?;
        return Ok(dowguard_sim::scenario::budgets_from_toml(
            &text,
            &path.display().to_string(),
        )?);
    }
    let listed = ctx.stack.store.list_budgets().await?;
    for line in listed.unreadable.iter().map(UnreadableItem::line) {
        eprintln!("note: {line}");
    }
    let budgets: Vec<Budget> = listed.items.into_iter().map(|v| v.value).collect();
    if budgets.is_empty() {
        return Err(CliError::NotFound(
            "the table holds no budget to replay; set one with `dowguard budgets set`, or pass --budgets FILE"
                .into(),
        ));
    }
    Ok(budgets)
}

/// The recorded history of `targets` over `range`: from the cache where it holds
/// the range, else fetched (after asking, above `--max-fetch-cost`) and cached.
/// Returns it with the metrics fetched, their cost and the targets read from cache.
async fn history(
    ctx: &Context,
    args: &HistoryArgs,
    range: &Range,
    targets: &[Target],
    catalog: &RestCatalog,
    cache: &Cache,
    account_concurrency: u32,
) -> CliResult<(History, u64, Money, usize)> {
    let index: HashMap<&TargetId, usize> = targets.iter().enumerate().map(|(i, t)| (&t.id, i)).collect();
    let mut recorded: Vec<Recorded> = Vec::new();
    let mut missing: Vec<&Target> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match cache.read(&t.id, range) {
            Some(points) => recorded.extend(of_target(i, points)),
            None => missing.push(t),
        }
    }
    let cached = targets.len() - missing.len();
    let calls: Vec<u64> = missing
        .chunks(TARGETS_PER_STEP)
        .map(|chunk| chunk.iter().map(|t| metrics_of(t.id.kind())).sum())
        .collect();
    let (requested, cost) = fetch_cost(&calls, range);
    let plan = format!(
        "Fetching {} – {} of {} history for {} target(s) requests at most {requested} metrics = {cost}",
        range.start.format("%Y-%m-%d %H:%M"),
        range.end.format("%Y-%m-%d %H:%M UTC"),
        range.resolution(),
        missing.len(),
    );
    if requested > 0 && cost > args.max_fetch_cost && !args.yes {
        confirm(&format!(
            "{plan} (above --max-fetch-cost {}). Fetch? [y/N] ",
            args.max_fetch_cost
        ))?;
    } else if requested > 0 && ctx.format() == Format::Table {
        eprintln!("{plan}.");
    }
    let progress = if ctx.format() == Format::Table && !missing.is_empty() {
        ProgressBar::with_draw_target(Some(missing.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} fetching history [{bar:30}] {pos}/{len} targets {msg}")
            .map_err(|e| CliError::Output(e.to_string()))?
            .progress_chars("=> "),
    );
    let first = epoch_minute(range.start);
    let mut fetched = 0;
    for chunk in missing.chunks(TARGETS_PER_STEP) {
        let mut points: HashMap<TargetId, std::collections::BTreeMap<u32, (u64, u64)>> = HashMap::new();
        let (n, partial) = ctx
            .stack
            .account
            .metrics
            .history(
                chunk,
                catalog,
                range.period_s,
                (range.start, range.end),
                |id, minute, field, amount| {
                    let Ok(offset) = u32::try_from(minute - first) else {
                        return;
                    };
                    let slot = points.entry(id.clone()).or_default().entry(offset).or_default();
                    match field {
                        Field::Requests => slot.0 += amount,
                        Field::DurationMs => slot.1 += amount,
                        Field::Throttled => {}
                    }
                },
            )
            .await?;
        fetched += n;
        if !partial.is_empty() {
            progress.suspend(|| {
                for (id, metric) in &partial {
                    eprintln!("note: CloudWatch returned partial {metric} data for {id}");
                }
            });
        }
        for t in chunk {
            let series: Vec<(u32, u64, u64)> = points
                .remove(&t.id)
                .unwrap_or_default()
                .into_iter()
                .map(|(minute, (requests, duration))| (minute, requests, duration))
                .collect();
            cache.write(&t.id, range, &series);
            let i = index.get(&t.id).copied().unwrap_or_default();
            recorded.extend(of_target(i, series));
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    let history = History {
        start: range.start,
        minutes: range.minutes(),
        resolution_minutes: u32::try_from(range.period_s / 60).unwrap_or(1),
        targets: targets
            .iter()
            .map(|t| SimTarget {
                target: t.clone(),
                avg_duration_ms: ctx.settings.default_avg_duration_ms,
                max_concurrency: account_concurrency,
                max_rps: DEFAULT_MAX_RPS,
                // The history names no caller: the stages are replayed whole.
                levers: dowguard_sim::scenario::Levers::default(),
            })
            .collect(),
        recorded,
    };
    Ok((history, fetched, GuardCost::of_metrics(fetched), cached))
}

/// One target's points, (minute, requests, duration in ms), as recorded history.
fn of_target(target: usize, points: Vec<(u32, u64, u64)>) -> impl Iterator<Item = Recorded> {
    points
        .into_iter()
        .map(move |(minute, requests, duration_ms)| Recorded {
            target,
            minute,
            requests,
            duration_ms,
        })
}

fn confirm(question: &str) -> CliResult<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Invalid(format!(
            "{} Not asked: standard input is not a terminal. Pass --yes to fetch anyway, or a larger --max-fetch-cost",
            question.trim_end_matches(" Fetch? [y/N] ")
        )));
    }
    eprint!("{question}");
    std::io::stderr()
        .flush()
        .map_err(|e| CliError::Output(e.to_string()))?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Output(e.to_string()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Invalid(
            "nothing fetched: the fetch was declined".into(),
        ))
    }
}

/// Fetched history on disk: one file per target and resolution, holding the range
/// it covers and its points (`minute offset` from that range's start).
struct Cache {
    dir: Option<PathBuf>,
}

impl Cache {
    async fn new(ctx: &Context, args: &HistoryArgs) -> Cache {
        let base = args.cache_dir.clone().or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|d| d.join("dowguard"))
        });
        let account = aws_sdk_sts::Client::new(&ctx.sdk)
            .get_caller_identity()
            .send()
            .await
            .ok()
            .and_then(|o| o.account().map(str::to_string))
            .unwrap_or_else(|| "unknown-account".into());
        let endpoint = ctx
            .global
            .endpoint_url
            .as_deref()
            .map(|u| format!("-{}", sanitize(u)))
            .unwrap_or_default();
        Cache {
            dir: base.map(|b| {
                b.join("history")
                    .join(format!("{account}-{}{endpoint}", ctx.prices.region))
            }),
        }
    }

    fn path(&self, id: &TargetId, range: &Range) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}s.csv", sanitize(&id.to_string()), range.period_s)))
    }

    /// The target's points within `range`, if the cached file covers all of it.
    fn read(&self, id: &TargetId, range: &Range) -> Option<Vec<(u32, u64, u64)>> {
        let text = std::fs::read_to_string(self.path(id, range)?).ok()?;
        parse_cache(&text, range)
    }

    fn write(&self, id: &TargetId, range: &Range, points: &[(u32, u64, u64)]) {
        let Some(path) = self.path(id, range) else { return };
        if let Err(e) = write_cache(&path, range, points) {
            eprintln!("note: could not cache history in {}: {e}", path.display());
        }
    }
}

/// A cache file's first line: the range it covers.
const CACHE_HEADER: &str = "# dowguard history v1";

fn write_cache(path: &Path, range: &Range, points: &[(u32, u64, u64)]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = format!(
        "{CACHE_HEADER} start={} end={} period_s={}\nminute,requests,duration_ms\n",
        range.start.to_rfc3339(),
        range.end.to_rfc3339(),
        range.period_s
    );
    for (minute, requests, duration) in points {
        text.push_str(&format!("{minute},{requests},{duration}\n"));
    }
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// The points of a cache file that fall in `range`, shifted to its start; `None`
/// when the file does not cover the range or cannot be read.
fn parse_cache(text: &str, range: &Range) -> Option<Vec<(u32, u64, u64)>> {
    let mut lines = text.lines();
    let header = lines.next()?.strip_prefix(CACHE_HEADER)?;
    let field = |name: &str| {
        header
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
    };
    let start: DateTime<Utc> = field("start")?.parse().ok()?;
    let end: DateTime<Utc> = field("end")?.parse().ok()?;
    let period_s: i32 = field("period_s")?.parse().ok()?;
    if period_s != range.period_s || start > range.start || end < range.end {
        return None;
    }
    let shift = (range.start - start).num_minutes();
    let limit = i64::from(range.minutes());
    let mut out = Vec::new();
    for line in lines.skip(1) {
        let mut fields = line.split(',').map(|f| f.trim().parse::<u64>().ok());
        let (Some(Some(minute)), Some(Some(requests)), Some(Some(duration))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let at = i64::try_from(minute).ok()? - shift;
        if (0..limit).contains(&at) {
            out.push((u32::try_from(at).ok()?, requests, duration));
        }
    }
    Some(out)
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn render(view: &BacktestView<'_>) -> String {
    let bt = view.backtest;
    let mut out = format!(
        "Backtest of {} – {} ({} points, {} target(s); every budget replayed in enforce mode)\n",
        bt.start.format("%Y-%m-%d %H:%M"),
        bt.end.format("%Y-%m-%d %H:%M UTC"),
        view.resolution,
        bt.targets
    );
    out.push_str(&format!(
        "History: {} metric(s) fetched ({}), {} target(s) from the cache\n\n",
        view.fetched_metrics, view.fetch_cost, view.cached_targets
    ));
    let mut table = Table::new(&[
        "BUDGET",
        "SCOPE",
        "PERIOD",
        "AMOUNT",
        "RECORDED",
        "GUARDED",
        "SAVED",
        "REFUSED",
        "WITHIN BUDGET",
    ]);
    for b in &bt.budgets {
        table.row(vec![
            b.budget.clone(),
            b.scope.clone(),
            b.period.to_string(),
            b.amount.to_string(),
            b.spend_recorded.to_string(),
            b.spend_guarded.to_string(),
            b.saved.to_string(),
            format!("{} of {}", b.refused, b.requests),
            if b.within_budget { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&table.render());
    let episodes: Vec<_> = bt.budgets.iter().flat_map(|b| &b.episodes).collect();
    if episodes.is_empty() {
        out.push_str("\nNo episode: no budget would have had the guard's attention.\n");
    } else {
        out.push_str("\nEpisodes:\n");
        let mut table = Table::new(&[
            "BUDGET",
            "START",
            "END",
            "LEVEL",
            "THROTTLED",
            "REFUSED",
            "REASON",
        ]);
        for e in episodes {
            table.row(vec![
                e.budget.clone(),
                e.start.format("%Y-%m-%d %H:%M").to_string(),
                e.end.map_or_else(
                    || "(still open)".into(),
                    |t| t.format("%Y-%m-%d %H:%M").to_string(),
                ),
                dowguard_sim::episodes::level_name(e.level),
                if e.throttled { "yes" } else { "no" }.into(),
                e.refused.to_string(),
                e.reason.clone(),
            ]);
        }
        out.push_str(&table.render());
    }
    if !view.unread.is_empty() {
        out.push_str("\nCould not read:\n");
        for line in &view.unread {
            out.push_str(&format!("  - {line}\n"));
        }
    }
    out.push_str(&if bt.throttled {
        format!(
            "\nThe guard would have throttled: {} limit change(s) (exit code 1).\n",
            bt.tightenings
        )
    } else {
        "\nThe guard would have throttled nothing in this range.\n".to_string()
    });
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn the_default_range_is_whole_days_and_today_at_one_minute() {
        let r = Range::of(at(30, 12, 7), 14, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r.start, r.end, r.period_s), (at(16, 0, 0), at(30, 12, 2), 60));
    }

    #[test]
    fn older_ranges_use_the_finest_points_cloudwatch_still_keeps() {
        let r = Range::of(at(30, 12, 0), 20, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.period_s, 300);
        let old = Utc
            .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let r = Range::of(at(30, 12, 0), 0, Some((old, at(1, 0, 0)))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.period_s, 3_600);
        let ancient = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        let err = Range::of(at(30, 12, 0), 0, Some((ancient, at(1, 0, 0)))).err();
        assert!(err.is_some_and(|e| e.contains("455 days")));
    }

    #[test]
    fn an_empty_range_is_refused() {
        let err = Range::of(at(30, 12, 0), 0, Some((at(30, 11, 0), at(30, 11, 0)))).err();
        assert!(err.is_some_and(|e| e.contains("no whole")));
    }

    #[test]
    fn a_cache_file_serves_any_range_it_covers_and_no_other() {
        let wide = Range {
            start: at(10, 0, 0),
            end: at(12, 0, 0),
            period_s: 60,
        };
        let mut text = format!(
            "{CACHE_HEADER} start={} end={} period_s=60\nminute,requests,duration_ms\n",
            wide.start.to_rfc3339(),
            wide.end.to_rfc3339()
        );
        text.push_str("0,5,1000\n1440,7,1400\n");
        let inner = Range {
            start: at(11, 0, 0),
            end: at(12, 0, 0),
            period_s: 60,
        };
        assert_eq!(parse_cache(&text, &inner), Some(vec![(0, 7, 1400)]));
        let outside = Range {
            start: at(9, 0, 0),
            end: at(12, 0, 0),
            period_s: 60,
        };
        assert_eq!(parse_cache(&text, &outside), None);
        let coarser = Range {
            period_s: 300,
            ..inner
        };
        assert_eq!(parse_cache(&text, &coarser), None);
    }

    #[test]
    fn the_fetch_costs_each_metric_once_per_page_at_most() {
        let r = Range {
            start: at(16, 0, 0),
            end: at(30, 0, 0),
            period_s: 60,
        };
        // Two calls of 100 metrics × 20,160 points: 20 pages each.
        let (requested, cost) = fetch_cost(&[100, 100], &r);
        assert_eq!(requested, 2 * 100 * 20);
        assert_eq!(cost, Money::from_cents(4));
        assert_eq!(fetch_cost(&[], &r).0, 0);
    }
}
