//! Changes by others to limits the guard holds: a deploy (`sam deploy` rewrites a
//! function's reservation) or a person changes a target while the guard holds it.
//!
//! The rule, limit by limit (a function's reservation and its async config, a
//! stage's throttle and each method's or route's, a plan's throttle and quota):
//!
//! - A limit changed by someone else is one whose new value is neither what the
//!   inventory had nor what the guard set: the guard's own writes, and the events
//!   that report them, are never drift.
//! - While the guard **holds** the target (throttled or stopped), the new value is
//!   the original the guard restores later: the team's intended value is never
//!   lost. The guard's own limit is set again where the new value is looser than
//!   it (the budget still needs it); a value as tight or tighter than the guard's
//!   is kept as it is. Only `dowguard release` lifts a hold on purpose.
//! - While the guard is **restoring** the originals, the new value becomes the
//!   original, and nothing is set again.
//! - A target the guard does not hold just has new limits.
//!
//! [`judge`] is pure: the shell reads the stored state and the limits before and
//! after, stores the new state (the one sanctioned replacement of a held restore
//! point) before applying [`Drift::Held::changes`], and audits the change under
//! its author's name (the CloudTrail event's `userIdentity.arn`).

use std::collections::BTreeMap;

use crate::action::{Change, Intent, limit_changes};
use crate::state::{GuardState, Phase, RestorePoint};
use crate::target::{AsyncConfig, Limits, Quota, TargetId, Throttle};

/// A target's limits as read after a change the guard did not (knowingly) make.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The target.
    pub target: &'a TargetId,
    /// Its limits before, as the inventory had them.
    pub before: &'a Limits,
    /// Its limits now, read from AWS.
    pub after: &'a Limits,
    /// Who changed them: the CloudTrail event's principal; `None` when a
    /// reconciliation found the change.
    pub by: Option<&'a str>,
    /// What changed them: the CloudTrail event name, or `reconciliation`.
    pub what: &'a str,
}

/// What a change by someone else means for the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// No limit changed that the guard did not set itself.
    None,
    /// The guard does not hold the target: its new limits are simply its limits.
    NotHeld,
    /// Someone else changed a limit the guard holds or is restoring.
    Held {
        /// The state to store first: the new original in its restore point, and
        /// the limits the guard now holds.
        state: Box<GuardState>,
        /// What to change to set the guard's limits again (empty while restoring,
        /// or when the new value is as tight as the guard's).
        changes: Vec<Change>,
        /// What happened, for the audit trail and the owners.
        summary: String,
    },
}

/// One limit of a target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Reserved,
    Async,
    Throttle,
    Override(String),
    Quota,
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Reserved => "reserved concurrency".into(),
            Key::Async => "async invoke config".into(),
            Key::Throttle => "throttle".into(),
            Key::Override(key) => format!("throttle of {key}"),
            Key::Quota => "quota".into(),
        }
    }
}

/// One limit's value; `Absent` is a method or route without an override.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Reserved(Option<u32>),
    Async(Option<AsyncConfig>),
    Throttle(Option<Throttle>),
    Quota(Option<Quota>),
    Absent,
}

impl Value {
    fn show(&self) -> String {
        match self {
            Value::Reserved(Some(n)) => n.to_string(),
            Value::Throttle(Some(t)) => format!("{}/s burst {}", t.rate_limit.normalize(), t.burst_limit),
            Value::Quota(Some(q)) => format!("{} a {:?}", q.limit, q.period).to_lowercase(),
            Value::Async(Some(c)) => format!(
                "max age {} s, {} retries",
                c.max_event_age_s.map_or("default".into(), |n| n.to_string()),
                c.max_retry_attempts.map_or("default".into(), |n| n.to_string())
            ),
            Value::Reserved(None)
            | Value::Throttle(None)
            | Value::Quota(None)
            | Value::Async(None)
            | Value::Absent => "none".into(),
        }
    }

    /// Whether `self` (someone else's value) lets through no more than `guard`'s.
    fn as_tight_as(&self, guard: &Value) -> bool {
        fn throttle(a: Option<&Throttle>, b: Option<&Throttle>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a.rate_limit <= b.rate_limit && a.burst_limit <= b.burst_limit,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            }
        }
        match (self, guard) {
            (Value::Reserved(a), Value::Reserved(b)) => match (a, b) {
                (Some(a), Some(b)) => a <= b,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            },
            (Value::Throttle(a), Value::Throttle(b)) => throttle(a.as_ref(), b.as_ref()),
            (Value::Throttle(a), Value::Absent) => throttle(a.as_ref(), None),
            (Value::Absent, Value::Throttle(b)) => throttle(None, b.as_ref()),
            (Value::Quota(a), Value::Quota(b)) => match (a, b) {
                (Some(a), Some(b)) => a.period == b.period && a.limit <= b.limit,
                (Some(_), None) | (None, None) => true,
                (None, Some(_)) => false,
            },
            (a, b) => a == b,
        }
    }
}

