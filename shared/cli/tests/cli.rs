//! The real `dowguard` binary against the local AWS server: budgets, status,
//! release, audit, guard-cost and completions, with snapshots of what people read.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::process::{Command, Output};

use dowguard_domain::{Limits, Phase, TargetId};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard, TABLE};
use dowguard_tests::fixtures::{create_function, create_function_with, create_http_api};
use support::{code, json, now, run, stderr, stdout};

/// Runs `dowguard ARGS` against the local server.
fn dowguard(aws: &LocalAws, args: &[&str]) -> Output {
    let mut command = support::command(2);
    command.args(["--endpoint-url", aws.endpoint()]);
    run(command, args)
}

/// Snapshots with the server's random ids hidden.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"(rest-stage|http-stage):[a-z0-9]+/", "$1:[API]/");
    settings.add_filter(r"usage-plan:[a-z0-9]+", "usage-plan:[PLAN]");
    settings
}

#[tokio::test]
async fn budgets_are_set_listed_shown_refused_when_stale_or_invalid_and_traced() {
    let aws = LocalAws::start().await.unwrap();
    ExampleAccount::seed(&aws, now()).await.unwrap();

    let list = dowguard(&aws, &["budgets", "list"]);
    assert_eq!(code(&list), 0, "{}", stderr(&list));
    redacted().bind(|| insta::assert_snapshot!("budgets_list", stdout(&list)));

    // Read-modify-write at the version read.
    let set = dowguard(
        &aws,
        &[
            "budgets",
            "set",
            "checkout-daily",
            "--amount",
            "$300",
            "--mode",
            "dry-run",
        ],
    );
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    insta::assert_snapshot!("budgets_set_update", stdout(&set));

    // A change made from version 1 is stale now: refused, nothing written.
    let stale = dowguard(
        &aws,
        &[
            "budgets",
            "set",
            "checkout-daily",
            "--amount",
            "310",
            "--if-version",
            "1",
        ],
    );
    assert_eq!(code(&stale), 3, "{}", stderr(&stale));
    assert!(stderr(&stale).contains("conflict"), "{}", stderr(&stale));
    assert!(stderr(&stale).contains("version 2"), "{}", stderr(&stale));
    assert!(stderr(&stale).contains("version 1"), "{}", stderr(&stale));

    // Invalid input names the field and the fix; nothing is written.
    let bad_period = dowguard(
        &aws,
        &[
            "budgets",
            "set",
            "nightly",
            "--scope",
            "function:checkout",
            "--period",
            "week",
            "--amount",
            "10",
            "--owner",
            "ops",
        ],
    );
    assert_eq!(code(&bad_period), 2);
    insta::assert_snapshot!("budgets_set_invalid_period", stderr(&bad_period));
    let bad_amount = dowguard(&aws, &["budgets", "set", "checkout-daily", "--amount=-5"]);
    assert_eq!(code(&bad_amount), 2);
    assert!(stderr(&bad_amount).contains("`amount`") && stderr(&bad_amount).contains("--amount"));
    let missing = dowguard(&aws, &["budgets", "set", "nightly", "--amount", "10"]);
    assert_eq!(code(&missing), 2);
    assert!(stderr(&missing).contains("--scope"), "{}", stderr(&missing));
    assert_eq!(code(&dowguard(&aws, &["budgets", "show", "nightly"])), 4);

    let show = dowguard(&aws, &["budgets", "show", "checkout-daily", "--output", "json"]);
    assert_eq!(code(&show), 0);
    let shown = json(&show);
    assert_eq!(shown["amount"], "300");
    assert_eq!(shown["mode"], "dry-run");
    assert_eq!(shown["version"], 2);

    // Every kind of scope and field goes in through the same parser.
    let full = dowguard(
        &aws,
        &[
            "budgets",
            "set",
            "team-shop",
            "--scope",
            "tag:team=shop",
            "--period",
            "month",
            "--amount",
            "1,500.50",
            "--owner",
            "shop-team",
            "--thresholds",
            "1,2,6,14.4",
            "--mode",
            "enforce",
            "--floor-concurrency",
            "2",
            "--floor-rate",
            "5",
            "--floor-burst",
            "10",
            "--protected",
            "true",
            "--topic",
            "arn:aws:sns:us-east-1:123456789012:finance-alerts",
        ],
    );
    assert_eq!(code(&full), 0, "{}", stderr(&full));
    insta::assert_snapshot!("budgets_set_create", stdout(&full));
    assert_eq!(
        code(&dowguard(
            &aws,
            &[
                "budgets",
                "set",
                "team-shop",
                "--amount",
                "1",
                "--if-version",
                "0"
            ]
        )),
        3
    );

    let stale_rm = dowguard(&aws, &["budgets", "rm", "shop-daily", "--if-version", "7"]);
    assert_eq!(code(&stale_rm), 3);
    let rm = dowguard(&aws, &["budgets", "rm", "shop-daily"]);
    assert_eq!(code(&rm), 0, "{}", stderr(&rm));
    assert_eq!(code(&dowguard(&aws, &["budgets", "show", "shop-daily"])), 4);

    let history = dowguard(&aws, &["budgets", "history", "checkout-daily"]);
    assert_eq!(code(&history), 0);
    redacted().bind(|| insta::assert_snapshot!("budgets_history", stdout(&history)));
    let removed = dowguard(&aws, &["budgets", "history", "shop-daily", "--output", "json"]);
    let removed = json(&removed);
    assert_eq!(removed.as_array().map(Vec::len), Some(2));
    assert_eq!(removed[1]["summary"], "removed");
    assert!(removed[1]["actor"].as_str().unwrap().starts_with("cli:arn:aws:"));
}

