//! Step 4 of a pass: **the state machine.** One pure function,
//! [`transition`]`(previous state, wish, target, now, settings)`, moves a target's
//! [`GuardState`] one pass on and says what that means for its limits ([`Step`]) and
//! what to tell its owners ([`Note`]).
//!
//! ```text
//!  normal ──▶ watching ──▶ throttled(1) ──▶ throttled(n) ──▶ stopped
//!    ▲   ◀── (calm)            │  (calm for the cool-down)       │ (period rolls over, calm)
//!    │                         ▼                                 ▼
//!    └────── (quiet for the recovery watch) ◀── recovering ◀─────┘
//!                                   (surge again: straight back to the peak level)
//! ```
//!
//! In order, a transition:
//!
//! 1. follows a change of mode (dry-run ↔ enforce): a target held in `enforce` keeps
//!    being enforced until its originals are back;
//! 2. caps the wished level at `watch` for a protected target, one the guard may not
//!    change, and one a manual release holds;
//! 3. times calm, and forgets the strikes of a target that has stayed out of
//!    throttling for `strike_memory_minutes` since its last episode ended;
//! 4. moves the phase: tighten (escalating after the dwell, at once on the fast lane
//!    or to `stop`), relax after calm has lasted the cool-down (doubled per strike),
//!    return to `normal` after the recovery watch with the originals in place.
//!
//! **Episodes and strikes.** An episode runs from the first tightening (when the
//! restore point is captured) to the return to `normal`. A surge while `recovering`
//! is a strike, and so is a new episode that starts within `strike_memory_minutes`
//! of the last one's end; each strike doubles the cool-down, up to
//! `max_backoff_strikes` doublings.
//!
//! The one field a transition leaves to its caller is `applied`: the limits of a
//! [`Step::Tighten`] come from [`crate::limits`].
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use dowguard_domain::transition::{Step, transition};
//! use dowguard_domain::wish::Wish;
//! use dowguard_domain::{GuardSettings, GuardState, Level, Limits, Mode, Phase, Target, TargetId, TargetSpec};
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let settings = GuardSettings::default();
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), Limits::unset(id.kind()));
//! let normal = GuardState::new(now, Mode::Enforce);
//! let wish = Wish { level: Level::Throttle(1), calm: false, mode: Mode::Enforce, ..Wish::new() };
//!
//! let t = transition(&normal, &wish, &stage, now, &settings);
//! assert_eq!(t.next.phase, Phase::Throttled { level: 1 });
//! assert!(matches!(t.step, Step::Tighten { level: Level::Throttle(1), .. }));
//! // The originals are written down before anything changes.
//! assert_eq!(t.next.restore_point.as_ref().map(|rp| &rp.limits), Some(&stage.limits));
//!
//! // Calm, but not yet for the cool-down: the throttle holds.
//! let calm = Wish { level: Level::Normal, calm: true, ..wish };
//! let later = transition(&t.next, &calm, &stage, now + Duration::minutes(1), &settings);
//! assert_eq!(later.step, Step::Stay { converge: true });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{DateTime, Duration, Utc};

use crate::action::Rule;
use crate::budget::Mode;
use crate::settings::GuardSettings;
use crate::state::{GuardState, Level, Phase, RestorePoint};
use crate::target::{Target, unguarded_why};
use crate::wish::Wish;

/// Something to tell a target's owners, and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// One line, after the target's id.
    pub text: String,
    /// The rule that gives the reason.
    pub rule: Rule,
}

impl Note {
    /// A note saying `text` because of `rule`.
    pub fn new(text: impl Into<String>, rule: Rule) -> Self {
        Note {
            text: text.into(),
            rule,
        }
    }
}

/// What a transition means for the target's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The limits stay what the state says. `converge`: the guard enforces them, so
    /// limits found otherwise are set again (not in the minute the state was written:
    /// another pass may be applying that very change).
    Stay {
        /// Limits that drifted from the state are set again.
        converge: bool,
    },
    /// Tighten to `level`.
    Tighten {
        /// The new level.
        level: Level,
        /// The phase the target came from.
        from: Phase,
        /// From a lower throttle level: no looser than the limits applied there.
        escalating: bool,
        /// The rule given for the change.
        rule: Rule,
    },
    /// Put the restore point's limits back.
    Restore {
        /// Calm for the cool-down, or a manual release.
        rule: Rule,
    },
}

/// The outcome of one [`transition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The target's next state (its `applied` limits aside: see the module docs).
    pub next: GuardState,
    /// What happens to its limits.
    pub step: Step,
    /// The mode its actions are taken in: the wish's, or `enforce` while a target
    /// held in enforce goes back to its originals.
    pub mode: Mode,
    /// What to tell its owners, in order.
    pub notes: Vec<Note>,
}