fn fields(limits: &Limits) -> BTreeMap<Key, Value> {
    match limits {
        Limits::Function {
            reserved_concurrency,
            async_config,
        } => [
            (Key::Reserved, Value::Reserved(*reserved_concurrency)),
            (Key::Async, Value::Async(async_config.clone())),
        ]
        .into(),
        Limits::Stage { throttle, overrides } => {
            let mut out: BTreeMap<Key, Value> = [(Key::Throttle, Value::Throttle(*throttle))].into();
            out.extend(
                overrides
                    .iter()
                    .map(|(k, v)| (Key::Override(k.clone()), Value::Throttle(*v))),
            );
            out
        }
        Limits::UsagePlan { throttle, quota } => [
            (Key::Throttle, Value::Throttle(*throttle)),
            (Key::Quota, Value::Quota(*quota)),
        ]
        .into(),
    }
}

fn value(map: &BTreeMap<Key, Value>, key: &Key) -> Value {
    map.get(key).cloned().unwrap_or(Value::Absent)
}

/// What the guard holds for `key`: a method or route without a throttle of the
/// guard's own gets the stage's (what it would get without an override).
fn guard_value(ours: &BTreeMap<Key, Value>, key: &Key) -> Value {
    match (key, ours.get(key)) {
        (_, Some(v)) => v.clone(),
        (Key::Override(_), None) => value(ours, &Key::Throttle),
        (_, None) => Value::Absent,
    }
}

/// `limits` with the values of `set`.
fn with(limits: &Limits, set: &BTreeMap<Key, Value>) -> Limits {
    let mut out = limits.clone();
    for (key, v) in set {
        match (&mut out, key, v) {
            (
                Limits::Function {
                    reserved_concurrency, ..
                },
                Key::Reserved,
                Value::Reserved(n),
            ) => *reserved_concurrency = *n,
            (Limits::Function { async_config, .. }, Key::Async, Value::Async(c)) => {
                async_config.clone_from(c)
            }
            (
                Limits::Stage { throttle, .. } | Limits::UsagePlan { throttle, .. },
                Key::Throttle,
                Value::Throttle(t),
            ) => {
                *throttle = *t;
            }
            (Limits::Stage { overrides, .. }, Key::Override(k), Value::Throttle(t)) => {
                overrides.insert(k.clone(), *t);
            }
            (Limits::Stage { overrides, .. }, Key::Override(k), Value::Absent) => {
                overrides.remove(k);
            }
            (Limits::UsagePlan { quota, .. }, Key::Quota, Value::Quota(q)) => *quota = *q,
            _ => {}
        }
    }
    out
}

/// The fields someone else moved: changed from `before`, not to the guard's own
/// value, and (while the guard restores) not back to the `original` either.
fn changed_by_them(
    before: &BTreeMap<Key, Value>,
    after: &BTreeMap<Key, Value>,
    ours: &BTreeMap<Key, Value>,
    original: Option<&BTreeMap<Key, Value>>,
) -> Vec<Key> {
    let mut keys: Vec<&Key> = before.keys().chain(after.keys()).chain(ours.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let now = value(after, k);
            now != value(before, k)
                && now != guard_value(ours, k)
                && original.is_none_or(|original| now != value(original, k))
        })
        .cloned()
        .collect()
}

