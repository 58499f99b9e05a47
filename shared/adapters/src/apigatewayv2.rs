//! API Gateway HTTP APIs: stage default-route throttles through `UpdateStage`
//! (a live stage is updated in place, never deleted and recreated), and discovery.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{ProtocolType, RouteSettings};
use dowguard_domain::{ApiId, Limits, StageName, Target, TargetId, TargetSpec, Throttle, tags_allow_guard};
use dowguard_guard::ports::StageControl;
use dowguard_guard::{FailureKind, PortError, PortResult};
use rust_decimal::prelude::ToPrimitive;

use crate::apigateway::throttle_of;
use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// What the guard writes to lift its throttle from a stage that had none: the
/// default account-level limits (10,000 requests a second, burst 5,000), which is what
/// an unthrottled stage gets. Leaving the fields out of `UpdateStage` is not safe (an
/// unset limit may read as 0, which refuses every request), so the guard writes these
/// values and reads them back as "no stage throttle".
pub const ACCOUNT_DEFAULT_THROTTLE: (f64, i32) = (10_000.0, 5_000);

/// HTTP APIs through the SDK.
#[derive(Debug)]
pub struct HttpAdapter {
    client: Client,
    pacer: Pacer,
}

impl HttpAdapter {
    /// Paces calls to `per_second` (API Gateway's control plane is shared).
    pub fn new(client: Client, per_second: u32) -> Self {
        HttpAdapter {
            client,
            pacer: Pacer::per_second(per_second),
        }
    }

    /// Every HTTP API stage with tags and its default-route throttle.
    pub async fn discover(&self) -> PortResult<Vec<Target>> {
        let mut targets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_apis()
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| port_error("GetApis", "account", e))?;
            for api in page.items() {
                if api.protocol_type() != Some(&ProtocolType::Http) {
                    continue;
                }
                let Some(Ok(api_id)) = api.api_id().map(ApiId::parse) else {
                    continue;
                };
                let api_tags: BTreeMap<String, String> = api
                    .tags()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let mut stage_token: Option<String> = None;
                loop {
                    self.pacer.wait().await;
                    let stages = self
                        .client
                        .get_stages()
                        .api_id(api_id.as_str())
                        .set_next_token(stage_token.clone())
                        .send()
                        .await
                        .map_err(|e| port_error("GetStages", api_id.as_str(), e))?;
                    for stage in stages.items() {
                        let Ok(name) = StageName::parse(stage.stage_name().unwrap_or_default()) else {
                            continue;
                        };
                        let throttle = stage.default_route_settings().and_then(route_throttle);
                        // IAM sees an HTTP API stage's own tags only: V2 resources do
                        // not inherit their API's ("API Gateway resources that can be
                        // tagged"). The API's tags still count for tag-group budgets.
                        let own: BTreeMap<String, String> = stage
                            .tags()
                            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                            .unwrap_or_default();
                        let mut tags = api_tags.clone();
                        tags.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                        let mut target = Target::new(
                            TargetId::HttpStage(api_id.clone(), name),
                            TargetSpec::HttpStage,
                            tags,
                            Limits::Stage { throttle },
                        );
                        target.guarded = tags_allow_guard(&own);
                        targets.push(target);
                    }
                    stage_token = stages.next_token().map(str::to_string);
                    if stage_token.is_none() {
                        break;
                    }
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(targets)
    }
}

impl HttpAdapter {
    /// The routes of an HTTP API that anyone can call: no authorization and no API
    /// key required, as their route keys (`GET /orders`, `$default`).
    pub async fn open_routes(&self, api: &ApiId) -> PortResult<Vec<String>> {
        let mut open = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_routes()
                .api_id(api.as_str())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| port_error("GetRoutes", api.as_str(), e))?;
            for route in page.items() {
                let unauthorized = route
                    .authorization_type()
                    .is_none_or(|a| a.as_str().eq_ignore_ascii_case("NONE"));
                if unauthorized && !route.api_key_required().unwrap_or(false) {
                    open.push(route.route_key().unwrap_or_default().to_string());
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        open.sort();
        Ok(open)
    }
}

fn route_throttle(settings: &RouteSettings) -> Option<Throttle> {
    throttle_of(
        settings.throttling_rate_limit()?,
        settings.throttling_burst_limit()?,
    )
}

impl StageControl for HttpAdapter {
    async fn set_stage_throttle(&self, stage: &TargetId, value: Option<Throttle>) -> PortResult<()> {
        let TargetId::HttpStage(api, name) = stage else {
            return Err(PortError::new(
                "UpdateStage",
                stage.to_string(),
                FailureKind::Refused,
                "not an HTTP API stage",
            ));
        };
        // Read the stage's other default-route settings so that only the throttle changes.
        self.pacer.wait().await;
        let current = self
            .client
            .get_stage()
            .api_id(api.as_str())
            .stage_name(name.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetStage", stage.to_string(), e))?;
        let existing = current.default_route_settings();
        let mut settings = RouteSettings::builder()
            .set_detailed_metrics_enabled(existing.and_then(RouteSettings::detailed_metrics_enabled))
            .set_data_trace_enabled(existing.and_then(RouteSettings::data_trace_enabled))
            .set_logging_level(existing.and_then(|s| s.logging_level().cloned()));
        let (rate, burst) = match value {
            Some(t) => (
                t.rate_limit
                    .to_f64()
                    .ok_or_else(|| invalid("UpdateStage", stage.to_string(), "rate out of range"))?,
                i32::try_from(t.burst_limit)
                    .map_err(|_| invalid("UpdateStage", stage.to_string(), "burst out of range"))?,
            ),
            None => ACCOUNT_DEFAULT_THROTTLE,
        };
        settings = settings.throttling_rate_limit(rate).throttling_burst_limit(burst);
        self.pacer.wait().await;
        self.client
            .update_stage()
            .api_id(api.as_str())
            .stage_name(name.as_str())
            .default_route_settings(settings.build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("UpdateStage", stage.to_string(), e))
    }
}