/// Moves `prev` one pass on at `now`, given what the budgets ask (`wish`) of
/// `target` (its limits now, and whether the guard may change it).
pub fn transition(
    prev: &GuardState,
    wish: &Wish,
    target: &Target,
    now: DateTime<Utc>,
    settings: &GuardSettings,
) -> Transition {
    let mut m = Machine {
        now,
        settings,
        target,
        wish,
        next: prev.clone(),
        mode: wish.mode,
        level: wish.level,
        notes: Vec::new(),
    };
    m.change_mode(prev);
    let from = m.next.phase;
    let asked = m.level;
    let protected = m.cap(from);
    let held = prev.hold_until.is_some_and(|until| now < until);
    if held {
        m.level = m.level.min(Level::Watch);
    } else {
        m.next.hold_until = None;
    }
    m.time_calm();
    m.forget_strikes();
    let step = match m.decide_move(prev, held) {
        Move::Tighten(level) => m.tighten(level, from),
        Move::Relax => m.relax(from, held),
        Move::Stay => {
            let enforced = m.mode == Mode::Enforce && prev.mode == Mode::Enforce;
            // mutation: converge-enforced-only
            let converge = enforced && target.guarded && prev.since < now;
            Step::Stay { converge }
        }
    };
    if protected {
        // Say what the unprotected guard would have done.
        m.notes.push(Note::new(
            format!("over budget ({asked:?}) but protected: not throttled"),
            Rule::Protected,
        ));
    }
    Transition {
        next: m.next,
        step,
        mode: m.mode,
        notes: m.notes,
    }
}

/// Where the phase goes this pass, before the state is updated for it.
enum Move {
    Stay,
    Tighten(Level),
    Relax,
}

/// One transition in progress.
struct Machine<'a> {
    now: DateTime<Utc>,
    settings: &'a GuardSettings,
    target: &'a Target,
    wish: &'a Wish,
    next: GuardState,
    /// The mode to act in.
    mode: Mode,
    /// The level asked, once capped.
    level: Level,
    notes: Vec<Note>,
}