/// What a change by someone else (`observed`) means for a target whose stored
/// state is `state`.
pub fn judge(state: Option<&GuardState>, observed: &Observed<'_>) -> Drift {
    let moved = observed.before != observed.after;
    let (Some(state), true) = (state, moved) else {
        return Drift::None;
    };
    let (Some(rp), Some(applied)) = (&state.restore_point, &state.applied) else {
        return Drift::NotHeld;
    };
    let restoring = match state.phase {
        Phase::Throttled { .. } | Phase::Stopped => false,
        Phase::Recovering => true,
        Phase::Normal | Phase::Watching => return Drift::NotHeld,
    };
    let (before, after) = (fields(observed.before), fields(observed.after));
    let (original, ours) = (fields(&rp.limits), fields(applied));
    let changed = changed_by_them(&before, &after, &ours, restoring.then_some(&original));
    if changed.is_empty() {
        return Drift::None;
    }
    let mut new_original = BTreeMap::new();
    let mut new_applied = BTreeMap::new();
    let mut said = Vec::new();
    for key in &changed {
        let theirs = value(&after, key);
        let guard = guard_value(&ours, key);
        said.push(format!(
            "{} {} → {} (the guard holds {})",
            key.name(),
            value(&before, key).show(),
            theirs.show(),
            guard.show()
        ));
        new_original.insert(key.clone(), theirs.clone());
        if !restoring {
            new_applied.insert(
                key.clone(),
                if theirs.as_tight_as(&guard) { theirs } else { guard },
            );
        }
    }
    let mut next = state.clone();
    next.restore_point = Some(RestorePoint {
        limits: with(&rp.limits, &new_original),
        captured_at: rp.captured_at,
    });
    let held_limits = with(applied, &new_applied);
    next.applied = Some(held_limits.clone());
    let changes = if restoring {
        Vec::new()
    } else {
        limit_changes(observed.target, observed.after, &held_limits, Intent::Tighten)
    };
    let who = observed
        .by
        .unwrap_or("someone (found by a reconciliation, not by an event)");
    let then = if restoring {
        "the guard is restoring the originals: it now restores these values".to_string()
    } else if changes.is_empty() {
        "they are as tight as the guard's, so the guard keeps them and restores them later".to_string()
    } else {
        "the guard sets its own limits again, and restores these values when the budget allows".to_string()
    };
    Drift::Held {
        summary: format!(
            "{target}: {what} by {who} changed {list} while the guard {holds} it ({phase}). These values are now the originals; {then}. Only `dowguard release` lifts a hold on purpose.",
            target = observed.target,
            what = observed.what,
            list = said.join(", "),
            holds = if restoring { "restores" } else { "holds" },
            phase = state.phase.name(),
        ),
        state: Box::new(next),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::*;
    use crate::budget::Mode;
    use crate::target::FunctionName;

    fn function(reserved: Option<u32>, age: Option<u32>) -> Limits {
        Limits::Function {
            reserved_concurrency: reserved,
            async_config: age.map(|s| AsyncConfig {
                max_event_age_s: Some(s),
                max_retry_attempts: Some(0),
                on_success: None,
                on_failure: None,
            }),
        }
    }

    fn held(phase: Phase, original: Limits, applied: Limits) -> GuardState {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
        let mut state = GuardState::new(t0, Mode::Enforce);
        state.phase = phase;
        state.restore_point = Some(RestorePoint {
            limits: original,
            captured_at: t0,
        });
        state.applied = Some(applied);
        state
    }

    fn checkout() -> TargetId {
        TargetId::parse("function:checkout").unwrap()
    }

    const DEPLOY: &str = "arn:aws:sts::123456789012:assumed-role/cfn-deploy/CloudFormation";

    fn observe<'a>(target: &'a TargetId, before: &'a Limits, after: &'a Limits) -> Observed<'a> {
        Observed {
            target,
            before,
            after,
            by: Some(DEPLOY),
            what: "PutFunctionConcurrency20171031",
        }
    }

    #[test]
    fn a_deploy_during_an_attack_becomes_the_original_and_the_guards_limit_is_set_again() {
        let state = held(
            Phase::Throttled { level: 2 },
            function(Some(50), None),
            function(Some(5), None),
        );
        let id = checkout();
        let (before, after) = (function(Some(5), None), function(Some(80), None));
        let Drift::Held {
            state: next,
            changes,
            summary,
        } = judge(Some(&state), &observe(&id, &before, &after))
        else {
            panic!("a held limit changed by a deploy is drift");
        };
        assert_eq!(
            next.restore_point.as_ref().map(|rp| &rp.limits),
            Some(&function(Some(80), None)),
            "the deploy's value is the original to restore"
        );
        assert_eq!(next.applied, Some(function(Some(5), None)));
        assert_eq!(next.phase, Phase::Throttled { level: 2 }, "the hold stays");
        assert_eq!(
            changes,
            vec![Change::ReservedConcurrency {
                function: FunctionName::parse("checkout").unwrap(),
                from: Some(80),
                to: Some(5)
            }]
        );
        assert!(summary.contains(DEPLOY), "{summary}");
        assert!(summary.contains("reserved concurrency 5 → 80"), "{summary}");
    }

    #[test]
    fn a_change_to_a_target_the_guard_does_not_hold_is_not_drift() {
        let id = checkout();
        let (before, after) = (function(Some(50), None), function(Some(80), None));
        assert_eq!(judge(None, &observe(&id, &before, &after)), Drift::None);
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
        let normal = GuardState::new(t0, Mode::Enforce);
        assert_eq!(
            judge(Some(&normal), &observe(&id, &before, &after)),
            Drift::NotHeld
        );
        let mut watching = normal;
        watching.phase = Phase::Watching;
        assert_eq!(
            judge(Some(&watching), &observe(&id, &before, &after)),
            Drift::NotHeld
        );
    }

    #[test]
    fn the_guards_own_change_is_not_drift() {
        let state = held(
            Phase::Throttled { level: 1 },
            function(Some(50), None),
            function(Some(5), None),
        );
        let id = checkout();
        // The event of the guard's own PutFunctionConcurrency, read before the pass
        // wrote the inventory.
        let (before, after) = (function(Some(50), None), function(Some(5), None));
        assert_eq!(judge(Some(&state), &observe(&id, &before, &after)), Drift::None);
    }

    #[test]
    fn a_value_tighter_than_the_guards_is_kept_and_becomes_the_original() {
        let state = held(Phase::Stopped, function(Some(50), None), function(Some(5), None));
        let id = checkout();
        let (before, after) = (function(Some(5), None), function(Some(0), None));
        let Drift::Held {
            state: next, changes, ..
        } = judge(Some(&state), &observe(&id, &before, &after))
        else {
            panic!("drift");
        };
        assert!(changes.is_empty(), "a tighter value is not loosened: {changes:?}");
        assert_eq!(next.applied, Some(function(Some(0), None)));
        assert_eq!(
            next.restore_point.map(|rp| rp.limits),
            Some(function(Some(0), None))
        );
    }

    #[test]
    fn only_the_limit_someone_changed_becomes_original() {
        // The guard holds the reservation and the async config; a person changes
        // the async config only.
        let state = held(
            Phase::Throttled { level: 1 },
            function(Some(50), Some(3_600)),
            function(Some(5), Some(60)),
        );
        let id = checkout();
        let (before, after) = (function(Some(5), Some(60)), function(Some(5), Some(900)));
        let Drift::Held {
            state: next, changes, ..
        } = judge(Some(&state), &observe(&id, &before, &after))
        else {
            panic!("drift");
        };
        assert_eq!(
            next.restore_point.map(|rp| rp.limits),
            Some(function(Some(50), Some(900))),
            "the reservation's original is kept"
        );
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(&changes[0], Change::AsyncInvokeConfig { .. }));
    }

    #[test]
    fn a_change_while_restoring_becomes_the_original_and_nothing_is_set() {
        let state = held(
            Phase::Recovering,
            function(Some(50), None),
            function(Some(5), None),
        );
        let id = checkout();
        let (before, after) = (function(Some(5), None), function(Some(120), None));
        let Drift::Held {
            state: next, changes, ..
        } = judge(Some(&state), &observe(&id, &before, &after))
        else {
            panic!("drift");
        };
        assert!(changes.is_empty());
        assert_eq!(
            next.restore_point.map(|rp| rp.limits),
            Some(function(Some(120), None))
        );
        // The guard's own restore is not drift.
        let restored = function(Some(50), None);
        assert_eq!(
            judge(Some(&state), &observe(&id, &before, &restored)),
            Drift::None
        );
    }

    #[test]
    fn a_stage_override_someone_adds_is_an_original_too() {
        let throttle = |rate: i64, burst: u32| {
            Some(Throttle {
                rate_limit: Decimal::new(rate, 0),
                burst_limit: burst,
            })
        };
        let original = Limits::stage(throttle(1_000, 2_000));
        let ours = Limits::stage(throttle(10, 20));
        let state = held(Phase::Throttled { level: 1 }, original, ours.clone());
        let id = TargetId::parse("rest-stage:a1b2c3/prod").unwrap();
        let mut after = ours.clone();
        if let Limits::Stage { overrides, .. } = &mut after {
            overrides.insert("~1orders/GET".into(), throttle(500, 1_000));
        }
        let Drift::Held {
            state: next, changes, ..
        } = judge(Some(&state), &observe(&id, &ours, &after))
        else {
            panic!("drift");
        };
        let Some(Limits::Stage { overrides, .. }) = next.restore_point.map(|rp| rp.limits) else {
            panic!("stage limits");
        };
        assert_eq!(overrides.get("~1orders/GET"), Some(&throttle(500, 1_000)));
        // The new method throttle would let that method past the guard's stage
        // throttle: the guard holds the method to the stage's throttle.
        let [Change::StageThrottle { to_overrides, .. }] = changes.as_slice() else {
            panic!("{changes:?}");
        };
        assert_eq!(to_overrides.get("~1orders/GET"), Some(&throttle(10, 20)));
    }
}
