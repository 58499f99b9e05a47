//! A small example account in the local AWS server, the guard wired to it with the
//! real adapters, and a flood written into its CloudWatch metrics. Used by the
//! whole-loop test and by `make demo`.

use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Utc};
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::stack::{AwsGuard, AwsStack, Pacing, StackConfig};
use dowguard_domain::{Budget, BudgetSpec, GuardSettings, PriceBook, Prices};
use dowguard_guard::ports::BudgetStore;

use crate::LocalAws;
use crate::fixtures::{FixtureResult, create_function, create_rest_api, create_usage_plan};

/// The guard's table in the example account.
pub const TABLE: &str = "dowguard";

/// The example account: `function:checkout` (reserved concurrency 50), REST API
/// `shop` with stage `prod`, and a usage plan over it, each with a day budget.
#[derive(Debug, Clone)]
pub struct ExampleAccount {
    /// The REST API's id.
    pub api: String,
    /// The usage plan's id.
    pub plan: String,
}

/// An enforced day budget of `amount` dollars on `scope`, owned by finance.
///
/// # Errors
///
/// The budget's parse error.
pub fn day_budget(id: &str, scope: &str, amount: &str) -> FixtureResult<Budget> {
    Ok(Budget::parse(BudgetSpec::day(
        id,
        scope,
        amount,
        "finance@example.com",
    ))?)
}

impl ExampleAccount {
    /// Creates the resources, the guard's table and the budgets.
    ///
    /// # Errors
    ///
    /// Any SDK or store error.
    pub async fn seed(aws: &LocalAws, now: DateTime<Utc>) -> FixtureResult<Self> {
        let config = aws.sdk_config();
        create_function(aws, "checkout").await?;
        aws_sdk_lambda::Client::new(&config)
            .put_function_concurrency()
            .function_name("checkout")
            .reserved_concurrent_executions(50)
            .send()
            .await?;
        let api = create_rest_api(aws, "shop", "prod").await?;
        let plan = create_usage_plan(aws, &api, "prod").await?;
        let dynamo = aws_sdk_dynamodb::Client::new(&config);
        create_table(&dynamo, TABLE).await?;
        let store = DynamoStore::new(dynamo, TABLE, chrono::Duration::days(90));
        for b in [
            day_budget("checkout-daily", "function:checkout", "240")?,
            day_budget("shop-daily", &format!("rest-stage:{api}/prod"), "50")?,
            day_budget("partners-daily", &format!("usage-plan:{plan}"), "50")?,
        ] {
            store.put_budget(&b, None, "finance", now).await?;
        }
        Ok(ExampleAccount { api, plan })
    }

    /// Writes `minutes` of flood into CloudWatch ending at `end`: about 100× each
    /// budget's pace for the function and the stage.
    ///
    /// # Errors
    ///
    /// Any CloudWatch error.
    pub async fn flood(&self, aws: &LocalAws, end: DateTime<Utc>, minutes: i64) -> FixtureResult<()> {
        put_minutes(
            aws,
            "AWS/Lambda",
            &[("FunctionName", "checkout")],
            &[("Invocations", 16_000_000.0), ("Duration", 1_600_000_000.0)],
            end,
            minutes,
        )
        .await?;
        put_minutes(
            aws,
            "AWS/ApiGateway",
            &[("ApiName", "shop"), ("Stage", "prod")],
            &[("Count", 1_000_000.0)],
            end,
            minutes,
        )
        .await
    }
}

/// Writes `minutes` one-minute datapoints of each of `metrics` (name, value a
/// minute) under `namespace` and `dims`, the last one the minute before `end`.
///
/// # Errors
///
/// Any CloudWatch error.
pub async fn put_minutes(
    aws: &LocalAws,
    namespace: &str,
    dims: &[(&str, &str)],
    metrics: &[(&str, f64)],
    end: DateTime<Utc>,
    minutes: i64,
) -> FixtureResult<()> {
    let points: Vec<(&str, DateTime<Utc>, f64)> = (1..=minutes)
        .flat_map(|m| {
            metrics
                .iter()
                .map(move |(name, value)| (*name, end - chrono::Duration::minutes(m), *value))
        })
        .collect();
    put_points(aws, namespace, dims, &points).await
}

/// Writes datapoints (metric name, time, value) under `namespace` and `dims`.
///
/// # Errors
///
/// Any CloudWatch error.
pub async fn put_points(
    aws: &LocalAws,
    namespace: &str,
    dims: &[(&str, &str)],
    points: &[(&str, DateTime<Utc>, f64)],
) -> FixtureResult<()> {
    // Lambda publishes each function's metrics twice: by `FunctionName`, and
    // across all functions without dimensions ("Working with Lambda function
    // metrics", Lambda Developer Guide). CloudWatch sums datapoints of the same
    // minute, so each function's points added there make the account's total.
    let across_all = namespace == "AWS/Lambda" && dims.iter().any(|(k, _)| *k == "FunctionName");
    let data: Vec<MetricDatum> = points
        .iter()
        .flat_map(|(name, at, value)| {
            let mut data = vec![datum(name, dims, *at, *value)];
            if across_all {
                data.push(datum(name, &[], *at, *value));
            }
            data
        })
        .collect();
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&aws.sdk_config());
    // PutMetricData takes up to 1,000 datapoints a call.
    for chunk in data.chunks(1_000) {
        cloudwatch
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(chunk.to_vec()))
            .send()
            .await?;
    }
    Ok(())
}

