//! AWS WAF (v2) IP sets: the addresses the guard blocks through a rule of a
//! stage's web ACL that references the set.
//!
//! `UpdateIPSet` "completely replaces the mutable specifications that you already
//! have for the IP set with the ones that you provide to this call": to change it,
//! retrieve it with `GetIPSet`, change what is needed and send the complete
//! specification back ("UpdateIPSet", AWS WAFV2 API Reference). So an update here
//! reads the set (its addresses, its description and its lock token), sends the
//! whole list with only the guard's own additions and removals applied, and the
//! description as it was, and starts again from the read when another writer
//! changed the set in between (`WAFOptimisticLockException`: the lock token is
//! stale). An address the guard was not asked to remove is never removed.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_wafv2::Client;
use aws_sdk_wafv2::types::{IpAddressVersion, Scope};
use dowguard_domain::source::IpSetRef;
use dowguard_guard::{FailureKind, PortError, PortResult};

use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// How many times an update starts again from a fresh read after losing the
/// optimistic lock to another writer.
pub const LOCK_RETRIES: u32 = 4;

/// The least time between two `UpdateIPSet` calls of one process. AWS WAF allows
/// "a maximum of one request per second, per account, per AWS Region for API calls
/// to any individual Create, Put, or Update action" (Security Automations for AWS
/// WAF, "Quotas"); one every two seconds lets the evaluator and the alarm
/// responder update sets at the same time and stay within it.
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(2);

/// WAF's regional IP sets through the SDK.
#[derive(Debug)]
pub struct WafAdapter {
    client: Client,
    update_pacer: Pacer,
}

impl WafAdapter {
    /// Paces `UpdateIPSet` to [`UPDATE_INTERVAL`].
    pub fn new(client: Client) -> Self {
        WafAdapter::with_interval(client, UPDATE_INTERVAL)
    }

    /// Paces `UpdateIPSet` to one call per `interval` (tests use zero).
    pub fn with_interval(client: Client, interval: Duration) -> Self {
        WafAdapter {
            client,
            update_pacer: Pacer::new(interval),
        }
    }

    /// Adds `add` to IP set `set` and removes `remove` from it (CIDR, as the set
    /// holds them), keeping every other entry and the set's description. An
    /// address of the other IP version than the set's is not sent (an IP set holds
    /// addresses of its own `IPAddressVersion`, IPV4 or IPV6: "IPSet", AWS WAFV2 API
    /// Reference), and is reported after the rest is applied.
    pub async fn update_ip_set(&self, set: &IpSetRef, add: &[String], remove: &[String]) -> PortResult<()> {
        let resource = format!("ip-set:{}/{}", set.name, set.id);
        let scope = scope_of(set, &resource)?;
        let mut attempt = 0;
        loop {
            let read = self
                .client
                .get_ip_set()
                .name(&set.name)
                .scope(scope.clone())
                .id(&set.id)
                .send()
                .await
                .map_err(|e| port_error("GetIPSet", resource.clone(), e))?;
            let (Some(current), Some(token)) = (read.ip_set(), read.lock_token()) else {
                return Err(invalid(
                    "GetIPSet",
                    resource,
                    "the answer has no IP set or no lock token",
                ));
            };
            let change = plan(current.addresses(), current.ip_address_version(), add, remove);
            if change.addresses.is_none() {
                return change.result(&resource);
            }
            self.update_pacer.wait().await;
            let sent = self
                .client
                .update_ip_set()
                .name(&set.name)
                .scope(scope.clone())
                .id(&set.id)
                .set_description(current.description().map(str::to_string))
                .set_addresses(change.addresses.clone())
                .lock_token(token)
                .send()
                .await;
            match sent {
                Ok(_) => return change.result(&resource),
                Err(e)
                    if attempt < LOCK_RETRIES
                        && e.as_service_error()
                            .is_some_and(|s| s.is_waf_optimistic_lock_exception()) =>
                {
                    attempt += 1;
                    tracing::info!(ip_set = %set.name, attempt, "the IP set changed since it was read; reading it again");
                }
                Err(e) => return Err(port_error("UpdateIPSet", resource, e)),
            }
        }
    }

    /// The IP set a blocking rule of the web ACL attached to `resource_arn` (a REST
    /// API stage: `arn:aws:apigateway:REGION::/restapis/API/stages/STAGE`)
    /// references, if any: the rule's action is `Block` and its statement an
    /// `IPSetReferenceStatement` ("GetWebACLForResource", "Rule",
    /// "IPSetReferenceStatement", AWS WAFV2 API Reference). `None` without a web
    /// ACL or without such a rule.
    pub async fn blocking_ip_set(&self, resource_arn: &str) -> PortResult<Option<IpSetRef>> {
        let out = self
            .client
            .get_web_acl_for_resource()
            .resource_arn(resource_arn)
            .send()
            .await
            .map_err(|e| port_error("GetWebACLForResource", resource_arn, e))?;
        let Some(acl) = out.web_acl() else {
            return Ok(None);
        };
        Ok(acl
            .rules()
            .iter()
            .filter(|rule| rule.action().is_some_and(|a| a.block().is_some()))
            .filter_map(|rule| rule.statement()?.ip_set_reference_statement())
            .find_map(|reference| ip_set_of_arn(reference.arn())))
    }
}

