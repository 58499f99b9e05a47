//! Releasing a held target by hand (`dowguard release`, the console's widget): the
//! domain's [`dowguard_domain::release`] decides; here its state is stored first,
//! as in every pass, then its actions are applied through the [`Executor`] and each
//! is audited under the releasing actor's name.

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::{GuardState, Release, ReleaseOutcome, Target, release};

use crate::audit::{AuditRecord, Outcome};
use crate::executor::Executor;
use crate::ports::{
    AuditLog, LambdaControl, Notifier, PortError, SourceControl, StageControl, StateStore, UsagePlanControl,
};

/// Why a release did not happen or was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The state could not be stored (a [`crate::FailureKind::Conflict`]: the guard
    /// changed it meanwhile); nothing was changed.
    #[error("the state could not be saved: {0}")]
    State(PortError),
    /// The changes were applied but their audit records could not be written.
    #[error("the audit records could not be written: {0}")]
    Audit(PortError),
}

/// A release carried out: what was decided, and each action's outcome.
#[derive(Debug, Clone)]
pub struct Released {
    /// The release (the new state, the originals, the actions).
    pub release: Release,
    /// Each of `release.actions`' outcome, in order.
    pub outcomes: Vec<Outcome>,
}

impl Released {
    /// True when a change (not a notice) failed: the state says recovering, so
    /// the guard's next pass restores it again.
    pub fn failed(&self) -> bool {
        self.release
            .actions
            .iter()
            .zip(&self.outcomes)
            .any(|(a, o)| a.intent != dowguard_domain::Intent::Notify && matches!(o, Outcome::Failed { .. }))
    }
}

/// Releases `target` (whose stored state is `state`) at `now`, holding off
/// re-tightening for `hold`, as `actor`: `None` when the guard never changed it
/// (no restore point: nothing is written).
///
/// # Errors
///
/// [`ReleaseError::State`] when the state cannot be saved (nothing changed),
/// [`ReleaseError::Audit`] when the records cannot be written.
pub async fn release_target<S, A, N>(
    store: &S,
    executor: &Executor<'_, A, N>,
    target: &Target,
    state: Option<&GuardState>,
    (now, hold): (DateTime<Utc>, Duration),
    actor: &str,
) -> Result<Option<Released>, ReleaseError>
where
    S: StateStore + AuditLog,
    A: LambdaControl + StageControl + UsagePlanControl + SourceControl,
    N: Notifier,
{
    let ReleaseOutcome::Released(release) = release(target, state, now, hold, actor) else {
        return Ok(None);
    };
    store
        .save_state(&target.id, &release.state)
        .await
        .map_err(ReleaseError::State)?;
    let outcomes = executor.run(&release.actions, &Default::default()).await;
    let records: Vec<AuditRecord> = release
        .actions
        .iter()
        .zip(&outcomes)
        .map(|(action, outcome)| AuditRecord {
            at: now,
            target: target.id.clone(),
            actor: actor.to_string(),
            action: action.clone(),
            outcome: outcome.clone(),
        })
        .collect();
    store.record(&records).await.map_err(ReleaseError::Audit)?;
    Ok(Some(Released {
        release: *release,
        outcomes,
    }))
}
