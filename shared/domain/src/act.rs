//! Step 6 of a pass: **actions.** What a transition decided becomes data for the
//! executor: the changes that take a target from its limits now to the new ones
//! ([`crate::limit_changes`]), one per resource update, and one notice per
//! [`Note`]. Every action of one target carries the same stamp ([`Stamp`]): its
//! mode, whether to apply it, its priority (the target's demand an hour) and the
//! figures of the budget that drove it. [`order`] puts a pass's actions in the order
//! the executor applies them.
//!
//! ```
//! use dowguard_domain::act::Stamp;
//! use dowguard_domain::transition::Note;
//! use dowguard_domain::{Intent, Limits, Mode, Money, Reason, Rule, Target, TargetId, TargetSpec, Throttle};
//!
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), Limits::unset(id.kind()));
//! let reason = Reason {
//!     budget: None, rule: Rule::FastLane, level: dowguard_domain::Level::Throttle(3),
//!     spent: Money::ZERO, amount: Money::from_dollars(50), projected: Money::ZERO,
//!     burn_short: Default::default(), burn_long: Default::default(),
//! };
//! let stamp = Stamp { target: &stage, mode: Mode::DryRun, priority: Money::from_dollars(9), reason: &reason };
//! let mut actions = Vec::new();
//! let tight = Limits::stage(Some(Throttle { rate_limit: 10.into(), burst_limit: 10 }));
//! stamp.changes(&mut actions, &tight, Intent::Tighten, Rule::FastLane);
//! stamp.notices(&mut actions, vec![Note::new("normal → throttled(3)", Rule::FastLane)], None);
//! assert_eq!(actions.len(), 2);
//! // In dry-run the change is recorded, not applied; notices are always sent.
//! assert!(!actions[0].apply && actions[1].apply);
//! assert!(actions[1].change.permission() == "sns:Publish");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::action::{Action, Change, Intent, Reason, Rule, limit_changes};
use crate::budget::Mode;
use crate::money::Money;
use crate::notice::Notice;
use crate::target::{Limits, Target};
use crate::transition::Note;

/// What every action about one target in one pass carries.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'a> {
    /// The target.
    pub target: &'a Target,
    /// The mode the actions are taken in: changes are applied only in `enforce`.
    pub mode: Mode,
    /// Spend an hour the actions address.
    pub priority: Money,
    /// The figures of the budget that drove them.
    pub reason: &'a Reason,
}

impl Stamp<'_> {
    /// Pushes the changes from the target's limits now to `to`, given `rule`.
    pub fn changes(&self, out: &mut Vec<Action>, to: &Limits, intent: Intent, rule: Rule) {
        let from = &self.target.limits;
        for change in limit_changes(&self.target.id, from, to, intent) {
            out.push(self.action(change, intent, self.mode == Mode::Enforce, rule));
        }
    }

    /// Pushes changes to the sources the guard holds on the target (see
    /// [`crate::targeted`]), applied only in `enforce` as limit changes are.
    pub fn source_changes(&self, out: &mut Vec<Action>, changes: Vec<Change>, intent: Intent, rule: Rule) {
        for change in changes {
            out.push(self.action(change, intent, self.mode == Mode::Enforce, rule));
        }
    }

    /// Pushes one notice per note, to `topic` (else the deployment's default topic),
    /// each with the changes already pushed for the target in `out` (see
    /// [`crate::notice`]).
    pub fn notices(&self, out: &mut Vec<Action>, notes: Vec<Note>, topic: Option<&str>) {
        let id = &self.target.id;
        // What this pass changes on the target (in dry-run: would change), from
        // what to what: the actions pushed for it before its notices.
        let changes: Vec<Change> = out
            .iter()
            .filter(|a| a.target == *id && a.intent != Intent::Notify)
            .map(|a| a.change.clone())
            .collect();
        for Note { text, rule } in notes {
            let mut reason = self.reason.clone();
            reason.rule = rule;
            let notice = Notice::new(id, &text, self.mode, &reason, changes.clone());
            let change = Change::Notify {
                topic: topic.map(str::to_string),
                subject: notice.subject(),
                message: notice.text(),
                notice: Some(Box::new(notice)),
            };
            out.push(Action {
                target: id.clone(),
                change,
                intent: Intent::Notify,
                mode: self.mode,
                apply: true,
                priority: self.priority,
                reason,
            });
        }
    }

    fn action(&self, change: Change, intent: Intent, apply: bool, rule: Rule) -> Action {
        let mut reason = self.reason.clone();
        reason.rule = rule;
        Action {
            target: self.target.id.clone(),
            change,
            intent,
            mode: self.mode,
            apply,
            priority: self.priority,
            reason,
        }
    }
}

/// Puts a pass's actions in the order to apply them: tightening first, then
/// restores, then notices; within each, the most expensive target first (stable:
/// one target's actions keep their order).
pub fn order(actions: &mut [Action]) {
    actions.sort_by(|a, b| {
        let rank = |x: &Action| match x.intent {
            Intent::Tighten => 0,
            Intent::Restore => 1,
            Intent::Notify => 2,
        };
        rank(a).cmp(&rank(b)).then(b.priority.cmp(&a.priority))
    });
}
