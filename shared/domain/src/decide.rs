//! A decision pass: (budgets, states, metric windows, prices, now) → (new states,
//! actions, budget reports). Pure: no I/O, no clock, no environment.
//!
//! [`decide`] composes the steps, each in a module of its own:
//!
//! 1. [`crate::window`] prices every target's windows once;
//! 2. [`crate::judge`] judges every budget on its members' figures;
//! 3. [`crate::wish`] gathers what the budgets ask of each target;
//! 4. [`crate::transition`] moves each target's state, most expensive first;
//! 5. [`crate::limits`] turns a tightening into concrete limits, from the pool;
//! 6. [`crate::act`] turns the outcome into actions, in the order to apply them.
//!
//! The contract with the shell: persist the returned states (restore points
//! included) **before** applying the actions. Deciding again on the outcome adds no
//! action; a change that did not happen is decided again (convergence).
//!
//! The crate's docs walk one pass through every step; here, the pass that has
//! nothing to do. A budget whose targets spend nothing is reported, and no target is
//! stepped: no state to write, no action.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::*;
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), Limits::unset(id.kind()));
//! let budget = Budget::parse(BudgetSpec {
//!     id: "shop".into(),
//!     scope: "account".into(),
//!     period: "day".into(),
//!     amount: "50".into(),
//!     thresholds: vec![],
//!     mode: "enforce".into(),
//!     owner: "finance@example.com".into(),
//!     topic: None,
//!     floors: Default::default(),
//!     protected: false,
//! })?;
//! // States and metrics in the order of the targets: a slice instead of a map.
//! let (states, metrics): ([Option<GuardState>; 1], [Option<TargetMetrics>; 1]) = ([None], [None]);
//! let decision = decide(&Inputs {
//!     now: Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap(),
//!     budgets: &[budget],
//!     targets: &[stage],
//!     states: &states[..],
//!     metrics: &metrics[..],
//!     prices: &prices,
//!     account_usage: AccountUsage::default(),
//!     concurrency: AccountConcurrency::default(),
//!     gaps: &Gaps::NONE,
//!     attribution: &source::Attribution::NONE,
//!     settings: &GuardSettings::default(),
//! });
//! assert_eq!((decision.reports[0].level, decision.reports[0].targets), (Level::Normal, 1));
//! assert!(decision.states.is_empty() && decision.actions.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::act::{self, Stamp};
use crate::action::{Action, Intent, Reason, Rule};
use crate::budget::{Budget, BudgetId, BurnRate, Mode, Period};
use crate::coverage::Coverage;
use crate::gaps::Gaps;
use crate::judge::{Verdict, judge};
pub use crate::limits::AccountConcurrency;
use crate::limits::{Caps, Pool, Sizing, limits_for};
use crate::money::Money;
use crate::pricebook::Prices;
pub use crate::settings::GuardSettings;
use crate::source::Attribution;
use crate::state::{GuardState, Level, Phase};
use crate::target::{Limits, Target, TargetId, TargetKind};
use crate::targeted::{self, Plan};
use crate::transition::{Step, Transition, transition};
use crate::usage::{AccountUsage, TargetMetrics};
use crate::window::{Figures, Frame, Pricing};
use crate::wish::{Shares, Wish};

/// Per-target data a pass reads (metrics, states): a map by target id, or a slice
/// in the order of [`Inputs::targets`] for a caller that keeps its data that way and
/// so spares the pass a lookup per target.
pub trait ByTarget<V> {
    /// The entry of the target at `index` of `Inputs::targets`, whose id is `id`.
    fn for_target(&self, index: usize, id: &TargetId) -> Option<&V>;
    /// True when no target has an entry.
    fn is_empty(&self) -> bool;
}

