//! The IAM actions behind every AWS call the adapters make, grouped by the
//! capability that makes them. The SAM template's roles are checked against
//! these groups (see `dowguard_runtime::roles`), and a test here reads the adapter
//! sources so that a new SDK call without an IAM action in [`OPERATIONS`] fails the
//! build.

/// Every SDK operation the adapters call, as `(service, operation, IAM actions)`.
/// `TransactWriteItems` is authorised per item, so it lists the item actions.
pub const OPERATIONS: &[(&str, &str, &[&str])] = &[
    ("lambda", "list_functions", &["lambda:ListFunctions"]),
    ("lambda", "get_function", &["lambda:GetFunction"]),
    ("lambda", "list_tags", &["lambda:ListTags"]),
    (
        "lambda",
        "get_function_concurrency",
        &["lambda:GetFunctionConcurrency"],
    ),
    (
        "lambda",
        "get_function_event_invoke_config",
        &["lambda:GetFunctionEventInvokeConfig"],
    ),
    ("lambda", "get_account_settings", &["lambda:GetAccountSettings"]),
    (
        "lambda",
        "get_function_url_config",
        &["lambda:GetFunctionUrlConfig"],
    ),
    (
        "lambda",
        "put_function_concurrency",
        &["lambda:PutFunctionConcurrency"],
    ),
    (
        "lambda",
        "delete_function_concurrency",
        &["lambda:DeleteFunctionConcurrency"],
    ),
    (
        "lambda",
        "put_function_event_invoke_config",
        &["lambda:PutFunctionEventInvokeConfig"],
    ),
    (
        "lambda",
        "delete_function_event_invoke_config",
        &["lambda:DeleteFunctionEventInvokeConfig"],
    ),
    ("apigateway", "get_account", &["apigateway:GET"]),
    ("apigateway", "get_rest_apis", &["apigateway:GET"]),
    ("apigateway", "get_stages", &["apigateway:GET"]),
    ("apigateway", "get_usage_plans", &["apigateway:GET"]),
    ("apigateway", "get_resources", &["apigateway:GET"]),
    ("apigateway", "get_rest_api", &["apigateway:GET"]),
    ("apigateway", "get_stage", &["apigateway:GET"]),
    ("apigateway", "get_usage_plan", &["apigateway:GET"]),
    ("apigateway", "update_stage", &["apigateway:PATCH"]),
    ("apigateway", "update_usage_plan", &["apigateway:PATCH"]),
    ("apigateway", "get_usage_plan_key", &["apigateway:GET"]),
    ("apigateway", "get_usage_plan_keys", &["apigateway:GET"]),
    ("apigateway", "delete_usage_plan_key", &["apigateway:DELETE"]),
    ("apigateway", "create_usage_plan_key", &["apigateway:POST"]),
    ("apigatewayv2", "get_apis", &["apigateway:GET"]),
    ("apigatewayv2", "get_api", &["apigateway:GET"]),
    ("apigatewayv2", "get_stages", &["apigateway:GET"]),
    ("apigatewayv2", "get_stage", &["apigateway:GET"]),
    ("apigatewayv2", "get_routes", &["apigateway:GET"]),
    ("apigatewayv2", "update_stage", &["apigateway:PATCH"]),
    ("cloudwatch", "get_metric_data", &["cloudwatch:GetMetricData"]),
    ("alarms", "describe_alarms", &["cloudwatch:DescribeAlarms"]),
    ("alarms", "put_metric_alarm", &["cloudwatch:PutMetricAlarm"]),
    ("alarms", "delete_alarms", &["cloudwatch:DeleteAlarms"]),
    (
        "insights",
        "describe_insight_rules",
        &["cloudwatch:DescribeInsightRules"],
    ),
    ("insights", "put_insight_rule", &["cloudwatch:PutInsightRule"]),
    (
        "insights",
        "delete_insight_rules",
        &["cloudwatch:DeleteInsightRules"],
    ),
    (
        "insights",
        "get_insight_rule_report",
        &["cloudwatch:GetInsightRuleReport"],
    ),
    ("dynamodb", "query", &["dynamodb:Query"]),
    ("dynamodb", "get_item", &["dynamodb:GetItem"]),
    ("dynamodb", "put_item", &["dynamodb:PutItem"]),
    ("dynamodb", "delete_item", &["dynamodb:DeleteItem"]),
    ("dynamodb", "batch_write_item", &["dynamodb:BatchWriteItem"]),
    (
        "dynamodb",
        "transact_write_items",
        &["dynamodb:PutItem", "dynamodb:DeleteItem"],
    ),
    ("dynamodb", "create_table", &["dynamodb:CreateTable"]),
    ("dynamodb", "update_time_to_live", &["dynamodb:UpdateTimeToLive"]),
    ("lease", "put_item", &["dynamodb:PutItem"]),
    ("lease", "update_item", &["dynamodb:UpdateItem"]),
    ("sns", "publish", &["sns:Publish"]),
    ("tagging", "get_resources", &["tag:GetResources"]),
    ("trail", "describe_trails", &["cloudtrail:DescribeTrails"]),
    ("trail", "get_trail_status", &["cloudtrail:GetTrailStatus"]),
    ("trail", "get_event_selectors", &["cloudtrail:GetEventSelectors"]),
    ("waf", "get_ip_set", &["wafv2:GetIPSet"]),
    (
        "waf",
        "get_web_acl_for_resource",
        &["wafv2:GetWebACLForResource", "wafv2:GetWebACL"],
    ),
    ("waf", "update_ip_set", &["wafv2:UpdateIPSet"]),
];

