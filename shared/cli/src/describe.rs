//! Words for the core's data: levels, changes and audit records, as the status and
//! release commands print them.

use dowguard_domain::{BurnRate, Change, Level, Reason};
use dowguard_guard::AuditRecord;
use serde::Serialize;

use crate::output::throttle;

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

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}

/// A change for people: what, from, to.
pub fn change(c: &Change) -> String {
    match c {
        Change::ReservedConcurrency { from, to, .. } => {
            format!("reserved concurrency {} -> {}", opt(*from), opt(*to))
        }
        Change::AsyncInvokeConfig { from, to, .. } => {
            let age = |c: &Option<dowguard_domain::AsyncConfig>| {
                c.as_ref()
                    .and_then(|c| c.max_event_age_s)
                    .map_or("default".into(), |a| format!("{a} s"))
            };
            format!("async event age {} -> {}", age(from), age(to))
        }
        Change::StageThrottle {
            from,
            to,
            from_overrides,
            to_overrides,
            ..
        } => {
            let mut text = format!(
                "stage throttle {} -> {}",
                throttle(from.as_ref()),
                throttle(to.as_ref())
            );
            for (key, t) in to_overrides {
                let before = from_overrides.get(key).copied().flatten();
                text.push_str(&format!(
                    ", {key} {} -> {}",
                    throttle(before.as_ref()),
                    throttle(t.as_ref())
                ));
            }
            text
        }
        Change::UsagePlanLimits {
            from_throttle,
            to_throttle,
            from_quota,
            to_quota,
            ..
        } => format!(
            "plan throttle {} -> {}, quota {} -> {}",
            throttle(from_throttle.as_ref()),
            throttle(to_throttle.as_ref()),
            opt(from_quota.map(|q| q.limit)),
            opt(to_quota.map(|q| q.limit))
        ),
        Change::MoveApiKey {
            key,
            from_plan,
            to_plan,
            ..
        } => format!("API key {key}: usage plan {from_plan} -> {to_plan}"),
        Change::IpSetAddresses {
            ip_set, add, remove, ..
        } => {
            let list = |a: &[String]| {
                let mut shown: Vec<&str> = a.iter().take(3).map(String::as_str).collect();
                let more = a.len().saturating_sub(3);
                let more = (more > 0).then(|| format!("and {more} more"));
                shown.extend(more.as_deref());
                shown.join(", ")
            };
            match (add.is_empty(), remove.is_empty()) {
                (false, true) => format!("IP set {}: block {}", ip_set.name, list(add)),
                (true, false) => format!("IP set {}: unblock {}", ip_set.name, list(remove)),
                _ => format!(
                    "IP set {}: block {}; unblock {}",
                    ip_set.name,
                    list(add),
                    list(remove)
                ),
            }
        }
        Change::Notify { subject, .. } => format!("notice: {subject}"),
    }
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
