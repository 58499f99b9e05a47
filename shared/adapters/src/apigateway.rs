//! API Gateway REST APIs: stage throttles (`UpdateStage` on the `/*/*` method
//! settings and every method's own), usage plans (`UpdateUsagePlan`, every change
//! to a plan in one call, paced to about one call per 20 seconds per account:
//! within the process, and across processes through a slot in the guard's table),
//! their discovery, the account's own throttle limits (`GetAccount`), and API keys
//! moved between usage plans (`DeleteUsagePlanKey`, `CreateUsagePlanKey`).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::types::{
    ApiStage, MethodSetting, Op, PatchOperation, QuotaPeriodType, QuotaSettings, ThrottleSettings,
};
use chrono::Utc;
use dowguard_domain::{
    ApiId, Limits, Quota, QuotaPeriod, StageName, Target, TargetId, TargetSpec, Throttle, UsagePlanId,
    tags_allow_guard,
};
use dowguard_guard::ports::{StageControl, UsagePlanControl};
use dowguard_guard::{FailureKind, PortError, PortResult};
use rust_decimal::Decimal;

use crate::error::{invalid, port_error};
use crate::lease::TableLeases;
use crate::pace::Pacer;

/// The method-settings key of a stage's default throttle.
const DEFAULT_METHOD: &str = "*/*";

/// What discovery learnt about REST APIs that metrics need: CloudWatch names REST
/// API metrics by API *name*, and a usage plan's traffic is its stages' traffic.
#[derive(Debug, Clone, Default)]
pub struct RestCatalog {
    /// API id → the API's name as CloudWatch's `ApiName` dimension carries it.
    pub api_names: HashMap<ApiId, String>,
    /// Usage plan → the REST stages it covers.
    pub plan_stages: HashMap<UsagePlanId, Vec<(ApiId, StageName)>>,
}

/// The `ApiName` dimension CloudWatch gives a REST API's metrics: API Gateway
/// removes non-ASCII characters from the name, and uses the API id when nothing is
/// left ("Amazon API Gateway dimensions and metrics").
pub fn metric_api_name(name: &str, api: &ApiId) -> String {
    let ascii: String = name.chars().filter(char::is_ascii).collect();
    if ascii.is_empty() { api.to_string() } else { ascii }
}

impl RestCatalog {
    /// The other REST APIs with the same name as `api`. CloudWatch's `AWS/ApiGateway`
    /// metrics of a REST API carry its `ApiName` and `Stage` as dimensions, not its
    /// id ("Amazon API Gateway dimensions and metrics"), so APIs that share a name
    /// share one series and their traffic cannot be told apart.
    pub fn sharing_name(&self, api: &ApiId) -> Vec<&ApiId> {
        let Some(name) = self.api_names.get(api) else {
            return Vec::new();
        };
        let mut others: Vec<&ApiId> = self
            .api_names
            .iter()
            .filter(|(id, n)| *id != api && *n == name)
            .map(|(id, _)| id)
            .collect();
        others.sort();
        others
    }
}
/// The name of the account-wide `UpdateUsagePlan` slot in the guard's table.
pub const PLAN_SLOT: &str = "UpdateUsagePlan";

/// The longest a slot's grant may take to come back and still be used. The slot
/// is taken for the interval plus this, so a process whose call starts up to this
/// late after asking is still an interval ahead of the next taker; a slower grant
/// is not used, and the slot is asked for again.
pub const PLAN_SLOT_GRANT_LATENCY: Duration = Duration::from_secs(1);

/// How many slot lengths a usage-plan update waits for the slot at most: two other
/// processes waiting for it too may each take it first once.
pub const PLAN_SLOT_MAX_WAIT: u32 = 3;

/// The least time between two `GetResources` calls: AWS allows "5 requests every 2
/// seconds per account" ("Amazon API Gateway quotas", API Gateway quotas for
/// creating, deploying and managing an API); one every 500 ms leaves a fifth of it
/// to everyone else.
pub const GET_RESOURCES_INTERVAL: Duration = Duration::from_millis(500);

