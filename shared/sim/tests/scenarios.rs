//! Scenario tests: every built-in scenario is run with every strategy and its money
//! outcomes are asserted. A change to the decision core that lets an attack through,
//! or throttles real users inside their budget, fails here.

#![allow(clippy::expect_used, reason = "test helpers fail loudly on a broken fixture")]

use dowguard_sim::engine::{Path, Strategy};
use dowguard_sim::{Money, Report, StrategyReport, library, run};

fn report(name: &str) -> Report {
    run(&library::load(name).expect("built-in scenario loads"))
}

fn of(report: &Report, strategy: Strategy) -> &StrategyReport {
    report.strategy(strategy).expect("every strategy is reported")
}

/// Asserts that the named checks are present (so an edit to a scenario file cannot
/// silently drop one) and that every check of the scenario is met.
fn assert_met(report: &Report, required: &[&str]) {
    let present: Vec<&str> = report.verdicts().iter().map(|v| v.check).collect();
    for check in required {
        assert!(
            present.contains(check),
            "{}: check `{check}` missing; has {present:?}",
            report.scenario
        );
    }
    let missed: Vec<String> = report
        .verdicts()
        .iter()
        .filter(|v| !v.met)
        .map(|v| format!("{}: {}", v.check, v.detail))
        .collect();
    assert!(
        missed.is_empty(),
        "{}: missed\n{}\n\n{}",
        report.scenario,
        missed.join("\n"),
        report.table()
    );
}

const ATTACK: &[&str] = &[
    "acts",
    "beats-unguarded",
    "no-worse-than-budgets",
    "overspend-within-floor",
];

#[test]
fn flood_overspend_stays_within_the_physical_floor_and_a_hundredth_of_a_budgets_action() {
    let r = report("flood");
    let dg = of(&r, Strategy::Dowguard);
    let budgets = of(&r, Strategy::BudgetsAction);
    let bound = r.floor.mul_div(12, 10).expect("fits");
    assert!(r.floor.is_positive());
    assert!(
        dg.overspend <= bound,
        "overspend {} > 1.2 x floor {}",
        dg.overspend,
        r.floor
    );
    assert!(
        dg.exposure <= bound,
        "exposure {} > 1.2 x floor {}",
        dg.exposure,
        r.floor
    );
    assert!(budgets.overspend.is_positive());
    assert!(
        dg.overspend <= budgets.overspend.mul_div(1, 100).expect("fits"),
        "overspend {} > Budgets-action overspend {} / 100",
        dg.overspend,
        budgets.overspend
    );
    assert_met(
        &r,
        &[
            ATTACK,
            &["exposure-within-floor", "fraction-of-budgets-overspend"],
        ]
        .concat(),
    );
}

#[test]
fn flood_is_first_limited_after_exactly_the_metric_delay_and_one_schedule_interval() {
    let r = report("flood");
    // Delay 2 min + one 1-minute interval: the attack's first minute is visible at
    // the end of its third minute, and the limit holds from the fourth.
    assert_eq!(of(&r, Strategy::Dowguard).minutes_to_first_action, Some(3));
}

#[test]
fn ramp_is_contained_without_overspend() {
    assert_met(&report("ramp"), ATTACK);
}

#[test]
fn pulse_bursts_timed_against_cooldowns_do_not_overspend() {
    let r = report("pulse");
    assert_eq!(of(&r, Strategy::Dowguard).overspend, Money::ZERO);
    assert_met(&r, ATTACK);
}

#[test]
fn leech_under_naive_thresholds_is_stopped_before_the_month_budget_runs_out() {
    let r = report("leech");
    // The static kill switch never sees it; dowguard does.
    assert_eq!(of(&r, Strategy::KillSwitch).tightenings, 0);
    assert_met(&r, ATTACK);
}

#[test]
fn spread_over_fifty_functions_is_contained_by_the_team_budget() {
    let r = report("spread");
    assert_eq!(
        of(&r, Strategy::KillSwitch).tightenings,
        0,
        "each function stays under its alarm"
    );
    assert_met(&r, ATTACK);
}

#[test]
fn recursive_loop_is_cut_before_it_reaches_the_account_concurrency() {
    assert_met(&report("recursive-loop"), ATTACK);
}

#[test]
fn async_flood_backlog_expires_instead_of_replaying() {
    let r = report("async-flood");
    let dg = of(&r, Strategy::Dowguard);
    // The queued attack is dropped by the shortened event age, not deferred.
    assert!(dg.attack_rejected * 10 >= dg.attack_requests * 9, "{dg:?}");
    assert_eq!(dg.queued_at_end, 0);
    assert_met(&r, ATTACK);
}

#[test]
fn rest_stage_flood_is_throttled_at_the_stage() {
    assert_met(&report("rest-flood"), ATTACK);
}

#[test]
fn diurnal_traffic_within_budget_is_never_rejected() {
    let r = report("diurnal");
    let dg = of(&r, Strategy::Dowguard);
    assert_eq!(dg.legit_rejected, 0);
    assert_eq!(dg.spend, of(&r, Strategy::Unguarded).spend);
    assert_met(&r, &["no-legit-rejected-within-budget"]);
}

#[test]
fn launch_spike_within_budget_is_never_rejected() {
    let r = report("launch-spike");
    assert_eq!(of(&r, Strategy::Dowguard).legit_rejected, 0, "{}", r.table());
    assert_met(&r, &["no-legit-rejected-within-budget"]);
}

