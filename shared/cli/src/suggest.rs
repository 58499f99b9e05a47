//! `dowguard budgets suggest`: an amount and a burn-rate ladder per scope from the
//! account's recorded traffic ([`dowguard_sim::suggest`]), each shown with what it
//! would have done in the backtest, and the commands (or a budgets file) to set
//! them. Nothing is written to the table.

use std::path::PathBuf;

use dowguard_domain::{Budget, BudgetSpec, Period};
use dowguard_guard::ports::BudgetStore;
use dowguard_sim::suggest::{self, Ask, Method, Suggestion};
use serde::Serialize;

use crate::backtest::{HistoryArgs, load};
use crate::context::Context;
use crate::error::{CliError, CliResult};
use crate::output::{Format, Table, print_json, print_text};

/// `dowguard budgets suggest`
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Without --scope, every budget in the table gets a suggestion for its scope (its name,
owner and period kept); with an empty table, the whole account does.

Examples:
  dowguard budgets suggest
  dowguard budgets suggest --scope function:checkout --scope tag:team=shop --days 14
  dowguard budgets suggest --percentile 99 --margin 50 --write suggested.toml
  dowguard backtest --budgets suggested.toml     # what they would have done, in detail")]
pub struct SuggestArgs {
    /// Suggest for this scope (repeatable): account, tag:KEY=VALUE or a target.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// day or month budgets (default: the existing budget's period, else day).
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
    /// The day of the history the amount must cover, as a percentile.
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub percentile: u8,
    /// Margin on top of it, in percent.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub margin: u32,
    /// Owner of the budgets suggested for new scopes.
    #[arg(long, value_name = "OWNER", default_value = "finance@example.com")]
    pub owner: String,
    /// Write the suggestions as a budgets file (for `backtest --budgets`).
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// The history they come from.
    #[command(flatten)]
    pub history: HistoryArgs,
}

#[derive(Debug, Serialize)]
struct SuggestView<'a> {
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    resolution: &'static str,
    percentile: u8,
    margin_percent: u32,
    fetched_metrics: u64,
    fetch_cost: dowguard_domain::Money,
    suggestions: Vec<Entry<'a>>,
}

#[derive(Debug, Serialize)]
struct Entry<'a> {
    budget: String,
    #[serde(flatten)]
    suggestion: &'a Suggestion,
}

