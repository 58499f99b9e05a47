//! How long a year of one-minute traffic for 100 targets takes to simulate, with
//! every strategy, at a 1-minute and a 5-minute schedule; and what one decision
//! pass over 100 targets costs, as a multiple of a bare walk over the same pass's
//! inputs (the target; absolute times change with the machine). Run with
//! `cargo bench -p dowguard-sim --bench year`.

#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Instant;

use dowguard_sim::engine::Strategy;
use dowguard_sim::{Scenario, run};

mod common;

/// The benchmark account over a year, its flood 30 minutes a week at 300,000
/// requests a minute.
fn scenario(interval: u32) -> String {
    common::hundred_functions("year-100-targets", "365d", interval, 300_000, "30m")
}

fn main() -> ExitCode {
    for interval in [5, 1] {
        let text = scenario(interval);
        let scenario = match Scenario::from_toml(&text, "year bench", |_| unreachable_csv()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let clock = Instant::now();
        let report = run(&scenario);
        let elapsed = clock.elapsed();
        let Some(dg) = report.strategy(Strategy::Dowguard) else {
            return ExitCode::FAILURE;
        };
        let per_call = dg.decide_time.as_nanos() / u128::from(dg.evaluations.max(1));
        println!(
            "year x {} targets, schedule every {interval} min: {} ms for all five strategies \
             ({} decision passes, {} us each, {} ms in the core); dowguard spend {}, overspend {}",
            scenario.targets.len(),
            elapsed.as_millis(),
            dg.evaluations,
            per_call / 1_000,
            dg.decide_time.as_millis(),
            dg.spend,
            dg.overspend,
        );
        // The ratio is the target; the times above are information.
        let hundredths = dg.decide_time.as_nanos() * 100 / dg.walk_time.as_nanos().max(1);
        println!(
            "year pass, every {interval} min: {}.{:02}\u{d7} a bare walk of its inputs (target: <= 3\u{d7}){}",
            hundredths / 100,
            hundredths % 100,
            if hundredths <= 300 { "" } else { " MISSED" }
        );
    }
    ExitCode::SUCCESS
}

fn unreachable_csv() -> Result<(String, String), dowguard_sim::SimError> {
    Err(dowguard_sim::SimError::Plot(
        "the year scenario has no CSV".into(),
    ))
}
