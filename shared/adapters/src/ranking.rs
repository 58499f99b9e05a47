//! The account as the guard's [`CallerRanking`]: which REST API stages get a
//! Contributor Insights rule ([`crate::insights`]), and, when a pass asks, each
//! stage's ranking with the levers it offers.
//!
//! A rule is kept only where it can lead to an action: the stage's access log
//! names the caller (see [`insights::rankable`]) **and** a lever exists for that
//! kind of caller:
//!
//! - addresses: a web ACL is attached to the stage and one of its `Block` rules
//!   references an IP set ([`crate::waf::WafAdapter::blocking_ip_set`]);
//! - API keys: the deployment names a quarantine usage plan and the stage is in
//!   one of the account's usage plans (its keys can be moved).
//!
//! Every other stage is guarded whole, and costs nothing in rules. HTTP API
//! stages have neither lever ("Choose between REST APIs and HTTP APIs"): they are
//! never ranked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use dowguard_domain::source::{Attribution, Levers, StageSources};
use dowguard_domain::{ApiId, StageName, Target, TargetId, UsagePlanId};
use dowguard_guard::ports::{CallerRanking, RankingRules};
use dowguard_guard::{FailureKind, PortResult};

use crate::account::AwsAccount;
use crate::insights::{self, CallerKind, InsightRules, WantedRule};

/// What the deployment lets the guard rank with.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// The rules.
    pub rules: InsightRules,
    /// Whether ranking is on; off, every rule under the prefix is deleted at the
    /// next sync and no stage is ranked.
    pub enabled: bool,
    /// The usage plan a quarantined key is moved to, if the deployment has one.
    pub quarantine_plan: Option<UsagePlanId>,
    /// The Region, for the stage ARNs WAF takes.
    pub region: String,
}

/// A REST API stage's ARN as WAF takes it ("GetWebACLForResource", AWS WAFV2 API
/// Reference: `arn:partition:apigateway:region::/restapis/api-id/stages/stage-name`).
pub fn stage_arn(region: &str, api: &ApiId, stage: &StageName) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!("arn:{partition}:apigateway:{region}::/restapis/{api}/stages/{stage}")
}

impl AwsAccount {
    /// The levers of `stage`: the quarantine plan with each key of the stage's
    /// other plans, and the IP set its web ACL blocks.
    async fn levers(
        &self,
        ranking: &Ranking,
        target: &Target,
        api: &ApiId,
        stage: &StageName,
    ) -> PortResult<Levers> {
        let mut levers = Levers::default();
        if let Some(quarantine) = &ranking.quarantine_plan {
            for plan in target.usage_plans.iter().filter(|p| *p != quarantine) {
                for key in self.rest.plan_keys(plan).await? {
                    levers.key_plans.entry(key).or_insert_with(|| plan.clone());
                }
            }
            if !levers.key_plans.is_empty() {
                levers.quarantine_plan = Some(quarantine.clone());
            }
        }
        levers.ip_set = self
            .waf
            .blocking_ip_set(&stage_arn(&ranking.region, api, stage))
            .await?;
        Ok(levers)
    }

    /// The kinds of caller a lever can act on, given what the stage offers.
    fn acting_kinds(ranking: &Ranking, target: &Target, has_ip_set: bool) -> Vec<CallerKind> {
        let mut kinds = Vec::new();
        if has_ip_set {
            kinds.push(CallerKind::Address);
        }
        if ranking
            .quarantine_plan
            .as_ref()
            .is_some_and(|q| target.usage_plans.iter().any(|p| p != q))
        {
            kinds.push(CallerKind::ApiKey);
        }
        kinds
    }

    /// The rules one stage needs, or why it needs none.
    async fn stage_rules(
        &self,
        ranking: &Ranking,
        target: &Target,
        log: &crate::apigateway::StageLog,
    ) -> PortResult<Result<Vec<WantedRule>, String>> {
        let TargetId::RestStage(api, stage) = &target.id else {
            return Ok(Err("not a REST API stage".into()));
        };
        let rankable = match insights::rankable(log.destination.as_deref(), log.format.as_deref()) {
            Ok(r) => r,
            Err(why) => return Ok(Err(why.to_string())),
        };
        let has_ip_set = log.web_acl.is_some()
            && self
                .waf
                .blocking_ip_set(&stage_arn(&ranking.region, api, stage))
                .await?
                .is_some();
        let kinds = Self::acting_kinds(ranking, target, has_ip_set);
        let rules: Vec<WantedRule> = insights::wanted_rules(api.as_str(), stage.as_str(), &rankable)
            .into_iter()
            .filter(|r| kinds.contains(&r.kind))
            .collect();
        if rules.is_empty() {
            return Ok(Err(
                "no lever for the callers its log names: attach a web ACL whose Block rule references an IP set, \
                 or put the stage in a usage plan and give the deployment a quarantine plan"
                    .into(),
            ));
        }
        Ok(Ok(rules))
    }
}

