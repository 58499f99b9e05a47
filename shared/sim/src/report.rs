//! What a run reports: per strategy, the money and the people it cost, the physical
//! floor of the attack, and whether the scenario's expectations are met.
//!
//! Definitions (also in `docs/simulator.md`):
//!
//! - **spend**: every served request priced with the price book, all targets.
//! - **overspend**: for every budget and every one of its periods in the run,
//!   `max(0, spend in the budget's scope − amount)`, summed.
//! - **exposure**: attack spend admitted from the attack's first minute on a target
//!   until the first minute in which a limit set by the strategy refused requests on
//!   that target (all of it if that never happens), summed over targets.
//! - **physical floor**: for every attacked target, its highest unguarded attack
//!   spend in one minute × (metric delay + schedule interval), summed: what any guard
//!   that reads one-minute metrics must let through before its first limit.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use dowguard_domain::Money;
use serde::Serialize;

use crate::engine::{Exact, Outcome, Strategy};
use crate::scenario::{Scenario, ScenarioClass};

/// One budget period as a strategy lived it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodOutcome {
    /// Start of the period.
    pub start: DateTime<Utc>,
    /// The budget's amount.
    pub amount: Money,
    /// Spend in the budget's scope during the period (within the run).
    pub spend: Money,
    /// `max(0, spend − amount)`.
    pub overspend: Money,
    /// Legit requests of the scope rejected (or expired in a queue) in the period.
    pub legit_rejected: u64,
    /// Requests of the scope in the period (legit and attack, served or not).
    pub requests: u64,
    /// Requests of the scope refused (or expired in a queue) in the period.
    pub refused: u64,
    /// False for the last period when the run ends before it does.
    pub complete: bool,
}

/// One budget's periods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetOutcome {
    /// Budget name.
    pub budget: String,
    /// Its periods in order.
    pub periods: Vec<PeriodOutcome>,
}

/// The figures of one strategy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrategyReport {
    /// Which strategy.
    pub strategy: Strategy,
    /// Total spend.
    pub spend: Money,
    /// Overspend against the budgets (see the module docs).
    pub overspend: Money,
    /// Spend on served attack requests.
    pub attack_spend: Money,
    /// Attack spend admitted before the strategy's first effective limit.
    pub exposure: Money,
    /// Overspend as a multiple of the physical floor, in millionths (attacks only).
    pub overspend_vs_floor_millionths: Option<i64>,
    /// Exposure as a multiple of the physical floor, in millionths (attacks only).
    pub exposure_vs_floor_millionths: Option<i64>,
    /// Minutes from the attack's first minute (or the run's start, without attack)
    /// to the strategy's first action; negative if it acted before the attack.
    pub minutes_to_first_action: Option<i64>,
    /// Why it first acted.
    pub first_reason: Option<String>,
    /// Legit requests in the trace.
    pub legit_requests: u64,
    /// Legit requests rejected (or expired in a queue).
    pub legit_rejected: u64,
    /// Attack requests in the trace.
    pub attack_requests: u64,
    /// Attack requests rejected (or expired in a queue).
    pub attack_rejected: u64,
    /// Events still queued when the run ended (deferred, neither served nor lost).
    pub queued_at_end: u64,
    /// Limit changes that tightened.
    pub tightenings: u64,
    /// Limit changes that restored.
    pub restores: u64,
    /// Notifications or alerts.
    pub notifications: u64,
    /// Decision passes run (dowguard).
    pub evaluations: u64,
    /// The guard's own CloudWatch cost: metrics requested and alarms.
    pub guard_cost: Money,
    /// Passes whose metrics tripwire had functions measured one by one (dowguard only).
    pub tripwire_trips: u64,
    /// dowguard's alarms that went to ALARM.
    pub alarm_firings: u64,
    /// Passes the alarm responder ran on an alarmed target (dowguard only).
    pub responder_passes: u64,
    /// Per target the strategy tightened: the first minute and which path acted
    /// (`schedule`: the evaluator's pass or the baseline's rule; `alarm`: the alarm
    /// responder, or the kill switch's alarm).
    pub first_actions: Vec<crate::engine::FirstAction>,
    /// Wall-clock time spent in the decision core (machine-dependent, not reported
    /// in JSON).
    #[serde(skip)]
    pub decide_time: std::time::Duration,
    /// Wall-clock time a bare walk over the same passes' inputs took
    /// ([`dowguard_domain::window::bare_walk`]; machine-dependent, not in JSON).
    #[serde(skip)]
    pub walk_time: std::time::Duration,
    /// Per budget, per period.
    pub budgets: Vec<BudgetOutcome>,
    /// The budgets' episodes: when each had the guard's attention, how far it
    /// went and what its targets refused meanwhile (dowguard only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<crate::episodes::Episode>,
    /// Callers the targeted levels held: keys quarantined, addresses blocked
    /// (dowguard only).
    pub sources_held: u64,
    /// Cumulative spend of the first budget's scope: (minute, spend).
    #[serde(skip)]
    pub series: Vec<(u32, Money)>,
}

