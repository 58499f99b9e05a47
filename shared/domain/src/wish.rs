//! Step 3 of a pass: **what the budgets ask of each target.** Every budget's
//! [`Verdict`] reaches the targets it covers, and each target gathers what all its
//! budgets ask into one [`Wish`]: the highest level any asks, the smallest allowance,
//! the highest floors, and whether every one of them is calm.
//!
//! - Which budgets count is the one coverage rule ([`crate::coverage::admit`]):
//!   enforcing budgets outrank dry-run ones; among those that count, the tightest binds.
//! - A group budget (a tag or the account) that throttles applies its level to its
//!   **biggest contributors** only ([`Shares`]): the smallest set that makes up
//!   `contributor_share` of its short-window demand, each allowed a share of the
//!   remaining pace in proportion to its demand, after what the others spend. If the
//!   others alone spend more than the pace allows, every member is throttled.
//! - A usage plan takes its budget's whole allowance (per API key): its stages carry
//!   its spend.
//!
//! ```
//! use dowguard_domain::wish::Wish;
//! use dowguard_domain::{Level, Mode};
//!
//! // A target no budget has spoken for yet: normal, calm, dry-run, no allowance.
//! let wish = Wish::new();
//! assert_eq!((wish.level, wish.calm, wish.mode, wish.allowance), (Level::Normal, true, Mode::DryRun, None));
//! assert_eq!(wish.driver, None);
//! ```

use crate::action::Rule;
use crate::budget::{Budget, Floors, Mode};
use crate::coverage::{Admit, admit};
use crate::judge::Verdict;
use crate::money::Money;
use crate::settings::GuardSettings;
use crate::state::Level;
use crate::window::{Figures, Frame};

/// What the budgets covering one target ask of it, together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wish {
    /// The highest level any budget that counts asks.
    pub level: Level,
    /// Every budget that counts (and every one with a gap) is calm.
    pub calm: bool,
    /// The smallest allowance asked, in pico-dollars a second of the remaining pace
    /// (before the level's share); `None` while no budget throttles.
    pub allowance: Option<i128>,
    /// The mode of the budgets that count.
    pub mode: Mode,
    /// Some covering budget is protected: report, never throttle.
    pub protected: bool,
    /// The highest floors of every covering budget.
    pub floors: Floors,
    /// Position (in the pass's budgets) of the budget that asks the most: its figures
    /// are the reason given.
    pub driver: Option<usize>,
    /// The rule that set the driver's level.
    pub rule: Rule,
}

impl Default for Wish {
    fn default() -> Self {
        Wish::new()
    }
}

impl Wish {
    /// The wish of a target no budget has spoken for yet.
    pub fn new() -> Self {
        Wish {
            level: Level::Normal,
            calm: true,
            allowance: None,
            mode: Mode::DryRun,
            protected: false,
            floors: Floors::default(),
            driver: None,
            rule: Rule::Calm,
        }
    }

    /// The wish of a target no budget covers any more, held in `mode`: calm, asking
    /// nothing, so its originals come back.
    pub fn orphan(mode: Mode) -> Self {
        Wish { mode, ..Wish::new() }
    }

    /// True when the driver's level came by the fast lane (no escalation dwell).
    pub fn fast(&self) -> bool {
        self.rule == Rule::FastLane
    }

    /// Adds what `budget` (at position `b`) asks of this target: `verdict` is the
    /// budget's, `part` the target's part in it.
    #[inline]
    pub fn hear(&mut self, b: usize, budget: &Budget, verdict: &Verdict, part: Part) {
        self.protected |= budget.protected;
        self.floors = self.floors.max(budget.floors);
        match admit(budget.mode, self.driver.map(|_| self.mode)) {
            Admit::Outranked => return,
            Admit::Outranks => {
                *self = Wish {
                    mode: budget.mode,
                    protected: self.protected,
                    floors: self.floors,
                    ..Wish::new()
                };
            }
            Admit::Joins if self.driver.is_none() => self.mode = budget.mode,
            Admit::Joins => {}
        }
        let level = if part.contributes {
            verdict.level
        } else {
            verdict.level.min(Level::Watch)
        };
        if part.contributes || verdict.hold {
            self.calm &= verdict.calm;
        }
        if level >= Level::Throttle(1) {
            let share = part.allowance();
            self.allowance = Some(self.allowance.map_or(share, |a| a.min(share)));
        }
        if level > self.level || self.driver.is_none() {
            self.level = self.level.max(level);
            self.driver = Some(b);
            self.rule = verdict.rule;
        }
    }
}

