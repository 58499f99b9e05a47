//! Which targets a budget covers, which budgets cover a target, and which of those
//! binds it: one rule ([`Scope::covers`]) asked from either side, and one ranking of
//! several budgets over one target ([`admit`]).
//!
//! The evaluation pass, the read-only assessment, the exposure audit, the alarms and
//! the simulator all ask these; [`Coverage`] answers the same questions for a whole
//! decision pass without a scan per one-target budget.
//!
//! ```
//! use std::collections::BTreeMap;
//! use dowguard_domain::{Budget, BudgetSpec, Limits, Scope, Target, TargetId, TargetSpec};
//! use dowguard_domain::coverage::{budgets_of, members};
//!
//! let stage = |id: &str, team: &str| {
//!     let id = TargetId::parse(id).unwrap();
//!     let tags = BTreeMap::from([("team".to_string(), team.to_string())]);
//!     Target::new(id.clone(), TargetSpec::RestStage, tags, Limits::unset(id.kind()))
//! };
//! let targets = [stage("rest-stage:a1/prod", "shop"), stage("rest-stage:b2/prod", "search")];
//! let budget = |id: &str, scope: &str| {
//!     Budget::parse(BudgetSpec {
//!         id: id.into(),
//!         scope: scope.into(),
//!         period: "day".into(),
//!         amount: "50".into(),
//!         thresholds: vec![],
//!         mode: "enforce".into(),
//!         owner: "finance@example.com".into(),
//!         topic: None,
//!         floors: Default::default(),
//!         protected: false,
//!     })
//!     .unwrap()
//! };
//! let budgets = [budget("shop", "tag:team=shop"), budget("all", "account")];
//! let shop: Vec<usize> = members(&budgets[0], &targets).map(|(i, _)| i).collect();
//! assert_eq!(shop, [0]);
//! let of_search: Vec<&str> = budgets_of(&targets[1], &budgets).map(|(_, b)| b.id.as_str()).collect();
//! assert_eq!(of_search, ["all"]);
//! assert_eq!(budgets[1].scope, Scope::Account);
//! ```

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::budget::{Budget, Mode, Scope};
use crate::target::{Target, TargetId, TargetKind};

/// The targets of `targets` that `budget` covers, with their positions, in order.
pub fn members<'t>(
    budget: &Budget,
    targets: &'t [Target],
) -> impl Iterator<Item = (usize, &'t Target)> {
    targets
        .iter()
        .enumerate()
        .filter(move |(_, t)| budget.scope.covers(t))
}

/// The budgets of `budgets` that cover `target`, with their positions, in order.
pub fn budgets_of<'b>(
    target: &Target,
    budgets: &'b [Budget],
) -> impl Iterator<Item = (usize, &'b Budget)> {
    budgets
        .iter()
        .enumerate()
        .filter(move |(_, b)| b.scope.covers(target))
}

/// Where a budget stands among the budgets already gathered for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It outranks every budget gathered so far (the first enforcing one after
    /// dry-run ones): they no longer count.
    Outranks,
    /// It counts beside them; the tightest of them binds.
    Joins,
    /// It is outranked (a dry-run budget beside an enforcing one): it does not count.
    Outranked,
}

/// How a budget in `mode` ranks against the budgets gathered so far for one target,
/// whose mode is `so_far` (`None`: none yet). Enforcing budgets outrank dry-run
/// ones; among those that count, the tightest binds. [`crate::decide`] applies this
/// to each target's wish, and the exposure audit to its recommendation, so that
/// what `dowguard audit` recommends follows the budget the guard enforces.
pub fn admit(mode: Mode, so_far: Option<Mode>) -> Admit {
    match (mode, so_far) {
        (Mode::Enforce, Some(Mode::DryRun)) => Admit::Outranks,
        (Mode::DryRun, Some(Mode::Enforce)) => Admit::Outranked,
        _ => Admit::Joins,
    }
}

/// The coverage of one decision pass: [`members`] for every budget, with a one-target
/// budget's member found by an index instead of a scan.
#[derive(Debug)]
pub struct Coverage<'a> {
    targets: &'a [Target],
    /// Positions of targets by id; built only when some budget is scoped to one
    /// target that is not a usage plan (a plan also covers its stages: scanned).
    index: HashMap<&'a TargetId, usize, FixedState>,
}

impl<'a> Coverage<'a> {
    /// The coverage of `budgets` over `targets`.
    pub fn new(targets: &'a [Target], budgets: &[Budget]) -> Self {
        let indexed = budgets.iter().any(|b| Self::indexed(&b.scope).is_some());
        let index = if indexed {
            targets.iter().enumerate().map(|(i, t)| (&t.id, i)).collect()
        } else {
            HashMap::default()
        };
        Coverage { targets, index }
    }

    fn indexed(scope: &Scope) -> Option<&TargetId> {
        match scope {
            Scope::Target(id) if id.kind() != TargetKind::UsagePlan => Some(id),
            _ => None,
        }
    }

    /// Puts the positions of `budget`'s members into `out` (cleared first), in
    /// target order. Returns false when the budget names one target that was not
    /// discovered.
    pub fn members_into(&self, budget: &Budget, out: &mut Vec<usize>) -> bool {
        out.clear();
        if let Some(id) = Self::indexed(&budget.scope) {
            let found = self.index.get(id).copied();
            out.extend(found);
            return found.is_some();
        }
        out.extend(members(budget, self.targets).map(|(i, _)| i));
        match &budget.scope {
            Scope::Target(id) => out.iter().any(|&i| self.targets[i].id == *id),
            Scope::Tag { .. } | Scope::Account => true,
        }
    }
}
