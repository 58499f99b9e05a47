//! The SAM template's IAM roles, checked against the code: the template is
//! transformed offline with aws-sam-translator (`dowguard_tests::template`), and
//! each function's role must allow exactly the actions `dowguard_runtime::roles`
//! lists from the adapters' SDK calls and the domain's action permissions: no
//! wildcard, nothing extra, nothing missing. Write actions must be scoped by
//! resource or tag condition. That list is documentation kept honest; the proof
//! that every call a function makes is allowed, resource and tag conditions
//! included, is `iam_observed.rs`, from the calls themselves.

use std::collections::BTreeSet;

use dowguard_tests::template::{role_id, statements, strings, translated};
use serde_json::Value;

type Error = Box<dyn std::error::Error>;

/// The managed policies SAM attaches: logs (AWSLambdaBasicExecutionRole) and
/// X-Ray (`Tracing: Active`). Neither grants a wildcard action.
const MANAGED: &[&str] = &[
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
];

/// The only actions AWS does not let a policy scope to a resource.
const UNSCOPABLE: &[&str] = &[
    "lambda:ListFunctions",
    "lambda:GetAccountSettings",
    "cloudwatch:GetMetricData",
    "tag:GetResources",
    "cloudtrail:DescribeTrails",
    // Lists the account's Contributor Insights rules; it names no rule and takes no
    // resource ("Actions, resources, and condition keys for Amazon CloudWatch").
    "cloudwatch:DescribeInsightRules",
];

/// A function's role: its allowed actions, managed policies, and any problem with
/// how write actions are scoped.
#[derive(Debug)]
struct Role {
    actions: BTreeSet<String>,
    managed: BTreeSet<String>,
    problems: Vec<String>,
}

fn role_of(template: &Value, function: &str) -> Result<Role, Error> {
    let role = &template["Resources"][role_id(template, function)?]["Properties"];
    let mut found = Vec::new();
    if let Some(policies) = role["Policies"].as_array() {
        for policy in policies {
            statements(&policy["PolicyDocument"]["Statement"], &mut found);
        }
    }
    let mut actions = BTreeSet::new();
    let mut problems = Vec::new();
    for s in &found {
        if s["Effect"] != "Allow" {
            continue;
        }
        let acts = strings(s.get("Action"));
        let everywhere = strings(s.get("Resource")).iter().any(|r| r == "*");
        for a in &acts {
            if a.contains('*') {
                problems.push(format!("wildcard action {a}"));
            }
            if everywhere && !UNSCOPABLE.contains(&a.as_str()) {
                problems.push(format!("{a} on Resource \"*\""));
            }
            let write = ["Put", "Delete", "Update", "PATCH", "DELETE", "POST"]
                .iter()
                .any(|w| a.contains(w))
                && ["lambda:", "apigateway:", "wafv2:"]
                    .iter()
                    .any(|p| a.starts_with(p));
            if write && s.get("Condition").is_none() {
                problems.push(format!("{a} without a tag condition"));
            }
        }
        actions.extend(acts);
    }
    Ok(Role {
        actions,
        managed: strings(role.get("ManagedPolicyArns")).into_iter().collect(),
        problems,
    })
}

/// Differences between a role and what its function needs, empty when exact.
fn mismatches(role: &Role, expected: &BTreeSet<&str>) -> Vec<String> {
    let mut out = role.problems.clone();
    for a in &role.actions {
        if !expected.contains(a.as_str()) {
            out.push(format!("extra action {a}"));
        }
    }
    for a in expected {
        if !role.actions.contains(*a) {
            out.push(format!("missing action {a}"));
        }
    }
    let managed: BTreeSet<String> = MANAGED.iter().map(|s| (*s).to_string()).collect();
    if role.managed != managed {
        out.push(format!("managed policies {:?}", role.managed));
    }
    out
}

