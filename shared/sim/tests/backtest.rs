//! The backtest replays recorded traffic through the dowguard strategy: on a
//! built-in scenario's own minutes it must find what `simulate` finds.

use dowguard_sim::backtest::{self, History, Recorded, Replay};
use dowguard_sim::engine::Strategy;
use dowguard_sim::{Scenario, library};

fn replay_of(sc: &Scenario) -> Replay {
    Replay {
        guard: sc.guard.clone(),
        prices: sc.prices.clone(),
        account_concurrency: sc.account_concurrency,
    }
}

fn backtest_of(name: &str) -> (Scenario, backtest::Backtest) {
    let sc = library::load(name).unwrap_or_else(|e| panic!("{e}"));
    let history = History::of_scenario(&sc);
    let replayed =
        backtest::scenario(&history, &sc.budgets, &replay_of(&sc)).unwrap_or_else(|e| panic!("{e}"));
    let result = backtest::run(&replayed, &sc.budgets, 1);
    (sc, result)
}

#[test]
fn a_flood_backtests_to_what_the_simulator_finds_for_the_same_traffic() {
    let (sc, bt) = backtest_of("flood");
    let report = dowguard_sim::run(&sc);
    let dg = report
        .strategy(Strategy::Dowguard)
        .unwrap_or_else(|| panic!("no dowguard"));
    let unguarded = report
        .strategy(Strategy::Unguarded)
        .unwrap_or_else(|| panic!("no unguarded"));
    let budget = &bt.budgets[0];
    assert_eq!(budget.spend_guarded, dg.spend);
    assert_eq!(budget.spend_recorded, unguarded.spend);
    assert_eq!(budget.saved, unguarded.spend - dg.spend);
    assert_eq!(budget.overspend_guarded, dg.overspend);
    assert_eq!(budget.refused, dg.legit_rejected + dg.attack_rejected);
    assert_eq!(budget.episodes, dg.episodes);
    assert!(bt.throttled && bt.tightenings == dg.tightenings);
    // The flood starts at 06:00; the first pass that sees it opens the episode.
    let first = &budget.episodes[0];
    assert!(
        (360..=366).contains(&first.start_minute),
        "episode at minute {}",
        first.start_minute
    );
    assert!(first.throttled && budget.within_budget, "{budget:?}");
}

#[test]
fn a_launch_spike_within_budget_backtests_to_no_throttle() {
    let (_, bt) = backtest_of("launch-spike");
    assert!(!bt.throttled, "{:?}", bt.budgets);
    let budget = &bt.budgets[0];
    assert_eq!((budget.refused, budget.saved.is_positive()), (0, false));
    assert!(budget.requests > 1_000_000 && budget.within_budget);
    // The spike is watched, never throttled.
    assert!(budget.episodes.iter().all(|e| !e.throttled));
}

#[test]
fn five_minute_points_are_spread_evenly_over_their_minutes() {
    let sc = library::load("flood").unwrap_or_else(|e| panic!("{e}"));
    let history = History {
        start: sc.start,
        minutes: 10,
        resolution_minutes: 5,
        targets: sc.targets.clone(),
        recorded: vec![
            Recorded {
                target: 0,
                minute: 0,
                requests: 12,
                duration_ms: 2_400,
            },
            Recorded {
                target: 0,
                minute: 5,
                requests: 3,
                duration_ms: 0,
            },
        ],
    };
    let trace = history.trace().unwrap_or_else(|e| panic!("{e}"));
    // 12 over five minutes: 3, 3, 2, 2, 2; then 3 over five minutes: 1, 1, 1.
    assert_eq!(trace.len(), 8);
    assert_eq!(trace.last_minute(), Some(7));
}

#[test]
fn a_backtest_without_budgets_says_how_to_give_one() {
    let sc = library::load("flood").unwrap_or_else(|e| panic!("{e}"));
    let history = History::of_scenario(&sc);
    let err = backtest::scenario(&history, &[], &replay_of(&sc))
        .err()
        .unwrap_or_else(|| panic!("accepted no budgets"));
    assert!(err.to_string().contains("budgets set"), "{err}");
}

#[test]
fn a_suggestion_from_a_diurnal_week_throttles_nothing_in_its_own_backtest() {
    use dowguard_sim::suggest::{Ask, Method, suggest};
    let sc = library::load("diurnal").unwrap_or_else(|e| panic!("{e}"));
    let history = History::of_scenario(&sc);
    let asks = [Ask {
        id: "checkout-daily".into(),
        scope: "function:checkout".into(),
        owner: "finance@example.com".into(),
    }];
    let suggestions =
        suggest(&history, &replay_of(&sc), &asks, Method::default()).unwrap_or_else(|e| panic!("{e}"));
    let s = &suggestions[0];
    // Every day of the week costs the same $7.13; 95th percentile + 25 % = $8.91, rounded up.
    assert_eq!(s.days, 7);
    assert_eq!(s.percentile_day.to_string(), "$7.13");
    assert_eq!(s.amount.to_string(), "$9.00");
    assert_eq!(s.tries, 1, "the default ladder held");
    assert_eq!((s.backtest.refused, s.backtest.within_budget), (0, true));
    assert!(s.backtest.episodes.iter().all(|e| !e.throttled));
    // And the scenario's own budget of $8 would not have throttled either.
    assert!(s.amount > sc.budgets[0].amount);
}

#[test]
fn a_suggestion_that_would_throttle_is_raised_until_the_history_rides_through() {
    use dowguard_sim::suggest::{Ask, Method, suggest};
    let sc = library::load("launch-spike").unwrap_or_else(|e| panic!("{e}"));
    let history = History::of_scenario(&sc);
    let asks = [Ask {
        id: "checkout-daily".into(),
        scope: "function:checkout".into(),
        owner: "finance@example.com".into(),
    }];
    // The median day with no margin is the quiet day: the launch day would exhaust it.
    let method = Method {
        percentile: 50,
        margin_percent: 0,
        ..Method::default()
    };
    let s = &suggest(&history, &replay_of(&sc), &asks, method).unwrap_or_else(|e| panic!("{e}"))[0];
    assert!(s.tries > 4, "{} tries", s.tries);
    assert!(
        s.amount >= s.busiest_day,
        "{} below the launch day's {}",
        s.amount,
        s.busiest_day
    );
    assert_eq!(s.backtest.refused, 0);
    assert!(s.backtest.episodes.iter().all(|e| !e.throttled));
}
