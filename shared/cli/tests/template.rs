//! `dowguard audit --template`: the real binary reading CloudFormation and SAM
//! templates offline (no credentials, no reachable AWS), with snapshots of what
//! people read, and the same entry points deployed in the local AWS server priced
//! the same by the live `audit`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dowguard_tests::LocalAws;
use dowguard_tests::fixtures::{
    create_function, create_function_with, create_http_api, create_rest_api, create_usage_plan,
};
use support::{NOW, code, json, run, stderr, stdout};

const EXPOSED: &str = "tests/fixtures/templates/exposed.yaml";

/// The workspace root: templates are named relative to it, as a user in a
/// checkout names them (and so the snapshots show the same path everywhere).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `dowguard ARGS` with no AWS credentials at all and every AWS call sent to a
/// port where nothing listens: a template audit that made any call would fail.
fn offline(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dowguard"));
    command
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("DOWGUARD_NOW", NOW);
    run(command, args)
}

/// Each entry point's worst case an hour and findings, by id.
fn by_target(view: &serde_json::Value) -> BTreeMap<String, (String, Vec<String>)> {
    view["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let findings = e["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["finding"].as_str().unwrap().to_string())
                .collect();
            (
                e["target"].as_str().unwrap().to_string(),
                (e["worst_per_hour"].as_str().unwrap().to_string(), findings),
            )
        })
        .collect()
}

/// What the audit says of each entry point, by id: worst case, capacity, what
/// bounds it, and every finding in full.
fn figures(view: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    view["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                serde_json::json!({
                    "worst_per_hour": e["worst_per_hour"],
                    "capacity": e["capacity"],
                    "bound": e["bound"],
                    "findings": e["findings"],
                }),
            )
        })
        .collect()
}

