//! Amazon CloudWatch alarms: the one alarm per guarded target that lets the alarm
//! responder act within a minute of a surge. `DescribeAlarms` lists the alarms
//! under dowguard's name prefix, `PutMetricAlarm` creates or updates one,
//! `DeleteAlarms` removes those whose targets no budget covers any more. What to
//! change is decided by [`dowguard_domain::plan_alarms`] and applied by
//! `dowguard_guard::alarms::sync_alarms` through the [`Alarms`] port this module
//! implements.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{AlarmType, ComparisonOperator, Dimension, Statistic};
use dowguard_domain::{ALARM_RULE, DesiredAlarm, ExistingAlarm, Target};
use dowguard_guard::PortResult;
use dowguard_guard::ports::Alarms;

use crate::apigateway::RestCatalog;
use crate::cloudwatch::{Field, MetricKey, metrics_of};
use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// Most alarm names `DeleteAlarms` takes in one call.
pub const MAX_DELETE_PER_CALL: usize = 100;

/// The alarm period: one minute, the resolution of the metrics it watches
/// ([`ALARM_RULE`]).
pub const ALARM_PERIOD_SECONDS: i32 = ALARM_RULE.period_seconds;

/// The least time between two alarm writes (`PutMetricAlarm`, `DeleteAlarms`):
/// CloudWatch allows 3 of each a second per account and Region ("CloudWatch service
/// quotas", rate of PutMetricAlarm requests and of DeleteAlarms requests); only the
/// evaluator writes alarms, and two a second leave a third to everyone else.
pub const ALARM_WRITE_INTERVAL: Duration = Duration::from_millis(500);

/// The least time between two `DescribeAlarms` calls (9 a second allowed, the same
/// page).
pub const ALARM_LIST_INTERVAL: Duration = Duration::from_millis(200);

/// dowguard's alarms in one account and region.
#[derive(Debug, Clone)]
pub struct CloudWatchAlarms {
    client: Client,
    prefix: String,
    writes: Arc<Pacer>,
    lists: Arc<Pacer>,
    /// The REST API names CloudWatch keys their metrics by, from the account's
    /// last discovery.
    catalog: Arc<RwLock<RestCatalog>>,
}

impl CloudWatchAlarms {
    /// Alarms named `prefix…` through `client`, reading REST API names from
    /// `catalog` (the account's, [`crate::account::AwsAccount::shared_catalog`]).
    pub fn new(client: Client, prefix: impl Into<String>, catalog: Arc<RwLock<RestCatalog>>) -> Self {
        CloudWatchAlarms {
            client,
            prefix: prefix.into(),
            writes: Arc::new(Pacer::new(ALARM_WRITE_INTERVAL)),
            lists: Arc::new(Pacer::new(ALARM_LIST_INTERVAL)),
            catalog,
        }
    }

    /// The name prefix dowguard owns.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every metric alarm under the prefix, with its threshold.
    pub async fn list(&self) -> PortResult<Vec<ExistingAlarm>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.lists.wait().await;
            let page = self
                .client
                .describe_alarms()
                .alarm_name_prefix(&self.prefix)
                .alarm_types(AlarmType::MetricAlarm)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| port_error("DescribeAlarms", &self.prefix, e))?;
            for alarm in page.metric_alarms() {
                let Some(name) = alarm.alarm_name() else {
                    continue;
                };
                let threshold = alarm.threshold().unwrap_or_default();
                out.push(ExistingAlarm {
                    name: name.to_string(),
                    requests_per_minute: whole(threshold),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Creates or updates `alarm` on `metric`: the metric's one-minute sum above
    /// the threshold in one period fires it; missing data does not.
    pub async fn put_on(&self, alarm: &DesiredAlarm, metric: &MetricKey) -> PortResult<()> {
        let dimensions = metric
            .dimensions
            .iter()
            .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
            .collect::<Vec<_>>();
        self.writes.wait().await;
        self.client
            .put_metric_alarm()
            .alarm_name(&alarm.name)
            .alarm_description(format!(
                "Managed by dowguard from budget {}: more than {} requests a minute on {} burn it faster than its first throttle level. Edits are overwritten.",
                alarm.budget, alarm.requests_per_minute, alarm.target
            ))
            .namespace(metric.namespace)
            .metric_name(metric.name)
            .set_dimensions(Some(dimensions))
            .statistic(Statistic::Sum)
            .period(ALARM_RULE.period_seconds)
            .evaluation_periods(ALARM_RULE.evaluation_periods)
            .datapoints_to_alarm(ALARM_RULE.datapoints_to_alarm)
            .threshold(count_as_threshold(alarm.requests_per_minute))
            // `AlarmRule::breaching`: greater than, not equal.
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .treat_missing_data(if ALARM_RULE.missing_breaches {
                "breaching"
            } else {
                "notBreaching"
            })
            .actions_enabled(false)
            .send()
            .await
            .map_err(|e| port_error("PutMetricAlarm", &alarm.name, e))?;
        Ok(())
    }

    /// Deletes the alarms named, in calls of at most [`MAX_DELETE_PER_CALL`].
    /// Names outside the prefix are refused, never sent.
    pub async fn delete(&self, names: &[String]) -> PortResult<()> {
        if let Some(foreign) = names.iter().find(|n| !n.starts_with(&self.prefix)) {
            return Err(invalid(
                "DeleteAlarms",
                foreign.as_str(),
                "not one of dowguard's alarms: refusing to delete it",
            ));
        }
        for chunk in names.chunks(MAX_DELETE_PER_CALL) {
            self.writes.wait().await;
            self.client
                .delete_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| port_error("DeleteAlarms", &self.prefix, e))?;
        }
        Ok(())
    }
}

/// A request count as CloudWatch's threshold (a double). Counts up to 2^53 are
/// exact; larger ones are beyond any real alarm.
#[allow(
    clippy::cast_precision_loss,
    reason = "request counts below 2^53 convert exactly"
)]
fn count_as_threshold(count: u64) -> f64 {
    count as f64
}

/// A threshold read back as whole requests (rounded down; negative or NaN as 0).
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to the u64 range first"
)]
fn whole(threshold: f64) -> u64 {
    if threshold.is_nan() || threshold <= 0.0 {
        0
    } else if threshold >= 18_446_744_073_709_549_568.0 {
        u64::MAX
    } else {
        threshold.floor() as u64
    }
}

impl Alarms for CloudWatchAlarms {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn list(&self) -> PortResult<Vec<ExistingAlarm>> {
        CloudWatchAlarms::list(self).await
    }

    /// Puts the alarm on the target's request metric; a target without one (a
    /// usage plan, a REST API whose name is unknown) gets none.
    async fn put(&self, alarm: &DesiredAlarm, target: &Target) -> PortResult<()> {
        let metric = {
            let catalog = self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            metrics_of(target, &catalog, false)
                .into_iter()
                .find(|(_, field)| *field == Field::Requests)
                .map(|(metric, _)| metric)
        };
        match metric {
            Some(metric) => self.put_on(alarm, &metric).await,
            None => Ok(()),
        }
    }

    async fn delete(&self, names: &[String]) -> PortResult<()> {
        CloudWatchAlarms::delete(self, names).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_round_trip_as_whole_requests() {
        for n in [0, 1, 39_682, 78_124, 1 << 40] {
            assert_eq!(whole(count_as_threshold(n)), n);
        }
        assert_eq!(whole(-3.0), 0);
        assert_eq!(whole(f64::NAN), 0);
        assert_eq!(whole(12.9), 12);
        assert_eq!(whole(f64::INFINITY), u64::MAX);
    }
}
