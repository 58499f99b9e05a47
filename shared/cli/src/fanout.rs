//! Many accounts and regions at once: `--accounts FILE` or `--org`, with
//! `--regions`, run `status`, `audit`, `guard-cost` and `budgets list` in every
//! account and region in parallel through each account's read-only role, and
//! `budgets set` through its budget-admin role. One table with ACCOUNT and REGION
//! columns (or a JSON array), and one line for each account and region that could
//! not be read, with the reason, instead of failing the whole run.
//!
//! Each account's guard is deployed by the Organization's stack set
//! (`infra/org.yaml`) with two roles per region, `dowguard-read-only-REGION` and
//! `dowguard-budget-admin-REGION`, whose trust policies name the management (or
//! delegated administrator) account and require the external id
//! ("Access to AWS accounts owned by third parties", IAM User Guide). The CLI
//! calls `AssumeRole` ("AssumeRole", AWS STS API Reference) with the caller's
//! own credentials, once per account and region, and reads with the credentials
//! it returns: the read-only session is never used to write.

use std::io::IsTerminal;
use std::path::PathBuf;

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::audit::AuditArgs;
use crate::budgets::SetArgs;
use crate::context::{Context, Global, load_sdk};
use crate::error::{CliError, CliResult, exit};
use crate::guard_cost::GuardCostArgs;
use crate::output::{Format, Table, print_json, print_text};

/// The read-only role's name in each account; `{region}` becomes the region.
pub const READ_ONLY_ROLE: &str = "dowguard-read-only-{region}";
/// The budget-admin role's name in each account; `{region}` becomes the region.
pub const BUDGET_ADMIN_ROLE: &str = "dowguard-budget-admin-{region}";
/// The session name the CLI's assumed-role sessions carry (CloudTrail shows it).
pub const SESSION_NAME: &str = "dowguard-cli";
/// How many accounts and regions are read at once by default.
pub const DEFAULT_PARALLEL: usize = 8;

/// The fan-out's options (global: every command sees them).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FanOutArgs {
    /// Run in these accounts: a file with one 12-digit account id a line, optionally
    /// followed by a name (`111122223333 shop-prod`); `#` starts a comment.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "org")]
    pub accounts: Option<PathBuf>,
    /// Run in every active account of the Organization (ListAccounts), the
    /// management account excepted (the stack set does not deploy there).
    #[arg(long, global = true)]
    pub org: bool,
    /// With --accounts or --org: the regions to run in, comma-separated [default: --region's].
    #[arg(long, global = true, value_delimiter = ',', value_name = "REGION,...")]
    pub regions: Vec<String>,
    /// With --accounts or --org: the role read through; `{region}` becomes the region.
    #[arg(long, global = true, default_value = READ_ONLY_ROLE, value_name = "NAME")]
    pub role_name: String,
    /// With --accounts or --org: the role `budgets set` writes through.
    #[arg(long, global = true, default_value = BUDGET_ADMIN_ROLE, value_name = "NAME")]
    pub admin_role_name: String,
    /// The external id the roles' trust policies require (the stack set's ExternalId).
    #[arg(
        long,
        global = true,
        env = "DOWGUARD_EXTERNAL_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub external_id: Option<String>,
    /// With --accounts or --org: how many accounts and regions are read at once.
    #[arg(long, global = true, default_value_t = DEFAULT_PARALLEL, value_name = "N")]
    pub parallel: usize,
}

impl FanOutArgs {
    /// Whether the command runs across accounts.
    pub fn active(&self) -> bool {
        self.accounts.is_some() || self.org
    }
}

/// One account and region's result, for the fan-out's merged output.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The command's own JSON for this account and region.
    pub json: serde_json::Value,
    /// Its rows, after the ACCOUNT and REGION columns.
    pub rows: Vec<Vec<String>>,
    /// What scripts look for (throttled, above the bar): exit code 1.
    pub found: bool,
    /// What could not be read there, one line each.
    pub notes: Vec<String>,
}

/// `value` as JSON.
///
/// # Errors
///
/// [`CliError::Output`] if it cannot be serialised.
pub fn to_json<T: Serialize>(value: &T) -> CliResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| CliError::Output(e.to_string()))
}

/// An account to run in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Account {
    /// Its 12-digit id.
    pub id: String,
    /// Its name, if the file or the Organization gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Reads an accounts file: one account id a line, optionally followed by a name;
