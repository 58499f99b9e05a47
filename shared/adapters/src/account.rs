//! The account as the guard sees it: one value that discovers every kind of target,
//! measures them, and routes each change to the adapter of its service (an API
//! key's move to API Gateway, an IP set's update to WAF).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use dowguard_domain::source::IpSetRef;
use dowguard_domain::{
    AccountConcurrency, AsyncConfig, FunctionName, Quota, TargetId, TargetKind, Throttle, UsagePlanId,
};
use dowguard_guard::ports::{
    Discovered, Discovery, FetchedMetrics, Found, InventorySource, LambdaControl, MetricsRequest,
    MetricsSource, SourceControl, StageControl, TrailStatus, Unlisted, UsagePlanControl,
};
use dowguard_guard::{FailureKind, PortError, PortResult};

use crate::apigateway::{RestAdapter, RestCatalog};
use crate::apigatewayv2::HttpAdapter;
use crate::cloudwatch::CloudWatchMetrics;
use crate::lambda::LambdaAdapter;
use crate::tagging::TaggingAdapter;
use crate::trail::TrailAdapter;
use crate::waf::WafAdapter;

/// Every service adapter of one account and region.
#[derive(Debug)]
pub struct AwsAccount {
    /// Lambda.
    pub lambda: LambdaAdapter,
    /// REST APIs and usage plans.
    pub rest: RestAdapter,
    /// HTTP APIs.
    pub http: HttpAdapter,
    /// CloudWatch metrics.
    pub metrics: CloudWatchMetrics,
    /// The Resource Groups Tagging API.
    pub tagging: TaggingAdapter,
    /// CloudTrail's trails.
    pub trail: TrailAdapter,
    /// WAF's IP sets.
    pub waf: WafAdapter,
    catalog: Arc<RwLock<RestCatalog>>,
    /// Ranking callers, when the deployment sets it up.
    pub(crate) ranking: Option<crate::ranking::Ranking>,
}

impl AwsAccount {
    /// Puts the adapters together.
    pub fn new(
        lambda: LambdaAdapter,
        rest: RestAdapter,
        http: HttpAdapter,
        metrics: CloudWatchMetrics,
        (tagging, trail, waf): (TaggingAdapter, TrailAdapter, WafAdapter),
    ) -> Self {
        AwsAccount {
            lambda,
            rest,
            http,
            metrics,
            tagging,
            trail,
            waf,
            catalog: Arc::new(RwLock::new(RestCatalog::default())),
            ranking: None,
        }
    }

    /// Ranks the callers of REST API stages with `ranking` ([`crate::ranking`]).
    #[must_use]
    pub fn with_ranking(mut self, ranking: crate::ranking::Ranking) -> Self {
        self.ranking = Some(ranking);
        self
    }

    fn set_catalog(&self, catalog: RestCatalog) {
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
    }

    /// The catalogue of REST APIs (names, usage plans' stages) itself, kept current by every discovery, for whoever else
    /// needs REST API names (the alarms).
    pub fn shared_catalog(&self) -> Arc<RwLock<RestCatalog>> {
        Arc::clone(&self.catalog)
    }

