//! dowguard's attack simulator: it replays one-minute traffic against simulated
//! Lambda functions and API Gateway stages and lets several cost-guard strategies
//! defend the same trace side by side, then reports what each one cost.
//!
//! The dowguard strategy calls the very [`dowguard_domain::decide`] the Lambdas
//! call, on a simulated clock, with a simulated metrics source (CloudWatch's delay
//! is the core's own `metric_delay_minutes`) and a simulated actuator that applies
//! the returned actions to the simulated targets. The baselines (unguarded, an AWS
//! Budgets action, Cost Anomaly Detection and a static kill switch) are simple
//! models documented in `docs/simulator.md`. Money is exact ([`Money`]) in every
//! total; floats appear only in the plot.
//!
//! A run is: [`Scenario::from_toml`] (or [`library::load`]) → [`run`] → [`Report`],
//! which prints as a table ([`Report::table`]), serialises to JSON, plots
//! ([`plot::write_svg`]) and checks itself against the scenario's expectations
//! ([`Report::verdicts`]).

pub mod backtest;
pub mod callers;
pub mod engine;
pub mod episodes;
pub mod library;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod suggest;
pub mod traffic;

pub use dowguard_domain::Money;
pub use engine::run;
pub use episodes::Episode;
pub use report::{Report, StrategyReport, Verdict};
pub use scenario::{Expectations, Scenario, ScenarioClass, SimTarget};
pub use traffic::{CsvTrace, Demand};

/// Everything that can go wrong loading or running a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario file is not valid TOML for the simulator.
    #[error("scenario {file}: {message}")]
    Syntax {
        /// Which file.
        file: String,
        /// What the TOML parser said.
        message: String,
    },
    /// A scenario field has a value the simulator cannot use.
    #[error("scenario field `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A line of a CSV trace is wrong.
    #[error("{file} line {line}: {reason}")]
    Csv {
        /// Which file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The price book could not be loaded.
    #[error(transparent)]
    Prices(#[from] dowguard_domain::PriceBookError),
    /// A name given on the command line is neither a file nor a built-in scenario.
    #[error("`{0}` is neither a scenario file nor a built-in scenario (built-in: {1})")]
    UnknownScenario(String, String),
    /// The plot could not be drawn.
    #[error("plot: {0}")]
    Plot(String),
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SimError {
    SimError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}