#[tokio::test]
async fn status_shows_the_throttle_release_restores_the_originals_and_history_tells_who() {
    let aws = LocalAws::start().await.unwrap();
    let account = ExampleAccount::seed(&aws, now()).await.unwrap();
    create_function(&aws, "idle").await.unwrap();

    let calm = dowguard(&aws, &["status"]);
    assert_eq!(code(&calm), 0, "{}", stderr(&calm));
    redacted().bind(|| insta::assert_snapshot!("status_calm", stdout(&calm)));

    // A flood, and one pass of the real guard: it throttles the checkout function.
    account.flood(&aws, now(), 5).await.unwrap();
    let local = LocalGuard::new(&aws).await.unwrap();
    // The inventory function has read the account; then one pass.
    local.reconcile(now()).await.unwrap();
    local.guard("evaluator").evaluate(now()).await.unwrap();
    let checkout = TargetId::parse("function:checkout").unwrap();
    let held = local
        .stack
        .store
        .load_one(&checkout)
        .await
        .unwrap()
        .expect("a state");
    assert!(held.phase.is_tightened(), "{held:?}");

    let status = dowguard(&aws, &["status"]);
    assert_eq!(code(&status), 1, "exit 1 while throttled: {}", stderr(&status));
    redacted().bind(|| insta::assert_snapshot!("status_throttled", stdout(&status)));
    let status_json = json(&dowguard(
        &aws,
        &["status", "function:checkout", "--output", "json"],
    ));
    assert_eq!(status_json["throttled"], true);
    let budget = &status_json["budgets"][0];
    assert_eq!(budget["budget"], "checkout-daily");
    assert!(budget["spent"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    assert_eq!(
        budget["targets"][0]["originals"]["reserved_concurrency"], 50,
        "the restore point is shown"
    );
    assert!(
        budget["targets"][0]["last_action"]["why"]
            .as_str()
            .unwrap()
            .contains("checkout-daily")
    );

    let release = dowguard(&aws, &["release", "function:checkout", "--for", "2h"]);
    assert_eq!(code(&release), 0, "{}", stderr(&release));
    redacted().bind(|| insta::assert_snapshot!("release", stdout(&release)));
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    let reserved = lambda
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions();
    assert_eq!(reserved, Some(50), "the original reservation is back");
    let state = local
        .stack
        .store
        .load_one(&checkout)
        .await
        .unwrap()
        .expect("a state");
    assert_eq!(state.phase, Phase::Recovering);
    assert_eq!(state.hold_until, Some(now() + chrono::Duration::hours(2)));
    assert_eq!(
        state.restore_point.map(|rp| rp.limits),
        Some(Limits::Function {
            reserved_concurrency: Some(50),
            async_config: None
        })
    );
    let trail = local.stack.store.audit_of_day(now().date_naive()).await.unwrap();
    let by_cli: Vec<_> = trail.iter().filter(|r| r.actor.starts_with("cli:")).collect();
    assert!(!by_cli.is_empty(), "the release is audited");
    assert!(by_cli.iter().all(|r| r.actor.contains("arn:aws:")), "{by_cli:?}");

    // The guard's next pass does not tighten it again during the hold.
    let later = now() + chrono::Duration::minutes(5);
    let pass = local.guard("evaluator").evaluate(later).await.unwrap();
    assert!(
        pass.decision
            .actions
            .iter()
            .all(|a| a.target != checkout || a.intent != dowguard_domain::Intent::Tighten),
        "held"
    );

    let after = dowguard(&aws, &["status", "function:checkout"]);
    assert_eq!(code(&after), 0, "recovering is not throttled: {}", stderr(&after));
    redacted().bind(|| insta::assert_snapshot!("status_after_release", stdout(&after)));

    // A target the guard never touched: said so, nothing written.
    let untouched = dowguard(&aws, &["release", "function:idle"]);
    assert_eq!(code(&untouched), 0);
    assert!(
        stdout(&untouched).contains("never changed function:idle"),
        "{}",
        stdout(&untouched)
    );
    let idle = TargetId::parse("function:idle").unwrap();
    assert_eq!(local.stack.store.load_one(&idle).await.unwrap(), None);
    assert_eq!(code(&dowguard(&aws, &["release", "function:ghost"])), 4);
    assert_eq!(code(&dowguard(&aws, &["release", "bucket:logs"])), 2);
}

#[tokio::test]
async fn audit_ranks_the_unprotected_entry_points_first_with_their_cost_an_hour() {
    let aws = LocalAws::start().await.unwrap();
    ExampleAccount::seed(&aws, now()).await.unwrap();
    create_function_with(&aws, "resize", 2_048, &[]).await.unwrap();
    create_http_api(&aws, "webhooks", "live").await.unwrap();

    let audit = dowguard(&aws, &["audit"]);
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    redacted().bind(|| insta::assert_snapshot!("audit", stdout(&audit)));

    let ranked = json(&dowguard(&aws, &["audit", "--output", "json"]));
    let rows: Vec<(String, String)> = ranked["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["target"].as_str().unwrap();
            let kind = id.split(':').next().unwrap().to_string();
            (kind, e["worst_per_hour"].as_str().unwrap().to_string())
        })
        .collect();
    // 10,000 rps × $3.50/M; 1,000 × 2 GB × $0.0000166667/GB-s; 50 × 0.5 GB; 100 rps × $3.50/M; 50 rps × $1/M.
    assert_eq!(
        rows,
        vec![
            ("rest-stage".into(), "126".into()),
            ("function".into(), "120.00024".into()),
            ("function".into(), "1.500003".into()),
            ("usage-plan".into(), "1.26".into()),
            ("http-stage".into(), "0.18".into()),
        ]
    );
    let stage = &ranked["entry_points"][0];
    let findings: Vec<&str> = stage["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["finding"].as_str().unwrap())
        .collect();
    assert_eq!(findings, ["no-stage-throttle", "open-methods"]);
    // The stage's own budget and its usage plan's ($50 a day each) bind it alike; the
    // first in budget order is named, as the guard names it in its reasons.
    assert_eq!(stage["basis"]["budget"], "partners-daily");
    assert_eq!(stage["recommended"]["throttle"]["rate_limit"], "2380");

    let gate = dowguard(&aws, &["audit", "--fail-above", "$100/h"]);
    assert_eq!(code(&gate), 1);
    assert!(
        stdout(&gate).contains("2 entry point(s) above $100.00/h"),
        "{}",
        stdout(&gate)
    );
    assert_eq!(
        code(&dowguard(
            &aws,
            &["audit", "--fail-above", "200", "--output", "json"]
        )),
        0
    );
}

#[tokio::test]
async fn guard_cost_counts_the_guarded_targets() {
    let aws = LocalAws::start().await.unwrap();
    ExampleAccount::seed(&aws, now()).await.unwrap();
    let cost = dowguard(&aws, &["guard-cost"]);
    assert_eq!(code(&cost), 0, "{}", stderr(&cost));
    insta::assert_snapshot!("guard_cost", stdout(&cost));
    let view = json(&dowguard(
        &aws,
        &["guard-cost", "--output", "json", "--schedule-minutes", "5"],
    ));
    assert_eq!(view["functions"], 1);
    assert_eq!(view["stages"], 2);
    assert_eq!(view["evaluator_runs_per_month"], 8_640);
    // Every five minutes, the function needs an alarm; every minute, nothing does.
    assert!(view["alarm_count"].as_u64().is_some_and(|n| n >= 1), "{view}");
    let every_minute = json(&dowguard(&aws, &["guard-cost", "--output", "json"]));
    assert_eq!(every_minute["alarm_count"], 0, "{every_minute}");
    let all = json(&dowguard(
        &aws,
        &["guard-cost", "--output", "json", "--alarms-every-target"],
    ));
    // The function and the stage; a usage plan has no request metric of its own.
    assert_eq!(all["alarm_count"], 2, "{all}");
    // No stage logs its callers: no ranking rule, whatever the deployment.
    assert_eq!(every_minute["ranking_rules"], 0, "{every_minute}");
}

/// A stage whose JSON access log names the API key, in a usage plan, with a
/// quarantine plan deployed: one rule ranking its keys, priced with the events it
/// matches (the stage's requests of the last 24 hours, times 30).
#[tokio::test]
async fn guard_cost_prices_the_ranking_rules_of_a_stage_that_logs_its_callers() {
    let aws = LocalAws::start().await.unwrap();
    let example = ExampleAccount::seed(&aws, now()).await.unwrap();
    aws_sdk_apigateway::Client::new(&aws.sdk_config())
        .update_stage()
        .rest_api_id(&example.api)
        .stage_name("prod")
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/accessLogSettings/destinationArn")
                .value(format!(
                    "arn:aws:logs:us-east-1:123456789012:log-group:API-Gateway-Access-Logs_{}/prod",
                    example.api
                ))
                .build(),
        )
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/accessLogSettings/format")
                .value(r#"{"requestId":"$context.requestId","key":"$context.identity.apiKeyId"}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    example.flood(&aws, now(), 10).await.unwrap();
    let off = json(&dowguard(&aws, &["guard-cost", "--output", "json"]));
    assert_eq!(off["ranking_rules"], 0, "no quarantine plan, no web ACL: {off}");
    let view = json(&dowguard(
        &aws,
        &[
            "guard-cost",
            "--output",
            "json",
            "--quarantine-plan-id",
            "quarantine1",
        ],
    ));
    assert_eq!(view["ranking_rules"], 1, "{view}");
    // Ten minutes of a million requests in the last day: 300 million a month.
    let events = view["matched_events_per_month"].as_u64().unwrap();
    assert_eq!(events, 300_000_000, "{view}");
    let expected = dowguard_domain::GuardCost::of_rules(1, dowguard_domain::guard_cost::MINUTES_PER_MONTH)
        + dowguard_domain::GuardCost::of_matched_events(events);
    let priced = dowguard_domain::Money::parse(view["rankings"].as_str().unwrap()).unwrap();
    assert_eq!(priced, expected, "{view}");
    assert_eq!(
        expected,
        dowguard_domain::Money::parse("6.50").unwrap(),
        "$0.50 + 300 × $0.02"
    );
    let none = json(&dowguard(
        &aws,
        &[
            "guard-cost",
            "--output",
            "json",
            "--quarantine-plan-id",
            "quarantine1",
            "--no-caller-ranking",
        ],
    ));
    assert_eq!(none["ranking_rules"], 0, "{none}");
}

#[tokio::test]
async fn aws_errors_name_the_operation_and_resource_and_set_the_exit_code() {
    let aws = LocalAws::start().await.unwrap();
    // No table: the guard is not deployed here.
    let out = dowguard(&aws, &["budgets", "list", "--table-name", "missing"]);
    assert_eq!(code(&out), 4);
    let err = stderr(&out);
    assert!(err.contains("Query on missing (BUDGETS) failed"), "{err}");
    assert!(err.contains("hint: is the guard deployed"), "{err}");
    assert!(
        !err.contains("ServiceError {") && !err.contains("source:"),
        "no debug dump: {err}"
    );
    // Nothing listens here.
    let down = Command::new(env!("CARGO_BIN_EXE_dowguard"))
        .args([
            "budgets",
            "list",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--region",
            "us-east-1",
        ])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert_eq!(code(&down), 5, "{}", stderr(&down));
    assert!(stderr(&down).contains(&format!("Query on {TABLE} (BUDGETS) failed")));
}

#[test]
fn completions_and_help_need_no_aws() {
    let bash = Command::new(env!("CARGO_BIN_EXE_dowguard"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert_eq!(code(&bash), 0);
    let script = stdout(&bash);
    assert!(script.contains("_dowguard") && script.contains("budgets") && script.contains("--fail-above"));
    let help = Command::new(env!("CARGO_BIN_EXE_dowguard"))
        .arg("--help")
        .output()
        .unwrap();
    insta::assert_snapshot!("help", stdout(&help));
}

#[tokio::test]
async fn audit_says_which_targeted_levels_each_stage_can_use_and_what_it_lacks() {
    let aws = LocalAws::start().await.unwrap();
    let example = ExampleAccount::seed(&aws, now()).await.unwrap();
    let stage_id = format!("rest-stage:{}/prod", example.api);
    let level = |audit: &serde_json::Value| -> serde_json::Value {
        audit["entry_points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"] == stage_id.as_str())
            .map(|e| e["targeted"].clone())
            .unwrap()
    };
    // As seeded: no access logs, no API key required, no web ACL.
    let before = level(&json(&dowguard(&aws, &["audit", "--output", "json"])));
    assert_eq!(before["usable"], serde_json::json!([]));
    assert!(
        before["missing"][0].as_str().unwrap().starts_with("access logs"),
        "{before}"
    );

    // Access logs to CloudWatch Logs, and a method that requires an API key of the stage's plan.
    let client = aws_sdk_apigateway::Client::new(&aws.sdk_config());
    client
        .update_stage()
        .rest_api_id(example.api.as_str())
        .stage_name("prod")
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/accessLogSettings/destinationArn")
                .value("arn:aws:logs:us-east-1:123456789012:log-group:shop-access")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let resources = client
        .get_resources()
        .rest_api_id(example.api.as_str())
        .send()
        .await
        .unwrap();
    let root = resources
        .items()
        .iter()
        .find(|r| r.path() == Some("/"))
        .and_then(|r| r.id())
        .unwrap();
    let orders = client
        .create_resource()
        .rest_api_id(example.api.as_str())
        .parent_id(root)
        .path_part("orders")
        .send()
        .await
        .unwrap();
    client
        .put_method()
        .rest_api_id(example.api.as_str())
        .resource_id(orders.id().unwrap())
        .http_method("POST")
        .authorization_type("NONE")
        .api_key_required(true)
        .send()
        .await
        .unwrap();
    let after = level(&json(&dowguard(&aws, &["audit", "--output", "json"])));
    assert_eq!(after["usable"], serde_json::json!(["quarantine an API key"]));
    assert_eq!(
        after["missing"],
        serde_json::json!(["a web ACL with a rule blocking an IP set, to block an address"])
    );
}
