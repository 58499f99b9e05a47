//! Everything a function builds once at start: the configuration, the SDK clients
//! and adapters ([`AwsStack`]), the alarms, the region's prices and the guard's
//! settings; and the JSON summary a pass returns to its invoker.

use std::collections::HashSet;

use aws_config::{BehaviorVersion, SdkConfig};
use dowguard_adapters::alarms::{AlarmSyncReport, CloudWatchAlarms};
use dowguard_adapters::stack::{AwsGuard, AwsStack, Interceptors, Pacing, Role, StackConfig};
use dowguard_domain::{GuardSettings, Mode, PriceBook, PriceBookError, Prices, TargetId};
use dowguard_guard::PassReport;
use dowguard_guard::evaluate::PassOptions;
use serde_json::{Value, json};

use crate::config::{Config, ConfigError};
use crate::event::Expected;
use crate::limit::PassLimiter;

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A variable is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The bundled price book has no prices for the region.
    #[error(transparent)]
    Prices(#[from] PriceBookError),
}

/// A function's long-lived parts.
#[derive(Debug)]
pub struct App {
    /// The configuration.
    pub config: Config,
    /// Every adapter.
    pub stack: AwsStack,
    /// dowguard's alarms.
    pub alarms: CloudWatchAlarms,
    /// The region's prices.
    pub prices: Prices,
    /// The guard's tunables.
    pub settings: GuardSettings,
    /// The alarm responder's rate limit.
    pub limiter: PassLimiter,
}

impl App {
    /// Builds everything from `config` and one SDK configuration, for the function
    /// `role` (which sets its share of AWS's control-plane quotas).
    ///
    /// # Errors
    ///
    /// [`AppError::Prices`] when the price book lacks the region.
    pub fn new(config: Config, sdk: &SdkConfig, role: Role) -> Result<Self, AppError> {
        Self::with_interceptors(config, sdk, role, Interceptors::default())
    }

    /// The same, with `interceptors` on every SDK client (the guard's and the
    /// alarms'): the tests record every AWS call a function makes this way.
    ///
    /// # Errors
    ///
    /// [`AppError::Prices`] when the price book lacks the region.
    pub fn with_interceptors(
        config: Config,
        sdk: &SdkConfig,
        role: Role,
        interceptors: Interceptors,
    ) -> Result<Self, AppError> {
        // The free tier is never counted: `DOWGUARD_FREE_TIER=true` is refused
        // (config::FREE_TIER_REFUSAL says why).
        let prices = PriceBook::bundled()?.prices(&config.region, false)?;
        let mut stack = StackConfig::new(config.table.clone());
        stack.topic_arn.clone_from(&config.topic_arn);
        stack.audit_retention = config.audit_retention;
        stack.pacing = Pacing::for_role(role);
        stack.pacing.usage_plan_interval = config.usage_plan_interval;
        stack.interceptors = interceptors;
        Ok(App {
            stack: AwsStack::new(sdk, &stack),
            alarms: CloudWatchAlarms::new(stack.interceptors.cloudwatch(sdk), config.alarm_prefix.clone()),
            prices,
            settings: GuardSettings::default(),
            limiter: PassLimiter::default(),
            config,
        })
    }

    /// Reads the environment and the SDK's default configuration chain.
    ///
    /// # Errors
    ///
    /// [`AppError`] naming the variable or the region at fault.
    pub async fn from_env(role: Role) -> Result<Self, AppError> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self::new(config, &sdk, role)
    }

    /// What incoming events must match.
    pub fn expected(&self) -> Expected<'_> {
        Expected {
            account: &self.config.account_id,
            region: &self.config.region,
            alarm_prefix: &self.config.alarm_prefix,
            schedule_rule: self.config.schedule_rule_arn.as_deref(),
            alarm_topics: &self.config.alarm_topic_arns,
        }
    }

    /// The guard, acting as `actor`.
    pub fn guard<'a>(&'a self, actor: &'a str) -> AwsGuard<'a> {
        self.stack.guard(actor, &self.prices, &self.settings)
    }

    /// Pass options: the deployment's mode, and the targets to evaluate.
    pub fn options(&self, only: Option<HashSet<TargetId>>) -> PassOptions {
        PassOptions {
            only,
            dry_run_only: self.config.mode == Mode::DryRun,
        }
    }
}

/// The JSON a pass returns to its invoker: what the guard saw, decided and did.
pub fn summary(report: &PassReport) -> Value {
    let budgets: Vec<Value> = report
        .reports()
        .iter()
        .map(|r| {
            json!({
                "budget": r.budget.as_str(),
                "spent": r.spent.display_dp(2),
                "amount": r.amount.display_dp(2),
                "projected": r.projected.display_dp(2),
                "burn_short": r.burn_short.to_string(),
                "level": format!("{:?}", r.level),
                "rule": r.rule,
            })
        })
        .collect();
    let actions: Vec<Value> = report
        .results()
        .map(|(a, o)| {
            json!({
                "target": a.target.to_string(),
                "intent": a.intent,
                "change": a.change,
                "permission": a.permission(),
                "outcome": o,
            })
        })
        .collect();
    json!({
        "pass_at": report.now.to_rfc3339(),
        "targets": report.targets,
        "budgets": budgets,
        "actions": actions,
        "metrics_requested": report.metrics_requested,
        "gaps": report.gaps.lines(),
    })
}

/// The JSON of an alarm sync.
pub fn alarm_summary(report: &AlarmSyncReport) -> Value {
    json!({ "put": report.put, "deleted": report.deleted, "unchanged": report.unchanged })
}
