//! Amazon DynamoDB: budgets (optimistic locking and history), guard states with
//! restore points, and the audit trail, in one table. Every write is conditional or
//! transactional; docs/table-design.md lists the items and access patterns.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put, PutRequest,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use dowguard_domain::{Budget, BudgetId, BudgetSpec, GuardState, Phase, RestorePoint, TargetId};
use dowguard_guard::inventory::{Entry, Inventory, Meta, slice_of};
use dowguard_guard::ports::{
    AuditLog, BudgetChange, BudgetStore, InventoryStore, Listed, StateStore, UnreadableItem,
};
use dowguard_guard::{AuditRecord, FailureKind, PortError, PortResult, Versioned};

use crate::error::{invalid, port_error};

const PK: &str = "pk";
const SK: &str = "sk";
const BUDGETS: &str = "BUDGETS";
const STATES: &str = "STATES";
/// The inventory's partition: one item per target and the inventory's own record.
pub const INVENTORY: &str = "INVENTORY";
/// The sort key of the inventory's own record.
const INVENTORY_META: &str = "META";
/// Attempts at writing a batch of audit records whose items DynamoDB left unprocessed.
pub const AUDIT_ATTEMPTS: u32 = 5;
/// The attribute DynamoDB's TTL reads on audit items.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The guard's table through the SDK.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    audit_retention: Duration,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<u64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn budget_key(id: &BudgetId) -> String {
    format!("B#{id}")
}

fn state_key(target: &TargetId) -> String {
    format!("S#{target}")
}

fn entry_key(target: &TargetId) -> String {
    format!("I#{target}")
}

/// Creates the guard's table as the SAM template declares it: string keys `pk` and
/// `sk`, on-demand billing, server-side encryption, TTL on `expires_at`.
pub async fn create_table(client: &Client, table: &str) -> PortResult<()> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| invalid("CreateTable", table, e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| invalid("CreateTable", table, e.to_string()))
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attribute(PK)?)
        .attribute_definitions(attribute(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
        .map_err(|e| port_error("CreateTable", table, e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(|e| invalid("UpdateTimeToLive", table, e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| port_error("UpdateTimeToLive", table, e))?;
    Ok(())
}

impl DynamoStore {
    /// A store on `table`, keeping audit records for `audit_retention`.
    pub fn new(client: Client, table: impl Into<String>, audit_retention: Duration) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            audit_retention,
        }
    }

    async fn query_all(
        &self,
        operation: &'static str,
        partition: &str,
    ) -> PortResult<Vec<HashMap<String, AttributeValue>>> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(partition))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error(operation, format!("{} ({partition})", self.table), e))?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        Ok(items)
    }

    async fn budget_version(&self, id: &BudgetId) -> PortResult<Option<u64>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(BUDGETS))
            .key(SK, s(budget_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", format!("budget {id}"), e))?;
        Ok(out.item().and_then(|i| get_n(i, "version")))
    }

    fn history_put(
        &self,
        id: &BudgetId,
        version: u64,
        actor: &str,
        at: DateTime<Utc>,
        spec: Option<&str>,
    ) -> PortResult<Put> {
        let mut item = HashMap::from([
            (PK.to_string(), s(format!("BUDGET#{id}"))),
            (
                SK.to_string(),
                s(format!(
                    "H#{}#{version:012}",
                    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
                )),
            ),
            ("version".to_string(), n(version)),
            ("actor".to_string(), s(actor)),
            ("at".to_string(), s(at.to_rfc3339())),
        ]);
        match spec {
            Some(spec) => {
                item.insert("spec".into(), s(spec));
            }
            None => {
                item.insert("deleted".into(), AttributeValue::Bool(true));
            }
        }
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(|e| invalid("TransactWriteItems", format!("budget {id}"), e.to_string()))
    }

    async fn conflict(&self, id: &BudgetId, err: PortError, expected: Option<u64>) -> PortError {
        if err.kind != FailureKind::Conflict {
            return err;
        }
        let now_at = self.budget_version(id).await.ok().flatten();
        let message = match (now_at, expected) {
            (Some(v), None) => {
                format!("budget {id} already exists (version {v}); edit it instead of creating it")
            }
            (Some(v), Some(e)) => format!(
                "budget {id} was changed by someone else: it is at version {v}, your change was made from version {e}. Read it again and retry"
            ),
            (None, _) => format!("budget {id} no longer exists"),
        };
        PortError::new(
            err.operation,
            format!("budget {id}"),
            FailureKind::Conflict,
            message,
        )
    }
}

