//! The executor: applies the core's actions through the actuator ports, honours
//! dry-run, and reports ok / skipped / failed per action. A change that fails is
//! told to the target's owners ([`Notice::failed`]), once a day per target and
//! level where the notifier remembers it. A held source is an
//! action like any other: an API key moved between usage plans and addresses
//! added to or removed from an IP set go through [`SourceControl`].

use std::collections::HashMap;

use dowguard_domain::notice::{Notice, Publication};
use dowguard_domain::{Action, Change, Intent, TargetId};

use crate::audit::Outcome;
use crate::ports::{LambdaControl, Notifier, PortResult, SourceControl, StageControl, UsagePlanControl};

/// Applies actions with the actuators it is given.
#[derive(Debug, Clone, Copy)]
pub struct Executor<'a, A, N> {
    /// The account's actuators: Lambda controls, stage throttles, usage plans, sources.
    pub account: &'a A,
    /// Notices.
    pub notifier: &'a N,
}

impl<A, N> Executor<'_, A, N>
where
    A: LambdaControl + StageControl + UsagePlanControl + SourceControl,
    N: Notifier,
{
    /// Applies `actions` in order. Actions of targets in `blocked` (their state could
    /// not be saved first) are skipped with the given reason, notices included: a
    /// change is never made without its restore point stored, and a pass that lost a
    /// race leaves the telling to the pass that won.
    pub async fn run(&self, actions: &[Action], blocked: &HashMap<TargetId, String>) -> Vec<Outcome> {
        let mut outcomes = Vec::with_capacity(actions.len());
        for action in actions {
            let outcome = if let Some(why) = blocked.get(&action.target) {
                Outcome::Skipped { why: why.clone() }
            } else if !action.apply {
                Outcome::Skipped {
                    why: "dry-run: decided, not applied".into(),
                }
            } else {
                match self.apply(&action.change).await {
                    Ok(()) => Outcome::Applied,
                    Err(e) => {
                        tracing::warn!(target = %action.target, error = %e, "action failed");
                        if action.intent != Intent::Notify {
                            self.tell_failure(actions, action, &e.to_string()).await;
                        }
                        Outcome::Failed {
                            kind: e.kind,
                            error: e.to_string(),
                        }
                    }
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Tells the owners that `action` failed, on the topic of the target's other
    /// notices in `actions` (else the default topic). A failure to tell is logged.
    async fn tell_failure(&self, actions: &[Action], action: &Action, error: &str) {
        let topic = actions.iter().find_map(|a| match &a.change {
            Change::Notify { topic, .. } if a.target == action.target => topic.as_deref(),
            _ => None,
        });
        let notice = Notice::failed(&action.target, action.mode, &action.reason, &action.change, error);
        if let Err(e) = self.notifier.publish(topic, &notice.publication()).await {
            tracing::warn!(target = %action.target, error = %e, "could not tell the owners that a change failed");
        }
    }

    async fn apply(&self, change: &Change) -> PortResult<()> {
        match change {
            Change::ReservedConcurrency { function, to, .. } => {
                self.account.set_reserved_concurrency(function, *to).await
            }
            Change::AsyncInvokeConfig { function, to, .. } => {
                self.account.set_async_config(function, to.as_ref()).await
            }
            Change::StageThrottle {
                stage,
                to,
                to_overrides,
                ..
            } => self.account.set_stage_throttle(stage, *to, to_overrides).await,
            Change::UsagePlanLimits {
                plan,
                to_throttle,
                to_quota,
                ..
            } => self.account.set_plan_limits(plan, *to_throttle, *to_quota).await,
            Change::MoveApiKey {
                key,
                from_plan,
                to_plan,
                ..
            } => self.account.move_api_key(key, from_plan, to_plan).await,
            Change::IpSetAddresses {
                ip_set, add, remove, ..
            } => self.account.update_ip_set(ip_set, add, remove).await,
            Change::Notify {
                topic,
                subject,
                message,
                notice,
            } => {
                let publication = Publication::of(subject, message, notice.as_deref());
                self.notifier.publish(topic.as_deref(), &publication).await
            }
        }
    }
}