/// blank lines and `#` comments are skipped; a repeated id is kept once.
///
/// # Errors
///
/// The line number and what is wrong with it, or that the file lists no account.
pub fn parse_accounts(text: &str) -> Result<Vec<Account>, String> {
    let mut accounts: Vec<Account> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (id, name) = match line.split_once(char::is_whitespace) {
            Some((id, name)) => (id, Some(name.trim().to_string())),
            None => (line, None),
        };
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "line {}: `{id}` is not a 12-digit account id (write `111122223333 optional-name`)",
                n + 1
            ));
        }
        if accounts.iter().all(|a| a.id != id) {
            accounts.push(Account {
                id: id.to_string(),
                name: name.filter(|n| !n.is_empty()),
            });
        }
    }
    if accounts.is_empty() {
        return Err("it lists no account (one 12-digit id a line)".into());
    }
    Ok(accounts)
}

/// What runs in each account and region.
#[derive(Debug, Clone, Copy)]
pub enum Read<'a> {
    /// `status [TARGET]`.
    Status(Option<&'a str>),
    /// `audit`.
    Audit(&'a AuditArgs),
    /// `guard-cost`.
    GuardCost(&'a GuardCostArgs),
    /// `budgets list`.
    BudgetsList,
    /// `budgets set`: the only write, through the budget-admin role.
    BudgetsSet(&'a SetArgs),
}

impl Read<'_> {
    fn columns(self) -> &'static [&'static str] {
        match self {
            Read::Status(_) => crate::status::FAN_OUT_COLUMNS,
            Read::Audit(_) => crate::audit::FAN_OUT_COLUMNS,
            Read::GuardCost(_) => crate::guard_cost::FAN_OUT_COLUMNS,
            Read::BudgetsList => crate::budgets::FAN_OUT_COLUMNS,
            Read::BudgetsSet(_) => crate::budgets::SET_COLUMNS,
        }
    }

    /// The role this command assumes: the budget-admin role for the one write,
    /// the read-only role for everything else.
    fn role_name(self, args: &FanOutArgs, region: &str) -> String {
        let template = match self {
            Read::BudgetsSet(_) => &args.admin_role_name,
            _ => &args.role_name,
        };
        template.replace("{region}", region)
    }

    async fn collect(self, ctx: &Context) -> CliResult<Collected> {
        match self {
            Read::Status(filter) => crate::status::collect(ctx, filter).await,
            Read::Audit(args) => crate::audit::collect(ctx, args).await,
            Read::GuardCost(args) => crate::guard_cost::collect(ctx, args).await,
            Read::BudgetsList => crate::budgets::collect_list(ctx).await,
            Read::BudgetsSet(args) => crate::budgets::collect_set(ctx, args).await,
        }
    }
}

/// Why one account and region could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// `assume-role` (the role could not be assumed) or `command` (it was, and the
    /// command failed there).
    pub step: &'static str,
    /// The error's code, where AWS gave one (`AccessDenied`), else the CLI's exit code.
    pub code: String,
    /// What went wrong, naming the call and the resource.
    pub message: String,
    /// What to check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// One account and region's outcome, as `--output json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The account.
    pub account: String,
    /// Its name, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The region.
    pub region: String,
    /// The role assumed.
    pub role: String,
    /// The command's own JSON there, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it did not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// What could not be read there, though the command ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    rows: Vec<Vec<String>>,
    #[serde(skip)]
    found: bool,
}

/// The partition of a region, for role ARNs.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The accounts to run in, from the file or the Organization.
async fn accounts(global: &Global, base: &SdkConfig) -> CliResult<Vec<Account>> {
    if let Some(path) = &global.fan_out.accounts {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Invalid(format!("--accounts {}: {e}", path.display())))?;
        return parse_accounts(&text)
            .map_err(|e| CliError::Invalid(format!("--accounts {}: {e}", path.display())));
    }
    let org = aws_sdk_organizations::Client::new(base);
    let unreadable = |call: &str, e: &dyn std::fmt::Display| {
        CliError::Accounts(format!(
            "--org: organizations:{call} failed: {e}. Run it from the management account or a delegated administrator, or pass --accounts FILE"
        ))
    };
    let management = org
        .describe_organization()
        .send()
        .await
        .map_err(|e| unreadable("DescribeOrganization", &DisplayErrorContext(&e)))?
        .organization
        .and_then(|o| o.master_account_id);
    let mut pages = org.list_accounts().into_paginator().send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| unreadable("ListAccounts", &DisplayErrorContext(&e)))?;
        listed.extend(page.accounts.unwrap_or_default());
    }
    let mut found = Vec::new();
    for account in listed {
        let active = account.status() == Some(&aws_sdk_organizations::types::AccountStatus::Active);
        match account.id() {
            Some(id) if active && management.as_deref() != Some(id) => found.push(Account {
                id: id.to_string(),
                name: account.name().map(ToString::to_string),
            }),
            _ => {}
        }
    }
    if found.is_empty() {
        return Err(CliError::Accounts(
            "--org: the Organization has no active member account".into(),
        ));
    }
    Ok(found)
}