/// Which members of a budget its level applies to, and how its allowance is shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shares {
    /// The chosen contributors, sorted; `None` means every member.
    contributors: Option<Vec<usize>>,
    /// The allowance shared by the contributors, pico-dollars a second.
    allowance: i128,
    /// The contributors' short-window demand, what the allowance is shared by.
    demand: Money,
    /// The budget has more than one member.
    group: bool,
}

impl Shares {
    /// The shares of a budget with `members` (positions into `figures`), summed
    /// figures `total` and `verdict`. A one-target budget, or a level other than a
    /// throttle, applies to every member with the whole remaining pace.
    #[inline]
    pub fn of(
        members: &[usize],
        figures: &[Figures],
        total: &Figures,
        verdict: &Verdict,
        (frame, settings): (&Frame, &GuardSettings),
    ) -> Shares {
        let remaining_rate = verdict.remaining_rate();
        let mut shares = Shares {
            contributors: None,
            allowance: remaining_rate,
            demand: total.short_demand,
            group: members.len() > 1,
        };
        let throttles = verdict.level >= Level::Throttle(1) && verdict.level < Level::Stop;
        if !shares.group || !throttles {
            return shares;
        }
        let mut ranked: Vec<usize> = members
            .iter()
            .copied()
            .filter(|i| figures[*i].short_demand.is_positive())
            .collect();
        ranked.sort_by(|a, b| figures[*b].short_demand.cmp(&figures[*a].short_demand));
        let goal = total
            .short_demand
            .mul_div(i128::from(settings.contributor_share_millionths), 1_000_000)
            .unwrap_or(Money::ZERO);
        let mut covered = Money::ZERO;
        let mut chosen = Vec::new();
        for i in ranked {
            if covered >= goal && !chosen.is_empty() {
                break;
            }
            covered += figures[i].short_demand;
            chosen.push(i);
        }
        let others_rate = (total.short_demand - covered).picos() / i128::from(frame.short_s.max(1));
        if others_rate < remaining_rate {
            chosen.sort_unstable();
            shares.contributors = Some(chosen);
            shares.allowance = remaining_rate - others_rate;
            shares.demand = covered;
        }
        shares
    }

    /// The part of the member at position `i` with short-window demand `demand`; a
    /// usage plan (`plan`) always takes part, with the whole allowance.
    #[inline]
    pub fn part(&self, i: usize, demand: Money, plan: bool) -> Part {
        let contributes = plan
            || self
                .contributors
                .as_ref()
                .is_none_or(|c| c.binary_search(&i).is_ok());
        let proportional = !plan && self.group && self.demand.is_positive();
        Part {
            contributes,
            allowance: self.allowance,
            proportion: proportional.then_some((demand, self.demand)),
        }
    }
}

/// One member's part in a budget's verdict ([`Shares::part`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The budget's level applies to it (else at most `watch`).
    pub contributes: bool,
    /// The allowance it shares, pico-dollars a second.
    allowance: i128,
    /// Its demand and the demand the allowance is shared by; `None`: it takes the
    /// whole allowance.
    proportion: Option<(Money, Money)>,
}

impl Part {
    /// Its allowance, pico-dollars a second: the whole budget's for a one-target
    /// budget or a usage plan, else a share in proportion to its demand.
    #[inline]
    pub fn allowance(&self) -> i128 {
        match self.proportion {
            None => self.allowance,
            Some((demand, shared_by)) => Money::from_picos(self.allowance)
                .mul_div(demand.picos(), shared_by.picos())
                .unwrap_or(Money::ZERO)
                .picos(),
        }
    }
}