impl<V, S: BuildHasher> ByTarget<V> for HashMap<TargetId, V, S> {
    fn for_target(&self, _: usize, id: &TargetId) -> Option<&V> {
        self.get(id)
    }

    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

/// Figures shared with a cache that keeps them between passes (the metrics
/// adapter's): read through the `Arc`, never copied.
impl<S: BuildHasher> ByTarget<TargetMetrics> for HashMap<TargetId, std::sync::Arc<TargetMetrics>, S> {
    fn for_target(&self, _: usize, id: &TargetId) -> Option<&TargetMetrics> {
        self.get(id).map(AsRef::as_ref)
    }

    fn is_empty(&self) -> bool {
        HashMap::is_empty(self)
    }
}

impl<V> ByTarget<V> for [Option<V>] {
    fn for_target(&self, index: usize, _: &TargetId) -> Option<&V> {
        self.get(index).and_then(Option::as_ref)
    }

    fn is_empty(&self) -> bool {
        self.iter().all(Option::is_none)
    }
}

/// Everything one decision pass reads.
#[derive(Debug)]
pub struct Inputs<'a, G: ?Sized = HashMap<TargetId, GuardState>, M: ?Sized = HashMap<TargetId, TargetMetrics>>
{
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// All budgets.
    pub budgets: &'a [Budget],
    /// All discovered targets with their current limits.
    pub targets: &'a [Target],
    /// Guard states by target (absent = never acted on).
    pub states: &'a G,
    /// Metrics by target (absent = no traffic).
    pub metrics: &'a M,
    /// Prices of the deployment's region.
    pub prices: &'a Prices,
    /// The account's month-to-date usage (volume tiers, free tier).
    pub account_usage: AccountUsage,
    /// The account's concurrency figures.
    pub concurrency: AccountConcurrency,
    /// What the pass could not see: a budget with a gap never relaxes its members.
    pub gaps: &'a Gaps,
    /// Who sends each attributed API stage its requests, and the levers it offers
    /// (see [`crate::targeted`]); [`Attribution::NONE`] guards every stage whole.
    pub attribution: &'a Attribution,
    /// Tunables.
    pub settings: &'a GuardSettings,
}

/// Where one budget stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Budget name.
    pub budget: BudgetId,
    /// Its period.
    pub period: Period,
    /// Mode.
    pub mode: Mode,
    /// The budget.
    pub amount: Money,
    /// Spent so far in the period (served requests only).
    pub spent: Money,
    /// Spent plus the long-window spend rate over the rest of the period.
    pub projected: Money,
    /// Short-window spend against the period's even pace (1× = on budget).
    pub burn_short: BurnRate,
    /// Long-window spend against the period's even pace.
    pub burn_long: BurnRate,
    /// Short-window demand (served + throttled) against the remaining budget.
    pub demand_short: BurnRate,
    /// Long-window demand against the remaining budget.
    pub demand_long: BurnRate,
    /// The level the figures call for.
    pub level: Level,
    /// The rule that set the level.
    pub rule: Rule,
    /// Targets the budget covers.
    pub targets: usize,
    /// A target scope that discovery did not find (budget covers nothing).
    pub missing_target: bool,
    /// Why the figures may be incomplete this pass (a service not listed, partial or
    /// ambiguous metrics, unreadable stored items); while any is, the budget's
    /// members are held where they are: never relaxed or restored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

/// The outcome of one decision pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// States that changed; persist them before applying any action.
    pub states: Vec<(TargetId, GuardState)>,
    /// Actions, most expensive first within tightening, then restores, then notices.
    pub actions: Vec<Action>,
    /// One report per budget, in the order of `Inputs::budgets`.
    pub reports: Vec<BudgetReport>,
}

/// The reason given when no budget covers a target any more.
const ORPHAN: Reason = Reason {
    budget: None,
    rule: Rule::Calm,
    level: Level::Normal,
    spent: Money::ZERO,
    amount: Money::ZERO,
    projected: Money::ZERO,
    burn_short: BurnRate(0),
    burn_long: BurnRate(0),
};

