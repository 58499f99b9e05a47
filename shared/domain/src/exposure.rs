//! Denial-of-Wallet exposure: what each entry point of an account could cost an
//! hour in the worst case, what makes it exposed, and the limits dowguard would set.
//!
//! The worst case is what the limits in place allow, priced by the price book at
//! list price (first tier, no free tier):
//!
//! - a function: its maximum concurrency (the reservation, else the account's
//!   concurrency limit) × its memory × one hour × the GB-second price;
//! - an API stage: its maximum request rate (the stage throttle, else the account's
//!   default of 10,000 requests a second) × one hour × the request price;
//! - a usage plan: its throttle (per API key) × one hour × the REST request price.
//!
//! The recommendation caps that worst case at the covering budget's top burn-rate
//! threshold (the guard's fast lane): a flood can then never burn faster than the
//! rate at which the guard would already be stopping it. With no budget, a stated
//! default budget is used. Pure: the scan that gathers the facts is the CLI's.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::exposure::{Bound, EntryPoint, ExposureContext, rank};
//! use dowguard_domain::{Arch, Limits, Money, PriceBook, Target, TargetId, TargetSpec};
//!
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let id = TargetId::parse("function:big")?;
//! let spec = TargetSpec::Function { memory_mb: 1_024, arch: Arch::X86_64, async_invoked: false };
//! let unreserved = Limits::Function { reserved_concurrency: None, async_config: None };
//! let entry = EntryPoint {
//!     target: Target::new(id, spec, Default::default(), unreserved),
//!     timeout_s: None,
//!     open_methods: vec![],
//!     plans: vec![],
//!     open_url: false,
//!     access: None,
//! };
//! let ctx = ExposureContext {
//!     budgets: &[],
//!     prices: &prices,
//!     now: Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap(),
//!     account_concurrency: 1_000,
//!     default_budget: Money::from_dollars(100),
//! };
//! let ranked = rank(&[entry], &ctx);
//! // 1,000 environments of 1 GB for an hour at $0.0000166667 a GB-second: $60.
//! assert_eq!(ranked[0].worst_per_hour.display_dp(2), "$60.00");
//! assert_eq!(ranked[0].bound, Bound::AccountLimit);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::budget::{Budget, BudgetId, BurnRate, Floors, Mode, Period, Thresholds};
use crate::coverage::{self, Admit, admit, budgets_of};
use crate::money::Money;
use crate::pricebook::{Prices, TargetPrice, UnitPrice};
use crate::target::{
    AsyncConfig, Limits, Quota, QuotaPeriod, Target, TargetId, TargetKind, TargetSpec, Throttle,
    unguarded_why,
};
use crate::usage::Usage;

/// API Gateway's default account-level throttle per region (requests a second):
/// what an API stage without its own throttle is held to.
pub const ACCOUNT_STAGE_RATE: u64 = 10_000;
/// Function timeouts above this many seconds are reported (API Gateway itself
/// gives up on an integration after 29 s).
pub const LONG_TIMEOUT_S: u32 = 30;
/// Function memory above this many MB is reported.
pub const LARGE_MEMORY_MB: u32 = 2_048;
/// The default budget used for recommendations when no budget covers a target.
pub const DEFAULT_BUDGET_DOLLARS: i64 = 100;

/// What the scan found out about one entry point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    /// The target, with its current limits and tags.
    pub target: Target,
    /// A function's timeout in seconds.
    pub timeout_s: Option<u32>,
    /// Methods or routes (`GET /orders`) callable without authorization or API key.
    pub open_methods: Vec<String>,
    /// Usage plans that cover a REST stage: their throttle and quota.
    pub plans: Vec<(Option<Throttle>, Option<Quota>)>,
    /// A function with a function URL whose `AuthType` is `NONE`: anyone who knows
    /// the URL can invoke it, with no API Gateway throttle in front ("Control
    /// access to Lambda function URLs"). Its worst case is the same (concurrency
    /// bounds it); the finding is what changes.
    pub open_url: bool,
    /// What a stage offers the targeted levels, when the scan read it.
    pub access: Option<crate::source::StageAccess>,
}