#[test]
fn the_guard_s_own_template_is_audited_offline() {
    let audit = offline(&["audit", "--template", "infra/template.yaml"]);
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    insta::assert_snapshot!("template_infra", stdout(&audit));

    // The parameter that turns on the functions' reservations: each is then held
    // to its own (1, 2, 1 and 2), priced at 256 MB arm64.
    let reserved = json(&offline(&[
        "audit",
        "--template",
        "infra/template.yaml",
        "--parameter",
        "ReserveConcurrency=true",
        "--output",
        "json",
    ]));
    let capacity: BTreeMap<String, u64> = reserved["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_string(),
                e["capacity"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        capacity,
        BTreeMap::from([
            ("function:AlarmResponder".to_string(), 2),
            ("function:Evaluator".to_string(), 1),
            ("function:Inventory".to_string(), 1),
            ("function:Widget".to_string(), 2),
        ])
    );
    // 2 × 0.25 GB × 3,600 s × $0.0000133334 a GB-second.
    assert_eq!(by_target(&reserved)["function:AlarmResponder"].0, "0.02400012");
}

#[test]
fn an_open_url_an_unthrottled_stage_and_an_unreserved_function_rank_first() {
    let audit = offline(&["audit", "--template", EXPOSED]);
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    insta::assert_snapshot!("template_exposed", stdout(&audit));

    let view = json(&offline(&["audit", "--template", EXPOSED, "--output", "json"]));
    assert_eq!(view["template"], EXPOSED);
    assert_eq!(view["account_concurrency"], 1_000);
    assert!(
        view["account_concurrency_source"]
            .as_str()
            .unwrap()
            .contains("assumed")
    );
    let ranked = by_target(&view);
    // 10,000 rps × 3,600 × $3.50/M; 1,000 × 1 GB × 3,600 × $0.0000166667;
    // 50 × 0.5 GB; 100 rps × $3.50/M; 50 rps × $1/M.
    let worst: Vec<(&str, &str)> = ranked
        .iter()
        .map(|(id, (worst, _))| (id.as_str(), worst.as_str()))
        .collect();
    assert_eq!(
        worst,
        vec![
            ("function:checkout", "1.500003"),
            ("function:orders", "60.00012"),
            ("http-stage:Webhooks/live", "0.18"),
            ("rest-stage:Shop/live", "126"),
            ("usage-plan:Partners", "1.26"),
        ]
    );
    assert_eq!(
        ranked["function:orders"].1,
        ["not-guarded", "no-reserved-concurrency", "open-function-url"]
    );
    assert_eq!(
        ranked["rest-stage:Shop/live"].1,
        ["no-stage-throttle", "open-methods"]
    );
    assert_eq!(view["total_worst_per_hour"], "187.680123");

    // The account's limit is a choice offline.
    let larger = json(&offline(&[
        "audit",
        "--template",
        EXPOSED,
        "--account-concurrency",
        "3000",
        "--output",
        "json",
    ]));
    assert_eq!(by_target(&larger)["function:orders"].0, "180.00036");
    assert_eq!(larger["account_concurrency_source"], "--account-concurrency");

    // Without the reservation the template turns on by default, checkout too scales
    // to the account's limit.
    let unreserved = json(&offline(&[
        "audit",
        "--template",
        EXPOSED,
        "--parameter",
        "ReserveCheckout=false",
        "--output",
        "json",
    ]));
    assert_eq!(by_target(&unreserved)["function:checkout"].0, "30.00006");

    // The CI gate.
    let gate = offline(&["audit", "--template", EXPOSED, "--fail-above", "$50/h"]);
    assert_eq!(code(&gate), 1, "{}", stderr(&gate));
    assert!(
        stdout(&gate).contains("2 entry point(s) above $50.00/h (exit code 1)"),
        "{}",
        stdout(&gate)
    );
    let pass = offline(&[
        "audit",
        "--template",
        EXPOSED,
        "--fail-above",
        "$200/h",
        "--output",
        "json",
    ]);
    assert_eq!(code(&pass), 0, "{}", stderr(&pass));
    assert_eq!(json(&pass)["above"], 0);
}

#[test]
fn bad_templates_are_refused_with_the_file_or_field_named() {
    let refused = |args: &[&str]| {
        let out = offline(args);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        stderr(&out)
    };
    let dir = "tests/fixtures/templates";
    assert_eq!(
        refused(&["audit", "--template", &format!("{dir}/broken.yaml")]),
        format!("error: {dir}/broken.yaml: not YAML or JSON: did not find expected ',' or ']' at line 3\n")
    );
    assert_eq!(
        refused(&["audit", "--template", &format!("{dir}/broken.json")]),
        format!("error: {dir}/broken.json: not YAML or JSON: expected value at line 1\n")
    );
    assert_eq!(
        refused(&["audit", "--template", &format!("{dir}/no-resources.yaml")]),
        format!(
            "error: {dir}/no-resources.yaml: not a CloudFormation template: no `Resources` section (every template declares its resources there)\n"
        )
    );
    assert_eq!(
        refused(&["audit", "--template", &format!("{dir}/wrong-type.json")]),
        "error: Resources.Foo.Properties.MemorySize: expected a whole number, got the text \"large\"\n"
    );
    assert_eq!(
        refused(&["audit", "--template", EXPOSED, "--parameter", "Stge=prod"]),
        "error: --parameter Stge: the template declares no such parameter\n"
    );
    assert!(
        refused(&["audit", "--template", "no/such/template.yaml"])
            .starts_with("error: --template no/such/template.yaml: cannot read it: ")
    );
}

#[test]
fn an_unresolvable_intrinsic_is_a_line_of_the_report_and_priced_at_its_worst() {
    let template = "tests/fixtures/templates/unresolved.yaml";
    let out = offline(&["audit", "--template", template]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Not decided by the template (the worst case was taken for each):\n  - Resources.Resize.Properties.MemorySize: cannot resolve !GetAtt [\"Sizes\",\"Memory\"]; assumed 10240 MB (the most Lambda allows)\n  - Resources.Resize.Properties.ReservedConcurrentExecutions: cannot resolve !ImportValue \"resize-concurrency\"; assumed no reservation (the account's concurrency)\n"),
        "{text}"
    );
    let view = json(&offline(&["audit", "--template", template, "--output", "json"]));
    assert_eq!(view["unresolved"].as_array().map(Vec::len), Some(2));
    // 1,000 × 10 GB × 3,600 s × $0.0000166667.
    assert_eq!(by_target(&view)["function:Resize"].0, "600.0012");
}

#[tokio::test]
async fn the_same_entry_points_deployed_get_the_same_figures_from_the_live_audit() {
    let aws = LocalAws::start().await.unwrap();
    // exposed.yaml, deployed by hand: orders (1 GB, no reservation, an open URL),
    // checkout (512 MB, 50 reserved, guarded), the Shop REST API (GET / open, no
    // stage throttle) with the Partners plan, and the Webhooks HTTP API (50 rps).
    create_function_with(&aws, "orders", 1_024, &[]).await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&aws.sdk_config());
    lambda
        .create_function_url_config()
        .function_name("orders")
        .auth_type(aws_sdk_lambda::types::FunctionUrlAuthType::None)
        .send()
        .await
        .unwrap();
    create_function(&aws, "checkout").await.unwrap();
    lambda
        .put_function_concurrency()
        .function_name("checkout")
        .reserved_concurrent_executions(50)
        .send()
        .await
        .unwrap();
    let shop = create_rest_api(&aws, "Shop", "live").await.unwrap();
    let plan = create_usage_plan(&aws, &shop, "live").await.unwrap();
    let webhooks = create_http_api(&aws, "Webhooks", "live").await.unwrap();

    let mut command = support::command(2);
    command.args(["--endpoint-url", aws.endpoint()]);
    let live = run(command, &["audit", "--output", "json"]);
    assert_eq!(code(&live), 0, "{}", stderr(&live));
    // The live ids are the server's; the template's are its logical ids.
    let names = BTreeMap::from([
        (
            format!("rest-stage:{shop}/live"),
            "rest-stage:Shop/live".to_string(),
        ),
        (
            format!("http-stage:{webhooks}/live"),
            "http-stage:Webhooks/live".to_string(),
        ),
        (format!("usage-plan:{plan}"), "usage-plan:Partners".to_string()),
    ]);
    let live: BTreeMap<String, serde_json::Value> = figures(&json(&live))
        .into_iter()
        .map(|(id, figures)| (names.get(&id).cloned().unwrap_or(id), figures))
        .collect();
    let template = figures(&json(&offline(&[
        "audit",
        "--template",
        EXPOSED,
        "--output",
        "json",
    ])));
    assert_eq!(live, template);
    assert_eq!(live.len(), 5, "{live:?}");
}

#[test]
fn the_ci_workflow_in_the_docs_is_the_example_file_and_runs_the_gate() {
    let workflow = std::fs::read_to_string(root().join("docs/examples/audit-template.yml")).unwrap();
    let page = std::fs::read_to_string(root().join("docs/audit-in-ci.md")).unwrap();
    assert!(
        page.contains(&format!("```yaml\n{workflow}```")),
        "docs/audit-in-ci.md shows docs/examples/audit-template.yml as it is"
    );
    let parsed: serde_norway::Value = serde_norway::from_str(&workflow).unwrap();
    let steps = parsed["jobs"]["audit"]["steps"].as_sequence().unwrap();
    let uses: Vec<&str> = steps.iter().filter_map(|s| s["uses"].as_str()).collect();
    assert_eq!(uses, ["actions/checkout@v4", "dtolnay/rust-toolchain@stable"]);
    let runs: String = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(runs.contains("cargo install --locked --git https://github.com/dowguard/dowguard"));
    assert!(runs.contains("dowguard audit --template template.yaml --fail-above '$50/h'"));
    assert!(parsed["on"]["pull_request"].is_mapping());
}