/// REST APIs and usage plans through the SDK.
#[derive(Debug)]
pub struct RestAdapter {
    client: Client,
    /// The process's one pacer of API Gateway's control plane, shared with the HTTP
    /// API adapter: the account's quota is for REST and HTTP APIs together.
    stage_pacer: Arc<Pacer>,
    /// `GetResources` has a quota of its own besides the total.
    resources_pacer: Pacer,
    plan_pacer: Pacer,
    plan_interval: Duration,
    plan_slot: Option<TableLeases>,
}

impl RestAdapter {
    /// Paces every call with `gateway` (the process's API Gateway pacer),
    /// `GetResources` also to [`GET_RESOURCES_INTERVAL`], and usage-plan updates to
    /// one per `plan_interval` in this process.
    pub fn new(client: Client, gateway: Arc<Pacer>, plan_interval: Duration) -> Self {
        RestAdapter {
            client,
            stage_pacer: gateway,
            resources_pacer: Pacer::new(GET_RESOURCES_INTERVAL),
            plan_pacer: Pacer::new(plan_interval),
            plan_interval,
            plan_slot: None,
        }
    }

    /// Also paces usage-plan updates across processes: before each
    /// `UpdateUsagePlan` the adapter takes the account-wide slot [`PLAN_SLOT`] in
    /// the guard's table, so every process built with the same table keeps AWS's
    /// "about one `UpdateUsagePlan` per 20 seconds per account" ("Amazon API Gateway
    /// quotas", API Gateway quotas for creating, deploying and managing an API)
    /// between them, not only within itself. An interval of zero turns it off.
    #[must_use]
    pub fn with_plan_slot(mut self, leases: TableLeases) -> Self {
        self.plan_slot = Some(leases);
        self
    }

    /// Waits until this process holds the account-wide usage-plan slot, at most
    /// [`PLAN_SLOT_MAX_WAIT`] slot lengths (63 s with the default 20 s interval);
    /// longer means other processes keep it busy, and the change is reported as
    /// throttled for the next pass to try again.
    async fn wait_for_plan_slot(&self, plan: &UsagePlanId) -> PortResult<()> {
        let Some(slot) = self.plan_slot.as_ref().filter(|_| !self.plan_interval.is_zero()) else {
            return Ok(());
        };
        let length = self.plan_interval + PLAN_SLOT_GRANT_LATENCY;
        let give_up = Instant::now() + length * PLAN_SLOT_MAX_WAIT;
        loop {
            let asked = Instant::now();
            match slot.take_slot(PLAN_SLOT, length, Utc::now()).await? {
                Ok(()) if asked.elapsed() <= PLAN_SLOT_GRANT_LATENCY => return Ok(()),
                Ok(()) => {}
                Err(wait) if Instant::now() + wait <= give_up => tokio::time::sleep(wait).await,
                Err(wait) => {
                    return Err(PortError::new(
                        "UpdateUsagePlan",
                        format!("usage-plan:{plan}"),
                        FailureKind::Throttled,
                        format!(
                            "the account's UpdateUsagePlan slot is taken by other processes for {} ms more; the next pass tries again",
                            wait.as_millis()
                        ),
                    ));
                }
            }
        }
    }

    /// How long until the next usage-plan update may start.
    pub async fn plan_update_ready_in(&self) -> Duration {
        self.plan_pacer.ready_in().await
    }

