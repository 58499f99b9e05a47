//! Audit records: every decided action with its outcome, the figures behind it and
//! who acted.

use chrono::{DateTime, Utc};
use dowguard_domain::{Action, TargetId};
use serde::{Deserialize, Serialize};

use crate::ports::FailureKind;

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// AWS accepted the change (or the notice was sent).
    Applied,
    /// Not attempted, and why (dry-run, state not saved, …).
    Skipped {
        /// Why not.
        why: String,
    },
    /// Attempted and refused or failed.
    Failed {
        /// The kind of failure.
        kind: FailureKind,
        /// The error, naming the call and the resource.
        error: String,
    },
}

impl Outcome {
    /// A short word for tables.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Applied => "ok",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the action was applied (or skipped).
    pub at: DateTime<Utc>,
    /// The target.
    pub target: TargetId,
    /// Who acted: `evaluator`, `alarm-responder`, `cli:<user>`.
    pub actor: String,
    /// The action, with its before/after and reason.
    pub action: Action,
    /// What happened.
    pub outcome: Outcome,
}