/// A checked expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Short name of the check.
    pub check: &'static str,
    /// Whether it holds.
    pub met: bool,
    /// The figures.
    pub detail: String,
}

/// The outcome of a scenario run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// What it shows.
    pub description: String,
    /// Start of minute 0.
    pub start: DateTime<Utc>,
    /// Minutes simulated.
    pub minutes: u32,
    /// Metric delay in minutes.
    pub metric_delay_minutes: i64,
    /// dowguard's schedule interval in minutes.
    pub schedule_interval_minutes: u32,
    /// The first budget's amount per period (the plot's budget line).
    pub budget_amount: Money,
    /// The physical floor (zero without attack).
    pub floor: Money,
    /// The scenario's class, if it states one.
    pub class: Option<ScenarioClass>,
    /// One entry per strategy, in [`Strategy::ALL`] order.
    pub strategies: Vec<StrategyReport>,
    /// The scenario's expectations, checked.
    pub verdicts: Vec<Verdict>,
    /// Minute boundaries of the first budget's periods (for the plot).
    #[serde(skip)]
    pub budget_steps: Vec<u32>,
}

fn ratio(part: Money, whole: Money) -> Option<i64> {
    if !whole.is_positive() {
        return None;
    }
    i64::try_from(part.picos().saturating_mul(1_000_000) / whole.picos()).ok()
}

/// `part / whole` as a percentage with two decimals.
fn percent(part: u64, whole: u64) -> String {
    let hundredths = u128::from(part) * 10_000 / u128::from(whole.max(1));
    format!("{}.{:02} %", hundredths / 100, hundredths % 100)
}

fn percent_of_millionths(millionths: i64) -> String {
    format!("{}.{:02} %", millionths / 10_000, (millionths % 10_000) / 100)
}

fn ratio_text(millionths: Option<i64>) -> String {
    millionths.map_or_else(
        || "-".into(),
        |r| format!("{}.{:02}x", r / 1_000_000, (r % 1_000_000) / 10_000),
    )
}

