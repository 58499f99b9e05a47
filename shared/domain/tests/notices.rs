//! Notices over many passes: one per episode and level, not one per pass.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests and benchmarks fail loudly on bad fixtures"
)]

mod support;

use std::collections::BTreeMap;

use dowguard_domain::notice::NoticeKind;
use dowguard_domain::{Change, Intent, Level, TargetId};
use support::*;

const DAILY: u64 = 240;
const MB: u32 = 512;
const MS: u64 = 100;

fn demand(multiple: u64) -> Demand {
    Demand {
        requests: lambda_rate(DAILY, multiple, u64::from(MB), MS),
        ms_each: MS,
    }
}

/// Runs 60 scheduled passes of one surge at `multiple` times the budget's pace,
/// and returns the notices about the function, by (kind, level), in order.
fn sixty_passes(multiple: u64, mode: &str) -> (Vec<(NoticeKind, Level, String)>, usize) {
    let f: TargetId = id("function:checkout");
    let mut budget = spec("checkout-daily", "function:checkout", "240");
    budget.mode = mode.to_string();
    let mut world = World::new()
        .with_target(function("checkout", MB, false, None))
        .with_budget(budget);
    world.history(&f, 60, demand(1));
    let mut notices = Vec::new();
    let mut passes = 0;
    for _ in 0..60 {
        let decision = world.tick(&[(f.clone(), demand(multiple))]);
        passes += 1;
        for action in &decision.actions {
            if action.intent != Intent::Notify || action.target != f {
                continue;
            }
            let Change::Notify { subject, notice, .. } = &action.change else {
                panic!("a notice: {:?}", action.change);
            };
            let notice = notice.as_ref().expect("every notice of a pass is structured");
            notices.push((notice.kind, action.reason.level, subject.clone()));
        }
    }
    (notices, passes)
}

#[test]
fn sixty_passes_of_one_episode_send_one_notice_per_level() {
    for mode in ["enforce", "dry-run"] {
        // Watch level only; a sustained surge that throttles and escalates; a flood
        // that goes straight to the top level and on to stop as the budget runs out.
        for multiple in [3, 8, 100] {
            let (notices, passes) = sixty_passes(multiple, mode);
            assert_eq!(passes, 60);
            assert!(!notices.is_empty(), "{mode} {multiple}x: the owners are told");
            let mut per_level: BTreeMap<(String, Level), usize> = BTreeMap::new();
            for (kind, level, _) in &notices {
                *per_level.entry((kind.name().to_string(), *level)).or_default() += 1;
            }
            assert!(
                per_level.values().all(|n| *n == 1),
                "{mode} {multiple}x: one notice per level, got {per_level:?} from {notices:#?}"
            );
            // A surge that never relents never restores: no notice repeats a level it
            // already told, and there are only as many as there are levels.
            assert!(notices.len() <= 5, "{mode} {multiple}x: {notices:#?}");
        }
    }
}
