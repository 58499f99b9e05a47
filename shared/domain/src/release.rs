//! Manual release: what an on-call engineer's `dowguard release` does to a target,
//! as data. The originals come back from the restore point, and a hold keeps the
//! guard from tightening the target again until it ends ([`crate::decide()`] honours
//! `hold_until`: a held target is capped at "watch").
//!
//! Pure, like the rest of the core: the shell saves the returned state first, then
//! applies the returned actions through the same executor as the guard.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use dowguard_domain::{
//!     GuardState, Limits, Mode, Phase, ReleaseOutcome, RestorePoint, Target, TargetId, TargetSpec, Throttle, release,
//! };
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let tight = Limits::stage(Some(Throttle { rate_limit: 10.into(), burst_limit: 10 }));
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), tight.clone());
//! let held = GuardState {
//!     phase: Phase::Stopped,
//!     restore_point: Some(RestorePoint { limits: Limits::stage(None), captured_at: now }),
//!     applied: Some(tight),
//!     ..GuardState::new(now, Mode::Enforce)
//! };
//! let ReleaseOutcome::Released(done) = release(&stage, Some(&held), now, Duration::hours(2), "cli:ana") else {
//!     panic!("released");
//! };
//! assert_eq!(done.originals, Limits::stage(None));
//! assert_eq!(done.state.phase, Phase::Recovering);
//! assert_eq!(done.state.hold_until, Some(now + Duration::hours(2)));
//! // One change that puts the stage's own throttle back, then one notice.
//! assert_eq!(done.actions.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{DateTime, Duration, Utc};

use crate::action::{Action, Change, Intent, Reason, limit_changes};
use crate::budget::Mode;
use crate::money::Money;
use crate::notice::Notice;
use crate::state::{GuardState, Phase};
use crate::target::{Limits, Target, TargetId};

/// The longest hold a release may ask for.
pub const MAX_HOLD: Duration = Duration::days(31);

/// What releasing a target comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// The guard never changed this target (no restore point): nothing to restore,
    /// nothing is written.
    Untouched,
    /// The target is released.
    Released(Box<Release>),
}

/// A release: the state to save, then the actions to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The target's state after the release: recovering, holding until `hold_until`.
    pub state: GuardState,
    /// The originals the target gets back (from the restore point).
    pub originals: Limits,
    /// The changes that put the originals back (empty when the limits already match
    /// or when the guard only held the target in dry-run), then one notice.
    pub actions: Vec<Action>,
}

