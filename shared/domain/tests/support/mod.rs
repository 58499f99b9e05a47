//! A small world for decision tests: targets with current limits, budgets, one-minute
//! demand that the current limits cut into served and throttled requests, and a
//! clock that the test moves. Actions marked `apply` change the limits, as an
//! executor would.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    reason = "shared test fixtures fail loudly"
)]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Action, Arch, Budget, BudgetSpec, Change, Decision, Gaps,
    GuardSettings, GuardState, Inputs, Intent, Limits, MinuteUsage, Money, PriceBook, Prices, Target,
    TargetId, TargetMetrics, TargetSpec, Throttle, Usage, decide, epoch_minute,
};
use rust_decimal::prelude::ToPrimitive;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0)
        .single()
        .expect("valid time")
}

pub fn prices() -> Prices {
    PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .expect("bundled prices")
}

pub fn id(text: &str) -> TargetId {
    TargetId::parse(text).expect("valid target id")
}

pub fn spec(id: &str, scope: &str, amount: &str) -> BudgetSpec {
    BudgetSpec::day(id, scope, amount, "finance@example.com")
}

pub fn function(name: &str, memory_mb: u32, async_invoked: bool, reserved: Option<u32>) -> Target {
    Target {
        id: id(&format!("function:{name}")),
        spec: TargetSpec::Function {
            memory_mb,
            arch: Arch::X86_64,
            async_invoked,
        },
        tags: BTreeMap::new(),
        limits: Limits::Function {
            reserved_concurrency: reserved,
            async_config: None,
        },
        guarded: true,
        usage_plans: Default::default(),
    }
}