/// Discovery of every target with its tags and current limits
/// (`AwsAccount::discover`): functions, REST stages and usage plans, HTTP stages,
/// and the account's own API Gateway throttle limits (`GetAccount`).
pub const DISCOVERY: &[&str] = &[
    "lambda:ListFunctions",
    "lambda:ListTags",
    "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionEventInvokeConfig",
    "apigateway:GET",
];

/// Keeping the inventory ([`crate::account::AwsAccount`] as the guard's
/// `InventorySource`): the functions carrying a tag (`tag:GetResources`), one
/// function read whole (`GetFunction` with its tags, its reservation, its async
/// config), one REST or HTTP API stage or usage plan (`apigateway:GET`), and the
/// API Gateway listing.
pub const INVENTORY: &[&str] = &[
    "tag:GetResources",
    "lambda:GetFunction",
    "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionEventInvokeConfig",
    "apigateway:GET",
];

/// Reading a target back after a change whose outcome is unknown, or before
/// setting limits the inventory says have drifted (a pass's
/// `InventorySource::read_target`).
pub const READ_BACK: &[&str] = &[
    "lambda:GetFunction",
    "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionEventInvokeConfig",
    "apigateway:GET",
];

/// The exposure audit's function URL check (`dowguard audit`, the CLI only):
/// `GetFunctionUrlConfig` on each function.
pub const FUNCTION_URLS: &[&str] = &["lambda:GetFunctionUrlConfig"];

/// The trail check ([`crate::trail::TrailAdapter::status`]).
pub const TRAIL: &[&str] = &[
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
];

/// The inventory's entries in the guard's table: read (`Query`), written
/// (conditional `PutItem`), removed (conditional `DeleteItem`).
pub const INVENTORY_TABLE: &[&str] = &["dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"];

/// Invocation metrics (`GetMetricData`).
pub const METRICS: &[&str] = &["cloudwatch:GetMetricData"];

/// The account's concurrency figures (`GetAccountSettings`).
pub const ACCOUNT_CONCURRENCY: &[&str] = &["lambda:GetAccountSettings"];

/// What one evaluation pass needs of the guard's table: budgets and states read
/// (`Query`), states written (`PutItem`), a state whose conditional write lost read
/// back to tell a lost race from a refused restore point (`GetItem`, in
/// `DynamoStore::load_one`), audit records appended (`BatchWriteItem`).
pub const GUARD_TABLE: &[&str] = &[
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
];

/// What the guard's processes agree through in its table
/// ([`crate::lease::TableLeases`]): the evaluator's lease is taken with a
/// conditional `PutItem` and given back with a conditional `UpdateItem`; the
/// deployment-wide pass counter is an `UpdateItem` (`ADD` below a cap); the
/// account-wide `UpdateUsagePlan` slot is a conditional `PutItem`.
pub const LEASES: &[&str] = &["dynamodb:PutItem", "dynamodb:UpdateItem"];

/// Alarm sync ([`crate::alarms::CloudWatchAlarms::sync`]).
pub const ALARM_SYNC: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
];

/// The CLI's read-only role in a member account (`ReadOnlyRole` in the template):
/// exactly what `status`, `audit`, `guard-cost` and `budgets list` call there —
/// the guard's table read (`Query`, `GetItem`), discovery, the audit's function
/// URL check, the account's concurrency, the metrics, and the web ACLs
/// `guard-cost` reads to count the ranking rules. No write.
pub const CLI_READ_ONLY: &[&str] = &[
    "dynamodb:Query",
    "dynamodb:GetItem",
    "lambda:ListFunctions",
    "lambda:ListTags",
    "lambda:GetFunctionConcurrency",
    "lambda:GetFunctionEventInvokeConfig",
    "lambda:GetFunctionUrlConfig",
    "lambda:GetAccountSettings",
    "apigateway:GET",
    "cloudwatch:GetMetricData",
    "wafv2:GetWebACLForResource",
    "wafv2:GetWebACL",
];