/// Runs the subcommand.
pub async fn run(ctx: &Context, args: &SuggestArgs) -> CliResult<()> {
    let existing: Vec<Budget> = match ctx.stack.store.list_budgets().await {
        Ok(listed) => listed.items.into_iter().map(|v| v.value).collect(),
        // Without the table, suggestions still come from --scope (or the account).
        Err(e) if !args.scopes.is_empty() => {
            eprintln!("note: the budgets could not be read ({e}); suggesting for the scopes given");
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let asks = asks(args, &existing);
    let period = match args.period.as_deref() {
        None => existing
            .iter()
            .find(|b| asks.iter().any(|a| a.scope == b.scope.to_string()))
            .map_or(Period::Day, |b| b.period),
        Some(text) => Period::parse(text).map_err(|e| CliError::Invalid(format!("--period: {e}")))?,
    };
    // The targets to fetch: those the asked scopes cover.
    let probes = asks
        .iter()
        .map(|a| {
            Budget::parse(BudgetSpec::day(&a.id, &a.scope, "1", &a.owner))
                .map_err(|e| CliError::Invalid(format!("--scope {}: {e}", a.scope)))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let loaded = load(ctx, &args.history, &probes).await?;
    for line in &loaded.unread {
        eprintln!("note: {line}");
    }
    let method = Method {
        percentile: args.percentile,
        margin_percent: args.margin,
        period,
    };
    let suggestions = suggest::suggest(&loaded.history, &loaded.replay, &asks, method)?;
    if let Some(path) = &args.write {
        let budgets: Vec<Budget> = suggestions.iter().map(|s| s.budget.clone()).collect();
        let text = dowguard_sim::scenario::budgets_to_toml(&budgets)?;
        std::fs::write(path, text).map_err(|e| CliError::Output(format!("{}: {e}", path.display())))?;
    }
    let view = SuggestView {
        start: loaded.range.start,
        end: loaded.range.end,
        resolution: loaded.range.resolution(),
        percentile: args.percentile,
        margin_percent: args.margin,
        fetched_metrics: loaded.fetched,
        fetch_cost: loaded.cost,
        suggestions: suggestions
            .iter()
            .map(|s| Entry {
                budget: s.budget.id.to_string(),
                suggestion: s,
            })
            .collect(),
    };
    match ctx.format() {
        Format::Json => print_json(&view),
        Format::Table => print_text(&render(&view, args)),
    }
}

/// The scopes to suggest for, each with the name and owner its budget gets.
fn asks(args: &SuggestArgs, existing: &[Budget]) -> Vec<Ask> {
    let of_budget = |b: &Budget| Ask {
        id: b.id.to_string(),
        scope: b.scope.to_string(),
        owner: b.owner.clone(),
    };
    if args.scopes.is_empty() {
        if existing.is_empty() {
            return vec![Ask {
                id: "account-daily".into(),
                scope: "account".into(),
                owner: args.owner.clone(),
            }];
        }
        return existing.iter().map(of_budget).collect();
    }
    args.scopes
        .iter()
        .map(|scope| {
            existing
                .iter()
                .find(|b| b.scope.to_string() == *scope)
                .map_or_else(
                    || Ask {
                        id: name_for(scope),
                        scope: scope.clone(),
                        owner: args.owner.clone(),
                    },
                    of_budget,
                )
        })
        .collect()
}

/// A budget name for a scope: `function:checkout` → `checkout-suggested`.
fn name_for(scope: &str) -> String {
    let tail = scope.rsplit([':', '/']).next().unwrap_or(scope);
    let name: String = tail
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{}-suggested", name.trim_matches('-'))
}

fn render(view: &SuggestView<'_>, args: &SuggestArgs) -> String {
    let mut out = format!(
        "Budget suggestions from {} – {} ({} points): the {}th-percentile day plus {} %, rounded up\n\n",
        view.start.format("%Y-%m-%d %H:%M"),
        view.end.format("%Y-%m-%d %H:%M UTC"),
        view.resolution,
        view.percentile,
        view.margin_percent
    );
    let mut table = Table::new(&[
        "BUDGET",
        "SCOPE",
        "DAYS",
        "MEDIAN DAY",
        "PERCENTILE DAY",
        "BUSIEST DAY",
        "SUGGESTED",
        "LADDER",
    ]);
    for e in &view.suggestions {
        let s = e.suggestion;
        table.row(vec![
            e.budget.clone(),
            s.scope.clone(),
            s.days.to_string(),
            s.median_day.to_string(),
            s.percentile_day.to_string(),
            s.busiest_day.to_string(),
            format!("{} a {}", s.amount, s.period),
            s.thresholds.join(" / "),
        ]);
    }
    out.push_str(&table.render());
    out.push_str("\nWhat each would have done (backtest, enforced):\n");
    let mut table = Table::new(&[
        "BUDGET",
        "RECORDED",
        "GUARDED",
        "REFUSED",
        "EPISODES",
        "WITHIN BUDGET",
    ]);
    for e in &view.suggestions {
        let b = &e.suggestion.backtest;
        table.row(vec![
            e.budget.clone(),
            b.spend_recorded.to_string(),
            b.spend_guarded.to_string(),
            format!("{} of {}", b.refused, b.requests),
            format!(
                "{} ({} throttled)",
                b.episodes.len(),
                b.episodes.iter().filter(|e| e.throttled).count()
            ),
            if b.within_budget { "yes" } else { "no" }.into(),
        ]);
    }
    out.push_str(&table.render());
    out.push_str("\nTo set them (nothing has been written):\n");
    for e in &view.suggestions {
        let s = e.suggestion;
        out.push_str(&format!(
            "  dowguard budgets set {} --scope {} --period {} --amount {} --thresholds {} --owner {}\n",
            e.budget,
            s.scope,
            s.period,
            s.amount.to_decimal().normalize(),
            s.thresholds
                .iter()
                .map(|t| t.trim_end_matches('x'))
                .collect::<Vec<_>>()
                .join(","),
            s.budget.owner
        ));
    }
    if let Some(path) = &args.write {
        out.push_str(&format!(
            "\nWritten to {} (try: dowguard backtest --budgets {}).\n",
            path.display(),
            path.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_budgets_are_named_after_their_scope() {
        assert_eq!(name_for("function:checkout"), "checkout-suggested");
        assert_eq!(name_for("tag:team=shop"), "team-shop-suggested");
        assert_eq!(name_for("rest-stage:a1b2/prod"), "prod-suggested");
        assert_eq!(name_for("account"), "account-suggested");
    }
}
