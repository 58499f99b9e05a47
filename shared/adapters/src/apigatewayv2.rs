//! API Gateway HTTP APIs: stage throttles, the default route's and each route's
//! own, through one `UpdateStage` (a live stage is updated in place, never deleted
//! and recreated), and discovery.
//!
//! "No throttle" is never written by leaving the throttle fields out: AWS's
//! `RouteSettings` reference (API Gateway V2 API reference) documents no default
//! for `ThrottlingBurstLimit` and `ThrottlingRateLimit`, and stages whose route
//! settings were written without them are publicly reported to refuse every
//! request (their limits read as 0). The guard writes the account's own limits
//! instead (`GetAccount` → `throttleSettings`: the developer guide's "Throttling
//! requests to your HTTP API" says default route throttling limits can't exceed the
//! account-level limits) and reads a throttle equal to them back as "no throttle".
//!
//! A route whose settings carry no throttle is not an override: UpdateStage can set
//! a field but never unset one, so a throttle the guard wrote there could not be
//! taken back exactly, and such a route cannot let more through than the stage does
//! (whether it follows the default route or reads as 0). The guard leaves it alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_apigatewayv2::Client;
use aws_sdk_apigatewayv2::types::{ProtocolType, RouteSettings};
use dowguard_domain::{ApiId, Limits, StageName, Target, TargetId, TargetSpec, Throttle, tags_allow_guard};
use dowguard_guard::ports::StageControl;
use dowguard_guard::{FailureKind, PortError, PortResult};
use rust_decimal::prelude::ToPrimitive;

use crate::apigateway::{cached, read_throttle, resolve_unthrottled};
use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// The name `resolve_unthrottled` gives the default route.
const DEFAULT_ROUTE: &str = "";

/// HTTP APIs through the SDK.
#[derive(Debug)]
pub struct HttpAdapter {
    client: Client,
    account: aws_sdk_apigateway::Client,
    /// The process's one pacer of API Gateway's control plane, shared with the REST
    /// adapter: the account's quota is for REST and HTTP APIs together.
    pacer: Arc<Pacer>,
}

impl HttpAdapter {
    /// Paces calls with `gateway`, the process's API Gateway pacer. `account` is an
    /// API Gateway (REST) client, for the account's own throttle limits
    /// (`GetAccount`): one quota per account and Region across HTTP, REST and
    /// WebSocket APIs ("Amazon API Gateway quotas").
    pub fn new(client: Client, account: aws_sdk_apigateway::Client, gateway: Arc<Pacer>) -> Self {
        HttpAdapter {
            client,
            account,
            pacer: gateway,
        }
    }