/// What one budget concluded, for the targets it drives.
#[derive(Debug)]
struct Judged {
    reason: Reason,
    remaining: Money,
}

/// What every target's step reads: the pass's inputs that are not per-target
/// lookups, and what the earlier steps worked out.
struct Pass<'a> {
    now: DateTime<Utc>,
    budgets: &'a [Budget],
    targets: &'a [Target],
    settings: &'a GuardSettings,
    gaps: &'a Gaps,
    attribution: &'a Attribution,
    account_limit: u32,
    frame: Frame,
    pricing: Pricing,
    /// Each target's stored state, looked up once.
    states: Vec<Option<&'a GuardState>>,
    /// Each target's figures.
    figures: Vec<Figures>,
    /// Each budget's conclusion, in budget order.
    judged: Vec<Judged>,
}

/// Decides one pass. See the module docs for the steps and the contract.
pub fn decide<G, M>(inputs: &Inputs<'_, G, M>) -> Decision
where
    G: ByTarget<GuardState> + ?Sized,
    M: ByTarget<TargetMetrics> + ?Sized,
{
    let frame = Frame::new(inputs.now, inputs.settings);
    let units = inputs.prices.at(&inputs.account_usage);
    let pricing = Pricing::new(frame, units, inputs.settings.default_avg_duration_ms);
    let states: Vec<Option<&GuardState>> = if inputs.states.is_empty() {
        vec![None; inputs.targets.len()]
    } else {
        inputs
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| inputs.states.for_target(i, &t.id))
            .collect()
    };
    // 1. Price each target once.
    let empty = TargetMetrics::default();
    let figures: Vec<Figures> = inputs
        .targets
        .iter()
        .zip(&states)
        .enumerate()
        .map(|(i, (t, state))| {
            let metrics = inputs.metrics.for_target(i, &t.id).unwrap_or(&empty);
            pricing.figures(t, metrics, state.map_or(0, |s| s.avg_duration_ms))
        })
        .collect();
    let mut pass = Pass {
        now: inputs.now,
        budgets: inputs.budgets,
        targets: inputs.targets,
        settings: inputs.settings,
        gaps: inputs.gaps,
        attribution: inputs.attribution,
        account_limit: inputs.concurrency.limit,
        frame,
        pricing,
        states,
        figures,
        judged: Vec::with_capacity(inputs.budgets.len()),
    };
    // 2 and 3. Judge each budget; gather what they ask of each target.
    let (mut wishes, reports) = pass.judge_budgets();
    let mut out = Decision {
        reports,
        ..Decision::default()
    };
    // 4 to 6. Step each target that has something to step, most expensive first.
    let mut pool = Pool::new(inputs.concurrency);
    for i in pass.order(&wishes) {
        let wish = match wishes[i].take() {
            Some(wish) => wish,
            None => match pass.orphan(i) {
                Some(wish) => wish,
                None => continue,
            },
        };
        pass.step(i, wish, &mut pool, &mut out);
    }
    act::order(&mut out.actions);
    out
}