/// Credentials for `role_arn`, assumed with the caller's own.
async fn assume(base: &SdkConfig, role_arn: &str, external_id: Option<&str>) -> Result<Credentials, Failure> {
    let refused = |code: String, message: String| {
        Failure {
        step: "assume-role",
        code,
        message,
        hint: Some(
            "is the stack set deployed in this account and region with ManagementAccountId naming your account, and is --external-id (DOWGUARD_EXTERNAL_ID) its ExternalId?"
                .into(),
        ),
    }
    };
    let out = aws_sdk_sts::Client::new(base)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(SESSION_NAME)
        .set_external_id(external_id.map(ToString::to_string))
        .send()
        .await
        .map_err(|e| {
            let code = e.code().unwrap_or("Unavailable").to_string();
            let why = e
                .message()
                .map_or_else(|| DisplayErrorContext(&e).to_string(), ToString::to_string);
            refused(code.clone(), format!("sts:AssumeRole {role_arn}: {code}: {why}"))
        })?;
    let c = out.credentials.ok_or_else(|| {
        refused(
            "NoCredentials".into(),
            format!("sts:AssumeRole {role_arn}: the answer carried no credentials"),
        )
    })?;
    let expiry = std::time::SystemTime::try_from(c.expiration).ok();
    Ok(Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expiry,
        "dowguard-assumed-role",
    ))
}

/// Runs `read` in one account and region.
async fn one(global: &Global, base: &SdkConfig, read: Read<'_>, account: &Account, region: &str) -> Outcome {
    let role = format!(
        "arn:{}:iam::{}:role/{}",
        partition(region),
        account.id,
        read.role_name(&global.fan_out, region)
    );
    let mut outcome = Outcome {
        account: account.id.clone(),
        name: account.name.clone(),
        region: region.to_string(),
        role: role.clone(),
        result: None,
        error: None,
        notes: Vec::new(),
        rows: Vec::new(),
        found: false,
    };
    let credentials = match assume(base, &role, global.fan_out.external_id.as_deref()).await {
        Ok(c) => c,
        Err(failure) => {
            outcome.error = Some(failure);
            return outcome;
        }
    };
    let sdk = base
        .clone()
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .region(Region::new(region.to_string()))
        .build();
    // The commands print nothing here (and draw no progress of their own).
    let mut own = global.clone();
    own.output = Format::Json;
    let collected = match Context::with_sdk(own, sdk) {
        Ok(ctx) => read.collect(&ctx).await,
        Err(e) => Err(e),
    };
    match collected {
        Ok(c) => {
            outcome.result = Some(c.json);
            outcome.rows = c.rows;
            outcome.found = c.found;
            outcome.notes = c.notes;
        }
        Err(e) => {
            outcome.error = Some(Failure {
                step: "command",
                code: e.exit_code().to_string(),
                message: e.to_string(),
                hint: e.hint(),
            });
        }
    }
    outcome
}