/// The CLI's budget-admin role in a member account (`BudgetAdminRole`): what
/// `budgets set` needs of the guard's table — the budgets read (`Query`) and the
/// budget with its history written in one transaction (`TransactWriteItems`, two
/// `Put`s, authorised as `PutItem`).
pub const CLI_BUDGET_ADMIN: &[&str] = &["dynamodb:Query", "dynamodb:PutItem"];

/// Ranking the callers of a stage a pass tightens ([`crate::ranking`]): the
/// report of its rule (`GetInsightRuleReport`), the keys of its plans
/// (`GetUsagePlanKeys`) and the IP set its web ACL blocks
/// (`GetWebACLForResource`, which also checks `wafv2:GetWebACL` on the web ACL
/// it finds: "GetWebACLForResource", AWS WAFV2 API Reference). Per "Actions,
/// resources, and condition keys for Amazon CloudWatch" (Service Authorization
/// Reference), `GetInsightRuleReport` acts on the `insight-rule` resource, so the
/// roles scope it to `insight-rule/dowguard-callers-*`.
pub const RANKING: &[&str] = &[
    "cloudwatch:GetInsightRuleReport",
    "apigateway:GET",
    "wafv2:GetWebACLForResource",
    "wafv2:GetWebACL",
];

/// Keeping the ranking rules (the evaluator, hourly: [`crate::insights::InsightRules::sync`]):
/// `DescribeInsightRules` (no resource: `*`), `PutInsightRule` and
/// `DeleteInsightRules` (on `insight-rule/dowguard-callers-*`), with the stages'
/// access log settings (`GetStages`) and web ACLs read.
pub const RANKING_RULES: &[&str] = &[
    "cloudwatch:DescribeInsightRules",
    "cloudwatch:PutInsightRule",
    "cloudwatch:DeleteInsightRules",
    "apigateway:GET",
    "wafv2:GetWebACLForResource",
    "wafv2:GetWebACL",
];

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &[(&str, &str)] = &[
        ("lambda", include_str!("lambda.rs")),
        ("apigateway", include_str!("apigateway.rs")),
        ("apigatewayv2", include_str!("apigatewayv2.rs")),
        ("cloudwatch", include_str!("cloudwatch.rs")),
        ("alarms", include_str!("alarms.rs")),
        ("insights", include_str!("insights.rs")),
        ("dynamodb", include_str!("dynamodb.rs")),
        ("lease", include_str!("lease.rs")),
        ("sns", include_str!("sns.rs")),
        ("tagging", include_str!("tagging.rs")),
        ("trail", include_str!("trail.rs")),
        ("waf", include_str!("waf.rs")),
    ];

    /// `client.op()` or `client` then `.op()` on the next line.
    fn calls(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        let lines: Vec<&str> = source.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0].ends_with("client")
                && let Some(op) = pair[1].strip_prefix('.').and_then(|r| r.strip_suffix("()"))
                && op.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                out.push(op.to_string());
            }
        }
        for line in &lines {
            if let Some((_, rest)) = line.split_once("client.") {
                let op: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if rest[op.len()..].starts_with("()") && !op.is_empty() {
                    out.push(op);
                }
            }
        }
        out
    }

    #[test]
    fn every_sdk_call_of_the_adapters_has_its_iam_actions_listed() {
        let mut seen = 0;
        for (service, source) in SOURCES {
            for op in calls(source) {
                seen += 1;
                assert!(
                    OPERATIONS.iter().any(|(s, o, _)| s == service && *o == op),
                    "{service}: the SDK call `{op}` has no IAM action in permissions::OPERATIONS; \
                     add it, and to the role(s) that make it"
                );
            }
        }
        assert!(
            seen >= 20,
            "the scan found only {seen} calls: the pattern is broken"
        );
    }

    #[test]
    fn every_group_action_belongs_to_a_listed_operation() {
        for action in DISCOVERY
            .iter()
            .chain(INVENTORY)
            .chain(READ_BACK)
            .chain(TRAIL)
            .chain(INVENTORY_TABLE)
            .chain(METRICS)
            .chain(ACCOUNT_CONCURRENCY)
            .chain(GUARD_TABLE)
            .chain(LEASES)
            .chain(ALARM_SYNC)
            .chain(RANKING)
            .chain(RANKING_RULES)
            .chain(dowguard_domain::ALL_PERMISSIONS)
        {
            assert!(
                OPERATIONS.iter().any(|(_, _, a)| a.contains(action)),
                "{action} is granted but no adapter call needs it"
            );
        }
    }

    #[test]
    fn the_scan_sees_calls_written_either_way() {
        let src = "self.client.publish().send()\n  .client\n  .get_item()\n let x = client\n .query()\n";
        assert_eq!(calls(src), vec!["get_item", "query", "publish"]);
    }
}
