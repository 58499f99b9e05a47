//! The CLI's errors and the exit code each one maps to.

use dowguard_guard::{FailureKind, GuardError, PortError};

/// Exit codes: documented in `docs/cli.md` and in `dowguard --help`.
pub mod exit {
    /// Success; nothing throttled (status), nothing above the bar (audit).
    pub const OK: u8 = 0;
    /// The command worked and found what scripts look for: a throttled or stopped
    /// target (`status`), an entry point above `--fail-above` (`audit`), a missed
    /// expectation (`simulate --check`).
    pub const FOUND: u8 = 1;
    /// Invalid input: a bad argument or budget field. Nothing was written.
    pub const INVALID: u8 = 2;
    /// A stale update: someone changed the budget (or state) first. Nothing was written.
    pub const CONFLICT: u8 = 3;
    /// The budget or target does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// AWS (or the guard's table) failed or refused a call.
    pub const AWS: u8 = 5;
    /// Across accounts (`--accounts`, `--org`): at least one account or region could
    /// not be read (or written); the others were, and are printed.
    pub const PARTIAL: u8 = 6;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Invalid input, with the field and the fix.
    #[error("{0}")]
    Invalid(String),
    /// A stale update.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A call through a port failed (it names the operation and the resource).
    #[error("{0}")]
    Port(#[from] PortError),
    /// A whole read of the account failed.
    #[error("{0}")]
    Guard(#[from] GuardError),
    /// The price book could not be read.
    #[error("price book: {0}")]
    Prices(#[from] dowguard_domain::PriceBookError),
    /// The simulator failed.
    #[error("{0}")]
    Sim(#[from] dowguard_sim::SimError),
    /// Output could not be written.
    #[error("writing output: {0}")]
    Output(String),
    /// The accounts to run in could not be listed (`--org`).
    #[error("{0}")]
    Accounts(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        let of_port = |e: &PortError| match e.kind {
            FailureKind::Conflict => exit::CONFLICT,
            FailureKind::NotFound => exit::NOT_FOUND,
            _ => exit::AWS,
        };
        match self {
            CliError::Invalid(_) | CliError::Sim(_) => exit::INVALID,
            CliError::Conflict(_) => exit::CONFLICT,
            CliError::NotFound(_) => exit::NOT_FOUND,
            CliError::Port(e) => of_port(e),
            CliError::Guard(
                GuardError::Discovery(e)
                | GuardError::Store(e)
                | GuardError::Metrics(e)
                | GuardError::Account(e),
            ) => of_port(e),
            CliError::Prices(_) | CliError::Output(_) | CliError::Accounts(_) => exit::AWS,
        }
    }

    /// A hint to print under the error, where one helps.
    pub fn hint(&self) -> Option<String> {
        let port = match self {
            CliError::Port(e) => e,
            CliError::Guard(
                GuardError::Discovery(e)
                | GuardError::Store(e)
                | GuardError::Metrics(e)
                | GuardError::Account(e),
            ) => e,
            _ => return None,
        };
        match port.kind {
            FailureKind::NotFound if port.resource.contains("BUDGETS") || port.resource.contains("STATES") => Some(
                "is the guard deployed in this account and region? Pass its table with --table-name (or DOWGUARD_TABLE)"
                    .into(),
            ),
            FailureKind::Unavailable => {
                Some("check --endpoint-url, --region and your network; AWS did not answer".into())
            }
            FailureKind::Refused if port.message.contains("AccessDenied") || port.message.contains("Unrecognized") => {
                Some("check your credentials (--profile, AWS_PROFILE) and their permissions".into())
            }
            _ => None,
        }
    }
}

/// The CLI's result.
pub type CliResult<T> = Result<T, CliError>;