    /// Every REST API stage and usage plan, with tags and limits, and the catalogue
    /// the metrics adapter needs.
    pub async fn discover(&self) -> PortResult<(Vec<Target>, RestCatalog)> {
        let mut targets = Vec::new();
        let mut catalog = RestCatalog::default();
        let mut account = None;
        let mut position: Option<String> = None;
        loop {
            self.stage_pacer.wait().await;
            let page = self
                .client
                .get_rest_apis()
                .set_position(position.clone())
                .limit(500)
                .send()
                .await
                .map_err(|e| port_error("GetRestApis", "account", e))?;
            for api in page.items() {
                let Some(Ok(api_id)) = api.id().map(ApiId::parse) else {
                    continue;
                };
                catalog.api_names.insert(
                    api_id.clone(),
                    metric_api_name(api.name().unwrap_or_default(), &api_id),
                );
                self.stage_pacer.wait().await;
                let stages = self
                    .client
                    .get_stages()
                    .rest_api_id(api_id.as_str())
                    .send()
                    .await
                    .map_err(|e| port_error("GetStages", api_id.as_str(), e))?;
                for stage in stages.item() {
                    let Some(Ok(name)) = stage.stage_name().map(StageName::parse) else {
                        continue;
                    };
                    let settings = stage.method_settings();
                    let account = match settings {
                        Some(m) if !m.is_empty() => {
                            Some(cached(&mut account, &self.client, &self.stage_pacer).await?)
                        }
                        _ => None,
                    };
                    let limits = rest_stage_limits(settings, account.as_ref());
                    // A stage inherits its REST API's tags for attribute-based access
                    // control, its own tags winning ("API Gateway resources that can be
                    // tagged"): these are the tags IAM's `aws:ResourceTag` sees.
                    let mut tags: BTreeMap<String, String> = api
                        .tags()
                        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    if let Some(stage_tags) = stage.tags() {
                        tags.extend(stage_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    let guarded = tags_allow_guard(&tags);
                    let mut target = Target::new(
                        TargetId::RestStage(api_id.clone(), name),
                        TargetSpec::RestStage,
                        tags,
                        limits,
                    );
                    target.guarded = guarded;
                    targets.push(target);
                }
            }
            position = page.position().map(str::to_string);
            if position.is_none() {
                break;
            }
        }
        for plan in self.usage_plans().await? {
            let Some(Ok(id)) = plan.id().map(UsagePlanId::parse) else {
                continue;
            };
            catalog
                .plan_stages
                .insert(id.clone(), plan_stages(plan.api_stages()));
            targets.push(plan_target(id, plan.throttle(), plan.quota(), plan.tags()));
        }
        // Each stage learns the plans that include it: a plan's budget covers them.
        for (plan, stages) in &catalog.plan_stages {
            for target in &mut targets {
                if let TargetId::RestStage(api, stage) = &target.id
                    && stages.iter().any(|(a, s)| a == api && s == stage)
                {
                    target.usage_plans.insert(plan.clone());
                }
            }
        }
        Ok((targets, catalog))
    }
}

impl RestAdapter {
    /// The methods of a REST API that anyone can call: no authorization
    /// (`authorizationType` `NONE`) and no API key required, as `GET /path`.
    pub async fn open_methods(&self, api: &ApiId) -> PortResult<Vec<String>> {
        Ok(self.methods(api).await?.open)
    }

    /// The methods of a REST API as the audit reads them: those anyone can call
    /// (no authorization, no API key), and whether any method requires an API key
    /// (then a usage plan's keys name its callers).
    pub async fn methods(&self, api: &ApiId) -> PortResult<Methods> {
        let mut open = Vec::new();
        let mut key_required = false;
        let mut position: Option<String> = None;
        loop {
            self.resources_pacer.wait().await;
            self.stage_pacer.wait().await;
            let page = self
                .client
                .get_resources()
                .rest_api_id(api.as_str())
                .embed("methods")
                .set_position(position.clone())
                .limit(500)
                .send()
                .await
                .map_err(|e| port_error("GetResources", api.as_str(), e))?;
            for resource in page.items() {
                let path = resource.path().unwrap_or("/");
                let Some(methods) = resource.resource_methods() else {
                    continue;
                };
                for (verb, method) in methods {
                    let unauthorized = method
                        .authorization_type()
                        .is_none_or(|a| a.eq_ignore_ascii_case("NONE"));
                    let keyed = method.api_key_required().unwrap_or(false);
                    key_required |= keyed;
                    if unauthorized && !keyed {
                        open.push(format!("{verb} {path}"));
                    }
                }
            }
            position = page.position().map(str::to_string);
            if position.is_none() {
                break;
            }
        }
        open.sort();
        Ok(Methods { open, key_required })
    }

    /// Per stage of a REST API: whether its access logs go to CloudWatch Logs and
    /// whether a web ACL is attached.
    pub async fn stage_access(&self, api: &ApiId) -> PortResult<Vec<(StageName, bool, bool)>> {
        Ok(self
            .stage_logs(api)
            .await?
            .into_iter()
            .map(|s| {
                let logs = s.destination.as_deref().is_some_and(|arn| arn.contains(":logs:"));
                (s.name, logs, s.web_acl.is_some())
            })
            .collect())
    }

    /// Each stage of a REST API with its access log settings and web ACL
    /// (`accessLogSettings.destinationArn` and `format`, `webAclArn`: GetStages,
    /// API Gateway API reference).
    pub async fn stage_logs(&self, api: &ApiId) -> PortResult<Vec<StageLog>> {
        self.stage_pacer.wait().await;
        let stages = self
            .client
            .get_stages()
            .rest_api_id(api.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetStages", api.as_str(), e))?;
        Ok(stages
            .item()
            .iter()
            .filter_map(|stage| {
                let name = StageName::parse(stage.stage_name()?).ok()?;
                let log = stage.access_log_settings();
                Some(StageLog {
                    name,
                    destination: log.and_then(|a| a.destination_arn()).map(str::to_string),
                    format: log.and_then(|a| a.format()).map(str::to_string),
                    web_acl: stage.web_acl_arn().map(str::to_string),
                })
            })
            .collect())
    }
}

/// A REST API stage's access log settings and web ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLog {
    /// The stage.
    pub name: StageName,
    /// Where its access logs go (a log group's or a Firehose stream's ARN).
    pub destination: Option<String>,
    /// The access log format.
    pub format: Option<String>,
    /// The web ACL attached, if any.
    pub web_acl: Option<String>,
}

impl RestAdapter {
    /// The ids of the API keys in usage plan `plan` (GetUsagePlanKeys, API Gateway
    /// API reference): each key's plan, for quarantining one.
    pub async fn plan_keys(&self, plan: &UsagePlanId) -> PortResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut position: Option<String> = None;
        loop {
            self.stage_pacer.wait().await;
            let page = self
                .client
                .get_usage_plan_keys()
                .usage_plan_id(plan.as_str())
                .set_position(position.clone())
                .limit(500)
                .send()
                .await
                .map_err(|e| port_error("GetUsagePlanKeys", plan.as_str(), e))?;
            keys.extend(page.items().iter().filter_map(|k| k.id().map(str::to_string)));
            position = page.position().map(str::to_string);
            if position.is_none() {
                break;
            }
        }
        Ok(keys)
    }
}

/// A REST API's methods as the audit reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Methods {
    /// Methods anyone can call (`GET /orders`).
    pub open: Vec<String>,
    /// Some method requires an API key.
    pub key_required: bool,
}