    /// Every HTTP API stage with tags, its default-route throttle and the routes
    /// with a throttle of their own.
    pub async fn discover(&self) -> PortResult<Vec<Target>> {
        let mut targets = Vec::new();
        let mut account = None;
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
                        let account = cached(&mut account, &self.account, &self.pacer).await?;
                        let limits = http_stage_limits(
                            stage.default_route_settings(),
                            stage.route_settings(),
                            &account,
                        );
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
                            limits,
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
    /// One HTTP API stage as it is now (`GetApi`, `GetStage`, the account's
    /// throttle); `None` when the API or the stage does not exist.
    pub async fn read_stage(&self, api: &ApiId, stage: &StageName) -> PortResult<Option<Target>> {
        let id = TargetId::HttpStage(api.clone(), stage.clone());
        let missing = |e: PortError| {
            if e.kind == FailureKind::NotFound {
                Ok(None)
            } else {
                Err(e)
            }
        };
        self.pacer.wait().await;
        let http_api = match self
            .client
            .get_api()
            .api_id(api.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetApi", api.as_str(), e))
        {
            Ok(found) => found,
            Err(e) => return missing(e),
        };
        if http_api.protocol_type() != Some(&ProtocolType::Http) {
            return Ok(None);
        }
        self.pacer.wait().await;
        let found = match self
            .client
            .get_stage()
            .api_id(api.as_str())
            .stage_name(stage.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetStage", id.to_string(), e))
        {
            Ok(found) => found,
            Err(e) => return missing(e),
        };
        let account = crate::apigateway::account_throttle(&self.account, &self.pacer).await?;
        let limits = http_stage_limits(found.default_route_settings(), found.route_settings(), &account);
        let own: BTreeMap<String, String> = found
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut tags: BTreeMap<String, String> = http_api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        tags.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut target = Target::new(id, TargetSpec::HttpStage, tags, limits);
        // IAM sees an HTTP API stage's own tags only ("API Gateway resources that
        // can be tagged").
        target.guarded = tags_allow_guard(&own);
        Ok(Some(target))
    }

    /// Per stage of an HTTP API: whether its access logs go to CloudWatch Logs
    /// (`AccessLogSettings.DestinationArn`: GetStages, API Gateway V2 API reference).
    pub async fn stage_access(&self, api: &ApiId) -> PortResult<Vec<(StageName, bool)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_stages()
                .api_id(api.as_str())
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| port_error("GetStages", api.as_str(), e))?;
            for stage in page.items() {
                let Some(Ok(name)) = stage.stage_name().map(StageName::parse) else {
                    continue;
                };
                let logs = stage
                    .access_log_settings()
                    .and_then(|a| a.destination_arn())
                    .is_some_and(|arn| arn.contains(":logs:"));
                out.push((name, logs));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

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

/// A route's own throttle: both fields set, and not the account's own limits.
fn route_throttle(settings: &RouteSettings, account: &Throttle) -> Option<Throttle> {
    read_throttle(
        settings.throttling_rate_limit()?,
        settings.throttling_burst_limit()?,
        Some(account),
    )
}

/// An HTTP stage's limits: the default route's throttle, and each route whose
/// settings carry a throttle (see the module docs for those that carry none).
pub fn http_stage_limits(
    default: Option<&RouteSettings>,
    routes: Option<&HashMap<String, RouteSettings>>,
    account: &Throttle,
) -> Limits {
    let throttle = default.and_then(|s| route_throttle(s, account));
    let overrides = routes
        .into_iter()
        .flatten()
        .filter(|(_, s)| s.throttling_rate_limit().is_some() && s.throttling_burst_limit().is_some())
        .map(|(key, s)| (key.clone(), route_throttle(s, account)))
        .collect();
    Limits::Stage { throttle, overrides }
}

/// Route settings for an HTTP API: only what HTTP APIs accept. `DataTraceEnabled`
/// and `LoggingLevel` are "Supported only for WebSocket APIs" (API Gateway V2 API
/// reference, RouteSettings), so they are never sent; detailed metrics are kept as
/// they were.
fn http_route_settings(
    throttle: Throttle,
    existing: Option<&RouteSettings>,
    operation: &'static str,
    stage: &TargetId,
) -> PortResult<RouteSettings> {
    let rate = throttle
        .rate_limit
        .to_f64()
        .ok_or_else(|| invalid(operation, stage.to_string(), "rate out of range"))?;
    let burst = i32::try_from(throttle.burst_limit)
        .map_err(|_| invalid(operation, stage.to_string(), "burst out of range"))?;
    Ok(RouteSettings::builder()
        .set_detailed_metrics_enabled(existing.and_then(RouteSettings::detailed_metrics_enabled))
        .throttling_rate_limit(rate)
        .throttling_burst_limit(burst)
        .build())
}

impl StageControl for HttpAdapter {
    async fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> PortResult<()> {
        let TargetId::HttpStage(api, name) = stage else {
            return Err(PortError::new(
                "UpdateStage",
                stage.to_string(),
                FailureKind::Refused,
                "not an HTTP API stage",
            ));
        };
        // Read the stage's other route settings so that only the throttles change.
        self.pacer.wait().await;
        let current = self
            .client
            .get_stage()
            .api_id(api.as_str())
            .stage_name(name.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetStage", stage.to_string(), e))?;
        let throttles = resolve_unthrottled(
            "UpdateStage",
            stage,
            std::iter::once((DEFAULT_ROUTE, value)).chain(overrides.iter().map(|(k, t)| (k.as_str(), *t))),
            &self.account,
            &self.pacer,
        )
        .await?;
        let mut update = self
            .client
            .update_stage()
            .api_id(api.as_str())
            .stage_name(name.as_str());
        for (key, throttle) in throttles {
            if key == DEFAULT_ROUTE {
                update = update.default_route_settings(http_route_settings(
                    throttle,
                    current.default_route_settings(),
                    "UpdateStage",
                    stage,
                )?);
            } else {
                let existing = current.route_settings().and_then(|r| r.get(key));
                update = update.route_settings(
                    key,
                    http_route_settings(throttle, existing, "UpdateStage", stage)?,
                );
            }
        }
        self.pacer.wait().await;
        update
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("UpdateStage", stage.to_string(), e))
    }
}