pub fn rest_stage(api: &str, stage: &str, throttle: Option<(u32, u32)>) -> Target {
    Target {
        id: id(&format!("rest-stage:{api}/{stage}")),
        spec: TargetSpec::RestStage,
        tags: BTreeMap::new(),
        limits: Limits::stage(throttle.map(|(rate, burst)| Throttle {
            rate_limit: rate.into(),
            burst_limit: burst,
        })),
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// Demand per minute for one target: requests and ms per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Demand {
    pub requests: u64,
    pub ms_each: u64,
}

pub struct World {
    pub now: DateTime<Utc>,
    pub budgets: Vec<Budget>,
    pub targets: Vec<Target>,
    pub states: HashMap<TargetId, GuardState>,
    pub metrics: HashMap<TargetId, TargetMetrics>,
    pub prices: Prices,
    pub settings: GuardSettings,
    pub concurrency: AccountConcurrency,
    pub gaps: Gaps,
    pub attribution: dowguard_domain::source::Attribution,
    pub log: Vec<Decision>,
}

impl World {
    pub fn new() -> Self {
        World {
            now: t0(),
            budgets: vec![],
            targets: vec![],
            states: HashMap::new(),
            metrics: HashMap::new(),
            prices: prices(),
            settings: GuardSettings::default(),
            concurrency: AccountConcurrency::default(),
            gaps: Gaps::default(),
            attribution: dowguard_domain::source::Attribution::default(),
            log: vec![],
        }
    }

    pub fn with_target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    pub fn with_budget(mut self, spec: BudgetSpec) -> Self {
        self.budgets.push(Budget::parse(spec).expect("valid budget"));
        self
    }

    pub fn target(&self, id: &TargetId) -> &Target {
        self.targets.iter().find(|t| &t.id == id).expect("target exists")
    }

    pub fn limits(&self, id: &TargetId) -> Limits {
        self.target(id).limits.clone()
    }

    pub fn state(&self, id: &TargetId) -> Option<&GuardState> {
        self.states.get(id)
    }

    /// Records one minute of demand at `minute` (epoch minute), cut by the target's
    /// current limits into served and throttled requests.
    pub fn record(&mut self, target: &TargetId, minute: i64, demand: Demand) {
        let limits = self.target(target).limits.clone();
        let capacity = match limits {
            Limits::Function {
                reserved_concurrency: Some(c),
                ..
            } => u64::from(c) * 60_000 / demand.ms_each.max(1),
            Limits::Stage {
                throttle: Some(t), ..
            }
            | Limits::UsagePlan {
                throttle: Some(t), ..
            } => t.rate_limit.to_u64().unwrap_or(0) * 60,
            _ => u64::MAX,
        };
        let served = demand.requests.min(capacity);
        let point = MinuteUsage {
            minute,
            usage: Usage {
                requests: served,
                throttled: demand.requests - served,
                duration_ms: served * demand.ms_each,
            },
        };
        let series = self.metrics.entry(target.clone()).or_default();
        series.minutes.retain(|m| m.minute != minute);
        series.minutes.push(point);
        series.minutes.sort_by_key(|m| m.minute);
    }

    /// Records the same demand for every minute of the last `minutes` minutes.
    pub fn history(&mut self, target: &TargetId, minutes: i64, demand: Demand) {
        let now = epoch_minute(self.now);
        for m in (now - minutes)..now {
            self.record(target, m, demand);
        }
    }

    /// Decides with the states and metrics in maps, and again with them in slices
    /// in target order; the two must agree.
    pub fn decide(&self) -> Decision {
        let by_map = decide(&Inputs {
            now: self.now,
            budgets: &self.budgets,
            targets: &self.targets,
            states: &self.states,
            metrics: &self.metrics,
            prices: &self.prices,
            account_usage: AccountUsage::default(),
            concurrency: self.concurrency,
            gaps: &self.gaps,
            attribution: &self.attribution,
            settings: &self.settings,
        });
        let states: Vec<Option<GuardState>> = self
            .targets
            .iter()
            .map(|t| self.states.get(&t.id).cloned())
            .collect();
        let metrics: Vec<Option<TargetMetrics>> = self
            .targets
            .iter()
            .map(|t| self.metrics.get(&t.id).cloned())
            .collect();
        let by_slice = decide(&Inputs {
            now: self.now,
            budgets: &self.budgets,
            targets: &self.targets,
            states: states.as_slice(),
            metrics: metrics.as_slice(),
            prices: &self.prices,
            account_usage: AccountUsage::default(),
            concurrency: self.concurrency,
            gaps: &self.gaps,
            attribution: &self.attribution,
            settings: &self.settings,
        });
        assert_eq!(
            by_map, by_slice,
            "deciding from slices differs from deciding from maps"
        );
        by_map
    }

    /// Persists the states, then applies the actions marked `apply`.
    pub fn commit(&mut self, decision: &Decision) {
        for (id, state) in &decision.states {
            self.states.insert(id.clone(), state.clone());
        }
        for action in decision.actions.iter().filter(|a| a.apply) {
            apply(&mut self.targets, action);
        }
    }

    /// One scheduled pass: record this minute's demand for every target, decide,
    /// commit, move the clock one minute.
    pub fn tick(&mut self, demand: &[(TargetId, Demand)]) -> Decision {
        let minute = epoch_minute(self.now);
        for (target, d) in demand {
            self.record(target, minute, *d);
        }
        let decision = self.decide();
        self.commit(&decision);
        self.now += Duration::minutes(1);
        self.log.push(decision.clone());
        decision
    }
}

pub fn apply(targets: &mut [Target], action: &Action) {
    let Some(target) = targets.iter_mut().find(|t| t.id == action.target) else {
        return;
    };
    match (&action.change, &mut target.limits) {
        (
            Change::ReservedConcurrency { to, .. },
            Limits::Function {
                reserved_concurrency, ..
            },
        ) => *reserved_concurrency = *to,
        (Change::AsyncInvokeConfig { to, .. }, Limits::Function { async_config, .. }) => {
            async_config.clone_from(to)
        }
        (Change::StageThrottle { to, to_overrides, .. }, Limits::Stage { throttle, overrides }) => {
            *throttle = *to;
            overrides.extend(to_overrides.iter().map(|(k, v)| (k.clone(), *v)));
        }
        (
            Change::UsagePlanLimits {
                to_throttle,
                to_quota,
                ..
            },
            Limits::UsagePlan { throttle, quota },
        ) => {
            *throttle = *to_throttle;
            *quota = *to_quota;
        }
        _ => {}
    }
}

pub fn changes(decision: &Decision) -> Vec<&Action> {
    decision
        .actions
        .iter()
        .filter(|a| a.intent != Intent::Notify)
        .collect()
}

/// The state the decision writes for `target`, if any.
pub fn written_state<'a>(decision: &'a Decision, target: &TargetId) -> Option<&'a GuardState> {
    decision.states.iter().find(|(t, _)| t == target).map(|(_, s)| s)
}

pub fn tightens(decision: &Decision) -> Vec<&Action> {
    decision
        .actions
        .iter()
        .filter(|a| a.intent == Intent::Tighten)
        .collect()
}

pub fn restores(decision: &Decision) -> Vec<&Action> {
    decision
        .actions
        .iter()
        .filter(|a| a.intent == Intent::Restore)
        .collect()
}

/// Requests per minute that spend a `daily` budget (dollars) at `multiple`× its
/// even pace, for an x86 function of `memory_mb` running `ms_each` per request, at
/// the bundled price book's list prices.
pub fn lambda_rate(daily: u64, multiple: u64, memory_mb: u64, ms_each: u64) -> u64 {
    let spec = TargetSpec::Function {
        memory_mb: u32::try_from(memory_mb).expect("memory"),
        arch: Arch::X86_64,
        async_invoked: false,
    };
    let per_request = prices().list().of(&spec).per_request(ms_each);
    let per_minute = Money::from_dollars(i64::try_from(daily * multiple).expect("dollars"))
        .mul_div(1, 1_440)
        .expect("money");
    per_request.units_for(per_minute)
}

/// The cost of one request to `spec` running `ms_each` (functions only), in whole
/// pico-dollars, at the bundled price book's list prices.
pub fn picos_per_request(spec: &TargetSpec, ms_each: u64) -> u128 {
    let (numerator, denominator) = prices().list().of(spec).per_request(ms_each).as_fraction();
    u128::try_from(numerator / denominator).expect("a price")
}