/// The account's own throttle limits in this Region, which bound every stage,
/// method and route throttle: API Gateway's `GetAccount` → `throttleSettings`
/// (API Gateway API reference, "GetAccount"; the developer guide's "Throttle
/// requests to your REST APIs" says default and per-method limits are bounded by
/// the account-level limits). They differ by Region and account (the "Amazon API
/// Gateway quotas" page), so they are read, never assumed.
pub async fn account_throttle(client: &Client, pacer: &Pacer) -> PortResult<Throttle> {
    pacer.wait().await;
    let out = client
        .get_account()
        .send()
        .await
        .map_err(|e| port_error("GetAccount", "account", e))?;
    out.throttle_settings()
        .and_then(|t| throttle_of(t.rate_limit(), t.burst_limit()))
        .ok_or_else(|| {
            invalid(
                "GetAccount",
                "account",
                "no account throttle settings in the answer",
            )
        })
}

/// The account's throttle limits, asked for once and then kept in `cache`.
pub(crate) async fn cached(
    cache: &mut Option<Throttle>,
    client: &Client,
    pacer: &Pacer,
) -> PortResult<Throttle> {
    if let Some(t) = cache {
        return Ok(*t);
    }
    let t = account_throttle(client, pacer).await?;
    *cache = Some(t);
    Ok(t)
}