fn parse_budget(item: &HashMap<String, AttributeValue>) -> PortResult<Versioned<Budget>> {
    let spec = get_s(item, "spec").ok_or_else(|| invalid("Query", "budgets", "budget item without spec"))?;
    let spec: BudgetSpec = serde_json::from_str(spec)
        .map_err(|e| invalid("Query", "budgets", format!("stored budget unreadable: {e}")))?;
    let id = spec.id.clone();
    let value = Budget::parse(spec).map_err(|e| {
        invalid(
            "Query",
            format!("budget {id}"),
            format!("stored budget no longer valid: {e}"),
        )
    })?;
    Ok(Versioned {
        value,
        version: get_n(item, "version").unwrap_or(0),
    })
}

/// The key of a stored item, for reports: `PARTITION/SORT`.
fn item_key(partition: &str, item: &HashMap<String, AttributeValue>) -> String {
    format!("{partition}/{}", get_s(item, SK).unwrap_or("(no sort key)"))
}

impl BudgetStore for DynamoStore {
    /// Every budget; an item that cannot be read (a field missing, a spec that no
    /// longer parses or validates) is reported, never skipped and never fatal.
    async fn list_budgets(&self) -> PortResult<Listed<Vec<Versioned<Budget>>>> {
        let mut listed: Listed<Vec<Versioned<Budget>>> = Listed::default();
        for item in self.query_all("Query", BUDGETS).await? {
            match parse_budget(&item) {
                Ok(budget) => listed.items.push(budget),
                Err(e) => listed.unreadable.push(UnreadableItem {
                    key: item_key(BUDGETS, &item),
                    target: None,
                    why: e.message,
                }),
            }
        }
        Ok(listed)
    }

