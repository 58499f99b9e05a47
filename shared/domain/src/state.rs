//! Guard state per target: the phase of the state machine, the restore point, the
//! limits the guard applied, and the timers behind hysteresis and cool-downs.
//!
//! ```text
//!  normal ──▶ watching ──▶ throttled(1) ──▶ throttled(n) ──▶ stopped
//!    ▲   ◀── (calm)            │  (calm for the cool-down)       │ (period rolls over, calm)
//!    │                         ▼                                 ▼
//!    └────── (quiet for the recovery watch) ◀── recovering ◀─────┘
//!                                   (surge again: straight back to the peak level)
//! ```
//!
//! The rules that move a state are [`crate::transition`]'s; this module holds what
//! is remembered.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::{GuardState, Mode, Phase};
//!
//! let fresh = GuardState::new(Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap(), Mode::Enforce);
//! assert_eq!((fresh.phase, fresh.strikes, fresh.restore_point), (Phase::Normal, 0, None));
//! assert!(Phase::Stopped.is_tightened() && !Phase::Recovering.is_tightened());
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::Mode;
use crate::target::Limits;

/// The phase of a target's guard state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// Spend is on pace; the guard has changed nothing.
    Normal,
    /// Spend is above the watch threshold: owners are told, nothing is changed.
    Watching,
    /// Limits are tightened at an escalation level (1 = gentlest).
    Throttled {
        /// Escalation level.
        level: u8,
    },
    /// The budget is exhausted: limits are at the floors.
    Stopped,
    /// The original limits are restored; a new surge goes straight back to the peak
    /// level without a fresh restore point.
    Recovering,
}

impl Phase {
    /// True when the guard holds limits tighter than the originals.
    pub fn is_tightened(self) -> bool {
        matches!(self, Phase::Throttled { .. } | Phase::Stopped)
    }

    /// A short name for tables and logs.
    pub fn name(self) -> String {
        match self {
            Phase::Normal => "normal".into(),
            Phase::Watching => "watching".into(),
            Phase::Throttled { level } => format!("throttled({level})"),
            Phase::Stopped => "stopped".into(),
            Phase::Recovering => "recovering".into(),
        }
    }
}

/// The level of danger a budget sees for a target, in escalating order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "level", content = "n", rename_all = "kebab-case")]
pub enum Level {
    /// On pace.
    Normal,
    /// Above the watch threshold.
    Watch,
    /// Above throttle threshold `n` (1-based).
    Throttle(u8),
    /// Budget exhausted.
    Stop,
}

/// A target's own limits before dowguard first changed them. Written before the
/// first change, never overwritten while the guard holds the target, and exactly
/// what recovery restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    /// The original limits.
    pub limits: Limits,
    /// When they were captured.
    pub captured_at: DateTime<Utc>,
}

/// Everything the guard remembers about one target between evaluations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardState {
    /// Current phase.
    pub phase: Phase,
    /// When the phase was entered.
    pub since: DateTime<Utc>,
    /// Mode the state was reached in.
    pub mode: Mode,
    /// Original limits, while the guard holds (or is restoring) the target.
    pub restore_point: Option<RestorePoint>,
    /// The limits the guard set (or, in dry-run, would have set).
    pub applied: Option<Limits>,
    /// Start of the current calm stretch, if calm.
    pub calm_since: Option<DateTime<Utc>>,
    /// Highest throttle level of the current episode.
    pub peak_level: u8,
    /// Relapses in quick succession: a surge while recovering, or a new episode
    /// within `strike_memory_minutes` of the last one's end. Each doubles the
    /// cool-down (capped); forgotten once the target stays out of throttling for
    /// `strike_memory_minutes` after an episode.
    pub strikes: u32,
    /// When the last episode ended (its return to `normal`), while its strikes are
    /// remembered; `None` during an episode and once they are forgotten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_ended: Option<DateTime<Utc>>,
    /// A manual release holds off tightening until this time.
    pub hold_until: Option<DateTime<Utc>>,
    /// The sources (API keys, addresses) the guard holds on this stage, each with
    /// what letting it go needs; empty for every other target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_sources: Vec<crate::source::HeldSource>,
    /// Last known average duration per request in ms, to price throttled demand
    /// when nothing is being served.
    pub avg_duration_ms: u64,
    /// Optimistic-lock version kept by the store; the core never changes it.
    pub version: u64,
}

impl GuardState {
    /// The state of a target the guard has never acted on.
    pub fn new(now: DateTime<Utc>, mode: Mode) -> Self {
        GuardState {
            phase: Phase::Normal,
            since: now,
            mode,
            restore_point: None,
            applied: None,
            calm_since: None,
            peak_level: 0,
            strikes: 0,
            episode_ended: None,
            hold_until: None,
            held_sources: Vec::new(),
            avg_duration_ms: 0,
            version: 0,
        }
    }
}