/// One reason an entry point is exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "kebab-case")]
pub enum Finding {
    /// A function without reserved concurrency scales to the account's limit.
    NoReservedConcurrency,
    /// A stage without its own throttle is held only by the account's default.
    NoStageThrottle,
    /// A REST stage that no usage plan covers.
    NoUsagePlan,
    /// A usage plan (or every plan of a stage) without a quota.
    NoQuota,
    /// A usage plan without a throttle.
    NoPlanThrottle,
    /// Methods or routes anyone can call: no authorization and no API key.
    OpenMethods {
        /// The methods, e.g. `GET /`.
        methods: Vec<String>,
    },
    /// A long function timeout: each request can run (and bill) that long.
    LongTimeout {
        /// Seconds.
        seconds: u32,
    },
    /// A function URL with `AuthType` `NONE`: anyone can invoke the function
    /// directly, past any API throttle or authorizer.
    OpenFunctionUrl,
    /// Large function memory: each second costs more.
    LargeMemory {
        /// MB.
        mb: u32,
    },
    /// The guard may not change it: the `dowguard-guarded=true` tag is missing where
    /// IAM reads it, so a budget can watch it but never throttle it.
    NotGuarded {
        /// Why, for its kind of target.
        why: String,
    },
}

impl Finding {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Finding::NoReservedConcurrency => "no reserved concurrency".into(),
            Finding::NoStageThrottle => "no stage throttle".into(),
            Finding::NoUsagePlan => "no usage plan".into(),
            Finding::NoQuota => "no quota".into(),
            Finding::NoPlanThrottle => "no plan throttle".into(),
            Finding::OpenMethods { methods } => {
                format!("no authorization or API key: {}", methods.join(", "))
            }
            Finding::OpenFunctionUrl => "function URL without authentication (AuthType NONE)".into(),
            Finding::LongTimeout { seconds } => format!("timeout {seconds} s"),
            Finding::LargeMemory { mb } => format!("memory {mb} MB"),
            Finding::NotGuarded { why } => format!("not guardable: {why}"),
        }
    }
}

/// Where the worst case's capacity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// The target's own limit.
    OwnLimit,
    /// The account's limit (nothing of the target's own holds it).
    AccountLimit,
}

/// The budget a recommendation is derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// The budget, or `None` for the default.
    pub budget: Option<BudgetId>,
    /// The target's share of it.
    pub amount: Money,
    /// Its period.
    pub period: Period,
    /// The burn rate the worst case is capped at (the top threshold).
    pub cap: BurnRate,
}

/// One entry point's exposure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// The target.
    pub target: TargetId,
    /// Its kind.
    pub kind: TargetKind,
    /// Why it is exposed (empty: nothing to report).
    pub findings: Vec<Finding>,
    /// Maximum concurrency (functions) or requests a second (stages, plans).
    pub capacity: u64,
    /// Where the capacity comes from.
    pub bound: Bound,
    /// Worst-case cost of one hour at that capacity.
    pub worst_per_hour: Money,
    /// The limits dowguard would set.
    pub recommended: Limits,
    /// The worst case of one hour under the recommended limits.
    pub recommended_per_hour: Money,
    /// What the recommendation is derived from.
    pub basis: Basis,
    /// Which targeted levels a stage can use and what it lacks (stages the scan
    /// read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeted: Option<crate::source::TargetedLevels>,
}

/// Everything the ranking needs besides the entry points.
#[derive(Debug, Clone, Copy)]
pub struct ExposureContext<'a> {
    /// Budgets (recommendations derive from the one covering a target).
    pub budgets: &'a [Budget],
    /// Prices of the region.
    pub prices: &'a Prices,
    /// Now, for the length of a month.
    pub now: DateTime<Utc>,
    /// The account's concurrent-executions limit.
    pub account_concurrency: u32,
    /// The budget assumed where none covers a target (a day's worth).
    pub default_budget: Money,
}

/// One hour of `concurrency` busy execution environments of a function, at list
/// price (its duration; a function's worst case is the time it can bill).
fn busy_hour(price: &TargetPrice, concurrency: u64) -> Money {
    price.cost(&Usage {
        requests: 0,
        throttled: 0,
        duration_ms: concurrency.saturating_mul(3_600_000),
    })
}

