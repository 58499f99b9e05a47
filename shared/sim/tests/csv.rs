//! CSV traces: a hand-written trace runs like any scenario; a bad one is rejected
//! with the line number and the reason.

#![allow(clippy::expect_used, reason = "test helpers fail loudly on a broken fixture")]

use std::path::Path;

use dowguard_domain::{Arch, PriceBook, TargetSpec, Usage};
use dowguard_sim::engine::Strategy;
use dowguard_sim::{Scenario, SimError, run};

const TOML: &str = r#"
name = "csv"
[[targets]]
id = "function:orders"
memory_mb = 512
avg_duration_ms = 300
[[targets]]
id = "rest-stage:a1b2c3/prod"
[[budgets]]
id = "orders-daily"
scope = "function:orders"
period = "day"
amount = "2"
"#;

fn load(csv: &str) -> Result<Scenario, SimError> {
    let text = format!("csv = \"trace.csv\"\n{TOML}");
    let csv = csv.to_string();
    Scenario::from_toml(&text, "test", move |_| Ok(("trace.csv".into(), csv)))
}

fn rejected(csv: &str) -> (usize, String) {
    match load(csv) {
        Err(SimError::Csv { line, reason, .. }) => (line, reason),
        other => panic!("expected a CSV error, got {other:?}"),
    }
}

const HEADER: &str = "minute,target,legit_requests,attack_requests,avg_duration_ms";

#[test]
fn hand_written_trace_runs_and_reports_every_strategy() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hand-written.toml");
    let scenario = Scenario::from_path(&path).expect("fixture loads");
    assert_eq!(scenario.minutes, 40);
    let report = run(&scenario);
    assert_eq!(report.strategies.len(), 5);
    let unguarded = report.strategy(Strategy::Unguarded).expect("reported");
    let dg = report.strategy(Strategy::Dowguard).expect("reported");
    assert_eq!(unguarded.legit_requests, 40 * 300 + 20 * 500);
    assert_eq!(unguarded.attack_requests, 20 * 60_000);
    assert!(unguarded.overspend.is_positive());
    assert!(dg.overspend < unguarded.overspend);
    assert!(report.table().contains("dowguard"));
}

#[test]
fn missing_rows_mean_no_requests_and_zero_duration_means_the_configured_average() {
    let csv = format!("{HEADER}\n0,function:orders,10,0,0\n5,function:orders,10,5,600\n");
    let scenario = load(&csv).expect("valid");
    assert_eq!(scenario.minutes, 6);
    let report = run(&scenario);
    let unguarded = report.strategy(Strategy::Unguarded).expect("reported");
    assert_eq!(unguarded.legit_requests, 20);
    assert_eq!(unguarded.attack_requests, 5);
    // 10 x 300 ms + 15 x 600 ms at 512 MB, plus 25 requests.
    let expected = dowguard_domain_cost(10 * 300 + 15 * 600, 25);
    assert_eq!(unguarded.spend, expected);
}

/// `requests` to an x86 function of 512 MB running `total_ms` in all, at the bundled
/// price book's list prices.
fn dowguard_domain_cost(total_ms: u64, requests: u64) -> dowguard_sim::Money {
    let prices = PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .expect("prices");
    let spec = TargetSpec::Function {
        memory_mb: 512,
        arch: Arch::X86_64,
        async_invoked: false,
    };
    prices.list().of(&spec).cost(&Usage {
        requests,
        throttled: 0,
        duration_ms: total_ms,
    })
}

#[test]
fn rejects_a_wrong_header_on_line_one() {
    let (line, reason) = rejected("minute,target,legit,attack,ms\n0,function:orders,1,0,0\n");
    assert_eq!(line, 1);
    assert!(reason.contains("header must be exactly"), "{reason}");
}

#[test]
fn rejects_negative_counts_with_the_line_number() {
    let (line, reason) = rejected(&format!(
        "{HEADER}\n0,function:orders,1,0,0\n1,function:orders,-5,0,0\n"
    ));
    assert_eq!(line, 3);
    assert!(reason.contains("legit_requests is negative"), "{reason}");
    let (line, reason) = rejected(&format!("{HEADER}\n0,function:orders,1,-2,0\n"));
    assert_eq!(line, 2);
    assert!(reason.contains("attack_requests is negative"), "{reason}");
}