impl Machine<'_> {
    /// A change of mode: a fresh state, except that a target held in enforce stays
    /// enforced, asking nothing, until its originals are back.
    fn change_mode(&mut self, prev: &GuardState) {
        if prev.mode == self.mode {
            return;
        }
        match (prev.mode, prev.phase) {
            (Mode::DryRun, _) | (Mode::Enforce, Phase::Normal | Phase::Watching) => {
                self.next = GuardState {
                    avg_duration_ms: self.next.avg_duration_ms,
                    version: prev.version,
                    ..GuardState::new(self.now, self.mode)
                };
            }
            (Mode::Enforce, _) => {
                self.mode = Mode::Enforce;
                self.level = Level::Normal;
                if prev.phase.is_tightened() {
                    self.next.phase = Phase::Recovering;
                    self.next.since = self.now;
                    self.next.calm_since = None;
                    self.notes.push(Note::new(
                        "enforce turned off: restoring original limits",
                        Rule::ModeChange,
                    ));
                }
            }
        }
    }

    /// Caps the level at `watch` for a protected target and one the guard may not
    /// change, with a notice the first time. True when the protected notice is due
    /// (it goes last, naming the level asked).
    fn cap(&mut self, from: Phase) -> bool {
        let first_time = !from.is_tightened() && from != Phase::Watching;
        let mut protected = false;
        // mutation: protected-never-throttled
        if self.wish.protected && self.level >= Level::Throttle(1) {
            self.level = Level::Watch;
            protected = first_time;
        }
        if !self.target.guarded && self.level >= Level::Throttle(1) {
            self.level = Level::Watch;
            if first_time {
                let why = unguarded_why(self.target.id.kind());
                self.notes
                    .push(Note::new(format!("over budget but {why}"), Rule::NotGuarded));
            }
        }
        protected
    }

    /// Calm is timed only where it decides something, so that a quiet target's state
    /// does not change (and need writing) on every pass.
    fn time_calm(&mut self) {
        let timed = matches!(
            self.next.phase,
            Phase::Watching | Phase::Throttled { .. } | Phase::Stopped
        );
        if self.wish.calm && timed {
            self.next.calm_since.get_or_insert(self.now);
        } else {
            self.next.calm_since = None;
        }
    }

    fn calm_for(&self) -> Duration {
        self.next.calm_since.map_or(Duration::zero(), |t| self.now - t)
    }

    /// Out of throttling for `strike_memory_minutes` since the last episode ended
    /// (since entering `normal`, for a state that does not say): strikes forgotten.
    fn forget_strikes(&mut self) {
        let out = matches!(self.next.phase, Phase::Normal | Phase::Watching);
        let remembered = self.next.strikes > 0 || self.next.episode_ended.is_some();
        let ended = self.next.episode_ended.unwrap_or(self.next.since);
        let memory = Duration::minutes(self.settings.strike_memory_minutes);
        // mutation: strikes-forgotten
        if out && remembered && self.now - ended >= memory {
            self.next.strikes = 0;
            self.next.episode_ended = None;
        }
    }

    /// Where the phase goes: the rules of each phase.
    fn decide_move(&mut self, prev: &GuardState, held: bool) -> Move {
        let calm_long = |m: &Self, d: Duration| m.wish.calm && m.calm_for() >= d;
        let cooldown = self.settings.cooldown(self.next.strikes);
        let dwelt = self.now - self.next.since >= Duration::minutes(self.settings.escalation_dwell_minutes);
        match self.next.phase {
            Phase::Normal | Phase::Watching => self.when_quiet(),
            Phase::Throttled { .. } | Phase::Stopped if held => Move::Relax,
            Phase::Throttled { level: now_at } => match self.level {
                Level::Stop => Move::Tighten(Level::Stop),
                Level::Throttle(k) if k > now_at && (self.wish.fast() || dwelt) => Move::Tighten(self.level),
                _ if calm_long(self, cooldown) => Move::Relax,
                _ => Move::Stay,
            },
            Phase::Stopped => match self.level {
                Level::Stop => Move::Stay,
                _ if calm_long(self, cooldown) => Move::Relax,
                Level::Throttle(_) if dwelt => Move::Tighten(self.level), // a new period
                _ => Move::Stay,
            },
            Phase::Recovering => self.when_recovering(prev),
        }
    }

    /// `normal` or `watching`: tighten at a throttle level, watch at the watch level,
    /// back to `normal` after calm for `relax_after_minutes`.
    fn when_quiet(&mut self) -> Move {
        if self.level >= Level::Throttle(1) {
            // mutation: attack-throttled
            return Move::Tighten(self.level);
        }
        if self.level == Level::Watch {
            if self.next.phase == Phase::Normal {
                self.next.phase = Phase::Watching;
                self.next.since = self.now;
                self.notes
                    .push(Note::new("spend above the watch threshold", self.wish.rule));
            }
        } else if self.next.phase == Phase::Watching
            && self.wish.calm
            && self.calm_for() >= Duration::minutes(self.settings.relax_after_minutes)
        {
            self.next.phase = Phase::Normal;
            self.next.since = self.now;
        }
        Move::Stay
    }

    /// `recovering`: a surge goes straight back to the peak level (a strike); quiet
    /// for the recovery watch with the originals in place ends the episode.
    fn when_recovering(&mut self, prev: &GuardState) -> Move {
        if self.level >= Level::Throttle(1) {
            let level = match self.level {
                Level::Throttle(k) => Level::Throttle(k.max(self.next.peak_level)),
                other => other,
            };
            self.next.strikes = self.next.strikes.saturating_add(1);
            self.notes.push(Note::new(
                "surge while recovering: back to the peak level",
                Rule::Relapse,
            ));
            return Move::Tighten(level);
        }
        let watched = self.now - self.next.since >= Duration::minutes(self.settings.recovery_watch_minutes);
        let originals_back = self.mode == Mode::DryRun
            || self
                .next
                .restore_point
                .as_ref()
                .is_none_or(|rp| rp.limits == self.target.limits);
        if watched && originals_back {
            let next = &mut self.next;
            next.phase = Phase::Normal;
            next.since = self.now;
            next.restore_point = None;
            next.applied = None;
            next.peak_level = 0;
            next.episode_ended = Some(self.now);
            if self.mode != prev.mode {
                next.mode = self.mode;
            }
            self.notes
                .push(Note::new("recovered: original limits in place", Rule::Calm));
        }
        Move::Stay
    }

    /// Tightens to `level`: the restore point is captured first if there is none (a
    /// new episode: a strike if it comes within the memory of the last one, whose
    /// end the state keeps only that long).
    fn tighten(&mut self, level: Level, from: Phase) -> Step {
        let next = &mut self.next;
        // mutation: restore-point-kept
        if next.restore_point.is_none() {
            next.restore_point = Some(RestorePoint {
                // mutation: restore-point-is-original
                limits: self.target.limits.clone(),
                captured_at: self.now,
            });
            // mutation: relapse-strike
            if next.episode_ended.is_some() {
                next.strikes = next.strikes.saturating_add(1);
            }
            next.episode_ended = None;
        }
        next.phase = match level {
            Level::Stop => Phase::Stopped,
            Level::Throttle(k) => Phase::Throttled { level: k },
            _ => next.phase,
        };
        if let Level::Throttle(k) = level {
            next.peak_level = next.peak_level.max(k);
        }
        next.since = self.now;
        next.calm_since = None;
        Step::Tighten {
            level,
            from,
            escalating: matches!(from, Phase::Throttled { .. }),
            rule: if from == Phase::Recovering {
                Rule::Relapse
            } else {
                self.wish.rule
            },
        }
    }

    /// Relaxes: `recovering`, with the originals going back.
    fn relax(&mut self, from: Phase, held: bool) -> Step {
        self.next.phase = Phase::Recovering;
        self.next.since = self.now;
        self.next.calm_since = None;
        let rule = if held { Rule::Released } else { Rule::Calm };
        self.notes.push(Note::new(
            format!("{} → recovering: restoring original limits", from.name()),
            rule,
        ));
        Step::Restore { rule }
    }
}
