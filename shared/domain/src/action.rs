//! Actions: what the guard decided to change, from what to what, why (the figures),
//! and the IAM permission each needs. The core only returns them; an executor in
//! the shell applies them (or, in dry-run, records them as not applied).
//!
//! ```
//! use dowguard_domain::{Change, Intent, Limits, TargetId, Throttle, limit_changes};
//!
//! let stage = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let throttle = |rate: u32| Some(Throttle { rate_limit: rate.into(), burst_limit: rate });
//! let changes = limit_changes(&stage, &Limits::stage(None), &Limits::stage(throttle(50)), Intent::Tighten);
//! // One update of the stage, which needs one IAM permission.
//! assert!(matches!(&changes[..], [Change::StageThrottle { from: None, .. }]));
//! assert_eq!(changes[0].permission(), "apigateway:PATCH");
//! // Equal limits: no change at all.
//! assert!(limit_changes(&stage, &Limits::stage(None), &Limits::stage(None), Intent::Restore).is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::{BudgetId, BurnRate, Mode};
use crate::money::Money;
use crate::source::IpSetRef;
use crate::state::Level;
use crate::target::{AsyncConfig, FunctionName, Limits, Quota, TargetId, Throttle, UsagePlanId};

/// Every IAM permission an action can need, for policy checks.
pub const ALL_PERMISSIONS: &[&str] = &[
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:PutFunctionEventInvokeConfig",
    "lambda:DeleteFunctionEventInvokeConfig",
    "apigateway:PATCH",
    "apigateway:DELETE",
    "apigateway:POST",
    "wafv2:GetIPSet",
    "wafv2:UpdateIPSet",
    "sns:Publish",
];

/// The permissions of the targeted levels alone (an API key moved between usage
/// plans, an IP set's addresses): only the passes that decide them need these.
pub const SOURCE_PERMISSIONS: &[&str] = &[
    "apigateway:DELETE",
    "apigateway:POST",
    "wafv2:GetIPSet",
    "wafv2:UpdateIPSet",
];

/// Why an action is taken: tighten, restore, or only tell someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intent {
    /// Make a limit stricter.
    Tighten,
    /// Put back the original limit.
    Restore,
    /// Notify owners; changes nothing.
    Notify,
}

/// One change to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// Set (`Some`) or remove (`None`) a function's reserved concurrency.
    ReservedConcurrency {
        /// Function.
        function: FunctionName,
        /// Value before.
        from: Option<u32>,
        /// Value after.
        to: Option<u32>,
    },
    /// Set (`Some`, the whole config) or remove (`None`) a function's asynchronous
    /// invoke config, so a queued backlog expires instead of replaying after the
    /// throttle ends.
    AsyncInvokeConfig {
        /// Function.
        function: FunctionName,
        /// Value before.
        from: Option<AsyncConfig>,
        /// Value after.
        to: Option<AsyncConfig>,
    },
    /// Set or clear the default throttle of a REST or HTTP API stage, and the
    /// throttles of the methods or routes that override it, in one update.
    StageThrottle {
        /// The stage (a `rest-stage` or `http-stage` target).
        stage: TargetId,
        /// Value before.
        from: Option<Throttle>,
        /// Value after.
        to: Option<Throttle>,
        /// The overrides this change sets, as they were before (absent: there was none).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        from_overrides: BTreeMap<String, Option<Throttle>>,
        /// The overrides this change sets, by method-settings key or route key;
        /// overrides not named here are left as they are.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        to_overrides: BTreeMap<String, Option<Throttle>>,
    },
    /// Set a usage plan's throttle and quota in one update.
    UsagePlanLimits {
        /// The plan.
        plan: UsagePlanId,
        /// Throttle before.
        from_throttle: Option<Throttle>,
        /// Throttle after.
        to_throttle: Option<Throttle>,
        /// Quota before.
        from_quota: Option<Quota>,
        /// Quota after.
        to_quota: Option<Quota>,
    },
    /// Move an API key of a stage from one usage plan to another: into the
    /// quarantine plan (tighten) or back to the plan it was in (restore).
    MoveApiKey {
        /// The stage whose spend the key drives.
        stage: TargetId,
        /// The key's id.
        key: String,
        /// The plan it leaves.
        from_plan: UsagePlanId,
        /// The plan it joins.
        to_plan: UsagePlanId,
    },
    /// Add addresses to (tighten) or remove them from (restore) an IP set that a
    /// blocking rule of the stage's web ACL references; other entries are kept.
    IpSetAddresses {
        /// The stage whose spend the addresses drive.
        stage: TargetId,
        /// The IP set.
        ip_set: IpSetRef,
        /// Addresses to add (CIDR).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        add: Vec<String>,
        /// Addresses to remove (CIDR).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        remove: Vec<String>,
    },
    /// Tell the budget's owners.
    Notify {
        /// SNS topic, if the budget has one (else the deployment's default topic).
        topic: Option<String>,
        /// One-line subject.
        subject: String,
        /// Human-readable body with the figures: the plain-text (e-mail) rendering
        /// of `notice` when there is one.
        message: String,
        /// The notice as data, rendered for chat and e-mail when it is published;
        /// absent in records written before notices carried it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notice: Option<Box<crate::notice::Notice>>,
    },
}

