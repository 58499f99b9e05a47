//! The built-in scenario library: attacks (flood, ramp, pulse, leech, spread,
//! recursive loop, async flood, REST floods from one stolen key, 300 addresses and
//! a botnet) and benign traffic (diurnal, launch spike, organic growth, a busy
//! API), each a TOML file under `scenarios/` compiled into the binary.

use std::path::Path;

use crate::report::{Report, library_table};
use crate::scenario::Scenario;
use crate::{SimError, run};

/// Every built-in scenario: (name, TOML text).
pub const SCENARIOS: &[(&str, &str)] = &[
    ("flood", include_str!("../scenarios/flood.toml")),
    ("ramp", include_str!("../scenarios/ramp.toml")),
    ("pulse", include_str!("../scenarios/pulse.toml")),
    ("leech", include_str!("../scenarios/leech.toml")),
    ("spread", include_str!("../scenarios/spread.toml")),
    ("recursive-loop", include_str!("../scenarios/recursive-loop.toml")),
    ("async-flood", include_str!("../scenarios/async-flood.toml")),
    ("rest-flood", include_str!("../scenarios/rest-flood.toml")),
    ("stolen-key", include_str!("../scenarios/stolen-key.toml")),
    ("address-flood", include_str!("../scenarios/address-flood.toml")),
    ("botnet", include_str!("../scenarios/botnet.toml")),
    ("diurnal", include_str!("../scenarios/diurnal.toml")),
    ("thousand", include_str!("../scenarios/thousand.toml")),
    ("five-minute", include_str!("../scenarios/five-minute.toml")),
    ("launch-spike", include_str!("../scenarios/launch-spike.toml")),
    ("organic-growth", include_str!("../scenarios/organic-growth.toml")),
    ("busy-api", include_str!("../scenarios/busy-api.toml")),
];

/// The names of the built-in scenarios.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|(name, _)| *name).collect()
}

/// Loads a built-in scenario by name.
pub fn load(name: &str) -> Result<Scenario, SimError> {
    let (_, text) = SCENARIOS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| SimError::UnknownScenario(name.to_string(), names().join(", ")))?;
    Scenario::from_toml(text, &format!("built-in {name}"), |csv| {
        Err(crate::invalid(
            "csv",
            format!("built-in scenarios carry no CSV trace (`{csv}`)"),
        ))
    })
}

/// A scenario file if `arg` names one, else the built-in scenario of that name.
pub fn resolve(arg: &str) -> Result<Scenario, SimError> {
    let path = Path::new(arg);
    if path.is_file() {
        Scenario::from_path(path)
    } else if SCENARIOS.iter().any(|(n, _)| *n == arg) {
        load(arg)
    } else {
        Err(SimError::UnknownScenario(arg.to_string(), names().join(", ")))
    }
}

/// Runs every built-in scenario; returns the reports and one table of them all.
pub fn run_all() -> Result<(Vec<Report>, String), SimError> {
    let mut reports = Vec::new();
    for (name, _) in SCENARIOS {
        reports.push(run(&load(name)?));
    }
    let table = library_table(&reports);
    Ok((reports, table))
}