impl AwsAccount {
    /// How this account ranks callers, if it does.
    pub fn ranking(&self) -> Option<&Ranking> {
        self.ranking.as_ref()
    }

    /// The ranking rules `stages` need (see the module's rule), and the stages that
    /// need none with why; none at all when the deployment does not rank callers.
    pub async fn wanted_rankings(
        &self,
        stages: &[Target],
    ) -> PortResult<(Vec<WantedRule>, Vec<(TargetId, String)>)> {
        match self.ranking.as_ref() {
            Some(ranking) => self.wanted_rankings_with(ranking, stages).await,
            None => Ok((Vec::new(), Vec::new())),
        }
    }

    /// [`AwsAccount::wanted_rankings`] as `ranking` would keep them (the CLI
    /// prices a deployment's settings with it).
    pub async fn wanted_rankings_with(
        &self,
        ranking: &Ranking,
        stages: &[Target],
    ) -> PortResult<(Vec<WantedRule>, Vec<(TargetId, String)>)> {
        let mut wanted = Vec::new();
        let mut unrankable = Vec::new();
        if !ranking.enabled {
            return Ok((wanted, unrankable));
        }
        for (api, targets) in by_api(stages) {
            for log in self.rest.stage_logs(&api).await? {
                let Some(target) = targets.get(&log.name) else {
                    continue;
                };
                match self.stage_rules(ranking, target, &log).await? {
                    Ok(rules) => wanted.extend(rules),
                    Err(why) => unrankable.push((target.id.clone(), why)),
                }
            }
        }
        Ok((wanted, unrankable))
    }
}

/// REST API stages grouped by API, each with its target.
fn by_api(stages: &[Target]) -> BTreeMap<ApiId, BTreeMap<StageName, &Target>> {
    let mut out: BTreeMap<ApiId, BTreeMap<StageName, &Target>> = BTreeMap::new();
    for target in stages {
        if let TargetId::RestStage(api, stage) = &target.id {
            out.entry(api.clone()).or_default().insert(stage.clone(), target);
        }
    }
    out
}

impl CallerRanking for AwsAccount {
    async fn sync_rankings(&self, stages: &[Target]) -> PortResult<RankingRules> {
        let Some(ranking) = &self.ranking else {
            return Ok(RankingRules::default());
        };
        let (wanted, unrankable) = if ranking.enabled {
            self.wanted_rankings(stages).await?
        } else {
            (Vec::new(), Vec::new())
        };
        let plan = ranking.rules.sync(&wanted).await?;
        Ok(RankingRules {
            kept: wanted.len(),
            written: plan.put.len(),
            deleted: plan.delete.len(),
            unrankable,
        })
    }

    async fn rank(
        &self,
        stages: &[Target],
        now: DateTime<Utc>,
        window_minutes: i64,
    ) -> PortResult<Attribution> {
        let mut attribution = Attribution::default();
        let Some(ranking) = self.ranking.as_ref().filter(|r| r.enabled) else {
            return Ok(attribution);
        };
        for target in stages {
            let TargetId::RestStage(api, stage) = &target.id else {
                continue;
            };
            let levers = self.levers(ranking, target, api, stage).await?;
            let mut rankings: Vec<StageSources> = Vec::new();
            for kind in Self::acting_kinds(ranking, target, levers.ip_set.is_some()) {
                let rule = insights::rule_name(api.as_str(), stage.as_str(), kind);
                match ranking.rules.report(&rule, kind, now, window_minutes).await {
                    Ok(sources) => rankings.push(sources),
                    // No rule yet (the hourly sync has not made it): not ranked.
                    Err(e) if e.kind == FailureKind::NotFound => {
                        tracing::info!(rule, "no ranking rule yet; the stage is guarded whole");
                    }
                    Err(e) => return Err(e),
                }
            }
            if let Some(sources) = StageSources::sharpest(rankings) {
                attribution.stages.insert(target.id.clone(), (sources, levers));
            }
        }
        Ok(attribution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_arn_is_the_form_waf_takes_in_each_partition() {
        let api = ApiId::parse("a1b2c3").unwrap_or_else(|e| panic!("{e}"));
        let stage = StageName::parse("prod").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            stage_arn("eu-west-1", &api, &stage),
            "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3/stages/prod"
        );
        assert!(stage_arn("cn-north-1", &api, &stage).starts_with("arn:aws-cn:"));
        assert!(stage_arn("us-gov-west-1", &api, &stage).starts_with("arn:aws-us-gov:"));
    }
}
