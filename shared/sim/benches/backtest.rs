//! How long a backtest of 15 days of one-minute history for 100 targets takes once
//! the history is fetched: the replay of the dowguard strategy and the unguarded
//! account beside it (target: under 10 s). Run with
//! `cargo bench -p dowguard-sim --bench backtest`.

#![allow(missing_docs)]

use std::process::ExitCode;
use std::time::Instant;

use dowguard_sim::Scenario;
use dowguard_sim::backtest::{self, History, Replay};

/// The history: 100 functions (two teams) with diurnal traffic and a six-hour
/// flood on one of them, as CloudWatch would have recorded it for 15 days.
const ACCOUNT: &str = r#"
name = "backtest-100-targets"
duration = "15d"

[[targets]]
id = "function:shop"
count = 50
memory_mb = 512
avg_duration_ms = 120
tags = { team = "shop" }

[[targets]]
id = "function:search"
count = 50
memory_mb = 1024
arch = "arm64"
avg_duration_ms = 80
tags = { team = "search" }

[[budgets]]
id = "account-monthly"
scope = "account"
period = "month"
amount = "25000"

[[budgets]]
id = "shop-daily"
scope = "tag:team=shop"
period = "day"
amount = "450"

[[budgets]]
id = "search-daily"
scope = "tag:team=search"
period = "day"
amount = "450"

[[traffic]]
target = "function:shop-*"
role = "legit"
shape = "diurnal"
rpm = 1000
peak_rpm = 4000

[[traffic]]
target = "function:search-*"
role = "legit"
shape = "diurnal"
rpm = 1000
peak_rpm = 4000
peak_hour = 20

[[traffic]]
target = "function:shop-07"
role = "attack"
shape = "pulse"
rpm = 1000000
on = "6h"
off = "7d"
from = "3d"
"#;

fn main() -> ExitCode {
    let scenario = match Scenario::from_toml(ACCOUNT, "backtest bench", |_| {
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