/// One hour of requests at `rate` a second, at list price.
fn request_hour(price: &TargetPrice, rate: u64) -> Money {
    price.cost(&Usage {
        requests: rate.saturating_mul(3_600),
        throttled: 0,
        duration_ms: 0,
    })
}

fn whole_rate(throttle: &Throttle) -> u64 {
    throttle.rate_limit.floor().try_into().unwrap_or(u64::MAX)
}

/// Whether a stage throttle is really one: the account-level default written back
/// on an HTTP stage is none.
fn own_throttle(throttle: Option<Throttle>) -> Option<Throttle> {
    throttle.filter(|t| whole_rate(t) < ACCOUNT_STAGE_RATE)
}

/// The budget a target's recommendation derives from, by the rule the guard
/// enforces ([`admit`]): among the budgets covering it, enforcing ones outrank
/// dry-run ones, and the tightest binds — the one whose share caps the target's
/// hour lowest. A target's share of a budget is the whole of it for a usage plan
/// (a plan takes its budget's whole allowance) and otherwise an even part among
/// the budget's members (usage plans not counted: their stages carry their money).
/// The floors are the highest of every covering budget's, as the guard takes them.
fn basis(target: &Target, ctx: &ExposureContext<'_>, members: &[i128]) -> Option<(Basis, Floors)> {
    let mut best: Option<(Mode, Money, Basis)> = None;
    let mut floors = Floors::default();
    for (b, budget) in budgets_of(target, ctx.budgets) {
        floors = floors.max(budget.floors);
        let share = if target.id.kind() == TargetKind::UsagePlan {
            budget.amount
        } else {
            budget.amount.mul_div(1, members[b].max(1)).unwrap_or(Money::ZERO)
        };
        let candidate = Basis {
            budget: Some(budget.id.clone()),
            amount: share,
            period: budget.period,
            cap: top(&budget.thresholds),
        };
        let cap = cap_per_hour(&candidate, ctx.now);
        let replace = match admit(budget.mode, best.as_ref().map(|(mode, ..)| *mode)) {
            Admit::Outranks => true,
            Admit::Joins => best.as_ref().is_none_or(|(_, tightest, _)| cap < *tightest),
            Admit::Outranked => false,
        };
        if replace {
            best = Some((budget.mode, cap, candidate));
        }
    }
    best.map(|(_, _, basis)| (basis, floors))
}

/// The most a target may spend an hour under `basis`: its share at the top burn rate.
fn cap_per_hour(basis: &Basis, now: DateTime<Utc>) -> Money {
    let (start, end) = basis.period.bounds(now);
    let period_s = i128::from((end - start).num_seconds().max(1));
    basis
        .amount
        .mul_div(i128::from(basis.cap.0) * 3_600, period_s * 1_000_000)
        .unwrap_or(Money::ZERO)
}

/// Ranks `entries` by worst-case cost an hour, most expensive first (ties by id).
pub fn rank(entries: &[EntryPoint], ctx: &ExposureContext<'_>) -> Vec<Exposure> {
    // Each budget's members among the entry points, usage plans not counted.
    let targets: Vec<Target> = entries.iter().map(|e| e.target.clone()).collect();
    let members: Vec<i128> = ctx
        .budgets
        .iter()
        .map(|b| {
            let n = coverage::members(b, &targets)
                .filter(|(_, t)| t.id.kind() != TargetKind::UsagePlan)
                .count();
            i128::try_from(n).unwrap_or(i128::MAX)
        })
        .collect();
    let mut out: Vec<Exposure> = entries.iter().map(|e| assess(e, ctx, &members)).collect();
    out.sort_by(|a, b| {
        b.worst_per_hour
            .cmp(&a.worst_per_hour)
            .then_with(|| a.target.cmp(&b.target))
    });
    out
}

/// The total worst case of the ranked entry points that are not usage plans (a
/// plan's requests are its stages' requests, already counted).
pub fn total_per_hour(exposures: &[Exposure]) -> Money {
    exposures
        .iter()
        .filter(|e| e.kind != TargetKind::UsagePlan)
        .map(|e| e.worst_per_hour)
        .sum()
}