/// Releases `target` at `now` for `hold`, on behalf of `actor`.
///
/// `state` is the target's stored guard state, if any. The release restores the
/// restore point's limits from whatever the target has now, moves the state to
/// `recovering` (the guard then returns it to `normal` once the originals are seen
/// in place) and holds off tightening until `now + hold` (capped at [`MAX_HOLD`]).
pub fn release(
    target: &Target,
    state: Option<&GuardState>,
    now: DateTime<Utc>,
    hold: Duration,
    actor: &str,
) -> ReleaseOutcome {
    let Some(prev) = state else {
        return ReleaseOutcome::Untouched;
    };
    let Some(restore_point) = prev.restore_point.as_ref() else {
        return ReleaseOutcome::Untouched;
    };
    let hold = hold.clamp(Duration::zero(), MAX_HOLD);
    let until = now + hold;
    let originals = restore_point.limits.clone();
    let mut next = prev.clone();
    // The callers the guard holds go free with the rest.
    let held = std::mem::take(&mut next.held_sources);
    next.phase = Phase::Recovering;
    next.since = now;
    next.calm_since = None;
    next.hold_until = Some(until);

    let reason = Reason::released();
    // What the guard changed is put back only where it changed something: in
    // dry-run it never did, so a drift from the originals is someone else's.
    let apply = prev.mode == Mode::Enforce;
    let action = |change: Change, intent: Intent| Action {
        target: target.id.clone(),
        change,
        intent,
        mode: prev.mode,
        apply: intent == Intent::Notify || apply,
        priority: Money::ZERO,
        reason: reason.clone(),
    };
    let mut actions: Vec<Action> = restore_changes(&target.id, &target.limits, &originals)
        .into_iter()
        .chain(crate::targeted::release(&target.id, &held))
        .map(|c| action(c, Intent::Restore))
        .collect();
    let what = if actions.is_empty() {
        "original limits already in place"
    } else if apply {
        "original limits restored"
    } else {
        "dry-run: nothing was changed"
    };
    let headline = format!(
        "released by {actor} ({what}, was {}); the guard holds off tightening until {}",
        prev.phase.name(),
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let changes = actions.iter().map(|a| a.change.clone()).collect();
    let notice = Notice::new(&target.id, &headline, prev.mode, &reason, changes);
    actions.push(action(
        Change::Notify {
            topic: None,
            subject: format!("dowguard: {} released by {actor}", target.id),
            message: notice.text(),
            notice: Some(Box::new(notice)),
        },
        Intent::Notify,
    ));
    ReleaseOutcome::Released(Box::new(Release {
        state: next,
        originals,
        actions,
    }))
}

/// The changes that take `target` from `from` to `to`, in restore order (reserved
/// concurrency before the async config; a usage plan in one update).
pub fn restore_changes(target: &TargetId, from: &Limits, to: &Limits) -> Vec<Change> {
    limit_changes(target, from, to, Intent::Restore)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::HashMap;

    use crate::Rule;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    use super::*;
    use crate::state::RestorePoint;
    use crate::target::{Arch, AsyncConfig, Quota, QuotaPeriod, TargetSpec, Throttle};
    use crate::{
        AccountUsage, Budget, BudgetSpec, Floors, GuardSettings, Inputs, PriceBook, TargetMetrics, decide,
    };

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0)
            .single()
            .expect("time")
    }

    fn function(reserved: Option<u32>, async_config: Option<AsyncConfig>) -> Target {
        Target {
            id: TargetId::parse("function:checkout").expect("id"),
            spec: TargetSpec::Function {
                memory_mb: 512,
                arch: Arch::X86_64,
                async_invoked: false,
            },
            tags: BTreeMap::new(),
            limits: Limits::Function {
                reserved_concurrency: reserved,
                async_config,
            },
            guarded: true,
            usage_plans: Default::default(),
        }
    }

    fn held(original: Limits, applied: Limits, mode: Mode) -> GuardState {
        GuardState {
            phase: Phase::Throttled { level: 2 },
            restore_point: Some(RestorePoint {
                limits: original,
                captured_at: at(9, 0),
            }),
            applied: Some(applied),
            peak_level: 2,
            version: 7,
            ..GuardState::new(at(9, 0), mode)
        }
    }

    fn changes(actions: &[Action]) -> Vec<&Change> {
        actions
            .iter()
            .filter(|a| a.intent == Intent::Restore)
            .map(|a| &a.change)
            .collect()
    }

    #[test]
    fn restores_original_concurrency_and_async_config_and_holds() {
        let original = Limits::Function {
            reserved_concurrency: None,
            async_config: None,
        };
        let tight_async = AsyncConfig {
            max_event_age_s: Some(60),
            max_retry_attempts: Some(0),
            on_success: None,
            on_failure: None,
        };
        let target = function(Some(3), Some(tight_async.clone()));
        let state = held(original.clone(), target.limits.clone(), Mode::Enforce);
        let ReleaseOutcome::Released(r) =
            release(&target, Some(&state), at(10, 0), Duration::hours(2), "cli:ana")
        else {
            panic!("a held target is released");
        };
        assert_eq!(r.state.phase, Phase::Recovering);
        assert_eq!(r.state.hold_until, Some(at(12, 0)));
        assert_eq!(r.state.since, at(10, 0));
        assert_eq!(
            r.state.version, 7,
            "the store's version is kept for the conditional write"
        );
        assert_eq!(
            r.state.restore_point, state.restore_point,
            "kept until recovery sees the originals"
        );
        assert_eq!(r.originals, original);
        let function = crate::FunctionName::parse("checkout").expect("name");
        assert_eq!(
            changes(&r.actions),
            vec![
                &Change::ReservedConcurrency {
                    function: function.clone(),
                    from: Some(3),
                    to: None
                },
                &Change::AsyncInvokeConfig {
                    function,
                    from: Some(tight_async),
                    to: None
                },
            ]
        );
        assert!(
            r.actions
                .iter()
                .all(|a| a.apply && a.reason.rule == Rule::Released)
        );
        let notice = r.actions.last().expect("a notice");
        assert_eq!(notice.intent, Intent::Notify);
        let Change::Notify { message, .. } = &notice.change else {
            panic!("notice last");
        };
        assert!(message.contains("released by cli:ana"), "{message}");
        assert!(message.contains("2026-11-20T12:00:00Z"), "{message}");
    }

    #[test]
    fn a_released_stage_lets_the_callers_it_holds_go_exactly() {
        let stage = TargetId::parse("rest-stage:a1b2c3/prod").expect("id");
        let target = Target::new(
            stage.clone(),
            TargetSpec::RestStage,
            BTreeMap::new(),
            Limits::stage(None),
        );
        let plan = |id: &str| crate::UsagePlanId::parse(id).expect("plan");
        let set = crate::source::IpSetRef {
            name: "blocked".into(),
            id: "a1".into(),
            scope: "REGIONAL".into(),
        };
        let mut state = held(Limits::stage(None), Limits::stage(None), Mode::Enforce);
        state.held_sources = vec![
            crate::source::HeldSource::Quarantined {
                since: at(9, 30),
                key: "k1".into(),
                original_plan: plan("gold"),
                quarantine_plan: plan("quarantine"),
            },
            crate::source::HeldSource::Blocked {
                since: at(9, 30),
                address: "198.51.100.7/32".into(),
                ip_set: set.clone(),
            },
        ];
        let ReleaseOutcome::Released(r) =
            release(&target, Some(&state), at(10, 0), Duration::hours(1), "cli:ana")
        else {
            panic!("a held stage is released");
        };
        assert_eq!(
            changes(&r.actions),
            vec![
                &Change::MoveApiKey {
                    stage: stage.clone(),
                    key: "k1".into(),
                    from_plan: plan("quarantine"),
                    to_plan: plan("gold"),
                },
                &Change::IpSetAddresses {
                    stage,
                    ip_set: set,
                    add: vec![],
                    remove: vec!["198.51.100.7/32".into()],
                },
            ]
        );
        assert!(r.state.held_sources.is_empty());
    }

    #[test]
    fn a_target_the_guard_never_touched_is_left_alone() {
        let target = function(Some(50), None);
        assert_eq!(
            release(&target, None, at(10, 0), Duration::hours(1), "cli:ana"),
            ReleaseOutcome::Untouched
        );
        let watching = GuardState {
            phase: Phase::Watching,
            ..GuardState::new(at(9, 0), Mode::Enforce)
        };
        assert_eq!(
            release(&target, Some(&watching), at(10, 0), Duration::hours(1), "cli:ana"),
            ReleaseOutcome::Untouched
        );
    }

    #[test]
    fn stage_and_usage_plan_originals_come_back_in_one_change_each() {
        let throttle = |rate: i64, burst: u32| Throttle {
            rate_limit: Decimal::from(rate),
            burst_limit: burst,
        };
        let stage_id = TargetId::parse("rest-stage:abc123/prod").expect("id");
        let stage = Target {
            id: stage_id.clone(),
            spec: TargetSpec::RestStage,
            tags: BTreeMap::new(),
            limits: Limits::stage(Some(throttle(5, 5))),
            guarded: true,
            usage_plans: Default::default(),
        };
        let original = Limits::stage(None);
        let state = held(original, stage.limits.clone(), Mode::Enforce);
        let ReleaseOutcome::Released(r) =
            release(&stage, Some(&state), at(10, 0), Duration::minutes(30), "x")
        else {
            panic!("released");
        };
        assert_eq!(
            changes(&r.actions),
            vec![&Change::StageThrottle {
                stage: stage_id,
                from: Some(throttle(5, 5)),
                to: None,
                from_overrides: BTreeMap::new(),
                to_overrides: BTreeMap::new(),
            }]
        );

        let plan_id = TargetId::parse("usage-plan:p1").expect("id");
        let quota = |limit| Quota {
            limit,
            period: QuotaPeriod::Day,
            offset: 0,
        };
        let from = Limits::UsagePlan {
            throttle: Some(throttle(1, 1)),
            quota: Some(quota(10)),
        };
        let to = Limits::UsagePlan {
            throttle: Some(throttle(100, 200)),
            quota: Some(quota(10_000)),
        };
        assert_eq!(restore_changes(&plan_id, &from, &to).len(), 1);
        assert!(restore_changes(&plan_id, &to, &to).is_empty());
    }

    #[test]
    fn dry_run_release_changes_nothing_but_still_holds() {
        let original = Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None,
        };
        let target = function(Some(50), None);
        let state = held(original, function(Some(2), None).limits, Mode::DryRun);
        let ReleaseOutcome::Released(r) = release(&target, Some(&state), at(10, 0), Duration::hours(1), "x")
        else {
            panic!("released");
        };
        assert!(changes(&r.actions).is_empty());
        assert_eq!(r.actions.len(), 1, "only the notice");
        assert_eq!(r.state.hold_until, Some(at(11, 0)));
    }

    #[test]
    fn holds_are_capped_and_never_negative() {
        let target = function(Some(1), None);
        let state = held(function(None, None).limits, target.limits.clone(), Mode::Enforce);
        let until = |hold| match release(&target, Some(&state), at(10, 0), hold, "x") {
            ReleaseOutcome::Released(r) => r.state.hold_until,
            ReleaseOutcome::Untouched => None,
        };
        assert_eq!(until(Duration::days(365)), Some(at(10, 0) + MAX_HOLD));
        assert_eq!(until(Duration::hours(-3)), Some(at(10, 0)));
    }

    #[test]
    fn the_guard_does_not_tighten_a_released_target_until_the_hold_ends() {
        // A budget of $1 a day and a flood: without the hold, the guard throttles.
        let budget = Budget::parse(BudgetSpec {
            id: "tiny".into(),
            scope: "function:checkout".into(),
            period: "day".into(),
            amount: "1".into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "ops".into(),
            topic: None,
            floors: Floors::default(),
            protected: false,
        })
        .expect("budget");
        let prices = PriceBook::bundled()
            .and_then(|b| b.prices("us-east-1", false))
            .expect("prices");
        let target = function(Some(1), None);
        let state = held(function(None, None).limits, target.limits.clone(), Mode::Enforce);
        let ReleaseOutcome::Released(r) = release(&target, Some(&state), at(10, 0), Duration::hours(1), "x")
        else {
            panic!("released");
        };
        let released_target = function(None, None);
        let flood = |now: DateTime<Utc>| {
            let mut metrics = TargetMetrics::default();
            for m in 0..120 {
                metrics.minutes.push(crate::MinuteUsage {
                    minute: crate::epoch_minute(now) - 120 + m,
                    usage: crate::Usage {
                        requests: 100_000,
                        throttled: 0,
                        duration_ms: 100_000_000,
                    },
                });
            }
            metrics
        };
        let settings = GuardSettings::default();
        let run = |state: &GuardState, now| {
            let states = HashMap::from([(released_target.id.clone(), state.clone())]);
            let metric_map = HashMap::from([(released_target.id.clone(), flood(now))]);
            decide(&Inputs {
                now,
                budgets: std::slice::from_ref(&budget),
                targets: std::slice::from_ref(&released_target),
                states: &states,
                metrics: &metric_map,
                prices: &prices,
                account_usage: AccountUsage::default(),
                gaps: &crate::gaps::Gaps::NONE,
                attribution: &crate::source::Attribution::NONE,
                concurrency: crate::AccountConcurrency::default(),
                settings: &settings,
            })
        };
        let during = run(&r.state, at(10, 20));
        assert!(
            during.actions.iter().all(|a| a.intent != Intent::Tighten),
            "held: {:?}",
            during.actions
        );
        let after = run(&r.state, at(11, 1));
        assert!(
            after.actions.iter().any(|a| a.intent == Intent::Tighten),
            "after the hold the guard tightens again"
        );
    }
}
