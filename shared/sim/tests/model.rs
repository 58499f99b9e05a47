//! The simulated world: limits cut demand in proportion, asynchronous events queue
//! and expire, the metric delay is the scenario's, and bad scenario files are
//! rejected naming the field.

#![allow(clippy::expect_used, reason = "test helpers fail loudly on a broken fixture")]

use dowguard_domain::{Arch, PriceBook, TargetSpec};
use dowguard_sim::engine::{FirstAction, Path, Strategy};
use dowguard_sim::{Money, Scenario, SimError, run};

fn scenario(text: &str) -> Result<Scenario, SimError> {
    Scenario::from_toml(text, "test", |_| Err(SimError::Plot("no csv".into())))
}

fn flood(extra: &str, delay: u32, interval: u32) -> String {
    format!(
        r#"
name = "t"
duration = "3h"
[guard]
metric_delay_minutes = {delay}
schedule_interval_minutes = {interval}
[[targets]]
id = "function:f"
memory_mb = 1024
avg_duration_ms = 200
{extra}
[[budgets]]
id = "f-daily"
scope = "function:f"
period = "day"
amount = "10"
[[traffic]]
target = "function:f"
role = "legit"
shape = "steady"
rpm = 1000
[[traffic]]
target = "function:f"
role = "attack"
shape = "steady"
rpm = 200000
from = "1h"
until = "2h"
"#
    )
}

/// `flood` with the guard's `alarms` setting.
fn with_alarms(text: &str, alarms: &str) -> String {
    text.replace("[guard]\n", &format!("[guard]\nalarms = \"{alarms}\"\n"))
}

#[test]
fn first_limit_comes_after_the_metric_delay_plus_one_interval() {
    for (delay, interval, expected) in [(2, 1, 3), (5, 1, 6), (2, 5, 5), (0, 1, 1)] {
        // The schedule alone: no alarm.
        let r = run(&scenario(&with_alarms(&flood("", delay, interval), "none")).expect("valid"));
        let dg = r.strategy(Strategy::Dowguard).expect("reported");
        // With a 5-minute schedule the attack (at minute 60) is first seen by the
        // pass at minute 65, which reads minutes up to 62.
        assert_eq!(
            dg.minutes_to_first_action,
            Some(expected),
            "delay {delay}, interval {interval}"
        );
        assert_eq!((dg.alarm_firings, dg.responder_passes), (0, 0));
        assert!(
            dg.first_actions.iter().all(|f| f.path == Path::Schedule),
            "{:?}",
            dg.first_actions
        );
    }
}

#[test]
fn at_a_five_minute_schedule_the_alarm_and_the_responder_act_after_the_metric_delay() {
    // The alarm sees minute 60 at the end of minute 62 and goes to ALARM; the
    // responder's pass on its target acts in that minute, before the pass at 65.
    let r = run(&scenario(&flood("", 2, 5)).expect("valid"));
    let dg = r.strategy(Strategy::Dowguard).expect("reported");
    assert_eq!(dg.minutes_to_first_action, Some(3));
    assert_eq!(dg.alarm_firings, 1);
    assert_eq!(dg.responder_passes, 1);
    assert_eq!(
        dg.first_actions,
        [FirstAction {
            target: "function:f".into(),
            minute: 63,
            path: Path::Alarm,
        }]
    );
    // Every minute, the pass sees the flood as soon as an alarm would: none is kept.
    let r = run(&scenario(&flood("", 2, 1)).expect("valid"));
    let dg = r.strategy(Strategy::Dowguard).expect("reported");
    assert_eq!((dg.alarm_firings, dg.first_actions[0].path), (0, Path::Schedule));
}

/// The simulator's alarms are the alarm sync's: the threshold `desired_alarms`
/// computes (the code whose output the adapter writes with `PutMetricAlarm`), and
/// `ALARM_RULE` (greater than, not equal; the adapter's request is tested against
/// the same rule in the adapters' `mocks`). Traffic at exactly the threshold keeps
/// the alarm quiet; one request more a minute fires it.
#[test]
fn the_simulated_alarm_fires_above_the_alarm_syncs_threshold_and_not_at_it() {
    use dowguard_domain::{AlarmBasis, AlarmScope, desired_alarms};
    let base = scenario(&flood("", 2, 5)).expect("valid");
    let basis = AlarmBasis {
        prices: &base.prices,
        now: base.start,
        avg_duration_ms: base.guard.settings.default_avg_duration_ms,
        schedule_minutes: 5,
        scope: AlarmScope::Needed,
        settings: &base.guard.settings,
    };
    let targets: Vec<_> = base.targets.iter().map(|t| t.target.clone()).collect();
    let alarms = desired_alarms("dowguard-", &base.budgets, &targets, &basis);
    assert_eq!(alarms.len(), 1);
    let threshold = alarms[0].requests_per_minute;
    for (rpm, fires) in [(threshold, 0), (threshold + 1, 1)] {
        // Legit traffic alone, at `rpm` a minute from the first hour.
        let text = flood("", 2, 5)
            .replace("rpm = 1000\n", &format!("rpm = {rpm}\nfrom = \"1h\"\n"))
            .replace("rpm = 200000\n", "rpm = 0\n");
        let r = run(&scenario(&text).expect("valid"));
        let dg = r.strategy(Strategy::Dowguard).expect("reported");
        assert_eq!(dg.alarm_firings, fires, "{rpm} a minute against {threshold}");
    }
}

