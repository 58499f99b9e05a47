//! CloudTrail: whether a trail logs this Region's management write events, the
//! condition for "AWS API Call via CloudTrail" events to reach EventBridge ("Events
//! from AWS services", Amazon EventBridge user guide). Read-only: `DescribeTrails`
//! (with shadow trails, so a multi-Region trail of another home Region counts),
//! `GetTrailStatus` and `GetEventSelectors` per trail.

use aws_sdk_cloudtrail::Client;
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, EventSelector, ReadWriteType};
use dowguard_guard::PortResult;
use dowguard_guard::ports::TrailStatus;

use crate::error::port_error;

/// The event sources whose management events the inventory follows.
pub const EVENT_SOURCES: [&str; 2] = ["lambda.amazonaws.com", "apigateway.amazonaws.com"];

/// CloudTrail through the SDK.
#[derive(Debug)]
pub struct TrailAdapter {
    client: Client,
}

/// Whether basic event selectors log our sources' management write events: an
/// event selector includes management events unless `IncludeManagementEvents` is
/// false, of every kind unless `ReadWriteType` is `ReadOnly`, and from every source
/// not in `ExcludeManagementEventSources` (CloudTrail API reference, "EventSelector").
fn basic_logs_writes(selectors: &[EventSelector]) -> bool {
    selectors.iter().any(|s| {
        s.include_management_events().unwrap_or(true)
            && s.read_write_type() != Some(&ReadWriteType::ReadOnly)
            && !s
                .exclude_management_event_sources()
                .iter()
                .any(|e| EVENT_SOURCES.contains(&e.as_str()))
    })
}

/// Whether advanced event selectors log our sources' management write events: a
/// selector whose `eventCategory` equals `Management` and that does not keep only
/// read-only events (`readOnly` equal to `true`) nor leave our sources out
/// (CloudTrail API reference, "AdvancedFieldSelector").
fn advanced_logs_writes(selectors: &[AdvancedEventSelector]) -> bool {
    selectors.iter().any(|s| {
        let fields = s.field_selectors();
        let management = fields
            .iter()
            .any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        let read_only = fields.iter().any(|f| {
            f.field() == "readOnly" && f.equals().iter().all(|v| v == "true") && !f.equals().is_empty()
        });
        let excluded = fields.iter().any(|f| {
            f.field() == "eventSource"
                && (f.not_equals().iter().any(|v| EVENT_SOURCES.contains(&v.as_str()))
                    || (!f.equals().is_empty()
                        && !f.equals().iter().any(|v| EVENT_SOURCES.contains(&v.as_str()))))
        });
        management && !read_only && !excluded
    })
}

impl TrailAdapter {
    /// An adapter over `client` (of the deployment's Region).
    pub fn new(client: Client) -> Self {
        TrailAdapter { client }
    }

    /// The first trail that is logging and records this Region's management write
    /// events from Lambda and API Gateway, with what was seen of the others.
    pub async fn status(&self) -> PortResult<TrailStatus> {
        let trails = self
            .client
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(|e| port_error("DescribeTrails", "account", e))?;
        let mut seen = Vec::new();
        for trail in trails.trail_list() {
            let name = trail.name().unwrap_or("(unnamed)").to_string();
            let Some(arn) = trail.trail_arn().or(trail.name()) else {
                continue;
            };
            let status = self
                .client
                .get_trail_status()
                .name(arn)
                .send()
                .await
                .map_err(|e| port_error("GetTrailStatus", arn, e))?;
            if !status.is_logging().unwrap_or(false) {
                seen.push(format!("{name} is not logging"));
                continue;
            }
            let selectors = self
                .client
                .get_event_selectors()
                .trail_name(arn)
                .send()
                .await
                .map_err(|e| port_error("GetEventSelectors", arn, e))?;
            let logs = basic_logs_writes(selectors.event_selectors())
                || advanced_logs_writes(selectors.advanced_event_selectors())
                || (selectors.event_selectors().is_empty()
                    && selectors.advanced_event_selectors().is_empty());
            if logs {
                return Ok(TrailStatus {
                    note: format!("trail {name} logs this Region's management write events"),
                    trail: Some(name),
                });
            }
            seen.push(format!("{name} does not log management write events"));
        }
        Ok(TrailStatus {
            trail: None,
            note: if seen.is_empty() {
                "no CloudTrail trail in this Region".into()
            } else {
                format!(
                    "no trail logs this Region's management write events ({})",
                    seen.join("; ")
                )
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudtrail::types::AdvancedFieldSelector;

    use super::*;

    #[test]
    fn event_selectors_that_log_management_writes_are_told_from_those_that_do_not() {
        let default = EventSelector::builder().build();
        assert!(
            basic_logs_writes(&[default]),
            "the defaults log every management event"
        );
        let read_only = EventSelector::builder()
            .read_write_type(ReadWriteType::ReadOnly)
            .build();
        assert!(!basic_logs_writes(&[read_only]));
        let data_only = EventSelector::builder().include_management_events(false).build();
        assert!(!basic_logs_writes(&[data_only]));
        let without_lambda = EventSelector::builder()
            .exclude_management_event_sources("lambda.amazonaws.com")
            .build();
        assert!(!basic_logs_writes(&[without_lambda]));

        let field = |name: &str, value: &str| {
            AdvancedFieldSelector::builder()
                .field(name)
                .equals(value)
                .build()
                .expect("field")
        };
        let management = AdvancedEventSelector::builder()
            .field_selectors(field("eventCategory", "Management"))
            .build()
            .expect("selector");
        assert!(advanced_logs_writes(&[management]));
        let reads = AdvancedEventSelector::builder()
            .field_selectors(field("eventCategory", "Management"))
            .field_selectors(field("readOnly", "true"))
            .build()
            .expect("selector");
        assert!(!advanced_logs_writes(&[reads]));
    }
}
