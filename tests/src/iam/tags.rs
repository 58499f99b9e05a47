//! The tags IAM sees on a resource for `aws:ResourceTag`, from the tags each
//! resource carries itself, read from the local server at check time.
//!
//! "API Gateway resources that can be tagged" (Amazon API Gateway Developer
//! Guide): in the V1 (REST) API, child resources of a `RestApi`, its stages among
//! them, inherit the API's tags for attribute-based access control, and a tag set
//! on the stage itself wins over the inherited one; `GetTags` does not return
//! inherited tags. Usage plans carry their own tags. The page names no such
//! inheritance for the V2 API: an HTTP API stage has only its own tags. A usage
//! plan's tags are inherited by its `UsagePlanKey` resources (the same page); the
//! guard reads the plan's keys collection (`/usageplans/{id}/keys`, where
//! `CreateUsagePlanKey` posts) as the plan's child too.

use std::collections::BTreeMap;

use aws_config::SdkConfig;

use crate::fixtures::FixtureResult;
use crate::iam::policy::Tags;

/// Each resource's own tags, by ARN, as its service stores them (nothing inherited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnTags(pub BTreeMap<String, Tags>);

/// What kind of taggable resource an ARN names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Taggable<'a> {
    Function,
    Topic,
    RestApi(&'a str),
    RestStage(&'a str, &'a str),
    /// A REST API's other child resources (resources, methods, deployments...),
    /// which carry no tags of their own and inherit the API's.
    RestChild(&'a str),
    UsagePlan(&'a str),
    /// A usage plan's keys, or one of them: no tags of their own, the plan's
    /// inherited.
    UsagePlanKey(&'a str),
    HttpApi(&'a str),
    HttpStage(&'a str, &'a str),
}

fn taggable(arn: &str) -> Option<Taggable<'_>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, service, _, _, resource] = parts.as_slice() else {
        return None;
    };
    match *service {
        "lambda" if resource.starts_with("function:") => Some(Taggable::Function),
        "sns" => Some(Taggable::Topic),
        "apigateway" => {
            let segments: Vec<&str> = resource.trim_start_matches('/').split('/').collect();
            match segments.as_slice() {
                ["restapis", api] => Some(Taggable::RestApi(api)),
                ["restapis", api, "stages", stage] => Some(Taggable::RestStage(api, stage)),
                ["restapis", api, _, ..] => Some(Taggable::RestChild(api)),
                ["usageplans", plan] => Some(Taggable::UsagePlan(plan)),
                ["usageplans", plan, "keys", ..] => Some(Taggable::UsagePlanKey(plan)),
                ["apis", api] => Some(Taggable::HttpApi(api)),
                ["apis", api, "stages", stage] => Some(Taggable::HttpStage(api, stage)),
                _ => None,
            }
        }
        _ => None,
    }
}

fn usage_plan_arn(key_arn: &str, plan: &str) -> String {
    let prefix = key_arn.split("::").next().unwrap_or_default();
    format!("{prefix}::/usageplans/{plan}")
}

fn rest_api_arn(stage_arn: &str, api: &str) -> String {
    let prefix = stage_arn.split("::").next().unwrap_or_default();
    format!("{prefix}::/restapis/{api}")
}

impl OwnTags {
    /// Records `arn`'s own tags.
    pub fn insert(&mut self, arn: impl Into<String>, tags: Tags) {
        self.0.insert(arn.into(), tags);
    }

    /// The tags IAM evaluates `aws:ResourceTag` against for `arn`: its own, plus
    /// for a REST API's stage (or other child) the API's, the stage's own winning.
    /// `None` when nothing is known of the resource.
    pub fn effective(&self, arn: &str) -> Option<Tags> {
        let own = self.0.get(arn);
        match taggable(arn) {
            Some(Taggable::RestStage(api, _) | Taggable::RestChild(api)) => {
                let inherited = self.0.get(&rest_api_arn(arn, api));
                if own.is_none() && inherited.is_none() {
                    return None;
                }
                let mut tags = inherited.cloned().unwrap_or_default();
                tags.extend(own.cloned().unwrap_or_default());
                Some(tags)
            }
            Some(Taggable::UsagePlanKey(plan)) => self.0.get(&usage_plan_arn(arn, plan)).cloned(),
            _ => own.cloned(),
        }
    }

    /// Reads from the server the own tags of every resource in `arns` that can be
    /// tagged (and of each REST stage's API).
    ///
    /// # Errors
    ///
    /// Any SDK error.
    pub async fn load(sdk: &SdkConfig, arns: impl IntoIterator<Item = &str>) -> FixtureResult<Self> {
        let lambda = aws_sdk_lambda::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let rest = aws_sdk_apigateway::Client::new(sdk);
        let http = aws_sdk_apigatewayv2::Client::new(sdk);
        let mut own = OwnTags::default();
        let mut wanted: Vec<String> = Vec::new();
        for arn in arns {
            match taggable(arn) {
                Some(Taggable::RestStage(api, _) | Taggable::RestChild(api)) => {
                    wanted.push(rest_api_arn(arn, api));
                    wanted.push(arn.to_string());
                }
                Some(Taggable::UsagePlanKey(plan)) => wanted.push(usage_plan_arn(arn, plan)),
                Some(_) => wanted.push(arn.to_string()),
                None => {}
            }
        }
        wanted.sort();
        wanted.dedup();
        for arn in wanted {
            let collect = |m: Option<&std::collections::HashMap<String, String>>| -> Tags {
                m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default()
            };
            let tags = match taggable(&arn) {
                Some(Taggable::Function) => collect(lambda.list_tags().resource(&arn).send().await?.tags()),
                Some(Taggable::Topic) => sns
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await?
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
                Some(Taggable::RestApi(api)) => {
                    collect(rest.get_rest_api().rest_api_id(api).send().await?.tags())
                }
                Some(Taggable::RestStage(api, stage)) => collect(
                    rest.get_stage()
                        .rest_api_id(api)
                        .stage_name(stage)
                        .send()
                        .await?
                        .tags(),
                ),
                Some(Taggable::UsagePlan(plan)) => {
                    collect(rest.get_usage_plan().usage_plan_id(plan).send().await?.tags())
                }
                Some(Taggable::HttpApi(api)) => collect(http.get_api().api_id(api).send().await?.tags()),
                Some(Taggable::HttpStage(api, stage)) => collect(
                    http.get_stage()
                        .api_id(api)
                        .stage_name(stage)
                        .send()
                        .await?
                        .tags(),
                ),
                Some(Taggable::RestChild(_) | Taggable::UsagePlanKey(_)) | None => continue,
            };
            own.insert(arn, tags);
        }
        Ok(own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "arn:aws:apigateway:us-east-1::/restapis/a1";
    const STAGE: &str = "arn:aws:apigateway:us-east-1::/restapis/a1/stages/prod";
    const HTTP_API: &str = "arn:aws:apigateway:us-east-1::/apis/h1";
    const HTTP_STAGE: &str = "arn:aws:apigateway:us-east-1::/apis/h1/stages/prod";

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn a_rest_stage_inherits_its_apis_tags_and_its_own_win() {
        let mut own = OwnTags::default();
        own.insert(API, tags(&[("foo", "bar"), ("x", "y")]));
        own.insert(STAGE, tags(&[("foo", "bar2"), ("hello", "world")]));
        assert_eq!(
            own.effective(STAGE),
            Some(tags(&[("foo", "bar2"), ("hello", "world"), ("x", "y")]))
        );
    }

    #[test]
    fn a_usage_plan_key_has_its_plans_tags() {
        let mut own = OwnTags::default();
        own.insert(
            "arn:aws:apigateway:us-east-1::/usageplans/gold",
            tags(&[("dowguard-guarded", "true")]),
        );
        for key in [
            "arn:aws:apigateway:us-east-1::/usageplans/gold/keys/k1",
            "arn:aws:apigateway:us-east-1::/usageplans/gold/keys",
        ] {
            assert_eq!(
                own.effective(key),
                Some(tags(&[("dowguard-guarded", "true")])),
                "{key}"
            );
        }
        assert_eq!(
            own.effective("arn:aws:apigateway:us-east-1::/usageplans/other/keys/k1"),
            None
        );
    }

    #[test]
    fn an_http_stage_has_only_its_own_tags() {
        let mut own = OwnTags::default();
        own.insert(HTTP_API, tags(&[("dowguard-guarded", "true")]));
        own.insert(HTTP_STAGE, Tags::new());
        assert_eq!(own.effective(HTTP_STAGE), Some(Tags::new()));
        assert_eq!(
            own.effective(HTTP_API),
            Some(tags(&[("dowguard-guarded", "true")]))
        );
    }

    #[test]
    fn arns_are_sorted_into_taggable_kinds() {
        assert_eq!(taggable(STAGE), Some(Taggable::RestStage("a1", "prod")));
        assert_eq!(
            taggable("arn:aws:apigateway:us-east-1::/restapis/a1/stages"),
            Some(Taggable::RestChild("a1"))
        );
        assert_eq!(taggable("arn:aws:apigateway:us-east-1::/restapis"), None);
        assert_eq!(
            taggable("arn:aws:apigateway:us-east-1::/usageplans/p1"),
            Some(Taggable::UsagePlan("p1"))
        );
        assert_eq!(taggable(HTTP_STAGE), Some(Taggable::HttpStage("h1", "prod")));
        assert_eq!(
            taggable("arn:aws:lambda:us-east-1:123456789012:function:checkout"),
            Some(Taggable::Function)
        );
        assert_eq!(taggable("arn:aws:dynamodb:us-east-1:123456789012:table/t"), None);
        assert_eq!(taggable("*"), None);
    }
}
