//! How long a backtest of 15 days of one-minute history for 100 targets takes once
//! the history is fetched: the replay of the dowguard strategy and the unguarded
//! account beside it (target: under 10 s). Run with
//! `cargo bench -p dowguard-sim --bench backtest`.

#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Instant;

use dowguard_sim::Scenario;
use dowguard_sim::backtest::{self, History, Replay};

mod common;

fn main() -> ExitCode {
    // The history: the benchmark account's 15 days, with a six-hour flood on one
    // function, as CloudWatch would have recorded them.
    let account = common::hundred_functions("backtest-100-targets", "15d", 1, 1_000_000, "6h");
    let scenario = match Scenario::from_toml(&account, "backtest bench", |_| {
        Err(dowguard_sim::SimError::Plot("no CSV".into()))
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // What the fetch hands over: every recorded minute of every target.
    let history = History::of_scenario(&scenario);
    let replay = Replay {
        guard: scenario.guard.clone(),
        prices: scenario.prices.clone(),
        account_concurrency: scenario.account_concurrency,
    };
    let clock = Instant::now();
    let replayed = match backtest::scenario(&history, &scenario.budgets, &replay) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = backtest::run(&replayed, &scenario.budgets, 1);
    let elapsed = clock.elapsed();
    let episodes: usize = result.budgets.iter().map(|b| b.episodes.len()).sum();
    println!(
        "backtest, 15 days of one-minute points x {} targets ({} points): {:.1} s after the fetch (target: < 10 s){}; {} episode(s), {} limit change(s)",
        history.targets.len(),
        history.recorded.len(),
        elapsed.as_secs_f64(),
        if elapsed.as_secs() < 10 { "" } else { " MISSED" },
        episodes,
        result.tightenings
    );
    ExitCode::SUCCESS
}