impl Change {
    /// The change for people, in one line: what, from, to
    /// (`reserved concurrency none -> 40`).
    pub fn describe(&self) -> String {
        match self {
            Change::ReservedConcurrency { from, to, .. } => {
                format!("reserved concurrency {} -> {}", opt(*from), opt(*to))
            }
            Change::AsyncInvokeConfig { from, to, .. } => {
                let age = |c: &Option<AsyncConfig>| {
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

    /// The primary IAM permission applying this change needs, for logs and audit
    /// records; [`Change::permissions`] lists every one.
    pub fn permission(&self) -> &'static str {
        self.permissions()[0]
    }

    /// Every IAM permission applying this change needs, the primary one first:
    /// moving an API key is `DeleteUsagePlanKey` then `CreateUsagePlanKey`
    /// (`apigateway:DELETE` and `apigateway:POST`); an IP set is read for its lock
    /// token (`GetIPSet`) before `UpdateIPSet` replaces its list.
    pub fn permissions(&self) -> &'static [&'static str] {
        match self {
            Change::ReservedConcurrency { to: Some(_), .. } => &["lambda:PutFunctionConcurrency"],
            Change::ReservedConcurrency { to: None, .. } => &["lambda:DeleteFunctionConcurrency"],
            Change::AsyncInvokeConfig { to: None, .. } => &["lambda:DeleteFunctionEventInvokeConfig"],
            Change::AsyncInvokeConfig { to: Some(_), .. } => &["lambda:PutFunctionEventInvokeConfig"],
            Change::StageThrottle { .. } | Change::UsagePlanLimits { .. } => &["apigateway:PATCH"],
            Change::MoveApiKey { .. } => &["apigateway:DELETE", "apigateway:POST"],
            Change::IpSetAddresses { .. } => &["wafv2:UpdateIPSet", "wafv2:GetIPSet"],
            Change::Notify { .. } => &["sns:Publish"],
        }
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}

/// A throttle for people: `100 rps / burst 200`.
fn throttle(t: Option<&Throttle>) -> String {
    match t {
        Some(t) => format!("{} rps / burst {}", t.rate_limit.normalize(), t.burst_limit),
        None => "none".into(),
    }
}

/// Which rule produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Both windows above a threshold.
    MultiWindow,
    /// The short window alone above the top threshold: too fast to wait.
    FastLane,
    /// Spend reached the budget.
    Exhausted,
    /// Demand calm for the cool-down.
    Calm,
    /// A surge came back while recovering.
    Relapse,
    /// Limits drifted from what the guard set (or a change failed): set them again.
    Converge,
    /// The mode changed from enforce to dry-run: originals go back.
    ModeChange,
    /// A manual release is in force.
    Released,
    /// The target is protected: reported, never throttled.
    Protected,
    /// The account's unreserved concurrency minimum blocks the change.
    UnreservedMinimum,
    /// The target lacks the `dowguard-guarded=true` tag IAM checks: reported, never throttled.
    NotGuarded,
}

/// The figures behind a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The budget that drove it.
    pub budget: Option<BudgetId>,
    /// The rule that fired.
    pub rule: Rule,
    /// The level the budget asked for.
    pub level: Level,
    /// Spent so far in the period.
    pub spent: Money,
    /// The budget.
    pub amount: Money,
    /// Projected spend at period end.
    pub projected: Money,
    /// Demand burn rate on the short window against the remaining budget.
    pub burn_short: BurnRate,
    /// Demand burn rate on the long window against the remaining budget.
    pub burn_long: BurnRate,
}

impl Reason {
    /// The reason of a person's release: no budget, no figures.
    pub fn released() -> Reason {
        Reason {
            budget: None,
            rule: Rule::Released,
            level: Level::Normal,
            spent: Money::ZERO,
            amount: Money::ZERO,
            projected: Money::ZERO,
            burn_short: BurnRate(0),
            burn_long: BurnRate(0),
        }
    }

    /// One line for logs and notifications.
    pub fn summary(&self) -> String {
        let budget = self
            .budget
            .as_ref()
            .map_or_else(|| "-".to_string(), ToString::to_string);
        format!(
            "{rule:?} on budget {budget}: spent {spent} of {amount}, projected {projected}, burn {short} (short) / {long} (long) against the remaining budget",
            rule = self.rule,
            spent = self.spent,
            amount = self.amount,
            projected = self.projected,
            short = self.burn_short,
            long = self.burn_long,
        )
    }
}

/// A decided action: data for the executor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The target it concerns.
    pub target: TargetId,
    /// The change.
    pub change: Change,
    /// Tighten, restore or notify.
    pub intent: Intent,
    /// The mode of the budget behind it.
    pub mode: Mode,
    /// False in dry-run: record, do not apply. Notifications are always sent.
    pub apply: bool,
    /// Spend per hour the action addresses; executors apply the most expensive first.
    pub priority: Money,
    /// Why.
    pub reason: Reason,
}