impl Pass<'_> {
    /// Judges every budget and gathers each target's wish; one report per budget.
    fn judge_budgets(&mut self) -> (Vec<Option<Wish>>, Vec<BudgetReport>) {
        let coverage = Coverage::new(self.targets, self.budgets);
        let mut wishes: Vec<Option<Wish>> = vec![None; self.targets.len()];
        let mut reports = Vec::with_capacity(self.budgets.len());
        let mut members: Vec<usize> = Vec::new();
        for (b, budget) in self.budgets.iter().enumerate() {
            let missing = !coverage.members_into(budget, &mut members);
            let gaps = self.gaps_of(budget, &members);
            let mut total = Figures::default();
            for &i in &members {
                total += &self.figures[i];
            }
            let verdict = judge(budget, &total, &self.frame, self.settings, !gaps.is_empty());
            reports.push(report(budget, &verdict, (members.len(), missing), gaps));
            let shares = Shares::of(
                &members,
                &self.figures,
                &total,
                &verdict,
                (&self.frame, self.settings),
            );
            for &i in &members {
                let plan = self.targets[i].id.kind() == TargetKind::UsagePlan;
                let part = shares.part(i, self.figures[i].short_demand, plan);
                wishes[i]
                    .get_or_insert_with(Wish::new)
                    .hear(b, budget, &verdict, part);
            }
            self.judged.push(Judged {
                reason: verdict.reason(budget),
                remaining: verdict.remaining,
            });
        }
        (wishes, reports)
    }

    /// Why `budget`'s figures may be incomplete: every unreadable stored item, and
    /// the gaps of its members.
    fn gaps_of(&self, budget: &Budget, members: &[usize]) -> Vec<String> {
        if self.gaps.is_empty() {
            return Vec::new();
        }
        let mut gaps = self.gaps.stored.clone();
        gaps.extend(
            self.gaps
                .of_budget(budget, members.iter().map(|&i| &self.targets[i])),
        );
        gaps
    }

    /// The targets to step, most expensive first. A target the guard never acted on
    /// that every budget finds on pace has nothing to step: its fresh state stays as
    /// it is, and no action follows. A target whose stored state cannot be read is
    /// left untouched: stepping it from a fresh state could capture its tightened
    /// limits as the originals.
    fn order(&self, wishes: &[Option<Wish>]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.targets.len())
            .filter(|&i| {
                self.states[i].is_some() || wishes[i].as_ref().is_some_and(|w| w.level > Level::Normal)
            })
            .filter(|&i| self.gaps.states.is_empty() || !self.gaps.states.contains_key(&self.targets[i].id))
            .collect();
        order.sort_by(|a, b| self.figures[*b].short_demand.cmp(&self.figures[*a].short_demand));
        order
    }

    /// The wish of a target no budget covers: a held target is released; otherwise
    /// nothing. While a stored budget is unreadable, it may be the one covering it:
    /// held.
    fn orphan(&self, i: usize) -> Option<Wish> {
        let prev = self.states[i]?;
        let held = prev.phase.is_tightened() || prev.phase == Phase::Recovering;
        (held && self.gaps.stored.is_empty()).then(|| Wish::orphan(prev.mode))
    }

    /// Steps target `i` with `wish`: its transition, then its limits and actions.
    fn step(&self, i: usize, wish: Wish, pool: &mut Pool, out: &mut Decision) {
        let target = &self.targets[i];
        let fresh;
        let prev = match self.states[i] {
            Some(state) => state,
            None => {
                fresh = GuardState::new(self.now, wish.mode);
                &fresh
            }
        };
        let mut t = transition(prev, &wish, target, self.now, self.settings);
        let driver = wish.driver.map(|b| &self.budgets[b]);
        let stamp = Stamp {
            target,
            mode: t.mode,
            priority: self.figures[i].priority(&self.frame),
            reason: wish.driver.map_or(&ORPHAN, |b| &self.judged[b].reason),
        };
        let mut actions: Vec<Action> = Vec::new();
        // Callers held in an earlier budget period go free; those of this one stay
        // held through the calm (the attack they sent may come back the minute they
        // are let go), until the period ends or a person releases the stage.
        let period = driver.map_or(Period::Day, |b| b.period);
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut t.next.held_sources)
            .into_iter()
            .partition(|h| h.since() < period.bounds(self.now).0);
        t.next.held_sources = kept;
        stamp.source_changes(
            &mut actions,
            targeted::release(&target.id, &expired),
            Intent::Restore,
            Rule::Calm,
        );
        self.continue_holds(i, &wish, &mut t, (&stamp, &mut actions));
        match t.step {
            Step::Tighten { .. } => self.tighten(i, &wish, pool, &mut t, (&stamp, &mut actions)),
            Step::Restore { rule } => {
                if let Some(rp) = &t.next.restore_point {
                    stamp.changes(&mut actions, &rp.limits, Intent::Restore, rule);
                }
            }
            Step::Stay { converge: true } => {
                if let Some((limits, intent)) = converge_to(&t.next, target) {
                    stamp.changes(&mut actions, limits, intent, Rule::Converge);
                }
            }
            Step::Stay { converge: false } => {}
        }
        stamp.notices(&mut actions, t.notes, driver.and_then(|b| b.topic.as_deref()));
        if *prev != t.next {
            out.states.push((target.id.clone(), t.next));
        }
        out.actions.extend(actions);
    }

    /// A tightening: the limits of the new level (from the pool, when enforced), the
    /// state's record of them, the changes, and the note of the new phase.
    fn tighten(
        &self,
        i: usize,
        wish: &Wish,
        pool: &mut Pool,
        t: &mut Transition,
        (stamp, actions): (&Stamp<'_>, &mut Vec<Action>),
    ) {
        let Step::Tighten {
            level,
            from,
            escalating,
            rule,
        } = t.step
        else {
            return;
        };
        let target = &self.targets[i];
        let figures = &self.figures[i];
        let driver = wish.driver.map(|b| (&self.budgets[b], &self.judged[b]));
        match self.targeted(i, level, driver, &t.next.held_sources) {
            Some(Plan::Targeted { hold, why }) => {
                stamp.source_changes(actions, targeted::hold(&target.id, &hold), Intent::Tighten, rule);
                t.next.held_sources.extend(hold);
                if t.next.applied.is_none() {
                    t.next.applied = Some(target.limits.clone());
                }
                t.notes.push(crate::transition::Note::new(
                    format!(
                        "{} → {}: callers held, the stage left open ({why})",
                        from.name(),
                        t.next.phase.name()
                    ),
                    rule,
                ));
                return;
            }
            Some(Plan::Backstop { why }) => t.notes.push(crate::transition::Note::new(
                format!("the whole stage is tightened: {why}"),
                rule,
            )),
            None => {}
        }
        let sizing = Sizing {
            level,
            allowance: wish.allowance,
            floors: wish.floors,
            remaining: driver.map_or(Money::ZERO, |(_, j)| j.remaining),
            period: driver.map_or(Period::Day, |(b, _)| b.period),
            avg_ms: figures.avg_ms,
            price: self.pricing.units().of(&target.spec),
        };
        let caps = Caps {
            original: t
                .next
                .restore_point
                .as_ref()
                .map_or(&target.limits, |rp| &rp.limits),
            previous: if escalating { t.next.applied.as_ref() } else { None },
            current: &target.limits,
        };
        let mut limits = limits_for(&target.spec, &sizing, caps, self.settings, self.account_limit);
        if t.mode == Mode::Enforce {
            pool.reserve(&target.limits, &mut limits, wish.floors.concurrency, &mut t.notes);
        }
        stamp.changes(actions, &limits, Intent::Tighten, rule);
        t.next.applied = Some(limits);
        if figures.avg_ms > 0 {
            t.next.avg_duration_ms = figures.avg_ms;
        }
        t.notes.push(crate::transition::Note::new(
            format!("{} → {}", from.name(), t.next.phase.name()),
            rule,
        ));
    }
}

