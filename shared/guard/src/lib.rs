//! dowguard's service layer, between the pure core and the AWS adapters.
//!
//! [`ports`] declares the narrow capabilities the guard needs (discovery, metrics,
//! budget and state stores, audit, Lambda and API Gateway controls, the ranking of a
//! stage's callers and the controls that hold one, notices), each speaking domain
//! types only. [`evaluate::Guard`] runs one pass of the guard over
//! any implementation of them, and [`executor::Executor`] applies actions.
//! [`inventory`] keeps the targets and their limits in the guard's table, so that a
//! pass reads them there instead of listing the account. The
//! Lambdas and the CLI plug in the AWS adapters; tests and the simulator plug in
//! [`memory`].

pub mod alarms;
pub mod assess;
pub mod audit;
pub mod budget_edit;
pub mod evaluate;
pub mod executor;
pub mod inventory;
pub mod measure;
pub mod memory;
pub mod ports;
pub mod release;

pub use assess::{Assessment, assess};
pub use audit::{AuditRecord, Outcome};
pub use evaluate::{Guard, GuardError, PassReport, covered_targets};
pub use executor::Executor;
pub use ports::{FailureKind, PortError, PortResult, Versioned};
