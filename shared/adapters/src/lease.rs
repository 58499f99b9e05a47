//! Coordination between the guard's processes through its own table: every
//! evaluator and alarm-responder instance, and the CLI, agree through conditional
//! writes on a few small items under the partition `LEASE`
//! (docs/table-design.md):
//!
//! | item (`sk`) | what it does | call |
//! |---|---|---|
//! | `LEASE#<name>` | a lease: one holder at a time until its expiry; a crashed holder's lease expires by itself | [`TableLeases::acquire`], [`TableLeases::release`] |
//! | `PASSES#<epoch minute>` | how many passes the deployment ran in that minute, capped | [`TableLeases::count_pass`] |
//! | `NOTICES#<epoch hour>` | how many notices the deployment published in that hour, capped | [`TableLeases::count_notice`] |
//! | `ONCE#<key>` | a notice sent once a day for its key (a failure every pass retries), until its expiry | [`TableLeases::first_time`] |
//! | `SLOT#<name>` | the earliest time the next call of a paced operation may start, account-wide | [`TableLeases::take_slot`] |
//!
//! A condition that fails returns the item as it was
//! (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, DynamoDB API reference
//! "PutItem" and "UpdateItem"), so a refusal says until when without another call.
//! Times are epoch milliseconds from the callers' clocks, which Lambda keeps in step
//! with Amazon Time Sync.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use dowguard_domain::epoch_minute;
use dowguard_guard::ports::{Held, Leases};
use dowguard_guard::{FailureKind, PortError, PortResult};

use crate::dynamodb::TTL_ATTRIBUTE;
use crate::error::port_error;

const PK: &str = "pk";
const SK: &str = "sk";
/// The partition of every item this module writes.
pub const PARTITION: &str = "LEASE";
/// How long a counter is kept after its minute (or hour) before DynamoDB's TTL
/// removes it.
const COUNTER_KEPT_SECONDS: i64 = 3_600;

