//! Sources: who sends an API stage its requests, as its access logs name them (the
//! caller's API key, the caller's address), and what the guard can do to one source
//! without touching the others: move an API key to a quarantine usage plan, or add
//! an address to an IP set that a blocking rule of the stage's web ACL references.
//!
//! The shell ranks a stage's sources (a CloudWatch Contributor Insights rule over
//! its access logs) and hands the ranking to the core as [`StageSources`], with the
//! [`Levers`] the stage offers. The core decides which sources to hold
//! ([`crate::targeted`]); what it holds is remembered in the stage's guard state as
//! [`HeldSource`]s, exactly what a restore takes back.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::source::{HeldSource, IpSetRef, Source, cidr_of};
//!
//! let ip_set = IpSetRef { name: "blocked".into(), id: "a1".into(), scope: "REGIONAL".into() };
//! let since = Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 0).unwrap();
//! let held = HeldSource::Blocked { since, address: cidr_of("203.0.113.7"), ip_set };
//! assert_eq!(held.source(), Source::Address("203.0.113.7".into()));
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::target::{TargetId, UsagePlanId};

/// One caller of a stage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "kebab-case")]
pub enum Source {
    /// An API key (its id, as `$context.identity.apiKeyId` logs it).
    ApiKey(String),
    /// A client address (`$context.identity.sourceIp`).
    Address(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::ApiKey(id) => write!(f, "API key {id}"),
            Source::Address(ip) => write!(f, "address {ip}"),
        }
    }
}

/// A stage's sources over the attribution window, as a Contributor Insights
/// report ranks them: by requests, or, where the access log carries the
/// integration latency, by the milliseconds of the function behind the stage
/// they took (its cost). The rule is the same either way: each figure below is in
/// the ranking's unit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StageSources {
    /// Epoch minute the window ends at (exclusive).
    pub through_minute: i64,
    /// Minutes in the window.
    pub window_minutes: i64,
    /// Requests of the stage in the window, from every source.
    pub total_requests: u64,
    /// How many distinct sources sent them (the report's approximate count).
    pub distinct: u64,
    /// The top sources, most requests first, with their requests in the window.
    pub top: Vec<(Source, u64)>,
}

impl StageSources {
    /// Of several rankings of one stage (by address, by API key), the one that
    /// names its callers most sharply: the largest share of the requests sent by
    /// its first caller. A flood from one stolen key used from many addresses is
    /// ranked by key; a flood from a few addresses sharing no key, by address.
    pub fn sharpest(rankings: Vec<StageSources>) -> Option<StageSources> {
        rankings.into_iter().max_by(|a, b| {
            let share = |r: &StageSources| {
                (
                    u128::from(r.top.first().map_or(0, |t| t.1)),
                    u128::from(r.total_requests.max(1)),
                )
            };
            let ((an, ad), (bn, bd)) = (share(a), share(b));
            (an * bd).cmp(&(bn * ad))
        })
    }
}

/// A WAF IP set: what `UpdateIPSet` names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IpSetRef {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
    /// `REGIONAL` (a REST API stage's web ACL is regional).
    pub scope: String,
}

/// What a stage offers the guard to act on one source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Levers {
    /// The usage plan a quarantined key is moved to, when the deployment has one
    /// that covers the stage.
    pub quarantine_plan: Option<UsagePlanId>,
    /// Each API key of the stage's usage plans and the plan it is in now.
    pub key_plans: BTreeMap<String, UsagePlanId>,
    /// The IP set a blocking rule of the stage's web ACL references, if any.
    pub ip_set: Option<IpSetRef>,
}

/// A stage's sources and levers, for every stage the shell could attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// By stage.
    pub stages: BTreeMap<TargetId, (StageSources, Levers)>,
}

impl Attribution {
    /// No attribution at all: every stage is guarded as a whole.
    pub const NONE: Attribution = Attribution {
        stages: BTreeMap::new(),
    };
}

/// A source the guard holds, with what it needs to let it go exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "held", rename_all = "kebab-case")]
pub enum HeldSource {
    /// An API key moved to the quarantine plan.
    Quarantined {
        /// When the guard moved it.
        since: DateTime<Utc>,
        /// The key's id.
        key: String,
        /// The plan it was in (and goes back to).
        original_plan: UsagePlanId,
        /// The quarantine plan.
        quarantine_plan: UsagePlanId,
    },
    /// An address the guard added to an IP set.
    Blocked {
        /// When the guard added it.
        since: DateTime<Utc>,
        /// The address, as the IP set holds it (`203.0.113.7/32`).
        address: String,
        /// The IP set.
        ip_set: IpSetRef,
    },
}

impl HeldSource {
    /// When the guard took hold of it.
    pub fn since(&self) -> DateTime<Utc> {
        match self {
            HeldSource::Quarantined { since, .. } | HeldSource::Blocked { since, .. } => *since,
        }
    }

    /// The source it holds.
    pub fn source(&self) -> Source {
        match self {
            HeldSource::Quarantined { key, .. } => Source::ApiKey(key.clone()),
            HeldSource::Blocked { address, .. } => Source::Address(
                address
                    .trim_end_matches("/32")
                    .trim_end_matches("/128")
                    .to_string(),
            ),
        }
    }
}

/// The CIDR an IP set holds for one address: `/32` for IPv4, `/128` for IPv6
/// ("IPSet", AWS WAFV2 API reference: addresses in CIDR notation).
pub fn cidr_of(address: &str) -> String {
    if address.contains('/') {
        address.to_string()
    } else if address.contains(':') {
        format!("{address}/128")
    } else {
        format!("{address}/32")
    }
}

/// What the audit found on a stage for the targeted levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StageAccess {
    /// Access logs go to CloudWatch Logs (what the ranking is made from).
    pub access_logs: bool,
    /// Some method requires an API key and a usage plan covers the stage.
    pub api_keys: bool,
    /// A web ACL is attached; `None` for an HTTP API stage, which takes none
    /// ("Use AWS WAF to protect your REST APIs in API Gateway").
    pub web_acl: Option<bool>,
}

/// Which targeted levels a stage can use, and what it lacks for the others.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TargetedLevels {
    /// The levels the guard can use on it.
    pub usable: Vec<String>,
    /// What is missing, and for which level.
    pub missing: Vec<String>,
}

/// The targeted levels of a stage with `access`.
pub fn targeted_levels(access: &StageAccess) -> TargetedLevels {
    let Some(web_acl) = access.web_acl else {
        // An HTTP API has no usage plans ("Choose between REST APIs and HTTP APIs")
        // and takes no web ACL: only its stage throttle can act.
        return TargetedLevels {
            usable: Vec::new(),
            missing: vec![
                "HTTP APIs have no API keys and take no web ACL: only the stage throttle acts".into(),
            ],
        };
    };
    let mut levers: Vec<&str> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    if access.api_keys {
        levers.push("quarantine an API key");
    } else {
        missing.push("API keys in a usage plan, to quarantine one caller's key".into());
    }
    if web_acl {
        levers.push("block an address");
    } else {
        missing.push("a web ACL with a rule blocking an IP set, to block an address".into());
    }
    if !access.access_logs {
        missing.insert(0, "access logs to CloudWatch Logs, which rank the callers".into());
        return TargetedLevels {
            usable: Vec::new(),
            missing,
        };
    }
    TargetedLevels {
        usable: levers.into_iter().map(str::to_string).collect(),
        missing,
    }
}