/// The scope `UpdateIPSet` names: the guard acts on REST API stages, whose web
/// ACLs are regional.
fn scope_of(set: &IpSetRef, resource: &str) -> PortResult<Scope> {
    match set.scope.as_str() {
        "REGIONAL" => Ok(Scope::Regional),
        other => Err(PortError::new(
            "UpdateIPSet",
            resource,
            FailureKind::Refused,
            format!("scope {other}: the guard updates only REGIONAL IP sets"),
        )),
    }
}

/// What one update does: the whole new list (`None`: nothing to change), and the
/// addresses that could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSetChange {
    /// The complete list to send, or `None` when the set already is as asked.
    pub addresses: Option<Vec<String>>,
    /// Addresses of the other IP version than the set's.
    pub refused: Vec<String>,
}

impl IpSetChange {
    fn result(&self, resource: &str) -> PortResult<()> {
        if self.refused.is_empty() {
            Ok(())
        } else {
            Err(PortError::new(
                "UpdateIPSet",
                resource,
                FailureKind::Refused,
                format!(
                    "not added, of another IP version than the set's: {}",
                    self.refused.join(", ")
                ),
            ))
        }
    }
}

/// The new list of a set holding `current`: `current` ∪ `add` − `remove`, in the
/// set's order with additions at the end; an address of the other IP version is
/// refused, never sent.
pub fn plan(
    current: &[String],
    version: &IpAddressVersion,
    add: &[String],
    remove: &[String],
) -> IpSetChange {
    let v6 = |a: &String| a.contains(':');
    let fits = |a: &String| match version {
        IpAddressVersion::Ipv4 => !v6(a),
        IpAddressVersion::Ipv6 => v6(a),
        _ => true,
    };
    let removed: BTreeSet<&String> = remove.iter().collect();
    let mut addresses: Vec<String> = current.iter().filter(|a| !removed.contains(a)).cloned().collect();
    let mut refused = Vec::new();
    for a in add {
        if !fits(a) {
            refused.push(a.clone());
        } else if !addresses.contains(a) && !removed.contains(a) {
            addresses.push(a.clone());
        }
    }
    let unchanged = addresses.len() == current.len() && addresses.iter().all(|a| current.contains(a));
    IpSetChange {
        addresses: (!unchanged).then_some(addresses),
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn the_new_list_keeps_other_entries_and_changes_only_what_is_asked() {
        let current = strings(&["192.0.2.0/24", "203.0.113.7/32"]);
        let change = plan(
            &current,
            &IpAddressVersion::Ipv4,
            &strings(&["203.0.113.8/32", "203.0.113.7/32"]),
            &strings(&["198.51.100.1/32"]),
        );
        assert_eq!(
            change.addresses,
            Some(strings(&["192.0.2.0/24", "203.0.113.7/32", "203.0.113.8/32"]))
        );
        let change = plan(
            &current,
            &IpAddressVersion::Ipv4,
            &[],
            &strings(&["203.0.113.7/32"]),
        );
        assert_eq!(change.addresses, Some(strings(&["192.0.2.0/24"])));
    }

    #[test]
    fn a_set_already_as_asked_is_not_written() {
        let current = strings(&["203.0.113.7/32"]);
        let change = plan(
            &current,
            &IpAddressVersion::Ipv4,
            &strings(&["203.0.113.7/32"]),
            &strings(&["198.51.100.1/32"]),
        );
        assert_eq!(change.addresses, None);
    }

    #[test]
    fn an_address_of_the_other_version_is_refused_and_the_rest_applied() {
        let change = plan(
            &[],
            &IpAddressVersion::Ipv4,
            &strings(&["2001:db8::1/128", "203.0.113.7/32"]),
            &[],
        );
        assert_eq!(change.addresses, Some(strings(&["203.0.113.7/32"])));
        assert_eq!(change.refused, strings(&["2001:db8::1/128"]));
    }
}

/// The IP set an ARN names: `arn:PARTITION:wafv2:REGION:ACCOUNT:regional/ipset/NAME/ID`
/// ("Actions, resources, and condition keys for AWS WAF V2": the `ipset` resource).
/// `None` for anything else (a CloudFront-scoped set cannot guard a REST stage).
pub fn ip_set_of_arn(arn: &str) -> Option<IpSetRef> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("regional"), Some("ipset"), Some(name), Some(id), None)
            if !name.is_empty() && !id.is_empty() =>
        {
            Some(IpSetRef {
                name: name.to_string(),
                id: id.to_string(),
                scope: "REGIONAL".into(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod arn_tests {
    use super::*;

    #[test]
    fn a_regional_ip_set_arn_names_the_set_and_nothing_else_does() {
        let set =
            ip_set_of_arn("arn:aws:wafv2:us-east-1:123456789012:regional/ipset/dowguard-blocked/a1b2-c3");
        assert_eq!(
            set,
            Some(IpSetRef {
                name: "dowguard-blocked".into(),
                id: "a1b2-c3".into(),
                scope: "REGIONAL".into(),
            })
        );
        assert_eq!(
            ip_set_of_arn("arn:aws:wafv2:us-east-1:123456789012:global/ipset/x/y"),
            None
        );
        assert_eq!(
            ip_set_of_arn("arn:aws:wafv2:us-east-1:123456789012:regional/webacl/x/y"),
            None
        );
        assert_eq!(ip_set_of_arn("not an arn"), None);
    }
}