/// One entry point's worst case and recommendation, before they become an
/// [`Exposure`].
struct Assessed {
    capacity: u64,
    bound: Bound,
    worst: Money,
    recommended: Limits,
    recommended_per_hour: Money,
}

/// What every kind of entry point's assessment reads.
struct Basics<'a> {
    price: TargetPrice,
    cap_per_hour: Money,
    floors: Floors,
    period: Period,
    amount: Money,
    account_concurrency: u32,
    findings: &'a mut Vec<Finding>,
}

fn assess(entry: &EntryPoint, ctx: &ExposureContext<'_>, members: &[i128]) -> Exposure {
    let target = &entry.target;
    let kind = target.id.kind();
    let (basis, floors) = basis(target, ctx, members).unwrap_or_else(|| {
        let basis = Basis {
            budget: None,
            amount: ctx.default_budget,
            period: Period::Day,
            cap: top(&Thresholds::default_ladder()),
        };
        (basis, Floors::default())
    });
    let mut findings = Vec::new();
    if !target.guarded {
        findings.push(Finding::NotGuarded {
            why: unguarded_why(kind).to_string(),
        });
    }
    let mut basics = Basics {
        price: ctx.prices.list().of(&target.spec),
        cap_per_hour: cap_per_hour(&basis, ctx.now),
        floors,
        period: basis.period,
        amount: basis.amount,
        account_concurrency: ctx.account_concurrency,
        findings: &mut findings,
    };
    let assessed = match (&target.spec, &target.limits) {
        (
            TargetSpec::Function { memory_mb, .. },
            Limits::Function {
                reserved_concurrency,
                async_config,
            },
        ) => assess_function(
            entry,
            *memory_mb,
            (*reserved_concurrency, async_config),
            &mut basics,
        ),
        (_, Limits::Stage { throttle, .. }) => assess_stage(entry, *throttle, &mut basics),
        (_, Limits::UsagePlan { throttle, quota }) => assess_plan(*throttle, *quota, &mut basics),
        (_, other) => Assessed {
            capacity: 0,
            bound: Bound::OwnLimit,
            worst: Money::ZERO,
            recommended: other.clone(),
            recommended_per_hour: Money::ZERO,
        },
    };
    Exposure {
        target: target.id.clone(),
        kind,
        findings,
        capacity: assessed.capacity,
        bound: assessed.bound,
        worst_per_hour: assessed.worst,
        recommended: assessed.recommended,
        recommended_per_hour: assessed.recommended_per_hour,
        basis,
        targeted: entry.access.as_ref().map(crate::source::targeted_levels),
    }
}

/// A function: its concurrency bounds its hour.
fn assess_function(
    entry: &EntryPoint,
    memory_mb: u32,
    (reserved_concurrency, async_config): (Option<u32>, &Option<AsyncConfig>),
    b: &mut Basics<'_>,
) -> Assessed {
    if reserved_concurrency.is_none() {
        b.findings.push(Finding::NoReservedConcurrency);
    }
    if entry.open_url {
        b.findings.push(Finding::OpenFunctionUrl);
    }
    if let Some(t) = entry.timeout_s.filter(|t| *t > LONG_TIMEOUT_S) {
        b.findings.push(Finding::LongTimeout { seconds: t });
    }
    if memory_mb > LARGE_MEMORY_MB {
        b.findings.push(Finding::LargeMemory { mb: memory_mb });
    }
    let (capacity, bound) = match reserved_concurrency {
        Some(n) => (u64::from(n), Bound::OwnLimit),
        None => (u64::from(b.account_concurrency), Bound::AccountLimit),
    };
    let one = busy_hour(&b.price, 1);
    let affordable = if one.is_positive() {
        u64::try_from(b.cap_per_hour.picos() / one.picos()).unwrap_or(u64::MAX)
    } else {
        u64::MAX
    };
    let concurrency = affordable
        .max(1)
        .max(u64::from(b.floors.concurrency))
        .min(capacity)
        .min(u64::from(u32::MAX));
    Assessed {
        capacity,
        bound,
        worst: busy_hour(&b.price, capacity),
        recommended: Limits::Function {
            reserved_concurrency: Some(u32::try_from(concurrency).unwrap_or(u32::MAX)),
            async_config: async_config.clone(),
        },
        recommended_per_hour: busy_hour(&b.price, concurrency),
    }
}

