//! The alarm responder's own rate limit: at most one pass per target per minute in
//! one process. CloudWatch metrics have one-minute resolution, so a second pass over
//! the same target in the same minute would see the same figures and decide the same
//! thing: dropping it loses nothing, and a burst of alarm events (a flapping alarm,
//! EventBridge retries) cannot multiply the guard's own calls and cost. It costs no
//! call; the deployment-wide cap on passes a minute (`crate::admission`) bounds what
//! many instances together can run.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use dowguard_domain::{TargetId, epoch_minute};

/// Admits one pass per target per minute.
#[derive(Debug, Default)]
pub struct PassLimiter {
    last: Mutex<HashMap<TargetId, i64>>,
}

impl PassLimiter {
    /// True if no pass over `target` was admitted in the minute of `now`; the pass
    /// is then counted. Only the current minute is remembered, so the memory used is
    /// bounded by the targets alarmed in one minute.
    pub fn admit(&self, target: &TargetId, now: DateTime<Utc>) -> bool {
        let minute = epoch_minute(now);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        last.retain(|_, m| *m >= minute);
        if last.get(target).is_some_and(|m| *m == minute) {
            return false;
        }
        last.insert(target.clone(), minute);
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn admits_one_pass_per_target_per_minute_and_forgets_past_minutes() {
        let limiter = PassLimiter::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
        let checkout = TargetId::parse("function:checkout").unwrap();
        let other = TargetId::parse("function:other").unwrap();
        assert!(limiter.admit(&checkout, t0));
        assert!(!limiter.admit(&checkout, t0 + Duration::seconds(59)));
        assert!(
            limiter.admit(&other, t0 + Duration::seconds(30)),
            "other targets are not held up"
        );
        assert!(limiter.admit(&checkout, t0 + Duration::seconds(60)));
        let remembered = limiter.last.lock().unwrap().len();
        assert_eq!(remembered, 1, "only the current minute is kept");
    }
}
