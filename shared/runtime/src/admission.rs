//! Which passes may run, decided in the guard's table after an event is validated
//! and before any other AWS call:
//!
//! - **the evaluator's lease** ([`App::take_lease`], [`App::release`]): one
//!   evaluator pass at a time across every instance, held until the invocation's
//!   deadline and given back when the pass ends. A second evaluator finding it held
//!   skips after that one call. A holder that crashes or times out loses it at its
//!   deadline by itself. This replaces the reserved concurrency of 1 that new
//!   accounts cannot afford (the template's `ReserveConcurrency` parameter).
//! - **the responder's slot** ([`App::wait_for_lease`] with [`RESPONDER_LEASE`]):
//!   one alarm-responder pass at a time across every instance, so the evaluator,
//!   one responder and a person's CLI are all the guard ever runs at once, and
//!   their shares of AWS's control-plane quotas (`dowguard_adapters::stack::Pacing`)
//!   add up to less than each quota. A responder waits for the slot at most
//!   [`RESPONDER_WAIT`]; after that the alarmed target is left to the next
//!   scheduled pass, a minute away at most.
//! - **the pass cap** ([`App::admit_pass`]): at most
//!   [`crate::config::MAX_PASSES_PER_MINUTE`] passes a minute across the whole
//!   deployment, evaluator and alarm responder together, counted in one item per
//!   minute. Anyone allowed `lambda:InvokeFunction` can send a valid-looking event;
//!   this bounds what that costs. The alarm responder's own per-target limit
//!   ([`crate::limit`]) still comes first and costs no call.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dowguard_guard::PortResult;
use dowguard_guard::ports::{Deployment, Leases};
use lambda_runtime::Context;

use crate::App;
use crate::config::MAX_PASSES_PER_MINUTE;

/// The evaluator's lease in the table.
pub const EVALUATOR_LEASE: &str = "evaluator";

/// The alarm responders' slot in the table: one responder pass at a time.
pub const RESPONDER_LEASE: &str = "responder";

/// The longest a responder waits for [`RESPONDER_LEASE`] (its timeout is 60 s).
pub const RESPONDER_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// The inventory function's lease: one invocation at a time (a reconciliation or
/// a change event), so its share of the control-plane quotas holds across them.
pub const INVENTORY_LEASE: &str = "inventory";

/// The longest a change event waits for [`INVENTORY_LEASE`]; after that the change
/// is left to the reconciliation.
pub const INVENTORY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often a waiting responder asks for the slot again (one conditional write).
pub const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// How long a lease is held when the invocation carries no deadline in the future
/// (outside Lambda): Lambda's longest function timeout, 900 seconds ("Configure
/// Lambda function timeout").
pub const NO_DEADLINE_HOLD: Duration = Duration::seconds(900);

/// A lease this invocation holds; give it back with [`App::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name.
    pub name: &'static str,
    /// This invocation's token.
    pub holder: String,
    /// When it expires if it is not given back.
    pub until: DateTime<Utc>,
}