/// A REST or HTTP API stage: its throttle (or the account's) bounds its hour.
fn assess_stage(entry: &EntryPoint, throttle: Option<Throttle>, b: &mut Basics<'_>) -> Assessed {
    let own = own_throttle(throttle);
    if own.is_none() {
        b.findings.push(Finding::NoStageThrottle);
    }
    if entry.target.id.kind() == TargetKind::RestStage {
        if entry.plans.is_empty() {
            b.findings.push(Finding::NoUsagePlan);
        } else if entry.plans.iter().all(|(_, q)| q.is_none()) {
            b.findings.push(Finding::NoQuota);
        }
    }
    if !entry.open_methods.is_empty() {
        b.findings.push(Finding::OpenMethods {
            methods: entry.open_methods.clone(),
        });
    }
    let (capacity, bound) = match own {
        Some(t) => (whole_rate(&t), Bound::OwnLimit),
        None => (ACCOUNT_STAGE_RATE, Bound::AccountLimit),
    };
    let rate = recommended_rate(b.price.request(), b.cap_per_hour, b.floors, capacity);
    Assessed {
        capacity,
        bound,
        worst: request_hour(&b.price, capacity),
        recommended: Limits::stage(Some(throttle_of(rate, b.floors, own))),
        recommended_per_hour: request_hour(&b.price, rate),
    }
}

/// A usage plan: its throttle (per API key) bounds its hour; its quota is what the
/// budget buys over the budget's period.
fn assess_plan(throttle: Option<Throttle>, quota: Option<Quota>, b: &mut Basics<'_>) -> Assessed {
    if throttle.is_none() {
        b.findings.push(Finding::NoPlanThrottle);
    }
    if quota.is_none() {
        b.findings.push(Finding::NoQuota);
    }
    let (capacity, bound) = match throttle {
        Some(t) => (whole_rate(&t), Bound::OwnLimit),
        None => (ACCOUNT_STAGE_RATE, Bound::AccountLimit),
    };
    let rate = recommended_rate(b.price.request(), b.cap_per_hour, b.floors, capacity);
    let period = match b.period {
        Period::Day => QuotaPeriod::Day,
        Period::Month => QuotaPeriod::Month,
    };
    let affordable = b.price.request().units_for(b.amount).max(1);
    let limit = quota
        .filter(|q| q.period == period)
        .map_or(affordable, |q| q.limit.min(affordable));
    Assessed {
        capacity,
        bound,
        worst: request_hour(&b.price, capacity),
        recommended: Limits::UsagePlan {
            throttle: Some(throttle_of(rate, b.floors, throttle)),
            quota: Some(Quota {
                limit,
                period,
                offset: quota.map_or(0, |q| q.offset),
            }),
        },
        recommended_per_hour: request_hour(&b.price, rate),
    }
}

fn top(thresholds: &Thresholds) -> BurnRate {
    thresholds.all().last().copied().unwrap_or(BurnRate::ONE)
}

/// Requests a second that `cap_per_hour` pays for, within floors and the current capacity.
fn recommended_rate(price: UnitPrice, cap_per_hour: Money, floors: Floors, capacity: u64) -> u64 {
    (price.units_for(cap_per_hour) / 3_600)
        .max(1)
        .max(u64::from(floors.rate))
        .min(capacity)
}