    async fn put_budget(
        &self,
        budget: &Budget,
        expected: Option<u64>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<u64> {
        let id = &budget.id;
        let spec = serde_json::to_string(&BudgetSpec::from(budget.clone()))
            .map_err(|e| invalid("PutBudget", format!("budget {id}"), e.to_string()))?;
        let version = expected.unwrap_or(0) + 1;
        let mut current = Put::builder()
            .table_name(&self.table)
            .item(PK, s(BUDGETS))
            .item(SK, s(budget_key(id)))
            .item("spec", s(spec.clone()))
            .item("version", n(version))
            .item("actor", s(actor))
            .item("updated_at", s(at.to_rfc3339()));
        current = match expected {
            None => current
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(v) => current
                .condition_expression("#version = :expected")
                .expression_attribute_values(":expected", n(v))
                .expression_attribute_names("#version", "version"),
        };
        let current = current
            .build()
            .map_err(|e| invalid("TransactWriteItems", format!("budget {id}"), e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(current).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.history_put(id, version, actor, at, Some(&spec))?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(version),
            Err(e) => Err(self
                .conflict(
                    id,
                    port_error("TransactWriteItems", format!("budget {id}"), e),
                    expected,
                )
                .await),
        }
    }

    async fn delete_budget(
        &self,
        id: &BudgetId,
        expected: u64,
        actor: &str,
        at: DateTime<Utc>,
    ) -> PortResult<()> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(PK, s(BUDGETS))
            .key(SK, s(budget_key(id)))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .build()
            .map_err(|e| invalid("TransactWriteItems", format!("budget {id}"), e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.history_put(id, expected + 1, actor, at, None)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .conflict(
                    id,
                    port_error("TransactWriteItems", format!("budget {id}"), e),
                    Some(expected),
                )
                .await),
        }
    }

    async fn budget_history(&self, id: &BudgetId) -> PortResult<Vec<BudgetChange>> {
        let items = self.query_all("Query", &format!("BUDGET#{id}")).await?;
        items
            .iter()
            .map(|item| {
                let at = get_s(item, "at")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(|| invalid("Query", format!("budget {id}"), "history item without time"))?;
                let budget = match get_s(item, "spec") {
                    Some(spec) => {
                        let spec: BudgetSpec = serde_json::from_str(spec)
                            .map_err(|e| invalid("Query", format!("budget {id}"), e.to_string()))?;
                        Some(
                            Budget::parse(spec)
                                .map_err(|e| invalid("Query", format!("budget {id}"), e.to_string()))?,
                        )
                    }
                    None => None,
                };
                Ok(BudgetChange {
                    version: get_n(item, "version").unwrap_or(0),
                    at,
                    actor: get_s(item, "actor").unwrap_or_default().to_string(),
                    budget,
                })
            })
            .collect()
    }
}

impl StateStore for DynamoStore {
    /// Every state; an item that cannot be read (no target in its key, no state,
    /// a state that no longer parses) is reported with its target where the key
    /// still names one, never skipped and never fatal.
    async fn load_states(&self) -> PortResult<Listed<HashMap<TargetId, GuardState>>> {
        let items = self.query_all("Query", STATES).await?;
        let mut listed = Listed {
            items: HashMap::with_capacity(items.len()),
            unreadable: Vec::new(),
        };
        for item in items {
            let target = get_s(&item, SK).and_then(|k| TargetId::parse(k.trim_start_matches("S#")).ok());
            let read = match (target, get_s(&item, "state")) {
                (None, _) => Err((None, "its key names no target".to_string())),
                (Some(t), None) => Err((Some(t), "it has no state".to_string())),
                (Some(t), Some(json)) => match serde_json::from_str::<GuardState>(json) {
                    Ok(state) => Ok((t, state)),
                    Err(e) => Err((Some(t), format!("stored state unreadable: {e}"))),
                },
            };
            match read {
                Ok((target, mut state)) => {
                    state.version = get_n(&item, "version").unwrap_or(0);
                    listed.items.insert(target, state);
                }
                Err((target, why)) => listed.unreadable.push(UnreadableItem {
                    key: item_key(STATES, &item),
                    target,
                    why,
                }),
            }
        }
        Ok(listed)
    }

    async fn save_state(&self, target: &TargetId, state: &GuardState) -> PortResult<u64> {
        let resource = format!("state of {target}");
        let json = serde_json::to_string(state).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
        let version = state.version + 1;
        let held = state.phase != Phase::Normal && state.restore_point.is_some();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(STATES))
            .item(SK, s(state_key(target)))
            .item("state", s(json))
            .item("version", n(version))
            .item("held", AttributeValue::Bool(held));
        let mut condition = if state.version == 0 {
            put = put.expression_attribute_names("#pk", PK);
            "attribute_not_exists(#pk)".to_string()
        } else {
            put = put
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(state.version));
            "#version = :expected".to_string()
        };
        // A held target's restore point is never replaced.
        match &state.restore_point {
            Some(rp) => {
                let rp =
                    serde_json::to_string(rp).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
                put = put
                    .item("rp", s(rp.clone()))
                    .expression_attribute_values(":rp", s(rp))
                    .expression_attribute_values(":no", AttributeValue::Bool(false));
                condition.push_str(" AND (attribute_not_exists(rp) OR held = :no OR rp = :rp)");
            }
            None if state.phase != Phase::Normal => {
                put = put.expression_attribute_values(":no", AttributeValue::Bool(false));
                condition.push_str(" AND (attribute_not_exists(rp) OR held = :no)");
            }
            None => {}
        }
        match put.condition_expression(condition).send().await {
            Ok(_) => Ok(version),
            Err(e) => {
                let err = port_error("PutItem", &resource, e);
                if err.kind != FailureKind::Conflict {
                    return Err(err);
                }
                // Tell a lost race from a refused restore-point replacement.
                let stored = self.load_one(target).await?;
                if stored.as_ref().map_or(0, |s| s.version) == state.version {
                    Err(PortError::new(
                        "PutItem",
                        resource,
                        FailureKind::Refused,
                        "the restore point of a held target cannot be replaced",
                    ))
                } else {
                    Err(PortError::new(
                        "PutItem",
                        resource,
                        FailureKind::Conflict,
                        "another pass changed this state first",
                    ))
                }
            }
        }
    }

    /// Replaces a held target's restore point, and only if the stored item is still
    /// at the version read **and** still carries the restore point `previous`: the
    /// one sanctioned replacement (someone else changed a held limit).
    async fn replace_original(
        &self,
        target: &TargetId,
        state: &GuardState,
        previous: &RestorePoint,
    ) -> PortResult<u64> {
        let resource = format!("state of {target}");
        let json = serde_json::to_string(state).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
        let old =
            serde_json::to_string(previous).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
        let rp = state
            .restore_point
            .as_ref()
            .ok_or_else(|| invalid("PutItem", &resource, "a replaced original needs a restore point"))?;
        let rp = serde_json::to_string(rp).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
        let version = state.version + 1;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(STATES))
            .item(SK, s(state_key(target)))
            .item("state", s(json))
            .item("version", n(version))
            .item("held", AttributeValue::Bool(state.phase != Phase::Normal))
            .item("rp", s(rp))
            .condition_expression("#version = :expected AND rp = :old")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(state.version))
            .expression_attribute_values(":old", s(old))
            .send()
            .await
            .map(|_| version)
            .map_err(|e| port_error("PutItem", resource, e))
    }
}

