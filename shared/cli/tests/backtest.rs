//! `dowguard backtest` against the local AWS server: CloudWatch is seeded with the
//! minutes of a built-in scenario, and the backtest must find what `dowguard
//! simulate` finds for the same traffic and budgets; a second run with other
//! budgets reads the cache and fetches nothing.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use dowguard_sim::backtest::History;
use dowguard_sim::library;
use dowguard_tests::LocalAws;
use dowguard_tests::account::{TABLE, put_points};
use dowguard_tests::fixtures::{GUARDED, create_function_with};
use support::{code, json, run};

/// The seeded history starts here: two and a half days before the tests' `NOW`.
const START: &str = "2026-11-18T00:00:00Z";

fn dowguard(aws: &LocalAws, cache: &std::path::Path, args: &[&str]) -> Output {
    let mut command = support::command(2);
    command
        .args(["--endpoint-url", aws.endpoint()])
        .env("DOWGUARD_CACHE_DIR", cache);
    run(command, args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Seeds `function` in CloudWatch with the recorded minutes of built-in `scenario`
/// from `start`, as Lambda would have published them.
async fn seed_scenario(aws: &LocalAws, scenario: &str, function: &str, start: &str) -> u32 {
    let sc = library::load(scenario).unwrap();
    let history = History::of_scenario(&sc);
    let start: DateTime<Utc> = start.parse().unwrap();
    let mut points = Vec::new();
    for r in &history.recorded {
        let at = start + Duration::minutes(i64::from(r.minute));
        points.push(("Invocations", at, r.requests as f64));
        points.push(("Duration", at, r.duration_ms as f64));
    }
    put_points(aws, "AWS/Lambda", &[("FunctionName", function)], &points)
        .await
        .unwrap();
    sc.minutes
}

async fn account(aws: &LocalAws) {
    // The flood scenario's function: 1,024 MB, x86_64, no reservation.
    create_function_with(aws, "checkout", 1_024, &[GUARDED])
        .await
        .unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&aws.sdk_config());
    dowguard_adapters::dynamodb::create_table(&dynamo, TABLE)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_seeded_flood_backtests_to_what_simulate_finds_and_a_second_run_reads_the_cache() {
    let aws = LocalAws::start().await.unwrap();
    let cache = tempdir("flood");
    account(&aws).await;
    let minutes = seed_scenario(&aws, "flood", "checkout", START).await;
    let set = dowguard(
        &aws,
        &cache,
        &[
            "budgets",
            "set",
            "checkout-daily",
            "--scope",
            "function:checkout",
            "--period",
            "day",
            "--amount",
            "10",
            "--owner",
            "finance@example.com",
        ],
    );
    assert_eq!(code(&set), 0, "{}", text(&set.stderr));
    let to = ("2026-11-18T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        + Duration::minutes(i64::from(minutes)))
    .to_rfc3339();
    let range = ["--from", START, "--to", to.as_str()];

    let plot = cache.join("flood.svg");
    let table = dowguard(
        &aws,
        &cache,
        &[&["backtest", "--plot", plot.to_str().unwrap()][..], &range].concat(),
    );
    assert_eq!(code(&table), 1, "the flood is throttled: {}", text(&table.stderr));
    insta::assert_snapshot!("backtest_flood", text(&table.stdout));
    assert!(std::fs::read_to_string(&plot).unwrap().contains("<svg"));

    let backtest = json(&dowguard(
        &aws,
        &cache,
        &[&["backtest", "--output", "json"][..], &range].concat(),
    ));
    // The second run found everything in the cache.
    assert_eq!(backtest["fetched_metrics"], 0);
    assert_eq!(backtest["cached_targets"], 1);

    let simulated = dowguard(&aws, &cache, &["simulate", "flood", "--json"]);
    let simulated = json(&simulated);
    let dg = simulated["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["strategy"] == "dowguard")
        .unwrap();
    let unguarded = &simulated["strategies"][0];
    let budget = &backtest["budgets"][0];
    assert_eq!(budget["spend_guarded"], dg["spend"]);
    assert_eq!(budget["spend_recorded"], unguarded["spend"]);
    assert_eq!(budget["overspend_guarded"], dg["overspend"]);
    let refused = dg["legit_rejected"].as_u64().unwrap() + dg["attack_rejected"].as_u64().unwrap();
    assert_eq!(budget["refused"].as_u64(), Some(refused));
    assert_eq!(backtest["tightenings"], dg["tightenings"]);
    // The same episodes, minute for minute (the runs start on different dates).
    let strip = |episodes: &serde_json::Value| -> Vec<serde_json::Value> {
        episodes
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                serde_json::json!([
                    e["start_minute"],
                    e["end_minute"],
                    e["level"],
                    e["throttled"],
                    e["refused"],
                    e["reason"]
                ])
            })
            .collect()
    };
    assert_eq!(strip(&budget["episodes"]), strip(&dg["episodes"]));
    assert_eq!(budget["episodes"][0]["start"], "2026-11-18T06:03:00Z");

    // Other amounts from a budgets file: the cache again, and a $2,000 budget rides the flood out.
    let file = cache.join("try.toml");
    std::fs::write(
        &file,
        "[[budgets]]\nid = \"checkout-daily\"\nscope = \"function:checkout\"\nperiod = \"day\"\namount = \"2000\"\n",
    )
    .unwrap();
    let generous = dowguard(
        &aws,
        &cache,
        &[&["backtest", "--budgets", file.to_str().unwrap()][..], &range].concat(),
    );
    assert_eq!(code(&generous), 0, "{}", text(&generous.stdout));
    assert!(text(&generous.stdout).contains("1 target(s) from the cache"));
    assert!(text(&generous.stdout).contains("would have throttled nothing"));
}

#[tokio::test]
async fn a_launch_spike_backtests_to_no_throttle_and_bad_input_is_named() {
    let aws = LocalAws::start().await.unwrap();
    let cache = tempdir("spike");
    account(&aws).await;
    let minutes = seed_scenario(&aws, "launch-spike", "checkout", START).await;
    let to = ("2026-11-18T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        + Duration::minutes(i64::from(minutes)))
    .to_rfc3339();
    let file = cache.join("budgets.toml");
    std::fs::write(
        &file,
        "[[budgets]]\nid = \"checkout-daily\"\nscope = \"function:checkout\"\nperiod = \"day\"\namount = \"7\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let spike = dowguard(
        &aws,
        &cache,
        &[
            "backtest",
            "--budgets",
            file,
            "--from",
            START,
            "--to",
            &to,
            "--output",
            "json",
        ],
    );
    assert_eq!(code(&spike), 0, "{}", text(&spike.stderr));
    let spike = json(&spike);
    assert_eq!(spike["throttled"], false);
    assert_eq!(spike["budgets"][0]["refused"], 0);
    assert_eq!(spike["budgets"][0]["within_budget"], true);

    // A range with no data.
    let empty = dowguard(
        &aws,
        &cache,
        &[
            "backtest",
            "--budgets",
            file,
            "--from",
            "2026-11-10T00:00:00Z",
            "--to",
            "2026-11-11T00:00:00Z",
        ],
    );
    assert_eq!(code(&empty), 2);
    assert!(
        text(&empty.stderr).contains("no requests"),
        "{}",
        text(&empty.stderr)
    );

    // A budgets file with an invalid budget names the budget and the field.
    let bad = cache.join("bad.toml");
    std::fs::write(
        &bad,
        "[[budgets]]\nid = \"checkout-daily\"\nscope = \"function:checkout\"\nperiod = \"fortnight\"\namount = \"7\"\n",
    )
    .unwrap();
    let invalid = dowguard(&aws, &cache, &["backtest", "--budgets", bad.to_str().unwrap()]);
    assert_eq!(code(&invalid), 2);
    let message = text(&invalid.stderr);
    assert!(
        message.contains("budgets[0]") && message.contains("checkout-daily") && message.contains("period"),
        "{message}"
    );

    // Above --max-fetch-cost, without a terminal to ask on: nothing is fetched.
    let costly = dowguard(
        &aws,
        &tempdir("costly"),
        &[
            "backtest",
            "--budgets",
            file,
            "--from",
            START,
            "--to",
            &to,
            "--max-fetch-cost",
            "0",
        ],
    );
    assert_eq!(code(&costly), 2);
    assert!(text(&costly.stderr).contains("--yes"), "{}", text(&costly.stderr));
    let yes = dowguard(
        &aws,
        &tempdir("yes"),
        &[
            "backtest",
            "--budgets",
            file,
            "--from",
            START,
            "--to",
            &to,
            "--max-fetch-cost",
            "0",
            "--yes",
        ],
    );
    assert_eq!(code(&yes), 0, "{}", text(&yes.stderr));
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dowguard-backtest-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn budgets_suggest_on_a_diurnal_week_proposes_an_amount_its_backtest_does_not_throttle() {
    let aws = LocalAws::start().await.unwrap();
    let cache = tempdir("suggest");
    account(&aws).await;
    // The diurnal week, ending three and a half days before the tests' NOW.
    seed_scenario(&aws, "diurnal", "checkout", "2026-11-10T00:00:00Z").await;
    let range = ["--from", "2026-11-10T00:00:00Z", "--to", "2026-11-17T00:00:00Z"];
    let file = cache.join("suggested.toml");
    let file = file.to_str().unwrap();
    let suggest = dowguard(
        &aws,
        &cache,
        &[
            &[
                "budgets",
                "suggest",
                "--scope",
                "function:checkout",
                "--write",
                file,
            ][..],
            &range,
        ]
        .concat(),
    );
    assert_eq!(code(&suggest), 0, "{}", text(&suggest.stderr));
    insta::with_settings!({filters => vec![(r"Written to .*suggested.toml.*", "Written to [FILE].")]}, {
        insta::assert_snapshot!("budgets_suggest", text(&suggest.stdout));
    });
    let json = json(&dowguard(
        &aws,
        &cache,
        &[
            &[
                "budgets",
                "suggest",
                "--scope",
                "function:checkout",
                "--output",
                "json",
            ][..],
            &range,
        ]
        .concat(),
    ));
    let suggestion = &json["suggestions"][0];
    // Each day of the diurnal week costs $7.13: 95th percentile + 25 % = $8.91, rounded up.
    assert_eq!(suggestion["amount"], "9");
    assert_eq!(suggestion["backtest"]["refused"], 0);
    assert_eq!(suggestion["backtest"]["within_budget"], true);
    assert_eq!(json["fetched_metrics"], 0, "the second run reads the cache");
    // The written file backtests to no throttle.
    let backtest = dowguard(
        &aws,
        &cache,
        &[&["backtest", "--budgets", file][..], &range].concat(),
    );
    assert_eq!(code(&backtest), 0, "{}", text(&backtest.stdout));
    assert!(text(&backtest.stdout).contains("$9.00"));
}