impl Report {
    pub(crate) fn build(sc: &Scenario, outcomes: Vec<Outcome>) -> Report {
        let delay = sc.guard.settings.metric_delay_minutes;
        let window = i128::from(delay) + i128::from(sc.guard.interval_minutes);
        let unguarded = outcomes.iter().find(|o| o.strategy == Strategy::Unguarded);
        let floor: Money = unguarded
            .map(|o| {
                o.tallies
                    .iter()
                    .map(|t| {
                        t.peak_attack_spend
                            .money()
                            .mul_div(window, 1)
                            .unwrap_or(Money::ZERO)
                    })
                    .sum()
            })
            .unwrap_or(Money::ZERO);
        let onset = unguarded.and_then(|o| o.tallies.iter().filter_map(|t| t.onset).min());
        let attack = onset.is_some();
        let strategies: Vec<StrategyReport> = outcomes
            .into_iter()
            .map(|o| {
                let overspend: Money = o.periods.iter().flatten().map(|p| p.overspend).sum();
                let exposure = o.tallies.iter().map(|t| t.exposure).sum::<Exact>().money();
                let reference = i64::from(onset.unwrap_or(0));
                StrategyReport {
                    strategy: o.strategy,
                    spend: o.tallies.iter().map(|t| t.spend).sum::<Exact>().money(),
                    overspend,
                    attack_spend: o.tallies.iter().map(|t| t.attack_spend).sum::<Exact>().money(),
                    exposure,
                    overspend_vs_floor_millionths: if attack { ratio(overspend, floor) } else { None },
                    exposure_vs_floor_millionths: if attack { ratio(exposure, floor) } else { None },
                    minutes_to_first_action: o.first_action.map(|m| i64::from(m) - reference),
                    first_reason: o.first_reason,
                    legit_requests: o.tallies.iter().map(|t| t.legit_requests).sum(),
                    legit_rejected: o.tallies.iter().map(|t| t.legit_rejected).sum(),
                    attack_requests: o.tallies.iter().map(|t| t.attack_requests).sum(),
                    attack_rejected: o.tallies.iter().map(|t| t.attack_rejected).sum(),
                    queued_at_end: o.tallies.iter().map(|t| t.queued_at_end).sum(),
                    tightenings: o.tightenings,
                    restores: o.restores,
                    notifications: o.notifications,
                    evaluations: o.evaluations,
                    guard_cost: o.guard_cost,
                    tripwire_trips: o.tripwire_trips,
                    alarm_firings: o.alarm_firings,
                    responder_passes: o.responder_passes,
                    first_actions: o.first_actions,
                    decide_time: o.decide_time,
                    walk_time: o.walk_time,
                    budgets: o
                        .periods
                        .into_iter()
                        .zip(&sc.budgets)
                        .map(|(periods, b)| BudgetOutcome {
                            budget: b.id.to_string(),
                            periods,
                        })
                        .collect(),
                    series: o.series,
                    episodes: o.episodes,
                    sources_held: o.sources_held,
                }
            })
            .collect();
        let budget_steps = strategies
            .first()
            .and_then(|s| s.budgets.first())
            .map(|b| {
                b.periods
                    .iter()
                    .map(|p| u32::try_from((p.start - sc.start).num_minutes().max(0)).unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        let mut report = Report {
            scenario: sc.name.clone(),
            description: sc.description.clone(),
            start: sc.start,
            minutes: sc.minutes,
            metric_delay_minutes: delay,
            schedule_interval_minutes: sc.guard.interval_minutes,
            budget_amount: sc.budgets.first().map_or(Money::ZERO, |b| b.amount),
            floor,
            class: sc.expect.as_ref().map(|e| e.class),
            strategies,
            verdicts: Vec::new(),
            budget_steps,
        };
        report.verdicts = report.check(sc);
        report
    }

    /// The figures of one strategy.
    pub fn strategy(&self, strategy: Strategy) -> Option<&StrategyReport> {
        self.strategies.iter().find(|s| s.strategy == strategy)
    }

    /// The scenario's expectations, checked (empty without expectations).
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    fn check(&self, sc: &Scenario) -> Vec<Verdict> {
        let Some(expect) = &sc.expect else {
            return Vec::new();
        };
        let (Some(dg), Some(unguarded), Some(budgets)) = (
            self.strategy(Strategy::Dowguard),
            self.strategy(Strategy::Unguarded),
            self.strategy(Strategy::BudgetsAction),
        ) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match expect.class {
            ScenarioClass::Attack => {
                out.push(Verdict {
                    check: "acts",
                    met: dg.tightenings > 0,
                    detail: format!("dowguard tightened {} time(s)", dg.tightenings),
                });
                out.push(Verdict {
                    check: "beats-unguarded",
                    met: dg.spend < unguarded.spend,
                    detail: format!("spend {} with dowguard, {} unguarded", dg.spend, unguarded.spend),
                });
                out.push(Verdict {
                    check: "no-worse-than-budgets",
                    met: dg.overspend <= budgets.overspend,
                    detail: format!(
                        "overspend {} with dowguard, {} with a Budgets action",
                        dg.overspend, budgets.overspend
                    ),
                });
            }
            ScenarioClass::Benign | ScenarioClass::Exhausting => {
                // Periods whose unguarded spend stays within budget: no legit request
                // may be rejected there.
                let mut rejected_within = 0;
                let mut periods_within = 0;
                for (ub, db) in unguarded.budgets.iter().zip(&dg.budgets) {
                    for (up, dp) in ub.periods.iter().zip(&db.periods) {
                        if up.spend <= up.amount {
                            periods_within += 1;
                            rejected_within += dp.legit_rejected;
                        }
                    }
                }
                out.push(Verdict {
                    check: "no-legit-rejected-within-budget",
                    met: rejected_within == 0,
                    detail: format!(
                        "{rejected_within} legit request(s) rejected in the {periods_within} budget period(s) that stay within budget unguarded"
                    ),
                });
                if expect.class == ScenarioClass::Benign {
                    out.push(Verdict {
                        check: "no-caller-held",
                        met: dg.sources_held == 0,
                        detail: format!("{} caller(s) quarantined or blocked", dg.sources_held),
                    });
                }
                if expect.class == ScenarioClass::Exhausting {
                    out.push(Verdict {
                        check: "acts-and-says-why",
                        met: dg.tightenings > 0 && dg.first_reason.is_some(),
                        detail: dg
                            .first_reason
                            .clone()
                            .unwrap_or_else(|| "dowguard never tightened".into()),
                    });
                    out.push(Verdict {
                        check: "beats-unguarded",
                        met: dg.overspend < unguarded.overspend,
                        detail: format!(
                            "overspend {} with dowguard, {} unguarded",
                            dg.overspend, unguarded.overspend
                        ),
                    });
                    // In every period the traffic would overspend, the guard keeps
                    // within 1% of the budget and still lets 90% of it be spent:
                    // it must not cut real users off early.
                    let mut kept = true;
                    let mut used = true;
                    let mut figures = String::new();
                    for (ub, db) in unguarded.budgets.iter().zip(&dg.budgets) {
                        for (up, dp) in ub.periods.iter().zip(&db.periods) {
                            if up.spend <= up.amount {
                                continue;
                            }
                            let slack = dp.amount.mul_div(1, 100).unwrap_or(Money::ZERO);
                            let floor = dp.amount.mul_div(90, 100).unwrap_or(Money::ZERO);
                            kept &= dp.overspend <= slack;
                            used &= dp.spend >= floor;
                            let _ = write!(
                                figures,
                                "{} from {}: spent {} of {} (unguarded {}); ",
                                db.budget,
                                dp.start.format("%Y-%m-%d"),
                                dp.spend,
                                dp.amount,
                                up.spend
                            );
                        }
                    }
                    out.push(Verdict {
                        check: "keeps-within-budget",
                        met: kept,
                        detail: format!("overspend at most 1% of the budget: {figures}"),
                    });
                    out.push(Verdict {
                        check: "uses-the-budget",
                        met: used,
                        detail: format!("at least 90% of the budget spent before cutting off: {figures}"),
                    });
                }
            }
        }
        if let Some(max) = expect.legit_refused_max_millionths {
            let refused = i128::from(dg.legit_rejected) * 1_000_000;
            let allowed = i128::from(dg.legit_requests) * i128::from(max);
            out.push(Verdict {
                check: "legit-refused-at-most",
                met: refused <= allowed,
                detail: format!(
                    "{} of {} legit requests refused ({}), {} caller(s) held (at most {})",
                    dg.legit_rejected,
                    dg.legit_requests,
                    percent(dg.legit_rejected, dg.legit_requests),
                    dg.sources_held,
                    percent_of_millionths(max)
                ),
            });
        }
        if let Some(max) = expect.floor_ratio_max_millionths {
            let bound = self
                .floor
                .mul_div(i128::from(max), 1_000_000)
                .unwrap_or(Money::ZERO);
            out.push(Verdict {
                check: "overspend-within-floor",
                met: self.floor.is_positive() && dg.overspend <= bound,
                detail: format!(
                    "overspend {} vs {} x floor {} = {}",
                    dg.overspend,
                    ratio_text(Some(max)),
                    self.floor,
                    bound
                ),
            });
        }
        if let Some(max) = expect.exposure_ratio_max_millionths {
            let bound = self
                .floor
                .mul_div(i128::from(max), 1_000_000)
                .unwrap_or(Money::ZERO);
            out.push(Verdict {
                check: "exposure-within-floor",
                met: self.floor.is_positive() && dg.exposure <= bound,
                detail: format!(
                    "attack spend before the first effective limit {} ({} the floor {}) vs {} x floor = {bound}",
                    dg.exposure,
                    ratio_text(dg.exposure_vs_floor_millionths),
                    self.floor,
                    ratio_text(Some(max)),
                ),
            });
        }
        if let Some(max) = expect.exposure_attributed_ratio_max_millionths {
            // The floor is the peak minute's attack spend over the metric delay and
            // one schedule period; the ranking's own delay adds that many minutes more.
            let window = i128::from(self.metric_delay_minutes) + i128::from(self.schedule_interval_minutes);
            let delay = i128::from(sc.guard.attribution_delay_minutes);
            let bound = self
                .floor
                .mul_div(i128::from(max), 1_000_000)
                .unwrap_or(Money::ZERO)
                + self.floor.mul_div(delay, window.max(1)).unwrap_or(Money::ZERO);
            out.push(Verdict {
                check: "exposure-within-floor-plus-attribution",
                met: self.floor.is_positive() && dg.exposure <= bound,
                detail: format!(
                    "attack spend before the first effective limit {} ({} the floor {}) vs {} x floor + {delay} min of ranking delay = {bound}",
                    dg.exposure,
                    ratio_text(dg.exposure_vs_floor_millionths),
                    self.floor,
                    ratio_text(Some(max)),
                ),
            });
        }
        if let Some(max) = expect.budgets_ratio_max_millionths {
            let bound = budgets
                .overspend
                .mul_div(i128::from(max), 1_000_000)
                .unwrap_or(Money::ZERO);
            out.push(Verdict {
                check: "fraction-of-budgets-overspend",
                met: budgets.overspend.is_positive() && dg.overspend <= bound,
                detail: format!(
                    "overspend {} vs {} x Budgets-action overspend {} = {bound}",
                    dg.overspend,
                    ratio_text(Some(max)),
                    budgets.overspend
                ),
            });
        }
        out
    }

    /// A table for people: one row per strategy, then the checks.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {} — {} minutes from {}, metric delay {} min, schedule every {} min",
            self.scenario,
            self.minutes,
            self.start.format("%Y-%m-%d %H:%M UTC"),
            self.metric_delay_minutes,
            self.schedule_interval_minutes
        );
        if !self.description.is_empty() {
            let _ = writeln!(out, "{}", self.description);
        }
        if self.floor.is_positive() {
            let _ = writeln!(out, "physical floor: {}", self.floor);
        }
        out.push('\n');
        out.push_str(&render(
            &strategy_header(false),
            &self
                .strategies
                .iter()
                .map(|s| strategy_row(None, s))
                .collect::<Vec<_>>(),
        ));
        if let Some(dg) = self.strategy(Strategy::Dowguard)
            && let Some(reason) = &dg.first_reason
        {
            let _ = writeln!(out, "\ndowguard first acted because: {reason}");
        }
        if let Some(dg) = self.strategy(Strategy::Dowguard)
            && dg.alarm_firings > 0
        {
            let firsts: Vec<String> = dg
                .first_actions
                .iter()
                .map(|f| {
                    let path = match f.path {
                        crate::engine::Path::Schedule => "schedule",
                        crate::engine::Path::Alarm => "alarm",
                    };
                    format!("{} at minute {} ({path})", f.target, f.minute)
                })
                .collect();
            let _ = writeln!(
                out,
                "dowguard's alarms fired {} time(s), the responder ran {} pass(es); first limits: {}",
                dg.alarm_firings,
                dg.responder_passes,
                if firsts.is_empty() {
                    "none".to_string()
                } else {
                    firsts.join(", ")
                }
            );
        }
        if !self.verdicts.is_empty() {
            out.push('\n');
            for v in &self.verdicts {
                let _ = writeln!(
                    out,
                    "[{}] {}: {}",
                    if v.met { "met" } else { "MISSED" },
                    v.check,
                    v.detail
                );
            }
        }
        out
    }
}

fn strategy_header(with_scenario: bool) -> Vec<&'static str> {
    let mut h = Vec::new();
    if with_scenario {
        h.push("scenario");
    }
    h.extend([
        "strategy",
        "spend",
        "overspend",
        "vs floor",
        "exposure",
        "vs floor",
        "1st action (min)",
        "legit rejected",
        "attack rejected",
        "guard CW cost",
    ]);
    h
}

