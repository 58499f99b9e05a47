//! The `dowguard` command line. For now it has one subcommand, `simulate`, which
//! replays a scenario (a TOML file or a built-in name) against the guard and the
//! baseline strategies and prints what each one cost; budgets, status and audit
//! subcommands come later.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dowguard_sim::{SimError, library, plot};

/// dowguard: a Denial-of-Wallet guard for serverless applications.
#[derive(Debug, Parser)]
#[command(name = "dowguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a scenario against dowguard and the baseline strategies.
    Simulate(SimulateArgs),
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// A scenario file (TOML) or the name of a built-in scenario.
    #[arg(required_unless_present_any = ["library", "list"])]
    scenario: Option<String>,
    /// Run every built-in scenario and print one table.
    #[arg(long, conflicts_with = "scenario")]
    library: bool,
    /// List the built-in scenarios.
    #[arg(long)]
    list: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a plot of cumulative spend vs budget per strategy (SVG).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Exit with status 1 when a scenario's expectations are missed.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => match simulate(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Runs the subcommand; `Ok(false)` when `--check` finds a missed expectation.
fn simulate(args: &SimulateArgs) -> Result<bool, SimError> {
    if args.list {
        for (name, _) in library::SCENARIOS {
            let scenario = library::load(name)?;
            println!("{name:16} {}", scenario.description);
        }
        return Ok(true);
    }
    let reports = if args.library {
        library::run_all()?.0
    } else {
        let name = args.scenario.as_deref().unwrap_or_default();
        vec![dowguard_sim::run(&library::resolve(name)?)]
    };
    if let Some(path) = &args.plot {
        // With --library the plot is the flood scenario's (the README's picture).
        let chosen = reports
            .iter()
            .find(|r| !args.library || r.scenario == "flood")
            .or(reports.first());
        if let Some(report) = chosen {
            plot::write_svg(report, path)?;
        }
    }
    if args.json {
        let text = if args.library {
            serde_json::to_string_pretty(&reports)
        } else {
            serde_json::to_string_pretty(&reports[0])
        }
        .map_err(|e| SimError::Plot(format!("JSON: {e}")))?;
        println!("{text}");
    } else if args.library {
        print!("{}", dowguard_sim::report::library_table(&reports));
    } else {
        print!("{}", reports[0].table());
    }
    let all_met = reports.iter().all(|r| r.verdicts().iter().all(|v| v.met));
    Ok(!args.check || all_met)
}
