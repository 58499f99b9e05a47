//! The Resource Groups Tagging API: which functions carry a tag, a hundred a call,
//! without asking Lambda about each function.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::types::TagFilter;
use dowguard_domain::{FunctionName, TargetId};
use dowguard_guard::PortResult;

use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// The resource type of Lambda functions in `ResourceTypeFilters`
/// (`service:resourceType`, "GetResources", Resource Groups Tagging API reference).
pub const LAMBDA_FUNCTION: &str = "lambda:function";

/// The most resources one `GetResources` page holds: "You can specify a minimum of
/// 1 and a maximum value of 100" (`ResourcesPerPage`, "GetResources").
pub const RESOURCES_PER_PAGE: i32 = 100;

/// The most values one tag filter may carry: "each key can include up to 20
/// values" (`TagFilters`, "GetResources").
pub const VALUES_PER_FILTER: usize = 20;

/// `GetResources` is paced on its own: "Rate of calling the GetResources API
/// operation: Maximum of 15 calls per second" (Tag Editor user guide, "Service
/// quotas"); each process takes its role's share of it.
pub const GET_RESOURCES_PER_SECOND: u32 = 15;

/// The Resource Groups Tagging API through the SDK.
#[derive(Debug)]
pub struct TaggingAdapter {
    client: Client,
    pacer: Pacer,
}

impl TaggingAdapter {
    /// An adapter pacing `GetResources` to `per_second`.
    pub fn new(client: Client, per_second: u32) -> Self {
        TaggingAdapter {
            client,
            pacer: Pacer::per_second(per_second),
        }
    }

    /// Every function carrying any of `tags`. Tag filters on different keys must
    /// all match, values of one key are alternatives ("GetResources", `TagFilters`),
    /// so each key is asked for on its own and the answers are joined.
    pub async fn functions_tagged(&self, tags: &[(String, String)]) -> PortResult<Vec<FunctionName>> {
        let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (key, value) in tags {
            by_key.entry(key).or_default().push(value);
        }
        let mut found = BTreeSet::new();
        for (key, values) in by_key {
            for chunk in values.chunks(VALUES_PER_FILTER) {
                let filter = TagFilter::builder()
                    .key(key)
                    .set_values(Some(chunk.iter().map(|v| (*v).to_string()).collect()))
                    .build();
                let mut token: Option<String> = None;
                loop {
                    self.pacer.wait().await;
                    let page = self
                        .client
                        .get_resources()
                        .resource_type_filters(LAMBDA_FUNCTION)
                        .tag_filters(filter.clone())
                        .resources_per_page(RESOURCES_PER_PAGE)
                        .set_pagination_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| port_error("GetResources", format!("tag {key}"), e))?;
                    for mapping in page.resource_tag_mapping_list() {
                        let Some(arn) = mapping.resource_arn() else {
                            continue;
                        };
                        match TargetId::parse(arn) {
                            Ok(TargetId::Function(name)) => {
                                found.insert(name);
                            }
                            _ => {
                                return Err(invalid(
                                    "GetResources",
                                    arn,
                                    "not the ARN of an unqualified Lambda function",
                                ));
                            }
                        }
                    }
                    // An empty token ends the listing, as a missing one does.
                    token = page
                        .pagination_token()
                        .filter(|t| !t.is_empty())
                        .map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(found.into_iter().collect())
    }
}