fn strategy_row(scenario: Option<&str>, s: &StrategyReport) -> Vec<String> {
    let mut row = Vec::new();
    if let Some(name) = scenario {
        row.push(name.to_string());
    }
    row.extend([
        s.strategy.name().to_string(),
        s.spend.to_string(),
        s.overspend.to_string(),
        ratio_text(s.overspend_vs_floor_millionths),
        s.exposure.to_string(),
        ratio_text(s.exposure_vs_floor_millionths),
        s.minutes_to_first_action
            .map_or_else(|| "never".into(), |m| m.to_string()),
        format!("{} / {}", s.legit_rejected, s.legit_requests),
        format!("{} / {}", s.attack_rejected, s.attack_requests),
        s.guard_cost.to_string(),
    ]);
    row
}

/// Renders rows under a header with aligned columns (numbers right-aligned).
fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w - c.chars().count();
                if i < 2 {
                    format!("{c}{}", " ".repeat(pad))
                } else {
                    format!("{}{c}", " ".repeat(pad))
                }
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| (*h).to_string()).collect(), &mut out);
    line(widths.iter().map(|w| "-".repeat(*w)).collect(), &mut out);
    for row in rows {
        line(row.clone(), &mut out);
    }
    out
}

/// One table for many scenarios: a row per scenario and strategy, then every check.
pub fn library_table(reports: &[Report]) -> String {
    let rows: Vec<Vec<String>> = reports
        .iter()
        .flat_map(|r| r.strategies.iter().map(|s| strategy_row(Some(&r.scenario), s)))
        .collect();
    let mut out = render(&strategy_header(true), &rows);
    out.push('\n');
    let (mut met, mut missed) = (0, 0);
    for r in reports {
        for v in &r.verdicts {
            if v.met {
                met += 1;
            } else {
                missed += 1;
            }
            let _ = writeln!(
                out,
                "[{}] {} {}: {}",
                if v.met { "met" } else { "MISSED" },
                r.scenario,
                v.check,
                v.detail
            );
        }
    }
    let _ = writeln!(out, "\n{met} expectations met, {missed} missed");
    out
}
