//! The `dowguard` command line as a library: one module per command, plus the
//! context (AWS configuration, adapters, clock, caller identity), the errors and
//! their exit codes, and the output helpers. `src/main.rs` only parses arguments
//! and dispatches. [`template`] reads a CloudFormation or SAM template for
//! `audit --template`, offline.
//!
//! [`fanout`] runs the reading commands (and `budgets set`) across many accounts
//! and regions.
//!
//! Every AWS-facing command builds the same adapters as the Lambdas
//! ([`dowguard_adapters::AwsStack`]) and computes with the same core.

pub mod audit;
pub mod backtest;
pub mod budgets;
pub mod context;
pub mod describe;
pub mod error;
pub mod fanout;
pub mod guard_cost;
pub mod output;
pub mod release;
pub mod simulate;
pub mod status;
pub mod suggest;
pub mod template;