/// Leases, the pass counter and paced slots in the guard's table.
#[derive(Debug, Clone)]
pub struct TableLeases {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn millis(item: Option<&HashMap<String, AttributeValue>>, key: &str) -> Option<i64> {
    item?.get(key)?.as_n().ok()?.parse().ok()
}

fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl TableLeases {
    /// Items in `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        TableLeases {
            client,
            table: table.into(),
        }
    }

    /// Takes lease `name` for `holder` until `until`, if nobody holds it or its
    /// holder's expiry is not after `now` (one conditional `PutItem`). `Ok(Err)`
    /// says who holds it and until when.
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `PutItem` and the lease when DynamoDB fails.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<Result<(), Held>> {
        let resource = format!("lease {name}");
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(PARTITION))
            .item(SK, s(format!("LEASE#{name}")))
            .item("holder", s(holder))
            .item("until", n(until.timestamp_millis()))
            .condition_expression("attribute_not_exists(#pk) OR #until <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                if let Some(PutItemError::ConditionalCheckFailedException(held)) = e.as_service_error() {
                    let item = held.item();
                    let until = millis(item, "until").ok_or_else(|| {
                        PortError::new(
                            "PutItem",
                            &resource,
                            FailureKind::Conflict,
                            "the lease is held, but DynamoDB did not return its expiry",
                        )
                    })?;
                    let holder = item
                        .and_then(|i| i.get("holder"))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    return Ok(Err(Held {
                        holder,
                        until: time_of(until),
                    }));
                }
                Err(port_error("PutItem", resource, e))
            }
        }
    }

    /// Gives lease `name` back if `holder` still holds it (one conditional
    /// `UpdateItem` that ends it now). False when someone else took it over after it
    /// expired: nothing is changed then.
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `UpdateItem` and the lease when DynamoDB fails.
    pub async fn release(&self, name: &str, holder: &str) -> PortResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(PARTITION))
            .key(SK, s(format!("LEASE#{name}")))
            .update_expression("SET #until = :ended")
            .condition_expression("#holder = :me")
            .expression_attribute_names("#until", "until")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":ended", n(0))
            .expression_attribute_values(":me", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(port_error("UpdateItem", format!("lease {name}"), e)),
            },
        }
    }

    /// Counts one pass in the minute of `now` unless `cap` passes already ran in it,
    /// across every process of the deployment (one `UpdateItem`: `ADD` with the
    /// condition that the count is below the cap). Returns the pass's number in its
    /// minute, or `None` when the minute is full. The counter expires an hour after
    /// its minute (DynamoDB TTL).
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `UpdateItem` and the counter when DynamoDB fails.
    pub async fn count_pass(&self, now: DateTime<Utc>, cap: u32) -> PortResult<Option<u32>> {
        let minute = epoch_minute(now);
        let expires = (minute + 1) * 60 + COUNTER_KEPT_SECONDS;
        self.count(&format!("PASSES#{minute}"), expires, cap).await
    }

    /// Counts one notice in the hour of `now` unless `cap` notices were already
    /// counted in it, across every process of the deployment (one `UpdateItem`, as
    /// [`TableLeases::count_pass`]). Returns the notice's number in its hour, or
    /// `None` when the hour is full. The counter expires an hour after its hour.
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `UpdateItem` and the counter when DynamoDB fails.
    pub async fn count_notice(&self, now: DateTime<Utc>, cap: u32) -> PortResult<Option<u32>> {
        let hour = dowguard_domain::notice::epoch_hour(now);
        let expires = (hour + 1) * 3_600 + COUNTER_KEPT_SECONDS;
        self.count(&format!("NOTICES#{hour}"), expires, cap).await
    }

    /// True the first time `key` is seen until `until` (one conditional `PutItem`
    /// of `ONCE#<key>`, kept until `until` and then removed by DynamoDB's TTL; an
    /// expired item that TTL has not yet removed counts as gone); false while an
    /// earlier one holds.
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `PutItem` and the key when DynamoDB fails.
    pub async fn first_time(&self, key: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> PortResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(PARTITION))
            .item(SK, s(format!("ONCE#{key}")))
            .item(TTL_ATTRIBUTE, n(until.timestamp()))
            .condition_expression("attribute_not_exists(#ttl) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => Err(port_error("PutItem", format!("notice key {key}"), e)),
            },
        }
    }

    /// Adds one to the counter `sk` unless it is at `cap`; the item expires at
    /// `expires` (epoch seconds, DynamoDB TTL).
    async fn count(&self, sk: &str, expires: i64, cap: u32) -> PortResult<Option<u32>> {
        let resource = format!("counter {sk}");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(PARTITION))
            .key(SK, s(sk))
            .update_expression("ADD #count :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#count) OR #count < :cap")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(cap))
            .expression_attribute_values(":ttl", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(
                millis(out.attributes(), "count")
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or(cap),
            )),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(port_error("UpdateItem", resource, e)),
            },
        }
    }

    /// Takes the slot of the paced operation `name` at `now` if it is free (the last
    /// taker's `next_at` is not after `now`), moving `next_at` to `now + interval`
    /// (one conditional `PutItem`). `Ok(Err(wait))` says how long until it frees.
    /// So several processes never start `name` less than `interval` apart.
    ///
    /// # Errors
    ///
    /// A [`PortError`] naming `PutItem` and the slot when DynamoDB fails.
    pub async fn take_slot(
        &self,
        name: &str,
        interval: Duration,
        now: DateTime<Utc>,
    ) -> PortResult<Result<(), Duration>> {
        let now_ms = now.timestamp_millis();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(PARTITION))
            .item(SK, s(format!("SLOT#{name}")))
            .item("next_at", n(now_ms.saturating_add(ms(interval))))
            .condition_expression("attribute_not_exists(#next) OR #next <= :now")
            .expression_attribute_names("#next", "next_at")
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                if let Some(PutItemError::ConditionalCheckFailedException(taken)) = e.as_service_error() {
                    // At least a millisecond, so a caller that waits and asks again
                    // never spins on a slot that frees at this very moment.
                    let wait = millis(taken.item(), "next_at").map_or(1, |next| (next - now_ms).max(1));
                    return Ok(Err(Duration::from_millis(u64::try_from(wait).unwrap_or(1))));
                }
                Err(port_error("PutItem", format!("slot {name}"), e))
            }
        }
    }
}

impl Leases for TableLeases {
    async fn acquire(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<Result<(), Held>> {
        TableLeases::acquire(self, name, holder, until, now).await
    }

    async fn release(&self, name: &str, holder: &str) -> PortResult<bool> {
        TableLeases::release(self, name, holder).await
    }

    async fn count_pass(&self, now: DateTime<Utc>, cap: u32) -> PortResult<Option<u32>> {
        TableLeases::count_pass(self, now, cap).await
    }
}
