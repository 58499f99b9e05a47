//! The `dowguard` command line: budgets for finance owners, `status` and `release`
//! for on-call engineers, the Denial-of-Wallet exposure `audit` for platform teams,
//! the guard's own cost, shell completions, and the attack simulator.
//!
//! Arguments are parsed here; each command lives in its module of the
//! `dowguard_cli` library.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use dowguard_cli::context::{Context, Global};
use dowguard_cli::error::{CliError, CliResult, exit};
use dowguard_cli::{audit, backtest, budgets, fanout, guard_cost, release, simulate, status};

const AFTER_HELP: &str = "\
Configuration:
  Credentials and region come from the usual AWS places: --profile / AWS_PROFILE,
  --region / AWS_REGION, AWS_ACCESS_KEY_ID and friends, ~/.aws/config. --endpoint-url
  (or AWS_ENDPOINT_URL) sends every call elsewhere, e.g. to a local AWS server.
  The guard's table is --table-name, else DOWGUARD_TABLE, else `dowguard`.

Exit codes:
  0  success (status: nothing throttled; audit: nothing above --fail-above)
  1  status: a target is throttled or stopped; audit: an entry point is above --fail-above;
     simulate --check: an expectation was missed; backtest: the guard would have throttled
  2  invalid input (bad argument or budget field); nothing was written
  3  conflict: someone changed the budget or state first; nothing was written
  4  not found: no such budget or target
  5  AWS or the guard's table failed or refused a call
  6  --accounts / --org: some accounts or regions could not be read; the others are printed

Examples:
  dowguard budgets set checkout-daily --scope function:checkout --period day --amount 240 \\
      --owner finance@example.com --mode enforce
  dowguard status
  dowguard release function:checkout --for 2h
  dowguard audit --fail-above '$50/h'
  dowguard backtest --days 14                  # before --mode enforce: what would it have done?
  dowguard status --org --regions us-east-1,eu-west-1 --external-id \"$EXTERNAL_ID\"   # every account";

/// dowguard: a Denial-of-Wallet guard for serverless applications.
#[derive(Debug, Parser)]
#[command(name = "dowguard", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set, list, show, remove budgets and read their history.
    #[command(subcommand)]
    Budgets(budgets::BudgetsCommand),
    /// Where every budget stands and what the guard holds (exit 1 if anything is throttled).
    #[command(after_help = "\
Examples:
  dowguard status
  dowguard status function:checkout
  dowguard status --output json | jq '.budgets[] | {budget, spent, projected}'
  dowguard status >/dev/null || page-the-on-call   # exit code 1: something is throttled")]
    Status {
        /// Only the budgets covering this target (function:NAME, rest-stage:API/STAGE, …).
        target: Option<String>,
    },
    /// Restore a target's original limits now and hold off re-tightening.
    Release(release::ReleaseArgs),
    /// Rank every entry point's Denial-of-Wallet exposure and recommend limits.
    Audit(audit::AuditArgs),
    /// What the guard would have done to the recorded traffic (exit 1: it would throttle).
    Backtest(backtest::BacktestArgs),
    /// What the guard itself costs a month at the current settings.
    GuardCost(guard_cost::GuardCostArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  dowguard completions bash > /etc/bash_completion.d/dowguard\n  dowguard completions zsh > \"${fpath[1]}/_dowguard\""
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Replay a scenario against dowguard and the baseline strategies.
    Simulate(simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            e.exit_code()
        }
    };
    ExitCode::from(code)
}

/// `--accounts` / `--org`: the reading commands and `budgets set`, in every account
/// and region.
fn fan_out(global: &Global, command: &Command) -> CliResult<u8> {
    let read = match command {
        Command::Status { target } => fanout::Read::Status(target.as_deref()),
        Command::Audit(args) => fanout::Read::Audit(args),
        Command::GuardCost(args) => fanout::Read::GuardCost(args),
        Command::Budgets(budgets::BudgetsCommand::List) => fanout::Read::BudgetsList,
        Command::Budgets(budgets::BudgetsCommand::Set(args)) => fanout::Read::BudgetsSet(args),
        _ => {
            return Err(CliError::Invalid(
                "--accounts and --org work with status, audit, guard-cost, budgets list and budgets set"
                    .into(),
            ));
        }
    };
    runtime()?.block_on(fanout::run(global, read))
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Output(format!("starting the async runtime: {e}")))
}

fn run(cli: Cli) -> CliResult<u8> {
    if !cli.global.fan_out.regions.is_empty() && !cli.global.fan_out.active() {
        return Err(CliError::Invalid(
            "--regions runs across accounts: give --accounts FILE or --org with it (or use --region)".into(),
        ));
    }
    match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        // Offline: a template needs no credentials, no network and no table, so it
        // is read before any AWS configuration is loaded.
        Command::Audit(args) if args.template.is_some() => audit::run_template(&cli.global, &args),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "dowguard", &mut std::io::stdout());
            Ok(exit::OK)
        }
        command if cli.global.fan_out.active() => fan_out(&cli.global, &command),
        command => runtime()?.block_on(async {
            let ctx = Context::new(cli.global).await?;
            match command {
                Command::Budgets(c) => budgets::run(&ctx, &c).await.map(|()| exit::OK),
                Command::Status { target } => status::run(&ctx, target.as_deref()).await,
                Command::Release(args) => release::run(&ctx, &args).await.map(|()| exit::OK),
                Command::Audit(args) => audit::run(&ctx, &args).await,
                Command::Backtest(args) => backtest::run(&ctx, &args).await,
                Command::GuardCost(args) => guard_cost::run(&ctx, &args).await.map(|()| exit::OK),
                Command::Simulate(_) | Command::Completions { .. } => Ok(exit::OK),
            }
        }),
    }
}