impl Pass<'_> {
    /// A stage that holds callers and stays at its level: the ranking may name more
    /// callers to hold (held now), or show that holding them is not enough (the
    /// step becomes a tightening of the whole stage: the backstop).
    fn continue_holds(
        &self,
        i: usize,
        wish: &Wish,
        t: &mut Transition,
        (stamp, actions): (&Stamp<'_>, &mut Vec<Action>),
    ) {
        if t.next.held_sources.is_empty() || !matches!(t.step, Step::Stay { .. }) {
            return;
        }
        let level = match t.next.phase {
            Phase::Throttled { level } => Level::Throttle(level),
            Phase::Stopped => Level::Stop,
            _ => return,
        };
        let driver = wish.driver.map(|b| (&self.budgets[b], &self.judged[b]));
        let rule = driver.map_or(Rule::MultiWindow, |(_, j)| j.reason.rule);
        match self.targeted(i, level, driver, &t.next.held_sources) {
            Some(Plan::Targeted { hold, why }) if !hold.is_empty() => {
                stamp.source_changes(
                    actions,
                    targeted::hold(&stamp.target.id, &hold),
                    Intent::Tighten,
                    rule,
                );
                t.next.held_sources.extend(hold);
                t.notes.push(crate::transition::Note::new(
                    format!("more callers held ({why})"),
                    rule,
                ));
            }
            Some(Plan::Backstop { .. }) => {
                t.step = Step::Tighten {
                    level,
                    from: t.next.phase,
                    escalating: false,
                    rule,
                };
            }
            _ => {}
        }
    }

    /// The targeted plan for stage `i` at `level`, when its callers are attributed
    /// and the budget is not exhausted (an exhausted budget stops the stage whole).
    fn targeted(
        &self,
        i: usize,
        level: Level,
        driver: Option<(&Budget, &Judged)>,
        held: &[crate::source::HeldSource],
    ) -> Option<Plan> {
        let target = &self.targets[i];
        if !matches!(target.id.kind(), TargetKind::RestStage | TargetKind::HttpStage) {
            return None;
        }
        let (sources, levers) = self.attribution.stages.get(&target.id)?;
        let (budget, judged) = driver?;
        if level == Level::Stop {
            return Some(Plan::Backstop {
                why: "the budget is exhausted".into(),
            });
        }
        let ladder = targeted::Ladder {
            burn_short: judged.reason.burn_short,
            first_throttle: budget
                .thresholds
                .levels()
                .first()
                .copied()
                .unwrap_or(BurnRate::ONE),
        };
        let wait = targeted::Wait {
            now: self.now,
            grace: chrono::Duration::minutes(
                self.settings.metric_delay_minutes + self.settings.short_window_minutes,
            ),
        };
        Some(match targeted::plan(sources, levers, held, ladder, wait) {
            Plan::Targeted { hold, why } if !hold.is_empty() => {
                let per_hour = self.figures[i].priority(&self.frame);
                let why = format!("{why}; {}", targeted::priced(&hold, sources, per_hour));
                Plan::Targeted { hold, why }
            }
            other => other,
        })
    }
}