/// When the example's flood ends: the latest 03:00 UTC at least three hours before
/// `now`. What a flood does to a day budget depends on how much of the day is left
/// to pay for it; early in the day, the example function's level-3 allowance is
/// well below its reservation of 50, whatever the hour the tests or the demo run.
/// (Four hours before `now` would make the outcome depend on the hour of the run.)
/// The flood is then between 3 and 27 hours old, so the Lambda handlers must
/// accept events up to two days old (`DOWGUARD_MAX_EVENT_AGE_MINUTES=2880`).
pub fn attack_end_before(now: DateTime<Utc>) -> DateTime<Utc> {
    let three = now.date_naive().and_hms_opt(3, 0, 0).map_or(now, |t| t.and_utc());
    if three > now - chrono::Duration::hours(3) {
        three - chrono::Duration::days(1)
    } else {
        three
    }
}

fn datum(name: &str, dims: &[(&str, &str)], at: DateTime<Utc>, value: f64) -> MetricDatum {
    let mut d = MetricDatum::builder()
        .metric_name(name)
        .timestamp(AwsDateTime::from_secs(at.timestamp()))
        .value(value);
    for (k, v) in dims {
        d = d.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    d.build()
}

/// The guard's adapters, wired to the local server as a deployment wires them to AWS
/// (only the usage-plan pacing is shorter, so tests do not wait 20 s per plan).
#[derive(Debug)]
pub struct LocalGuard {
    /// Every adapter.
    pub stack: AwsStack,
    /// us-east-1 prices.
    pub prices: Prices,
    /// Default guard settings.
    pub settings: GuardSettings,
}

impl LocalGuard {
    /// Builds the adapters (and an SNS topic for notices).
    ///
    /// # Errors
    ///
    /// Any SDK or price-book error.
    pub async fn new(aws: &LocalAws) -> FixtureResult<Self> {
        Self::with_config(&aws.sdk_config()).await
    }

    /// The same, with every client built from `config` (e.g. pointed through a
    /// fault-injecting proxy).
    ///
    /// # Errors
    ///
    /// Any SDK or price-book error.
    pub async fn with_config(config: &aws_config::SdkConfig) -> FixtureResult<Self> {
        let topic = aws_sdk_sns::Client::new(config)
            .create_topic()
            .name("dowguard")
            .send()
            .await?;
        let mut stack = StackConfig::new(TABLE);
        stack.topic_arn = topic.topic_arn().map(str::to_string);
        stack.pacing = local_pacing();
        Ok(LocalGuard {
            stack: AwsStack::new(config, &stack),
            prices: PriceBook::bundled()?.prices("us-east-1", false)?,
            settings: GuardSettings::default(),
        })
    }

    /// Every target's live limits, read back through discovery.
    ///
    /// # Errors
    ///
    /// Any discovery error.
    pub async fn limits(
        &self,
    ) -> FixtureResult<std::collections::BTreeMap<dowguard_domain::TargetId, dowguard_domain::Limits>> {
        use dowguard_guard::ports::Discovery;
        Ok(self
            .stack
            .account
            .discover()
            .await?
            .into_iter()
            .map(|t| (t.id, t.limits))
            .collect())
    }

    /// Reconciles the whole inventory with the local server at `now`, as the
    /// inventory function does over a few invocations: what a pass then reads.
    ///
    /// # Errors
    ///
    /// The store's errors; what could not be read from the server.
    pub async fn reconcile(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> FixtureResult<dowguard_guard::inventory::InventoryReport> {
        let report = dowguard_guard::inventory::Keeper {
            ports: &self.stack,
            actor: "inventory",
        }
        .reconcile(now, dowguard_guard::inventory::Slices::All)
        .await?;
        if report.errors.is_empty() {
            Ok(report)
        } else {
            Err(format!(
                "the reconciliation could not read everything: {:?}",
                report.errors
            )
            .into())
        }
    }

    /// The guard over these adapters, acting as `actor`.
    pub fn guard<'a>(&'a self, actor: &'a str) -> AwsGuard<'a> {
        self.stack.guard(actor, &self.prices, &self.settings)
    }
}

/// AWS's pacing, but usage plans may change every 10 ms instead of every 20 s.
pub fn local_pacing() -> Pacing {
    Pacing {
        usage_plan_interval: Duration::from_millis(10),
        ..Pacing::default()
    }
}

/// The functions' configuration for a deployment over the local server: the
/// example account's table, enforce mode, events hours old accepted (the floods are
/// written in the past, as in the demo), no usage-plan pacing, a high pass cap;
/// `extra` variables set or replace these.
///
/// # Errors
///
/// The configuration's error for a bad variable.
pub fn local_config(
    extra: &[(&str, &str)],
) -> Result<dowguard_runtime::Config, dowguard_runtime::ConfigError> {
    let mut vars: std::collections::HashMap<&str, &str> = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", crate::ACCOUNT_ID),
        ("AWS_REGION", crate::REGION),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
        ("DOWGUARD_MAX_PASSES_PER_MINUTE", "1000"),
    ]
    .into();
    vars.extend(extra.iter().copied());
    dowguard_runtime::Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_string()))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Timelike, Utc};

    use super::attack_end_before;

    #[test]
    fn the_flood_ends_at_three_between_three_and_twenty_seven_hours_before_now() {
        let midnight = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .expect("a valid time");
        for minutes in (0..24 * 60).step_by(7) {
            let now = midnight + Duration::minutes(minutes);
            let end = attack_end_before(now);
            assert_eq!((end.hour(), end.minute()), (3, 0), "now {now}: {end}");
            let age = now - end;
            assert!(
                age >= Duration::hours(3) && age < Duration::hours(27),
                "now {now}: {end} is {age} old"
            );
        }
    }
}