#[test]
fn each_role_allows_exactly_the_actions_its_function_needs() -> Result<(), Error> {
    let template = translated()?;
    for (function, expected) in dowguard_runtime::roles::all() {
        let role = role_of(&template, function)?;
        let diff = mismatches(&role, &expected);
        assert!(diff.is_empty(), "{function}: {diff:?}");
        println!(
            "{function}: {}",
            role.actions.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

#[test]
fn the_role_check_fails_on_an_extra_a_missing_or_a_wildcard_permission() -> Result<(), Error> {
    let template = translated()?;
    let expected = dowguard_runtime::roles::evaluator();
    let exact = role_of(&template, "Evaluator")?;
    assert!(mismatches(&exact, &expected).is_empty());

    let mut extra = role_of(&template, "Evaluator")?;
    extra.actions.insert("lambda:InvokeFunction".into());
    assert_eq!(
        mismatches(&extra, &expected),
        vec!["extra action lambda:InvokeFunction"]
    );

    let mut missing = role_of(&template, "Evaluator")?;
    missing.actions.remove("cloudwatch:PutMetricAlarm");
    assert_eq!(
        mismatches(&missing, &expected),
        vec!["missing action cloudwatch:PutMetricAlarm"]
    );

    // A wildcard written into the template itself.
    let mut wild = template.clone();
    let role_id = role_id(&wild, "Evaluator")?.to_string();
    let policies = wild["Resources"][role_id.as_str()]["Properties"]["Policies"]
        .as_array_mut()
        .ok_or("no policies")?;
    policies.push(serde_json::json!({
        "PolicyName": "Oops",
        "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}
    }));
    let diff = mismatches(&role_of(&wild, "Evaluator")?, &expected);
    assert!(diff.contains(&"wildcard action lambda:*".to_string()), "{diff:?}");
    assert!(
        diff.contains(&"lambda:* on Resource \"*\"".to_string()),
        "{diff:?}"
    );
    assert!(diff.contains(&"extra action lambda:*".to_string()), "{diff:?}");
    Ok(())
}

#[test]
fn the_table_matches_the_key_schema_of_the_store() -> Result<(), Error> {
    let template = translated()?;
    let table = &template["Resources"]["GuardTable"]["Properties"];
    assert_eq!(
        table["KeySchema"],
        serde_json::json!([
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"}
        ])
    );
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        dowguard_adapters::dynamodb::TTL_ATTRIBUTE
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    Ok(())
}

#[test]
fn every_variable_the_functions_read_is_set_or_defaulted_in_the_template() -> Result<(), Error> {
    let template = translated()?;
    for function in ["Evaluator", "AlarmResponder", "Inventory"] {
        let vars = &template["Resources"][function]["Properties"]["Environment"]["Variables"];
        for name in dowguard_runtime::config::ALL_VARIABLES {
            let set_by_lambda = *name == "AWS_REGION";
            // Only the evaluator syncs alarms; the responder takes no scheduled event.
            let alarms_only = [
                dowguard_runtime::config::ALARMS,
                dowguard_runtime::config::SCHEDULE_MINUTES,
            ];
            let unused = (alarms_only.contains(name) && function != "Evaluator")
                || (*name == dowguard_runtime::config::SCHEDULE_RULE_ARN && function == "AlarmResponder");
            assert!(
                set_by_lambda || unused || vars.get(*name).is_some(),
                "{function} does not set {name}"
            );
        }
        // `true` is refused at start; `false` is the default without it.
        assert!(
            vars.get(dowguard_runtime::config::FREE_TIER).is_none(),
            "{function} sets the refused free-tier switch"
        );
    }
    Ok(())
}

/// A parameter's value: the one given, else the template's default. A `Ref` to a
/// parameter is a string, whatever its type, as CloudFormation gives it.
fn parameter(template: &Value, name: &str, given: &[(&str, &str)]) -> Option<Value> {
    given
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| Value::from(*v))
        .or_else(|| template["Parameters"][name].get("Default").cloned())
        .map(|v| match v {
            Value::Number(n) => Value::from(n.to_string()),
            other => other,
        })
}

/// Resolves `value` as CloudFormation would for the parameter values `given`:
/// `Ref` to a parameter, the conditions (`Fn::Equals`, `Fn::Not`, `Condition`),
/// `Fn::If`, and `Fn::Sub` of parameters (pseudo parameters stay as written).
/// `None` is `AWS::NoValue`: the property is absent.
fn resolve(template: &Value, value: &Value, given: &[(&str, &str)]) -> Option<Value> {
    let Value::Object(map) = value else {
        return Some(value.clone());
    };
    if let Some(Value::String(name)) = map.get("Ref") {
        return (name != "AWS::NoValue").then(|| parameter(template, name, given))?;
    }
    if let Some(Value::String(name)) = map.get("Condition") {
        return resolve(template, &template["Conditions"][name.as_str()], given);
    }
    if let Some(Value::Array(parts)) = map.get("Fn::Equals") {
        let [a, b] = parts.as_slice() else { return None };
        return Some(Value::Bool(
            resolve(template, a, given) == resolve(template, b, given),
        ));
    }
    if let Some(Value::Array(parts)) = map.get("Fn::And") {
        let all = parts
            .iter()
            .all(|c| resolve(template, c, given) == Some(Value::Bool(true)));
        return Some(Value::Bool(all));
    }
    if let Some(Value::Array(parts)) = map.get("Fn::Not") {
        let [c] = parts.as_slice() else { return None };
        return Some(Value::Bool(resolve(template, c, given)? != Value::Bool(true)));
    }
    if let Some(Value::String(text)) = map.get("Fn::Sub") {
        let mut out = text.clone();
        if let Some(Value::Object(parameters)) = template.get("Parameters") {
            for name in parameters.keys() {
                if let Some(Value::String(v)) = parameter(template, name, given) {
                    out = out.replace(&format!("${{{name}}}"), &v);
                }
            }
        }
        return Some(Value::from(out));
    }
    if let Some(Value::Array(parts)) = map.get("Fn::If") {
        let [Value::String(condition), then, otherwise] = parts.as_slice() else {
            return None;
        };
        let holds =
            resolve(template, &template["Conditions"][condition.as_str()], given) == Some(Value::Bool(true));
        return resolve(template, if holds { then } else { otherwise }, given);
    }
    Some(value.clone())
}

/// On an account whose concurrency limit is 10 or 50, a reservation that takes the
/// unreserved pool below its minimum fails the deployment: the reservation is off
/// unless the deployment turns it on.
#[test]
fn the_guards_own_concurrency_is_reserved_only_when_the_parameter_turns_it_on() -> Result<(), Error> {
    let template = translated()?;
    for (function, reserved) in [
        ("Evaluator", 1),
        ("AlarmResponder", 2),
        ("Inventory", 1),
        ("Widget", 2),
    ] {
        let property = &template["Resources"][function]["Properties"]["ReservedConcurrentExecutions"];
        assert_eq!(
            resolve(&template, property, &[]),
            None,
            "{function}: reserved by default"
        );
        assert_eq!(
            resolve(&template, property, &[("ReserveConcurrency", "false")]),
            None,
            "{function}"
        );
        assert_eq!(
            resolve(&template, property, &[("ReserveConcurrency", "true")]),
            Some(Value::from(reserved)),
            "{function}: not reserved with the parameter on"
        );
    }
    Ok(())
}

/// The evaluator pins scheduled events to the rule the template creates for it.
#[test]
fn the_evaluator_pins_the_schedule_rule_the_template_creates() -> Result<(), Error> {
    let template = translated()?;
    let rule = &template["Resources"]["EvaluatorTick"];
    assert_eq!(rule["Type"], "AWS::Events::Rule");
    let name = resolve(&template, &rule["Properties"]["Name"], &[]).ok_or("the rule has no name")?;
    assert_eq!(name, "dowguard-evaluator-schedule");
    let vars = &template["Resources"]["Evaluator"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars[dowguard_runtime::config::SCHEDULE_RULE_ARN]["Fn::Sub"],
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${ScheduleRuleName}"
    );
    Ok(())
}

/// The evaluator runs on the schedule its alarm sync reads: every allowed
/// `ScheduleMinutes` builds a valid rate expression ("Rate expressions reference",
/// Amazon EventBridge User Guide: the unit is singular for 1 and plural above)
/// and sets `DOWGUARD_SCHEDULE_MINUTES` to the same minutes, and every allowed
/// `Alarms` value is one the evaluator accepts.
#[test]
fn the_evaluator_runs_on_the_schedule_its_alarm_sync_reads() -> Result<(), Error> {
    use dowguard_domain::AlarmScope;
    use dowguard_runtime::config::{ACCOUNT_ID, ALARMS, Config, REGION, SCHEDULE_MINUTES, TABLE};
    let template = translated()?;
    let expression = &template["Resources"]["EvaluatorTick"]["Properties"]["ScheduleExpression"];
    let vars = &template["Resources"]["Evaluator"]["Properties"]["Environment"]["Variables"];
    let allowed = |name: &str| -> Vec<String> {
        template["Parameters"][name]["AllowedValues"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    };
    let config = |given: &[(&str, &str)]| {
        let var =
            |name: &str| resolve(&template, &vars[name], given).and_then(|v| v.as_str().map(str::to_string));
        Config::from_lookup(|name| match name {
            TABLE => Some("dowguard".to_string()),
            ACCOUNT_ID => Some("123456789012".to_string()),
            REGION => Some("us-east-1".to_string()),
            SCHEDULE_MINUTES | ALARMS => var(name),
            _ => None,
        })
    };
    assert_eq!(
        resolve(&template, expression, &[]),
        Some(Value::from("rate(1 minute)"))
    );
    let minutes = allowed("ScheduleMinutes");
    assert!(minutes.len() >= 3, "{minutes:?}");
    for m in &minutes {
        let given = [("ScheduleMinutes", m.as_str())];
        let rate = if m == "1" {
            "rate(1 minute)".to_string()
        } else {
            format!("rate({m} minutes)")
        };
        assert_eq!(resolve(&template, expression, &given), Some(Value::from(rate)));
        assert_eq!(config(&given)?.schedule_minutes.to_string(), *m);
    }
    let kinds: Vec<AlarmScope> = allowed("Alarms")
        .iter()
        .map(|a| config(&[("Alarms", a.as_str())]).map(|c| c.alarms))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        kinds,
        [AlarmScope::Needed, AlarmScope::EveryTarget, AlarmScope::None]
    );
    assert_eq!(config(&[])?.alarms, AlarmScope::Needed);
    Ok(())
}

/// The inventory function pins its reconciliation schedule to the rule the
/// template creates for it, and its change rule matches exactly the CloudTrail
/// events the function follows (`dowguard_runtime::change`): an event name the
/// rule forgot would never arrive, one the function does not know would be
/// refused.
#[test]
fn the_inventory_rules_are_its_schedule_and_exactly_the_change_events_it_follows() -> Result<(), Error> {
    use dowguard_runtime::change::{
        API_CALL_DETAIL_TYPE, APIGATEWAY_EVENTS, APIGATEWAY_SOURCE, LAMBDA_EVENTS, LAMBDA_SOURCE,
    };
    let template = translated()?;
    let schedule = &template["Resources"]["InventoryReconcile"];
    assert_eq!(schedule["Type"], "AWS::Events::Rule");
    assert_eq!(
        resolve(&template, &schedule["Properties"]["Name"], &[]).ok_or("the rule has no name")?,
        "dowguard-inventory-reconcile"
    );
    assert_eq!(schedule["Properties"]["ScheduleExpression"], "rate(5 minutes)");
    let vars = &template["Resources"]["Inventory"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        vars[dowguard_runtime::config::SCHEDULE_RULE_ARN]["Fn::Sub"],
        "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/${ReconcileRuleName}"
    );
    let pattern = &template["Resources"]["InventoryChanges"]["Properties"]["EventPattern"];
    assert_eq!(
        pattern["source"],
        serde_json::json!([LAMBDA_SOURCE.0, APIGATEWAY_SOURCE.0])
    );
    assert_eq!(pattern["detail-type"], serde_json::json!([API_CALL_DETAIL_TYPE]));
    assert_eq!(
        pattern["detail"]["eventSource"],
        serde_json::json!([LAMBDA_SOURCE.1, APIGATEWAY_SOURCE.1])
    );
    let names: BTreeSet<String> = strings(pattern["detail"].get("eventName")).into_iter().collect();
    let known: BTreeSet<String> = LAMBDA_EVENTS
        .iter()
        .chain(APIGATEWAY_EVENTS)
        .map(|n| (*n).to_string())
        .collect();
    assert_eq!(names, known);
    Ok(())
}

/// A CLI role of a member account: its actions, every statement's resource, and
/// problems (a wildcard action, a write in a role that must only read).
fn cli_role(template: &Value, id: &str, read_only: bool) -> Result<(BTreeSet<String>, Vec<String>), Error> {
    let role = &template["Resources"][id];
    let mut found = Vec::new();
    for policy in role["Properties"]["Policies"].as_array().ok_or("no policies")? {
        statements(&policy["PolicyDocument"]["Statement"], &mut found);
    }
    let mut actions = BTreeSet::new();
    let mut problems = Vec::new();
    for s in &found {
        for a in strings(s.get("Action")) {
            if a.contains('*') {
                problems.push(format!("wildcard action {a}"));
            }
            let write = [
                "Put", "Delete", "Update", "Create", "Batch", "Transact", "POST", "PATCH", "PUT", "DELETE",
            ]
            .iter()
            .any(|w| a.contains(w));
            if read_only && write {
                problems.push(format!("write action {a} in a read-only role"));
            }
            if a.starts_with("dynamodb:")
                && s["Resource"] != serde_json::json!({"Fn::GetAtt": ["GuardTable", "Arn"]})
            {
                problems.push(format!("{a} beyond the guard's table"));
            }
            actions.insert(a);
        }
    }
    if role
        .get("Properties")
        .and_then(|p| p.get("ManagedPolicyArns"))
        .is_some()
    {
        problems.push("managed policies".into());
    }
    Ok((actions, problems))
}

/// The read-only role allows exactly what `status`, `audit`, `guard-cost` and
/// `budgets list` call (the CLI's own test runs them through a proxy and checks each
/// call against the same list), the budget-admin role only the table writes of
/// `budgets set`; both trust only the management account, with the external id
/// ("Access to AWS accounts owned by third parties", IAM User Guide), and exist
/// only when both parameters are given.
#[test]
fn the_cli_roles_allow_exactly_their_commands_and_trust_only_the_management_account() -> Result<(), Error> {
    let template = translated()?;
    for (id, expected, read_only) in [
        ("ReadOnlyRole", dowguard_runtime::roles::cli_read_only(), true),
        (
            "BudgetAdminRole",
            dowguard_runtime::roles::cli_budget_admin(),
            false,
        ),
    ] {
        let (actions, problems) = cli_role(&template, id, read_only)?;
        assert!(problems.is_empty(), "{id}: {problems:?}");
        let expected: BTreeSet<String> = expected.iter().map(ToString::to_string).collect();
        assert_eq!(actions, expected, "{id}");
        let role = &template["Resources"][id];
        let condition = serde_json::json!({"Condition": role["Condition"]});
        assert_eq!(
            resolve(&template, &condition, &[]),
            Some(Value::Bool(false)),
            "{id} by default"
        );
        for given in [
            &[("ManagementAccountId", "111122223333")][..],
            &[("ExternalId", "x-1")][..],
        ] {
            assert_eq!(
                resolve(&template, &condition, given),
                Some(Value::Bool(false)),
                "{id} {given:?}"
            );
        }
        let both = [("ManagementAccountId", "111122223333"), ("ExternalId", "x-1")];
        assert_eq!(
            resolve(&template, &condition, &both),
            Some(Value::Bool(true)),
            "{id}"
        );
        let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"];
        assert_eq!(trust.as_array().map(Vec::len), Some(1), "{id}: {trust}");
        let statement = &trust[0];
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Action"], "sts:AssumeRole");
        assert_eq!(
            resolve(&template, &statement["Principal"]["AWS"], &both),
            Some(Value::from("arn:${AWS::Partition}:iam::111122223333:root")),
            "{id}"
        );
        assert_eq!(
            resolve(
                &template,
                &statement["Condition"]["StringEquals"]["sts:ExternalId"],
                &both
            ),
            Some(Value::from("x-1")),
            "{id}"
        );
        let name = resolve(&template, &role["Properties"]["RoleName"], &both);
        let prefix = if read_only {
            "dowguard-read-only-"
        } else {
            "dowguard-budget-admin-"
        };
        assert_eq!(
            name,
            Some(Value::from(format!("{prefix}${{AWS::Region}}"))),
            "{id}"
        );
    }
    // The check itself catches a write slipped into the read-only role.
    let mut wrong = template.clone();
    wrong["Resources"]["ReadOnlyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .ok_or("no statements")?
        .push(serde_json::json!({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["GuardTable", "Arn"]}}));
    let (_, problems) = cli_role(&wrong, "ReadOnlyRole", true)?;
    assert_eq!(
        problems,
        vec!["write action dynamodb:PutItem in a read-only role"]
    );
    Ok(())
}

/// A write tried through the read-only role is refused by its policy, as IAM
/// decides it: the role's statements, resolved for a member account, allow the
/// reads `status`, `audit`, `guard-cost` and `budgets list` make and refuse every
/// write those commands could be turned to (a budget or state written, a limit
/// changed, a notice sent). The local server does not enforce IAM, so the decision
/// is made by the tests' policy evaluator, the one that decides every observed call
/// in `iam_observed.rs`.
#[test]
fn a_write_tried_through_the_read_only_role_is_refused_by_its_policy() -> Result<(), Error> {
    use dowguard_tests::iam::operations::Request;
    use dowguard_tests::iam::policy::Policy;
    use dowguard_tests::template::Deployment;

    let template = translated()?;
    let mut member = Deployment::new(
        "444455556666",
        "eu-west-1",
        "dowguard-guard",
        "arn:aws:sns:eu-west-1:444455556666:dowguard-notices",
    );
    member
        .parameters
        .insert("ManagementAccountId".into(), "111122223333".into());
    member.parameters.insert("ExternalId".into(), "x-1".into());
    let mut resolved = Vec::new();
    for policy in template["Resources"]["ReadOnlyRole"]["Properties"]["Policies"]
        .as_array()
        .ok_or("the read-only role has policies")?
    {
        match member.resolve(&template, &policy["PolicyDocument"]["Statement"])? {
            Value::Array(items) => resolved.extend(items),
            one => resolved.push(one),
        }
    }
    let role = Policy::parse(&resolved)?;
    let table = "arn:aws:dynamodb:eu-west-1:444455556666:table/dowguard-guard";
    let function = "arn:aws:lambda:eu-west-1:444455556666:function:checkout";
    let stage = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3/stages/prod";
    let request = |action: &str, resource: &str| Request {
        action: action.to_string(),
        resource: resource.to_string(),
    };
    for (action, resource) in [
        ("dynamodb:PutItem", table),
        ("dynamodb:UpdateItem", table),
        ("dynamodb:DeleteItem", table),
        ("dynamodb:BatchWriteItem", table),
        ("lambda:PutFunctionConcurrency", function),
        ("lambda:DeleteFunctionConcurrency", function),
        ("apigateway:PATCH", stage),
        (
            "apigateway:POST",
            "arn:aws:apigateway:eu-west-1::/usageplans/p1/keys",
        ),
        (
            "sns:Publish",
            "arn:aws:sns:eu-west-1:444455556666:dowguard-notices",
        ),
        (
            "wafv2:UpdateIPSet",
            "arn:aws:wafv2:eu-west-1:444455556666:regional/ipset/blocked/a1",
        ),
    ] {
        let decision = role.decide(&request(action, resource), None);
        assert!(!decision.allowed(), "{action} on {resource}: {decision:?}");
    }
    for (action, resource) in [
        ("dynamodb:Query", table),
        ("lambda:GetFunctionConcurrency", function),
        ("apigateway:GET", stage),
        ("cloudwatch:GetMetricData", "*"),
    ] {
        let decision = role.decide(&request(action, resource), None);
        assert!(decision.allowed(), "{action} on {resource}: {decision:?}");
    }
    Ok(())
}

/// `WidgetWrites=false` takes every write (budgets, releases) away from the widget
/// function's role and tells the function so; the default keeps them.
#[test]
fn the_widgets_write_only_when_the_parameter_lets_them() -> Result<(), Error> {
    let template = translated()?;
    let role = &template["Resources"][role_id(&template, "Widget")?]["Properties"];
    let writes = |given: &[(&str, &str)]| -> Vec<String> {
        let mut found = Vec::new();
        for policy in role["Policies"].as_array().into_iter().flatten() {
            for statement in policy["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(resolved) = resolve(&template, statement, given) {
                    statements(&resolved, &mut found);
                }
            }
        }
        found
            .iter()
            .flat_map(|s| strings(s.get("Action")))
            .filter(|a| {
                !matches!(
                    a.as_str(),
                    "dynamodb:Query" | "cloudwatch:GetMetricData" | "kms:Decrypt" | "kms:GenerateDataKey"
                )
            })
            .collect()
    };
    for given in [&[][..], &[("WidgetWrites", "true")][..]] {
        let allowed = writes(given);
        for a in [
            "dynamodb:PutItem",
            "dynamodb:BatchWriteItem",
            "lambda:PutFunctionConcurrency",
            "apigateway:PATCH",
        ] {
            assert!(allowed.iter().any(|w| w == a), "{given:?}: no {a} in {allowed:?}");
        }
    }
    let read_only = writes(&[("WidgetWrites", "false")]);
    assert!(
        read_only.is_empty(),
        "a read-only deployment can still write: {read_only:?}"
    );
    let variable =
        &template["Resources"]["Widget"]["Properties"]["Environment"]["Variables"]["DOWGUARD_WIDGET_WRITES"];
    assert_eq!(
        resolve(&template, variable, &[("WidgetWrites", "false")]),
        Some(Value::from("false"))
    );
    Ok(())
}

/// `make org-package` copies each function's zip from where `cargo lambda build`
/// writes it, `target/lambda/<binary>/bootstrap.zip` (the template's
/// `BuildProperties.Binary`), beside the plain template; a missing zip is named and
/// fails the packaging.
#[test]
fn the_organization_package_takes_each_functions_zip_from_its_binarys_build_directory() -> Result<(), Error> {
    let root = dowguard_tests::template::root();
    let python = root.join(".venv-sam/bin/python");
    let work = std::env::temp_dir().join(format!("dowguard-org-package-{}", std::process::id()));
    let (zips, out) = (work.join("lambda"), work.join("org"));
    let template = translated()?;
    let mut binaries = Vec::new();
    for (_, resource) in template["Resources"].as_object().ok_or("resources")? {
        if let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() {
            binaries.push(binary.to_string());
        }
    }
    assert!(binaries.len() >= 4, "{binaries:?}");
    let package = |zip_dir: &std::path::Path| {
        std::process::Command::new(&python)
            .arg(root.join("infra/org_package.py"))
            .arg(&out)
            .arg(zip_dir)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
    };
    std::fs::create_dir_all(&zips)?;
    let missing = package(&zips)?;
    assert!(!missing.status.success(), "no zips yet, yet packaged");
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("missing (run `make build` first)"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    for binary in &binaries {
        std::fs::create_dir_all(zips.join(binary))?;
        std::fs::write(zips.join(binary).join("bootstrap.zip"), binary.as_bytes())?;
    }
    let done = package(&zips)?;
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    for binary in &binaries {
        let copied = out.join(format!("{}.zip", binary.trim_start_matches("dowguard-")));
        assert_eq!(std::fs::read(&copied)?, binary.as_bytes(), "{}", copied.display());
    }
    let member: Value = serde_json::from_slice(&std::fs::read(out.join("member.json"))?)?;
    assert!(member["Parameters"]["ArtifactBucketPrefix"].is_object());
    std::fs::remove_dir_all(&work)?;
    Ok(())
}