#[test]
fn physical_floor_is_peak_attack_spend_per_minute_times_delay_plus_interval() {
    let r = run(&scenario(&flood("", 2, 1)).expect("valid"));
    // 200,000 requests of 200 ms at 1 GB a minute, at list price, x 3.
    let prices = PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .expect("prices");
    let spec = TargetSpec::Function {
        memory_mb: 1_024,
        arch: Arch::X86_64,
        async_invoked: false,
    };
    let per_minute = prices.list().of(&spec).per_request(200).cost(200_000);
    assert_eq!(r.floor, per_minute.mul_div(3, 1).expect("fits"));
}

#[test]
fn rejections_fall_on_legit_and_attack_requests_in_proportion() {
    // A reserved concurrency of 10 serves 3,000 of 201,000 requests a minute.
    let r = run(&scenario(&flood("reserved_concurrency = 10", 2, 1)).expect("valid"));
    let u = r.strategy(Strategy::Unguarded).expect("reported");
    let legit_share = u.legit_rejected * 1_000_000 / u.legit_requests;
    let attack_share = u.attack_rejected * 1_000_000 / u.attack_requests;
    assert!(u.legit_rejected > 0);
    // Outside the attack hour nothing is rejected, so compare within it: the
    // rejected shares differ only by the quiet hours' legit requests.
    assert!(legit_share < attack_share, "{legit_share} vs {attack_share}");
    let hour_legit = 60 * 1_000;
    let in_attack_share = u.legit_rejected * 1_000_000 / hour_legit;
    assert!(
        in_attack_share.abs_diff(attack_share) < 1_000,
        "{in_attack_share} vs {attack_share}"
    );
}

#[test]
fn async_events_refused_by_a_throttle_are_replayed_until_their_maximum_age() {
    let base = |age: &str| {
        format!(
            r#"
name = "a"
duration = "12h"
[[targets]]
id = "function:f"
memory_mb = 512
avg_duration_ms = 1000
async_invoked = true
reserved_concurrency = 1
{age}
[[budgets]]
id = "f"
scope = "function:f"
period = "day"
amount = "1000"
[[traffic]]
target = "function:f"
role = "legit"
shape = "steady"
rpm = 120
until = "10m"
"#
        )
    };
    // Concurrency 1 at 1 s runs 60 a minute: 1,200 events arrive, 600 wait.
    let replayed = run(&scenario(&base("")).expect("valid"));
    let u = replayed.strategy(Strategy::Unguarded).expect("reported");
    assert_eq!(u.legit_rejected, 0, "the default 6 h age lets the backlog drain");
    let expiring = run(&scenario(&base("max_event_age_s = 120")).expect("valid"));
    let u = expiring.strategy(Strategy::Unguarded).expect("reported");
    assert!(
        u.legit_rejected > 0 && u.legit_rejected < 1_200,
        "{}",
        u.legit_rejected
    );
}

#[test]
fn bad_scenarios_are_rejected_naming_the_field() {
    let ok = flood("", 2, 1);
    let cases = [
        (
            ok.replace("duration = \"3h\"", "duration = \"3 fortnights\""),
            "duration",
        ),
        (
            ok.replace("memory_mb = 1024", "memory_mb = 64"),
            "targets[0].memory_mb",
        ),
        (ok.replace("amount = \"10\"", "amount = \"-1\""), "budgets[0]"),
        (
            ok.replace("shape = \"steady\"\nrpm = 1000", "shape = \"sine\"\nrpm = 1000"),
            "traffic[0].shape",
        ),
        (
            ok.replace(
                "target = \"function:f\"\nrole = \"legit\"",
                "target = \"function:g\"\nrole = \"legit\"",
            ),
            "traffic[0].target",
        ),
        (
            ok.replace("schedule_interval_minutes = 1", "schedule_interval_minutes = 0"),
            "guard.schedule_interval_minutes",
        ),
    ];
    for (text, field) in cases {
        match scenario(&text) {
            Err(SimError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected an invalid field, got {other:?}"),
        }
    }
    assert!(matches!(scenario("name = "), Err(SimError::Syntax { .. })));
}

#[test]
fn guard_cloudwatch_cost_grows_with_targets_and_evaluations() {
    let one = run(&scenario(&flood("", 2, 1)).expect("valid"));
    let five = run(&scenario(&flood("", 2, 5)).expect("valid"));
    let cost = |r: &dowguard_sim::Report| r.strategy(Strategy::Dowguard).expect("reported").guard_cost;
    // One alarm for 3 hours at $0.10 a month, plus the metrics of the plan: the
    // account's aggregate every pass (2 metrics), a held function every pass (3),
    // the function when the tripwire has it measured (2), and its spend-to-date once
    // an hour (2).
    let alarm = Money::from_cents(10).mul_div(180, 43_200).expect("fits");
    let metric = |n: i128| Money::from_picos(n * 10_000_000);
    let least = alarm + metric(36 * 2 + 3 * 2);
    let most = alarm + metric(180 * (2 + 3 + 2) + 3 * 2);
    for (label, c) in [("every minute", cost(&one)), ("every 5 minutes", cost(&five))] {
        assert!(least <= c && c <= most, "{label}: {c} outside {least}..{most}");
    }
    assert!(
        cost(&five) < cost(&one),
        "a held target is measured on every pass"
    );
}
