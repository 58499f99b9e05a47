//! Words for the core's data: levels, changes and audit records, as the status and
//! release commands print them.

use dowguard_domain::{BurnRate, Change, Level, Reason};
use dowguard_guard::AuditRecord;
use serde::Serialize;

/// A burn rate for people; an exhausted budget has no finite rate.
pub fn burn(b: BurnRate) -> String {
    if b.0 == i64::MAX {
        "exhausted".into()
    } else {
        b.to_string()
    }
}

/// The figures behind a decision, in one line.
pub fn reason(r: &Reason) -> String {
    match &r.budget {
        Some(budget) => format!(
            "{:?} on budget {budget}: spent {} of {}, projected {}, demand {} short / {} long vs the remaining budget",
            r.rule,
            r.spent,
            r.amount,
            r.projected,
            burn(r.burn_short),
            burn(r.burn_long)
        ),
        None => format!("{:?}", r.rule),
    }
}

/// A level for people.
pub fn level(l: Level) -> String {
    match l {
        Level::Normal => "normal".into(),
        Level::Watch => "watch".into(),
        Level::Throttle(n) => format!("throttle({n})"),
        Level::Stop => "stop".into(),
    }
}

/// A change for people: what, from, to ([`Change::describe`]).
pub fn change(c: &Change) -> String {
    c.describe()
}

/// An audit record, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who.
    pub actor: String,
    /// tighten, restore or notify.
    pub intent: dowguard_domain::Intent,
    /// What changed.
    pub what: String,
    /// ok, skipped or failed.
    pub outcome: String,
    /// The rule and the figures behind it.
    pub why: String,
}

impl ActionView {
    /// The view of a record.
    pub fn of(r: &AuditRecord) -> ActionView {
        let outcome = match &r.outcome {
            dowguard_guard::Outcome::Applied => "ok".to_string(),
            dowguard_guard::Outcome::Skipped { why } => format!("skipped: {why}"),
            dowguard_guard::Outcome::Failed { error, .. } => format!("failed: {error}"),
        };
        let why = reason(&r.action.reason);
        ActionView {
            at: r.at,
            actor: r.actor.clone(),
            intent: r.action.intent,
            what: change(&r.action.change),
            outcome,
            why,
        }
    }
}