/// A token for one invocation: its Lambda request id, or (outside Lambda) one made
/// from the process id, the time and a counter.
fn holder_of(context: &Context, now: DateTime<Utc>) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if context.request_id.is_empty() {
        format!(
            "process-{}-{}-{}",
            std::process::id(),
            now.timestamp_micros(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    } else {
        context.request_id.clone()
    }
}

/// The invocation's deadline (`Context::deadline`, epoch milliseconds), or
/// [`NO_DEADLINE_HOLD`] from `now` when it has none in the future.
pub fn lease_until(context: &Context, now: DateTime<Utc>) -> DateTime<Utc> {
    i64::try_from(context.deadline)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .filter(|deadline| *deadline > now)
        .unwrap_or(now + NO_DEADLINE_HOLD)
}

impl<D: Deployment> App<D> {
    /// Takes lease `name` for this invocation until its deadline. `Ok(Err)` is the
    /// reason to skip: who holds it until when. One conditional write.
    ///
    /// # Errors
    ///
    /// The table's [`dowguard_guard::PortError`].
    pub async fn take_lease(
        &self,
        name: &'static str,
        context: &Context,
        now: DateTime<Utc>,
    ) -> PortResult<Result<Lease, String>> {
        let lease = Lease {
            name,
            holder: holder_of(context, now),
            until: lease_until(context, now),
        };
        Ok(self
            .stack
            .leases()
            .acquire(name, &lease.holder, lease.until, now)
            .await?
            .map(|()| lease)
            .map_err(|held| {
                format!(
                    "another {name} pass holds the lease until {}",
                    held.until.to_rfc3339_opts(SecondsFormat::Millis, true)
                )
            }))
    }

    /// Takes lease `name` like [`App::take_lease`], asking again every
    /// [`LEASE_POLL`] while another invocation holds it, for at most `max_wait`.
    /// `Ok(Err)` is the reason to give up.
    ///
    /// # Errors
    ///
    /// The table's [`dowguard_guard::PortError`].
    pub async fn wait_for_lease(
        &self,
        name: &'static str,
        context: &Context,
        max_wait: std::time::Duration,
    ) -> PortResult<Result<Lease, String>> {
        let give_up = tokio::time::Instant::now() + max_wait;
        loop {
            match self.take_lease(name, context, Utc::now()).await? {
                Ok(lease) => return Ok(Ok(lease)),
                Err(held) if tokio::time::Instant::now() + LEASE_POLL > give_up => {
                    return Ok(Err(format!(
                        "{held} (waited {} s; the next scheduled pass decides for this target)",
                        max_wait.as_secs()
                    )));
                }
                Err(_) => tokio::time::sleep(LEASE_POLL).await,
            }
        }
    }

    /// Gives `lease` back. A failure is logged, not returned: the lease then expires
    /// at its deadline by itself.
    pub async fn release(&self, lease: Lease) {
        match self.stack.leases().release(lease.name, &lease.holder).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(lease = lease.name, "the lease had expired and was taken over"),
            Err(e) => tracing::warn!(
                lease = lease.name,
                until = %lease.until,
                error = %e,
                "could not give the lease back; it expires by itself"
            ),
        }
    }

    /// Counts a pass against the deployment's cap for the minute of `now`. `Ok(Err)`
    /// is the reason it is refused. One conditional write.
    ///
    /// # Errors
    ///
    /// The table's [`dowguard_guard::PortError`].
    pub async fn admit_pass(&self, now: DateTime<Utc>) -> PortResult<Result<u32, String>> {
        let cap = self.config.max_passes_per_minute;
        Ok(self.stack.leases().count_pass(now, cap).await?.ok_or_else(|| {
            format!(
                "the deployment already ran {cap} passes this minute, its cap ({MAX_PASSES_PER_MINUTE}); \
                 the next minute's passes run as usual"
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_until_the_deadline_or_the_longest_timeout_without_one() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut context = Context::default();
        assert_eq!(lease_until(&context, now), now + NO_DEADLINE_HOLD, "no deadline");
        context.deadline = u64::try_from((now + Duration::seconds(119)).timestamp_millis()).unwrap_or(0);
        assert_eq!(lease_until(&context, now), now + Duration::seconds(119));
        context.deadline = u64::try_from((now - Duration::seconds(1)).timestamp_millis()).unwrap_or(0);
        assert_eq!(
            lease_until(&context, now),
            now + NO_DEADLINE_HOLD,
            "a past deadline"
        );
    }

    #[test]
    fn holders_are_request_ids_or_unique_tokens() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let mut context = Context::default();
        assert_ne!(holder_of(&context, now), holder_of(&context, now));
        context.request_id = "8f5e1c7a".into();
        assert_eq!(holder_of(&context, now), "8f5e1c7a");
    }
}