impl Action {
    /// The primary IAM permission the action needs.
    pub fn permission(&self) -> &'static str {
        self.change.permission()
    }

    /// Every IAM permission the action needs.
    pub fn permissions(&self) -> &'static [&'static str] {
        self.change.permissions()
    }
}

/// The changes that take `target` from limits `from` to `to`: none for what is
/// equal, a stage's throttle with every override that differs in one update, a
/// usage plan's throttle and quota in one update. For a function, the async
/// settings come first when tightening (a backlog queued by the new limit already
/// expires) and last when restoring.
pub fn limit_changes(target: &TargetId, from: &Limits, to: &Limits, intent: Intent) -> Vec<Change> {
    match (target, from, to) {
        (
            TargetId::Function(function),
            Limits::Function {
                reserved_concurrency: r0,
                async_config: a0,
            },
            Limits::Function {
                reserved_concurrency: r1,
                async_config: a1,
            },
        ) => function_changes(function, (*r0, a0), (*r1, a1), intent),
        (
            stage @ (TargetId::RestStage(..) | TargetId::HttpStage(..)),
            Limits::Stage {
                throttle: t0,
                overrides: o0,
            },
            Limits::Stage {
                throttle: t1,
                overrides: o1,
            },
        ) => stage_change(stage, (*t0, o0), (*t1, o1)).into_iter().collect(),
        (
            TargetId::UsagePlan(plan),
            Limits::UsagePlan {
                throttle: t0,
                quota: q0,
            },
            Limits::UsagePlan {
                throttle: t1,
                quota: q1,
            },
        ) if t0 != t1 || q0 != q1 => vec![Change::UsagePlanLimits {
            plan: plan.clone(),
            from_throttle: *t0,
            to_throttle: *t1,
            from_quota: *q0,
            to_quota: *q1,
        }],
        _ => Vec::new(),
    }
}

/// A function's changes: the async settings first when tightening, last when
/// restoring.
fn function_changes(
    function: &FunctionName,
    (r0, a0): (Option<u32>, &Option<AsyncConfig>),
    (r1, a1): (Option<u32>, &Option<AsyncConfig>),
    intent: Intent,
) -> Vec<Change> {
    let async_change = (a0 != a1).then(|| Change::AsyncInvokeConfig {
        function: function.clone(),
        from: a0.clone(),
        to: a1.clone(),
    });
    let reserved_change = (r0 != r1).then(|| Change::ReservedConcurrency {
        function: function.clone(),
        from: r0,
        to: r1,
    });
    let ordered = if intent == Intent::Restore {
        [reserved_change, async_change]
    } else {
        [async_change, reserved_change]
    };
    ordered.into_iter().flatten().collect()
}

type Overrides = BTreeMap<String, Option<Throttle>>;

/// A stage's one change: its throttle and only the overrides `to` names and that
/// differ; one the target has and `to` does not name is left alone (there is
/// nothing to put back).
fn stage_change(
    stage: &TargetId,
    (t0, o0): (Option<Throttle>, &Overrides),
    (t1, o1): (Option<Throttle>, &Overrides),
) -> Option<Change> {
    let to_overrides: Overrides = o1
        .iter()
        .filter(|(key, value)| o0.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), *value))
        .collect();
    if t0 == t1 && to_overrides.is_empty() {
        return None;
    }
    let from_overrides = to_overrides
        .keys()
        .filter_map(|key| o0.get(key).map(|value| (key.clone(), *value)))
        .collect();
    Some(Change::StageThrottle {
        stage: stage.clone(),
        from: t0,
        to: t1,
        from_overrides,
        to_overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{ApiId, StageName};

    #[test]
    fn every_change_needs_only_listed_permissions_and_a_key_move_needs_delete_and_post() {
        let stage = TargetId::RestStage(
            ApiId::parse("a1b2c3").expect("id"),
            StageName::parse("prod").expect("stage"),
        );
        let plan = |id: &str| UsagePlanId::parse(id).expect("plan");
        let ip_set = IpSetRef {
            name: "blocked".into(),
            id: "a1".into(),
            scope: "REGIONAL".into(),
        };
        let changes = [
            Change::MoveApiKey {
                stage: stage.clone(),
                key: "k1".into(),
                from_plan: plan("p1"),
                to_plan: plan("q1"),
            },
            Change::IpSetAddresses {
                stage,
                ip_set,
                add: vec!["203.0.113.7/32".into()],
                remove: Vec::new(),
            },
        ];
        for change in &changes {
            assert_eq!(change.permission(), change.permissions()[0]);
            for p in change.permissions() {
                assert!(ALL_PERMISSIONS.contains(p), "{p} is not in ALL_PERMISSIONS");
                assert!(SOURCE_PERMISSIONS.contains(p), "{p} is not in SOURCE_PERMISSIONS");
            }
        }
        assert_eq!(
            changes[0].permissions(),
            &["apigateway:DELETE", "apigateway:POST"]
        );
        assert_eq!(changes[1].permissions(), &["wafv2:UpdateIPSet", "wafv2:GetIPSet"]);
    }
}