/// A throttle as the guard models it: `None` for no throttle at this level, which
/// AWS shows either as a negative number or as the account's own limits (the AWS
/// CLI reference's `update-stage` example shows a method setting made without a
/// throttle carrying the account's 10,000 requests a second and burst 5,000).
pub fn read_throttle(rate: f64, burst: i32, account: Option<&Throttle>) -> Option<Throttle> {
    throttle_of(rate, burst).filter(|t| Some(t) != account)
}

/// A REST stage's limits from its method settings: `*/*` is the stage's throttle,
/// every other key (`~1orders/GET`) a method whose settings apply instead of the
/// stage's, throttle included.
pub fn rest_stage_limits(
    settings: Option<&HashMap<String, MethodSetting>>,
    account: Option<&Throttle>,
) -> Limits {
    let read =
        |s: &MethodSetting| read_throttle(s.throttling_rate_limit(), s.throttling_burst_limit(), account);
    let throttle = settings.and_then(|m| m.get(DEFAULT_METHOD)).and_then(read);
    let overrides = settings
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.as_str() != DEFAULT_METHOD)
        .map(|(key, s)| (key.clone(), read(s)))
        .collect();
    Limits::Stage { throttle, overrides }
}

/// A throttle from AWS's numbers; a negative rate means "none at this level".
pub fn throttle_of(rate: f64, burst: i32) -> Option<Throttle> {
    if rate < 0.0 || burst < 0 {
        return None;
    }
    // Shortest round-trip text of the double, so 10.5 stays 10.5 exactly.
    let rate_limit = Decimal::from_str(&rate.to_string()).ok()?;
    Some(Throttle {
        rate_limit,
        burst_limit: u32::try_from(burst).ok()?,
    })
}

fn replace(path: &str, value: String) -> PatchOperation {
    PatchOperation::builder()
        .op(Op::Replace)
        .path(path)
        .value(value)
        .build()
}

fn remove(path: &str) -> PatchOperation {
    PatchOperation::builder().op(Op::Remove).path(path).build()
}

/// The patch operations that set a stage's default throttle (`*/*`) and each
/// named method's, in one `UpdateStage`.
pub fn stage_patch(throttles: &[(&str, Throttle)]) -> Vec<PatchOperation> {
    throttles
        .iter()
        .flat_map(|(key, t)| {
            [
                replace(
                    &format!("/{key}/throttling/rateLimit"),
                    t.rate_limit.normalize().to_string(),
                ),
                replace(
                    &format!("/{key}/throttling/burstLimit"),
                    t.burst_limit.to_string(),
                ),
            ]
        })
        .collect()
}