fn throttle_of(rate: u64, floors: Floors, current: Option<Throttle>) -> Throttle {
    let burst = rate.max(u64::from(floors.burst)).min(
        current
            .map_or(u64::MAX, |t| u64::from(t.burst_limit))
            .max(u64::from(floors.burst)),
    );
    Throttle {
        rate_limit: Decimal::from(rate),
        burst_limit: u32::try_from(burst).unwrap_or(u32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;

    use super::*;
    use crate::{Arch, BudgetSpec, PriceBook};

    fn prices() -> Prices {
        PriceBook::bundled()
            .and_then(|b| b.prices("us-east-1", false))
            .expect("prices")
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .single()
            .expect("time")
    }

    fn entry(id: &str, spec: TargetSpec, limits: Limits) -> EntryPoint {
        EntryPoint {
            target: Target {
                id: TargetId::parse(id).expect("id"),
                spec,
                tags: BTreeMap::new(),
                limits,
                guarded: true,
                usage_plans: Default::default(),
            },
            timeout_s: None,
            open_methods: vec![],
            plans: vec![],
            open_url: false,
            access: None,
        }
    }

    fn function(name: &str, memory_mb: u32, reserved: Option<u32>) -> EntryPoint {
        entry(
            &format!("function:{name}"),
            TargetSpec::Function {
                memory_mb,
                arch: Arch::X86_64,
                async_invoked: false,
            },
            Limits::Function {
                reserved_concurrency: reserved,
                async_config: None,
            },
        )
    }

    fn throttle(rate: i64, burst: u32) -> Throttle {
        Throttle {
            rate_limit: Decimal::from(rate),
            burst_limit: burst,
        }
    }

    fn budget(id: &str, scope: &str, amount: &str) -> Budget {
        Budget::parse(BudgetSpec::day(id, scope, amount, "finance")).expect("budget")
    }

    fn ctx<'a>(budgets: &'a [Budget], prices: &'a Prices) -> ExposureContext<'a> {
        ExposureContext {
            budgets,
            prices,
            now: now(),
            account_concurrency: 1_000,
            default_budget: Money::from_dollars(DEFAULT_BUDGET_DOLLARS),
        }
    }

    #[test]
    fn prices_the_brief_s_worst_cases_exactly() {
        let prices = prices();
        let entries = vec![
            function("big", 1_024, None),
            entry("rest-stage:abc/prod", TargetSpec::RestStage, Limits::stage(None)),
            entry(
                "http-stage:def/$default",
                TargetSpec::HttpStage,
                Limits::stage(Some(throttle(50, 100))),
            ),
        ];
        let ranked = rank(&entries, &ctx(&[], &prices));
        let worst: Vec<(String, String)> = ranked
            .iter()
            .map(|e| (e.target.to_string(), e.worst_per_hour.to_string()))
            .collect();
        // 10,000 rps × 3,600 s × $3.50 per million; 1,000 × 1 GB × 3,600 s × $0.0000166667.
        assert_eq!(
            worst,
            vec![
                ("rest-stage:abc/prod".to_string(), "$126.00".to_string()),
                ("function:big".to_string(), "$60.00".to_string()),
                ("http-stage:def/$default".to_string(), "$0.18".to_string()),
            ]
        );
        assert_eq!(ranked[0].bound, Bound::AccountLimit);
        assert_eq!(ranked[2].bound, Bound::OwnLimit);
        assert_eq!(ranked[1].worst_per_hour, Money::from_picos(60_000_120_000_000));
        assert_eq!(total_per_hour(&ranked).to_string(), "$186.18");
    }

    #[test]
    fn reports_every_kind_of_exposure() {
        let prices = prices();
        let mut f = function("slow", 4_096, None);
        f.timeout_s = Some(900);
        let mut stage = entry("rest-stage:abc/prod", TargetSpec::RestStage, Limits::stage(None));
        stage.open_methods = vec!["GET /".into()];
        let mut planned = entry(
            "rest-stage:abc/beta",
            TargetSpec::RestStage,
            Limits::stage(Some(throttle(10, 10))),
        );
        planned.plans = vec![(Some(throttle(5, 5)), None)];
        let plan = entry(
            "usage-plan:p1",
            TargetSpec::UsagePlan,
            Limits::UsagePlan {
                throttle: None,
                quota: None,
            },
        );
        let ranked = rank(&[f, stage, planned, plan], &ctx(&[], &prices));
        let findings = |id: &str| -> Vec<Finding> {
            ranked
                .iter()
                .find(|e| e.target.to_string() == id)
                .map(|e| e.findings.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            findings("function:slow"),
            vec![
                Finding::NoReservedConcurrency,
                Finding::LongTimeout { seconds: 900 },
                Finding::LargeMemory { mb: 4_096 }
            ]
        );
        assert_eq!(
            findings("rest-stage:abc/prod"),
            vec![
                Finding::NoStageThrottle,
                Finding::NoUsagePlan,
                Finding::OpenMethods {
                    methods: vec!["GET /".into()]
                }
            ]
        );
        assert_eq!(findings("rest-stage:abc/beta"), vec![Finding::NoQuota]);
        assert_eq!(
            findings("usage-plan:p1"),
            vec![Finding::NoPlanThrottle, Finding::NoQuota]
        );
    }

    #[test]
    fn recommends_limits_that_cap_the_worst_case_at_the_budget_s_top_threshold() {
        let prices = prices();
        let entries = vec![
            function("checkout", 512, Some(50)),
            entry("rest-stage:abc/prod", TargetSpec::RestStage, Limits::stage(None)),
            function("other", 1_024, None),
        ];
        let budgets = [budget("shop", "rest-stage:abc/prod", "50")];
        let ranked = rank(&entries, &ctx(&budgets, &prices));
        let by = |id: &str| ranked.iter().find(|e| e.target.to_string() == id).expect(id);
        // $50 a day at 14.4x = $30 an hour = 2,380 rps of REST requests.
        let stage = by("rest-stage:abc/prod");
        assert_eq!(
            stage.basis.budget.as_ref().map(ToString::to_string),
            Some("shop".into())
        );
        assert_eq!(stage.recommended, Limits::stage(Some(throttle(2_380, 2_380))));
        assert!(stage.recommended_per_hour <= Money::from_dollars(30));
        // The default $100 a day at 14.4x = $60 an hour = 1,000 x 1 GB functions
        // at most, but never above what is there now (1,000): 999 fit.
        let other = by("function:other");
        assert_eq!(other.basis.budget, None);
        assert_eq!(
            other.recommended,
            Limits::Function {
                reserved_concurrency: Some(999),
                async_config: None
            }
        );
        // Never looser than the limit in place.
        let checkout = by("function:checkout");
        assert_eq!(
            checkout.recommended,
            Limits::Function {
                reserved_concurrency: Some(50),
                async_config: None
            }
        );
        assert!(checkout.findings.is_empty());
    }

    #[test]
    fn group_budgets_are_shared_among_their_members() {
        let prices = prices();
        let mut a = function("a", 1_024, None);
        a.target.tags.insert("team".into(), "shop".into());
        let mut b = function("b", 1_024, None);
        b.target.tags.insert("team".into(), "shop".into());
        let budgets = [budget("team", "tag:team=shop", "200")];
        let ranked = rank(&[a, b], &ctx(&budgets, &prices));
        for e in &ranked {
            assert_eq!(e.basis.amount, Money::from_dollars(100), "{}", e.target);
            assert_eq!(
                e.basis.budget.as_ref().map(ToString::to_string),
                Some("team".into())
            );
        }
    }

    #[test]
    fn an_open_function_url_is_a_finding_and_leaves_the_worst_case_as_it_was() {
        let prices = prices();
        let closed = function("api", 1_024, Some(10));
        let mut open = function("api", 1_024, Some(10));
        open.open_url = true;
        let without = rank(&[closed], &ctx(&[], &prices));
        let with = rank(&[open], &ctx(&[], &prices));
        assert_eq!(with[0].findings, vec![Finding::OpenFunctionUrl]);
        assert!(without[0].findings.is_empty());
        assert_eq!(with[0].worst_per_hour, without[0].worst_per_hour);
        assert_eq!(with[0].recommended, without[0].recommended);
    }

    #[test]
    fn an_http_stage_at_the_account_default_counts_as_unthrottled() {
        let prices = prices();
        let e = entry(
            "http-stage:def/$default",
            TargetSpec::HttpStage,
            Limits::stage(Some(throttle(10_000, 5_000))),
        );
        let ranked = rank(&[e], &ctx(&[], &prices));
        assert_eq!(ranked[0].findings, vec![Finding::NoStageThrottle]);
        assert_eq!(ranked[0].bound, Bound::AccountLimit);
        assert_eq!(ranked[0].worst_per_hour.to_string(), "$36.00");
    }
}
