//! The real `dowguard` binary across an Organization in the local AWS server: a
//! management account (moto's default, 123456789012) with four member accounts
//! (moto keeps accounts apart by the account of the credentials, and `AssumeRole`
//! into another account's role gives that account's credentials). Three members
//! carry the guard's table and the read-only and budget-admin roles as the stack
//! set deploys them; the fourth has neither. The harness refuses `AssumeRole` into
//! a role that does not exist or with the wrong external id, as AWS does
//! (docs/testing.md, patch i).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use std::collections::BTreeSet;
use std::process::Output;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::permissions::{CLI_BUDGET_ADMIN, CLI_READ_ONLY};
use dowguard_guard::ports::BudgetStore;
use dowguard_tests::LocalAws;
use dowguard_tests::account::{TABLE, day_budget};
use dowguard_tests::proxy::Proxy;
use support::{code, json, now, run, stderr, stdout};

/// The external id the stack set gives the roles.
const EXTERNAL_ID: &str = "shop-org-7f3a";
const REGION: &str = "us-east-1";

/// The Organization: member ids by name, the first three with the guard.
struct Org {
    members: Vec<(String, String)>,
}

impl Org {
    fn id(&self, name: &str) -> &str {
        &self.members.iter().find(|(n, _)| n == name).expect("a member").1
    }
}

/// A role trusting the management account with the external id, as
/// infra/template.yaml's `ReadOnlyRole` and `BudgetAdminRole` do.
fn trust_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
        }]
    })
    .to_string()
}

/// The SDK configuration of `account`, through the role Organizations created there.
async fn member_config(management: &SdkConfig, account: &str) -> SdkConfig {
    let out = aws_sdk_sts::Client::new(management)
        .assume_role()
        .role_arn(format!(
            "arn:aws:iam::{account}:role/OrganizationAccountAccessRole"
        ))
        .role_session_name("setup")
        .send()
        .await
        .unwrap();
    let c = out.credentials.unwrap();
    let credentials = Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        None,
        "setup",
    );
    management
        .clone()
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

/// Creates the Organization; in the first three members the guard's table, a
/// budget each and the two roles.
async fn organization(aws: &LocalAws) -> Org {
    let management = aws.sdk_config();
    let org = aws_sdk_organizations::Client::new(&management);
    org.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for (i, name) in ["shop-prod", "shop-dev", "data", "legacy"]
        .into_iter()
        .enumerate()
    {
        let status = org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap()
            .create_account_status
            .unwrap();
        let id = status.account_id.unwrap();
        if i < 3 {
            let member = member_config(&management, &id).await;
            let iam = aws_sdk_iam::Client::new(&member);
            for role in ["dowguard-read-only-us-east-1", "dowguard-budget-admin-us-east-1"] {
                iam.create_role()
                    .role_name(role)
                    .assume_role_policy_document(trust_policy())
                    .send()
                    .await
                    .unwrap();
            }
            let dynamo = aws_sdk_dynamodb::Client::new(&member);
            create_table(&dynamo, TABLE).await.unwrap();
            let store = DynamoStore::new(dynamo, TABLE, chrono::Duration::days(90));
            let amount = ["240", "40", "120"][i];
            store
                .put_budget(
                    &day_budget(&format!("{name}-daily"), "account", amount).unwrap(),
                    None,
                    "finance",
                    now(),
                )
                .await
                .unwrap();
        }
        members.push((name.to_string(), id));
    }
    Org { members }
}

/// `dowguard ARGS` against `endpoint` as the management account.
fn dowguard(endpoint: &str, args: &[&str]) -> Output {
    let mut command = support::command(2);
    command.args(["--endpoint-url", endpoint]);
    run(command, args)
}

/// Snapshots with moto's random account ids replaced, in the order the accounts
/// were created, by 111111111111, 222222222222, ... (the same width: the columns stay).
fn redacted(org: &Org) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (i, (_, id)) in org.members.iter().enumerate() {
        let digit = char::from(b'1' + u8::try_from(i).unwrap());
        settings.add_filter(id, std::iter::repeat_n(digit, 12).collect::<String>());
    }
    settings
}