#[test]
fn rejects_an_unknown_target_with_the_line_number() {
    let (line, reason) = rejected(&format!(
        "{HEADER}\n0,function:orders,1,0,0\n0,function:nope,1,0,0\n"
    ));
    assert_eq!(line, 3);
    assert!(reason.contains("unknown target `function:nope`"), "{reason}");
}

#[test]
fn rejects_minutes_that_go_backwards_with_the_line_number() {
    let (line, reason) = rejected(&format!(
        "{HEADER}\n0,function:orders,1,0,0\n3,function:orders,1,0,0\n2,function:orders,1,0,0\n"
    ));
    assert_eq!(line, 4);
    assert!(
        reason.contains("must not decrease: minute 2 follows minute 3"),
        "{reason}"
    );
}

#[test]
fn rejects_two_rows_for_one_target_in_one_minute() {
    let (line, reason) = rejected(&format!(
        "{HEADER}\n0,function:orders,1,0,0\n0,function:orders,1,0,0\n"
    ));
    assert_eq!(line, 3);
    assert!(reason.contains("one row per target per minute"), "{reason}");
}

#[test]
fn rejects_malformed_rows_naming_the_field() {
    let cases = [
        ("0,function:orders,1,0\n", "expected 5 fields"),
        ("x,function:orders,1,0,0\n", "minute `x` is not a whole number"),
        (
            "0,function:orders,1.5,0,0\n",
            "legit_requests `1.5` is not a whole number",
        ),
        ("-1,function:orders,1,0,0\n", "minute is negative"),
    ];
    for (row, needle) in cases {
        let (line, reason) = rejected(&format!("{HEADER}\n{row}"));
        assert_eq!(line, 2, "{row}");
        assert!(reason.contains(needle), "{row}: {reason}");
    }
}

#[test]
fn the_error_message_names_file_line_and_reason() {
    let err = load(&format!(
        "{HEADER}\n0,function:orders,1,0,0\n0,rest-stage:zzz/prod,1,0,0\n"
    ))
    .expect_err("unknown");
    let text = err.to_string();
    assert!(text.starts_with("trace.csv line 3: unknown target"), "{text}");
}

#[test]
fn a_trace_that_counts_callers_lets_the_guard_block_the_flooding_ones() {
    let text = r#"
name = "csv-callers"
duration = "3h"
csv = "trace.csv"
[[targets]]
id = "rest-stage:a1b2c3/prod"
ip_set = true
[[budgets]]
id = "api-daily"
scope = "rest-stage:a1b2c3/prod"
period = "day"
amount = "50"
"#;
    let mut csv = String::from(dowguard_sim::traffic::CSV_HEADER_CLIENTS);
    for minute in 0..180 {
        let (attack, attackers) = if minute >= 60 { (600_000, 3) } else { (0, 0) };
        csv.push_str(&format!(
            "\n{minute},rest-stage:a1b2c3/prod,4960,{attack},0,2000,{attackers}"
        ));
    }
    let scenario = Scenario::from_toml(text, "test", move |_| Ok(("trace.csv".into(), csv))).expect("loads");
    let report = run(&scenario);
    let dg = report.strategy(Strategy::Dowguard).expect("dowguard");
    assert_eq!(dg.sources_held, 3);
    assert!(
        dg.legit_rejected * 50 <= dg.legit_requests,
        "{} of {}",
        dg.legit_rejected,
        dg.legit_requests
    );
}

#[test]
fn callers_counted_without_requests_are_named_and_zero_callers_with_requests_rejected() {
    let header = dowguard_sim::traffic::CSV_HEADER_CLIENTS;
    let (line, reason) = rejected(&format!("{header}\n0,function:orders,5,0,0,0,0"));
    assert_eq!(line, 2);
    assert!(reason.contains("legit_clients is 0"), "{reason}");
    let (line, reason) = rejected(&format!("{header}\n0,function:orders,5,0,0"));
    assert_eq!(line, 2);
    assert!(reason.contains("expected 7 fields"), "{reason}");
}
