//! The real `dowguard` binary when part of the account cannot be read, as a new user
//! meets it against an emulator without HTTP APIs, or on AWS when a service control
//! policy denies one service or a service is partly down: `status` and `audit` report
//! what they could not read, one line each, and show everything else. And REST APIs
//! whose CloudWatch series cannot be told apart are reported, never read as $0.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::process::Output;

use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, TABLE};
use dowguard_tests::fixtures::create_rest_api;
use support::{now, run, stdout};

/// Runs `dowguard ARGS` with every service at the local server but those in
/// `elsewhere`, which point at a loopback port where nothing listens (the SDK's
/// per-service endpoint variables, `AWS_ENDPOINT_URL_<SERVICE>`).
fn dowguard(aws: &LocalAws, args: &[&str], elsewhere: &[&str]) -> Output {
    let mut command = support::command(1);
    command
        .args(["--table-name", TABLE])
        .env("AWS_ENDPOINT_URL", aws.endpoint());
    for service in elsewhere {
        command.env(format!("AWS_ENDPOINT_URL_{service}"), "http://127.0.0.1:9");
    }
    run(command, args)
}

#[tokio::test]
async fn status_and_audit_report_a_service_they_cannot_read_and_show_the_rest() {
    let aws = LocalAws::start().await.unwrap();
    let example = ExampleAccount::seed(&aws, now()).await.unwrap();
    let status = dowguard(&aws, &["status"], &["APIGATEWAYV2"]);
    assert_eq!(status.status.code(), Some(0), "status still answers");
    let out = stdout(&status);
    assert!(out.contains("budget checkout-daily"), "{out}");
    assert!(out.contains(&format!("rest-stage:{}/prod", example.api)), "{out}");
    assert!(
        out.contains("could not read everything") && out.contains("HTTP API stages could not be listed"),
        "{out}"
    );
    let audit = dowguard(&aws, &["audit"], &["APIGATEWAYV2"]);
    assert_eq!(audit.status.code(), Some(0), "audit still answers");
    let out = stdout(&audit);
    assert!(
        out.contains("function:checkout") && out.contains("rest-stage:"),
        "{out}"
    );
    assert!(
        out.contains("Could not read") && out.contains("HTTP API stages could not be listed"),
        "{out}"
    );
    let json = dowguard(&aws, &["status", "--output", "json"], &["APIGATEWAYV2"]);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert!(
        view["gaps"].as_array().is_some_and(|g| g
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("HTTP API")))),
        "{view}"
    );
}

#[tokio::test]
async fn rest_apis_that_share_a_name_are_reported_not_read_as_no_spend() {
    let aws = LocalAws::start().await.unwrap();
    let example = ExampleAccount::seed(&aws, now()).await.unwrap();
    // A second REST API named like the example's: CloudWatch keys REST API metrics
    // by ApiName, so the two share one series.
    let twin = create_rest_api(&aws, "shop", "prod").await.unwrap();
    let status = dowguard(&aws, &["status"], &[]);
    let out = stdout(&status);
    assert!(
        out.contains(&format!(
            "rest-stage:{}/prod: REST API {}",
            example.api, example.api
        )) && out.contains(&format!("shares its CloudWatch ApiName \"shop\" with {twin}")),
        "{out}"
    );
    assert!(
        out.contains("figures may be incomplete, so its targets are held"),
        "{out}"
    );
}