/// Runs `read` in every account and region; returns the exit code: 6 when any
/// account or region could not be read (the others are printed), else 1 when any
/// found what the command looks for (throttled, above the bar), else 0.
///
/// # Errors
///
/// The accounts cannot be listed (file, Organization), or the output cannot be written.
pub async fn run(global: &Global, read: Read<'_>) -> CliResult<u8> {
    let base = load_sdk(global).await;
    let accounts = accounts(global, &base).await?;
    let regions: Vec<String> = if global.fan_out.regions.is_empty() {
        vec![base.region().map_or_else(
            || crate::context::FALLBACK_REGION.to_string(),
            ToString::to_string,
        )]
    } else {
        global
            .fan_out
            .regions
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect()
    };
    let pairs: Vec<(&Account, &str)> = accounts
        .iter()
        .flat_map(|a| regions.iter().map(move |r| (a, r.as_str())))
        .collect();
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(pairs.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} accounts and regions [{bar:30}] {msg}")
            .map_err(|e| CliError::Output(e.to_string()))?
            .progress_chars("=> "),
    );
    let base = &base;
    let progress_ref = &progress;
    let mut outcomes: Vec<Outcome> = futures_util::stream::iter(pairs)
        .map(|(account, region)| async move {
            let outcome = one(global, base, read, account, region).await;
            progress_ref.set_message(format!("{} {}", account.id, region));
            progress_ref.inc(1);
            outcome
        })
        .buffer_unordered(global.fan_out.parallel.max(1))
        .collect()
        .await;
    progress.finish_and_clear();
    // By name where the accounts have names (what people know them by), then id, then region.
    outcomes.sort_by(|a, b| (&a.name, &a.account, &a.region).cmp(&(&b.name, &b.account, &b.region)));
    match global.output {
        Format::Json => print_json(&outcomes)?,
        Format::Table => print_text(&render(&outcomes, read.columns()))?,
    }
    let failed = outcomes.iter().any(|o| o.error.is_some());
    Ok(if failed {
        exit::PARTIAL
    } else if outcomes.iter().any(|o| o.found) {
        exit::FOUND
    } else {
        exit::OK
    })
}

/// The merged table, then a line per note and per account and region not read.
fn render(outcomes: &[Outcome], columns: &[&str]) -> String {
    let named = outcomes.iter().any(|o| o.name.is_some());
    let mut headers = vec!["ACCOUNT"];
    if named {
        headers.push("NAME");
    }
    headers.push("REGION");
    headers.extend_from_slice(columns);
    let mut table = Table::new(&headers);
    let who = |o: &Outcome| match &o.name {
        Some(name) => format!("{} ({name}) {}", o.account, o.region),
        None => format!("{} {}", o.account, o.region),
    };
    for o in outcomes.iter().filter(|o| o.error.is_none()) {
        for row in &o.rows {
            let mut cells = vec![o.account.clone()];
            if named {
                cells.push(o.name.clone().unwrap_or_else(|| "-".into()));
            }
            cells.push(o.region.clone());
            cells.extend(row.iter().cloned());
            table.row(cells);
        }
    }
    let mut out = table.render();
    let notes: Vec<String> = outcomes
        .iter()
        .flat_map(|o| o.notes.iter().map(move |n| format!("  {}: {n}\n", who(o))))
        .collect();
    if !notes.is_empty() {
        out.push_str("\ncould not read everything:\n");
        out.extend(notes);
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_some()).collect();
    if !failed.is_empty() {
        out.push_str(&format!(
            "\nfailed in {} of {} accounts and regions:\n",
            failed.len(),
            outcomes.len()
        ));
        for o in &failed {
            if let Some(e) = &o.error {
                out.push_str(&format!("  {}: {}\n", who(o), e.message));
                if let Some(hint) = &e.hint {
                    out.push_str(&format!("    hint: {hint}\n"));
                }
            }
        }
        out.push_str("exit code 6: the others are above\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accounts_file_gives_ids_and_optional_names_once_each() {
        let text = "# shop\n111122223333 shop-prod\n\n444455556666   # no name\n111122223333 again\n";
        assert_eq!(
            parse_accounts(text),
            Ok(vec![
                Account {
                    id: "111122223333".into(),
                    name: Some("shop-prod".into())
                },
                Account {
                    id: "444455556666".into(),
                    name: None
                },
            ])
        );
    }

    #[test]
    fn an_accounts_file_with_a_bad_id_or_no_account_is_refused_with_its_line() {
        let bad = parse_accounts("111122223333\n12345 short\n");
        assert!(
            bad.as_ref().is_err_and(|e| e.starts_with("line 2: `12345`")),
            "{bad:?}"
        );
        assert!(parse_accounts("# nothing\n\n").is_err());
    }

    #[test]
    fn reads_assume_the_read_only_role_of_their_region() {
        let args = FanOutArgs {
            role_name: READ_ONLY_ROLE.into(),
            admin_role_name: BUDGET_ADMIN_ROLE.into(),
            ..FanOutArgs::default()
        };
        assert_eq!(
            Read::BudgetsList.role_name(&args, "eu-west-1"),
            "dowguard-read-only-eu-west-1"
        );
        assert_eq!(
            Read::Status(None).role_name(&args, "us-east-1"),
            "dowguard-read-only-us-east-1"
        );
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("eu-west-1"), "aws");
    }
}