    /// What the last discovery learnt about REST APIs, as a copy.
    pub fn catalog(&self) -> RestCatalog {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Discovery for AwsAccount {
    /// Lists each service on its own (Lambda beside API Gateway, which REST and HTTP
    /// APIs share): one that cannot be listed (an SCP that denies it, a partial
    /// outage) is reported with its error, and the others are still returned.
    async fn discover(&self) -> PortResult<Discovered> {
        let (functions, (rest, http)) = tokio::join!(self.lambda.discover_functions(), async {
            (self.rest.discover().await, self.http.discover().await)
        });
        let mut found = Discovered::default();
        match functions {
            Ok(targets) => found.targets.extend(targets),
            Err(e) => found
                .unlisted
                .push(Unlisted::new("Lambda functions", &[TargetKind::Function], &e)),
        }
        match rest {
            Ok((targets, catalog)) => {
                found.targets.extend(targets);
                self.set_catalog(catalog);
            }
            Err(e) => found.unlisted.push(Unlisted::new(
                "REST API stages and usage plans",
                &[TargetKind::RestStage, TargetKind::UsagePlan],
                &e,
            )),
        }
        match http {
            Ok(targets) => found.targets.extend(targets),
            Err(e) => found
                .unlisted
                .push(Unlisted::new("HTTP API stages", &[TargetKind::HttpStage], &e)),
        }
        for unlisted in &found.unlisted {
            tracing::warn!(what = %unlisted.what, error = %unlisted.error, "could not list; the rest of the account is still guarded");
        }
        Ok(found)
    }

    /// The REST API names and each plan's stages, rebuilt from the inventory: what
    /// the metrics and the alarms need, which a pass no longer discovers.
    fn remember(&self, found: &[Found]) {
        let mut catalog = RestCatalog::default();
        for f in found {
            if let TargetId::RestStage(api, stage) = &f.target.id {
                if let Some(name) = &f.api_name {
                    catalog.api_names.insert(api.clone(), name.clone());
                }
                for plan in &f.target.usage_plans {
                    catalog
                        .plan_stages
                        .entry(plan.clone())
                        .or_default()
                        .push((api.clone(), stage.clone()));
                }
            }
        }
        self.set_catalog(catalog);
    }
}

impl InventorySource for AwsAccount {
    async fn tagged_functions(&self, tags: &[(String, String)]) -> PortResult<Vec<FunctionName>> {
        self.tagging.functions_tagged(tags).await
    }

    async fn read_target(&self, id: &TargetId) -> PortResult<Option<Found>> {
        Ok(match id {
            TargetId::Function(name) => self.lambda.read_function(name).await?.map(Found::of),
            TargetId::RestStage(api, stage) => {
                self.rest
                    .read_stage(api, stage)
                    .await?
                    .map(|(target, name)| Found {
                        target,
                        api_name: Some(name),
                    })
            }
            TargetId::HttpStage(api, stage) => self.http.read_stage(api, stage).await?.map(Found::of),
            TargetId::UsagePlan(plan) => self.rest.read_plan(plan).await?.map(|(t, _)| Found::of(t)),
        })
    }

    /// Every REST API stage and usage plan, and every HTTP API stage; the REST
    /// catalogue is kept from the same listing.
    async fn list_apis(&self) -> PortResult<Vec<Found>> {
        let (rest, catalog) = self.rest.discover().await?;
        let http = self.http.discover().await?;
        let found = rest
            .into_iter()
            .map(|target| {
                let api_name = match &target.id {
                    TargetId::RestStage(api, _) => catalog.api_names.get(api).cloned(),
                    _ => None,
                };
                Found { target, api_name }
            })
            .chain(http.into_iter().map(Found::of))
            .collect();
        self.set_catalog(catalog);
        Ok(found)
    }

    async fn trail_status(&self) -> PortResult<TrailStatus> {
        self.trail.status().await
    }
}

impl MetricsSource for AwsAccount {
    async fn fetch(&self, request: &MetricsRequest<'_>) -> PortResult<FetchedMetrics> {
        let catalog = self.catalog();
        self.metrics.fetch_with(request, &catalog).await
    }
}

impl LambdaControl for AwsAccount {
    async fn account_concurrency(&self) -> PortResult<AccountConcurrency> {
        self.lambda.account_concurrency().await
    }

    async fn set_reserved_concurrency(&self, function: &FunctionName, value: Option<u32>) -> PortResult<()> {
        self.lambda.set_reserved_concurrency(function, value).await
    }

    async fn set_async_config(&self, function: &FunctionName, to: Option<&AsyncConfig>) -> PortResult<()> {
        self.lambda.set_async_config(function, to).await
    }
}

impl StageControl for AwsAccount {
    async fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> PortResult<()> {
        match stage {
            TargetId::RestStage(..) => self.rest.set_stage_throttle(stage, value, overrides).await,
            TargetId::HttpStage(..) => self.http.set_stage_throttle(stage, value, overrides).await,
            other => Err(PortError::new(
                "UpdateStage",
                other.to_string(),
                FailureKind::Refused,
                "not an API stage",
            )),
        }
    }
}

impl UsagePlanControl for AwsAccount {
    async fn set_plan_limits(
        &self,
        plan: &UsagePlanId,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> PortResult<()> {
        self.rest.set_plan_limits(plan, throttle, quota).await
    }
}

impl SourceControl for AwsAccount {
    async fn move_api_key(&self, key: &str, from: &UsagePlanId, to: &UsagePlanId) -> PortResult<()> {
        self.rest.move_api_key(key, from, to).await
    }

    async fn update_ip_set(&self, ip_set: &IpSetRef, add: &[String], remove: &[String]) -> PortResult<()> {
        self.waf.update_ip_set(ip_set, add, remove).await
    }
}