#[tokio::test]
async fn the_fan_out_reads_every_member_and_reports_the_one_without_the_role_in_one_line() {
    let aws = LocalAws::start().await.unwrap();
    let org = organization(&aws).await;

    let list = dowguard(
        aws.endpoint(),
        &["budgets", "list", "--org", "--external-id", EXTERNAL_ID],
    );
    // Partial: three read, one not, and the run still prints what it read.
    assert_eq!(code(&list), 6, "{}", stderr(&list));
    redacted(&org).bind(|| insta::assert_snapshot!("org_budgets_list", stdout(&list)));
    let out = stdout(&list);
    for name in ["shop-prod", "shop-dev", "data"] {
        assert!(out.contains(&format!("{name}-daily")), "{out}");
    }
    let legacy: Vec<&str> = out.lines().filter(|l| l.contains(org.id("legacy"))).collect();
    assert_eq!(
        legacy.len(),
        1,
        "one line for the account without the role: {out}"
    );
    assert!(legacy[0].contains("AccessDenied"), "{out}");

    let status = dowguard(aws.endpoint(), &["status", "--org", "--external-id", EXTERNAL_ID]);
    assert_eq!(code(&status), 6, "{}", stderr(&status));
    redacted(&org).bind(|| insta::assert_snapshot!("org_status", stdout(&status)));

    // JSON: one object per account and region, the failure as an object.
    let listed = json(&dowguard(
        aws.endpoint(),
        &[
            "budgets",
            "list",
            "--org",
            "--external-id",
            EXTERNAL_ID,
            "--output",
            "json",
        ],
    ));
    let items = listed.as_array().unwrap();
    assert_eq!(items.len(), 4);
    let failed: Vec<_> = items.iter().filter(|i| i.get("error").is_some()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["account"], org.id("legacy"));
    assert_eq!(failed[0]["error"]["step"], "assume-role");
    assert_eq!(failed[0]["error"]["code"], "AccessDenied");
    let prod = items.iter().find(|i| i["name"] == "shop-prod").unwrap();
    assert_eq!(prod["region"], REGION);
    assert_eq!(prod["result"][0]["id"], "shop-prod-daily");
    assert_eq!(prod["result"][0]["amount"], "240");

    // Every account read: exit 0. The wrong external id is refused like no role.
    let file = std::env::temp_dir().join(format!("dowguard-accounts-{}", std::process::id()));
    std::fs::write(
        &file,
        format!(
            "# the members with the guard\n{} shop-prod\n{} shop-dev\n{}\n",
            org.id("shop-prod"),
            org.id("shop-dev"),
            org.id("data")
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let cost = dowguard(
        aws.endpoint(),
        &["guard-cost", "--accounts", path, "--external-id", EXTERNAL_ID],
    );
    assert_eq!(code(&cost), 0, "{}", stderr(&cost));
    assert_eq!(stdout(&cost).lines().count(), 4, "{}", stdout(&cost));
    let audit = dowguard(
        aws.endpoint(),
        &["audit", "--accounts", path, "--external-id", EXTERNAL_ID],
    );
    assert_eq!(code(&audit), 0, "{}", stderr(&audit));
    let wrong = dowguard(
        aws.endpoint(),
        &["budgets", "list", "--accounts", path, "--external-id", "guess"],
    );
    assert_eq!(code(&wrong), 6);
    assert_eq!(
        stdout(&wrong)
            .lines()
            .filter(|l| l.contains("AccessDenied"))
            .count(),
        3,
        "{}",
        stdout(&wrong)
    );
    std::fs::remove_file(&file).ok();
}

/// The IAM actions the proxy saw, read-only sessions and setup apart: every
/// request of the member accounts' services, by `api:Operation`.
fn member_actions(proxy: &Proxy) -> BTreeSet<String> {
    proxy
        .requests()
        .iter()
        .filter_map(|r| {
            let op = &r.operation;
            match op.api.as_str() {
                "apigateway" | "apigatewayv2" if r.method == "GET" => Some("apigateway:GET".to_string()),
                "apigateway" | "apigatewayv2" => Some(format!("apigateway:{}", r.method)),
                "lambda" | "dynamodb" | "cloudwatch" => Some(format!("{}:{}", op.api, op.name)),
                _ => None,
            }
        })
        .collect()
}

// The binary runs as a blocking child process while the proxy serves on this
// runtime: it needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reads_never_write_and_budgets_are_written_only_through_the_budget_admin_role() {
    let aws = LocalAws::start().await.unwrap();
    let org = organization(&aws).await;
    let proxy = Proxy::start(aws.endpoint()).await.unwrap();
    let file = std::env::temp_dir().join(format!("dowguard-admin-{}", std::process::id()));
    std::fs::write(&file, format!("{}\n{}\n", org.id("shop-prod"), org.id("data"))).unwrap();
    let path = file.to_str().unwrap();

    // The four reads, in two members: every call is one the read-only role allows.
    proxy.clear();
    for args in [
        &["status"][..],
        &["audit"][..],
        &["guard-cost"][..],
        &["budgets", "list"][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--accounts", path, "--external-id", EXTERNAL_ID]);
        let out = dowguard(proxy.endpoint(), &all);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let read = member_actions(&proxy);
    let allowed: BTreeSet<String> = CLI_READ_ONLY.iter().map(ToString::to_string).collect();
    assert!(
        read.is_subset(&allowed),
        "calls beyond the read-only role: {:?}",
        read.difference(&allowed)
    );
    assert!(read.contains("dynamodb:Query"), "{read:?}");

    // The one write goes through the budget-admin role, never the read-only one.
    proxy.clear();
    let set = dowguard(
        proxy.endpoint(),
        &[
            "budgets",
            "set",
            "shop-prod-daily",
            "--amount",
            "300",
            "--accounts",
            path,
            "--external-id",
            EXTERNAL_ID,
        ],
    );
    // shop-prod has the budget; data does not, and a new budget needs a scope.
    assert_eq!(code(&set), 6, "{}", stderr(&set));
    redacted(&org).bind(|| insta::assert_snapshot!("org_budgets_set", stdout(&set)));
    let written = member_actions(&proxy);
    let admin: BTreeSet<String> = CLI_BUDGET_ADMIN
        .iter()
        .map(ToString::to_string)
        .chain(["dynamodb:TransactWriteItems".to_string()])
        .collect();
    assert!(written.is_subset(&admin), "{written:?}");
    let member = member_config(&aws.sdk_config(), org.id("shop-prod")).await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&member),
        TABLE,
        chrono::Duration::days(90),
    );
    let id = dowguard_domain::BudgetId::parse("shop-prod-daily").unwrap();
    let history = store.budget_history(&id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        last.actor,
        format!(
            "cli:arn:aws:sts::{}:assumed-role/dowguard-budget-admin-us-east-1/dowguard-cli",
            org.id("shop-prod")
        )
    );
    std::fs::remove_file(&file).ok();
}

#[test]
fn regions_without_accounts_and_commands_that_act_on_one_account_are_refused() {
    let regions = run(
        support::command(1),
        &["status", "--regions", "us-east-1,eu-west-1"],
    );
    assert_eq!(code(&regions), 2, "{}", stderr(&regions));
    assert!(
        stderr(&regions).contains("--accounts FILE or --org"),
        "{}",
        stderr(&regions)
    );
    let release = run(support::command(1), &["release", "function:checkout", "--org"]);
    assert_eq!(code(&release), 2, "{}", stderr(&release));
    assert!(
        stderr(&release).contains("budgets list and budgets set"),
        "{}",
        stderr(&release)
    );
    let file = std::env::temp_dir().join(format!("dowguard-bad-accounts-{}", std::process::id()));
    std::fs::write(&file, "111122223333 shop\n12345\n").unwrap();
    let bad = run(
        support::command(1),
        &["budgets", "list", "--accounts", file.to_str().unwrap()],
    );
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("line 2: `12345` is not a 12-digit account id"),
        "{}",
        stderr(&bad)
    );
    std::fs::remove_file(&file).ok();
}
