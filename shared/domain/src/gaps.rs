//! What a pass could not see, and the one rule that follows from it: **a figure that
//! may be missing never relaxes a limit.**
//!
//! A service the guard could not list (an SCP that denies it, a partial outage), a
//! stored budget or guard state that cannot be read, metrics that came back partial
//! or that CloudWatch cannot attribute to one target: each makes some budget's
//! figures a lower bound at best. A lower bound can still justify tightening (the
//! spend is at least that), but it can never justify calm. So every budget whose
//! figures have a gap holds its members where they are: no restore, no relaxation,
//! no step back to normal, and a target no budget seems to cover is not released
//! while a stored item is unreadable (it may be the budget covering it). A target
//! whose own state cannot be read is left untouched. The shell collects the gaps;
//! [`crate::decide`] applies the rule and names each gap in the budget's report.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::target::{Target, TargetId, TargetKind};

/// What one pass could not see, each with the reason people are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gaps {
    /// Kinds of target whose service could not be listed: their targets are absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kinds: BTreeMap<TargetKind, String>,
    /// Targets whose figures are partial or cannot be attributed to them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub figures: BTreeMap<TargetId, String>,
    /// Targets whose stored guard state cannot be read: never changed by the pass.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<TargetId, String>,
    /// Stored budgets, or states of no known target, that cannot be read: any target
    /// may be theirs, so none is relaxed or released.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored: Vec<String>,
}

impl Gaps {
    /// Nothing missing: what a simulator or a test that sees everything passes.
    pub const NONE: Gaps = Gaps {
        kinds: BTreeMap::new(),
        figures: BTreeMap::new(),
        states: BTreeMap::new(),
        stored: Vec::new(),
    };

    /// No gap at all.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.figures.is_empty() && self.states.is_empty() && self.stored.is_empty()
    }

    /// Every gap as one line each, for logs, reports and the CLI.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.kinds.values().cloned().collect();
        out.extend(self.stored.iter().cloned());
        out.extend(self.states.iter().map(|(t, why)| format!("{t}: {why}")));
        out.extend(self.figures.iter().map(|(t, why)| format!("{t}: {why}")));
        out
    }

    /// Why `budget`'s figures may be incomplete this pass, given the targets it
    /// covers (`members`): an empty list means they are complete.
    pub fn of_budget<'a>(
        &self,
        budget: &Budget,
        members: impl IntoIterator<Item = &'a Target>,
    ) -> Vec<String> {
        let mut out: Vec<String> = self
            .kinds
            .iter()
            .filter(|(kind, _)| budget.scope.could_cover(**kind))
            .map(|(_, why)| why.clone())
            .collect();
        for target in members {
            for gaps in [&self.figures, &self.states] {
                if let Some(why) = gaps.get(&target.id) {
                    out.push(format!("{}: {why}", target.id));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{BudgetSpec, Floors};
    use crate::target::{Limits, TargetSpec};

    fn budget(scope: &str) -> Budget {
        Budget::parse(BudgetSpec {
            id: "b".into(),
            scope: scope.into(),
            period: "day".into(),
            amount: "10".into(),
            thresholds: vec![],
            mode: "enforce".into(),
            owner: "o".into(),
            topic: None,
            floors: Floors::default(),
            protected: false,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn stage(id: &str) -> Target {
        let id = TargetId::parse(id).unwrap_or_else(|e| panic!("{e}"));
        let kind = id.kind();
        Target::new(id, TargetSpec::HttpStage, BTreeMap::new(), Limits::unset(kind))
    }

    #[test]
    fn an_unlisted_service_is_a_gap_of_every_budget_that_could_cover_its_targets() {
        let gaps = Gaps {
            kinds: BTreeMap::from([(TargetKind::HttpStage, "HTTP APIs could not be listed".to_string())]),
            ..Gaps::default()
        };
        assert_eq!(gaps.of_budget(&budget("account"), []).len(), 1);
        assert_eq!(gaps.of_budget(&budget("tag:team=a"), []).len(), 1);
        assert_eq!(gaps.of_budget(&budget("http-stage:abc/live"), []).len(), 1);
        assert!(gaps.of_budget(&budget("function:f"), []).is_empty());
        assert!(gaps.of_budget(&budget("usage-plan:p1"), []).is_empty());
        let rest = Gaps {
            kinds: BTreeMap::from([(TargetKind::RestStage, "REST APIs could not be listed".to_string())]),
            ..Gaps::default()
        };
        assert_eq!(
            rest.of_budget(&budget("usage-plan:p1"), []).len(),
            1,
            "a plan's money is its REST stages'"
        );
    }

    #[test]
    fn a_member_with_partial_figures_or_an_unreadable_state_is_a_gap_of_its_budget() {
        let a = stage("http-stage:abc/live");
        let b = stage("http-stage:def/live");
        let gaps = Gaps {
            figures: BTreeMap::from([(a.id.clone(), "partial".to_string())]),
            states: BTreeMap::from([(b.id.clone(), "unreadable".to_string())]),
            ..Gaps::default()
        };
        let lines = gaps.of_budget(&budget("account"), [&a, &b]);
        assert_eq!(
            lines,
            vec![
                "http-stage:abc/live: partial".to_string(),
                "http-stage:def/live: unreadable".to_string()
            ]
        );
        assert!(gaps.of_budget(&budget("account"), []).is_empty());
        assert_eq!(gaps.lines().len(), 2);
        assert!(!gaps.is_empty() && Gaps::default().is_empty());
    }
}
