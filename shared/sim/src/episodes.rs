//! Episodes: the stretches in which a budget had the guard's attention, as the
//! dowguard strategy lived them. An episode opens at the first pass whose report
//! puts the budget above `normal`, or that finds one of its targets held by the
//! guard, and closes at the first pass where neither is true: the budget is back
//! at `normal` and every one of its targets is back to its own limits.
//!
//! The backtest reports these per budget; `dowguard simulate --json` carries them
//! too, so the two can be compared line for line.

use chrono::{DateTime, Utc};
use dowguard_domain::{BudgetReport, Level};
use serde::Serialize;

/// One budget's episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// The budget.
    pub budget: String,
    /// The pass that opened it.
    pub start: DateTime<Utc>,
    /// Minutes from the run's start to `start`.
    pub start_minute: u32,
    /// The pass that closed it; `None` when it was still open at the run's end.
    pub end: Option<DateTime<Utc>>,
    /// Minutes from the run's start to `end`.
    pub end_minute: Option<u32>,
    /// The highest level the budget reached in it.
    pub level: Level,
    /// Whether the guard changed a limit of the budget's targets in it (a dry-run
    /// budget only watches).
    pub throttled: bool,
    /// The rule and figures at the pass that first reached `level`.
    pub reason: String,
    /// Requests the budget's targets refused (or let expire in a queue) from the
    /// episode's start to its end.
    pub refused: u64,
}

/// A level as the tables print it: `watch`, `throttle 2`, `stop`.
pub fn level_name(level: Level) -> String {
    match level {
        Level::Normal => "normal".into(),
        Level::Watch => "watch".into(),
        Level::Throttle(n) => format!("throttle {n}"),
        Level::Stop => "stop".into(),
    }
}

/// What one pass says about one budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a> {
    /// The pass's minute of the run (its end) and time.
    pub minute: u32,
    pub now: DateTime<Utc>,
    /// The budget's report in that pass.
    pub report: &'a BudgetReport,
    /// One of its targets is held by the guard after the pass.
    pub held: bool,
    /// The pass tightened one of its targets.
    pub tightened: bool,
    /// Requests its targets refused since the run began.
    pub refused_so_far: u64,
}

/// The episodes of every budget of a run, in the order of the budgets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Episodes {
    /// Per budget: the open episode and the refusals counted when it opened.
    open: Vec<Option<(Episode, u64)>>,
    closed: Vec<Episode>,
}

impl Episodes {
    pub(crate) fn new(budgets: usize) -> Episodes {
        Episodes {
            open: vec![None; budgets],
            closed: Vec::new(),
        }
    }

    /// Takes one pass's view of budget `b`.
    pub(crate) fn observe(&mut self, b: usize, seen: Seen<'_>) {
        let Some(slot) = self.open.get_mut(b) else { return };
        let active = seen.report.level > Level::Normal || seen.held;
        match slot {
            None if active => {
                *slot = Some((
                    Episode {
                        budget: seen.report.budget.to_string(),
                        start: seen.now,
                        start_minute: seen.minute,
                        end: None,
                        end_minute: None,
                        level: seen.report.level,
                        throttled: seen.tightened,
                        reason: reason(seen.report),
                        refused: 0,
                    },
                    seen.refused_so_far,
                ));
            }
            None => {}
            Some((episode, _)) if active => {
                episode.throttled |= seen.tightened;
                if seen.report.level > episode.level {
                    episode.level = seen.report.level;
                    episode.reason = reason(seen.report);
                }
            }
            Some(_) => {
                if let Some((mut episode, at_open)) = slot.take() {
                    episode.end = Some(seen.now);
                    episode.end_minute = Some(seen.minute);
                    episode.refused = seen.refused_so_far - at_open;
                    self.closed.push(episode);
                }
            }
        }
    }

    /// Every episode, the open ones ended by the run's end; `refused_at_end` holds
    /// each budget's refusals over the whole run.
    pub(crate) fn finish(mut self, refused_at_end: &[u64]) -> Vec<Episode> {
        for (b, slot) in self.open.into_iter().enumerate() {
            if let Some((mut episode, at_open)) = slot {
                episode.refused = refused_at_end.get(b).copied().unwrap_or(at_open) - at_open;
                self.closed.push(episode);
            }
        }
        self.closed
            .sort_by(|a, b| (a.start_minute, &a.budget).cmp(&(b.start_minute, &b.budget)));
        self.closed
    }
}

fn reason(report: &BudgetReport) -> String {
    let rule = serde_json::to_value(report.rule)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", report.rule));
    format!(
        "{rule}: spent {} of {}, projected {}, burn {} short / {} long",
        report.spent, report.amount, report.projected, report.burn_short, report.burn_long
    )
}