#[test]
fn organic_growth_that_exhausts_the_budget_is_stopped_and_explained() {
    let r = report("organic-growth");
    let dg = of(&r, Strategy::Dowguard);
    let reason = dg.first_reason.as_deref().expect("a reason is given");
    assert!(reason.contains("checkout-monthly"), "{reason}");
    assert!(reason.contains("projected"), "{reason}");
    assert_met(
        &r,
        &[
            "no-legit-rejected-within-budget",
            "acts-and-says-why",
            "keeps-within-budget",
            "uses-the-budget",
        ],
    );
}

#[test]
fn at_a_five_minute_schedule_a_flooded_function_among_a_thousand_is_limited_by_its_alarm() {
    let r = report("five-minute");
    assert_met(&r, &[ATTACK, &["exposure-within-floor"]].concat());
    let dg = of(&r, Strategy::Dowguard);
    // The alarm sees the flood's first minute at the end of its third and the
    // responder acts then, before the scheduled pass at the fifth.
    assert_eq!(dg.minutes_to_first_action, Some(3));
    let first: Vec<(&str, Path)> = dg
        .first_actions
        .iter()
        .map(|f| (f.target.as_str(), f.path))
        .collect();
    assert_eq!(first, [("function:fn-0123", Path::Alarm)]);
    assert_eq!((dg.alarm_firings, dg.responder_passes), (1, 1));
    // One alarm per function for the day ($0.10 a month each, prorated), plus metrics.
    let alarms = Money::parse("3.33").expect("money");
    assert!(
        dg.guard_cost > alarms && dg.guard_cost < Money::parse("5").expect("money"),
        "{}",
        dg.guard_cost
    );
    let bound = r.floor.mul_div(12, 10).expect("fits");
    assert!(
        dg.exposure <= bound,
        "exposure {} > 1.2 x floor {}",
        dg.exposure,
        r.floor
    );
}

#[test]
fn every_built_in_scenario_states_expectations() {
    for name in library::names() {
        let scenario = library::load(name).expect("loads");
        assert!(scenario.expect.is_some(), "{name} has no [expect]");
        assert!(!scenario.description.is_empty(), "{name} has no description");
    }
}

#[test]
fn json_report_carries_money_as_exact_decimal_strings() {
    let r = report("flood");
    let json = serde_json::to_value(&r).expect("serialises");
    let spend = &json["strategies"][0]["spend"];
    assert!(spend.is_string(), "{spend}");
    assert_eq!(
        spend.as_str().map(str::to_string),
        Some(of(&r, Strategy::Unguarded).spend.to_decimal().to_string())
    );
}

/// The targeted levels' promise: the flood stopped at its callers within 1.2x the
/// physical floor plus the ranking's own delay, the customers served.
const TARGETED: &[&str] = &[
    "acts",
    "beats-unguarded",
    "overspend-within-floor",
    "exposure-within-floor-plus-attribution",
    "legit-refused-at-most",
];

#[test]
fn a_stolen_key_is_quarantined_and_the_customers_are_served() {
    let r = report("stolen-key");
    assert_met(&r, TARGETED);
    let dg = of(&r, Strategy::Dowguard);
    assert_eq!(dg.sources_held, 1, "the one stolen key");
    assert_eq!(dg.overspend, Money::ZERO);
    // The same flood against the stage as a whole refuses most customers.
    let whole = of(&report("rest-flood"), Strategy::Dowguard).legit_rejected;
    assert!(
        dg.legit_rejected * 100 < whole,
        "{} vs {whole}",
        dg.legit_rejected
    );
}

#[test]
fn three_hundred_flooding_addresses_are_blocked_a_ranking_at_a_time() {
    let r = report("address-flood");
    assert_met(&r, TARGETED);
    let dg = of(&r, Strategy::Dowguard);
    assert_eq!(dg.sources_held, 300);
    assert_eq!(dg.overspend, Money::ZERO);
}

#[test]
fn a_botnet_falls_back_to_the_stage_and_costs_no_more_than_without_attribution() {
    let r = report("botnet");
    assert_met(&r, ATTACK);
    let dg = of(&r, Strategy::Dowguard);
    assert_eq!(dg.sources_held, 0, "nobody stands out");
    let whole = report("rest-flood");
    let whole = of(&whole, Strategy::Dowguard);
    assert_eq!((dg.spend, dg.overspend), (whole.spend, whole.overspend));
}

#[test]
fn a_busy_api_with_one_heavy_partner_holds_nobody() {
    let r = report("busy-api");
    assert_met(&r, &["no-legit-rejected-within-budget", "no-caller-held"]);
    let dg = of(&r, Strategy::Dowguard);
    assert_eq!((dg.legit_rejected, dg.sources_held), (0, 0));
}

/// The attributed exposure bound is a real check: a bound below what the stolen
/// key's ranking needs (0.1x the floor plus the two-minute ranking delay, under the
/// 1.33x measured) is reported missed.
#[test]
fn an_exposure_over_the_floor_plus_the_ranking_delay_is_a_missed_expectation() {
    let text = include_str!("../scenarios/stolen-key.toml").replace(
        "exposure_attributed_ratio_max = \"1.2\"",
        "exposure_attributed_ratio_max = \"0.1\"",
    );
    let scenario = dowguard_sim::scenario::Scenario::from_toml(&text, "tight stolen-key", |_| {
        unreachable!("no CSV trace")
    })
    .expect("scenario parses");
    let r = run(&scenario);
    let verdict = r
        .verdicts()
        .iter()
        .find(|v| v.check == "exposure-within-floor-plus-attribution")
        .expect("the check is made");
    assert!(!verdict.met, "{}", verdict.detail);
}
