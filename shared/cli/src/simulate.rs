//! `dowguard simulate`: replays a scenario (a TOML file or a built-in name) against
//! the guard and the baseline strategies and prints what each one cost.

use std::path::PathBuf;

use dowguard_sim::{SimError, library, plot};

use crate::error::{CliResult, exit};

/// `dowguard simulate`
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
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

/// Runs the subcommand; exit code 1 when `--check` finds a missed expectation.
pub fn run(args: &SimulateArgs) -> CliResult<u8> {
    if args.list {
        for (name, _) in library::SCENARIOS {
            let scenario = library::load(name)?;
            println!("{name:16} {}", scenario.description);
        }
        return Ok(exit::OK);
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
    Ok(if !args.check || all_met {
        exit::OK
    } else {
        exit::FOUND
    })
}