impl DynamoStore {
    /// A conditional `PutItem` of `item` on the inventory's partition: the item
    /// must not exist (`expected` 0) or be at version `expected`.
    async fn put_versioned(
        &self,
        sort: String,
        mut item: HashMap<String, AttributeValue>,
        expected: u64,
        resource: &str,
    ) -> PortResult<u64> {
        let version = expected + 1;
        item.insert(PK.to_string(), s(INVENTORY));
        item.insert(SK.to_string(), s(sort));
        item.insert("version".to_string(), n(version));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put = if expected == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(expected))
        };
        put.send()
            .await
            .map(|_| version)
            .map_err(|e| port_error("PutItem", resource.to_string(), e))
    }
}

impl InventoryStore for DynamoStore {
    /// The inventory's partition (`Query pk = INVENTORY`, consistent): the entries
    /// and the inventory's own record. An item that cannot be read is reported.
    async fn load_inventory(&self) -> PortResult<Inventory> {
        let mut inventory = Inventory::default();
        for item in self.query_all("Query", INVENTORY).await? {
            let sort = get_s(&item, SK).unwrap_or_default();
            let version = get_n(&item, "version").unwrap_or(0);
            if sort == INVENTORY_META {
                match get_s(&item, "meta").map(serde_json::from_str::<Meta>) {
                    Some(Ok(meta)) => inventory.meta = Versioned { value: meta, version },
                    Some(Err(e)) => inventory.unreadable.push(UnreadableItem {
                        key: item_key(INVENTORY, &item),
                        target: None,
                        why: format!("the inventory's record is unreadable: {e}"),
                    }),
                    None => inventory.unreadable.push(UnreadableItem {
                        key: item_key(INVENTORY, &item),
                        target: None,
                        why: "the inventory's record has no body".into(),
                    }),
                }
                continue;
            }
            let target = sort.strip_prefix("I#").and_then(|t| TargetId::parse(t).ok());
            match (target, get_s(&item, "entry").map(serde_json::from_str::<Entry>)) {
                (Some(id), Some(Ok(entry))) if entry.target.id == id => {
                    inventory.entries.insert(
                        id,
                        Versioned {
                            value: entry,
                            version,
                        },
                    );
                }
                (target, read) => inventory.unreadable.push(UnreadableItem {
                    key: item_key(INVENTORY, &item),
                    target,
                    why: match read {
                        Some(Err(e)) => format!("inventory entry unreadable: {e}"),
                        Some(Ok(_)) => "the entry names another target than its key".into(),
                        None => "inventory entry without a body".into(),
                    },
                }),
            }
        }
        Ok(inventory)
    }