/// What limits a target held in enforce should have, when they differ from what
/// it has: the applied ones while tightened, the originals while recovering.
fn converge_to<'s>(next: &'s GuardState, target: &Target) -> Option<(&'s Limits, Intent)> {
    let want = match next.phase {
        Phase::Throttled { .. } | Phase::Stopped => next.applied.as_ref().map(|l| (l, Intent::Tighten)),
        Phase::Recovering => next
            .restore_point
            .as_ref()
            .map(|rp| (&rp.limits, Intent::Restore)),
        Phase::Normal | Phase::Watching => None,
    };
    want.filter(|(limits, _)| **limits != target.limits)
}

/// The report of `budget` from its verdict, its member count and whether its one
/// named target is missing, and its gaps.
#[inline]
fn report(
    budget: &Budget,
    verdict: &Verdict,
    (targets, missing): (usize, bool),
    gaps: Vec<String>,
) -> BudgetReport {
    BudgetReport {
        budget: budget.id.clone(),
        period: budget.period,
        mode: budget.mode,
        amount: budget.amount,
        spent: verdict.spent,
        projected: verdict.projected,
        burn_short: verdict.burn_short,
        burn_long: verdict.burn_long,
        demand_short: verdict.demand_short,
        demand_long: verdict.demand_long,
        level: verdict.level,
        rule: verdict.rule,
        targets,
        missing_target: missing,
        gaps,
    }
}
