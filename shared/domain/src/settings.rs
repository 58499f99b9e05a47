//! The guard's tunables: window lengths, thresholds of calm, cool-downs, the share
//! each throttle level allows. One value of [`GuardSettings`] is read by every step
//! of a pass; its defaults suit CloudWatch's one-minute metrics.
//!
//! ```
//! use dowguard_domain::GuardSettings;
//!
//! let settings = GuardSettings::default();
//! // Each strike doubles the cool-down, up to `max_backoff_strikes` doublings.
//! assert_eq!(settings.cooldown(0).num_minutes(), 15);
//! assert_eq!(settings.cooldown(2).num_minutes(), 60);
//! assert_eq!(settings.cooldown(9).num_minutes(), 120);
//! // Level 1 allows the whole remaining pace, level 2 half, level 3 and above a quarter.
//! assert_eq!(settings.allowance_millionths(1), 1_000_000);
//! assert_eq!(settings.allowance_millionths(5), 250_000);
//! ```

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// Tunables of the guard, with defaults that suit one-minute metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSettings {
    /// Minutes CloudWatch needs before a one-minute datapoint is complete.
    pub metric_delay_minutes: i64,
    /// Short burn-rate window (speed).
    pub short_window_minutes: i64,
    /// Long burn-rate window (confidence).
    pub long_window_minutes: i64,
    /// Hysteresis: demand must fall below this fraction (millionths) of the first
    /// throttle threshold to count as calm.
    pub hysteresis_millionths: i64,
    /// Calm minutes before original limits are restored (the cool-down).
    pub relax_after_minutes: i64,
    /// Minutes of quiet in `recovering` before the target is `normal` again.
    pub recovery_watch_minutes: i64,
    /// Minutes at a throttle level before the next level (the top one is immediate).
    pub escalation_dwell_minutes: i64,
    /// A new episode that starts within this many minutes of the end of the last one
    /// (the return to `normal`) counts as a strike; a target that stays out of
    /// throttling this long after an episode forgets its strikes.
    pub strike_memory_minutes: i64,
    /// Each strike doubles the cool-down, up to this many doublings.
    pub max_backoff_strikes: u32,
    /// Share of the remaining budget rate each throttle level allows (millionths),
    /// level 1 first; later levels reuse the last value.
    pub level_allowance_millionths: Vec<i64>,
    /// Group budgets throttle the biggest contributors that together make up this
    /// share (millionths) of the group's short-window demand.
    pub contributor_share_millionths: i64,
    /// Maximum event age set on async-invoked functions while throttled (60–21600).
    pub async_max_event_age_s: u32,
    /// Retry attempts set on async-invoked functions while throttled (0–2).
    pub async_max_retries: u32,
    /// Average duration assumed for a function with no served requests.
    pub default_avg_duration_ms: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            metric_delay_minutes: 2,
            short_window_minutes: 5,
            long_window_minutes: 60,
            hysteresis_millionths: 500_000,
            relax_after_minutes: 15,
            recovery_watch_minutes: 30,
            escalation_dwell_minutes: 5,
            strike_memory_minutes: 360,
            max_backoff_strikes: 3,
            level_allowance_millionths: vec![1_000_000, 500_000, 250_000],
            contributor_share_millionths: 800_000,
            async_max_event_age_s: 60,
            async_max_retries: 0,
            default_avg_duration_ms: 1_000,
        }
    }
}

impl GuardSettings {
    /// The cool-down after `strikes` relapses.
    pub fn cooldown(&self, strikes: u32) -> Duration {
        let doublings = strikes.min(self.max_backoff_strikes).min(16);
        Duration::minutes(self.relax_after_minutes.saturating_mul(1 << doublings))
    }

    /// The share (millionths) of the remaining pace throttle level `level` allows.
    pub fn allowance_millionths(&self, level: u8) -> i64 {
        let idx = usize::from(level.max(1)) - 1;
        self.level_allowance_millionths
            .get(idx)
            .or(self.level_allowance_millionths.last())
            .copied()
            .unwrap_or(1_000_000)
    }
}
