//! What every AWS-facing command shares: the global options, the SDK configuration
//! built from them the way the AWS CLI does (profile, region, endpoint, the standard
//! `AWS_*` variables), the guard's adapters, the clock and the caller's identity.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{DateTime, Utc};
use dowguard_adapters::stack::{Pacing, Role};
use dowguard_adapters::{AwsStack, StackConfig};
use dowguard_domain::{GuardSettings, PriceBook, Prices};

use crate::error::{CliError, CliResult};
use crate::output::Format;

/// The region used when neither `--region`, the environment nor the profile names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Options every AWS-facing command accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Use this named profile from the AWS config and credentials files.
    #[arg(long, global = true, env = "AWS_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS region (else AWS_REGION, else the profile's, else us-east-1).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Send every AWS call to this URL (e.g. a local AWS server); AWS_ENDPOINT_URL also works.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The guard's DynamoDB table.
    #[arg(
        long,
        global = true,
        env = "DOWGUARD_TABLE",
        default_value = "dowguard",
        value_name = "NAME"
    )]
    pub table_name: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Evaluate as of this time (RFC 3339) instead of now, e.g. to replay an incident.
    #[arg(long, global = true, env = "DOWGUARD_NOW", value_name = "TIME", value_parser = parse_time)]
    pub now: Option<DateTime<Utc>>,
    /// Many accounts and regions at once (`--accounts`, `--org`, `--regions`).
    #[command(flatten)]
    pub fan_out: crate::fanout::FanOutArgs,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 time like 2026-11-20T12:00:00Z ({e})"))
}

/// Who ran a command, for the audit trail, and where that came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    /// `cli:` and the caller's ARN or OS user name.
    pub actor: String,
    /// `sts` (GetCallerIdentity answered) or `os-user` (it did not).
    pub source: &'static str,
}

/// The shared context of one command.
#[derive(Debug)]
pub struct Context {
    /// The options.
    pub global: Global,
    /// The SDK configuration.
    pub sdk: SdkConfig,
    /// Every adapter.
    pub stack: AwsStack,
    /// The region's prices.
    pub prices: Prices,
    /// The guard's tunables (the deployed defaults).
    pub settings: GuardSettings,
}

impl Context {
    /// Loads the SDK configuration and builds the adapters.
    pub async fn new(global: Global) -> CliResult<Context> {
        let sdk = load_sdk(&global).await;
        Context::with_sdk(global, sdk)
    }

    /// Builds the adapters over a given SDK configuration (another account's
    /// credentials, another region: the fan-out's).
    pub fn with_sdk(global: Global, sdk: SdkConfig) -> CliResult<Context> {
        let region = sdk
            .region()
            .map_or(FALLBACK_REGION.to_string(), ToString::to_string);
        let prices = PriceBook::bundled()?.prices(&region, false).map_err(|e| {
            CliError::Invalid(format!(
                "--region {region}: the price book has no prices for it ({e})"
            ))
        })?;
        let mut config = StackConfig::new(global.table_name.clone());
        // A person's commands take the CLI's share of AWS's control-plane quotas,
        // beside the evaluator and the alarm responder.
        config.pacing = Pacing::for_role(Role::Cli);
        let stack = AwsStack::new(&sdk, &config);
        Ok(Context {
            global,
            sdk,
            stack,
            prices,
            settings: GuardSettings::default(),
        })
    }

    /// The time the command acts at.
    pub fn now(&self) -> DateTime<Utc> {
        self.global.now.unwrap_or_else(Utc::now)
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.global.output
    }

    /// Who is running the command: the STS caller ARN, or the OS user if STS fails.
    pub async fn caller(&self) -> Caller {
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        match sts.get_caller_identity().send().await {
            Ok(out) if out.arn().is_some() => Caller {
                actor: format!("cli:{}", out.arn().unwrap_or_default()),
                source: "sts",
            },
            _ => Caller {
                actor: format!("cli:{}", os_user()),
                source: "os-user",
            },
        }
    }
}

/// The SDK configuration the way the AWS CLI builds it: profile, region (else
/// [`FALLBACK_REGION`]), endpoint and the standard `AWS_*` variables.
pub async fn load_sdk(global: &Global) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &global.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &global.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &global.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        return sdk.into_builder().region(Region::new(FALLBACK_REGION)).build();
    }
    sdk
}

/// The operating-system user running the CLI.
fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown-user".to_string())
}