/// The values an update writes: `None` ("no throttle at this level") becomes the
/// account's own limits, asked of AWS only when something is to be written that
/// way. AWS documents no other value for it, and every stage, method or route
/// throttle is bounded by the account's limits anyway, so writing them lifts the
/// guard's throttle without capping anything.
pub(crate) async fn resolve_unthrottled<'a>(
    operation: &'static str,
    stage: &TargetId,
    throttles: impl IntoIterator<Item = (&'a str, Option<Throttle>)>,
    client: &Client,
    pacer: &Pacer,
) -> PortResult<Vec<(&'a str, Throttle)>> {
    let throttles: Vec<(&str, Option<Throttle>)> = throttles.into_iter().collect();
    let account = if throttles.iter().any(|(_, t)| t.is_none()) {
        Some(account_throttle(client, pacer).await?)
    } else {
        None
    };
    throttles
        .into_iter()
        .map(|(key, t)| {
            t.or(account)
                .map(|t| (key, t))
                .ok_or_else(|| invalid(operation, stage.to_string(), "no account throttle to write"))
        })
        .collect()
}

/// The patch operations that set a usage plan's throttle and quota in one call.
pub fn plan_patch(throttle: Option<Throttle>, quota: Option<Quota>) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    match throttle {
        Some(t) => {
            ops.push(replace(
                "/throttle/rateLimit",
                t.rate_limit.normalize().to_string(),
            ));
            ops.push(replace("/throttle/burstLimit", t.burst_limit.to_string()));
        }
        None => ops.push(remove("/throttle")),
    }
    match quota {
        Some(q) => {
            ops.push(replace("/quota/limit", q.limit.to_string()));
            ops.push(replace(
                "/quota/period",
                match q.period {
                    QuotaPeriod::Day => "DAY",
                    QuotaPeriod::Week => "WEEK",
                    QuotaPeriod::Month => "MONTH",
                }
                .to_string(),
            ));
            ops.push(replace("/quota/offset", q.offset.to_string()));
        }
        None => ops.push(remove("/quota")),
    }
    ops
}

impl StageControl for RestAdapter {
    async fn set_stage_throttle(
        &self,
        stage: &TargetId,
        value: Option<Throttle>,
        overrides: &BTreeMap<String, Option<Throttle>>,
    ) -> PortResult<()> {
        let TargetId::RestStage(api, name) = stage else {
            return Err(PortError::new(
                "UpdateStage",
                stage.to_string(),
                dowguard_guard::FailureKind::Refused,
                "not a REST API stage",
            ));
        };
        let throttles = resolve_unthrottled(
            "UpdateStage",
            stage,
            std::iter::once((DEFAULT_METHOD, value)).chain(overrides.iter().map(|(k, t)| (k.as_str(), *t))),
            &self.client,
            &self.stage_pacer,
        )
        .await?;
        self.stage_pacer.wait().await;
        self.client
            .update_stage()
            .rest_api_id(api.as_str())
            .stage_name(name.as_str())
            .set_patch_operations(Some(stage_patch(&throttles)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("UpdateStage", stage.to_string(), e))
    }
}

impl UsagePlanControl for RestAdapter {
    async fn set_plan_limits(
        &self,
        plan: &UsagePlanId,
        throttle: Option<Throttle>,
        quota: Option<Quota>,
    ) -> PortResult<()> {
        if quota.is_some_and(|q| i32::try_from(q.limit).is_err()) {
            return Err(invalid(
                "UpdateUsagePlan",
                plan.as_str(),
                "quota limit out of range",
            ));
        }
        self.plan_pacer.wait().await;
        self.wait_for_plan_slot(plan).await?;
        // It also counts toward API Gateway's total.
        self.stage_pacer.wait().await;
        self.client
            .update_usage_plan()
            .usage_plan_id(plan.as_str())
            .set_patch_operations(Some(plan_patch(throttle, quota)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("UpdateUsagePlan", format!("usage-plan:{plan}"), e))
    }
}

/// What a usage plan key is: an API key (`CreateUsagePlanKey`'s `keyType`, whose
/// only valid value is `API_KEY`: "CreateUsagePlanKey", Amazon API Gateway API
/// Reference).
const API_KEY: &str = "API_KEY";

impl RestAdapter {
    /// Moves API key `key` from usage plan `from` to usage plan `to`: out of `from`
    /// with `DeleteUsagePlanKey` ("Deletes a usage plan key and remove the
    /// underlying API key from the associated usage plan"), then into `to` with
    /// `CreateUsagePlanKey` (`keyType` `API_KEY`), both in "Amazon API Gateway API
    /// Reference". A key already in `to` (a retried pass) only leaves `from` if it
    /// is still there; a key in neither plan (a pass cut off between the two
    /// calls) joins `to`. When the key cannot join `to` after it left `from`, it is
    /// put back in `from` and the failure is reported. Every call is paced with
    /// API Gateway's control-plane pacer.
    pub async fn move_api_key(&self, key: &str, from: &UsagePlanId, to: &UsagePlanId) -> PortResult<()> {
        let resource = |plan: &UsagePlanId| format!("usage-plan:{plan}/key:{key}");
        self.stage_pacer.wait().await;
        let already = absent(
            self.client
                .get_usage_plan_key()
                .usage_plan_id(to.as_str())
                .key_id(key)
                .send()
                .await
                .map_err(|e| port_error("GetUsagePlanKey", resource(to), e)),
        )?
        .is_some();
        self.stage_pacer.wait().await;
        let left = absent(
            self.client
                .delete_usage_plan_key()
                .usage_plan_id(from.as_str())
                .key_id(key)
                .send()
                .await
                .map_err(|e| port_error("DeleteUsagePlanKey", resource(from), e)),
        )?
        .is_some();
        if already {
            return Ok(());
        }
        let joined = self.add_plan_key(key, to).await;
        match joined {
            Ok(()) => Ok(()),
            Err(mut failed) if left => {
                let back = self.add_plan_key(key, from).await;
                failed.message = match back {
                    Ok(()) => format!("{}; the key was put back in usage plan {from}", failed.message),
                    Err(e) => format!(
                        "{}; putting the key back in usage plan {from} failed too ({e}): it is in neither plan",
                        failed.message
                    ),
                };
                Err(failed)
            }
            Err(failed) => Err(failed),
        }
    }

