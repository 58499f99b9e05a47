//! The exact IAM actions each function's role needs, built from the adapters'
//! per-capability groups ([`dowguard_adapters::permissions`]) and the domain's
//! action permissions ([`dowguard_domain::ALL_PERMISSIONS`]). The template test
//! compares the roles SAM generates with these sets, so a wildcard, an extra or a
//! missing action fails the build.

use std::collections::BTreeSet;

use dowguard_adapters::permissions::{
    ACCOUNT_CONCURRENCY, ALARM_SYNC, GUARD_TABLE, INVENTORY, INVENTORY_TABLE, LEASES, METRICS, RANKING,
    RANKING_RULES, READ_BACK, TRAIL,
};
use dowguard_domain::{ALL_PERMISSIONS, SOURCE_PERMISSIONS};

/// What the functions need from the template's own plumbing: the on-failure
/// destination queue (`sqs:SendMessage`) and, when the deployment brings its own
/// KMS key for the table, the key's use (`kms:Decrypt`, `kms:GenerateDataKey`).
pub const PLATFORM: &[&str] = &["sqs:SendMessage", "kms:Decrypt", "kms:GenerateDataKey"];

fn set(groups: &[&[&'static str]]) -> BTreeSet<&'static str> {
    groups.iter().flat_map(|g| g.iter().copied()).collect()
}

/// The evaluator: its lease and the pass cap, a full pass from the inventory
/// (metrics, account concurrency, the table, every action, the usage-plan slot, a
/// target read back after a change whose outcome is unknown) plus the alarm sync.
/// It never lists the account. It ranks the callers of the stages it tightens,
/// and keeps the ranking rules once an hour.
pub fn evaluator() -> BTreeSet<&'static str> {
    set(&[
        LEASES,
        READ_BACK,
        METRICS,
        ACCOUNT_CONCURRENCY,
        GUARD_TABLE,
        ALL_PERMISSIONS,
        ALARM_SYNC,
        RANKING,
        RANKING_RULES,
        PLATFORM,
    ])
}

/// The alarm responder: the pass cap, then a pass over the alarmed targets (with
/// the usage-plan slot), ranking the callers of the stages it tightens; it never
/// touches alarms or ranking rules and never lists the account.
pub fn alarm_responder() -> BTreeSet<&'static str> {
    set(&[
        LEASES,
        READ_BACK,
        METRICS,
        ACCOUNT_CONCURRENCY,
        GUARD_TABLE,
        ALL_PERMISSIONS,
        RANKING,
        PLATFORM,
    ])
}

/// The inventory function: its lease, the inventory's reads (tagged functions,
/// one target at a time, the API Gateway listing), the trail check, the
/// inventory's entries and the states in the table, and, when someone else
/// changed a limit the guard holds, the guard's limit set again, audited and told
/// (every action's permission but the targeted levels', which only a pass
/// decides: the inventory sets limits again, never a held source).
pub fn inventory() -> BTreeSet<&'static str> {
    let mut actions = set(&[
        LEASES,
        INVENTORY,
        TRAIL,
        INVENTORY_TABLE,
        GUARD_TABLE,
        ALL_PERMISSIONS,
        PLATFORM,
    ]);
    for a in SOURCE_PERMISSIONS {
        actions.remove(a);
    }
    actions
}

/// The CLI's read-only role of a member account (`ReadOnlyRole`).
pub fn cli_read_only() -> BTreeSet<&'static str> {
    set(&[dowguard_adapters::permissions::CLI_READ_ONLY])
}

/// The CLI's budget-admin role of a member account (`BudgetAdminRole`).
pub fn cli_budget_admin() -> BTreeSet<&'static str> {
    set(&[dowguard_adapters::permissions::CLI_BUDGET_ADMIN])
}

/// The widget function's reads of the guard's table: budgets, states, the
/// inventory, the audit trail and the budgets' history, each a `Query`.
pub const WIDGET_READS: &[&str] = &["dynamodb:Query"];

/// What the console writes (only with `WidgetWrites=true`): a budget and its
/// history entry in one `TransactWriteItems` (authorised per item as `PutItem`);
/// a release as `dowguard release` makes it: the state read (`GetItem`) and stored
/// (`PutItem`), the changes audited (`BatchWriteItem`), and a usage plan's key
/// read before it is moved back (`apigateway:GET`).
pub const WIDGET_WRITES: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
    "apigateway:GET",
];

/// The table's own KMS key, when the deployment brings one.
pub const TABLE_KEY: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// The widget function: the table read, the metrics of the budgets' spend, and,
/// with writes on, a budget written and a held target released (every action's
/// permission: a release puts back limits and frees held callers). It lists
/// nothing; the console invokes it synchronously (no failure queue).
pub fn widget() -> BTreeSet<&'static str> {
    set(&[WIDGET_READS, WIDGET_WRITES, METRICS, TABLE_KEY, ALL_PERMISSIONS])
}

/// The guard's own functions (every one but the widget function), by logical id.
pub fn guard() -> Vec<(&'static str, BTreeSet<&'static str>)> {
    vec![
        ("Evaluator", evaluator()),
        ("AlarmResponder", alarm_responder()),
        ("Inventory", inventory()),
    ]
}

/// Every function of the template with its role's actions, by logical id.
pub fn all() -> Vec<(&'static str, BTreeSet<&'static str>)> {
    let mut all = guard();
    all.push(("Widget", widget()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_role_has_a_wildcard_and_only_the_evaluator_manages_alarms() {
        for (name, actions) in all() {
            assert!(actions.iter().all(|a| !a.contains('*')), "{name}");
        }
        for (name, actions) in guard() {
            for a in ALL_PERMISSIONS {
                let passes_only = SOURCE_PERMISSIONS.contains(a);
                if passes_only && name == "Inventory" {
                    assert!(!actions.contains(a), "{name} never holds a source, yet has {a}");
                } else {
                    assert!(actions.contains(a), "{name} lacks {a}");
                }
            }
        }
        assert!(evaluator().contains("cloudwatch:PutMetricAlarm"));
        for (name, actions) in [("evaluator", evaluator()), ("responder", alarm_responder())] {
            assert!(
                !actions.contains("lambda:ListFunctions") && !actions.contains("lambda:ListTags"),
                "{name} reads the inventory and never lists the account"
            );
        }
        assert!(!inventory().contains("cloudwatch:PutMetricAlarm"));
        assert!(!alarm_responder().contains("cloudwatch:PutMetricAlarm"));
        assert!(!alarm_responder().contains("cloudwatch:DeleteAlarms"));
        assert!(!alarm_responder().contains("cloudwatch:PutInsightRule"));
        assert!(!inventory().contains("cloudwatch:GetInsightRuleReport"));
        let widget = widget();
        assert!(
            !widget.contains("lambda:ListFunctions") && !widget.contains("cloudwatch:PutMetricAlarm"),
            "the widget function lists nothing and keeps no alarm: {widget:?}"
        );
        for (name, actions) in guard() {
            assert!(
                actions.contains("dynamodb:UpdateItem"),
                "{name}: the pass counter needs UpdateItem"
            );
        }
    }
}
