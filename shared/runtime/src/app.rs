//! Everything a function builds once at start: the configuration, the ports it acts
//! through (the SDK clients and adapters of an [`AwsStack`] in Lambda; in-memory
//! ports in the handlers' unit tests), the region's prices and the guard's
//! settings; and the JSON summary a pass returns to its invoker.

use std::collections::HashSet;

use aws_config::{BehaviorVersion, SdkConfig};
use dowguard_adapters::stack::{AwsStack, Interceptors, Pacing, Role, StackConfig};
use dowguard_domain::{GuardSettings, Mode, PriceBook, PriceBookError, Prices, TargetId};
use dowguard_guard::alarms::AlarmSyncReport;
use dowguard_guard::evaluate::PassOptions;
use dowguard_guard::ports::Deployment;
use dowguard_guard::{Guard, PassReport};
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

/// A function's long-lived parts, over the ports `D` it acts through.
#[derive(Debug)]
pub struct App<D = AwsStack> {
    /// The configuration.
    pub config: Config,
    /// Every port: the table, the account, notices, leases, alarms.
    pub stack: D,
    /// The region's prices.
    pub prices: Prices,
    /// The guard's tunables.
    pub settings: GuardSettings,
    /// The alarm responder's rate limit.
    pub limiter: PassLimiter,
}

impl App<AwsStack> {
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
        stack.notices_per_hour = Some(config.notices_per_hour);
        stack.audit_retention = config.audit_retention;
        stack.pacing = Pacing::for_role(role);
        stack.pacing.usage_plan_interval = config.usage_plan_interval;
        stack.interceptors = interceptors;
        stack.alarm_prefix.clone_from(&config.alarm_prefix);
        stack.caller_ranking = config.caller_ranking;
        stack.quarantine_plan.clone_from(&config.quarantine_plan);
        Ok(App {
            stack: AwsStack::new(sdk, &stack),
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
}

impl<D: Deployment> App<D> {
    /// A function over `stack` (in-memory ports in the handlers' unit tests), with
    /// the region's bundled prices and the default settings.
    ///
    /// # Errors
    ///
    /// [`AppError::Prices`] when the price book lacks the region.
    pub fn over(config: Config, stack: D) -> Result<Self, AppError> {
        let prices = PriceBook::bundled()?.prices(&config.region, false)?;
        Ok(App {
            stack,
            prices,
            settings: GuardSettings::default(),
            limiter: PassLimiter::default(),
            config,
        })
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
    pub fn guard<'a>(&'a self, actor: &'a str) -> Guard<'a, D> {
        Guard {
            ports: &self.stack,
            prices: &self.prices,
            settings: &self.settings,
            actor,
        }
    }

    /// Pass options: the deployment's mode, and the targets to evaluate.
    pub fn options(&self, only: Option<HashSet<TargetId>>) -> PassOptions {
        PassOptions {
            only,
            dry_run_only: self.config.mode == Mode::DryRun,
            as_of: None,
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
        // Budgets whose functions were measured because the account's aggregate
        // could not rule them out.
        "tripwire": report.tripwire.iter().map(|t| json!({
            "budget": t.budget.as_ref().map(ToString::to_string),
            "bound": t.bound.to_string(),
        })).collect::<Vec<_>>(),
        "gaps": report.gaps.lines(),
    })
}

/// The JSON of a sync of the callers' ranking rules.
pub fn ranking_summary(report: &dowguard_guard::ports::RankingRules) -> Value {
    json!({
        "kept": report.kept,
        "written": report.written,
        "deleted": report.deleted,
        "unrankable": report.unrankable.iter().map(|(stage, why)| json!({
            "stage": stage.to_string(),
            "why": why,
        })).collect::<Vec<_>>(),
    })
}

/// The JSON of an alarm sync.
pub fn alarm_summary(report: &AlarmSyncReport) -> Value {
    json!({ "put": report.put, "deleted": report.deleted, "unchanged": report.unchanged })
}