    /// `CreateUsagePlanKey`: adds API key `key` to usage plan `plan`.
    async fn add_plan_key(&self, key: &str, plan: &UsagePlanId) -> PortResult<()> {
        self.stage_pacer.wait().await;
        self.client
            .create_usage_plan_key()
            .usage_plan_id(plan.as_str())
            .key_id(key)
            .key_type(API_KEY)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("CreateUsagePlanKey", format!("usage-plan:{plan}/key:{key}"), e))
    }
}

/// The stages a usage plan covers.
fn plan_stages(api_stages: &[ApiStage]) -> Vec<(ApiId, StageName)> {
    api_stages
        .iter()
        .filter_map(|s| {
            Some((
                ApiId::parse(s.api_id()?).ok()?,
                StageName::parse(s.stage()?).ok()?,
            ))
        })
        .collect()
}

/// A usage plan as a target: its throttle, quota and own tags.
fn plan_target(
    id: UsagePlanId,
    throttle: Option<&ThrottleSettings>,
    quota: Option<&QuotaSettings>,
    tags: Option<&HashMap<String, String>>,
) -> Target {
    let throttle = throttle.and_then(|t| throttle_of(t.rate_limit(), t.burst_limit()));
    let quota = quota.and_then(|q| {
        let period = match q.period()? {
            QuotaPeriodType::Day => QuotaPeriod::Day,
            QuotaPeriodType::Week => QuotaPeriod::Week,
            QuotaPeriodType::Month => QuotaPeriod::Month,
            _ => return None,
        };
        Some(Quota {
            limit: u64::try_from(q.limit()).ok()?,
            period,
            offset: u32::try_from(q.offset()).unwrap_or(0),
        })
    });
    let tags: BTreeMap<String, String> = tags
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let guarded = tags_allow_guard(&tags);
    let mut target = Target::new(
        TargetId::UsagePlan(id),
        TargetSpec::UsagePlan,
        tags,
        Limits::UsagePlan { throttle, quota },
    );
    target.guarded = guarded;
    target
}

/// `Ok(None)` for a resource that does not exist, the error for any other failure.
fn absent<T>(result: PortResult<T>) -> PortResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind == FailureKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl RestAdapter {
    /// One REST API stage as it is now, with its API's CloudWatch `ApiName`
    /// (`GetRestApi`, `GetStage`, the account's throttle when the stage has method
    /// settings, and `GetUsagePlans` for the plans that include it); `None` when
    /// the API or the stage does not exist.
    pub async fn read_stage(&self, api: &ApiId, stage: &StageName) -> PortResult<Option<(Target, String)>> {
        let id = TargetId::RestStage(api.clone(), stage.clone());
        self.stage_pacer.wait().await;
        let Some(rest_api) = absent(
            self.client
                .get_rest_api()
                .rest_api_id(api.as_str())
                .send()
                .await
                .map_err(|e| port_error("GetRestApi", api.as_str(), e)),
        )?
        else {
            return Ok(None);
        };
        self.stage_pacer.wait().await;
        let Some(found) = absent(
            self.client
                .get_stage()
                .rest_api_id(api.as_str())
                .stage_name(stage.as_str())
                .send()
                .await
                .map_err(|e| port_error("GetStage", id.to_string(), e)),
        )?
        else {
            return Ok(None);
        };
        let settings = found.method_settings();
        let account = match settings {
            Some(m) if !m.is_empty() => Some(account_throttle(&self.client, &self.stage_pacer).await?),
            _ => None,
        };
        let mut tags: BTreeMap<String, String> = rest_api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if let Some(own) = found.tags() {
            tags.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let guarded = tags_allow_guard(&tags);
        let mut target = Target::new(
            id,
            TargetSpec::RestStage,
            tags,
            rest_stage_limits(settings, account.as_ref()),
        );
        target.guarded = guarded;
        for plan in self.usage_plans().await? {
            let Some(Ok(plan_id)) = plan.id().map(UsagePlanId::parse) else {
                continue;
            };
            if plan_stages(plan.api_stages())
                .iter()
                .any(|(a, s)| a == api && s == stage)
            {
                target.usage_plans.insert(plan_id);
            }
        }
        let name = metric_api_name(rest_api.name().unwrap_or_default(), api);
        Ok(Some((target, name)))
    }

    /// Every usage plan of the account, page by page (`GetUsagePlans`, paced).
    async fn usage_plans(&self) -> PortResult<Vec<aws_sdk_apigateway::types::UsagePlan>> {
        let mut plans = Vec::new();
        let mut position: Option<String> = None;
        loop {
            self.stage_pacer.wait().await;
            let page = self
                .client
                .get_usage_plans()
                .set_position(position.clone())
                .limit(500)
                .send()
                .await
                .map_err(|e| port_error("GetUsagePlans", "account", e))?;
            plans.extend(page.items().iter().cloned());
            position = page.position().map(str::to_string);
            if position.is_none() {
                return Ok(plans);
            }
        }
    }

    /// One usage plan as it is now (`GetUsagePlan`), with the stages it covers;
    /// `None` when it does not exist.
    pub async fn read_plan(
        &self,
        plan: &UsagePlanId,
    ) -> PortResult<Option<(Target, Vec<(ApiId, StageName)>)>> {
        self.stage_pacer.wait().await;
        let Some(found) = absent(
            self.client
                .get_usage_plan()
                .usage_plan_id(plan.as_str())
                .send()
                .await
                .map_err(|e| port_error("GetUsagePlan", format!("usage-plan:{plan}"), e)),
        )?
        else {
            return Ok(None);
        };
        Ok(Some((
            plan_target(plan.clone(), found.throttle(), found.quota(), found.tags()),
            plan_stages(found.api_stages()),
        )))
    }
}