    async fn put_entry(&self, entry: &Entry, expected: u64) -> PortResult<u64> {
        let id = &entry.target.id;
        let resource = format!("inventory entry of {id}");
        let json = serde_json::to_string(entry).map_err(|e| invalid("PutItem", &resource, e.to_string()))?;
        let item = HashMap::from([
            ("entry".to_string(), s(json)),
            ("target".to_string(), s(id.to_string())),
            ("slice".to_string(), n(slice_of(id))),
            (
                "confirmed_at".to_string(),
                s(entry.confirmed.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ),
        ]);
        self.put_versioned(entry_key(id), item, expected, &resource).await
    }

    async fn remove_entry(&self, target: &TargetId, expected: u64) -> PortResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(INVENTORY))
            .key(SK, s(entry_key(target)))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("DeleteItem", format!("inventory entry of {target}"), e))
    }

    async fn put_meta(&self, meta: &Meta, expected: u64) -> PortResult<u64> {
        let json = serde_json::to_string(meta)
            .map_err(|e| invalid("PutItem", "the inventory's record", e.to_string()))?;
        let item = HashMap::from([("meta".to_string(), s(json))]);
        self.put_versioned(
            INVENTORY_META.to_string(),
            item,
            expected,
            "the inventory's record",
        )
        .await
    }
}

impl DynamoStore {
    /// One stored state.
    pub async fn load_one(&self, target: &TargetId) -> PortResult<Option<GuardState>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(STATES))
            .key(SK, s(state_key(target)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", format!("state of {target}"), e))?;
        let Some(item) = out.item() else { return Ok(None) };
        let json = get_s(item, "state").ok_or_else(|| invalid("GetItem", target.to_string(), "no state"))?;
        let mut state: GuardState =
            serde_json::from_str(json).map_err(|e| invalid("GetItem", target.to_string(), e.to_string()))?;
        state.version = get_n(item, "version").unwrap_or(0);
        Ok(Some(state))
    }

    /// Audit records of one UTC day, oldest first.
    pub async fn audit_of_day(&self, day: chrono::NaiveDate) -> PortResult<Vec<AuditRecord>> {
        let items = self.query_all("Query", &format!("AUDIT#{day}")).await?;
        items
            .iter()
            .filter_map(|i| get_s(i, "record"))
            .map(|json| serde_json::from_str(json).map_err(|e| invalid("Query", "audit", e.to_string())))
            .collect()
    }
}

/// A 64-bit digest of a record's JSON (SipHash with fixed keys: stable for a build).
fn digest(json: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    hasher.finish()
}

impl AuditLog for DynamoStore {
    async fn record(&self, records: &[AuditRecord]) -> PortResult<()> {
        let mut requests = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            let json = serde_json::to_string(record)
                .map_err(|e| invalid("BatchWriteItem", "audit", e.to_string()))?;
            let expires = (record.at + self.audit_retention).timestamp();
            let item = HashMap::from([
                (PK.to_string(), s(format!("AUDIT#{}", record.at.date_naive()))),
                (
                    SK.to_string(),
                    // Two passes at the same minute (the evaluator and the alarm
                    // responder) write records for the same target at the same time:
                    // the record's own digest keeps them apart, and a retried write of
                    // the same record lands on the same key instead of doubling it.
                    s(format!(
                        "{}#{}#{i:04}#{:016x}",
                        record.at.to_rfc3339_opts(SecondsFormat::Nanos, true),
                        record.target,
                        digest(&json)
                    )),
                ),
                ("target".to_string(), s(record.target.to_string())),
                ("record".to_string(), s(json)),
                (TTL_ATTRIBUTE.to_string(), n(expires)),
            ]);
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| invalid("BatchWriteItem", "audit", e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..AUDIT_ATTEMPTS {
                if attempt > 0 {
                    // Back off before a retry, never after the last attempt.
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| port_error("BatchWriteItem", format!("{} audit", self.table), e))?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(PortError::new(
                    "BatchWriteItem",
                    format!("{} audit", self.table),
                    FailureKind::Throttled,
                    format!(
                        "{} audit records still unprocessed after {AUDIT_ATTEMPTS} attempts",
                        pending.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}
